//! The Pusher HTTP API sink: Pusher Channels, Laravel Reverb, Soketi, Sockudo.
//!
//! Events are batched into `POST /apps/{id}/batch_events` (one channel each),
//! or sent with `POST /apps/{id}/events` when they name several channels (at
//! most 100). Requests are signed with the app secret (HMAC-SHA256,
//! `scada_core::pusher`). Up to `max_in_flight` requests run at once, in lanes:
//! every event of a channel goes through the same lane, so retries never
//! reorder a channel, and an event on channels of several lanes is fenced
//! against all of them (see `sink`).

pub mod request_builder;
pub mod service;
pub mod sink;

pub use sink::PusherSink;
