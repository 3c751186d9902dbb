//! Host-wide throttling and aggregation.
//!
//! Every PHP process's samples (`broadcastAggregatedData`) and every event on
//! a throttled channel (rules by channel pattern) meet here, so N workers
//! share one window per channel instead of each sending its own.
//!
//! ```text
//! journal ─► throttle stage (own cursor) ─► windows per channel ─► derived events ─► journal ─► sinks
//! ```
//! Inputs are journaled like any event (and acknowledged to PHP only then),
//! so a window is recoverable; the stage's cursor never passes an input an
//! open window still holds. Sinks skip samples and raw events on throttled
//! channels, and deliver the derived events (flag `DERIVED`) as they are.
//!
//! # Layout
//! - [`rules`]: channel patterns, window lengths, modes.
//! - [`window`]: the window state machine (pure, virtual clock in tests).
//! - [`extract`]: samples inside ordinary event payloads.

pub mod extract;
pub mod rules;
pub mod window;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use scada_core::aggregate::TableJsonError;
use scada_core::event::flags::DERIVED;
use scada_core::frame::{FrameKind, Frames, MAX_BODY_LEN};
use scada_core::{json, timefmt, EventId, EventView, EventWriter, SamplesView};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::journal::Journal;
use crate::metrics::SinkMetrics;
use crate::sinks::reader::{JournalReader, Stop};
use rules::{Mode, Rules};
use window::{Input, Latest, Output, Windows};

/// Monotonic microseconds that start at the wall clock (ISO timestamps in
/// events stay meaningful; windows never jump with the wall clock).
struct Clock {
    base_wall_us: u64,
    base: Instant,
}

impl Clock {
    fn new() -> Self {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        Self {
            base_wall_us: wall,
            base: Instant::now(),
        }
    }

    fn now_us(&self) -> u64 {
        self.base_wall_us + self.base.elapsed().as_micros() as u64
    }

    fn instant_of(&self, us: u64) -> Instant {
        self.base + Duration::from_micros(us.saturating_sub(self.base_wall_us))
    }
}

pub struct ThrottleStage {
    reader: JournalReader,
    journal: Arc<Journal>,
    rules: Arc<Rules>,
    windows: Windows,
    clock: Clock,
    origin: u64,
    seq: u64,
    metrics: Arc<SinkMetrics>,
    scratch: Vec<(String, f64)>,
}

impl ThrottleStage {
    pub fn new(
        reader: JournalReader,
        journal: Arc<Journal>,
        rules: Arc<Rules>,
        origin: u64,
    ) -> Self {
        let metrics = reader.metrics.clone();
        Self {
            reader,
            journal,
            rules,
            windows: Windows::new(),
            clock: Clock::new(),
            origin,
            seq: 0,
            metrics,
            scratch: Vec::new(),
        }
    }

    pub async fn run(mut self, mut stop: watch::Receiver<Stop>) {
        info!(from = self.reader.position(), "throttle stage started");
        self.metrics.healthy.set(1);
        loop {
            let deadline = self
                .windows
                .next_deadline()
                .map(|t| self.clock.instant_of(t));
            let next = tokio::select! {
                n = self.reader.next_batch(1 << 20, &mut stop) => Some(n),
                _ = sleep_until(deadline) => None,
            };
            let mut outputs = Vec::new();
            match next {
                Some(Some(batch)) => {
                    let mut offset = batch.start;
                    for frame in Frames::new(&batch.data, MAX_BODY_LEN).map_while(Result::ok) {
                        if let Some(o) = self.consume(frame.kind, frame.payload, offset) {
                            outputs.extend(o);
                        }
                        offset += frame.len() as u64;
                    }
                }
                Some(None) => break,
                // A window's deadline: expire below.
                None => {}
            }
            outputs.extend(self.windows.expire(self.clock.now_us()));
            self.emit(outputs);
            self.commit();
        }
        // Shutdown: every open window goes out now, before the sinks drain.
        let outputs = self.windows.drain(self.clock.now_us());
        self.emit(outputs);
        self.commit();
        info!(at = self.reader.position(), "throttle stage stopped");
    }

