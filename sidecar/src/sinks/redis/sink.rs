//! The Redis sink loop: read the journal → build a PUBLISH pipeline → send
//! (retrying with backoff, in order) → commit the cursor.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use scada_core::frame::{FrameKind, Frames, MAX_BODY_LEN};
use scada_core::EventView;
use tokio::sync::watch;
use tracing::{error, info, warn};

use super::request_builder;
use super::service::{RedisRetryLogic, RedisService};
use crate::config::RedisConfig;
use crate::metrics::SinkMetrics;
use crate::retry::{Backoff, Decision, RetryLogic};
use crate::sinks::reader::{JournalReader, Stop};
use crate::throttle::rules::Rules;

const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// While an outage lasts, say so at most this often.
const OUTAGE_LOG_EVERY: Duration = Duration::from_secs(30);

pub struct RedisSink {
    cfg: RedisConfig,
    reader: JournalReader,
    service: RedisService,
    metrics: Arc<SinkMetrics>,
    pipe: redis::Pipeline,
    scratch: Vec<u8>,
    channel: Vec<u8>,
    rules: Arc<Rules>,
}

/// A pipeline ready to send.
struct Pending {
    events: u64,
    messages: u64,
    /// Journal offset after the last frame in this pipeline.
    upto: u64,
    /// Journal offset of its first frame.
    from: u64,
    oldest_created_us: u64,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

impl RedisSink {
    pub fn new(cfg: RedisConfig, reader: JournalReader, rules: Arc<Rules>) -> Result<Self, String> {
        let service = RedisService::new(&cfg)?;
        let metrics = reader.metrics.clone();
        Ok(Self {
            cfg,
            reader,
            service,
            metrics,
            pipe: redis::pipe(),
            scratch: Vec::with_capacity(1024),
            channel: Vec::with_capacity(256),
            rules,
        })
    }

    pub async fn run(mut self, mut stop: watch::Receiver<Stop>) {
        info!(sink = %self.metrics.name, redis = %self.cfg.describe(), prefix = %self.cfg.prefix, from = self.reader.position(), "redis sink started");
        self.metrics.healthy.set(1);
        let mut backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
        loop {
            let Some(batch) = self
                .reader
                .next_batch(self.cfg.max_batch_bytes, &mut stop)
                .await
            else {
                break;
            };
            let mut offset = batch.start;
            let mut pending = Pending {
                events: 0,
                messages: 0,
                upto: offset,
                from: offset,
                oldest_created_us: u64::MAX,
            };
            for frame in Frames::new(&batch.data, MAX_BODY_LEN).map_while(Result::ok) {
                offset += frame.len() as u64;
                if frame.kind == FrameKind::Event {
                    if let Ok(ev) = EventView::decode(frame.payload) {
                        self.add(&ev, &mut pending);
                    }
                }
                pending.upto = offset;
                if pending.messages as usize >= self.cfg.max_batch_events
                    && !self.deliver(&mut pending, &mut backoff, &mut stop).await
                {
                    return;
                }
            }
            pending.upto = offset;
            if !self.deliver(&mut pending, &mut backoff, &mut stop).await {
                return;
            }
        }
        info!(sink = %self.metrics.name, at = self.reader.position(), "redis sink stopped");
    }

    fn add(&mut self, ev: &EventView<'_>, p: &mut Pending) {
        let throttled = |ch: &str| !ev.is_derived() && self.rules.throttles(ch);
        if ev.channels().all(throttled) {
            self.metrics.throttled.inc();
            return;
        }
        self.scratch.clear();
        request_builder::message(&mut self.scratch, ev);
        for ch in ev.channels() {
            if !ev.is_derived() && self.rules.throttles(ch) {
                continue;
            }
            self.channel.clear();
            request_builder::channel(&mut self.channel, &self.cfg.prefix, ch);
            self.pipe
                .cmd("PUBLISH")
                .arg(&self.channel[..])
                .arg(&self.scratch[..])
                .ignore();
            p.messages += 1;
        }
        p.events += 1;
        p.oldest_created_us = p.oldest_created_us.min(ev.created_us);
    }

    /// Sends the pending pipeline until it succeeds (or the stop deadline
    /// passes: then false, the cursor stays, and a restart resends it).
    async fn deliver(
        &mut self,
        p: &mut Pending,
        backoff: &mut Backoff,
        stop: &mut watch::Receiver<Stop>,
    ) -> bool {
        if p.messages == 0 {
            if let Err(e) = self.reader.commit(p.upto) {
                error!(sink = %self.metrics.name, error = %e, "cannot persist cursor");
            }
            return true;
        }
        if let Err(e) = self.reader.attempt(p.upto) {
            error!(sink = %self.metrics.name, error = %e, "cannot persist cursor");
        }
        self.reader.count_replayed(p.from, p.events);
        let mut outage_logged: Option<Instant> = None;
        loop {
            self.metrics.requests.inc();
            match self.service.send(&self.pipe).await {
                Ok(()) => {
                    if outage_logged.is_some() || backoff.attempts() > 0 {
                        info!(sink = %self.metrics.name, attempts = backoff.attempts(), "redis is back; delivering");
                    }
                    backoff.reset();
                    self.metrics.healthy.set(1);
                    self.metrics.delivered.add(p.events);
                    self.metrics.messages.add(p.messages);
                    self.metrics
                        .last_latency_us
                        .set(now_us().saturating_sub(p.oldest_created_us));
                    break;
                }
                Err(e) => match RedisRetryLogic.decide(&e) {
                    Decision::Retry => {
                        self.metrics.retries.inc();
                        if e.maybe_delivered {
                            self.metrics.resent_after_unclear_failure.add(p.events);
                        }
                        self.metrics.healthy.set(0);
                        if outage_logged.is_none_or(|t| t.elapsed() >= OUTAGE_LOG_EVERY) {
                            warn!(sink = %self.metrics.name, error = %e, attempts = backoff.attempts() + 1, pending_events = p.events, "redis unavailable; events stay in the journal and will be retried in order");
                            outage_logged = Some(Instant::now());
                        }
                        let delay = backoff.next_delay();
                        let deadline = match *stop.borrow() {
                            Stop::Drain { deadline } => Some(deadline),
                            Stop::No => None,
                        };
                        if let Some(d) = deadline {
                            if Instant::now() + delay >= d {
                                warn!(sink = %self.metrics.name, pending_events = p.events, "shutdown deadline reached with redis unavailable; events stay journaled for the next start");
                                return false;
                            }
                        }
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => {}
                            _ = stop.changed() => {}
                        }
                    }
                    Decision::GiveUp(reason) => {
                        self.metrics.permanent_failures.add(p.events);
                        error!(sink = %self.metrics.name, error = %e, %reason, events = p.events, "giving up on these events");
                        break;
                    }
                },
            }
        }
        self.pipe.clear();
        p.messages = 0;
        p.events = 0;
        p.from = p.upto;
        p.oldest_created_us = u64::MAX;
        if let Err(e) = self.reader.commit(p.upto) {
            error!(sink = %self.metrics.name, error = %e, "cannot persist cursor");
        }
        true
    }
}
