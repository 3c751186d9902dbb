//! Getting encoded events out of the PHP process without ever waiting.
//!
//! ```text
//! caller ──push──► Outbox (mutex, memcpy) ──swap──► writer thread
//!                                                   ├─► Unix socket to the sidecar (acks release events)
//!                                                   └─► spool file when the sidecar is absent or stalled
//! ```
//! One [`Transport`] exists per socket path and per process generation
//! (see [`crate::fork`]); all `ScadaBroadcastingService` objects share it.
//!
//! The writer ([`writer`]) coordinates three parts: the [`link`] to the
//! sidecar, the events [`inflight`] on it, and the [`spool`] file. Accepted
//! events that can be kept nowhere are counted and reported ([`loss`]).

mod connection;
pub mod fault;
mod inflight;
mod link;
pub mod loss;
pub mod outbox;
mod spool;
pub mod stats;
mod sys;
mod writer;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use scada_core::spool::LossReason;
use scada_core::EventId;

use crate::fork;
use loss::{Ledger, Loss};
use outbox::{Outbox, Overflow, Pushed, WriterFailure, WriterState};
use stats::Stats;

/// Transport settings (from php.ini, the environment and constructor options).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportConfig {
    pub socket: PathBuf,
    pub spool_dir: PathBuf,
    /// In-process buffer budget.
    pub buffer_bytes: usize,
    /// Spool file budget for this process.
    pub spool_max_bytes: u64,
    /// How long the writer waits for more events before writing a batch.
    pub linger: Duration,
    pub connect_timeout: Duration,
    /// Bytes in memory on the way to the sidecar (queued or unacknowledged)
    /// before new events go to the spool.
    pub max_unacked_bytes: usize,
    /// How long process shutdown waits for the sidecar before spooling the rest.
    pub shutdown_timeout: Duration,
}

/// State shared by callers and the writer thread of one transport.
#[derive(Debug)]
pub struct Shared {
    pub config: TransportConfig,
    pub generation: u64,
    pub origin: u64,
    pub pid: u32,
    outbox: Mutex<Outbox>,
    /// Signalled when flush tickets complete or the writer exits.
    flushed: Condvar,
    wake: sys::EventFd,
    pub stats: Stats,
    last_error: Mutex<String>,
    /// Set by the writer while it holds events that neither the sidecar nor
    /// the spool can take: `reject` events are then refused at the call.
    pub no_destination: AtomicBool,
    /// Losses waiting to be logged by the PHP thread.
    pub losses: Ledger,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Outbox> {
        // A poisoned lock only means a panic elsewhere; the data is still usable.
        self.outbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_last_error(&self, msg: String) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = msg;
    }

    /// Counts `events` accepted events as lost (or, for the `*_unconfirmed`
    /// reasons, possibly lost) and reports them: a loss record now, a line in
    /// PHP's log from the PHP thread soon.
    pub fn report_loss(&self, events: u64, reason: LossReason, detail: String) {
        let counter = if reason.certain() {
            &self.stats.lost
        } else {
            &self.stats.possibly_lost
        };
        Stats::add(counter, events);
        self.losses.report(
            &self.config.spool_dir,
            self.origin,
            self.pid,
            events,
            reason,
            detail,
        );
    }
}

impl Shared {
    /// The process stops waiting for its writer at exit: what is still in
    /// the outbox is taken away and reported lost; what the writer has (being
    /// placed, held, unacknowledged) is reported possibly lost, since it may
    /// yet place it before the process ends. Decided under the outbox lock
    /// (`abandoned`, the writer's gauges taken to zero), under which the
    /// writer decides whether it still reports what it could not place and
    /// writes that loss record: each event is in exactly one report, written
    /// before this returns and the process may exit.
    fn abandon_writer(&self, mut ob: MutexGuard<'_, Outbox>) {
        ob.abandoned = true;
        let queued = ob.take(Vec::new()).frames();
        // Taken, not read: a writer that panics or finishes later must not
        // find (and report) these events again.
        let with_writer = self.stats.held.swap(0, Ordering::Relaxed)
            + self.stats.unacked.swap(0, Ordering::Relaxed);
        drop(ob);
        let why = format!(
            "the writer thread had not finished {} ms after the process began to exit (shutdown_timeout_ms)",
            self.config.shutdown_timeout.as_millis()
        );
        if queued > 0 {
            self.report_loss(
                queued,
                LossReason::ShutdownTimeout,
                format!("{why}; they were still queued for it"),
            );
        }
        if with_writer > 0 {
            self.report_loss(
                with_writer,
                LossReason::ShutdownTimeoutUnconfirmed,
                format!("{why}; it had them (unacknowledged by the sidecar or not yet spooled) and may still have placed them"),
            );
        }
    }

