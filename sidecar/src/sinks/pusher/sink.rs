//! The Pusher sink loop.
//!
//! ```text
//! journal ─► dispatcher ─┬─► lane 0 ─► batch ─► POST (retry in place) ─┐
//!  (cursor)   hash(channel) ├─► lane 1 ─► ...                           ├─► completions ─► commit cursor
//!                          └─► lane N-1                                 ┘
//! ```
//! Every event of a channel goes to the same lane, and a lane retries its
//! batch before taking the next one, so a channel's events arrive in order
//! even across outages. The cursor only moves past a journal read once every
//! event in it is delivered (or permanently refused and counted).

use std::collections::{HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use scada_core::frame::{Frame, FrameKind, Frames, MAX_BODY_LEN};
use scada_core::EventView;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use super::request_builder::{self as rb, Violation};
use super::service::{PusherError, PusherRetryLogic, PusherService};
use crate::config::PusherConfig;
use crate::metrics::SinkMetrics;
use crate::retry::{Backoff, Decision, RetryLogic};
use crate::sinks::reader::{JournalReader, Stop};
use crate::throttle::rules::Rules;

const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
const OUTAGE_LOG_EVERY: Duration = Duration::from_secs(30);
/// Journal bytes read per dispatch step.
const READ_BYTES: usize = 512 * 1024;

/// The events of one journal read; the cursor may pass `end` once `remaining` is 0.
struct ReadBatch {
    end: u64,
    remaining: AtomicUsize,
}

struct Item {
    frame: Bytes,
    read: Arc<ReadBatch>,
    created_us: u64,
}

impl Item {
    /// The event (validated on ingest, so decoding cannot fail here).
    fn event(&self) -> Option<EventView<'_>> {
        let f = Frame::parse(&self.frame, MAX_BODY_LEN).ok().flatten()?;
        EventView::decode(f.payload).ok()
    }
}

/// What lanes share with the dispatcher.
struct Shared {
    cfg: PusherConfig,
    rules: Arc<Rules>,
    service: PusherService,
    metrics: Arc<SinkMetrics>,
    completed: Notify,
    outstanding: AtomicUsize,
    logged_causes: Mutex<HashSet<String>>,
    stop: watch::Receiver<Stop>,
}

impl Shared {
    fn complete(&self, items: &[Item]) {
        for item in items {
            item.read.remaining.fetch_sub(1, Ordering::AcqRel);
        }
        self.outstanding.fetch_sub(items.len(), Ordering::AcqRel);
        self.completed.notify_one();
    }

    /// Logs a permanent failure once per cause; repeats are only counted.
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
        self.complete(items);
    }

    fn deadline(&self) -> Option<Instant> {
        match *self.stop.borrow() {
            Stop::Drain { deadline } => Some(deadline),
            Stop::No => None,
        }
    }
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

pub struct PusherSink {
    cfg: PusherConfig,
    reader: JournalReader,
    metrics: Arc<SinkMetrics>,
    rules: Arc<Rules>,
}

impl PusherSink {
    pub fn new(
        cfg: PusherConfig,
        reader: JournalReader,
        rules: Arc<Rules>,
    ) -> Result<Self, String> {
        // Build the service once here so configuration errors surface at start.
        PusherService::new(&cfg)?;
        let metrics = reader.metrics.clone();
        Ok(Self {
            cfg,
            reader,
            metrics,
            rules,
        })
    }

