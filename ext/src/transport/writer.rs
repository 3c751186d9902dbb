//! The writer thread: the only place that does I/O, and it never waits on
//! the sidecar. It moves batches between three parts, each its own type:
//!
//! ```text
//! outbox ─take─► number ─► in flight (inflight.rs) ─► link (link.rs) ─► acked: done
//!                             │  ▲ replay, oldest first      │ lost: unacked back to the spool's front
//!                             ▼  │                           ▼
//!                          spool file (spool.rs) ◄───────────┘
//!                             │ fails too
//!                             ▼
//!                          held (memory): retried; callers are told there is no destination
//! ```
//! A new batch goes in flight unless older events wait in the spool, too much
//! is in flight, or there is no connection: then it is appended to the spool.
//! The spool is replayed only when nothing is queued, so one process's events
//! keep their order.
//!
//! Events are numbered here, once taken from the outbox, in outbox order:
//! calls that were refused or evicted never consume an id.
//!
//! **No destination.** When a batch fits neither in flight nor in the spool
//! (full disk, read-only or missing directory, budget used up) and the link is
//! not up, it is held in memory and `Shared::no_destination` is set: callers
//! then refuse `reject` events at once (`dropped_no_destination`) instead of
//! filling the buffer with events that have nowhere to go; `drop_oldest`
//! events still replace older ones in the bounded buffer. The first spool
//! write or connection that succeeds clears it. What is still held when the
//! process exits is lost and reported (loss record, PHP's log, `lost`).
//!
//! **Panics** are caught ([`run`]): the transport is marked failed, and every
//! later call throws `BroadcastException` naming the cause. What the writer
//! held in memory only (queued, taken, held) is reported lost
//! (`writer_panic`); what it had sent or replayed and was not acknowledged
//! may be in the sidecar's journal or still in the spool file, which the
//! sidecar drains: it is reported *possibly* lost (`writer_panic_unconfirmed`). The writer is not
//! restarted: a panic is a bug, and the state it leaves (what was written,
//! acked or spooled) cannot be trusted; a caller that hears of it can act,
//! one whose events are silently resent or lost cannot.

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use scada_core::frame::HEADER_LEN;
use scada_core::spool::LossReason;

use super::fault;
use super::inflight::{Batch, InFlight};
use super::link::{Backoff, Link, Readable};
use super::outbox::{WriterFailure, WriterState, HIGH_WATER_BYTES};
use super::spool::Spool;
use super::stats::Stats;
use super::{sys, Shared};

/// Bytes read from the spool per replayed chunk.
const REPLAY_CHUNK: usize = 256 * 1024;
/// Upper bound for any sleep, so timers are re-evaluated regularly.
const MAX_SLEEP: Duration = Duration::from_millis(250);

/// The writer thread's body: runs the writer and catches a panic, which
/// marks the transport failed (see the module documentation).
pub fn run(shared: Arc<Shared>) {
    let for_panic = shared.clone();
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || Writer::new(shared).run())) {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into());
        on_panic(&for_panic, &message);
    }
}

