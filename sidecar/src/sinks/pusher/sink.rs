//! The Pusher sink loop.
//!
//! ```text
//! journal ─► dispatcher ─┬─► lane 0 ─► driver: batch, POST, retry in place ─┐
//!  (cursor)   lane per    ├─► lane 1 ─► ...                                  ├─► completions ─► commit cursor
//!             channel     └─► lane N-1                                       ┘
//! ```
//! Every channel has one lane, and a lane retries its request before taking
//! the next one, so a channel's events arrive in order even across outages.
//! An event delivered on channels of several lanes goes through the lowest of
//! them, but only once everything dispatched before it to each of those lanes
//! is delivered; and whatever is dispatched to them after it waits until it is
//! delivered (a fence). So an event on several channels neither overtakes nor
//! is overtaken on any of them. The cursor only moves past a journal read
//! once every event in it is delivered (or permanently refused and counted).

use std::collections::{HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use scada_core::frame::{Frames, MAX_BODY_LEN};
use scada_core::EventView;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinSet;
use tracing::{error, info};

use super::request_builder::{self as rb, Violation};
use super::service::{PusherError, PusherRetryLogic, PusherService};
use crate::config::PusherConfig;
use crate::journal::{JournalReader, Stop};
use crate::metrics::SinkMetrics;
use crate::routing::{Route, Routing};
use crate::sinks::driver::{self, Batch, Encoder, Outcome, Pull, Retrier, Service, Source};
use crate::sinks::{event_in_frame, SinkError};
use crate::util::{now_us, sleep_until};

/// Journal bytes read per dispatch step.
const READ_BYTES: usize = 512 * 1024;

/// The events of one journal read; the cursor may pass `end` once `remaining` is 0.
struct ReadBatch {
    end: u64,
    remaining: AtomicUsize,
}

/// One event on its way through a lane.
pub struct Item {
    frame: Bytes,
    read: Arc<ReadBatch>,
    created_us: u64,
    /// Its number in its lane (lanes deliver in this order).
    seq: u64,
    /// Deliveries to wait for first: `(lane, seq)`.
    after: Vec<(usize, u64)>,
}

impl Item {
    /// The event (validated on ingest and by the journal's CRC on the way in).
    fn event(&self) -> Option<EventView<'_>> {
        event_in_frame(&self.frame)
    }
}

/// What lanes share with the dispatcher.
struct Shared {
    cfg: PusherConfig,
    routing: Routing,
    metrics: Arc<SinkMetrics>,
    completed: Notify,
    outstanding: AtomicUsize,
    logged_causes: Mutex<HashSet<String>>,
    /// Per lane: the seq of its last delivered (or refused) item.
    delivered: Vec<watch::Sender<u64>>,
}

impl Shared {
    fn complete(&self, lane: usize, items: &[Item]) {
        for item in items {
            item.read.remaining.fetch_sub(1, Ordering::AcqRel);
        }
        if let Some(last) = items.iter().map(|i| i.seq).max() {
            if let Some(tx) = self.delivered.get(lane) {
                tx.send_if_modified(|v| {
                    let moved = last > *v;
                    *v = (*v).max(last);
                    moved
                });
            }
        }
        self.outstanding.fetch_sub(items.len(), Ordering::AcqRel);
        self.completed.notify_one();
    }

    /// Counts a permanent failure; logs it once per cause (repeats are only counted).
    fn permanent(&self, cause: &str, detail: &str, items: &[Item]) {
        self.metrics.permanent_failures.add(items.len() as u64);
        let first = self
            .logged_causes
            .lock()
            .map(|mut seen| seen.insert(cause.to_string()))
            .unwrap_or(true);
        if first {
            let (id, channel) = items
                .first()
                .and_then(|i| {
                    i.event().map(|e| {
                        (
                            e.id.to_string(),
                            e.channels().next().unwrap_or("").to_string(),
                        )
                    })
                })
                .unwrap_or_default();
            error!(sink = %self.metrics.name, %cause, %detail, event_id = %id, %channel, events = items.len(), "event(s) permanently refused; counted in permanent_failures, not retried (further events with this cause are only counted)");
        }
    }
}

