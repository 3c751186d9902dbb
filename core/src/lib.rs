//! What the scada-broadcast PHP extension and sidecar share.
//!
//! Both processes link this crate so that the bytes one writes are the bytes the
//! other reads: there is exactly one definition of the wire format, of the
//! validation rules and of the JSON encoding Laravel subscribers expect.
//! Nothing here does I/O or depends on an async runtime.
//!
//! # Layout
//! - [`frame`]: length-prefixed, CRC-checked, versioned frames: the unit on the
//!   Unix socket, in spool files and in the sidecar's journal.
//! - [`event`]: the broadcast event record ([`EventId`], [`EventWriter`], [`EventView`]).
//! - [`message`]: the connection handshake and acknowledgements.
//! - [`samples`]: numeric samples for host-wide throttled aggregation ([`SamplesWriter`], [`SamplesView`]).
//! - [`validate`]: Pusher's rules for channel names, event names and socket ids.
//! - [`json`]: JSON primitives byte-identical with PHP's `json_encode` defaults.
//! - [`timefmt`]: ISO-8601 timestamps as Carbon's `toISOString()` prints them.
//! - [`aggregate`]: per-series statistics (count, sum, min, max, average, first, last).
//! - [`spool`]: naming and header of the spool files PHP writes when the sidecar is away, and loss records.
//! - [`pusher`]: Pusher protocol signing (HTTP API, channel and user auth, webhooks).
//! - [`sse_token`]: the tokens that open protected channels on the sidecar's SSE listener.
//! - [`encoding`]: hex and base64, for signatures and shared secrets.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod aggregate;
pub mod encoding;
pub mod event;
pub mod frame;
pub mod json;
pub mod message;
pub mod pusher;
pub mod samples;
pub mod spool;
pub mod sse_token;
pub mod timefmt;
pub mod validate;

pub use event::{EventId, EventView, EventWriter};
pub use frame::{Frame, FrameError, FrameKind};
pub use samples::{SamplesView, SamplesWriter};
