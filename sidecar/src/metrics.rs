//! Counters shared by the pipeline stages (relaxed atomics), read by the
//! status endpoint.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// A relaxed atomic counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Relaxed);
    }
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn sub(&self, n: u64) {
        let _ = self
            .0
            .fetch_update(Relaxed, Relaxed, |v| Some(v.saturating_sub(n)));
    }
    pub fn set(&self, v: u64) {
        self.0.store(v, Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

impl Serialize for Counter {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.get())
    }
}

/// What ingest saw: connections, frames, refusals.
#[derive(Debug, Default, Serialize)]
pub struct IngestMetrics {
    pub connections_active: Counter,
    pub connections_total: Counter,
    /// Events accepted into the journal.
    pub events: Counter,
    pub bytes: Counter,
    /// Events already seen (same id): dropped, not delivered twice.
    pub duplicates: Counter,
    /// Well-formed frames with invalid content (bad channel, event name, payload).
    pub invalid_events: Counter,
    /// Connections closed for a broken frame (bad length, CRC, version, kind).
    pub protocol_errors: Counter,
    /// Frames refused before reading because their length is over the limit.
    pub oversized_frames: Counter,
    pub journal_errors: Counter,
    /// 1 while the journal's disk budget is full (ingest pauses).
    pub over_budget: Counter,
    /// Times ingest paused for the disk budget.
    pub budget_pauses: Counter,
    /// Orphaned spool files drained, and the events they held.
    pub spool_files: Counter,
    pub spool_events: Counter,
    /// Spool files that ended in a torn frame (the writer died mid-write).
    pub spool_torn: Counter,
    pub spool_errors: Counter,
}

/// One destination's progress.
#[derive(Debug, Default, Serialize)]
pub struct SinkMetrics {
    pub name: String,
    pub kind: &'static str,
    /// Events delivered (acknowledged by the destination).
    pub delivered: Counter,
    /// Messages sent (one per event and channel for Redis).
    pub messages: Counter,
    pub requests: Counter,
    /// Failed attempts that will be retried.
    pub retries: Counter,
    /// Events (or their channels) left to the throttle stage, which delivers
    /// an aggregate or the latest instead.
    pub throttled: Counter,
    /// Events given up on for a permanent reason (counted, logged).
    pub permanent_failures: Counter,
    /// Events re-sent after a restart that may have been delivered before.
    pub replayed_after_restart: Counter,
    /// Events re-sent after a failure that may have come after the target
    /// received them (a dropped connection, a timeout): possible duplicates.
    pub resent_after_unclear_failure: Counter,
    /// Journal offset this sink has delivered up to.
    pub cursor: Counter,
    /// 1 while the destination answers, 0 during an outage.
    pub healthy: Counter,
    /// Latency from the event's creation in PHP to delivery, last batch (µs).
    pub last_latency_us: Counter,
}

#[derive(Debug, Default)]
pub struct Metrics {
    pub ingest: IngestMetrics,
    pub sinks: Mutex<Vec<Arc<SinkMetrics>>>,
}

impl Metrics {
    pub fn sink(&self, name: &str, kind: &'static str) -> Arc<SinkMetrics> {
        let m = Arc::new(SinkMetrics {
            name: name.to_string(),
            kind,
            ..Default::default()
        });
        self.sinks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(m.clone());
        m
    }

    pub fn sinks(&self) -> Vec<Arc<SinkMetrics>> {
        self.sinks.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
