//! Getting encoded events out of the PHP process without ever waiting.
//!
//! ```text
//! caller ──push──► Outbox (mutex, memcpy) ──swap──► writer thread
//!                                                   ├─► Unix socket to the sidecar (acks release events)
//!                                                   └─► spool file when the sidecar is absent or stalled
//! ```
//! One [`Transport`] exists per socket path and per process generation
//! (see [`crate::fork`]); all `ScadaBroadcastingService` objects share it.

mod connection;
pub mod outbox;
mod spool;
pub mod stats;
mod sys;
mod writer;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use scada_core::EventId;

use crate::fork;
use outbox::{Outbox, Overflow, Pushed, WriterState};
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
    seq: AtomicU64,
    outbox: Mutex<Outbox>,
    /// Signalled when flush tickets complete or the writer exits.
    flushed: Condvar,
    wake: sys::EventFd,
    pub stats: Stats,
    last_error: Mutex<String>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Outbox> {
        // A poisoned lock only means a panic elsewhere; the data is still usable.
        self.outbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_last_error(&self, msg: String) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = msg;
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
    pub fn get(config: &TransportConfig) -> Result<Arc<Transport>, String> {
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
        let wake = sys::EventFd::new().map_err(|e| format!("cannot create eventfd: {e}"))?;
        // The eventfd must not stay open in a forked child.
        std::mem::forget(fork::FdRegistration::new(wake.raw()));
        let t = Arc::new(Transport {
            shared: Arc::new(Shared {
                config: config.clone(),
                generation,
                origin: fork::new_origin(),
                pid: std::process::id(),
                seq: AtomicU64::new(0),
                outbox: Mutex::new(Outbox::new()),
                flushed: Condvar::new(),
                wake,
                stats: Stats::default(),
                last_error: Mutex::new(String::new()),
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

    /// A fresh event id.
    #[inline]
    pub fn next_id(&self) -> EventId {
        EventId {
            origin: self.shared.origin,
            seq: self.shared.seq.fetch_add(1, Ordering::Relaxed) + 1,
        }
    }

    /// Queues one encoded frame. Never blocks on I/O: at most a short mutex
    /// and, when the writer sleeps, one eventfd write.
    pub fn submit(&self, frame: &[u8], overflow: Overflow) -> bool {
        let shared = &self.shared;
        let mut ob = shared.lock();
        if ob.writer == WriterState::NotStarted && !self.start_writer(&mut ob) {
            drop(ob);
            Stats::add(&shared.stats.dropped_rejected, 1);
            return false;
        }
        if ob.writer == WriterState::Exited {
            drop(ob);
            Stats::add(&shared.stats.dropped_rejected, 1);
            return false;
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
                true
            }
            Pushed::Refused => {
                Stats::add(&shared.stats.dropped_rejected, 1);
                false
            }
        }
    }

    fn start_writer(&self, ob: &mut Outbox) -> bool {
        let shared = self.shared.clone();
        let spawned = sys::with_signals_blocked(|| {
            std::thread::Builder::new()
                .name("scada-writer".into())
                .stack_size(256 * 1024)
                .spawn(move || writer::Writer::new(shared).run())
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
    pub fn flush(&self, timeout: Duration) -> bool {
        let shared = &self.shared;
        let deadline = Instant::now() + timeout;
        let mut ob = shared.lock();
        match ob.writer {
            WriterState::NotStarted => return ob.buf.is_empty(),
            WriterState::Exited => return ob.buf.is_empty(),
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
                return false;
            }
            ob = shared
                .flushed
                .wait_timeout(ob, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        ob.flush_done >= ticket
    }

    /// Stops the writer: delivers or spools everything, waiting at most the
    /// configured shutdown timeout (plus a small margin).
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
                ob.frames,
                matches!(
                    ob.writer,
                    WriterState::Idle | WriterState::Lingering | WriterState::Busy
                ),
            )
        };
        let unacked = Stats::get(&s.unacked);
        let rejected = Stats::get(&s.dropped_rejected);
        let evicted = Stats::get(&s.dropped_evicted);
        StatsSnapshot {
            pairs: vec![
                ("accepted", Stats::get(&s.accepted)),
                ("sent", Stats::get(&s.sent)),
                ("buffered", buffered + unacked),
                ("queued", buffered),
                ("unacked", unacked),
                ("spooled", Stats::get(&s.spooled)),
                ("spool_pending", Stats::get(&s.spool_pending)),
                ("replayed", Stats::get(&s.replayed)),
                ("dropped", rejected + evicted),
                ("dropped_rejected", rejected),
                ("dropped_evicted", evicted),
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
    }
}
