//! Typed configuration: defaults < TOML file (`--config`) < environment.
//!
//! The environment alone is enough to run (`REDIS_HOST=... scada-sidecar`);
//! the file adds what env variables express badly (several targets, rules).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::env;

pub const DEFAULT_SOCKET: &str = "/run/scada-broadcast/sidecar.sock";
pub const DEFAULT_DATA_DIR: &str = "/var/lib/scada-broadcast";
const DEFAULT_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
const DEFAULT_JOURNAL_MAX_BYTES: u64 = 1024 * 1024 * 1024;
const DEFAULT_MEMORY_BYTES: usize = 64 * 1024 * 1024;
const DEFAULT_SHUTDOWN_TIMEOUT_SECS: u64 = 10;
/// Also bounds redelivery after a crash: at most one pipeline is re-sent.
const DEFAULT_REDIS_BATCH_EVENTS: usize = 1000;
const DEFAULT_REDIS_BATCH_BYTES: usize = 1024 * 1024;
const DEFAULT_REDIS_TIMEOUT_MS: u64 = 5000;
/// Pusher's multi-tenant batch limit; self-hosted servers accept more.
const DEFAULT_PUSHER_BATCH_EVENTS: usize = 10;
const DEFAULT_PUSHER_LINGER_MS: u64 = 2;
const DEFAULT_PUSHER_IN_FLIGHT: usize = 4;
const DEFAULT_PUSHER_TIMEOUT_MS: u64 = 5000;
/// Pusher's limit on an event's `data`.
const DEFAULT_PUSHER_MAX_EVENT_BYTES: usize = 10 * 1024;

/// A string that must never reach a log line or an error message.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub journal: JournalConfig,
    /// The Redis sink (Laravel's RedisBroadcaster format).
    pub redis: Option<RedisConfig>,
    /// Pusher-protocol HTTP API targets (Pusher, Reverb, Soketi, Sockudo).
    pub pusher: Vec<PusherConfig>,
    /// Throttle rules by channel pattern (first match wins).
    pub throttle: Vec<crate::throttle::rules::RuleConfig>,
    /// Channel patterns of high-priority channels (alarms): never throttled,
    /// delivered through a lane of their own ahead of telemetry in every
    /// destination and SSE client queue (`*` as in throttle rules).
    pub priority: Vec<String>,
    /// The SSE listener for browsers (off unless configured).
    pub sse: Option<SseConfig>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Unix socket PHP processes connect to. Its directory is created 0750
    /// (0770 with `socket_group`) and the socket is 0660.
    pub socket: PathBuf,
    /// Group allowed to connect (name or gid); empty keeps the sidecar's own.
    pub socket_group: String,
    /// Spool directory shared with PHP; empty means `<socket dir>/spool`.
    pub spool_dir: PathBuf,
    /// Journal and cursors.
    pub data_dir: PathBuf,
    /// Status endpoint on a Unix socket; empty means `<socket dir>/status.sock`.
    pub status_socket: PathBuf,
    /// Optional TCP status endpoint; must be loopback unless `status_allow_remote`.
    pub status_addr: String,
    pub status_allow_remote: bool,
    /// How long SIGTERM waits for sinks to deliver what is journaled.
    pub shutdown_timeout_secs: u64,
    /// How often orphaned spool files are looked for.
    pub spool_scan_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            socket: DEFAULT_SOCKET.into(),
            socket_group: String::new(),
            spool_dir: PathBuf::new(),
            data_dir: DEFAULT_DATA_DIR.into(),
            status_socket: PathBuf::new(),
            status_addr: String::new(),
            status_allow_remote: false,
            shutdown_timeout_secs: DEFAULT_SHUTDOWN_TIMEOUT_SECS,
            spool_scan_ms: 1000,
        }
    }
}

impl ServerConfig {
    pub fn socket_dir(&self) -> &Path {
        self.socket.parent().unwrap_or_else(|| Path::new("/tmp"))
    }

    pub fn spool_dir(&self) -> PathBuf {
        if self.spool_dir.as_os_str().is_empty() {
            self.socket_dir().join("spool")
        } else {
            self.spool_dir.clone()
        }
    }