/// A request: the endpoint, its body, and the events it carries.
pub struct Request {
    endpoint: &'static str,
    body: Bytes,
    items: Vec<Item>,
}

impl Batch for Request {
    fn events(&self) -> u64 {
        self.items.len() as u64
    }
}

impl Service for PusherService {
    type Request = Request;
    type Error = PusherError;

    async fn call(&mut self, request: &Request) -> Result<(), PusherError> {
        self.post(request.endpoint, request.body.clone()).await
    }

    fn maybe_delivered(error: &PusherError) -> bool {
        error.maybe_delivered()
    }
}

/// A lane's encoder: events into one `batch_events` request body (events on
/// one channel), or an `/events` request of its own for an event on several
/// channels.
struct RequestEncoder {
    shared: Arc<Shared>,
    body: Vec<u8>,
    items: Vec<Item>,
    /// The request is an `/events` one: nothing may join.
    alone: bool,
}

impl RequestEncoder {
    fn single(&self, item: &Item) -> Option<Request> {
        let ev = item.event()?;
        let cfg = &self.shared.cfg;
        let routing = &self.shared.routing;
        let mut channels = routing.sink_channels(&ev);
        let first = channels.next()?;
        let mut body = Vec::new();
        if channels.next().is_some() {
            rb::events_body(&mut body, &ev, cfg.idempotency_key, &|c| {
                routing.delivers_on(&ev, c)
            });
            return Some(Request {
                endpoint: "events",
                body: Bytes::from(body),
                items: Vec::new(),
            });
        }
        rb::batch_open(&mut body);
        rb::batch_item(&mut body, &ev, first, cfg.idempotency_key);
        rb::batch_close(&mut body);
        Some(Request {
            endpoint: "batch_events",
            body: Bytes::from(body),
            items: Vec::new(),
        })
    }
}

impl Encoder for RequestEncoder {
    type Item = Item;
    type Request = Request;

    fn push(&mut self, item: Item) -> Result<(), Item> {
        if self.alone {
            return Err(item);
        }
        let multi = item
            .event()
            .is_some_and(|ev| self.shared.routing.sink_channels(&ev).nth(1).is_some());
        if multi && !self.items.is_empty() {
            // Several channels: an `/events` request of its own.
            return Err(item);
        }
        let before = self.body.len();
        if let Some(ev) = item.event() {
            let cfg = &self.shared.cfg;
            let routing = &self.shared.routing;
            if multi {
                rb::events_body(&mut self.body, &ev, cfg.idempotency_key, &|c| {
                    routing.delivers_on(&ev, c)
                });
            } else {
                if self.items.is_empty() {
                    rb::batch_open(&mut self.body);
                }
                let channel = routing.sink_channels(&ev).next().unwrap_or_default();
                rb::batch_item(&mut self.body, &ev, channel, cfg.idempotency_key);
            }
        }
        let limit = self.shared.cfg.max_request_bytes;
        if !multi && limit > 0 && self.body.len() + 2 > limit && !self.items.is_empty() {
            self.body.truncate(before);
            return Err(item);
        }
        self.alone = multi;
        self.items.push(item);
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn is_full(&self) -> bool {
        self.alone || self.items.len() >= self.shared.cfg.max_batch_events
    }

    fn take(&mut self) -> Request {
        let endpoint = if self.alone {
            "events"
        } else {
            rb::batch_close(&mut self.body);
            "batch_events"
        };
        self.alone = false;
        Request {
            endpoint,
            body: Bytes::from(std::mem::take(&mut self.body)),
            items: std::mem::take(&mut self.items),
        }
    }

    fn split(&mut self, request: Request) -> Result<Vec<Request>, Request> {
        if request.items.len() < 2 {
            return Err(request);
        }
        Ok(request
            .items
            .into_iter()
            .map(|item| {
                let mut r = self.single(&item).unwrap_or(Request {
                    endpoint: "batch_events",
                    body: Bytes::new(),
                    items: Vec::new(),
                });
                r.items.push(item);
                r
            })
            .collect())
    }
}

/// A lane's items, in dispatch order, held back behind their fences.
struct Lane {
    index: usize,
    rx: mpsc::Receiver<Item>,
    held: Option<Item>,
    shared: Arc<Shared>,
    stop: watch::Receiver<Stop>,
}

impl Lane {
    /// Waits until lane `lane` delivered up to `seq`; false at the stop deadline.
    async fn wait_delivered(&mut self, lane: usize, seq: u64) -> bool {
        let Some(tx) = self.shared.delivered.get(lane) else {
            return true;
        };
        let mut rx = tx.subscribe();
        loop {
            if *rx.borrow_and_update() >= seq {
                return true;
            }
            let deadline = Stop::current(&self.stop).deadline();
            tokio::select! {
                r = rx.changed() => if r.is_err() { return false },
                _ = sleep_until(deadline) => return false,
                _ = Stop::changed(&mut self.stop) => {}
            }
        }
    }
}

impl Source for Lane {
    type Item = Item;
    type Request = Request;
    type Error = PusherError;