    /// A transport's state without a writer thread (unit tests drive the
    /// writer on their own thread).
    #[cfg(test)]
    pub fn for_test(config: TransportConfig) -> Option<Self> {
        Some(Self {
            config,
            generation: 0,
            origin: 0xabc,
            pid: std::process::id(),
            outbox: Mutex::new(Outbox::new()),
            flushed: Condvar::new(),
            wake: sys::EventFd::new().ok()?,
            stats: Stats::default(),
            last_error: Mutex::new(String::new()),
            no_destination: AtomicBool::new(false),
            losses: Ledger::default(),
        })
    }
}

/// Why a call could not hand its event over at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportError {
    /// The writer thread failed (it panicked).
    WriterFailed(WriterFailure),
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::WriterFailed(why) => write!(
                f,
                "this process can no longer send events: {why}; what it held is reported as lost or possibly lost (stats()['lost'], stats()['possibly_lost'], PHP's error log)"
            ),
        }
    }
}

/// Why a transport could not be created.
#[derive(Debug)]
pub enum StartError {
    /// The eventfd that wakes the writer thread.
    EventFd(std::io::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::EventFd(e) => write!(f, "cannot create eventfd: {e}"),
        }
    }
}

/// Writes one line to PHP's error log (`error_log` ini, else the SAPI's log:
/// stderr for the CLI). PHP's logging is not thread-safe: PHP thread only.
fn php_log(message: &str) {
    unsafe extern "C" {
        // main/php.h: PHPAPI, exported by the PHP binary.
        fn php_log_err_with_severity(
            log_message: *const libc::c_char,
            syslog_type_int: libc::c_int,
        );
    }
    if let Ok(c) = std::ffi::CString::new(message.replace('\0', "\\0")) {
        // SAFETY: a valid C string, on the PHP thread, while PHP runs
        // (requests or MSHUTDOWN, before the core's ini entries go away).
        unsafe { php_log_err_with_severity(c.as_ptr(), libc::LOG_WARNING) }
    }
}

#[derive(Debug)]
pub struct Transport {
    shared: Arc<Shared>,
}

/// Transports of the current process generation.
static REGISTRY: Mutex<Vec<Arc<Transport>>> = Mutex::new(Vec::new());

/// A snapshot for `stats()`.
#[derive(Debug, Clone, Default)]
pub struct StatsSnapshot {
    pub pairs: Vec<(&'static str, u64)>,
    pub last_error: String,
    pub origin: u64,
    pub socket: String,
    pub spool_dir: String,
}

impl Transport {
    /// The transport for `config` in this process generation, created on first use.
    pub fn get(config: &TransportConfig) -> Result<Arc<Transport>, StartError> {
        fork::install();
        let generation = fork::generation();
        let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        if reg.iter().any(|t| t.shared.generation != generation) {
            // Inherited across fork: never touch or drop the parent's state.
            for t in std::mem::take(&mut *reg) {
                if t.shared.generation == generation {
                    reg.push(t);
                } else {
                    std::mem::forget(t);
                }
            }
        }
        if let Some(t) = reg.iter().find(|t| {
            t.shared.config.socket == config.socket && t.shared.config.spool_dir == config.spool_dir
        }) {
            return Ok(t.clone());
        }
        static FAILPOINTS: Once = Once::new();
        FAILPOINTS.call_once(fault::configure_from_env);
        let wake = sys::EventFd::new().map_err(StartError::EventFd)?;
        // The eventfd must not stay open in a forked child.
        std::mem::forget(fork::FdRegistration::new(wake.raw()));
        let t = Arc::new(Transport {
            shared: Arc::new(Shared {
                config: config.clone(),
                generation,
                origin: fork::new_origin(),
                pid: std::process::id(),
                outbox: Mutex::new(Outbox::new()),
                flushed: Condvar::new(),
                wake,
                stats: Stats::default(),
                last_error: Mutex::new(String::new()),
                no_destination: AtomicBool::new(false),
                losses: Ledger::default(),
            }),
        });
        reg.push(t.clone());
        Ok(t)
    }

