//! Settings: php.ini < environment < constructor options.
//!
//! | option               | php.ini                               | environment          | default |
//! |----------------------|---------------------------------------|----------------------|---------|
//! | `socket`             | `scada_broadcast.socket`              | `SCADA_SIDECAR_SOCKET` | `/run/scada-broadcast/sidecar.sock` |
//! | `spool_dir`          | `scada_broadcast.spool_dir`           | `SCADA_SPOOL_DIR`    | `<socket dir>/spool` |
//! | `max_payload_bytes`  | `scada_broadcast.max_payload_bytes`   |                      | 10240 (Pusher's limit) |
//! | `max_depth`          | `scada_broadcast.max_depth`           |                      | 64 |
//! | `buffer_bytes`       | `scada_broadcast.buffer_bytes`        |                      | 8 MiB |
//! | `spool_max_bytes`    | `scada_broadcast.spool_max_bytes`     |                      | 256 MiB |
//! | `overflow`           | `scada_broadcast.overflow`            |                      | `reject` |
//! | `overflow_rules`     | `scada_broadcast.overflow_rules`      |                      | none (`critical-*=reject,telemetry-*=drop_oldest`) |
//! | `linger_us`          | `scada_broadcast.linger_us`           |                      | 1000 |
//! | `flush_timeout_ms`   | `scada_broadcast.flush_timeout_ms`    |                      | 2000 |
//! | `shutdown_timeout_ms`| `scada_broadcast.shutdown_timeout_ms` |                      | 2000 |
//! | `connect_timeout_ms` |                                       |                      | 100 |

use std::collections::HashMap;
use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ext_php_rs::flags::IniEntryPermission;
use ext_php_rs::types::{ZendHashTable, Zval};
use ext_php_rs::zend::{ExecutorGlobals, IniEntryDef, IniEntryDefs};

use crate::encode::{try_for_each, Key};
use crate::transport::outbox::Overflow;
use crate::transport::TransportConfig;

pub const ENV_SOCKET: &str = "SCADA_SIDECAR_SOCKET";
pub const ENV_SPOOL_DIR: &str = "SCADA_SPOOL_DIR";
pub const DEFAULT_SOCKET: &str = "/run/scada-broadcast/sidecar.sock";

/// One setting: its option name, php.ini directive and default.
struct Setting {
    option: &'static str,
    ini: &'static CStr,
    default: &'static CStr,
}

const SETTINGS: &[Setting] = &[
    Setting {
        option: "socket",
        ini: c"scada_broadcast.socket",
        default: c"/run/scada-broadcast/sidecar.sock",
    },
    Setting {
        option: "spool_dir",
        ini: c"scada_broadcast.spool_dir",
        default: c"",
    },
    Setting {
        option: "max_payload_bytes",
        ini: c"scada_broadcast.max_payload_bytes",
        default: c"10240",
    },
    Setting {
        option: "max_depth",
        ini: c"scada_broadcast.max_depth",
        default: c"64",
    },
    Setting {
        option: "buffer_bytes",
        ini: c"scada_broadcast.buffer_bytes",
        default: c"8388608",
    },
    Setting {
        option: "spool_max_bytes",
        ini: c"scada_broadcast.spool_max_bytes",
        default: c"268435456",
    },
    Setting {
        option: "overflow",
        ini: c"scada_broadcast.overflow",
        default: c"reject",
    },
    Setting {
        option: "overflow_rules",
        ini: c"scada_broadcast.overflow_rules",
        default: c"",
    },
    Setting {
        option: "linger_us",
        ini: c"scada_broadcast.linger_us",
        default: c"1000",
    },
    Setting {
        option: "flush_timeout_ms",
        ini: c"scada_broadcast.flush_timeout_ms",
        default: c"2000",
    },
    Setting {
        option: "shutdown_timeout_ms",
        ini: c"scada_broadcast.shutdown_timeout_ms",
        default: c"2000",
    },
];

/// Options accepted by the constructor that have no php.ini directive.
const EXTRA_OPTIONS: &[(&str, i64)] = &[("connect_timeout_ms", 100)];

