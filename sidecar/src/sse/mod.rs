//! Server-Sent Events for browsers, straight from the journal (opt-in:
//! `SCADA_SSE_ADDR` or an `[sse]` section).
//!
//! ```text
//! journal ──► SseStage (tails the journal, not a registered reader) ──► Hub
//!                │ routing as the sinks: throttled raw inputs skipped,     │ per client: bounded queue
//!                │ the throttle stage's windows delivered                  ▼
//!                └► LastValues (latest per channel and event name)   ClientStream ──► axum Sse ──► browser
//! ```
//!
//! # What a client receives
//! `GET /sse?channels=a,b` answers `text/event-stream`. Each event has
//! `id:` its journal offset (decimal; offsets only grow, across restarts
//! too), `event:` its name and `data:` its payload JSON, the bytes a Pusher
//! client receives as `data` ([`crate::sinks::pusher::request_builder::client_data`]).
//! An event on several requested channels is sent once.
//!
//! * Without `Last-Event-ID`: the latest event per (channel, event name)
//!   (kept in memory, bounded, rebuilt on start from the newest journal
//!   data: [`last_value::rebuild`]), oldest first, then the live stream.
//! * With `Last-Event-ID` (header or `?last_event_id=`): every event after
//!   it, read from the journal, then the live stream: no gap, no repeat.
//!   When the journal no longer holds what follows it (retention, damage),
//!   or the id is not one of this journal's, an `event: gap` comes first,
//!   `data: {"from":F,"to":T,"reason":...}`: events with ids after `F` and
//!   before `T` are missing. The stage sends the same to every client when
//!   it finds a hole itself.
//! * Events on a priority channel (`SCADA_PRIORITY`) go through a second
//!   queue per client (bounded the same way) that the stream drains first,
//!   so an alarm overtakes a telemetry backlog queued for a slow client. An
//!   alarm that overtakes queued events carries the id of the last event
//!   sent in order: a client that reconnects then resumes before the
//!   events it overtook (it may get the alarm again, never miss one).
//! * A client whose queue fills (it reads too slowly) gets a final
//!   `event: overflow` and its stream ends; it reconnects with its last id
//!   and misses nothing the journal still holds.
//! * A heartbeat comment (`:heartbeat`) when idle.
//!
//! SSE clients never hold back journal retention: the stage and the
//! catch-up reads use [`Journal::read`] without registering a cursor.

pub mod dashboard;
pub mod host;
pub mod last_value;
pub mod server;
pub mod stream;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::response::sse::Event;
use bytes::Bytes;
use scada_core::frame::{Frame, MAX_BODY_LEN};
use scada_core::EventView;
use serde_json::json;
use tokio::sync::{mpsc, watch, Notify};
use tracing::{error, info};

use crate::config::SseConfig;
use crate::journal::{Journal, Read};
use crate::metrics::Metrics;
use crate::routing::{Lane, Route, Routing};
use crate::sinks::pusher::request_builder::client_data;
use crate::util::lock;
use last_value::LastValues;

/// Most bytes read from the journal at once.
const READ_BYTES: usize = 1024 * 1024;
const READ_RETRY: Duration = Duration::from_secs(1);

/// One item of a stream: a journal event, or a control event (`gap`,
/// `overflow`, `expired`, a comment).
#[derive(Debug, Clone)]
pub struct Item {
    /// Its journal offset (its SSE id); `None` for control events.
    pub offset: Option<u64>,
    body: Body,
}

#[derive(Debug, Clone)]
enum Body {
    /// Rendered per client: the envelope names the client's own channels.
    Journal {
        name: String,
        data: String,
        channels: Vec<String>,
    },
    Control(Event),
}

impl Item {
    pub fn control(event: Event) -> Self {
        Self {
            offset: None,
            body: Body::Control(event),
        }
    }

    /// The SSE event for a client of `requested` channels. With `envelope`
    /// its data is `{"channels":[…],"data":<payload>}`, the requested
    /// channels the event is on (request order): one stream can then carry
    /// any number of channels (browsers open only 6 HTTP/1.1 connections per
    /// origin) and a client still knows where each event belongs.
    pub fn to_event(&self, requested: &[String], envelope: bool) -> Event {
        self.to_event_with_id(requested, envelope, self.offset)
    }

    /// [`Item::to_event`] with `id` as its SSE id (none: no `id:` field).
    pub fn to_event_with_id(&self, requested: &[String], envelope: bool, id: Option<u64>) -> Event {
        match &self.body {
            Body::Control(e) => e.clone(),
            Body::Journal {
                name,
                data,
                channels,
            } => {
                let event = Event::default().event(name);
                let event = match id {
                    Some(id) => event.id(id.to_string()),
                    None => event,
                };
                if !envelope {
                    return event.data(data);
                }
                let on: Vec<&String> = requested.iter().filter(|c| channels.contains(c)).collect();
                // The payload is JSON already: spliced in, not re-encoded.
                let channels = serde_json::to_string(&on).unwrap_or_else(|_| "[]".into());
                event.data(format!("{{\"channels\":{channels},\"data\":{data}}}"))
            }
        }
    }
}

