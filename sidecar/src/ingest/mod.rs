//! Ingest: frames from PHP processes (sockets, orphaned spool files) into the journal.
//!
//! Every frame is re-validated (nothing a local process writes is trusted),
//! duplicates are dropped and counted, and the accepted frames are appended to
//! the journal verbatim. Only then are they acknowledged to the client, and
//! only then are their ids remembered: a chunk whose append failed leaves no
//! trace, so its resend is journaled, not mistaken for a duplicate.
//!
//! ```text
//! connection / spool drain ─► accept: validate ─► dedup check ─► journal.append ─► dedup commit ─► ack / remove file
//!                                                                   └─ fails: nothing counted, nothing acked; retried
//! ```

pub mod connection;
pub mod dedup;
pub mod spool;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use scada_core::frame::{FrameError, FrameKind, Frames, MAX_BODY_LEN};
use scada_core::{EventId, EventView, SamplesView};

use crate::journal::{AppendError, Journal};
use crate::metrics::Metrics;
use crate::util::lock;
use dedup::Dedup;

/// How long an origin that can send nothing more (no connection, no spool
/// file) is remembered: long enough for a process whose connection dropped
/// to reconnect and resend what was not acknowledged.
const DEDUP_IDLE: Duration = Duration::from_secs(60);
const DEDUP_MAX_ORIGINS: usize = 100_000;

#[derive(Debug)]
pub struct Ingest {
    pub journal: Arc<Journal>,
    dedup: Mutex<Dedup>,
    /// Origins with an open connection (how many).
    connected: Mutex<HashMap<u64, usize>>,
    pub metrics: Arc<Metrics>,
    /// Disk budget for undelivered events: over it, ingest stops reading.
    max_journal_bytes: u64,
}

/// Result of [`Ingest::accept`].
#[derive(Debug, Default)]
pub struct Accepted {
    /// Bytes of complete frames processed.
    pub consumed: usize,
    /// Frames processed (accepted, duplicate or invalid): what the client counts.
    pub frames: u64,
    /// Events journaled by this call.
    pub events: u64,
    pub duplicates: u64,
    pub invalid: u64,
    /// A frame that could not be read; the stream cannot continue after it.
    pub error: Option<FrameError>,
}

/// Why [`Ingest::accept`] journaled nothing: the frames are not acknowledged
/// and must be offered again.
#[derive(Debug)]
pub enum AcceptError {
    Journal(AppendError),
}