    async fn next(&mut self, until: Option<tokio::time::Instant>) -> Pull<Item> {
        let mut item = match self.held.take() {
            Some(item) => item,
            None => {
                let got = match until {
                    Some(t) => match self.rx.try_recv() {
                        Ok(item) => Some(item),
                        Err(_) => match tokio::time::timeout_at(t, self.rx.recv()).await {
                            Ok(got) => got,
                            Err(_) => return Pull::Flush,
                        },
                    },
                    None => self.rx.recv().await,
                };
                match got {
                    Some(item) => item,
                    None => return Pull::Done,
                }
            }
        };
        if !item.after.is_empty() {
            if until.is_some() {
                // What this lane holds goes first; then wait for the fences.
                self.held = Some(item);
                return Pull::Flush;
            }
            for (lane, seq) in std::mem::take(&mut item.after) {
                if !self.wait_delivered(lane, seq).await {
                    return Pull::Done;
                }
            }
        }
        Pull::Item(item)
    }

    fn done(&mut self, request: Request, outcome: Outcome<PusherError>) {
        let m = &self.shared.metrics;
        match outcome {
            Outcome::Delivered => {
                m.delivered.add(request.items.len() as u64);
                m.messages.add(request.items.len() as u64);
                let oldest = request
                    .items
                    .iter()
                    .map(|i| i.created_us)
                    .min()
                    .unwrap_or(0);
                m.last_latency_us.set(now_us().saturating_sub(oldest));
            }
            Outcome::Refused { error } => {
                let cause = match &error {
                    PusherError::Status { status, .. } => format!("HTTP {status}"),
                    PusherError::Transport { .. } => "transport".into(),
                };
                self.shared
                    .permanent(&cause, &error.to_string(), &request.items);
            }
            Outcome::Stopped => return,
        }
        self.shared.complete(self.index, &request.items);
    }
}

/// One lane: batches what arrives within the linger window, sends, retries in place.
async fn lane(lane: Lane, mut service: PusherService, mut stop: watch::Receiver<Stop>) {
    let shared = lane.shared.clone();
    let mut lane = lane;
    let mut encoder = RequestEncoder {
        shared: shared.clone(),
        body: Vec::with_capacity(2048),
        items: Vec::new(),
        alone: false,
    };
    let mut retrier = Retrier::new(
        PusherRetryLogic,
        shared.metrics.clone(),
        "the pusher target",
    );
    driver::run(
        &mut lane,
        &mut encoder,
        &mut service,
        &mut retrier,
        shared.cfg.linger(),
        &mut stop,
    )
    .await;
}

/// Where the dispatcher sends each event, and what it must wait for.
struct Dispatch {
    lanes: usize,
    /// Per lane: the seq of the last item sent to it.
    last: Vec<u64>,
    /// Per lane: deliveries the next item must wait for (an event on
    /// several lanes that was dispatched after that lane's last item).
    fences: Vec<Vec<(usize, u64)>>,
}

impl Dispatch {
    fn new(lanes: usize) -> Self {
        Self {
            lanes,
            last: vec![0; lanes],
            fences: vec![Vec::new(); lanes],
        }
    }

