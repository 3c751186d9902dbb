//! Talking to Redis: one auto-reconnecting connection, pipelined PUBLISH.

use std::fmt;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo};

use crate::config::RedisConfig;
use crate::retry::{Decision, RetryLogic};
use crate::sinks::SinkError;

/// A failed pipeline, with its message already scrubbed of secrets.
#[derive(Debug)]
pub struct SendError {
    pub message: String,
    /// Connection-level (refused, dropped, timed out) rather than a server reply.
    pub connection: bool,
    /// The pipeline may have reached Redis before the failure (a dropped
    /// connection or a timeout): resending it can publish twice.
    pub maybe_delivered: bool,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Every Redis failure is retried: PUBLISH has no "bad request" a retry
/// cannot fix (even an auth error is fixed by correcting the server), and
/// the events are safe in the journal meanwhile.
pub struct RedisRetryLogic;

impl RetryLogic for RedisRetryLogic {
    type Error = SendError;
    fn decide(&self, _error: &SendError) -> Decision {
        Decision::Retry
    }
}

pub struct RedisService {
    info: ConnectionInfo,
    secret: String,
    timeout: std::time::Duration,
    conn: Option<ConnectionManager>,
}

pub fn connection_info(cfg: &RedisConfig) -> Result<ConnectionInfo, SinkError> {
    let mut info = if cfg.url.is_empty() {
        ConnectionInfo {
            addr: ConnectionAddr::Tcp(cfg.host.clone(), cfg.port),
            redis: RedisConnectionInfo {
                db: cfg.db,
                ..Default::default()
            },
        }
    } else {
        cfg.url
            .as_str()
            .into_connection_info()
            .map_err(|e| SinkError::RedisUrl {
                target: cfg.describe(),
                source: e,
            })?
    };
    if info.redis.password.is_none() && !cfg.password.is_empty() {
        info.redis.password = Some(cfg.password.expose().to_string());
    }
    if info.redis.username.is_none() && !cfg.username.is_empty() {
        info.redis.username = Some(cfg.username.clone());
    }
    Ok(info)
}

impl RedisService {
    pub fn new(cfg: &RedisConfig) -> Result<Self, SinkError> {
        Ok(Self {
            info: connection_info(cfg)?,
            secret: cfg.password.expose().to_string(),
            timeout: cfg.timeout(),
            conn: None,
        })
    }

    fn scrub(&self, e: &redis::RedisError) -> SendError {
        let mut message = e.to_string();
        if !self.secret.is_empty() {
            message = message.replace(&self.secret, "***");
        }
        SendError {
            message,
            connection: e.is_io_error()
                || e.is_timeout()
                || e.is_connection_dropped()
                || e.is_connection_refusal(),
            maybe_delivered: !e.is_connection_refusal(),
        }
    }

    async fn connection(&mut self) -> Result<&mut ConnectionManager, SendError> {
        if self.conn.is_none() {
            // Nothing was sent while connecting.
            let unsent = |e: SendError| SendError {
                maybe_delivered: false,
                ..e
            };
            let client =
                redis::Client::open(self.info.clone()).map_err(|e| unsent(self.scrub(&e)))?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(self.timeout)
                .set_response_timeout(self.timeout)
                .set_number_of_retries(2)
                .set_max_delay(1000);
            let conn = ConnectionManager::new_with_config(client, config)
                .await
                .map_err(|e| unsent(self.scrub(&e)))?;
            self.conn = Some(conn);
        }
        match self.conn.as_mut() {
            Some(c) => Ok(c),
            None => Err(SendError {
                message: "no connection".into(),
                connection: true,
                maybe_delivered: false,
            }),
        }
    }

    /// Sends a pipeline; every command must succeed within the timeout. The
    /// connection manager would otherwise wait out a whole outage inside one
    /// call, invisible to metrics and logs.
    pub async fn send(&mut self, pipe: &redis::Pipeline) -> Result<(), SendError> {
        let timeout = self.timeout;
        let attempt = async {
            let conn = self.connection().await?;
            let result: redis::RedisResult<()> = pipe.query_async(conn).await;
            result.map_err(|e| self.scrub(&e))
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(r) => r,
            Err(_) => Err(SendError {
                message: format!("no answer from redis within {timeout:?}"),
                connection: true,
                maybe_delivered: true,
            }),
        }
    }
}