impl fmt::Display for AcceptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Journal(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for AcceptError {}

impl Ingest {
    pub fn new(journal: Arc<Journal>, metrics: Arc<Metrics>, max_journal_bytes: u64) -> Self {
        Self {
            journal,
            dedup: Mutex::new(Dedup::new(DEDUP_IDLE, DEDUP_MAX_ORIGINS)),
            connected: Mutex::new(HashMap::new()),
            metrics,
            max_journal_bytes,
        }
    }

    /// True while undelivered events fill the disk budget. Ingest then stops
    /// reading: clients queue, spool and finally apply their overflow policy
    /// per channel (critical events are refused at the call, telemetry drops
    /// its oldest), so memory and disk stay bounded and nothing the sidecar
    /// acknowledged is ever dropped.
    pub fn over_budget(&self) -> bool {
        let over = self.journal.disk_bytes() > self.max_journal_bytes;
        self.metrics.ingest.over_budget.set(over);
        over
    }

    /// Learns the ids already in the journal (after a restart), so clients
    /// re-sending unacknowledged events do not cause duplicates.
    pub fn remember_journal(&self) -> io::Result<u64> {
        let mut n = 0;
        let now = Instant::now();
        let mut dedup = lock(&self.dedup);
        self.journal.scan(0, |_, frame| {
            if let Some(id) = event_id(frame.kind, frame.payload) {
                dedup.insert(id, now);
                n += 1;
            }
        })?;
        Ok(n)
    }

    /// A client of `origin` connected; it may resend, so its ids are kept.
    pub fn connected(&self, origin: u64) {
        *lock(&self.connected).entry(origin).or_default() += 1;
    }

    pub fn disconnected(&self, origin: u64) {
        let mut c = lock(&self.connected);
        if let Some(n) = c.get_mut(&origin) {
            *n -= 1;
            if *n == 0 {
                c.remove(&origin);
            }
        }
    }

    /// Forgets origins that can send nothing more: no connection and none
    /// of `spooled` (origins with a spool file).
    pub fn prune(&self, spooled: &HashSet<u64>) {
        let mut live = spooled.clone();
        live.extend(lock(&self.connected).keys().copied());
        let mut d = lock(&self.dedup);
        d.prune(Instant::now(), &live);
        let m = &self.metrics.ingest;
        m.dedup_origins.set(d.origins() as u64);
        m.dedup_ranges.set(d.ranges() as u64);
        m.dedup_gaps_closed.set(d.gaps_closed);
    }

    /// Processes the complete frames at the start of `buf` and journals the
    /// accepted ones. Blocking (one journal append). On `Err` nothing was
    /// journaled, counted or remembered: offer the same bytes again.
    pub fn accept(&self, buf: &[u8]) -> Result<Accepted, AcceptError> {
        let mut out = Accepted::default();
        let mut oversized = 0;
        let mut protocol = 0;
        let mut events: Vec<(EventId, &[u8])> = Vec::new();
        let mut frames = Frames::new(buf, MAX_BODY_LEN);
        for frame in frames.by_ref() {
            let frame = match frame {
                Ok(f) => f,
                Err(e) => {
                    if matches!(e, FrameError::BadLength { .. }) {
                        oversized += 1;
                    } else {
                        protocol += 1;
                    }
                    out.error = Some(e);
                    break;
                }
            };
            out.frames += 1;
            match event_id(frame.kind, frame.payload) {
                Some(id) => events.push((id, frame.raw)),
                None => out.invalid += 1,
            }
        }
        out.consumed = frames.consumed();
        let mut bytes = 0;
        if !events.is_empty() {
            // Check, append and remember under one lock: a concurrent copy of
            // the same id (socket resend and spool drain) is journaled once.
            let mut dedup = lock(&self.dedup);
            let mut chunk = Vec::with_capacity(events.iter().map(|(_, raw)| raw.len()).sum());
            let mut fresh = Vec::with_capacity(events.len());
            for (id, raw) in &events {
                if dedup.seen(*id) || repeats_within(&fresh, *id) {
                    out.duplicates += 1;
                } else {
                    chunk.extend_from_slice(raw);
                    fresh.push(*id);
                }
            }
            if !fresh.is_empty() {
                bytes = chunk.len() as u64;
                if let Err(e) = self.journal.append(chunk) {
                    self.metrics.ingest.journal_errors.inc();
                    return Err(AcceptError::Journal(e));
                }
                let now = Instant::now();
                for id in &fresh {
                    dedup.insert(*id, now);
                }
            }
            out.events = fresh.len() as u64;
        }
        let m = &self.metrics.ingest;
        m.oversized_frames.add(oversized);
        m.protocol_errors.add(protocol);
        m.invalid_events.add(out.invalid);
        m.duplicates.add(out.duplicates);
        m.events.add(out.events);
        m.bytes.add(bytes);
        Ok(out)
    }

    /// [`Ingest::accept`] from async code: off the runtime threads when the
    /// journal waits for the disk (`fsync = true`).
    pub async fn accept_async(self: &Arc<Self>, buf: Bytes) -> Result<Accepted, AcceptError> {
        if !self.journal.waits_for_disk() {
            return self.accept(&buf);
        }
        let ingest = self.clone();
        tokio::task::spawn_blocking(move || ingest.accept(&buf))
            .await
            .unwrap_or(Err(AcceptError::Journal(AppendError::Aborted)))
    }
}

/// The id of a valid event or samples frame; `None` for anything a client
/// may not send (derived events are the throttle stage's own).
fn event_id(kind: FrameKind, payload: &[u8]) -> Option<EventId> {
    match kind {
        FrameKind::Event => EventView::decode(payload)
            .ok()
            .filter(|ev| !ev.is_derived())
            .map(|ev| ev.id),
        FrameKind::Samples => SamplesView::decode(payload).ok().map(|s| s.id),
        _ => None,
    }
}

/// True when `id` is already among this chunk's fresh ids. Ids of a process
/// increase, so the common case is decided by the last one.
fn repeats_within(fresh: &[EventId], id: EventId) -> bool {
    match fresh.last() {
        None => false,
        Some(last) if last.origin == id.origin && id.seq > last.seq => false,
        Some(_) => fresh.contains(&id),
    }
}