/// The item for the journal event at `offset` on `channels`; `None` when its
/// payload is not text (cannot happen for a validated event).
pub fn render(offset: u64, ev: &EventView<'_>, channels: Vec<String>) -> Option<Item> {
    let data = std::str::from_utf8(client_data(ev)).ok()?;
    Some(Item {
        offset: Some(offset),
        // Event names are validated on ingest (no line breaks), ids are digits.
        body: Body::Journal {
            name: ev.event.to_string(),
            data: data.to_string(),
            channels,
        },
    })
}

/// `event: gap`: events with ids after `from` and before `to` are missing.
pub fn gap(from: u64, to: u64, reason: &str) -> Item {
    Item::control(
        Event::default()
            .event("gap")
            .data(json!({"from": from, "to": to, "reason": reason}).to_string()),
    )
}

/// The journal event in `frame` if a sink would deliver it on one of `wanted`.
pub fn wanted_event<'a>(
    routing: &Routing,
    frame: &Frame<'a>,
    wanted: impl Fn(&str) -> bool,
) -> Option<EventView<'a>> {
    match routing.for_sink(frame.kind, frame.payload) {
        Route::Deliver(ev) => routing.sink_channels(&ev).any(wanted).then_some(ev),
        Route::Throttled | Route::Skip => None,
    }
}

/// A registered client, as the stage sees it.
struct Slot {
    tx: mpsc::Sender<Arc<Item>>,
    /// Events on priority channels: drained first.
    priority_tx: mpsc::Sender<Arc<Item>>,
    channels: Vec<String>,
    overflowed: Arc<AtomicBool>,
    /// Closes the connection after the overflow grace (a client that does
    /// not read never takes its final event).
    kill: Arc<Notify>,
}

struct HubState {
    next_id: u64,
    clients: HashMap<u64, Slot>,
    by_channel: HashMap<String, Vec<u64>>,
    /// Every event at or after this offset reaches a client registered now
    /// through its queue; those before it come from the journal.
    live_from: u64,
    /// The offset of the last event the stage handled (what a hole follows).
    last_seen: u64,
    last: LastValues,
    closed: bool,
}

/// The clients and their queues.
pub struct Hub {
    state: Mutex<HubState>,
    queue: usize,
    metrics: Arc<Metrics>,
}

/// What a new client gets from the hub.
pub struct Registration {
    pub id: u64,
    pub rx: mpsc::Receiver<Arc<Item>>,
    /// Events on priority channels, drained before `rx`.
    pub priority_rx: mpsc::Receiver<Arc<Item>>,
    pub live_from: u64,
    /// The latest events on its channels, oldest first.
    pub last_values: Vec<Arc<Item>>,
    pub overflowed: Arc<AtomicBool>,
    hub: Arc<Hub>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.remove(self.id);
    }
}

