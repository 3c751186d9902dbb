//! Destinations. Each sink reads the journal at its own cursor
//! ([`crate::journal::JournalReader`]), so one slow or failed destination never holds
//! up another, and each resumes where it stopped after a restart.
//!
//! One folder per destination, one file per role:
//! `config` (in `crate::config`), `request_builder` (pure encoding, tested
//! without I/O), `service` (the I/O and its retry classification), `sink`
//! (the source of items, the encoder, and what a delivery moves). The loop
//! itself (batch → send → retry in order → report) is [`driver`], shared.

pub mod driver;
pub mod pusher;
pub mod redis;

use std::fmt;

use scada_core::frame::HEADER_LEN;
use scada_core::EventView;

/// The event in a whole frame the journal handed out (validated on ingest,
/// CRC-checked by the journal's read; not validated again).
pub fn event_in_frame(frame: &[u8]) -> Option<EventView<'_>> {
    // After the header: version and kind, then the event's fields.
    EventView::decode(frame.get(HEADER_LEN + 2..)?).ok()
}

/// Why a sink cannot be built from its configuration.
#[derive(Debug)]
pub enum SinkError {
    /// `REDIS_URL` does not parse (`target` is the redacted URL).
    RedisUrl {
        target: String,
        source: ::redis::RedisError,
    },
    /// The Pusher credentials are unusable (e.g. an empty key).
    PusherCredentials(scada_core::pusher::SignError),
    HttpClient(reqwest::Error),
}

impl fmt::Display for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RedisUrl { target, source } => {
                write!(f, "REDIS_URL {target} is not a valid Redis URL: {source}")
            }
            Self::PusherCredentials(e) => write!(f, "pusher credentials: {e}"),
            Self::HttpClient(e) => write!(f, "cannot build the HTTP client: {e}"),
        }
    }
}

impl std::error::Error for SinkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::RedisUrl { source, .. } => Some(source),
            Self::PusherCredentials(e) => Some(e),
            Self::HttpClient(e) => Some(e),
        }
    }
}
