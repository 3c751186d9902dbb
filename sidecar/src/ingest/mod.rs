//! Ingest: frames from PHP processes (sockets, orphaned spool files) into the journal.
//!
//! Every frame is re-validated (nothing a local process writes is trusted),
//! duplicates are dropped and counted, and the accepted frames are appended to
//! the journal verbatim. Only then are they acknowledged to the client.

pub mod connection;
pub mod dedup;
pub mod spool;

use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scada_core::frame::{FrameError, FrameKind, Frames, MAX_BODY_LEN};
use scada_core::{EventView, SamplesView};

use crate::journal::Journal;
use crate::metrics::Metrics;
use dedup::Dedup;

/// How long an origin (a PHP process generation) is remembered for dedup.
const DEDUP_IDLE: Duration = Duration::from_secs(15 * 60);
const DEDUP_MAX_ORIGINS: usize = 100_000;

#[derive(Debug)]
pub struct Ingest {
    pub journal: Arc<Journal>,
    dedup: Mutex<Dedup>,
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
    /// A frame that could not be read; the stream cannot continue after it.
    pub error: Option<FrameError>,
}

impl Ingest {
    pub fn new(journal: Arc<Journal>, metrics: Arc<Metrics>, max_journal_bytes: u64) -> Self {
        Self {
            journal,
            dedup: Mutex::new(Dedup::new(DEDUP_IDLE, DEDUP_MAX_ORIGINS)),
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
        self.metrics.ingest.over_budget.set(over as u64);
        over
    }

    /// Learns the ids already in the journal (after a restart), so clients
    /// re-sending unacknowledged events do not cause duplicates.
    pub fn remember_journal(&self) -> io::Result<u64> {
        let mut n = 0;
        let now = Instant::now();
        let mut dedup = self.dedup.lock().unwrap_or_else(|e| e.into_inner());
        self.journal.scan(0, |_, frame| {
            let id = match frame.kind {
                FrameKind::Event => EventView::decode(frame.payload).ok().map(|e| e.id),
                FrameKind::Samples => SamplesView::decode(frame.payload).ok().map(|s| s.id),
                _ => None,
            };
            if let Some(id) = id {
                dedup.first_time(id, now);
                n += 1;
            }
        })?;
        Ok(n)
    }

    pub fn prune(&self) {
        self.dedup
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .prune(Instant::now());
    }

    /// Processes the complete frames at the start of `buf` and journals the
    /// accepted ones. Blocking (one write to the journal file).
    pub fn accept(&self, buf: &[u8]) -> io::Result<Accepted> {
        let m = &self.metrics.ingest;
        let mut out = Accepted::default();
        let mut events = Vec::new();
        let mut frames = Frames::new(buf, MAX_BODY_LEN);
        for frame in frames.by_ref() {
            let frame = match frame {
                Ok(f) => f,
                Err(e) => {
                    if matches!(e, FrameError::BadLength { .. }) {
                        m.oversized_frames.inc();
                    } else {
                        m.protocol_errors.inc();
                    }
                    out.error = Some(e);
                    break;
                }
            };
            out.frames += 1;
            match frame.kind {
                FrameKind::Event => match EventView::decode(frame.payload) {
                    // Only the throttle stage writes derived events.
                    Ok(ev) if !ev.is_derived() => events.push((ev.id, frame.raw)),
                    _ => m.invalid_events.inc(),
                },
                FrameKind::Samples => match SamplesView::decode(frame.payload) {
                    Ok(samples) => events.push((samples.id, frame.raw)),
                    Err(_) => m.invalid_events.inc(),
                },
                _ => m.invalid_events.inc(),
            }
        }
        out.consumed = frames.consumed();
        if events.is_empty() {
            return Ok(out);
        }
        let mut chunk = Vec::with_capacity(events.iter().map(|(_, raw)| raw.len()).sum());
        let mut accepted = 0u64;
        {
            let now = Instant::now();
            let mut dedup = self.dedup.lock().unwrap_or_else(|e| e.into_inner());
            for (id, raw) in &events {
                if dedup.first_time(*id, now) {
                    chunk.extend_from_slice(raw);
                    accepted += 1;
                } else {
                    m.duplicates.inc();
                }
            }
        }
        if accepted > 0 {
            let bytes = chunk.len() as u64;
            if let Err(e) = self.journal.append(chunk) {
                m.journal_errors.inc();
                return Err(e);
            }
            m.events.add(accepted);
            m.bytes.add(bytes);
        }
        Ok(out)
    }
}