impl Hub {
    /// A hub whose stream starts at journal offset `start`, knowing `last`
    /// (what [`last_value::rebuild`] found before it).
    pub fn new(cfg: &SseConfig, start: u64, metrics: Arc<Metrics>, last: LastValues) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(HubState {
                next_id: 0,
                clients: HashMap::new(),
                by_channel: HashMap::new(),
                live_from: start,
                last_seen: start.saturating_sub(1),
                last,
                closed: false,
            }),
            queue: cfg.client_queue_events,
            metrics,
        })
    }

    /// Registers a client for `channels`; `None` once shutting down.
    pub fn register(
        self: &Arc<Self>,
        channels: &[String],
        kill: Arc<Notify>,
    ) -> Option<Registration> {
        let (tx, rx) = mpsc::channel(self.queue);
        let (priority_tx, priority_rx) = mpsc::channel(self.queue);
        let overflowed = Arc::new(AtomicBool::new(false));
        let mut s = lock(&self.state);
        if s.closed {
            return None;
        }
        s.next_id += 1;
        let id = s.next_id;
        for c in channels {
            s.by_channel.entry(c.clone()).or_default().push(id);
        }
        s.clients.insert(
            id,
            Slot {
                tx,
                priority_tx,
                channels: channels.to_vec(),
                overflowed: overflowed.clone(),
                kill,
            },
        );
        Some(Registration {
            id,
            rx,
            priority_rx,
            live_from: s.live_from,
            last_values: s.last.snapshot(channels.iter().map(String::as_str)),
            overflowed,
            hub: self.clone(),
        })
    }

    fn remove(&self, id: u64) {
        let mut s = lock(&self.state);
        Self::remove_locked(&mut s, id);
    }

    fn remove_locked(s: &mut HubState, id: u64) {
        let Some(slot) = s.clients.remove(&id) else {
            return;
        };
        for c in &slot.channels {
            if let Some(ids) = s.by_channel.get_mut(c) {
                ids.retain(|&i| i != id);
                if ids.is_empty() {
                    s.by_channel.remove(c);
                }
            }
        }
    }

    /// Ends every stream (shutdown): their queues close, they end cleanly.
    pub fn close(&self) {
        let mut s = lock(&self.state);
        s.closed = true;
        s.clients.clear();
        s.by_channel.clear();
    }

    pub fn clients(&self) -> usize {
        lock(&self.state).clients.len()
    }

    /// Hands the frames of `batch` (journal offset `start`) to the clients
    /// that want them; a client whose queue is full overflows.
    fn publish(&self, routing: &Routing, start: u64, data: &Bytes) {
        let mut s = lock(&self.state);
        let mut at = 0usize;
        let mut targets: Vec<u64> = Vec::new();
        let mut overflowed: Vec<u64> = Vec::new();
        while let Ok(Some(frame)) = Frame::parse(&data[at..], MAX_BODY_LEN) {
            let offset = start + at as u64;
            at += frame.len();
            s.last_seen = offset;
            let Some(ev) = wanted_event(routing, &frame, |_| true) else {
                continue;
            };
            let channels: Vec<String> = routing.sink_channels(&ev).map(str::to_string).collect();
            let Some(item) = render(offset, &ev, channels).map(Arc::new) else {
                continue;
            };
            targets.clear();
            for c in routing.sink_channels(&ev) {
                s.last.record(c, ev.event, &item);
                if let Some(ids) = s.by_channel.get(c) {
                    targets.extend_from_slice(ids);
                }
            }
            targets.sort_unstable();
            targets.dedup();
            let priority = routing.lane_of(&ev) == Lane::Priority;
            for id in &targets {
                if let Some(slot) = s.clients.get(id) {
                    let tx = if priority {
                        &slot.priority_tx
                    } else {
                        &slot.tx
                    };
                    if tx.try_send(item.clone()).is_err() {
                        overflowed.push(*id);
                    }
                }
            }
            for id in overflowed.drain(..) {
                if let Some(slot) = s.clients.get(&id) {
                    slot.overflowed.store(true, Ordering::Release);
                    slot.kill.notify_one();
                    self.metrics.sse.overflows.inc();
                }
                // Dropping its sender ends the stream after what it queued.
                Self::remove_locked(&mut s, id);
            }
        }
        s.live_from = start + data.len() as u64;
    }

    /// The journal skipped from `from` to `to` (released or damaged data):
    /// every client is told, and the stream goes on at `to`.
    fn hole(&self, to: u64) {
        let mut s = lock(&self.state);
        let item = Arc::new(gap(
            s.last_seen,
            to,
            "the journal no longer holds these events",
        ));
        let mut full = Vec::new();
        for (id, slot) in &s.clients {
            if slot.tx.try_send(item.clone()).is_err() {
                full.push(*id);
            } else {
                self.metrics.sse.gaps.inc();
            }
        }
        for id in full {
            if let Some(slot) = s.clients.get(&id) {
                slot.overflowed.store(true, Ordering::Release);
                slot.kill.notify_one();
                self.metrics.sse.overflows.inc();
            }
            Self::remove_locked(&mut s, id);
        }
        s.live_from = to;
        s.last_seen = to.saturating_sub(1);
    }
}

/// Tails the journal from its head and feeds the hub until shutdown.
pub struct SseStage {
    journal: Arc<Journal>,
    routing: Routing,
    hub: Arc<Hub>,
    pos: u64,
}

impl SseStage {
    pub fn new(journal: Arc<Journal>, routing: Routing, hub: Arc<Hub>) -> Self {
        let pos = lock(&hub.state).live_from;
        Self {
            journal,
            routing,
            hub,
            pos,
        }
    }

    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut head = self.journal.subscribe();
        let mut failing = false;
        loop {
            if *shutdown.borrow() {
                break;
            }
            match self.journal.read(self.pos, READ_BYTES).await {
                Ok(Read::Data(batch)) => {
                    if std::mem::take(&mut failing) {
                        info!("SSE: the journal is readable again");
                    }
                    self.hub.publish(&self.routing, batch.start, &batch.data);
                    self.pos = batch.end();
                }
                Ok(Read::Skip { to }) => {
                    if to > self.pos {
                        self.hub.hole(to);
                        self.pos = to;
                    } else {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                Ok(Read::AtHead) => {
                    tokio::select! {
                        _ = head.changed() => {}
                        _ = shutdown.changed() => {}
                    }
                }
                Err(e) => {
                    if !failing {
                        error!(error = %e, at = self.pos, "SSE: cannot read the journal; retrying");
                        failing = true;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(READ_RETRY) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        }
        self.hub.close();
    }
}
