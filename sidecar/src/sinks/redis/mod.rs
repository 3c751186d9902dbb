//! The Redis sink: publishes events exactly as Laravel's RedisBroadcaster
//! does, so laravel-echo-server and custom subscribers keep working.

pub mod request_builder;
pub mod service;
pub mod sink;

pub use sink::RedisSink;
