//! What the Redis and Pusher sinks share: batching events into requests and
//! sending each request until it is delivered or refused, in order.
//!
//! ```text
//! Source ──items──► Encoder ──request──► Retrier ──► Service (the I/O)
//!   (journal,        (fills up to max events/bytes      │ RetryLogic: retry or give up
//!    a lane)          or the linger time)               └► done(request, outcome): cursors, counters
//! ```
//! In the spirit of vector's `Batcher`/`BatchConfig` and `RetryLogic`: a sink
//! says how to encode (an [`Encoder`]), how to send (a [`Service`]) and which
//! failures are permanent (a [`RetryLogic`]); [`run`] does the rest the same
//! way for every destination: one request at a time, retried in place with
//! jittered backoff (so order is kept), outages logged once per 30 s, given up
//! only at the shutdown deadline (the events stay journaled).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{info, warn};

use crate::journal::Stop;
use crate::metrics::SinkMetrics;
use crate::retry::{Backoff, Decision, RetryLogic};

const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// While an outage lasts, say so at most this often.
const OUTAGE_LOG_EVERY: Duration = Duration::from_secs(30);

/// What the next item is.
pub enum Pull<T> {
    Item(T),
    /// Nothing more for the request being built: send it.
    Flush,
    /// No more items (stop requested or the source closed).
    Done,
}

/// Where a sink's items come from, and where they are reported done
/// (cursors move, counters count).
pub trait Source {
    type Item;
    type Request;
    type Error;
    /// The next item. `until` is set while a request is being filled: give
    /// up then with [`Pull::Flush`]. Without it, wait as long as it takes.
    fn next(
        &mut self,
        until: Option<tokio::time::Instant>,
    ) -> impl Future<Output = Pull<Self::Item>> + Send;
    /// A request is about to be sent (once, before its first attempt).
    fn sending(&mut self, _request: &Self::Request) {}
    /// A request was delivered or permanently refused (never called for
    /// one still pending at the stop deadline).
    fn done(&mut self, request: Self::Request, outcome: Outcome<Self::Error>);
}

/// A request's size, for counters and to skip empty ones.
pub trait Batch {
    /// Events in it (0: nothing to send, e.g. only a cursor move).
    fn events(&self) -> u64;
}

/// Builds requests from items, in order.
pub trait Encoder {
    type Item;
    type Request: Batch;
    /// Adds `item`; gives it back when it does not fit, to start the next
    /// request. An empty request always takes an item.
    fn push(&mut self, item: Self::Item) -> Result<(), Self::Item>;
    /// True when no item was pushed since the last [`Encoder::take`].
    fn is_empty(&self) -> bool;
    /// True when nothing more may join.
    fn is_full(&self) -> bool;
    /// The request built so far; a new one begins.
    fn take(&mut self) -> Self::Request;
    /// The request as one request per event, to find the one a destination
    /// refuses; `Err` gives it back when it cannot be split.
    fn split(&mut self, request: Self::Request) -> Result<Vec<Self::Request>, Self::Request> {
        Err(request)
    }
}