    pub async fn run(mut self, mut stop: watch::Receiver<Stop>) {
        let service = match PusherService::new(&self.cfg) {
            Ok(s) => s,
            Err(e) => {
                error!(sink = %self.metrics.name, error = %e, "pusher sink cannot start");
                return;
            }
        };
        info!(sink = %self.metrics.name, target = %self.cfg.base_url(), app_id = %self.cfg.app_id, max_batch = self.cfg.max_batch_events, lanes = self.cfg.max_in_flight, from = self.reader.position(), "pusher sink started");
        self.metrics.healthy.set(1);
        let shared = Arc::new(Shared {
            cfg: self.cfg.clone(),
            rules: self.rules.clone(),
            service,
            metrics: self.metrics.clone(),
            completed: Notify::new(),
            outstanding: AtomicUsize::new(0),
            logged_causes: Mutex::new(HashSet::new()),
            stop: stop.clone(),
        });
        let lane_count = self.cfg.max_in_flight;
        let queue = (self.cfg.max_batch_events * 8).max(64);
        let max_outstanding = (lane_count * queue * 2).max(4096);
        let mut lanes = Vec::with_capacity(lane_count);
        let mut tasks = JoinSet::new();
        for _ in 0..lane_count {
            let (tx, rx) = mpsc::channel(queue);
            lanes.push(tx);
            tasks.spawn(lane(rx, shared.clone()));
        }
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
                if frame.kind != FrameKind::Event {
                    continue;
                }
                let Ok(ev) = EventView::decode(frame.payload) else {
                    continue;
                };
                let item = Item {
                    frame: bytes,
                    read: read.clone(),
                    created_us: ev.created_us,
                };
                if let Err(v) = rb::check(&self.cfg, &ev) {
                    let cause = match v {
                        Violation::DataTooLarge { .. } => "data over max_event_bytes",
                        Violation::RequestTooLarge { .. } => "request over max_request_bytes",
                    };
                    read.remaining.fetch_add(1, Ordering::AcqRel);
                    shared.outstanding.fetch_add(1, Ordering::AcqRel);
                    shared.permanent(cause, &v.to_string(), &[item]);
                    continue;
                }
                let mut h = std::collections::hash_map::DefaultHasher::new();
                ev.channels().next().unwrap_or("").hash(&mut h);
                routed.push(((h.finish() % lane_count as u64) as usize, item));
            }
            read.remaining.fetch_add(routed.len(), Ordering::AcqRel);
            shared.outstanding.fetch_add(routed.len(), Ordering::AcqRel);
            if let Err(e) = self.reader.attempt(batch.end()) {
                error!(sink = %self.metrics.name, error = %e, "cannot persist cursor");
            }
            self.reader.count_replayed(batch.start, routed.len() as u64);
            reads.push_back(read);
            for (lane, item) in routed {
                if lanes[lane].send(item).await.is_err() {
                    error!(sink = %self.metrics.name, "a lane stopped unexpectedly");
                }
            }
        }
        // Drain: lanes finish what they hold (until the stop deadline), then stop.
        drop(lanes);
        while tasks.join_next().await.is_some() {}
        self.commit_completed(&mut reads);
        info!(sink = %self.metrics.name, at = self.reader.position(), "pusher sink stopped");
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
            if let Err(e) = self.reader.commit(offset) {
                error!(sink = %self.metrics.name, error = %e, "cannot persist cursor");
            }
        }
    }
}

/// One lane: batches what arrives within the linger window, sends, retries in place.
async fn lane(mut rx: mpsc::Receiver<Item>, shared: Arc<Shared>) {
    let cfg = &shared.cfg;
    let mut carry: Option<Item> = None;
    let mut backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
    loop {
        let first = match carry.take() {
            Some(i) => i,
            None => match rx.recv().await {
                Some(i) => i,
                None => return,
            },
        };
        let Some(ev) = first.event() else {
            shared.complete(&[first]);
            continue;
        };
        let partly_throttled = !ev.is_derived() && ev.channels().any(|c| shared.rules.throttles(c));
        if ev.channel_count > 1 || partly_throttled {
            let mut body = Vec::new();
            let rules = &shared.rules;
            let derived = ev.is_derived();
            rb::events_body(&mut body, &ev, cfg.idempotency_key, &|c| {
                derived || !rules.throttles(c)
            });
            if !deliver(
                &shared,
                "events",
                Bytes::from(body),
                vec![first],
                &mut backoff,
            )
            .await
            {
                return;
            }
            continue;
        }
        let mut body = Vec::with_capacity(2048);
        rb::batch_open(&mut body);
        rb::batch_item(&mut body, &ev, cfg.idempotency_key);
        let mut items = vec![first];
        let deadline = tokio::time::Instant::now() + cfg.linger();
        while items.len() < cfg.max_batch_events {
            let item = match rx.try_recv() {
                Ok(i) => i,
                Err(_) => match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(i)) => i,
                    _ => break,
                },
            };
            let Some(ev) = item.event() else {
                shared.complete(&[item]);
                continue;
            };
            let before = body.len();
            if ev.channel_count > 1
                || (!ev.is_derived() && ev.channels().any(|c| shared.rules.throttles(c)))
            {
                carry = Some(item);
                break;
            }
            rb::batch_item(&mut body, &ev, cfg.idempotency_key);
            if cfg.max_request_bytes > 0 && body.len() + 2 > cfg.max_request_bytes {
                body.truncate(before);
                carry = Some(item);
                break;
            }
            items.push(item);
        }
        rb::batch_close(&mut body);
        if !deliver(
            &shared,
            "batch_events",
            Bytes::from(body),
            items,
            &mut backoff,
        )
        .await
        {
            return;
        }
    }
}

