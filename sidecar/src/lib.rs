//! The scada-broadcast sidecar: receives events from every PHP process on
//! the host and delivers them to Redis (Laravel's RedisBroadcaster format),
//! never losing one it has acknowledged.
//!
//! # Layout
//! - [`config`] / [`env`]: typed configuration (defaults < TOML < environment).
//! - [`server`]: `run(config, shutdown)`: wiring, sockets, graceful shutdown.
//! - [`ingest`]: connections and orphaned spool files → validated, de-duplicated → journal.
//! - [`journal`]: durable append-only log; the point where events are acknowledged.
//! - [`sinks`]: one reader and cursor per destination; [`sinks::redis`] publishes.
//! - [`throttle`]: host-wide windows per channel: aggregation and conflation.
//! - [`retry`]: retry decisions and jittered backoff.
//! - [`metrics`] / [`status`]: counters and the status endpoint.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod config;
pub mod env;
pub mod ingest;
pub mod journal;
pub mod metrics;
pub mod retry;
pub mod server;
pub mod sinks;
pub mod status;
pub mod throttle;

pub use config::Config;
pub use server::run;