    pub fn generation(&self) -> u64 {
        self.shared.generation
    }

    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// The id to encode an event with: its sequence number is given once the
    /// event is accepted (by the writer, in queue order), so refused calls
    /// leave no gaps.
    #[inline]
    pub fn unnumbered_id(&self) -> EventId {
        EventId {
            origin: self.shared.origin,
            seq: 0,
        }
    }

    /// Queues one encoded frame. Never blocks on I/O: at most a short mutex
    /// and, when the writer sleeps, one eventfd write. `Ok(false)`: refused
    /// and counted (buffer full under `reject`, or no destination).
    pub fn submit(&self, frame: &[u8], overflow: Overflow) -> Result<bool, TransportError> {
        let shared = &self.shared;
        if shared.losses.has_pending() {
            self.log_losses();
        }
        if overflow == Overflow::Reject && shared.no_destination.load(Ordering::Relaxed) {
            Stats::add(&shared.stats.dropped_no_destination, 1);
            return Ok(false);
        }
        let mut ob = shared.lock();
        if let Some(why) = &ob.failure {
            return Err(TransportError::WriterFailed(why.clone()));
        }
        if ob.writer == WriterState::NotStarted && !self.start_writer(&mut ob) {
            drop(ob);
            Stats::add(&shared.stats.dropped_rejected, 1);
            return Ok(false);
        }
        if ob.writer == WriterState::Exited {
            drop(ob);
            Stats::add(&shared.stats.dropped_rejected, 1);
            return Ok(false);
        }
        let pushed = ob.push(frame, shared.config.buffer_bytes, overflow);
        drop(ob);
        match pushed {
            Pushed::Queued { wake, evicted } => {
                if wake {
                    shared.wake.signal();
                }
                if evicted > 0 {
                    Stats::add(&shared.stats.dropped_evicted, evicted);
                }
                Stats::add(&shared.stats.accepted, 1);
                Ok(true)
            }
            Pushed::Refused => {
                Stats::add(&shared.stats.dropped_rejected, 1);
                Ok(false)
            }
        }
    }

    /// Writes pending losses to PHP's log (PHP thread only).
    pub fn log_losses(&self) -> Vec<Loss> {
        let losses = self.shared.losses.take();
        for l in &losses {
            php_log(&l.message());
        }
        losses
    }

    /// The writer's failure, if it failed.
    pub fn failure(&self) -> Option<TransportError> {
        self.shared
            .lock()
            .failure
            .clone()
            .map(TransportError::WriterFailed)
    }

    fn start_writer(&self, ob: &mut Outbox) -> bool {
        let shared = self.shared.clone();
        let spawned = sys::with_signals_blocked(|| {
            std::thread::Builder::new()
                .name("scada-writer".into())
                .stack_size(256 * 1024)
                .spawn(move || writer::run(shared))
        });
        match spawned {
            // Detached on purpose: a forked child must never join or drop a
            // handle to a thread that only exists in its parent.
            Ok(_handle) => {
                ob.writer = WriterState::Busy;
                true
            }
            Err(e) => {
                ob.writer = WriterState::Exited;
                Stats::add(&self.shared.stats.errors, 1);
                self.shared
                    .set_last_error(format!("cannot start the writer thread: {e}"));
                false
            }
        }
    }

