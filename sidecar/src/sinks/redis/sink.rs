//! The Redis sink: journal frames → PUBLISH pipelines (Laravel's format),
//! sent by the shared driver (retried in order) → cursor committed.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use scada_core::frame::{Frame, MAX_BODY_LEN};
use tokio::sync::watch;
use tracing::info;

use super::request_builder;
use super::service::{RedisRetryLogic, RedisService, SendError};
use crate::config::RedisConfig;
use crate::journal::{Batch as JournalBatch, JournalReader, Stop};
use crate::metrics::SinkMetrics;
use crate::routing::{Route, Routing};
use crate::sinks::driver::{self, Batch, Encoder, Outcome, Pull, Retrier, Service, Source};
use crate::sinks::{event_in_frame, SinkError};
use crate::util::now_us;

pub struct RedisSink {
    cfg: RedisConfig,
    reader: JournalReader,
    service: RedisService,
    routing: Routing,
}

/// A journal frame: an event to publish, or only a cursor move.
pub struct Item {
    frame: Bytes,
    start: u64,
    publish: bool,
}

impl Item {
    fn end(&self) -> u64 {
        self.start + self.frame.len() as u64
    }
}

/// One PUBLISH pipeline and the journal range it covers.
pub struct Request {
    pipe: redis::Pipeline,
    events: u64,
    messages: u64,
    from: u64,
    upto: u64,
    oldest_created_us: u64,
}

impl Batch for Request {
    fn events(&self) -> u64 {
        self.events
    }
}

/// Journal frames, one read at a time: a pipeline never holds more than one read.
struct Feed {
    reader: JournalReader,
    batch: Option<(JournalBatch, usize)>,
    max_read: usize,
    routing: Routing,
    metrics: Arc<SinkMetrics>,
    stop: watch::Receiver<Stop>,
}

impl Source for Feed {
    type Item = Item;
    type Request = Request;
    type Error = SendError;

    async fn next(&mut self, until: Option<tokio::time::Instant>) -> Pull<Item> {
        loop {
            if let Some((batch, at)) = &mut self.batch {
                if let Ok(Some(f)) = Frame::parse(&batch.data[*at..], MAX_BODY_LEN) {
                    let len = f.len();
                    let publish = match self.routing.for_sink(f.kind, f.payload) {
                        Route::Deliver(_) => true,
                        Route::Throttled => {
                            self.metrics.throttled.inc();
                            false
                        }
                        Route::Skip => false,
                    };
                    let item = Item {
                        frame: batch.data.slice(*at..*at + len),
                        start: batch.start + *at as u64,
                        publish,
                    };
                    *at += len;
                    return Pull::Item(item);
                }
                self.batch = None;
            }
            if until.is_some() {
                return Pull::Flush;
            }
            match self.reader.next_batch(self.max_read, &mut self.stop).await {
                Some(batch) => self.batch = Some((batch, 0)),
                None => return Pull::Done,
            }
        }
    }

    fn sending(&mut self, request: &Request) {
        self.reader.attempt(request.upto);
        self.reader.count_replayed(request.from, request.events);
    }

    fn done(&mut self, request: Request, outcome: Outcome<SendError>) {
        let m = &self.metrics;
        match outcome {
            Outcome::Delivered if request.events > 0 => {
                m.delivered.add(request.events);
                m.messages.add(request.messages);
                m.last_latency_us
                    .set(now_us().saturating_sub(request.oldest_created_us));
            }
            Outcome::Refused { .. } => m.permanent_failures.add(request.events),
            _ => {}
        }
        self.reader.commit(request.upto);
    }
}

/// Builds PUBLISH pipelines: one command per event and delivered channel
/// (and with `last_value`, an HSET of the same message after it).
struct Pipelines {
    prefix: String,
    last_value: bool,
    max_messages: usize,
    routing: Routing,
    request: Option<Request>,
    message: Vec<u8>,
    channel: Vec<u8>,
}

impl Encoder for Pipelines {
    type Item = Item;
    type Request = Request;

    fn push(&mut self, item: Item) -> Result<(), Item> {
        let r = self.request.get_or_insert_with(|| Request {
            pipe: redis::pipe(),
            events: 0,
            messages: 0,
            from: item.start,
            upto: item.start,
            oldest_created_us: u64::MAX,
        });
        r.upto = item.end();
        if !item.publish {
            return Ok(());
        }
        let Some(ev) = event_in_frame(&item.frame) else {
            return Ok(());
        };
        self.message.clear();
        request_builder::message(&mut self.message, &ev);
        for ch in self.routing.sink_channels(&ev) {
            self.channel.clear();
            request_builder::channel(&mut self.channel, &self.prefix, ch);
            r.pipe
                .cmd("PUBLISH")
                .arg(&self.channel[..])
                .arg(&self.message[..])
                .ignore();
            r.messages += 1;
            if self.last_value {
                // Same pipeline, right after the PUBLISH: the key never lags the stream.
                self.channel.clear();
                request_builder::last_value_key(&mut self.channel, &self.prefix, ch);
                r.pipe
                    .cmd("HSET")
                    .arg(&self.channel[..])
                    .arg(ev.event)
                    .arg(&self.message[..])
                    .ignore();
            }
        }
        r.events += 1;
        r.oldest_created_us = r.oldest_created_us.min(ev.created_us);
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.request.is_none()
    }

    fn is_full(&self) -> bool {
        self.request
            .as_ref()
            .is_some_and(|r| r.messages as usize >= self.max_messages)
    }

    fn take(&mut self) -> Request {
        self.request.take().unwrap_or(Request {
            pipe: redis::pipe(),
            events: 0,
            messages: 0,
            from: 0,
            upto: 0,
            oldest_created_us: u64::MAX,
        })
    }
}

impl Service for RedisService {
    type Request = Request;
    type Error = SendError;

    async fn call(&mut self, request: &Request) -> Result<(), SendError> {
        self.send(&request.pipe).await
    }

    fn maybe_delivered(error: &SendError) -> bool {
        error.maybe_delivered
    }
}

impl RedisSink {
    pub fn new(
        cfg: RedisConfig,
        reader: JournalReader,
        routing: Routing,
    ) -> Result<Self, SinkError> {
        let service = RedisService::new(&cfg)?;
        Ok(Self {
            cfg,
            reader,
            service,
            routing,
        })
    }

    pub async fn run(mut self, mut stop: watch::Receiver<Stop>) {
        let metrics = self.reader.metrics.clone();
        info!(sink = %metrics.name, redis = %self.cfg.describe(), prefix = %self.cfg.prefix, from = self.reader.position(), "redis sink started");
        metrics.healthy.set(true);
        let mut feed = Feed {
            reader: self.reader,
            batch: None,
            max_read: self.cfg.max_batch_bytes,
            routing: self.routing.clone(),
            metrics: metrics.clone(),
            stop: stop.clone(),
        };
        let mut pipelines = Pipelines {
            prefix: self.cfg.prefix.clone(),
            last_value: self.cfg.last_value,
            max_messages: self.cfg.max_batch_events,
            routing: self.routing,
            request: None,
            message: Vec::with_capacity(1024),
            channel: Vec::with_capacity(256),
        };
        let mut retrier = Retrier::new(RedisRetryLogic, metrics.clone(), "redis");
        driver::run(
            &mut feed,
            &mut pipelines,
            &mut self.service,
            &mut retrier,
            Duration::ZERO,
            &mut stop,
        )
        .await;
        info!(sink = %metrics.name, at = feed.reader.position(), "redis sink stopped");
    }
}
