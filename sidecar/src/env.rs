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
/// Log filter (tracing `EnvFilter` syntax); `RUST_LOG` works too.
pub const SCADA_LOG: &str = "SCADA_LOG";