    pub fn status_socket(&self) -> PathBuf {
        if self.status_socket.as_os_str().is_empty() {
            self.socket_dir().join("status.sock")
        } else {
            self.status_socket.clone()
        }
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct JournalConfig {
    /// Size at which a journal segment file is closed and a new one started.
    pub segment_bytes: u64,
    /// Disk budget for events not yet delivered to every sink.
    pub max_bytes: u64,
    /// Recent journal kept in memory so sinks that keep up never read the disk.
    pub memory_bytes: usize,
    /// fsync every append (survives power loss, costs throughput).
    pub fsync: bool,
}

impl Default for JournalConfig {
    fn default() -> Self {
        Self {
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            max_bytes: DEFAULT_JOURNAL_MAX_BYTES,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            fsync: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://[user:pass@]host:port/db` or `unix:///path?db=N`; overrides host/port/db.
    pub url: String,
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: Secret,
    pub db: i64,
    /// Channel prefix, as Laravel's `database.redis.options.prefix`.
    pub prefix: String,
    /// Most PUBLISH commands in one pipeline.
    pub max_batch_events: usize,
    /// Most message bytes in one pipeline.
    pub max_batch_bytes: usize,
    /// Per-pipeline response timeout.
    pub timeout_ms: u64,
    /// Also keep each channel's latest message per event name in the hash
    /// `<prefix>scada:last:<channel>` (HSET in the PUBLISH pipeline).
    pub last_value: bool,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            host: "127.0.0.1".into(),
            port: 6379,
            username: String::new(),
            password: Secret::default(),
            db: 0,
            prefix: laravel_redis_prefix(None),
            max_batch_events: DEFAULT_REDIS_BATCH_EVENTS,
            max_batch_bytes: DEFAULT_REDIS_BATCH_BYTES,
            timeout_ms: DEFAULT_REDIS_TIMEOUT_MS,
            last_value: false,
        }
    }
}

impl RedisConfig {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// Where we connect, for logs: never includes the password.
    pub fn describe(&self) -> String {
        if self.url.is_empty() {
            format!("redis://{}:{}/{}", self.host, self.port, self.db)
        } else {
            redact_url(&self.url)
        }
    }
}

/// Removes the password from a URL (`redis://user:secret@h` → `redis://user:***@h`).
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let Some(at) = rest.find('@') else {
        return url.to_string();
    };
    let userinfo = &rest[..at];
    let user = userinfo.split(':').next().unwrap_or("");
    format!("{}://{}:***@{}", &url[..scheme_end], user, &rest[at + 1..])
}

/// Laravel's default: `Str::slug(APP_NAME ?? 'laravel', '_') . '_database_'`.
pub fn laravel_redis_prefix(app_name: Option<&str>) -> String {
    let mut slug = String::new();
    let mut pending_sep = false;
    for c in app_name.unwrap_or("laravel").chars() {
        if c.is_ascii_alphanumeric() {
            if pending_sep && !slug.is_empty() {
                slug.push('_');
            }
            pending_sep = false;
            slug.push(c.to_ascii_lowercase());
        } else if c == '@' {
            if !slug.is_empty() {
                slug.push('_');
            }
            slug.push_str("at");
            pending_sep = true;
        } else {
            pending_sep = true;
        }
    }
    format!("{slug}_database_")
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PusherConfig {
    /// Name in logs and status (`pusher` for the one configured by PUSHER_*).
    pub name: String,
    pub app_id: String,
    pub key: String,
    pub secret: Secret,
    /// Empty: `api-<cluster>.pusher.com`, as Laravel does.
    pub host: String,
    /// 0: 443 for https, 80 for http.
    pub port: u16,
    pub scheme: String,
    pub cluster: String,
    /// Most events per `batch_events` request (10 on Pusher's shared clusters).
    pub max_batch_events: usize,
    /// How long a batch waits for more events once its first one is there.
    pub linger_ms: u64,
    /// Requests in flight at once; events of one channel always share a lane, in order.
    pub max_in_flight: usize,
    pub timeout_ms: u64,
    /// Largest event `data` the target accepts (Pusher: 10 KB).
    pub max_event_bytes: usize,
    /// Largest whole request body the target accepts; 0 = no limit (Reverb: 10000).
    pub max_request_bytes: usize,
    /// Send each event's id as `idempotency_key` (Sockudo de-duplicates on it).
    pub idempotency_key: bool,
}

impl Default for PusherConfig {
    fn default() -> Self {
        Self {
            name: "pusher".into(),
            app_id: String::new(),
            key: String::new(),
            secret: Secret::default(),
            host: String::new(),
            port: 0,
            scheme: "https".into(),
            cluster: "mt1".into(),
            max_batch_events: DEFAULT_PUSHER_BATCH_EVENTS,
            linger_ms: DEFAULT_PUSHER_LINGER_MS,
            max_in_flight: DEFAULT_PUSHER_IN_FLIGHT,
            timeout_ms: DEFAULT_PUSHER_TIMEOUT_MS,
            max_event_bytes: DEFAULT_PUSHER_MAX_EVENT_BYTES,
            max_request_bytes: 0,
            idempotency_key: false,
        }
    }
}

impl PusherConfig {
    pub fn host(&self) -> String {
        if self.host.is_empty() {
            format!("api-{}.pusher.com", self.cluster)
        } else {
            self.host.clone()
        }
    }

    pub fn port(&self) -> u16 {
        match self.port {
            0 if self.scheme == "http" => 80,
            0 => 443,
            p => p,
        }
    }

    /// `scheme://host:port`, for requests and logs (holds no secret).
    pub fn base_url(&self) -> String {
        format!("{}://{}:{}", self.scheme, self.host(), self.port())
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    pub fn linger(&self) -> Duration {
        Duration::from_millis(self.linger_ms)
    }
}

const DEFAULT_SSE_ADDR: &str = "127.0.0.1:8090";
const DEFAULT_SSE_HEARTBEAT_MS: u64 = 20_000;
const DEFAULT_SSE_MAX_CONNECTIONS: usize = 10_000;
const DEFAULT_SSE_MAX_PER_CLIENT: usize = 256;
const DEFAULT_SSE_QUEUE_EVENTS: usize = 1024;
const DEFAULT_SSE_MAX_CHANNELS: usize = 100;
const DEFAULT_SSE_LAST_VALUE_CHANNELS: usize = 10_000;
const DEFAULT_SSE_LAST_VALUE_EVENTS: usize = 16;
const DEFAULT_SSE_LAST_VALUE_REBUILD_BYTES: u64 = 64 * 1024 * 1024;
const DEFAULT_SSE_TCP_KEEPALIVE_SECS: u64 = 60;
const DEFAULT_SSE_TCP_KEEPALIVE_INTERVAL_SECS: u64 = 10;
const DEFAULT_SSE_TCP_KEEPALIVE_PROBES: u32 = 3;
const DEFAULT_SSE_REQUEST_TIMEOUT_MS: u64 = 10_000;
const DEFAULT_SSE_OVERFLOW_GRACE_MS: u64 = 2_000;

/// `[sse]`: Server-Sent Events for browsers, straight from the journal.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SseConfig {
    /// `host:port` to listen on; must be loopback unless `allow_remote`.
    pub addr: String,
    /// Allow a non-loopback `addr` (behind a TLS-terminating proxy, say).
    pub allow_remote: bool,
    /// Signs the tokens for `private-`/`presence-` channels; empty: the
    /// `pusher` target's secret; none at all: those channels are refused.
    pub secret: Secret,
    /// Origins allowed cross-origin (`*` for any); empty: same origin only.
    pub cors_origins: Vec<String>,
    /// Host header names answered besides IP addresses and `localhost`
    /// (`*`: any). On a loopback listener every other name is refused (DNS
    /// rebinding); on an exposed one (`allow_remote`) names are checked only
    /// when this is set.
    pub allowed_hosts: Vec<String>,
    /// How often an idle stream gets a heartbeat comment.
    pub heartbeat_ms: u64,
    /// Most open streams in total.
    pub max_connections: usize,
    /// Most open streams from one client address.
    pub max_connections_per_client: usize,
    /// Events queued for one client before its stream ends with `overflow`.
    pub client_queue_events: usize,
    /// Most channels in one stream.
    pub max_channels: usize,
    /// Channels whose latest events are kept for clients that connect.
    pub last_value_channels: usize,
    /// Event names kept per channel for last values.
    pub last_value_events_per_channel: usize,
    /// How much of the newest journal data is read on start to rebuild the
    /// last values (plus the rest of the segment it begins in); 0: none.
    pub last_value_rebuild_bytes: u64,
    /// TCP keepalive on stream connections: idle seconds before the first
    /// probe (0: off). A browser that vanished (power cut, network gone)
    /// sends no FIN; its half-open socket is closed after
    /// `tcp_keepalive_secs + tcp_keepalive_interval_secs * tcp_keepalive_probes`
    /// (also the TCP_USER_TIMEOUT for unacknowledged writes).
    pub tcp_keepalive_secs: u64,
    pub tcp_keepalive_interval_secs: u64,
    pub tcp_keepalive_probes: u32,
    /// How long a new connection may take to send its request headers.
    pub request_timeout_ms: u64,
    /// How long an overflowed client may take to read its final event
    /// before its connection is closed.
    pub overflow_grace_ms: u64,
    /// Origins the dashboard page may connect to besides this one (its
    /// Content-Security-Policy `connect-src`), e.g. a Pusher-protocol server's
    /// `ws://host:6001`.
    pub dashboard_connect: Vec<String>,
}

impl Default for SseConfig {
    fn default() -> Self {
        Self {
            addr: DEFAULT_SSE_ADDR.into(),
            allow_remote: false,
            secret: Secret::default(),
            cors_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            heartbeat_ms: DEFAULT_SSE_HEARTBEAT_MS,
            max_connections: DEFAULT_SSE_MAX_CONNECTIONS,
            max_connections_per_client: DEFAULT_SSE_MAX_PER_CLIENT,
            client_queue_events: DEFAULT_SSE_QUEUE_EVENTS,
            max_channels: DEFAULT_SSE_MAX_CHANNELS,
            last_value_channels: DEFAULT_SSE_LAST_VALUE_CHANNELS,
            last_value_events_per_channel: DEFAULT_SSE_LAST_VALUE_EVENTS,
            last_value_rebuild_bytes: DEFAULT_SSE_LAST_VALUE_REBUILD_BYTES,
            tcp_keepalive_secs: DEFAULT_SSE_TCP_KEEPALIVE_SECS,
            tcp_keepalive_interval_secs: DEFAULT_SSE_TCP_KEEPALIVE_INTERVAL_SECS,
            tcp_keepalive_probes: DEFAULT_SSE_TCP_KEEPALIVE_PROBES,
            request_timeout_ms: DEFAULT_SSE_REQUEST_TIMEOUT_MS,
            overflow_grace_ms: DEFAULT_SSE_OVERFLOW_GRACE_MS,
            dashboard_connect: Vec::new(),
        }
    }
}

impl SseConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("heartbeat_ms", self.heartbeat_ms as usize),
            ("max_connections", self.max_connections),
            (
                "max_connections_per_client",
                self.max_connections_per_client,
            ),
            ("client_queue_events", self.client_queue_events),
            ("max_channels", self.max_channels),
            ("request_timeout_ms", self.request_timeout_ms as usize),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(ConfigError(format!("sse.{name} must be positive")));
            }
        }
        if self.tcp_keepalive_secs > 0
            && (self.tcp_keepalive_interval_secs == 0 || self.tcp_keepalive_probes == 0)
        {
            return Err(ConfigError(
                "sse.tcp_keepalive_interval_secs and sse.tcp_keepalive_probes must be positive when sse.tcp_keepalive_secs is set".into(),
            ));
        }
        Ok(())
    }
}

