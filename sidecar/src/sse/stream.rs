//! One client's stream: what comes before the live events (a gap, the last
//! values, or the journal after its `Last-Event-ID`), then its queue.

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::response::sse::Event;
use bytes::Bytes;
use futures_util::Stream;
use scada_core::frame::{Frame, MAX_BODY_LEN};
use serde_json::json;
use tokio::sync::watch;
use tracing::warn;

use super::{render, wanted_event, Item, Registration, READ_BYTES, READ_RETRY};
use crate::journal::{Journal, Read};
use crate::metrics::Metrics;
use crate::routing::Routing;

/// Reads the journal from `pos` up to the live point.
struct CatchUp {
    pos: u64,
    until: u64,
    batch: Option<(u64, Bytes, usize)>,
}

/// What a client asked for: its channels, the envelope, its token's expiry.
pub struct Request {
    /// In request order (the envelope lists a client's channels so).
    pub channels: Vec<String>,
    /// `?envelope=1`: data names the event's channels (see [`Item::to_event`]).
    pub envelope: bool,
    /// The token's expiry (unix seconds): the stream ends with `event: expired`
    /// then, so access that was revoked ends with its token.
    pub expires: Option<u64>,
}

pub struct ClientStream {
    pending: VecDeque<Item>,
    catch_up: Option<CatchUp>,
    reg: Registration,
    channels: HashSet<String>,
    request: Request,
    expires_at: Option<tokio::time::Instant>,
    journal: Arc<Journal>,
    routing: Routing,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
    /// The SSE id of the last event sent in journal order (what an alarm
    /// that overtakes queued events carries).
    last_in_order: Option<u64>,
    /// Held for the stream's life (connection counts).
    _guard: Box<dyn Send + Sync>,
    done: bool,
}

impl Drop for ClientStream {
    fn drop(&mut self) {
        self.metrics.sse.clients_connected.sub(1);
    }
}

/// Where the stream starts.
pub enum Start {
    /// Last values, then live.
    Latest,
    /// Everything after this journal position (exclusive), from the journal.
    After { next: u64 },
    /// Everything from `from` (already announced by a gap), from the journal.
    From { from: u64 },
}

#[allow(clippy::too_many_arguments)]
impl ClientStream {
    pub fn new(
        reg: Registration,
        start: Start,
        first: Vec<Item>,
        request: Request,
        journal: Arc<Journal>,
        routing: Routing,
        metrics: Arc<Metrics>,
        shutdown: watch::Receiver<bool>,
        guard: Box<dyn Send + Sync>,
    ) -> Self {
        metrics.sse.clients_connected.inc();
        metrics.sse.clients_total.inc();
        // A first comment at once: hyper sends the response head with the
        // first body bytes, and a client waits for the head to see it is connected.
        let mut pending: VecDeque<Item> =
            VecDeque::from([Item::control(Event::default().comment("connected"))]);
        pending.extend(first);
        let catch_up = match start {
            Start::Latest => {
                pending.extend(reg.last_values.iter().map(|i| (**i).clone()));
                None
            }
            Start::After { next: pos } | Start::From { from: pos } => (pos < reg.live_from)
                .then_some(CatchUp {
                    pos,
                    until: reg.live_from,
                    batch: None,
                }),
        };
        Self {
            pending,
            catch_up,
            reg,
            channels: request.channels.iter().cloned().collect(),
            expires_at: request.expires.map(expiry_instant),
            request,
            journal,
            routing,
            metrics,
            shutdown,
            last_in_order: None,
            _guard: guard,
            done: false,
        }
    }

    pub fn into_stream(self) -> impl Stream<Item = Result<Event, Infallible>> + Send {
        futures_util::stream::unfold(self, |mut s| async move {
            let (item, overtakes) = s.next().await?;
            if item.offset.is_some() {
                s.metrics.sse.events_sent.inc();
            }
            let id = if overtakes {
                s.last_in_order
            } else {
                if item.offset.is_some() {
                    s.last_in_order = item.offset;
                }
                item.offset
            };
            let event = item.to_event_with_id(&s.request.channels, s.request.envelope, id);
            Some((Ok(event), s))
        })
    }

