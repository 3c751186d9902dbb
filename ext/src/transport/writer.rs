//! The writer thread: the only place that does I/O.
//!
//! Each turn of the loop: take the outbox when a batch is due, send it (or
//! spool it), keep the connection healthy (reconnect with backoff, finish a
//! stalled write, replay the spool), complete flush tickets, then sleep in one
//! `poll` on the wake-up eventfd and the socket (acks, hang-up, writability).
//!
//! Ordering: a batch goes straight to the socket only when nothing older is
//! waiting in the spool; otherwise it is appended to the spool, which is
//! replayed front to back. Events written but not yet acknowledged are kept
//! (`retained`) and moved to the spool if the connection is lost.

use std::collections::VecDeque;
use std::io;
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

/// A batch written to the socket and waiting for its acknowledgement.
struct Chunk {
    /// Cumulative frame count on this connection once this chunk is read.
    end: u64,
    frames: u64,
    bytes: Vec<u8>,
}

pub struct Writer {
    shared: Arc<Shared>,
    conn: Option<Connection>,
    /// Frames written on the current connection (cumulative).
    written: u64,
    retained: VecDeque<Chunk>,
    retained_bytes: usize,
    /// Bytes of the newest retained chunk already written, when the socket
    /// was full (a stopped or slow sidecar). New batches go to the spool meanwhile.
    stalled_at: Option<usize>,
    spool: Spool,
    /// A batch that could be neither sent nor spooled; nothing more is taken
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
            conn: None,
            written: 0,
            retained: VecDeque::new(),
            retained_bytes: 0,
            stalled_at: None,
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

    /// Nothing in flight: everything taken is acknowledged or spooled.
    fn settled(&self) -> bool {
        self.retained.is_empty() && self.stalled_at.is_none() && self.held.is_none()
    }

