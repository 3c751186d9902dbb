//! The scada-broadcast sidecar: receives events from every PHP process on
//! the host and delivers them to Redis (Laravel's RedisBroadcaster format),
//! never losing one it has acknowledged.
//!
//! # Layout
//! - [`config`] / [`env`]: typed configuration (defaults < TOML < environment).
//! - [`server`]: `run(config, shutdown)`: wiring, sockets, graceful shutdown.
//! - [`ingest`]: connections, orphaned spool files and loss records → validated, de-duplicated → journal.
//! - [`journal`]: durable append-only log; the point where events are
//!   acknowledged; owns its readers, their cursors and retention; the lock.
//! - [`routing`]: which events each sink and the throttle stage see.
//! - [`sinks`]: the destinations, on one batching and retry [`sinks::driver`].
//! - [`sse`]: Server-Sent Events for browsers, read from the journal (opt-in).
//! - [`throttle`]: host-wide windows per channel: aggregation and conflation.
//! - [`retry`]: retry decisions and jittered backoff.
//! - [`metrics`] / [`status`]: counters and the status endpoint.
//! - [`failpoint`]: fault injection at every durability I/O call (tests).
//! - [`util`]: a poison-tolerant lock, the wall clock, optional deadlines.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod config;
pub mod env;
pub mod failpoint;
pub mod ingest;
pub mod journal;
pub mod metrics;
pub mod retry;
pub mod routing;
pub mod server;
pub mod sinks;
pub mod sse;
pub mod status;
pub mod throttle;
pub mod util;

pub use config::Config;
pub use server::run;