    /// The next item, and whether it is an alarm overtaking queued events.
    async fn next(&mut self) -> Option<(Item, bool)> {
        if self.done || *self.shutdown.borrow() {
            return None;
        }
        if self
            .expires_at
            .is_some_and(|at| tokio::time::Instant::now() >= at)
        {
            self.done = true;
            return Some((expired(), false));
        }
        if let Some(item) = self.pending.pop_front() {
            return Some((item, false));
        }
        if self.catch_up.is_some() {
            if let Some(item) = self.catch_up_next().await {
                return Some((item, false));
            }
            self.catch_up = None;
            if *self.shutdown.borrow() {
                return None;
            }
        }
        // Alarms first: the priority queue before the telemetry queue.
        if let Ok(item) = self.reg.priority_rx.try_recv() {
            let overtakes = !self.reg.rx.is_empty();
            return Some(((*item).clone(), overtakes));
        }
        tokio::select! {
            biased;
            Some(item) = self.reg.priority_rx.recv() => {
                // Events queued before it arrived are older: it overtakes them.
                let overtakes = !self.reg.rx.is_empty();
                Some(((*item).clone(), overtakes))
            }
            item = self.reg.rx.recv() => match item {
                Some(item) => Some(((*item).clone(), false)),
                None => {
                    self.done = true;
                    self.reg.overflowed.load(Ordering::Acquire).then(|| (overflow(), false))
                }
            },
            _ = self.shutdown.changed() => None,
            _ = sleep_until(self.expires_at), if self.expires_at.is_some() => {
                self.done = true;
                Some((expired(), false))
            }
        }
    }

    /// The next wanted event before the live point, or `None` once there.
    async fn catch_up_next(&mut self) -> Option<Item> {
        loop {
            let c = self.catch_up.as_mut()?;
            if let Some((start, data, at)) = &mut c.batch {
                if let Ok(Some(frame)) = Frame::parse(&data[*at..], MAX_BODY_LEN) {
                    let offset = *start + *at as u64;
                    *at += frame.len();
                    if offset >= c.until {
                        return None;
                    }
                    let channels = &self.channels;
                    if let Some(ev) =
                        wanted_event(&self.routing, &frame, |ch| channels.contains(ch))
                    {
                        let on = self
                            .routing
                            .sink_channels(&ev)
                            .map(str::to_string)
                            .collect();
                        if let Some(item) = render(offset, &ev, on) {
                            return Some(item);
                        }
                    }
                    continue;
                }
                c.pos = *start + data.len() as u64;
                c.batch = None;
            }
            if c.pos >= c.until || *self.shutdown.borrow() {
                return None;
            }
            match self.journal.read(c.pos, READ_BYTES).await {
                Ok(Read::Data(batch)) => c.batch = Some((batch.start, batch.data, 0)),
                Ok(Read::Skip { to }) if to > c.pos => {
                    let from = c.pos;
                    c.pos = to;
                    self.metrics.sse.gaps.inc();
                    return Some(super::gap(
                        from.saturating_sub(1),
                        to,
                        "the journal no longer holds these events",
                    ));
                }
                Ok(Read::Skip { .. }) | Ok(Read::AtHead) => return None,
                Err(e) => {
                    warn!(error = %e, at = c.pos, "SSE: cannot read the journal for a resuming client; retrying");
                    tokio::time::sleep(READ_RETRY).await;
                }
            }
        }
    }
}

/// The final event of a client that did not keep up.
fn overflow() -> Item {
    Item::control(Event::default().event("overflow").data(
        json!({"reason": "the client did not read fast enough; reconnect with Last-Event-ID to resume"})
            .to_string(),
    ))
}

/// The final event of a stream whose token expired.
fn expired() -> Item {
    Item::control(Event::default().event("expired").data(
        json!({"reason": "token expired; reconnect with a new token and Last-Event-ID to resume"})
            .to_string(),
    ))
}

/// The runtime instant of a unix time (seconds).
fn expiry_instant(unix_secs: u64) -> tokio::time::Instant {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let left = Duration::from_secs(unix_secs).saturating_sub(now);
    tokio::time::Instant::now() + left
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