    /// Takes the outbox when its batch is due. Returns whether shutdown was requested.
    fn take_due_batch(&mut self) -> bool {
        if self.held.is_some() {
            let ob = self.shared.lock();
            return ob.shutdown;
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

    fn can_send_direct(&self) -> bool {
        self.conn.is_some()
            && self.stalled_at.is_none()
            && !self.spool.has_pending()
            && self.retained_bytes < self.shared.config.max_unacked_bytes
    }

    fn dispatch(&mut self, bytes: Vec<u8>, frames: u64) {
        if self.conn.is_none() {
            self.try_connect();
        }
        if self.can_send_direct() {
            self.send_chunk(bytes, frames);
        } else {
            self.spool_batch(bytes, frames);
        }
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

    /// Writes a chunk, waiting at most the stall timeout for a full socket.
    fn send_chunk(&mut self, bytes: Vec<u8>, frames: u64) {
        let Some(conn) = &self.conn else {
            self.spool_batch(bytes, frames);
            return;
        };
        let deadline = Instant::now() + self.shared.config.stall_timeout;
        let mut pos = 0;
        let mut failed = None;
        while pos < bytes.len() {
            match conn.write_some(&bytes[pos..]) {
                Ok(0) => {
                    let now = Instant::now();
                    if now >= deadline {
                        break;
                    }
                    let mut fds = [sys::pollfd(conn.raw(), libc::POLLOUT)];
                    if let Err(e) = sys::poll(&mut fds, Some(deadline - now)) {
                        failed = Some(e);
                        break;
                    }
                }
                Ok(n) => pos += n,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        self.written += frames;
        self.retained_bytes += bytes.len();
        Stats::add(&self.shared.stats.unacked, frames);
        let complete = pos == bytes.len();
        self.retained.push_back(Chunk {
            end: self.written,
            frames,
            bytes,
        });
        if let Some(e) = failed {
            self.disconnect("write to sidecar", Some(&e));
        } else if !complete {
            self.stalled_at = Some(pos);
        }
    }

    /// Continues a write the socket could not take earlier.
    fn resume_stalled(&mut self) {
        let (Some(pos), Some(conn), Some(chunk)) =
            (self.stalled_at, &self.conn, self.retained.back())
        else {
            return;
        };
        match conn.write_some(&chunk.bytes[pos..]) {
            Ok(n) if pos + n == chunk.bytes.len() => self.stalled_at = None,
            Ok(n) => self.stalled_at = Some(pos + n),
            Err(e) => self.disconnect("write to sidecar", Some(&e)),
        }
    }

    fn try_connect(&mut self) {
        if self.conn.is_some() || Instant::now() < self.next_connect {
            return;
        }
        let cfg = &self.shared.config;
        let hello = Hello {
            origin: self.shared.origin,
            pid: self.shared.pid,
            client: CLIENT,
        };
        match Connection::open(&cfg.socket, &hello, cfg.connect_timeout) {
            Ok(conn) => {
                self.conn = Some(conn);
                self.written = 0;
                self.backoff = BACKOFF_MIN;
                Stats::add(&self.shared.stats.connects, 1);
                self.shared
                    .stats
                    .connected
                    .store(1, std::sync::atomic::Ordering::Relaxed);
            }
            Err(e) => {
                self.error(&format!("connect {}", cfg.socket.display()), &e);
                self.next_connect = Instant::now() + self.backoff;
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
            }
        }
    }

    /// Drops the connection; what it left unacknowledged goes to the spool.
    fn disconnect(&mut self, what: &str, e: Option<&io::Error>) {
        if let Some(e) = e {
            self.error(what, e);
        }
        self.conn = None;
        self.stalled_at = None;
        self.shared
            .stats
            .connected
            .store(0, std::sync::atomic::Ordering::Relaxed);
        self.next_connect = Instant::now() + self.backoff;
        let retained = std::mem::take(&mut self.retained);
        self.retained_bytes = 0;
        for chunk in retained {
            Stats::sub(&self.shared.stats.unacked, chunk.frames);
            self.spool_batch(chunk.bytes, chunk.frames);
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
        self.held.is_some() || self.spool.has_pending() || !self.retained.is_empty()
    }

    fn upkeep(&mut self) {
        if self.conn.is_none() && self.has_work() {
            self.try_connect();
        }
        if self.stalled_at.is_some() {
            self.resume_stalled();
        }
        if let Some((bytes, frames)) = self.held.take() {
            if self.can_send_direct() {
                self.send_chunk(bytes, frames);
            } else {
                self.spool_batch(bytes, frames);
            }
        }
        self.replay();
    }

    /// Sends spooled batches, oldest first, while the connection is healthy.
    fn replay(&mut self) {
        while self.conn.is_some()
            && self.stalled_at.is_none()
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
                    self.send_chunk(buf, n);
                }
                Err(e) => {
                    self.error("replay spool", &e);
                    Stats::sub(&self.shared.stats.spool_pending, u64::MAX);
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
    /// an ack or hang-up (socket), socket space (when stalled), or a timer.
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
        if self.conn.is_none() && self.has_work() {
            timeout = timeout.min(self.next_connect.saturating_duration_since(now));
        }
        if self.held.is_some() {
            timeout = timeout.min(Duration::from_millis(50));
        }
        if let Some(deadline) = self.shutdown_deadline {
            timeout = timeout.min(deadline.saturating_duration_since(now));
        }
        if self.conn.is_some()
            && self.stalled_at.is_none()
            && self.spool.has_pending()
            && self.retained_bytes < self.shared.config.max_unacked_bytes
        {
            timeout = Duration::ZERO;
        }

        let mut fds = [
            sys::pollfd(self.shared.wake.raw(), libc::POLLIN),
            sys::pollfd(-1, 0),
        ];
        if let Some(conn) = &self.conn {
            let mut events = libc::POLLIN;
            if self.stalled_at.is_some() {
                events |= libc::POLLOUT;
            }
            fds[1] = sys::pollfd(conn.raw(), events);
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
            self.read_acks();
        }
    }

    fn read_acks(&mut self) {
        let Some(conn) = &mut self.conn else { return };
        match conn.read_acks() {
            Ok(Some(acked)) => self.on_ack(acked),
            Ok(None) => {}
            Err(e) => self.disconnect("read from sidecar", Some(&e)),
        }
    }

    /// Shutdown: everything not acknowledged goes to the spool; the spool file
    /// is removed if empty or left for the sidecar; callers are released.
    fn finish(&mut self) {
        if !self.settled() {
            self.disconnect("shutdown", None);
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
        }
        self.conn = None;
        self.spool.close();
        let mut ob = self.shared.lock();
        ob.writer = WriterState::Exited;
        ob.flush_done = ob.flush_requested;
        drop(ob);
        self.shared.flushed.notify_all();
    }
}