pub static INI_ENTRIES: IniEntryDefs<12> = IniEntryDefs::new([
    IniEntryDef::new(
        SETTINGS[0].ini,
        SETTINGS[0].default,
        IniEntryPermission::All,
    ),
    IniEntryDef::new(
        SETTINGS[1].ini,
        SETTINGS[1].default,
        IniEntryPermission::All,
    ),
    IniEntryDef::new(
        SETTINGS[2].ini,
        SETTINGS[2].default,
        IniEntryPermission::All,
    ),
    IniEntryDef::new(
        SETTINGS[3].ini,
        SETTINGS[3].default,
        IniEntryPermission::All,
    ),
    IniEntryDef::new(
        SETTINGS[4].ini,
        SETTINGS[4].default,
        IniEntryPermission::All,
    ),
    IniEntryDef::new(
        SETTINGS[5].ini,
        SETTINGS[5].default,
        IniEntryPermission::All,
    ),
    IniEntryDef::new(
        SETTINGS[6].ini,
        SETTINGS[6].default,
        IniEntryPermission::All,
    ),
    IniEntryDef::new(
        SETTINGS[7].ini,
        SETTINGS[7].default,
        IniEntryPermission::All,
    ),
    IniEntryDef::new(
        SETTINGS[8].ini,
        SETTINGS[8].default,
        IniEntryPermission::All,
    ),
    IniEntryDef::new(
        SETTINGS[9].ini,
        SETTINGS[9].default,
        IniEntryPermission::All,
    ),
    IniEntryDef::new(
        SETTINGS[10].ini,
        SETTINGS[10].default,
        IniEntryPermission::All,
    ),
    IniEntryDef::end(),
]);

/// Everything a `ScadaBroadcastingService` needs to know.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    pub transport: TransportConfig,
    pub max_payload_bytes: usize,
    pub max_depth: usize,
    /// Default policy when the in-process buffer and spool are full.
    pub overflow: Overflow,
    /// Per channel pattern (first match wins), e.g. critical channels `reject`
    /// while telemetry uses `drop_oldest`.
    pub overflow_rules: Vec<(String, Overflow)>,
    pub flush_timeout: Duration,
}

impl ServiceOptions {
    /// The policy for an event on `channels`: `reject` wins if any channel's
    /// rule says so (a critical event is never silently evicted).
    pub fn overflow_for<'a>(&self, channels: impl IntoIterator<Item = &'a [u8]>) -> Overflow {
        if self.overflow_rules.is_empty() {
            return self.overflow;
        }
        let mut policy = None;
        for ch in channels {
            let name = std::str::from_utf8(ch).unwrap_or("");
            let p = self
                .overflow_rules
                .iter()
                .find(|(pat, _)| scada_core::validate::glob(pat, name))
                .map_or(self.overflow, |(_, p)| *p);
            if p == Overflow::Reject {
                return Overflow::Reject;
            }
            policy = Some(p);
        }
        policy.unwrap_or(self.overflow)
    }
}

/// `critical-*=reject,telemetry-*=drop_oldest`
fn parse_overflow_rules(text: &str) -> Result<Vec<(String, Overflow)>, String> {
    text.split([',', ';'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            let (pattern, policy) = item.split_once('=').ok_or_else(|| {
                option_error(
                    "overflow_rules",
                    "pattern=policy pairs, e.g. critical-*=reject,telemetry-*=drop_oldest",
                )
            })?;
            let policy = Overflow::parse(policy.trim()).ok_or_else(|| {
                option_error(
                    "overflow_rules",
                    &format!("'reject' or 'drop_oldest' for {pattern}"),
                )
            })?;
            Ok((pattern.trim().to_string(), policy))
        })
        .collect()
}

/// Spool directory when none is configured: next to the socket.
pub fn default_spool_dir(socket: &Path) -> PathBuf {
    socket
        .parent()
        .unwrap_or_else(|| Path::new("/tmp"))
        .join("spool")
}

enum Raw {
    Str(String),
    Int(i64),
    Rules(Vec<(String, Overflow)>),
}

fn option_error(name: &str, want: &str) -> String {
    format!("ScadaBroadcastingService::__construct(): option '{name}' must be {want}")
}

impl ServiceOptions {
    /// Builds the options from php.ini, the environment and `options`.
    /// Unknown keys and wrong types are errors (typos must not pass silently).
    pub fn from_php(options: Option<&ZendHashTable>) -> Result<Self, String> {
        let ini = ExecutorGlobals::get().ini_values();
        let mut raw: HashMap<&'static str, Raw> = HashMap::new();
        for s in SETTINGS {
            let key = s.ini.to_string_lossy();
            let value = ini
                .get(key.as_ref())
                .cloned()
                .flatten()
                .unwrap_or_else(|| s.default.to_string_lossy().into_owned());
            raw.insert(s.option, Raw::Str(value));
        }
        for (name, default) in EXTRA_OPTIONS {
            raw.insert(name, Raw::Int(*default));
        }
        if let Ok(v) = std::env::var(ENV_SOCKET) {
            if !v.is_empty() {
                raw.insert("socket", Raw::Str(v));
            }
        }
        if let Ok(v) = std::env::var(ENV_SPOOL_DIR) {
            if !v.is_empty() {
                raw.insert("spool_dir", Raw::Str(v));
            }
        }
        if let Some(options) = options {
            let known = || -> Vec<&str> {
                SETTINGS
                    .iter()
                    .map(|s| s.option)
                    .chain(EXTRA_OPTIONS.iter().map(|(n, _)| *n))
                    .collect()
            };
            try_for_each(options, |key, value| {
                let name = match key {
                    Key::Str(k) => known().into_iter().find(|n| n.as_bytes() == k),
                    Key::Index(_) => None,
                };
                let Some(name) = name else {
                    return Err(format!(
                        "ScadaBroadcastingService::__construct(): unknown option {}; known options: {}",
                        key.quoted(),
                        known().join(", ")
                    ));
                };
                raw.insert(name, option_value(name, value)?);
                Ok(())
            })?;
        }
        Self::build(&raw)
    }