    /// Feeds one journal frame to the windows; returns leading-edge outputs.
    fn consume(&mut self, kind: FrameKind, payload: &[u8], offset: u64) -> Option<Vec<Output>> {
        let now = self.clock.now_us();
        match kind {
            FrameKind::Samples => {
                let view = SamplesView::decode(payload).ok()?;
                let series: Vec<(&str, f64)> = view.iter().collect();
                self.metrics.messages.add(series.len() as u64);
                let out = self.windows.input(
                    view.channel,
                    view.throttle_ms,
                    Input::Samples { series: &series },
                    view.created_us,
                    offset,
                    now,
                );
                Some(out.into_iter().collect())
            }
            FrameKind::Event if !self.rules.is_empty() => {
                let ev = EventView::decode(payload).ok()?;
                if ev.is_derived() {
                    return None;
                }
                let mut outs = Vec::new();
                for channel in ev.channels() {
                    let Some(rule) = self.rules.matching(channel).cloned() else {
                        continue;
                    };
                    self.metrics.messages.inc();
                    let extracted = match rule.mode {
                        Mode::Aggregate => extract::samples(ev.payload),
                        Mode::Latest => None,
                    };
                    let out = match extracted {
                        Some(pairs) => {
                            self.scratch = pairs;
                            let series: Vec<(&str, f64)> =
                                self.scratch.iter().map(|(s, v)| (s.as_str(), *v)).collect();
                            self.windows.input(
                                channel,
                                rule.window_ms,
                                Input::Samples { series: &series },
                                ev.created_us,
                                offset,
                                now,
                            )
                        }
                        None => self.windows.input(
                            channel,
                            rule.window_ms,
                            Input::Event(Latest {
                                name: ev.event.to_string(),
                                socket_id: ev.socket_id.map(str::to_string),
                                payload: ev.payload.to_vec(),
                            }),
                            ev.created_us,
                            offset,
                            now,
                        ),
                    };
                    outs.extend(out);
                }
                Some(outs)
            }
            _ => None,
        }
    }

    fn next_id(&mut self) -> EventId {
        self.seq += 1;
        EventId {
            origin: self.origin,
            seq: self.seq,
        }
    }

    /// Appends the outputs to the journal as derived events.
    fn emit(&mut self, outputs: Vec<Output>) {
        if outputs.is_empty() {
            return;
        }
        let mut buf = Vec::with_capacity(outputs.len() * 512);
        let mut events = 0u64;
        for o in &outputs {
            if o.body.table.samples() > 0 {
                match self.aggregate_frame(&mut buf, o) {
                    Ok(()) => events += 1,
                    Err(e) => {
                        warn!(channel = %o.channel, error = %e, "cannot encode an aggregate; its window is dropped")
                    }
                }
            }
            for latest in &o.body.latest {
                let id = self.next_id();
                let mut w =
                    EventWriter::begin_with_flags(&mut buf, id, o.newest_created_us, DERIVED);
                let ok = w.channel(&mut buf, o.channel.as_bytes()).is_ok()
                    && w.event(
                        &mut buf,
                        latest.name.as_bytes(),
                        latest.socket_id.as_deref().map(str::as_bytes),
                    )
                    .is_ok();
                if ok {
                    buf.extend_from_slice(&latest.payload);
                    if w.finish(&mut buf).is_ok() {
                        events += 1;
                    }
                } else {
                    w.abandon(&mut buf);
                }
            }
        }
        if let Err(e) = self.journal.append(buf) {
            error!(error = %e, "cannot journal throttled events");
            return;
        }
        self.metrics.delivered.add(events);
    }

    /// `scada.data.received` with per-series statistics and the window.
    fn aggregate_frame(&mut self, buf: &mut Vec<u8>, o: &Output) -> Result<(), String> {
        let id = self.next_id();
        let start = buf.len();
        let mut w = EventWriter::begin_with_flags(buf, id, o.newest_created_us, DERIVED);
        w.channel(buf, o.channel.as_bytes())
            .map_err(|e| e.to_string())?;
        w.event(buf, b"scada.data.received", None)
            .map_err(|e| e.to_string())?;
        buf.extend_from_slice(b"{\"data\":");
        o.body.table.write_json(buf, true).map_err(|e| match e {
            TableJsonError::SeriesName => "a series name is not UTF-8".to_string(),
            TableJsonError::NonFinite(v) => format!("a sum overflowed to {v}"),
        })?;
        buf.extend_from_slice(b",\"timestamp\":\"");
        buf.extend_from_slice(&timefmt::iso8601_micros(self.clock.now_us() as i64));
        buf.extend_from_slice(b"\",\"channel\":");
        let _ = json::write_string(buf, o.channel.as_bytes());
        buf.extend_from_slice(b",\"window\":{\"start\":\"");
        buf.extend_from_slice(&timefmt::iso8601_micros(o.start_us as i64));
        buf.extend_from_slice(b"\",\"end\":\"");
        buf.extend_from_slice(&timefmt::iso8601_micros(o.end_us as i64));
        buf.extend_from_slice(b"\",\"throttle_ms\":");
        json::write_i64(buf, o.window_ms as i64);
        buf.extend_from_slice(b",\"samples\":");
        json::write_i64(buf, o.body.table.samples() as i64);
        buf.extend_from_slice(b"}}");
        if let Err(e) = w.finish(buf) {
            buf.truncate(start);
            return Err(e.to_string());
        }
        Ok(())
    }

    /// The cursor may pass everything read except inputs open windows hold.
    fn commit(&mut self) {
        let read = self.reader.read_position();
        let upto = self.windows.oldest_pending().map_or(read, |p| p.min(read));
        if let Err(e) = self.reader.commit(upto) {
            error!(error = %e, "cannot persist the throttle cursor");
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
