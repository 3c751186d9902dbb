//! Talking to a Pusher-protocol server: signed POSTs over reqwest (rustls),
//! and what each outcome means.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use scada_core::pusher::Signer;

use super::request_builder::signed_path;
use crate::config::PusherConfig;
use crate::retry::{Decision, RetryLogic};
use crate::sinks::SinkError;

#[derive(Debug)]
pub enum PusherError {
    /// The server answered with a non-2xx status.
    Status { status: u16, body: String },
    /// Connecting, sending or waiting for the answer failed (incl. timeouts).
    Transport {
        message: String,
        /// The request may have reached the server (it failed after connecting).
        maybe_delivered: bool,
    },
}

impl PusherError {
    /// True when a resend might deliver the events a second time.
    pub fn maybe_delivered(&self) -> bool {
        match self {
            // A 5xx can come from a proxy after the server accepted the batch.
            Self::Status { status, .. } => *status >= 500,
            Self::Transport {
                maybe_delivered, ..
            } => *maybe_delivered,
        }
    }
}

impl fmt::Display for PusherError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status { status, body } => write!(f, "HTTP {status}: {body}"),
            Self::Transport { message, .. } => write!(f, "{message}"),
        }
    }
}

/// 2xx delivered; 400 and 413 are the request's own fault (never retried);
/// 429, 5xx, timeouts and connection errors are retried. Authentication and
/// not-found errors are retried too: they are configuration mistakes (a wrong
/// secret, a clock off by more than 600 s, a wrong app id) that fixing the
/// configuration cures, and the events wait in the journal meanwhile.
pub struct PusherRetryLogic;

impl RetryLogic for PusherRetryLogic {
    type Error = PusherError;
    fn decide(&self, error: &PusherError) -> Decision {
        match error {
            PusherError::Status {
                status: 400 | 413, ..
            } => Decision::GiveUp,
            _ => Decision::Retry,
        }
    }
}

#[derive(Clone)]
pub struct PusherService {
    client: reqwest::Client,
    signer: Signer,
    base_url: String,
    app_path: String,
    secret: String,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl PusherService {
    pub fn new(cfg: &PusherConfig) -> Result<Self, SinkError> {
        let signer = Signer::new(&cfg.key, cfg.secret.expose(), None)
            .map_err(SinkError::PusherCredentials)?;
        let mut builder = reqwest::Client::builder()
            .timeout(cfg.timeout())
            .connect_timeout(cfg.timeout().min(Duration::from_secs(5)))
            .pool_max_idle_per_host(cfg.max_in_flight)
            .tcp_nodelay(true)
            .http1_only()
            .user_agent(concat!("scada-sidecar/", env!("CARGO_PKG_VERSION")));
        let host = cfg.host();
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if loopback {
            // A local server: never route through an HTTP(S)_PROXY, and skip
            // the proxy matching on every request.
            builder = builder.no_proxy();
        }
        let client = builder.build().map_err(SinkError::HttpClient)?;
        Ok(Self {
            client,
            signer,
            base_url: cfg.base_url(),
            app_path: format!("/apps/{}", cfg.app_id),
            secret: cfg.secret.expose().to_string(),
        })
    }

    fn scrub(&self, mut text: String) -> String {
        if !self.secret.is_empty() {
            text = text.replace(&self.secret, "***");
        }
        text
    }

    /// POSTs `body` to `/apps/{id}/{endpoint}` (`events` or `batch_events`).
    pub async fn post(&self, endpoint: &str, body: bytes::Bytes) -> Result<(), PusherError> {
        let path = format!("{}/{endpoint}", self.app_path);
        let url = format!(
            "{}{}",
            self.base_url,
            signed_path(&self.signer, &path, &body, now_secs())
        );
        let response = self
            .client
            .post(url)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| PusherError::Transport {
                message: self.scrub(describe(&e)),
                maybe_delivered: !e.is_connect(),
            })?;
        let status = response.status();
        if status.is_success() {
            // Drain the body so the connection can be reused where the server allows it.
            let _ = response.bytes().await;
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        let body: String = body.chars().take(300).collect();
        Err(PusherError::Status {
            status: status.as_u16(),
            body: self.scrub(body),
        })
    }
}

/// reqwest's error with its causes, without the URL (it holds the signature).
fn describe(e: &reqwest::Error) -> String {
    let mut s = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}