    fn build(raw: &HashMap<&'static str, Raw>) -> Result<Self, String> {
        let text = |name: &str| -> Result<String, String> {
            match raw.get(name) {
                Some(Raw::Str(s)) => Ok(s.clone()),
                Some(Raw::Int(i)) => Ok(i.to_string()),
                Some(Raw::Rules(_)) | None => Ok(String::new()),
            }
        };
        let int = |name: &str, min: i64, max: i64| -> Result<i64, String> {
            let v = match raw.get(name) {
                Some(Raw::Int(i)) => *i,
                Some(Raw::Str(s)) => s
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| option_error(name, "an integer"))?,
                Some(Raw::Rules(_)) | None => 0,
            };
            if !(min..=max).contains(&v) {
                return Err(option_error(
                    name,
                    &format!("between {min} and {max}, got {v}"),
                ));
            }
            Ok(v)
        };
        let socket = PathBuf::from(text("socket")?);
        if socket.as_os_str().is_empty() {
            return Err(option_error("socket", "a non-empty path"));
        }
        let spool_dir = match text("spool_dir")? {
            s if s.is_empty() => default_spool_dir(&socket),
            s => PathBuf::from(s),
        };
        let overflow_rules = match raw.get("overflow_rules") {
            Some(Raw::Rules(rules)) => rules.clone(),
            _ => parse_overflow_rules(&text("overflow_rules")?)?,
        };
        let overflow_text = text("overflow")?;
        let overflow = Overflow::parse(&overflow_text)
            .ok_or_else(|| option_error("overflow", "'reject' or 'drop_oldest'"))?;
        let max_frame = scada_core::frame::MAX_BODY_LEN as i64 - 4096;
        Ok(Self {
            transport: TransportConfig {
                socket,
                spool_dir,
                buffer_bytes: int("buffer_bytes", 64 * 1024, 1 << 34)? as usize,
                spool_max_bytes: int("spool_max_bytes", 0, 1 << 42)? as u64,
                linger: Duration::from_micros(int("linger_us", 0, 60_000_000)? as u64),
                connect_timeout: Duration::from_millis(int("connect_timeout_ms", 1, 60_000)? as u64),
                max_unacked_bytes: 4 * 1024 * 1024,
                shutdown_timeout: Duration::from_millis(
                    int("shutdown_timeout_ms", 0, 600_000)? as u64
                ),
            },
            max_payload_bytes: int("max_payload_bytes", 16, max_frame)? as usize,
            max_depth: int("max_depth", 1, 512)? as usize,
            overflow,
            overflow_rules,
            flush_timeout: Duration::from_millis(int("flush_timeout_ms", 0, 600_000)? as u64),
        })
    }
}

fn option_value(name: &'static str, value: &Zval) -> Result<Raw, String> {
    if name == "overflow_rules" {
        // ['critical-*' => 'reject', 'telemetry-*' => 'drop_oldest'] or the ini string form.
        if let Some(s) = value.str() {
            return parse_overflow_rules(s).map(Raw::Rules);
        }
        let ht = value
            .array()
            .ok_or_else(|| option_error(name, "an array of pattern => 'reject'|'drop_oldest'"))?;
        let mut rules = Vec::new();
        try_for_each(ht, |key, v| {
            let pattern = match key {
                Key::Str(b) => std::str::from_utf8(b).ok(),
                Key::Index(_) => None,
            }
            .ok_or_else(|| {
                option_error(
                    name,
                    &format!("string patterns as keys, not {}", key.quoted()),
                )
            })?;
            let policy = v.str().and_then(Overflow::parse).ok_or_else(|| {
                option_error(
                    name,
                    &format!("'reject' or 'drop_oldest' for pattern {}", key.quoted()),
                )
            })?;
            rules.push((pattern.to_string(), policy));
            Ok::<(), String>(())
        })?;
        return Ok(Raw::Rules(rules));
    }
    let textual = matches!(name, "socket" | "spool_dir" | "overflow");
    if textual {
        return value
            .str()
            .map(|s| Raw::Str(s.to_string()))
            .ok_or_else(|| option_error(name, "a string"));
    }
    value
        .long()
        .map(Raw::Int)
        .ok_or_else(|| option_error(name, "an integer"))
}