    fn lane_of(&self, channel: &str) -> usize {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        channel.hash(&mut h);
        (h.finish() % self.lanes as u64) as usize
    }

    /// The lane for an event on `channels`, its seq there and what it waits for.
    fn route<'a>(
        &mut self,
        channels: impl Iterator<Item = &'a str>,
    ) -> (usize, u64, Vec<(usize, u64)>) {
        let mut lanes: Vec<usize> = channels.map(|c| self.lane_of(c)).collect();
        lanes.sort_unstable();
        lanes.dedup();
        let leader = lanes.first().copied().unwrap_or(0);
        self.last[leader] += 1;
        let seq = self.last[leader];
        let mut after = std::mem::take(&mut self.fences[leader]);
        for &other in lanes.iter().skip(1) {
            // Everything before it on the other lanes is delivered first...
            after.append(&mut self.fences[other]);
            if self.last[other] > 0 {
                after.push((other, self.last[other]));
            }
            // ...and what comes after it there waits for it.
            self.fences[other].push((leader, seq));
        }
        (leader, seq, after)
    }
}

pub struct PusherSink {
    cfg: PusherConfig,
    reader: JournalReader,
    routing: Routing,
    service: PusherService,
}

impl PusherSink {
    pub fn new(
        cfg: PusherConfig,
        reader: JournalReader,
        routing: Routing,
    ) -> Result<Self, SinkError> {
        // Built here so configuration errors surface at start.
        let service = PusherService::new(&cfg)?;
        Ok(Self {
            cfg,
            reader,
            routing,
            service,
        })
    }