    /// Waits until everything queued so far is acknowledged by the sidecar or
    /// in the spool file, at most `timeout`. True when it is.
    pub fn flush(&self, timeout: Duration) -> Result<bool, TransportError> {
        let shared = &self.shared;
        let deadline = Instant::now() + timeout;
        let mut ob = shared.lock();
        if let Some(why) = &ob.failure {
            return Err(TransportError::WriterFailed(why.clone()));
        }
        match ob.writer {
            WriterState::NotStarted | WriterState::Exited => return Ok(ob.is_empty()),
            _ => {}
        }
        ob.flush_requested += 1;
        let ticket = ob.flush_requested;
        let wake = matches!(ob.writer, WriterState::Idle | WriterState::Lingering);
        if wake {
            ob.writer = WriterState::Busy;
        }
        drop(ob);
        if wake {
            shared.wake.signal();
        }
        let mut ob = shared.lock();
        while ob.flush_done < ticket && ob.writer != WriterState::Exited {
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            ob = shared
                .flushed
                .wait_timeout(ob, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        if let Some(why) = &ob.failure {
            return Err(TransportError::WriterFailed(why.clone()));
        }
        Ok(ob.flush_done >= ticket)
    }

    /// Stops the writer: delivers or spools everything, waiting at most the
    /// configured shutdown timeout (plus a small margin). If the writer has
    /// not finished by then, the process gives up on it
    /// ([`Shared::abandon_writer`]).
    pub fn shutdown(&self) {
        let shared = &self.shared;
        let mut ob = shared.lock();
        if matches!(ob.writer, WriterState::NotStarted | WriterState::Exited) {
            return;
        }
        ob.shutdown = true;
        drop(ob);
        shared.wake.signal();
        let deadline = Instant::now() + shared.config.shutdown_timeout + Duration::from_millis(200);
        let mut ob = shared.lock();
        while ob.writer != WriterState::Exited {
            let now = Instant::now();
            if now >= deadline {
                shared.abandon_writer(ob);
                return;
            }
            ob = shared
                .flushed
                .wait_timeout(ob, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let s = &self.shared.stats;
        let (buffered, writer_running) = {
            let ob = self.shared.lock();
            (
                ob.frames(),
                matches!(
                    ob.writer,
                    WriterState::Idle | WriterState::Lingering | WriterState::Busy
                ),
            )
        };
        let unacked = Stats::get(&s.unacked);
        let held = Stats::get(&s.held);
        let rejected = Stats::get(&s.dropped_rejected);
        let evicted = Stats::get(&s.dropped_evicted);
        let no_destination = Stats::get(&s.dropped_no_destination);
        let lost = Stats::get(&s.lost);
        let possibly_lost = Stats::get(&s.possibly_lost);
        StatsSnapshot {
            pairs: vec![
                ("accepted", Stats::get(&s.accepted)),
                ("sent", Stats::get(&s.sent)),
                ("buffered", buffered + unacked + held),
                ("queued", buffered),
                ("unacked", unacked),
                ("held", held),
                ("spooled", Stats::get(&s.spooled)),
                ("spool_pending", Stats::get(&s.spool_pending)),
                ("replayed", Stats::get(&s.replayed)),
                ("dropped", rejected + evicted + no_destination + lost),
                ("dropped_rejected", rejected),
                ("dropped_evicted", evicted),
                ("dropped_no_destination", no_destination),
                ("lost", lost),
                ("possibly_lost", possibly_lost),
                (
                    "no_destination",
                    self.shared.no_destination.load(Ordering::Relaxed) as u64,
                ),
                ("writer_panics", Stats::get(&s.writer_panics)),
                ("invalid", Stats::get(&s.invalid)),
                ("errors", Stats::get(&s.errors)),
                ("connects", Stats::get(&s.connects)),
                ("connected", Stats::get(&s.connected)),
                ("writer_running", writer_running as u64),
                ("pid", self.shared.pid as u64),
            ],
            last_error: self
                .shared
                .last_error
                .lock()
                .map(|e| e.clone())
                .unwrap_or_default(),
            origin: self.shared.origin,
            socket: self.shared.config.socket.display().to_string(),
            spool_dir: self.shared.config.spool_dir.display().to_string(),
        }
    }
}

/// Process exit (MSHUTDOWN): every transport of this generation delivers or
/// spools what it holds. Inherited transports are left alone.
pub fn shutdown_all() {
    let generation = fork::generation();
    let transports: Vec<Arc<Transport>> = {
        let reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        reg.iter()
            .filter(|t| t.shared.generation == generation)
            .cloned()
            .collect()
    };
    for t in transports {
        t.shutdown();
        t.log_losses();
    }
}