/// What only the writer's memory held is gone with it: the outbox too, since
/// nobody will take it any more. The spool file stays on disk (its lock went
/// with the writer, a stale tail was cut as the spool was dropped), so the
/// sidecar drains it: replayed events that were not acknowledged are either
/// still in it or were sent, which is why unacknowledged events are only
/// possibly lost.
fn on_panic(shared: &Shared, message: &str) {
    let s = &shared.stats;
    // Decided and recorded under the outbox lock: the process, which gives
    // up on the writer under it too (`abandon_writer`), either already
    // reported what the writer had (`abandoned`: not again) or waits until
    // these losses are recorded, so it never exits between the two.
    let mut ob = shared.lock();
    let in_outbox = ob.take(Vec::new()).frames();
    // Calls and flush() are refused from now on.
    ob.failure = Some(WriterFailure::Panicked(message.to_string()));
    // Calls must now hear of the failure, not of a stale "no destination".
    shared.no_destination.store(false, Ordering::Relaxed);
    let held = s.held.swap(0, Ordering::Relaxed);
    let unacked = s.unacked.swap(0, Ordering::Relaxed);
    let (held, unacked) = if ob.abandoned {
        (0, 0)
    } else {
        (held, unacked)
    };
    s.connected.store(0, Ordering::Relaxed);
    Stats::add(&s.errors, 1);
    shared.set_last_error(format!("writer thread panicked: {message}"));
    if in_outbox + held > 0 {
        shared.report_loss(
            in_outbox + held,
            LossReason::WriterPanic,
            format!("the writer thread panicked ({message}) holding them in memory"),
        );
    }
    if unacked > 0 {
        shared.report_loss(
            unacked,
            LossReason::WriterPanicUnconfirmed,
            format!("the writer thread panicked ({message}) before the sidecar acknowledged them; they may be in its journal or still in the spool file"),
        );
    }
    // Only once the losses are in the ledger: process exit stops waiting
    // for an exited writer and logs the ledger one last time, and a reader
    // of `writer_panics` finds the losses already counted.
    ob.writer = WriterState::Exited;
    ob.flush_done = ob.flush_requested;
    drop(ob);
    Stats::add(&s.writer_panics, 1);
    shared.flushed.notify_all();
}

pub struct Writer {
    shared: Arc<Shared>,
    link: Link,
    inflight: InFlight,
    spool: Spool,
    /// Events that fit neither in flight nor in the spool; nothing more is
    /// taken from the outbox until they are placed, so callers' overflow
    /// policy applies to the rest. Counted in `Stats::held`, which also
    /// counts a batch from the moment it leaves the outbox until it is placed.
    held: Option<Batch>,
    /// When to try the spool again for `held`.
    spool_retry: Backoff,
    /// When to try replaying again after a read error.
    replay_retry: Backoff,
    /// The last event id given out.
    seq: u64,
    spare: Vec<Vec<u8>>,
    /// Highest flush ticket included in what was taken from the outbox.
    flush_taken: u64,
    flush_published: u64,
    shutdown_deadline: Option<Instant>,
}

impl Writer {
    pub fn new(shared: Arc<Shared>) -> Self {
        let cfg = &shared.config;
        let now = Instant::now();
        Self {
            link: Link::new(
                cfg.socket.clone(),
                shared.origin,
                shared.pid,
                cfg.connect_timeout,
            ),
            inflight: InFlight::default(),
            spool: Spool::new(
                &cfg.spool_dir,
                shared.origin,
                shared.pid,
                cfg.spool_max_bytes,
            ),
            held: None,
            spool_retry: Backoff::new(now),
            replay_retry: Backoff::new(now),
            seq: 0,
            spare: Vec::new(),
            flush_taken: 0,
            flush_published: 0,
            shutdown_deadline: None,
            shared,
        }
    }