/// Sends a request: the I/O.
pub trait Service {
    type Request;
    type Error: fmt::Display;
    fn call(
        &mut self,
        request: &Self::Request,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// True when a failed request may have reached the destination, so
    /// resending it may deliver its events twice.
    fn maybe_delivered(error: &Self::Error) -> bool;
}

/// How a request ended.
#[derive(Debug)]
pub enum Outcome<E> {
    Delivered,
    /// A permanent failure: counted and logged by the sink, not retried.
    Refused {
        error: E,
    },
    /// The shutdown deadline passed first: the events stay journaled.
    Stopped,
}

/// Sends one request until it is delivered, refused, or the stop deadline.
pub struct Retrier<L> {
    logic: L,
    backoff: Backoff,
    metrics: Arc<SinkMetrics>,
    /// How logs name the destination ("redis", "the pusher target").
    target: &'static str,
}

impl<L: RetryLogic> Retrier<L>
where
    L::Error: fmt::Display,
{
    pub fn new(logic: L, metrics: Arc<SinkMetrics>, target: &'static str) -> Self {
        Self {
            logic,
            backoff: Backoff::new(BACKOFF_MIN, BACKOFF_MAX),
            metrics,
            target,
        }
    }

    pub async fn send<S>(
        &mut self,
        service: &mut S,
        request: &S::Request,
        events: u64,
        stop: &mut watch::Receiver<Stop>,
    ) -> Outcome<S::Error>
    where
        S: Service<Error = L::Error>,
    {
        let m = &self.metrics;
        let mut outage_logged: Option<Instant> = None;
        loop {
            m.requests.inc();
            let error = match service.call(request).await {
                Ok(()) => {
                    if self.backoff.attempts() > 0 {
                        info!(sink = %m.name, attempts = self.backoff.attempts(), "{} answers again; delivering", self.target);
                    }
                    self.backoff.reset();
                    m.healthy.set(true);
                    return Outcome::Delivered;
                }
                Err(e) => e,
            };
            if self.logic.decide(&error) == Decision::GiveUp {
                return Outcome::Refused { error };
            }
            m.retries.inc();
            if S::maybe_delivered(&error) {
                m.resent_after_unclear_failure.add(events);
            }
            m.healthy.set(false);
            if outage_logged.is_none_or(|t| t.elapsed() >= OUTAGE_LOG_EVERY) {
                warn!(sink = %m.name, error = %error, attempts = self.backoff.attempts() + 1, pending_events = events, "{} unavailable; events stay in the journal and will be retried in order", self.target);
                outage_logged = Some(Instant::now());
            }
            let delay = self.backoff.next_delay();
            if let Some(deadline) = Stop::current(stop).deadline() {
                if Instant::now() + delay >= deadline {
                    warn!(sink = %m.name, pending_events = events, "shutdown deadline reached with {} unavailable; events stay journaled for the next start", self.target);
                    return Outcome::Stopped;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = Stop::changed(stop) => {}
            }
        }
    }
}

/// The loop every sink runs: fill a request from `source` (up to the
/// encoder's limits, waiting at most `linger` once it has an item), send it
/// with `retrier`, report it to the source, repeat until the source is done
/// or the stop deadline passes.
pub async fn run<Src, Enc, Svc, L>(
    source: &mut Src,
    encoder: &mut Enc,
    service: &mut Svc,
    retrier: &mut Retrier<L>,
    linger: Duration,
    stop: &mut watch::Receiver<Stop>,
) where
    Src: Source<Item = Enc::Item, Request = Enc::Request, Error = Svc::Error>,
    Enc: Encoder,
    Svc: Service<Request = Enc::Request>,
    L: RetryLogic<Error = Svc::Error>,
    L::Error: fmt::Display,
{
    let mut carry: Option<Enc::Item> = None;
    loop {
        let mut until: Option<tokio::time::Instant> = None;
        let mut finished = false;
        loop {
            let item = match carry.take() {
                Some(item) => item,
                None => match source.next(until).await {
                    Pull::Item(item) => item,
                    Pull::Flush => break,
                    Pull::Done => {
                        finished = true;
                        break;
                    }
                },
            };
            until.get_or_insert_with(|| tokio::time::Instant::now() + linger);
            match encoder.push(item) {
                Ok(()) if encoder.is_full() => break,
                Ok(()) => {}
                Err(item) => {
                    carry = Some(item);
                    break;
                }
            }
        }
        if !encoder.is_empty() && !send(source, encoder, service, retrier, stop).await {
            return;
        }
        if finished && carry.is_none() {
            return;
        }
    }
}

/// Sends the encoder's request; false when stopped before it was delivered.
async fn send<Src, Enc, Svc, L>(
    source: &mut Src,
    encoder: &mut Enc,
    service: &mut Svc,
    retrier: &mut Retrier<L>,
    stop: &mut watch::Receiver<Stop>,
) -> bool
where
    Src: Source<Item = Enc::Item, Request = Enc::Request, Error = Svc::Error>,
    Enc: Encoder,
    Svc: Service<Request = Enc::Request>,
    L: RetryLogic<Error = Svc::Error>,
    L::Error: fmt::Display,
{
    let request = encoder.take();
    let events = request.events();
    if events == 0 {
        source.done(request, Outcome::Delivered);
        return true;
    }
    source.sending(&request);
    match retrier.send(service, &request, events, stop).await {
        Outcome::Stopped => false,
        Outcome::Refused { error } if events > 1 => match encoder.split(request) {
            Err(request) => {
                source.done(request, Outcome::Refused { error });
                true
            }
            Ok(parts) => {
                // Find the culprit(s): each event on its own.
                for part in parts {
                    let n = part.events();
                    match retrier.send(service, &part, n, stop).await {
                        Outcome::Stopped => return false,
                        outcome => source.done(part, outcome),
                    }
                }
                true
            }
        },
        outcome => {
            source.done(request, outcome);
            true
        }
    }
}

#[cfg(test)]
mod tests;
