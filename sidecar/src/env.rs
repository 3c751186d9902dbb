//! Every environment variable the sidecar reads, in one place.
//! Laravel's own names are reused wherever Laravel has one.

pub const APP_NAME: &str = "APP_NAME";
pub const REDIS_URL: &str = "REDIS_URL";
pub const REDIS_HOST: &str = "REDIS_HOST";
pub const REDIS_PORT: &str = "REDIS_PORT";
pub const REDIS_USERNAME: &str = "REDIS_USERNAME";
pub const REDIS_PASSWORD: &str = "REDIS_PASSWORD";
pub const REDIS_DB: &str = "REDIS_DB";
pub const REDIS_PREFIX: &str = "REDIS_PREFIX";

pub const PUSHER_APP_ID: &str = "PUSHER_APP_ID";
pub const PUSHER_APP_KEY: &str = "PUSHER_APP_KEY";
pub const PUSHER_APP_SECRET: &str = "PUSHER_APP_SECRET";
pub const PUSHER_HOST: &str = "PUSHER_HOST";
pub const PUSHER_PORT: &str = "PUSHER_PORT";
pub const PUSHER_SCHEME: &str = "PUSHER_SCHEME";
pub const PUSHER_APP_CLUSTER: &str = "PUSHER_APP_CLUSTER";
/// Most events per `batch_events` request (Pusher's multi-tenant limit is 10).
pub const SCADA_PUSHER_MAX_BATCH: &str = "SCADA_PUSHER_MAX_BATCH";
/// `true` sends each event's id as `idempotency_key` (Sockudo supports it).
pub const SCADA_PUSHER_IDEMPOTENCY_KEY: &str = "SCADA_PUSHER_IDEMPOTENCY_KEY";

/// Path of the Unix socket PHP connects to.
pub const SCADA_SIDECAR_SOCKET: &str = "SCADA_SIDECAR_SOCKET";
/// Where PHP processes spool events the sidecar could not take.
pub const SCADA_SPOOL_DIR: &str = "SCADA_SPOOL_DIR";
/// The sidecar's own durable state (journal, cursors).
pub const SCADA_DATA_DIR: &str = "SCADA_DATA_DIR";
/// Optional loopback TCP address for the status endpoint, e.g. `127.0.0.1:9601`.
pub const SCADA_STATUS_ADDR: &str = "SCADA_STATUS_ADDR";
/// Group that may connect to the socket (name or numeric gid).
pub const SCADA_SOCKET_GROUP: &str = "SCADA_SOCKET_GROUP";
/// `false` disables the Redis sink even when `REDIS_*` variables are set.
pub const SCADA_REDIS_ENABLED: &str = "SCADA_REDIS_ENABLED";
/// `true`: the Redis sink also keeps each channel's latest message per event
/// name in the hash `<prefix>scada:last:<channel>`.
pub const SCADA_REDIS_LAST_VALUE: &str = "SCADA_REDIS_LAST_VALUE";
/// Throttle rules, e.g. `scada-*=100:aggregate;alarms-*=1000:latest`.
pub const SCADA_THROTTLE: &str = "SCADA_THROTTLE";
/// High-priority channel patterns, comma-separated, e.g. `alarms-*,trip-*`:
/// never throttled, delivered ahead of telemetry (their own lane per destination).
pub const SCADA_PRIORITY: &str = "SCADA_PRIORITY";
/// Runtime worker threads (default 1; journal disk reads use a separate blocking pool).
pub const SCADA_WORKER_THREADS: &str = "SCADA_WORKER_THREADS";
/// Log filter (tracing `EnvFilter` syntax); `RUST_LOG` works too.
pub const SCADA_LOG: &str = "SCADA_LOG";

/// Address of the SSE listener for browsers, e.g. `127.0.0.1:8090` (opt-in).
pub const SCADA_SSE_ADDR: &str = "SCADA_SSE_ADDR";
/// Secret that signs SSE tokens for private-/presence- channels (else `PUSHER_APP_SECRET`).
pub const SCADA_SSE_SECRET: &str = "SCADA_SSE_SECRET";
/// Origins allowed to open SSE streams cross-origin, comma-separated (`*` for any).
pub const SCADA_SSE_CORS: &str = "SCADA_SSE_CORS";
/// Host header names a loopback SSE listener answers besides IP addresses and `localhost`, comma-separated (`*`: any).
pub const SCADA_SSE_ALLOWED_HOSTS: &str = "SCADA_SSE_ALLOWED_HOSTS";
/// Origins the dashboard page may also connect to (its CSP `connect-src`), comma-separated.
pub const SCADA_DASHBOARD_CONNECT: &str = "SCADA_DASHBOARD_CONNECT";
/// Idle seconds before TCP keepalive probes on SSE connections (0: off; default 60).
pub const SCADA_SSE_TCP_KEEPALIVE: &str = "SCADA_SSE_TCP_KEEPALIVE";
