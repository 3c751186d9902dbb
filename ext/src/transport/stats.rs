//! Per-process counters, shared by callers and the writer thread.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Debug, Default)]
pub struct Stats {
    /// Calls whose event was queued (the call returned true).
    pub accepted: AtomicU64,
    /// Calls refused with an exception (invalid input).
    pub invalid: AtomicU64,
    /// Events the sidecar acknowledged as durable.
    pub sent: AtomicU64,
    /// Events written to this process's spool file.
    pub spooled: AtomicU64,
    /// Spooled events later replayed to the sidecar.
    pub replayed: AtomicU64,
    /// Calls that returned false because the in-process buffer was full (`reject`).
    pub dropped_rejected: AtomicU64,
    /// Older events evicted to make room for new ones (`drop_oldest`).
    pub dropped_evicted: AtomicU64,
    /// Calls that returned false because neither the sidecar nor the spool
    /// could take events (`reject` events while there is no destination).
    pub dropped_no_destination: AtomicU64,
    /// Accepted events surely lost (no destination at exit, shutdown timeout,
    /// writer panic), each reported in PHP's log and a loss record.
    pub lost: AtomicU64,
    /// Accepted events possibly lost: the writer stopped (panic, shutdown
    /// timeout) while they were unacknowledged or being placed, so they may
    /// have reached the journal or the spool file. Reported like `lost`, under
    /// the `*_unconfirmed` reasons.
    pub possibly_lost: AtomicU64,
    /// Panics of the writer thread (the transport is then failed).
    pub writer_panics: AtomicU64,
    /// Transport failures: connect, write, spool I/O.
    pub errors: AtomicU64,
    /// Successful connections to the sidecar.
    pub connects: AtomicU64,
    /// Gauge: events written to the socket and not yet acknowledged.
    pub unacked: AtomicU64,
    /// Gauge: events the writer took from the outbox and holds in memory:
    /// being placed, or ones that neither the socket nor the spool took.
    /// An event leaves it only once it is counted elsewhere (unacked,
    /// spooled, lost), so a reader never misses one.
    pub held: AtomicU64,
    /// Gauge: events in the spool file waiting for replay.
    pub spool_pending: AtomicU64,
    /// Gauge: 1 while connected to the sidecar.
    pub connected: AtomicU64,
}

impl Stats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub fn sub(counter: &AtomicU64, n: u64) {
        // Gauges never go below zero even if accounting races at shutdown.
        let _ = counter.fetch_update(Relaxed, Relaxed, |v| Some(v.saturating_sub(n)));
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Relaxed)
    }
}