    pub fn run(mut self) {
        loop {
            let _ = fault::check("writer.loop");
            let shutting_down = self.take_due_batch();
            if shutting_down && self.shutdown_deadline.is_none() {
                self.shutdown_deadline = Some(Instant::now() + self.shared.config.shutdown_timeout);
            }
            self.upkeep();
            self.publish_flushes();
            if let Some(deadline) = self.shutdown_deadline {
                let done = self.outbox_empty() && self.settled();
                if done || Instant::now() >= deadline {
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
        self.shared.lock().is_empty()
    }

    /// Nothing in memory: everything taken is acknowledged or spooled.
    fn settled(&self) -> bool {
        self.inflight.is_empty() && self.held.is_none()
    }

    fn has_work(&self) -> bool {
        self.held.is_some() || self.spool.has_pending() || !self.inflight.is_empty()
    }

    /// Room in flight for `n` more bytes.
    fn can_send(&self, n: usize) -> bool {
        !self.link.is_down()
            && self.inflight.bytes() + n <= self.shared.config.max_unacked_bytes.max(n)
    }

    /// Gives each frame of a batch taken from the outbox its id.
    fn number(&mut self, bytes: &mut [u8]) {
        let mut at = 0;
        while at + HEADER_LEN <= bytes.len() {
            let body = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
            let end = (at + HEADER_LEN + body as usize).min(bytes.len());
            self.seq += 1;
            // Only complete event and samples frames enter the outbox.
            let _ = scada_core::event::set_seq(&mut bytes[at..end], self.seq);
            at = end;
        }
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
        let batch = if !ob.is_empty()
            && (flush_wanted || shutdown || due || ob.bytes() >= HIGH_WATER_BYTES)
        {
            self.flush_taken = ob.flush_requested;
            let taken = ob.take(spare);
            // Counted as held before the lock is released: a reader of the
            // stats never finds these events in neither place.
            Stats::add(&self.shared.stats.held, taken.frames());
            drop(ob);
            let (bytes, frames) = taken.into_batch();
            Some(Batch { bytes, frames })
        } else {
            if ob.is_empty() {
                self.flush_taken = ob.flush_requested;
            }
            drop(ob);
            self.recycle(spare);
            None
        };
        if let Some(mut batch) = batch {
            self.number(&mut batch.bytes);
            if self.link.is_down() {
                self.connect();
            }
            self.place(batch);
        }
        shutdown
    }

    /// Sends or spools a batch counted in `Stats::held`; holds it if neither
    /// can take it.
    fn place(&mut self, batch: Batch) {
        if !self.spool.has_pending() && self.can_send(batch.bytes.len()) {
            let frames = batch.frames;
            self.send(batch);
            Stats::sub(&self.shared.stats.held, frames);
        } else {
            self.spool_batch(batch);
        }
    }

    fn send(&mut self, batch: Batch) {
        Stats::add(&self.shared.stats.unacked, batch.frames);
        self.inflight.push(batch);
        self.write_socket();
    }

    /// Keeps a batch already counted in `Stats::held` in memory.
    fn hold(&mut self, batch: Batch) {
        match &mut self.held {
            Some(held) => {
                held.bytes.extend_from_slice(&batch.bytes);
                held.frames += batch.frames;
            }
            None => self.held = Some(batch),
        }
    }

    /// Spools a batch counted in `Stats::held`; holds it if that fails.
    fn spool_batch(&mut self, batch: Batch) {
        match self.spool.append(&batch.bytes) {
            Ok(()) => {
                Stats::add(&self.shared.stats.spooled, batch.frames);
                Stats::add(&self.shared.stats.spool_pending, batch.frames);
                Stats::sub(&self.shared.stats.held, batch.frames);
                self.spool_retry.reset();
                self.recycle(batch.bytes);
            }
            Err(e) => {
                self.error(&format!("spool {}", self.spool.path().display()), &e);
                self.spool_retry.failed(Instant::now());
                self.hold(batch);
            }
        }
    }

    /// Writes what is in flight while the socket takes it (never waits).
    fn write_socket(&mut self) {
        if !self.link.is_up() {
            return;
        }
        let link = &self.link;
        if let Err(e) = self.inflight.write_with(|b| link.write(b)) {
            self.lose_connection("write to sidecar", &e);
        }
    }

    fn connect(&mut self) {
        if let Err(e) = self.link.try_connect(Instant::now()) {
            self.error(&format!("connect {}", self.link.socket().display()), &e);
        }
    }

    /// Drops the connection; what it left unacknowledged goes back to the
    /// front of the spool (it is older than anything spooled), or is held.
    fn lose_connection(&mut self, what: &str, e: &io::Error) {
        self.error(what, e);
        self.link.drop_connection(Instant::now());
        self.shared.stats.connected.store(0, Ordering::Relaxed);
        self.unacked_to_spool();
    }

    fn unacked_to_spool(&mut self) {
        let batches = self.inflight.take_unacked();
        if batches.is_empty() {
            return;
        }
        let frames: u64 = batches.iter().map(|b| b.frames).sum();
        let slices: Vec<&[u8]> = batches.iter().map(|b| &b.bytes[..]).collect();
        // Each outcome counts the events in their new place before they
        // leave `unacked`.
        match self.spool.prepend(&slices) {
            Ok(()) => {
                Stats::add(&self.shared.stats.spooled, frames);
                Stats::add(&self.shared.stats.spool_pending, frames);
                Stats::sub(&self.shared.stats.unacked, frames);
            }
            Err(e) => {
                self.error("spool unacknowledged events", &e);
                self.spool_retry.failed(Instant::now());
                Stats::add(&self.shared.stats.held, frames);
                Stats::sub(&self.shared.stats.unacked, frames);
                // Older than anything held: they go in front of it.
                let mut all = Batch {
                    bytes: Vec::with_capacity(slices.iter().map(|s| s.len()).sum()),
                    frames: 0,
                };
                for b in &batches {
                    all.bytes.extend_from_slice(&b.bytes);
                    all.frames += b.frames;
                }
                if let Some(held) = self.held.take() {
                    all.bytes.extend_from_slice(&held.bytes);
                    all.frames += held.frames;
                }
                self.hold(all);
            }
        }
    }

    fn on_ack(&mut self, acked: u64) {
        match self.inflight.ack(acked) {
            Ok(released) => {
                Stats::sub(&self.shared.stats.unacked, released.frames);
                Stats::add(&self.shared.stats.sent, released.frames);
                for b in released.buffers {
                    self.recycle(b);
                }
            }
            Err(bad) => {
                let e = io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the sidecar acknowledged {} frames, only {} were written",
                        bad.acked, bad.written
                    ),
                );
                self.lose_connection("read from sidecar", &e);
            }
        }
    }

    fn upkeep(&mut self) {
        let now = Instant::now();
        if self.link.is_down() && self.has_work() {
            self.connect();
        }
        if let Err(e) = self.link.check_handshake(now) {
            self.lose_connection("connect", &e);
        }
        if self.held.is_some() && (self.link.is_up() || self.spool_retry.due(now)) {
            if let Some(batch) = self.held.take() {
                self.place(batch);
            }
        }
        self.write_socket();
        self.replay();
        self.publish_destination();
    }

    /// Callers refuse `reject` events while events are held and no
    /// connection can take them.
    fn publish_destination(&self) {
        let none = self.held.is_some() && !self.link.is_up();
        if self.shared.no_destination.load(Ordering::Relaxed) != none {
            self.shared.no_destination.store(none, Ordering::Relaxed);
        }
    }

    /// Moves spooled batches, oldest first, in flight while the connection keeps up.
    fn replay(&mut self) {
        let max = self.shared.config.max_unacked_bytes;
        while self.link.is_up()
            && !self.inflight.has_queued()
            && self.spool.has_pending()
            && self.inflight.retained_bytes() < max
            && self.replay_retry.due(Instant::now())
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
                    self.replay_retry.reset();
                    self.send(Batch {
                        bytes: buf,
                        frames: n,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    self.recycle(buf);
                    self.error("replay spool", &e);
                    let bytes = self.spool.skip_corrupt();
                    let lost = self.shared.stats.spool_pending.swap(0, Ordering::Relaxed);
                    self.shared.report_loss(
                        lost,
                        LossReason::NoDestination,
                        format!(
                            "{} bytes of the spool file {} could not be read back ({e})",
                            bytes,
                            self.spool.path().display()
                        ),
                    );
                }
                Err(e) => {
                    self.recycle(buf);
                    self.error("replay spool", &e);
                    self.replay_retry.failed(Instant::now());
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
        let mut wake_at = now + MAX_SLEEP;
        {
            let mut ob = self.shared.lock();
            let flush_wanted = ob.flush_requested > self.flush_taken;
            if self.held.is_none() && (ob.shutdown && !ob.is_empty() || flush_wanted) {
                return;
            }
            match ob.first_at {
                Some(first) if self.held.is_none() => {
                    let due = first + self.shared.config.linger;
                    if due <= now || ob.bytes() >= HIGH_WATER_BYTES {
                        return;
                    }
                    wake_at = wake_at.min(due);
                    ob.writer = WriterState::Lingering;
                }
                _ => ob.writer = WriterState::Idle,
            }
        }
        if let Some(t) = self.link.next_timer(self.has_work()) {
            wake_at = wake_at.min(t);
        }
        if self.held.is_some() {
            wake_at = wake_at.min(self.spool_retry.next_at());
        }
        if self.link.is_up() && self.spool.has_pending() {
            wake_at = wake_at.min(self.replay_retry.next_at());
        }
        if let Some(deadline) = self.shutdown_deadline {
            wake_at = wake_at.min(deadline);
        }

        let mut fds = [
            sys::pollfd(self.shared.wake.raw(), libc::POLLIN),
            sys::pollfd(-1, 0),
        ];
        if let Some((fd, events)) = self.link.poll_fd(self.inflight.has_queued()) {
            fds[1] = sys::pollfd(fd, events);
        }
        let polled = sys::poll(&mut fds, Some(wake_at.saturating_duration_since(now)));
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
        let handshaking = !self.link.is_up();
        match self.link.read() {
            Ok(Readable::Nothing) => {}
            Ok(Readable::Connected) => {
                Stats::add(&self.shared.stats.connects, 1);
                self.shared.stats.connected.store(1, Ordering::Relaxed);
                self.publish_destination();
            }
            Ok(Readable::Acked(n)) => self.on_ack(n),
            Err(e) => {
                let what = if handshaking {
                    "connect"
                } else {
                    "read from sidecar"
                };
                self.lose_connection(what, &e);
            }
        }
    }

    /// Shutdown: everything in memory goes to the spool (unacknowledged
    /// events first, then what is held, then the rest of the outbox); what
    /// the spool cannot take is lost and reported, unless the process gave
    /// up waiting and reported it already (`abandoned`). Callers are released.
    fn finish(&mut self) {
        if !self.inflight.is_empty() {
            self.unacked_to_spool();
        }
        self.link.drop_connection(Instant::now());
        self.shared.stats.connected.store(0, Ordering::Relaxed);
        let taken = {
            let mut ob = self.shared.lock();
            let taken = ob.take(Vec::new());
            Stats::add(&self.shared.stats.held, taken.frames());
            taken
        };
        let (rest, frames) = taken.into_batch();
        if frames > 0 {
            let mut batch = Batch {
                bytes: rest,
                frames,
            };
            self.number(&mut batch.bytes);
            self.hold(batch);
        }
        if let Some(batch) = self.held.take() {
            let s = &self.shared.stats;
            match self.spool.append(&batch.bytes) {
                Ok(()) => {
                    Stats::add(&s.spooled, batch.frames);
                    Stats::add(&s.spool_pending, batch.frames);
                    Stats::sub(&s.held, batch.frames);
                }
                Err(e) => {
                    self.error("spool at shutdown", &e);
                    // Decided and recorded under the outbox lock, under
                    // which the process gives up on the writer: it either
                    // reported these already (`abandoned`) or waits until
                    // their loss record is written. Counted once, never in
                    // no record.
                    let ob = self.shared.lock();
                    if !ob.abandoned {
                        Stats::sub(&s.held, batch.frames);
                        self.shared.report_loss(
                            batch.frames,
                            LossReason::NoDestination,
                            format!(
                                "the process exited while the sidecar ({}) was unreachable and the spool ({}) could not take them: {e}",
                                self.link.socket().display(),
                                self.spool.path().display()
                            ),
                        );
                    }
                    drop(ob);
                }
            }
        }
        if let Err(e) = self.spool.close() {
            self.error("close spool", &e);
        }
        self.shared.no_destination.store(false, Ordering::Relaxed);
        let mut ob = self.shared.lock();
        ob.writer = WriterState::Exited;
        ob.flush_done = ob.flush_requested;
        drop(ob);
        self.shared.flushed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use scada_core::frame::{FrameBuilder, FrameKind};

    use super::super::outbox::Overflow;
    use super::super::TransportConfig;
    use super::*;

    /// A transport whose socket leads nowhere and whose spool is in a fresh
    /// directory, with `frames` events queued.
    fn transport(name: &str, frames: usize) -> (Arc<Shared>, PathBuf) {
        let dir = std::env::temp_dir().join(format!("scada-writer-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let config = TransportConfig {
            socket: dir.join("nowhere.sock"),
            spool_dir: dir.join("spool"),
            buffer_bytes: 1 << 20,
            spool_max_bytes: 1 << 20,
            linger: Duration::ZERO,
            connect_timeout: Duration::from_millis(100),
            max_unacked_bytes: 1 << 20,
            shutdown_timeout: Duration::from_millis(100),
        };
        let shared = Arc::new(Shared::for_test(config).unwrap());
        let mut ob = shared.lock();
        ob.writer = WriterState::Busy;
        for _ in 0..frames {
            let mut f = Vec::new();
            let b = FrameBuilder::begin(&mut f, FrameKind::Event);
            f.extend_from_slice(b"{}");
            b.finish(&mut f).unwrap();
            ob.push(&f, 1 << 20, Overflow::Reject);
        }
        drop(ob);
        (shared, dir)
    }

    /// A writer at shutdown holding 3 events the spool refused (ENOSPC).
    fn shutting_down_holding_3(name: &str) -> (Arc<Shared>, PathBuf, Writer) {
        let (shared, dir) = transport(name, 3);
        fault::set_local("spool.open=errno:28");
        let mut w = Writer::new(shared.clone());
        shared.lock().shutdown = true;
        assert!(w.take_due_batch(), "shutdown seen");
        assert!(w.held.is_some(), "the spool refused: the writer holds them");
        (shared, dir, w)
    }

    fn losses(shared: &Shared) -> Vec<(u64, LossReason)> {
        shared
            .losses
            .take()
            .iter()
            .map(|l| (l.events, l.reason))
            .collect()
    }

    /// Only what the writer's memory alone held is surely gone with a panic;
    /// unacknowledged events may be in the sidecar's journal (or, replayed,
    /// still in the spool file): possibly lost, and said so.
    #[test]
    fn a_panic_reports_only_what_memory_alone_held_as_lost() {
        let (shared, dir) = transport("panic", 3);
        Stats::add(&shared.stats.held, 2);
        Stats::add(&shared.stats.unacked, 4);
        // What the process sees while each loss is being recorded: it must
        // still wait for the writer, or it could exit (and log its ledger)
        // before the loss is in it.
        let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let (seen2, shared2) = (seen.clone(), shared.clone());
        fault::on_local("loss.create", move || {
            let process_can_look = shared2.outbox.try_lock().is_ok();
            let panics = Stats::get(&shared2.stats.writer_panics);
            seen2.borrow_mut().push((process_can_look, panics));
        });
        on_panic(&shared, "boom");
        assert_eq!(
            *seen.borrow(),
            [(false, 0), (false, 0)],
            "the process waits on the outbox lock while each loss is recorded"
        );
        assert_eq!(shared.lock().writer, WriterState::Exited);
        assert_eq!(Stats::get(&shared.stats.writer_panics), 1);
        assert_eq!(
            losses(&shared),
            [
                (5, LossReason::WriterPanic),
                (4, LossReason::WriterPanicUnconfirmed)
            ]
        );
        let s = &shared.stats;
        assert_eq!((Stats::get(&s.lost), Stats::get(&s.possibly_lost)), (5, 4));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The process gives up waiting for a writer that holds events it cannot
    /// place (no sidecar, the spool refuses) and reports them; the writer
    /// then finishes and fails to spool them: they are not reported again.
    #[test]
    fn a_writer_the_process_gave_up_on_reports_nothing_again() {
        let (shared, dir, mut w) = shutting_down_holding_3("abandoned");
        shared.abandon_writer(shared.lock());
        w.finish();
        assert_eq!(
            losses(&shared),
            [(3, LossReason::ShutdownTimeoutUnconfirmed)],
            "reported once, by the process"
        );
        let s = &shared.stats;
        assert_eq!((Stats::get(&s.lost), Stats::get(&s.possibly_lost)), (0, 3));
        assert_eq!(shared.lock().writer, WriterState::Exited);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Events named by the loss records in `dir` (what the sidecar counts
    /// in `php_lost_events`).
    fn recorded(dir: &std::path::Path) -> u64 {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name();
                scada_core::spool::LossRecord::parse(name.to_str()?)
            })
            .map(|r| r.events)
            .sum()
    }

    /// The process gives up on a writer that holds and has unacknowledged
    /// events and reports them; the writer then panics (in `finish()`, say):
    /// those events are not reported, counted or recorded a second time.
    #[test]
    fn a_writer_that_panics_after_the_process_gave_up_reports_nothing_again() {
        let (shared, dir, _writer) = shutting_down_holding_3("abandoned-panic");
        Stats::add(&shared.stats.unacked, 2);
        shared.abandon_writer(shared.lock());
        on_panic(&shared, "boom in finish");
        assert_eq!(
            losses(&shared),
            [(5, LossReason::ShutdownTimeoutUnconfirmed)],
            "reported once, by the process"
        );
        let s = &shared.stats;
        assert_eq!((Stats::get(&s.lost), Stats::get(&s.possibly_lost)), (0, 5));
        assert_eq!(recorded(&shared.config.spool_dir), 5, "one record each");
        assert_eq!(Stats::get(&s.writer_panics), 1);
        assert_eq!(shared.lock().writer, WriterState::Exited);
        fault::set_local("");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A finishing writer that cannot spool what it holds reports it; the
    /// process reaching its shutdown timeout at that very moment must find
    /// the events either still with the writer (it reports them) or already
    /// in a loss record: when it returns (and the process may exit), every
    /// event is in a record.
    #[test]
    fn a_process_giving_up_while_the_writer_reports_finds_every_event_recorded() {
        let (shared, dir, mut w) = shutting_down_holding_3("abandon-race");
        // The process's timeout strikes as the writer writes the loss record.
        let at_exit = std::rc::Rc::new(std::cell::Cell::new(None));
        let (at_exit2, shared2) = (at_exit.clone(), shared.clone());
        fault::on_local("loss.create", move || {
            if at_exit2.get().is_some() {
                return;
            }
            // Only if the process can take the lock now can it give up now;
            // otherwise it waits for the writer's record.
            if let Ok(ob) = shared2.outbox.try_lock() {
                shared2.abandon_writer(ob);
                at_exit2.set(Some(recorded(&shared2.config.spool_dir)));
            }
        });
        w.finish();
        if let Some(recorded_at_exit) = at_exit.get() {
            assert_eq!(
                recorded_at_exit, 3,
                "the process gave up and could exit with events in no record"
            );
        }
        assert_eq!(recorded(&shared.config.spool_dir), 3);
        assert_eq!(losses(&shared), [(3, LossReason::NoDestination)]);
        fault::set_local("");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Events still queued when the process gives up never reach the writer:
    /// surely lost. Without the process giving up, the writer that cannot
    /// spool at exit reports what it held as lost, once.
    #[test]
    fn queued_events_are_lost_when_the_process_gives_up_and_a_finishing_writer_reports_its_own() {
        let (shared, dir) = transport("queued", 2);
        Stats::add(&shared.stats.unacked, 1);
        shared.abandon_writer(shared.lock());
        assert_eq!(
            losses(&shared),
            [
                (2, LossReason::ShutdownTimeout),
                (1, LossReason::ShutdownTimeoutUnconfirmed)
            ]
        );
        assert!(shared.lock().is_empty(), "taken away from the writer");

        let (shared, dir2) = transport("queued2", 3);
        fault::set_local("spool.open=errno:28");
        let mut w = Writer::new(shared.clone());
        shared.lock().shutdown = true;
        w.take_due_batch();
        w.finish();
        assert_eq!(losses(&shared), [(3, LossReason::NoDestination)]);
        assert_eq!(Stats::get(&shared.stats.lost), 3);
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&dir2);
    }
}
