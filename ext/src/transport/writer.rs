//! The writer thread: the only place that does I/O, and it never waits on
//! the sidecar.
//!
//! A batch's way out, oldest events first:
//! ```text
//! spool file (disk) ─► queue (memory) ─► socket (non-blocking writes) ─► retained until acked
//! ```
//! A new batch joins the queue unless older events wait in the spool, the
//! queue is over its budget, or there is no connection: then it is appended to
//! the spool. The spool is replayed (into the queue) only when the queue is
//! empty, so one process's events keep their order. If the connection is lost,
//! what it had not acknowledged goes back to the front of the spool.
//!
//! Each turn of the loop takes the outbox when a batch is due, moves data
//! along, completes flush tickets, then sleeps in one `poll` on the wake-up
//! eventfd and the socket (acks, hang-up, room to write, handshake).

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use scada_core::message::Hello;

use super::connection::Connection;
use super::outbox::{WriterState, HIGH_WATER_BYTES};
use super::spool::Spool;
use super::stats::Stats;
use super::{sys, Shared};

const BACKOFF_MIN: Duration = Duration::from_millis(20);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Bytes read from the spool per replayed chunk.
const REPLAY_CHUNK: usize = 256 * 1024;
/// Upper bound for any sleep, so timers are re-evaluated regularly.
const MAX_SLEEP: Duration = Duration::from_millis(250);
const CLIENT: &str = concat!("scada_broadcast/", env!("CARGO_PKG_VERSION"));

/// A batch on its way to the socket; `pos` bytes of it are written.
struct Queued {
    bytes: Vec<u8>,
    frames: u64,
    pos: usize,
}

/// A batch written to the socket and waiting for its acknowledgement.
struct Chunk {
    /// Cumulative frame count on this connection once this chunk is read.
    end: u64,
    frames: u64,
    bytes: Vec<u8>,
}

enum Link {
    Down,
    Handshaking { conn: Connection, since: Instant },
    Up(Connection),
}

pub struct Writer {
    shared: Arc<Shared>,
    link: Link,
    /// Frames fully written on the current connection (cumulative).
    written: u64,
    queue: VecDeque<Queued>,
    queue_bytes: usize,
    retained: VecDeque<Chunk>,
    retained_bytes: usize,
    spool: Spool,
    /// A batch that could be neither queued nor spooled; nothing more is taken
    /// from the outbox until it is placed, so callers' overflow policy applies.
    held: Option<(Vec<u8>, u64)>,
    next_connect: Instant,
    backoff: Duration,
    spare: Vec<Vec<u8>>,
    /// Highest flush ticket included in what was taken from the outbox.
    flush_taken: u64,
    flush_published: u64,
    shutdown_deadline: Option<Instant>,
}

impl Writer {
    pub fn new(shared: Arc<Shared>) -> Self {
        let cfg = &shared.config;
        let spool = Spool::new(
            &cfg.spool_dir,
            shared.origin,
            shared.pid,
            cfg.spool_max_bytes,
        );
        Self {
            link: Link::Down,
            written: 0,
            queue: VecDeque::new(),
            queue_bytes: 0,
            retained: VecDeque::new(),
            retained_bytes: 0,
            spool,
            held: None,
            next_connect: Instant::now(),
            backoff: BACKOFF_MIN,
            spare: Vec::new(),
            flush_taken: 0,
            flush_published: 0,
            shutdown_deadline: None,
            shared,
        }
    }

    pub fn run(mut self) {
        loop {
            let shutting_down = self.take_due_batch();
            if shutting_down && self.shutdown_deadline.is_none() {
                self.shutdown_deadline = Some(Instant::now() + self.shared.config.shutdown_timeout);
            }
            self.upkeep();
            self.publish_flushes();
            if let Some(deadline) = self.shutdown_deadline {
                if self.outbox_empty() && (self.settled() || Instant::now() >= deadline) {
                    self.finish();
                    return;
                }
            }
            self.sleep();
        }
    }

    fn error(&self, what: &str, e: &io::Error) {
        Stats::add(&self.shared.stats.errors, 1);
        self.shared.set_last_error(format!("{what}: {e}"));
    }

