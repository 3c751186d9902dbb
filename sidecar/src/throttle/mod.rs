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
//! open window still holds, nor one whose output is not journaled yet (an
//! append failed: the outputs are kept and retried first). Which channels are
//! the stage's and which the sinks' is [`crate::routing`]'s decision.
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
use tracing::{debug, info, warn};

use crate::journal::{Journal, JournalReader, Stop};
use crate::metrics::SinkMetrics;
use crate::retry::Backoff;
use crate::routing::Routing;
use crate::util::sleep_until;
use rules::Mode;
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

/// Why an aggregate could not be encoded (its window is dropped, logged).
#[derive(Debug)]
enum EncodeError {
    SeriesName,
    NonFinite(f64),
    Frame(scada_core::frame::FrameError),
}

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SeriesName => f.write_str("a series name is not UTF-8"),
            Self::NonFinite(v) => write!(f, "a sum overflowed to {v}"),
            Self::Frame(e) => write!(f, "{e}"),
        }
    }
}

/// Window outputs encoded as derived events but not journaled yet (the
/// append failed): retried before anything else, and the cursor stays
/// before their oldest input meanwhile.
#[derive(Default)]
struct Unjournaled {
    /// The derived events' frames.
    frames: Vec<u8>,
    events: u64,
    /// The journal offset of the oldest input they stand for.
    from: Option<u64>,
}

pub struct ThrottleStage {
    reader: JournalReader,
    journal: Arc<Journal>,
    routing: Routing,
    windows: Windows,
    clock: Clock,
    origin: u64,
    seq: u64,
    metrics: Arc<SinkMetrics>,
    scratch: Vec<(String, f64)>,
    unjournaled: Unjournaled,
    backoff: Backoff,
}

impl ThrottleStage {
    pub fn new(reader: JournalReader, routing: Routing, origin: u64) -> Self {
        let metrics = reader.metrics.clone();
        let journal = reader.journal().clone();
        Self {
            reader,
            journal,
            routing,
            windows: Windows::new(),
            clock: Clock::new(),
            origin,
            seq: 0,
            metrics,
            scratch: Vec::new(),
            unjournaled: Unjournaled::default(),
            backoff: Backoff::new(Duration::from_millis(20), Duration::from_secs(2)),
        }
    }

    pub async fn run(mut self, mut stop: watch::Receiver<Stop>) {
        info!(from = self.reader.position(), "throttle stage started");
        self.metrics.healthy.set(true);
        loop {
            let deadline = self
                .windows
                .next_deadline()
                .map(|t| self.clock.instant_of(t));
            if !self.unjournaled.frames.is_empty() {
                // The journal refused our outputs: retry them before reading
                // on (the cursor stays before their inputs meanwhile).
                let delay = self.backoff.next_delay();
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = sleep_until(deadline) => {}
                    _ = Stop::changed(&mut stop) => {}
                }
                if Stop::current(&stop)
                    .deadline()
                    .is_some_and(|d| Instant::now() >= d)
                {
                    break;
                }
                let outputs = self.windows.expire(self.clock.now_us());
                self.encode(outputs);
                self.emit().await;
                self.commit();
                continue;
            }
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
            self.encode(outputs);
            self.emit().await;
            self.commit();
        }
        // Shutdown: every open window goes out now, before the sinks drain.
        let outputs = self.windows.drain(self.clock.now_us());
        self.encode(outputs);
        if !self.emit().await {
            warn!("cannot journal the open windows at shutdown; their inputs stay journaled and are recovered on the next start");
        }
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
            FrameKind::Event if self.routing.has_rules() => {
                let ev = EventView::decode(payload).ok()?;
                let mut outs = Vec::new();
                for channel in ev.channels() {
                    let Some(rule) = self.routing.throttle_rule(&ev, channel).cloned() else {
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

    /// Encodes the outputs as derived events, after any not journaled yet.
    fn encode(&mut self, outputs: Vec<Output>) {
        let mut buf = std::mem::take(&mut self.unjournaled.frames);
        for o in &outputs {
            self.unjournaled.from = Some(
                self.unjournaled
                    .from
                    .map_or(o.first_input, |f| f.min(o.first_input)),
            );
            if o.body.table.samples() > 0 {
                match self.aggregate_frame(&mut buf, o) {
                    Ok(()) => self.unjournaled.events += 1,
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
                        self.unjournaled.events += 1;
                    }
                } else {
                    w.abandon(&mut buf);
                }
            }
        }
        self.unjournaled.frames = buf;
        if self.unjournaled.frames.is_empty() {
            self.unjournaled = Unjournaled::default();
        }
    }

    /// Journals what is encoded; false (everything kept) when the append fails.
    async fn emit(&mut self) -> bool {
        if self.unjournaled.frames.is_empty() {
            return true;
        }
        match self
            .journal
            .append_async(self.unjournaled.frames.clone())
            .await
        {
            Ok(_) => {
                self.metrics.delivered.add(self.unjournaled.events);
                self.unjournaled = Unjournaled::default();
                self.backoff.reset();
                self.metrics.healthy.set(true);
                true
            }
            Err(e) => {
                // The journal logs its state changes; the outputs wait.
                self.metrics.retries.inc();
                self.metrics.healthy.set(false);
                debug!(error = %e, events = self.unjournaled.events, "cannot journal throttled events yet; kept and retried");
                false
            }
        }
    }

    /// `scada.data.received` with per-series statistics and the window.
    fn aggregate_frame(&mut self, buf: &mut Vec<u8>, o: &Output) -> Result<(), EncodeError> {
        let id = self.next_id();
        let start = buf.len();
        let mut w = EventWriter::begin_with_flags(buf, id, o.newest_created_us, DERIVED);
        let result = (|| {
            w.channel(buf, o.channel.as_bytes())
                .map_err(EncodeError::Frame)?;
            w.event(buf, b"scada.data.received", None)
                .map_err(EncodeError::Frame)?;
            buf.extend_from_slice(b"{\"data\":");
            o.body.table.write_json(buf, true).map_err(|e| match e {
                TableJsonError::SeriesName => EncodeError::SeriesName,
                TableJsonError::NonFinite(v) => EncodeError::NonFinite(v.0),
            })?;
            Ok(())
        })();
        if let Err(e) = result {
            buf.truncate(start);
            return Err(e);
        }
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
            return Err(EncodeError::Frame(e));
        }
        Ok(())
    }

    /// The cursor may pass everything read except inputs open windows hold
    /// and inputs of outputs not journaled yet.
    fn commit(&mut self) {
        let read = self.reader.read_position();
        let upto = [self.windows.oldest_pending(), self.unjournaled.from]
            .into_iter()
            .flatten()
            .fold(read, u64::min);
        self.reader.commit(upto);
    }
}