/// An on/off environment variable; anything else is an error naming it.
fn parse_bool(name: &str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(ConfigError(format!(
            "{name} must be true or false, got {v:?}"
        ))),
    }
}

#[derive(Debug)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Loads the file (if any), then applies the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError(format!("cannot read config file {}: {e}", path.display()))
                })?;
                Self::from_toml(&text)
                    .map_err(|e| ConfigError(format!("config file {}: {}", path.display(), e.0)))?
            }
            None => Self::default(),
        };
        config.apply_env(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))?;
        config.validate()?;
        Ok(config)
    }

    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError(e.to_string()))
    }

    /// Applies environment variables (`get` is injectable for tests).
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = get(env::SCADA_SIDECAR_SOCKET) {
            self.server.socket = v.into();
        }
        if let Some(v) = get(env::SCADA_SPOOL_DIR) {
            self.server.spool_dir = v.into();
        }
        if let Some(v) = get(env::SCADA_DATA_DIR) {
            self.server.data_dir = v.into();
        }
        if let Some(v) = get(env::SCADA_STATUS_ADDR) {
            self.server.status_addr = v;
        }
        if let Some(v) = get(env::SCADA_SOCKET_GROUP) {
            self.server.socket_group = v;
        }

        let redis_vars = [
            env::REDIS_URL,
            env::REDIS_HOST,
            env::REDIS_PORT,
            env::REDIS_PASSWORD,
            env::REDIS_DB,
            env::REDIS_PREFIX,
            env::REDIS_USERNAME,
        ];
        let redis_disabled = get(env::SCADA_REDIS_ENABLED)
            .is_some_and(|v| matches!(v.as_str(), "0" | "false" | "no" | "off"));
        if redis_disabled {
            self.redis = None;
        } else if self.redis.is_some() || redis_vars.iter().any(|k| get(k).is_some()) {
            let mut redis = self.redis.take().unwrap_or_default();
            if let Some(v) = get(env::REDIS_URL) {
                redis.url = v;
            }
            if let Some(v) = get(env::REDIS_HOST) {
                redis.host = v;
            }
            if let Some(v) = get(env::REDIS_PORT) {
                redis.port = v.parse().map_err(|_| {
                    ConfigError(format!(
                        "{} must be a port number, got {v:?}",
                        env::REDIS_PORT
                    ))
                })?;
            }
            if let Some(v) = get(env::REDIS_USERNAME) {
                redis.username = v;
            }
            if let Some(v) = get(env::REDIS_PASSWORD) {
                redis.password = Secret::new(v);
            }
            if let Some(v) = get(env::REDIS_DB) {
                redis.db = v.parse().map_err(|_| {
                    ConfigError(format!("{} must be an integer, got {v:?}", env::REDIS_DB))
                })?;
            }
            if let Some(v) = get(env::SCADA_REDIS_LAST_VALUE) {
                redis.last_value = parse_bool(env::SCADA_REDIS_LAST_VALUE, &v)?;
            }
            match get(env::REDIS_PREFIX) {
                Some(v) => redis.prefix = v,
                None if get(env::APP_NAME).is_some() => {
                    redis.prefix = laravel_redis_prefix(get(env::APP_NAME).as_deref())
                }
                None => {}
            }
            self.redis = Some(redis);
        }

        if let Some(v) = get(env::SCADA_THROTTLE) {
            self.throttle = crate::throttle::rules::RuleConfig::parse_list(&v)
                .map_err(|e| ConfigError(format!("{}: {e}", env::SCADA_THROTTLE)))?;
        }

        if let Some(v) = get(env::SCADA_PRIORITY) {
            self.priority = comma_list(&v);
        }

        if let Some(v) = get(env::SCADA_SSE_ADDR) {
            self.sse.get_or_insert_with(SseConfig::default).addr = v;
        }
        if let Some(sse) = &mut self.sse {
            if let Some(v) = get(env::SCADA_SSE_SECRET) {
                sse.secret = Secret::new(v);
            }
            if let Some(v) = get(env::SCADA_SSE_CORS) {
                sse.cors_origins = comma_list(&v);
            }
            if let Some(v) = get(env::SCADA_SSE_ALLOWED_HOSTS) {
                sse.allowed_hosts = comma_list(&v);
            }
            if let Some(v) = get(env::SCADA_DASHBOARD_CONNECT) {
                sse.dashboard_connect = comma_list(&v);
            }
            if let Some(v) = get(env::SCADA_SSE_TCP_KEEPALIVE) {
                sse.tcp_keepalive_secs = v.trim().parse().map_err(|_| {
                    ConfigError(format!(
                        "{} must be seconds (0: off), got {v:?}",
                        env::SCADA_SSE_TCP_KEEPALIVE
                    ))
                })?;
            }
        }

        // PUSHER_* configure (or override) the target named "pusher".
        let pusher_vars = [
            env::PUSHER_APP_ID,
            env::PUSHER_APP_KEY,
            env::PUSHER_APP_SECRET,
            env::PUSHER_HOST,
            env::PUSHER_PORT,
            env::PUSHER_SCHEME,
            env::PUSHER_APP_CLUSTER,
            env::SCADA_PUSHER_MAX_BATCH,
            env::SCADA_PUSHER_IDEMPOTENCY_KEY,
        ];
        let has_credentials = [
            env::PUSHER_APP_ID,
            env::PUSHER_APP_KEY,
            env::PUSHER_APP_SECRET,
        ]
        .iter()
        .any(|k| get(k).is_some());
        let existing = self.pusher.iter().position(|p| p.name == "pusher");
        if has_credentials || (existing.is_some() && pusher_vars.iter().any(|k| get(k).is_some())) {
            let mut p = match existing {
                Some(i) => self.pusher.remove(i),
                None => PusherConfig::default(),
            };
            if let Some(v) = get(env::PUSHER_APP_ID) {
                p.app_id = v;
            }
            if let Some(v) = get(env::PUSHER_APP_KEY) {
                p.key = v;
            }
            if let Some(v) = get(env::PUSHER_APP_SECRET) {
                p.secret = Secret::new(v);
            }
            if let Some(v) = get(env::PUSHER_HOST) {
                p.host = v;
            }
            if let Some(v) = get(env::PUSHER_PORT) {
                p.port = v.parse().map_err(|_| {
                    ConfigError(format!(
                        "{} must be a port number, got {v:?}",
                        env::PUSHER_PORT
                    ))
                })?;
            }
            if let Some(v) = get(env::PUSHER_SCHEME) {
                p.scheme = v.to_ascii_lowercase();
            }
            if let Some(v) = get(env::PUSHER_APP_CLUSTER) {
                p.cluster = v;
            }
            if let Some(v) = get(env::SCADA_PUSHER_MAX_BATCH) {
                p.max_batch_events = v.parse().map_err(|_| {
                    ConfigError(format!(
                        "{} must be a positive integer, got {v:?}",
                        env::SCADA_PUSHER_MAX_BATCH
                    ))
                })?;
            }
            if let Some(v) = get(env::SCADA_PUSHER_IDEMPOTENCY_KEY) {
                p.idempotency_key = matches!(v.as_str(), "1" | "true" | "yes" | "on");
            }
            self.pusher.insert(existing.unwrap_or(self.pusher.len()), p);
        }
        // The SSE secret falls back to the Pusher app secret Laravel signs with.
        let pusher_secret = self
            .pusher
            .iter()
            .find(|p| p.name == "pusher")
            .map(|p| p.secret.clone());
        if let (Some(sse), Some(secret)) = (&mut self.sse, pusher_secret) {
            if sse.secret.is_empty() {
                sse.secret = secret;
            }
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        // Browsers over SSE alone are a destination too (the journal is
        // then kept for resuming clients until the throttle stage passed it).
        if self.redis.is_none() && self.pusher.is_empty() && self.sse.is_none() {
            return Err(ConfigError(
                "no destination configured: set REDIS_HOST or REDIS_URL (Laravel's Redis broadcaster) \
                 and/or PUSHER_APP_ID, PUSHER_APP_KEY, PUSHER_APP_SECRET (Pusher, Reverb, Soketi, Sockudo) \
                 and/or SCADA_SSE_ADDR (browsers over Server-Sent Events), \
                 or add [redis] / [[pusher]] / [sse] sections to the config file"
                    .into(),
            ));
        }
        for rule in &self.throttle {
            rule.validate().map_err(ConfigError)?;
        }
        for pattern in &self.priority {
            crate::throttle::rules::validate_pattern(pattern)
                .map_err(|e| ConfigError(format!("priority / {}: {e}", env::SCADA_PRIORITY)))?;
        }
        if let Some(sse) = &self.sse {
            sse.validate()?;
        }
        let mut names = std::collections::HashSet::new();
        for p in &self.pusher {
            let missing: Vec<&str> = [
                ("app_id / PUSHER_APP_ID", p.app_id.is_empty()),
                ("key / PUSHER_APP_KEY", p.key.is_empty()),
                ("secret / PUSHER_APP_SECRET", p.secret.is_empty()),
            ]
            .iter()
            .filter(|(_, m)| *m)
            .map(|(n, _)| *n)
            .collect();
            if !missing.is_empty() {
                return Err(ConfigError(format!(
                    "pusher target {:?} is missing {}",
                    p.name,
                    missing.join(", ")
                )));
            }
            if !matches!(p.scheme.as_str(), "http" | "https") {
                return Err(ConfigError(format!(
                    "pusher target {:?}: scheme must be http or https, got {:?}",
                    p.name, p.scheme
                )));
            }
            if p.max_batch_events == 0 || p.max_in_flight == 0 {
                return Err(ConfigError(format!(
                    "pusher target {:?}: max_batch_events and max_in_flight must be positive",
                    p.name
                )));
            }
            if p.name.is_empty()
                || !p
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                || p.name == "redis"
            {
                return Err(ConfigError(format!(
                    "pusher target name {:?} must be letters, digits, - or _ (and not \"redis\")",
                    p.name
                )));
            }
            if !names.insert(&p.name) {
                return Err(ConfigError(format!(
                    "two pusher targets are named {:?}",
                    p.name
                )));
            }
        }
        if self.journal.segment_bytes < 1024 * 1024 {
            return Err(ConfigError(
                "journal.segment_bytes must be at least 1 MiB".into(),
            ));
        }
        if self.journal.max_bytes < self.journal.segment_bytes * 2 {
            return Err(ConfigError(
                "journal.max_bytes must be at least twice journal.segment_bytes".into(),
            ));
        }
        if let Some(r) = &self.redis {
            if r.max_batch_events == 0 || r.max_batch_bytes == 0 {
                return Err(ConfigError(
                    "redis.max_batch_events and max_batch_bytes must be positive".into(),
                ));
            }
        }
        Ok(())
    }
}