/// Sends one request until it succeeds or is permanently refused. False when
/// the stop deadline passed first (the events stay journaled).
async fn deliver(
    shared: &Shared,
    endpoint: &str,
    body: Bytes,
    items: Vec<Item>,
    backoff: &mut Backoff,
) -> bool {
    let m = &shared.metrics;
    let mut outage_logged: Option<Instant> = None;
    loop {
        m.requests.inc();
        let result = shared.service.post(endpoint, body.clone()).await;
        match result {
            Ok(()) => {
                if backoff.attempts() > 0 {
                    info!(sink = %m.name, attempts = backoff.attempts(), "pusher target answers again; delivering");
                }
                backoff.reset();
                m.healthy.set(1);
                m.delivered.add(items.len() as u64);
                m.messages.add(items.len() as u64);
                let oldest = items.iter().map(|i| i.created_us).min().unwrap_or(0);
                m.last_latency_us.set(now_us().saturating_sub(oldest));
                shared.complete(&items);
                return true;
            }
            Err(e) => match PusherRetryLogic.decide(&e) {
                Decision::GiveUp(reason) => {
                    if items.len() > 1 {
                        // Find the culprit(s): resend each event on its own.
                        for item in items {
                            let Some(ev) = item.event() else {
                                shared.complete(&[item]);
                                continue;
                            };
                            let mut one = Vec::new();
                            rb::batch_open(&mut one);
                            rb::batch_item(&mut one, &ev, shared.cfg.idempotency_key);
                            rb::batch_close(&mut one);
                            if !Box::pin(deliver(
                                shared,
                                "batch_events",
                                Bytes::from(one),
                                vec![item],
                                backoff,
                            ))
                            .await
                            {
                                return false;
                            }
                        }
                        return true;
                    }
                    let cause = match &e {
                        PusherError::Status { status, .. } => format!("HTTP {status}"),
                        PusherError::Transport { .. } => "transport".into(),
                    };
                    shared.permanent(&cause, &reason, &items);
                    return true;
                }
                Decision::Retry => {
                    m.retries.inc();
                    if e.maybe_delivered() {
                        m.resent_after_unclear_failure.add(items.len() as u64);
                    }
                    m.healthy.set(0);
                    if outage_logged.is_none_or(|t| t.elapsed() >= OUTAGE_LOG_EVERY) {
                        warn!(sink = %m.name, error = %e, attempts = backoff.attempts() + 1, "pusher target unavailable; events stay in the journal and will be retried in order");
                        outage_logged = Some(Instant::now());
                    }
                    let delay = backoff.next_delay();
                    if let Some(deadline) = shared.deadline() {
                        if Instant::now() + delay >= deadline {
                            warn!(sink = %m.name, events = items.len(), "shutdown deadline reached while the target is unavailable; events stay journaled for the next start");
                            return false;
                        }
                    }
                    let mut stop = shared.stop.clone();
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop.changed() => {}
                    }
                }
            },
        }
    }
}