    pub async fn run(mut self, mut stop: watch::Receiver<Stop>) {
        let metrics = self.reader.metrics.clone();
        info!(sink = %metrics.name, target = %self.cfg.base_url(), app_id = %self.cfg.app_id, max_batch = self.cfg.max_batch_events, lanes = self.cfg.max_in_flight, from = self.reader.position(), "pusher sink started");
        metrics.healthy.set(true);
        let lane_count = self.cfg.max_in_flight.max(1);
        let shared = Arc::new(Shared {
            cfg: self.cfg.clone(),
            routing: self.routing.clone(),
            metrics: metrics.clone(),
            completed: Notify::new(),
            outstanding: AtomicUsize::new(0),
            logged_causes: Mutex::new(HashSet::new()),
            delivered: (0..lane_count).map(|_| watch::channel(0).0).collect(),
        });
        let queue = (self.cfg.max_batch_events * 8).max(64);
        let max_outstanding = (lane_count * queue * 2).max(4096);
        let mut lanes = Vec::with_capacity(lane_count);
        let mut tasks = JoinSet::new();
        for index in 0..lane_count {
            let (tx, rx) = mpsc::channel(queue);
            lanes.push(tx);
            let lane_feed = Lane {
                index,
                rx,
                held: None,
                shared: shared.clone(),
                stop: stop.clone(),
            };
            tasks.spawn(lane(lane_feed, self.service.clone(), stop.clone()));
        }
        let mut dispatch = Dispatch::new(lane_count);
        let mut reads: VecDeque<Arc<ReadBatch>> = VecDeque::new();
        loop {
            self.commit_completed(&mut reads);
            if shared.outstanding.load(Ordering::Acquire) >= max_outstanding {
                tokio::select! {
                    _ = shared.completed.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
                continue;
            }
            let next = tokio::select! {
                n = self.reader.next_batch(READ_BYTES, &mut stop) => n,
                _ = shared.completed.notified() => continue,
            };
            let Some(batch) = next else { break };
            let read = Arc::new(ReadBatch {
                end: batch.end(),
                remaining: AtomicUsize::new(0),
            });
            let mut routed = Vec::new();
            let mut at = 0usize;
            for frame in Frames::new(&batch.data, MAX_BODY_LEN).map_while(Result::ok) {
                let bytes = batch.data.slice(at..at + frame.len());
                at += frame.len();
                let ev = match self.routing.for_sink(frame.kind, frame.payload) {
                    Route::Deliver(ev) => ev,
                    Route::Throttled => {
                        metrics.throttled.inc();
                        continue;
                    }
                    Route::Skip => continue,
                };
                let first = self.routing.sink_channels(&ev).next().unwrap_or_default();
                let mut item = Item {
                    frame: bytes,
                    read: read.clone(),
                    created_us: ev.created_us,
                    seq: 0,
                    after: Vec::new(),
                };
                if let Err(v) = rb::check_on(&self.cfg, &ev, first) {
                    let cause = match v {
                        Violation::DataTooLarge { .. } => "data over max_event_bytes",
                        Violation::RequestTooLarge { .. } => "request over max_request_bytes",
                    };
                    shared.permanent(cause, &v.to_string(), std::slice::from_ref(&item));
                    continue;
                }
                let (lane, seq, after) = dispatch.route(self.routing.sink_channels(&ev));
                item.seq = seq;
                item.after = after;
                routed.push((lane, item));
            }
            read.remaining.fetch_add(routed.len(), Ordering::AcqRel);
            shared.outstanding.fetch_add(routed.len(), Ordering::AcqRel);
            self.reader.attempt(batch.end());
            self.reader.count_replayed(batch.start, routed.len() as u64);
            reads.push_back(read);
            for (lane, item) in routed {
                if lanes[lane].send(item).await.is_err() {
                    error!(sink = %metrics.name, "a lane stopped unexpectedly");
                }
            }
        }
        // Drain: lanes finish what they hold (until the stop deadline), then stop.
        drop(lanes);
        while tasks.join_next().await.is_some() {}
        self.commit_completed(&mut reads);
        info!(sink = %metrics.name, at = self.reader.position(), "pusher sink stopped");
    }

    fn commit_completed(&mut self, reads: &mut VecDeque<Arc<ReadBatch>>) {
        let mut upto = None;
        while let Some(front) = reads.front() {
            if front.remaining.load(Ordering::Acquire) != 0 {
                break;
            }
            upto = Some(front.end);
            reads.pop_front();
        }
        if let Some(offset) = upto {
            self.reader.commit(offset);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_on_several_lanes_waits_for_them_and_fences_what_follows() {
        let mut d = Dispatch::new(4);
        // Find channels on distinct lanes.
        let names: Vec<String> = (0..100).map(|i| format!("ch-{i}")).collect();
        let on = |lane: usize| {
            names
                .iter()
                .find(|n| Dispatch::new(4).lane_of(n) == lane)
                .unwrap()
                .as_str()
        };
        let (a, b, c) = (on(0), on(1), on(2));
        assert_eq!(d.route([b].into_iter()), (1, 1, vec![]));
        assert_eq!(d.route([b].into_iter()), (1, 2, vec![]));
        // On lanes 0 and 1: goes through lane 0 after lane 1's first two.
        assert_eq!(d.route([a, b].into_iter()), (0, 1, vec![(1, 2)]));
        // The next event on lane 1 waits for it.
        assert_eq!(d.route([b].into_iter()), (1, 3, vec![(0, 1)]));
        assert_eq!(d.route([b].into_iter()), (1, 4, vec![]));
        // Lanes 1 and 2, then 2 and 0: the second waits for the first too.
        assert_eq!(d.route([b, c].into_iter()), (1, 5, vec![]));
        assert_eq!(d.route([c, a].into_iter()), (0, 2, vec![(1, 5)]));
        assert_eq!(d.route([c].into_iter()), (2, 1, vec![(0, 2)]));
    }
}
