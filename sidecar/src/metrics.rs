//! Counters shared by the pipeline stages (relaxed atomics), read by the
//! status endpoint.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use scada_core::spool::LossReason;
use serde::Serialize;

use crate::util::lock;

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

/// A yes/no state (journal writable, destination healthy), shown as 1 or 0
/// in the status and `/metrics`.
#[derive(Debug, Default)]
pub struct Flag(AtomicBool);

impl Flag {
    /// Sets the state; returns the one before (to log changes once).
    pub fn set(&self, on: bool) -> bool {
        self.0.swap(on, Relaxed)
    }
    pub fn get(&self) -> bool {
        self.0.load(Relaxed)
    }
}

impl Serialize for Flag {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::from(self.get()))
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
    /// Appends that failed (the chunk is not acknowledged and is retried).
    pub journal_errors: Counter,
    /// Times a connection paused because the journal could not take its chunk.
    pub journal_pauses: Counter,
    /// 1 while the journal's disk budget is full (ingest pauses).
    pub over_budget: Flag,
    /// Times ingest paused for the disk budget.
    pub budget_pauses: Counter,
    /// Orphaned spool files drained, and the events they held.
    pub spool_files: Counter,
    pub spool_events: Counter,
    /// Spool files that ended in a torn frame (the writer died mid-write).
    pub spool_torn: Counter,
    /// Damaged frames skipped in orphaned spool files (and their bytes).
    pub spool_corrupt_frames: Counter,
    pub spool_corrupt_bytes: Counter,
    pub spool_errors: Counter,
    /// 1 while this sidecar holds the spool directory's lock (it alone drains
    /// orphaned spool files and counts loss records).
    pub spool_drainer: Flag,
    /// Failed attempts to take that lock (not "held by another sidecar"):
    /// nobody drains meanwhile; retried every pass.
    pub spool_lock_errors: Counter,
    /// Events PHP processes lost at exit, from their loss records.
    pub php_lost_events: Counter,
    pub php_lost_events_by_reason: LostEvents,
    /// De-duplication state: origins and ranges held, gaps closed to bound it.
    pub dedup_origins: Counter,
    pub dedup_ranges: Counter,
    pub dedup_gaps_closed: Counter,
}

impl IngestMetrics {
    pub fn add_php_lost(&self, reason: LossReason, events: u64) {
        self.php_lost_events.add(events);
        self.php_lost_events_by_reason.by(reason).add(events);
    }
}

/// Lost events by [`LossReason`], serialized as `{reason: count}`.
#[derive(Debug, Default)]
pub struct LostEvents([Counter; LossReason::ALL.len()]);

impl LostEvents {
    pub fn by(&self, reason: LossReason) -> &Counter {
        let i = LossReason::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or_default();
        &self.0[i]
    }

    pub fn iter(&self) -> impl Iterator<Item = (LossReason, u64)> + '_ {
        LossReason::ALL.iter().map(|r| (*r, self.by(*r).get()))
    }
}

impl Serialize for LostEvents {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(LossReason::ALL.len()))?;
        for (reason, n) in self.iter() {
            map.serialize_entry(reason.as_str(), &n)?;
        }
        map.end()
    }
}

/// The `kind` of the throttle stage's entry among the sinks' metrics.
pub const THROTTLE_KIND: &str = "throttle";

/// One journal reader's progress: a destination (redis, pusher), or the
/// throttle stage (kind [`THROTTLE_KIND`]), which reads and delivers into the
/// journal itself. Both are listed under `sinks` in the status, so a backlog
/// in open windows shows as lag too.
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
    /// Cursor writes that failed (the journal keeps the data meanwhile).
    pub cursor_errors: Counter,
    /// 1 while the destination answers, 0 during an outage.
    pub healthy: Flag,
    /// Latency from the event's creation in PHP to delivery, last batch (µs).
    pub last_latency_us: Counter,
}

impl SinkMetrics {
    /// False for the throttle stage (it delivers into the journal).
    pub fn is_destination(&self) -> bool {
        self.kind != THROTTLE_KIND
    }
}

/// The SSE listener: streams open, events sent, streams refused or ended early.
#[derive(Debug, Default, Serialize)]
pub struct SseMetrics {
    /// Streams open now.
    pub clients_connected: Counter,
    pub clients_total: Counter,
    /// Events written to streams (last values, catch-up and live).
    pub events_sent: Counter,
    /// Streams ended because their client did not keep up.
    pub overflows: Counter,
    /// `gap` events sent (events the journal no longer held).
    pub gaps: Counter,
    /// Requests refused 401 or 403 (token, origin).
    pub auth_refusals: Counter,
    /// Requests refused 429 (connection limits).
    pub limit_refusals: Counter,
    /// Requests refused 400 (channels, Last-Event-ID).
    pub bad_requests: Counter,
}

#[derive(Debug, Default)]
pub struct Metrics {
    pub ingest: IngestMetrics,
    pub sse: SseMetrics,
    pub sinks: Mutex<Vec<Arc<SinkMetrics>>>,
}

impl Metrics {
    pub fn sink(&self, name: &str, kind: &'static str) -> Arc<SinkMetrics> {
        let m = Arc::new(SinkMetrics {
            name: name.to_string(),
            kind,
            ..Default::default()
        });
        lock(&self.sinks).push(m.clone());
        m
    }

    /// Every journal reader's metrics, destinations and the throttle stage.
    pub fn sinks(&self) -> Vec<Arc<SinkMetrics>> {
        lock(&self.sinks).clone()
    }
}