/// `a, b,,c` → `["a", "b", "c"]`.
fn comma_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with_env(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut c = Config::default();
        c.apply_env(|k| map.get(k).cloned())?;
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn laravel_names_configure_redis() {
        let c = with_env(&[
            ("REDIS_HOST", "10.0.0.5"),
            ("REDIS_PORT", "6380"),
            ("REDIS_PASSWORD", "hunter2"),
            ("REDIS_DB", "3"),
            ("SCADA_SIDECAR_SOCKET", "/tmp/x/s.sock"),
        ])
        .unwrap();
        let r = c.redis.unwrap();
        assert_eq!((r.host.as_str(), r.port, r.db), ("10.0.0.5", 6380, 3));
        assert_eq!(r.prefix, "laravel_database_");
        assert_eq!(r.password.expose(), "hunter2");
        assert!(!format!("{r:?}").contains("hunter2"));
        assert_eq!(c.server.spool_dir(), PathBuf::from("/tmp/x/spool"));
    }

    #[test]
    fn prefix_follows_app_name_unless_given() {
        let c = with_env(&[("REDIS_HOST", "h"), ("APP_NAME", "My SCADA App")]).unwrap();
        assert_eq!(c.redis.unwrap().prefix, "my_scada_app_database_");
        let c = with_env(&[("REDIS_HOST", "h"), ("APP_NAME", "x"), ("REDIS_PREFIX", "")]);
        // An empty REDIS_PREFIX counts as unset in the process environment filter,
        // but an explicit map value is used as is.
        assert_eq!(c.unwrap().redis.unwrap().prefix, "");
        assert_eq!(
            laravel_redis_prefix(Some("foo@bar  baz")),
            "foo_at_bar_baz_database_"
        );
    }

    #[test]
    fn refuses_to_start_without_a_destination_and_reports_bad_values() {
        let e = with_env(&[]).unwrap_err();
        assert!(
            e.0.contains("REDIS_HOST") && e.0.contains("PUSHER_APP_ID"),
            "{e}"
        );
        let e = with_env(&[("REDIS_PORT", "abc")]).unwrap_err();
        assert!(e.0.contains("REDIS_PORT"), "{e}");
        assert!(with_env(&[("REDIS_HOST", "h"), ("SCADA_REDIS_ENABLED", "false")]).is_err());
    }

    #[test]
    fn toml_is_strict_and_env_overrides_it() {
        let mut c = Config::from_toml(
            "[server]\nsocket = \"/a/b.sock\"\n[redis]\nhost = \"r1\"\nmax_batch_events = 10\n",
        )
        .unwrap();
        c.apply_env(|k| (k == "REDIS_HOST").then(|| "r2".to_string()))
            .unwrap();
        let r = c.redis.unwrap();
        assert_eq!((r.host.as_str(), r.max_batch_events), ("r2", 10));
        assert!(Config::from_toml("[server]\nsokcet = 1\n").is_err());
    }

    #[test]
    fn pusher_targets_come_from_laravels_names_and_the_file() {
        let c = with_env(&[
            ("PUSHER_APP_ID", "1"),
            ("PUSHER_APP_KEY", "k"),
            ("PUSHER_APP_SECRET", "s3cr3t"),
        ])
        .unwrap();
        let p = &c.pusher[0];
        assert_eq!(
            (p.host(), p.port(), p.scheme.as_str()),
            ("api-mt1.pusher.com".to_string(), 443, "https")
        );
        assert!(!format!("{p:?}").contains("s3cr3t"));
        let c = with_env(&[
            ("PUSHER_APP_ID", "1"),
            ("PUSHER_APP_KEY", "k"),
            ("PUSHER_APP_SECRET", "s"),
            ("PUSHER_HOST", "127.0.0.1"),
            ("PUSHER_PORT", "6001"),
            ("PUSHER_SCHEME", "http"),
            ("SCADA_PUSHER_MAX_BATCH", "100"),
        ])
        .unwrap();
        assert_eq!(c.pusher[0].base_url(), "http://127.0.0.1:6001");
        assert_eq!(c.pusher[0].max_batch_events, 100);
        assert!(c.redis.is_none());
        let e = with_env(&[("PUSHER_APP_ID", "1"), ("PUSHER_APP_KEY", "k")]).unwrap_err();
        assert!(e.0.contains("PUSHER_APP_SECRET"), "{e}");

        let mut c = Config::from_toml(
            "[[pusher]]\nname = \"reverb\"\napp_id = \"a\"\nkey = \"k\"\nsecret = \"s\"\nhost = \"r\"\nmax_request_bytes = 10000\n\n[[pusher]]\nname = \"backup\"\napp_id = \"b\"\nkey = \"k\"\nsecret = \"s\"\nhost = \"b\"\n",
        )
        .unwrap();
        c.apply_env(|k| (k == "REDIS_HOST").then(|| "h".to_string()))
            .unwrap();
        c.validate().unwrap();
        assert_eq!(c.pusher.len(), 2);
        assert_eq!(c.pusher[0].max_request_bytes, 10000);
        assert!(c.redis.is_some());
    }

    #[test]
    fn priority_rule_from_the_file_and_the_environment() {
        let c = Config::from_toml("priority = [\"alarms-*\"]\n[redis]\nhost = \"h\"\n").unwrap();
        c.validate().unwrap();
        assert_eq!(c.priority, vec!["alarms-*".to_string()]);
        let c = with_env(&[("REDIS_HOST", "h"), ("SCADA_PRIORITY", " alarms-*, trip ")]).unwrap();
        assert_eq!(c.priority, vec!["alarms-*".to_string(), "trip".to_string()]);
        let e = with_env(&[("REDIS_HOST", "h"), ("SCADA_PRIORITY", "alarms #1")]).unwrap_err();
        assert!(e.to_string().contains("SCADA_PRIORITY"), "{e}");
    }

    #[test]
    fn throttle_rules_from_the_file_and_the_environment() {
        let c = Config::from_toml(
            "[[throttle]]\nchannels = \"scada-*\"\nwindow_ms = 250\nmode = \"latest\"\n",
        )
        .unwrap();
        assert_eq!(c.throttle[0].window_ms, 250);
        let c = with_env(&[
            ("REDIS_HOST", "h"),
            ("SCADA_THROTTLE", "live-*=100:aggregate"),
        ])
        .unwrap();
        assert_eq!(c.throttle[0].channels, "live-*");
        assert!(with_env(&[("REDIS_HOST", "h"), ("SCADA_THROTTLE", "live-*=0")]).is_err());
    }

    #[test]
    fn the_redis_last_value_key_is_opt_in() {
        let c = with_env(&[("REDIS_HOST", "h")]).unwrap();
        assert!(!c.redis.unwrap().last_value);
        let c = with_env(&[("REDIS_HOST", "h"), ("SCADA_REDIS_LAST_VALUE", "true")]).unwrap();
        assert!(c.redis.unwrap().last_value);
        let e = with_env(&[("REDIS_HOST", "h"), ("SCADA_REDIS_LAST_VALUE", "maybe")]).unwrap_err();
        assert!(
            e.0.contains("SCADA_REDIS_LAST_VALUE must be true or false"),
            "{}",
            e.0
        );
        // Alone it does not invent a Redis target.
        let c = with_env(&[
            ("SCADA_REDIS_LAST_VALUE", "true"),
            ("SCADA_SSE_ADDR", "127.0.0.1:1"),
        ])
        .unwrap();
        assert!(c.redis.is_none());
        let c = Config::from_toml("[redis]\nlast_value = true\n").unwrap();
        assert!(c.redis.unwrap().last_value);
    }

    #[test]
    fn sse_tcp_keepalive_defaults_to_a_minute_and_is_configurable() {
        let sse = [("REDIS_HOST", "h"), ("SCADA_SSE_ADDR", "127.0.0.1:9999")];
        let c = with_env(&sse).unwrap().sse.unwrap();
        assert_eq!(
            (
                c.tcp_keepalive_secs,
                c.tcp_keepalive_interval_secs,
                c.tcp_keepalive_probes
            ),
            (60, 10, 3)
        );
        let mut off = sse.to_vec();
        off.push(("SCADA_SSE_TCP_KEEPALIVE", "0"));
        assert_eq!(with_env(&off).unwrap().sse.unwrap().tcp_keepalive_secs, 0);
        let mut bad = sse.to_vec();
        bad.push(("SCADA_SSE_TCP_KEEPALIVE", "soon"));
        let e = with_env(&bad).unwrap_err().0;
        assert!(e.contains("SCADA_SSE_TCP_KEEPALIVE must be seconds"), "{e}");
        let c = Config::from_toml(
            "[redis]\n[sse]\ntcp_keepalive_secs = 30\ntcp_keepalive_interval_secs = 5\ntcp_keepalive_probes = 2\nlast_value_rebuild_bytes = 0\n",
        )
        .unwrap();
        let sse = c.sse.as_ref().unwrap();
        assert_eq!(
            (
                sse.tcp_keepalive_secs,
                sse.tcp_keepalive_interval_secs,
                sse.tcp_keepalive_probes
            ),
            (30, 5, 2)
        );
        assert_eq!(sse.last_value_rebuild_bytes, 0);
        let c = Config::from_toml("[redis]\n[sse]\ntcp_keepalive_probes = 0\n").unwrap();
        assert!(c.validate().unwrap_err().0.contains("tcp_keepalive_probes"));
    }

    #[test]
    fn sse_is_opt_in_and_takes_its_secret_from_pusher_unless_given() {
        let c = with_env(&[("REDIS_HOST", "h")]).unwrap();
        assert!(c.sse.is_none());
        let c = with_env(&[
            ("REDIS_HOST", "h"),
            ("SCADA_SSE_ADDR", "127.0.0.1:9999"),
            ("SCADA_SSE_CORS", "https://a, https://b"),
        ])
        .unwrap();
        let sse = c.sse.unwrap();
        assert_eq!(sse.addr, "127.0.0.1:9999");
        assert_eq!(sse.cors_origins, ["https://a", "https://b"]);
        assert!(sse.secret.is_empty());
        assert_eq!(sse.heartbeat_ms, 20_000);
        let pusher = [
            ("SCADA_SSE_ADDR", "127.0.0.1:9999"),
            ("PUSHER_APP_ID", "1"),
            ("PUSHER_APP_KEY", "k"),
            ("PUSHER_APP_SECRET", "from-pusher"),
        ];
        let c = with_env(&pusher).unwrap();
        assert_eq!(c.sse.as_ref().unwrap().secret.expose(), "from-pusher");
        assert!(!format!("{:?}", c.sse).contains("from-pusher"));
        let mut own = pusher.to_vec();
        own.push(("SCADA_SSE_SECRET", "own"));
        let c = with_env(&own).unwrap();
        assert_eq!(c.sse.unwrap().secret.expose(), "own");
        let c = Config::from_toml("[redis]\n[sse]\nheartbeat_ms = 50\n").unwrap();
        assert_eq!(c.sse.as_ref().unwrap().addr, "127.0.0.1:8090");
        assert!(Config::from_toml("[sse]\nheartbeat = 5\n").is_err());
        let c = Config::from_toml("[redis]\n[sse]\nmax_channels = 0\n").unwrap();
        assert!(c.validate().unwrap_err().0.contains("sse.max_channels"));
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(redact_url("redis://u:pw@h:1/0"), "redis://u:***@h:1/0");
        assert_eq!(redact_url("redis://:pw@h"), "redis://:***@h");
        assert_eq!(redact_url("redis://h:1"), "redis://h:1");
    }
}