    fn take_spare(&mut self) -> Vec<u8> {
        self.spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(64 * 1024))
    }

    fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.spare.len() < 4 && buf.capacity() <= 4 * HIGH_WATER_BYTES {
            buf.clear();
            self.spare.push(buf);
        }
    }

    fn outbox_empty(&self) -> bool {
        self.shared.lock().buf.is_empty()
    }

    /// Nothing in memory: everything taken is acknowledged or spooled.
    fn settled(&self) -> bool {
        self.queue.is_empty() && self.retained.is_empty() && self.held.is_none()
    }

    fn is_up(&self) -> bool {
        matches!(self.link, Link::Up(_))
    }

    /// Room in memory for `n` more bytes on the way to the sidecar.
    fn can_queue(&self, n: usize) -> bool {
        !matches!(self.link, Link::Down)
            && self.queue_bytes + self.retained_bytes + n
                <= self.shared.config.max_unacked_bytes.max(n)
    }

    /// Takes the outbox when its batch is due. Returns whether shutdown was requested.
    fn take_due_batch(&mut self) -> bool {
        if self.held.is_some() {
            return self.shared.lock().shutdown;
        }
        let spare = self.take_spare();
        let mut ob = self.shared.lock();
        let shutdown = ob.shutdown;
        let flush_wanted = ob.flush_requested > self.flush_taken;
        let due = ob
            .first_at
            .is_some_and(|t| t.elapsed() >= self.shared.config.linger);
        let batch = if !ob.buf.is_empty()
            && (flush_wanted || shutdown || due || ob.buf.len() >= HIGH_WATER_BYTES)
        {
            self.flush_taken = ob.flush_requested;
            let batch = ob.take(spare);
            drop(ob);
            Some(batch)
        } else {
            if ob.buf.is_empty() {
                self.flush_taken = ob.flush_requested;
            }
            drop(ob);
            self.recycle(spare);
            None
        };
        if let Some((bytes, frames)) = batch {
            self.dispatch(bytes, frames);
        }
        shutdown
    }

    fn dispatch(&mut self, bytes: Vec<u8>, frames: u64) {
        if matches!(self.link, Link::Down) {
            self.try_connect();
        }
        if !self.spool.has_pending() && self.can_queue(bytes.len()) {
            self.enqueue(bytes, frames);
            self.flush_queue();
        } else {
            self.spool_batch(bytes, frames);
        }
    }

    fn enqueue(&mut self, bytes: Vec<u8>, frames: u64) {
        self.queue_bytes += bytes.len();
        Stats::add(&self.shared.stats.unacked, frames);
        self.queue.push_back(Queued {
            bytes,
            frames,
            pos: 0,
        });
    }

    fn spool_batch(&mut self, bytes: Vec<u8>, frames: u64) {
        match self.spool.append(&bytes) {
            Ok(()) => {
                Stats::add(&self.shared.stats.spooled, frames);
                Stats::add(&self.shared.stats.spool_pending, frames);
                self.recycle(bytes);
            }
            Err(e) => {
                self.error(&format!("spool {}", self.spool.path().display()), &e);
                match &mut self.held {
                    Some((held, n)) => {
                        held.extend_from_slice(&bytes);
                        *n += frames;
                    }
                    None => self.held = Some((bytes, frames)),
                }
            }
        }
    }

    /// Writes queued batches while the socket takes them (never waits).
    fn flush_queue(&mut self) {
        let Link::Up(conn) = &self.link else { return };
        let mut failed = None;
        while let Some(front) = self.queue.front_mut() {
            match conn.write_some(&front.bytes[front.pos..]) {
                Ok(0) => break,
                Ok(n) => {
                    front.pos += n;
                    if front.pos == front.bytes.len() {
                        let Some(done) = self.queue.pop_front() else {
                            break;
                        };
                        self.queue_bytes -= done.bytes.len();
                        self.written += done.frames;
                        self.retained_bytes += done.bytes.len();
                        self.retained.push_back(Chunk {
                            end: self.written,
                            frames: done.frames,
                            bytes: done.bytes,
                        });
                    }
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = failed {
            self.disconnect("write to sidecar", Some(&e));
        }
    }

    fn try_connect(&mut self) {
        if !matches!(self.link, Link::Down) || Instant::now() < self.next_connect {
            return;
        }
        let hello = Hello {
            origin: self.shared.origin,
            pid: self.shared.pid,
            client: CLIENT,
        };
        match Connection::start(&self.shared.config.socket, &hello) {
            Ok(conn) => {
                self.link = Link::Handshaking {
                    conn,
                    since: Instant::now(),
                }
            }
            Err(e) => {
                self.error(
                    &format!("connect {}", self.shared.config.socket.display()),
                    &e,
                );
                self.next_connect = Instant::now() + self.backoff;
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
            }
        }
    }

    /// Drops the connection; what it left unacknowledged or unsent goes back
    /// to the front of the spool (it is older than anything spooled).
    fn disconnect(&mut self, what: &str, e: Option<&io::Error>) {
        if let Some(e) = e {
            self.error(what, e);
        }
        self.link = Link::Down;
        self.shared.stats.connected.store(0, Ordering::Relaxed);
        self.next_connect = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        let retained = std::mem::take(&mut self.retained);
        let queue = std::mem::take(&mut self.queue);
        self.retained_bytes = 0;
        self.queue_bytes = 0;
        let chunks: Vec<(Vec<u8>, u64)> = retained
            .into_iter()
            .map(|c| (c.bytes, c.frames))
            .chain(queue.into_iter().map(|q| (q.bytes, q.frames)))
            .collect();
        if chunks.is_empty() {
            return;
        }
        let frames: u64 = chunks.iter().map(|(_, f)| f).sum();
        Stats::sub(&self.shared.stats.unacked, frames);
        let slices: Vec<&[u8]> = chunks.iter().map(|(b, _)| &b[..]).collect();
        match self.spool.prepend(&slices) {
            Ok(()) => {
                Stats::add(&self.shared.stats.spooled, frames);
                Stats::add(&self.shared.stats.spool_pending, frames);
            }
            Err(e) => {
                self.error("spool unacknowledged events", &e);
                let mut all = Vec::new();
                for (b, _) in &chunks {
                    all.extend_from_slice(b);
                }
                if let Some((held, n)) = self.held.take() {
                    all.extend_from_slice(&held);
                    self.held = Some((all, frames + n));
                } else {
                    self.held = Some((all, frames));
                }
            }
        }
    }

    fn on_ack(&mut self, acked: u64) {
        while let Some(front) = self.retained.front() {
            if front.end > acked {
                break;
            }
            let Some(chunk) = self.retained.pop_front() else {
                break;
            };
            self.retained_bytes -= chunk.bytes.len();
            Stats::sub(&self.shared.stats.unacked, chunk.frames);
            Stats::add(&self.shared.stats.sent, chunk.frames);
            self.recycle(chunk.bytes);
        }
    }

    fn has_work(&self) -> bool {
        self.held.is_some()
            || self.spool.has_pending()
            || !self.queue.is_empty()
            || !self.retained.is_empty()
    }

    fn upkeep(&mut self) {
        match &self.link {
            Link::Down if self.has_work() => self.try_connect(),
            Link::Handshaking { since, .. }
                if since.elapsed() > self.shared.config.connect_timeout =>
            {
                let e = io::Error::new(
                    io::ErrorKind::TimedOut,
                    "sidecar did not answer the handshake",
                );
                self.disconnect("connect", Some(&e));
            }
            _ => {}
        }
        if let Some((bytes, frames)) = self.held.take() {
            if !self.spool.has_pending() && self.can_queue(bytes.len()) {
                self.enqueue(bytes, frames);
            } else {
                self.spool_batch(bytes, frames);
            }
        }
        self.flush_queue();
        self.replay();
    }

    /// Moves spooled batches, oldest first, into the queue while the
    /// connection keeps up.
    fn replay(&mut self) {
        while self.is_up()
            && self.queue.is_empty()
            && self.spool.has_pending()
            && self.retained_bytes < self.shared.config.max_unacked_bytes
        {
            let mut buf = self.take_spare();
            match self.spool.read_pending(REPLAY_CHUNK, &mut buf) {
                Ok(0) => {
                    self.recycle(buf);
                    break;
                }
                Ok(n) => {
                    Stats::add(&self.shared.stats.replayed, n);
                    Stats::sub(&self.shared.stats.spool_pending, n);
                    self.enqueue(buf, n);
                    self.flush_queue();
                }
                Err(e) => {
                    self.error("replay spool", &e);
                    self.recycle(buf);
                    break;
                }
            }
        }
        if !self.spool.has_pending() {
            if let Err(e) = self.spool.reset_if_drained() {
                self.error("truncate spool", &e);
            }
        }
    }

    fn publish_flushes(&mut self) {
        if self.flush_taken > self.flush_published && self.settled() {
            self.flush_published = self.flush_taken;
            let mut ob = self.shared.lock();
            ob.flush_done = ob.flush_done.max(self.flush_taken);
            drop(ob);
            self.shared.flushed.notify_all();
        }
    }

    /// Sleeps until there is something to do: an event or flush (eventfd),
    /// an ack, hang-up or handshake answer (socket), room to write, or a timer.
    fn sleep(&mut self) {
        let now = Instant::now();
        let mut timeout = MAX_SLEEP;
        {
            let mut ob = self.shared.lock();
            let flush_wanted = ob.flush_requested > self.flush_taken;
            if self.held.is_none() && (ob.shutdown && !ob.buf.is_empty() || flush_wanted) {
                return;
            }
            match ob.first_at {
                Some(first) if self.held.is_none() => {
                    let due = first + self.shared.config.linger;
                    if due <= now || ob.buf.len() >= HIGH_WATER_BYTES {
                        return;
                    }
                    timeout = timeout.min(due - now);
                    ob.writer = WriterState::Lingering;
                }
                _ => ob.writer = WriterState::Idle,
            }
        }
        match &self.link {
            Link::Down if self.has_work() => {
                timeout = timeout.min(self.next_connect.saturating_duration_since(now));
            }
            Link::Handshaking { since, .. } => {
                timeout = timeout.min(
                    (*since + self.shared.config.connect_timeout).saturating_duration_since(now),
                );
            }
            _ => {}
        }
        if self.held.is_some() {
            timeout = timeout.min(Duration::from_millis(50));
        }
        if let Some(deadline) = self.shutdown_deadline {
            timeout = timeout.min(deadline.saturating_duration_since(now));
        }

        let mut fds = [
            sys::pollfd(self.shared.wake.raw(), libc::POLLIN),
            sys::pollfd(-1, 0),
        ];
        match &self.link {
            Link::Up(conn) => {
                let mut events = libc::POLLIN;
                if !self.queue.is_empty() {
                    events |= libc::POLLOUT;
                }
                fds[1] = sys::pollfd(conn.raw(), events);
            }
            Link::Handshaking { conn, .. } => fds[1] = sys::pollfd(conn.raw(), libc::POLLIN),
            Link::Down => {}
        }
        let polled = sys::poll(&mut fds, Some(timeout));
        self.shared.lock().writer = WriterState::Busy;
        if let Err(e) = polled {
            self.error("poll", &e);
            std::thread::sleep(Duration::from_millis(10));
            return;
        }
        if fds[0].revents != 0 {
            self.shared.wake.drain();
        }
        if fds[1].revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
            self.read_socket();
        }
    }

    fn read_socket(&mut self) {
        match &mut self.link {
            Link::Up(conn) => match conn.read_acks() {
                Ok(Some(acked)) => self.on_ack(acked),
                Ok(None) => {}
                Err(e) => self.disconnect("read from sidecar", Some(&e)),
            },
            Link::Handshaking { conn, .. } => match conn.poll_welcome() {
                Ok(true) => {
                    if let Link::Handshaking { conn, .. } =
                        std::mem::replace(&mut self.link, Link::Down)
                    {
                        self.link = Link::Up(conn);
                    }
                    self.written = 0;
                    self.backoff = BACKOFF_MIN;
                    Stats::add(&self.shared.stats.connects, 1);
                    self.shared.stats.connected.store(1, Ordering::Relaxed);
                }
                Ok(false) => {}
                Err(e) => self.disconnect("connect", Some(&e)),
            },
            Link::Down => {}
        }
    }

    /// Shutdown: everything not acknowledged goes to the spool; the spool file
    /// is removed if empty or left for the sidecar; callers are released.
    fn finish(&mut self) {
        if !self.queue.is_empty() || !self.retained.is_empty() {
            self.disconnect("shutdown", None);
        }
        if let Some((bytes, frames)) = self.held.take() {
            if let Err(e) = self.spool.append(&bytes) {
                // The budget is used up and the sidecar unreachable: these
                // events are lost; count them so stats() shows it.
                self.error("spool at shutdown", &e);
                Stats::add(&self.shared.stats.dropped_rejected, frames);
            } else {
                Stats::add(&self.shared.stats.spooled, frames);
                Stats::add(&self.shared.stats.spool_pending, frames);
            }
        }
        self.link = Link::Down;
        self.spool.close();
        let mut ob = self.shared.lock();
        ob.writer = WriterState::Exited;
        ob.flush_done = ob.flush_requested;
        drop(ob);
        self.shared.flushed.notify_all();
    }
}
