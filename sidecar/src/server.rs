//! Wiring: sockets, journal, ingest, sinks, spool drain, status, shutdown.
//!
//! `run(config, shutdown)` is the whole daemon; `main.rs` only parses
//! arguments and sets up logging, and tests call `run` directly.

use std::future::Future;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::failpoint;
use crate::ingest::spool::SpoolDrainer;
use crate::ingest::{self, Ingest};
use crate::journal::lock::{DirLock, LockError};
use crate::journal::{Journal, Stop};
use crate::metrics::{Metrics, THROTTLE_KIND};
use crate::routing::{Lane, Routing};
use crate::sinks::pusher::PusherSink;
use crate::sinks::redis::RedisSink;
use crate::sinks::SinkError;
use crate::sse;
use crate::status::{self, StatusContext};
use crate::throttle::rules::Rules;
use crate::throttle::ThrottleStage;

/// Why the sidecar could not start (it exits non-zero with this message).
#[derive(Debug)]
pub enum ServerError {
    /// Another sidecar holds the data directory (or the lock failed).
    Lock(LockError),
    /// Creating a directory, setting its mode or group.
    Dir {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// `socket_group` names no group.
    UnknownGroup(String),
    /// A name passed to the C library holds a NUL byte.
    NulInName {
        what: &'static str,
        name: String,
    },
    /// A running process listens on the socket already.
    SocketInUse(PathBuf),
    Listen {
        at: String,
        source: io::Error,
    },
    Journal {
        path: PathBuf,
        source: io::Error,
    },
    Cursor {
        reader: String,
        source: io::Error,
    },
    Sink(SinkError),
    /// A TCP listener's address (`SCADA_STATUS_ADDR`, `SCADA_SSE_ADDR`) is not `host:port`.
    TcpAddr {
        listener: &'static TcpListenerKind,
        addr: String,
        source: std::net::AddrParseError,
    },
    /// A TCP listener's address is not loopback and its allow-remote setting is off.
    NotLoopback {
        listener: &'static TcpListenerKind,
        addr: std::net::SocketAddr,
    },
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Lock(e) => write!(f, "{e}"),
            Self::Dir { what, path, source } => {
                write!(f, "cannot {what} {}: {source}", path.display())
            }
            Self::UnknownGroup(group) => write!(f, "socket_group {group:?} does not exist"),
            Self::NulInName { what, name } => {
                write!(f, "invalid {what} {name:?}: it holds a NUL byte")
            }
            Self::SocketInUse(path) => write!(
                f,
                "another process is already listening on {}; is a sidecar running?",
                path.display()
            ),
            Self::Listen { at, source } => write!(f, "cannot listen on {at}: {source}"),
            Self::Journal { path, source } => {
                write!(f, "cannot open the journal in {}: {source}", path.display())
            }
            Self::Cursor { reader, source } => {
                write!(f, "cannot open the cursor of {reader}: {source}")
            }
            Self::Sink(e) => write!(f, "{e}"),
            Self::TcpAddr {
                listener,
                addr,
                source,
            } => write!(f, "{} {addr:?}: {source}", listener.env),
            Self::NotLoopback { listener, addr } => write!(
                f,
                "{} address {addr} is not loopback; set {} = true to expose it",
                listener.name, listener.allow_remote
            ),
        }
    }
}

impl std::error::Error for ServerError {}

fn dir_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ServerError + 'a {
    move |source| ServerError::Dir {
        what,
        path: path.to_path_buf(),
        source,
    }
}

fn make_dir(path: &Path, mode: u32) -> Result<(), ServerError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(dir_err("create directory", path))?;
    set_mode(path, mode)
}

fn set_mode(path: &Path, mode: u32) -> Result<(), ServerError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(dir_err("set permissions of", path))
}

/// Resolves a group name or number to a gid.
fn group_id(group: &str) -> Result<libc::gid_t, ServerError> {
    if let Ok(gid) = group.parse::<libc::gid_t>() {
        return Ok(gid);
    }
    let name = std::ffi::CString::new(group).map_err(|_| ServerError::NulInName {
        what: "socket_group",
        name: group.to_string(),
    })?;
    // SAFETY: getgrnam reads a NUL-terminated name; the result is checked for null
    // and only its gid field is read before any other call.
    let gr = unsafe { libc::getgrnam(name.as_ptr()) };
    if gr.is_null() {
        return Err(ServerError::UnknownGroup(group.to_string()));
    }
    // SAFETY: checked non-null above.
    Ok(unsafe { (*gr).gr_gid })
}

fn chown_group(path: &Path, gid: libc::gid_t) -> Result<(), ServerError> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        ServerError::NulInName {
            what: "path",
            name: path.display().to_string(),
        }
    })?;
    // SAFETY: valid C string; -1 keeps the owner.
    if unsafe { libc::chown(c.as_ptr(), u32::MAX, gid) } != 0 {
        return Err(dir_err("chown", path)(io::Error::last_os_error()));
    }
    Ok(())
}

/// Binds a Unix socket, removing a stale file left by a crash but never one
/// that a running sidecar still listens on.
pub fn bind_unix(path: &Path, mode: u32) -> Result<UnixListener, ServerError> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ServerError::SocketInUse(path.to_path_buf()));
        }
        std::fs::remove_file(path).map_err(dir_err("remove stale socket", path))?;
    }
    let listener = UnixListener::bind(path).map_err(|source| ServerError::Listen {
        at: path.display().to_string(),
        source,
    })?;
    set_mode(path, mode)?;
    Ok(listener)
}

/// A TCP listener the sidecar may open, for its error messages.
#[derive(Debug)]
pub struct TcpListenerKind {
    name: &'static str,
    env: &'static str,
    /// The setting that allows a non-loopback address.
    allow_remote: &'static str,
}

const STATUS_LISTENER: TcpListenerKind = TcpListenerKind {
    name: "status",
    env: crate::env::SCADA_STATUS_ADDR,
    allow_remote: "server.status_allow_remote",
};
const SSE_LISTENER: TcpListenerKind = TcpListenerKind {
    name: "SSE",
    env: crate::env::SCADA_SSE_ADDR,
    allow_remote: "sse.allow_remote",
};

/// Binds `addr` (`host:port`): loopback only unless `allow_remote`.
async fn bind_tcp(
    listener: &'static TcpListenerKind,
    addr: &str,
    allow_remote: bool,
) -> Result<(std::net::SocketAddr, TcpListener), ServerError> {
    let parsed: std::net::SocketAddr = addr.parse().map_err(|source| ServerError::TcpAddr {
        listener,
        addr: addr.to_string(),
        source,
    })?;
    if !parsed.ip().is_loopback() && !allow_remote {
        return Err(ServerError::NotLoopback {
            listener,
            addr: parsed,
        });
    }
    let tcp = TcpListener::bind(parsed)
        .await
        .map_err(|source| ServerError::Listen {
            at: parsed.to_string(),
            source,
        })?;
    Ok((parsed, tcp))
}

/// Runs the sidecar until `shutdown` resolves, then delivers what it can
/// within the shutdown timeout and returns.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
    let server = &config.server;
    let gid = if server.socket_group.is_empty() {
        None
    } else {
        Some(group_id(&server.socket_group)?)
    };
    let dir_mode = if gid.is_some() { 0o770 } else { 0o750 };
    let socket_dir = server.socket_dir().to_path_buf();
    let spool_dir = server.spool_dir();
    make_dir(&socket_dir, dir_mode)?;
    make_dir(&spool_dir, 0o770)?;
    make_dir(&server.data_dir, 0o750)?;
    if let Some(gid) = gid {
        chown_group(&socket_dir, gid)?;
        chown_group(&spool_dir, gid)?;
        // setgid: spool files PHP writes (with its own primary group) get the
        // socket group, so the sidecar can read and remove them.
        set_mode(&spool_dir, 0o2770)?;
    }

    // One sidecar per data directory: locked before the journal is touched.
    let owner = format!("socket={}", server.socket.display());
    let _data_lock = DirLock::acquire(&server.data_dir.join("lock"), &owner, failpoint::LOCK)
        .map_err(ServerError::Lock)?;

    // The journal, with its readers' cursors (a fresh journal starts after the furthest one).
    let journal_dir = server.data_dir.join("journal");
    let (journal, recovery) = Journal::open(
        &journal_dir,
        &server.data_dir.join("cursors"),
        config.journal.clone(),
    )
    .map_err(|source| ServerError::Journal {
        path: journal_dir.clone(),
        source,
    })?;
    if recovery.torn_bytes > 0 {
        warn!(
            bytes = recovery.torn_bytes,
            "cut an interrupted write from the end of the journal"
        );
    }
    let metrics = Arc::new(Metrics::default());
    let ingest = Arc::new(Ingest::new(
        journal.clone(),
        metrics.clone(),
        config.journal.max_bytes,
    ));
    let remembered = ingest
        .remember_journal()
        .map_err(|source| ServerError::Journal {
            path: journal_dir.clone(),
            source,
        })?;
    info!(
        head = recovery.head,
        undelivered_bytes = recovery.head - recovery.oldest,
        segments = recovery.segments,
        events = remembered,
        "journal open"
    );

    let routing = Routing::with_priority(
        Arc::new(Rules::new(config.throttle.clone())),
        config.priority.clone(),
    );
    let reader = |cursor: &str, name: &str, kind: &'static str| {
        journal
            .reader(cursor, metrics.sink(name, kind))
            .map_err(|source| ServerError::Cursor {
                reader: name.to_string(),
                source,
            })
    };

    // The throttle stage: one window per channel for the whole host.
    let (throttle_stop_tx, throttle_stop_rx) = watch::channel(Stop::No);
    let mut throttle = JoinSet::new();
    {
        let stage = ThrottleStage::new(
            reader("throttle", "throttle", THROTTLE_KIND)?,
            routing.clone(),
            random_origin(),
        );
        throttle.spawn(stage.run(throttle_stop_rx));
    }

    // Sinks: one per destination and lane (see `destination_lanes`).
    let rules_path = server.data_dir.join(PRIORITY_RULES_FILE);
    let rules_changed = priority_rules_changed(&rules_path, &config.priority)?;
    let (stop_tx, stop_rx) = watch::channel(Stop::No);
    let mut sinks = JoinSet::new();
    let mut destinations = Vec::new();
    if let Some(redis) = &config.redis {
        for lane in destination_lanes(
            &journal,
            &metrics,
            &routing,
            rules_changed,
            "redis",
            "redis",
            "redis",
        )? {
            if lane.reader.position() < journal.head() {
                info!(
                    sink = %lane.name,
                    events_bytes = journal.head() - lane.reader.position(),
                    "redis sink resumes with undelivered journal data"
                );
            }
            destinations.push(json!({"name": lane.name, "kind": "redis", "lane": lane.lane, "target": redis.describe(), "prefix": redis.prefix}));
            let sink = RedisSink::new(redis.clone(), lane.reader, lane.routing)
                .map_err(ServerError::Sink)?;
            sinks.spawn(sink.run(stop_rx.clone()));
        }
    }
    for target in &config.pusher {
        let cursor = format!("pusher-{}", target.name);
        for lane in destination_lanes(
            &journal,
            &metrics,
            &routing,
            rules_changed,
            &cursor,
            &target.name,
            "pusher",
        )? {
            destinations.push(json!({"name": lane.name, "kind": "pusher", "lane": lane.lane, "target": target.base_url(), "app_id": target.app_id, "max_batch_events": target.max_batch_events}));
            // Each lane its own HTTP client (connections) and retrier.
            let sink = PusherSink::new(target.clone(), lane.reader, lane.routing)
                .map_err(ServerError::Sink)?;
            sinks.spawn(sink.run(stop_rx.clone()));
        }
    }

    // Every lane's cursor now belongs to these rules.
    record_priority_rules(&rules_path, &config.priority)?;

    // Listeners.
    let listener = bind_unix(&server.socket, 0o660)?;
    if let Some(gid) = gid {
        chown_group(&server.socket, gid)?;
    }
    let status_path = server.status_socket();
    let status_listener = bind_unix(&status_path, 0o660)?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let spool_now = Arc::new(tokio::sync::Notify::new());
    let status_ctx = Arc::new(StatusContext {
        metrics: metrics.clone(),
        spool_now: spool_now.clone(),
        journal: journal.clone(),
        started: Instant::now(),
        socket: server.socket.display().to_string(),
        spool_dir: spool_dir.display().to_string(),
        destinations,
    });
    let mut background = JoinSet::new();
    background.spawn(status::serve(
        status_listener,
        status_ctx.clone(),
        shutdown_rx.clone(),
    ));
    if !server.status_addr.is_empty() {
        let (_, tcp) = bind_tcp(
            &STATUS_LISTENER,
            &server.status_addr,
            server.status_allow_remote,
        )
        .await?;
        background.spawn(status::serve(tcp, status_ctx.clone(), shutdown_rx.clone()));
    }

    // The SSE listener for browsers (opt-in): tails the journal from here.
    if let Some(sse_cfg) = &config.sse {
        let (addr, tcp) = bind_tcp(&SSE_LISTENER, &sse_cfg.addr, sse_cfg.allow_remote).await?;
        let start = journal.head();
        let last = rebuild_last_values(&journal, &routing, sse_cfg, start).await;
        let hub = sse::Hub::new(sse_cfg, start, metrics.clone(), last);
        let stage = sse::SseStage::new(journal.clone(), routing.clone(), hub.clone());
        background.spawn(stage.run(shutdown_rx.clone()));
        let app = sse::server::SseApp::new(
            sse_cfg.clone(),
            hub,
            journal.clone(),
            routing.clone(),
            metrics.clone(),
            shutdown_rx.clone(),
        );
        info!(addr = %addr, "SSE listener ready");
        background.spawn(sse::server::serve(tcp, app, shutdown_rx.clone()));
    }

    // Orphaned spool files, loss records, dedup pruning and journal
    // retention, periodically (blocking work, off the runtime threads).
    background.spawn(housekeeping(
        SpoolDrainer::new(&spool_dir, ingest.clone(), &owner),
        ingest.clone(),
        Duration::from_millis(server.spool_scan_ms.max(50)),
        spool_now,
        shutdown_rx.clone(),
    ));

    info!(socket = %server.socket.display(), spool = %spool_dir.display(), status = %status_path.display(), "scada-sidecar ready");

    // Accept until shutdown.
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => {
                    connections.spawn(ingest::connection::serve(stream, ingest.clone(), shutdown_rx.clone()));
                }
                Err(e) => {
                    error!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }

    // Shutdown: stop taking events, deliver what is journaled, keep the rest on disk.
    info!("shutting down: no new connections; delivering what is journaled");
    drop(listener);
    let _ = std::fs::remove_file(&server.socket);
    let _ = shutdown_tx.send(true);
    while connections.join_next().await.is_some() {}
    // One budget for everything: shutdown_timeout is what SIGTERM costs at most.
    // Stages stop themselves a little before it; whatever is still running at
    // the hard deadline is aborted.
    let hard_deadline = Instant::now() + server.shutdown_timeout();
    let deadline = hard_deadline
        .checked_sub(Duration::from_millis(200))
        .unwrap_or(hard_deadline);
    // Open windows go out first, so the sinks deliver them too.
    let _ = throttle_stop_tx.send(Stop::Drain { deadline });
    if tokio::time::timeout_at(deadline.into(), join_all(&mut throttle))
        .await
        .is_err()
    {
        warn!("the throttle stage did not stop in time; its open windows are recovered from the journal on the next start");
        throttle.abort_all();
        join_all(&mut throttle).await;
    }
    let _ = stop_tx.send(Stop::Drain { deadline });
    // A sink stuck in a connection attempt is aborted: what it had not
    // delivered stays journaled, and its replay is counted on the next start.
    if tokio::time::timeout_at(hard_deadline.into(), join_all(&mut sinks))
        .await
        .is_err()
    {
        warn!("sinks did not stop in time; undelivered events stay journaled for the next start");
        sinks.abort_all();
        join_all(&mut sinks).await;
    }
    join_all(&mut background).await;
    {
        let journal = journal.clone();
        let _ = tokio::task::spawn_blocking(move || journal.release_delivered()).await;
    }
    let _ = std::fs::remove_file(&status_path);
    let head = journal.head();
    // Destinations only: the throttle stage's cursor stays before its own
    // outputs (they are after what it read), and a stage that did not finish
    // said so above.
    let behind: Vec<String> = metrics
        .sinks()
        .iter()
        .filter(|s| s.is_destination() && s.cursor.get() < head)
        .map(|s| format!("{} ({} bytes)", s.name, head - s.cursor.get()))
        .collect();
    let spooled = std::fs::read_dir(&spool_dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| {
                    e.path()
                        .extension()
                        .is_some_and(|x| x == scada_core::spool::EXTENSION)
                })
                .count()
        })
        .unwrap_or(0);
    if behind.is_empty() && spooled == 0 {
        info!("stopped; everything journaled was delivered");
    } else if behind.is_empty() {
        info!(spool_files = spooled, "stopped; everything journaled was delivered; spool files wait for their process or the next start");
    } else {
        warn!(sinks = %behind.join(", "), spool_files = spooled, "stopped; undelivered events stay journaled for the next start");
    }
    Ok(())
}

/// One lane of a destination: its reader (cursor), its routing, its name in the status.
struct DestinationLane {
    reader: crate::journal::JournalReader,
    routing: Routing,
    name: String,
    lane: &'static str,
}

/// A destination's lanes. Without a priority rule: one, on today's cursor.
/// With one: a telemetry lane on today's cursor (an upgrade resumes where it
/// was) and a priority lane on `<cursor>.priority`, which starts at the
/// telemetry cursor when new, so a slow or failing telemetry request never
/// delays an alarm. A priority cursor left by a removed rule is folded back
/// into the telemetry cursor (nothing undelivered is lost; it no longer pins
/// the journal); so is one written under other rules (`rules_changed`), and
/// the priority lane starts again from the telemetry cursor.
fn destination_lanes(
    journal: &Arc<Journal>,
    metrics: &Arc<Metrics>,
    routing: &Routing,
    rules_changed: bool,
    cursor: &str,
    name: &str,
    kind: &'static str,
) -> Result<Vec<DestinationLane>, ServerError> {
    let priority_cursor = format!("{cursor}.{}", Lane::Priority.as_str());
    let cursor_err = |reader: &str| {
        let reader = reader.to_string();
        move |source| ServerError::Cursor { reader, source }
    };
    if !routing.has_priority() {
        let rewound = journal
            .fold_cursor(&priority_cursor, cursor)
            .map_err(cursor_err(&priority_cursor))?;
        if rewound > 0 {
            warn!(sink = %name, bytes = rewound, "no priority rule any more: this destination's single lane resumes where its priority lane was, so no alarm is lost (events in between may be sent again, counted as replayed_after_restart)");
        }
        let reader = journal
            .reader(cursor, metrics.sink(name, kind))
            .map_err(cursor_err(name))?;
        return Ok(vec![DestinationLane {
            reader,
            routing: routing.clone(),
            name: name.to_string(),
            lane: "all",
        }]);
    }
    if rules_changed {
        // Channels may have changed lanes: a lane's cursor says nothing about
        // the events the other lane held back. Both resume where the earlier
        // one was (repeats are counted as replays; nothing is skipped).
        let rewound = journal
            .fold_cursor(&priority_cursor, cursor)
            .map_err(cursor_err(&priority_cursor))?;
        if rewound > 0 {
            warn!(sink = %name, bytes = rewound, "the priority rule changed: both lanes of this destination resume where the earlier one was, so no event is skipped (events in between may be sent again, counted as replayed_after_restart)");
        }
    }
    let priority_name = format!("{name}:{}", Lane::Priority.as_str());
    let priority = journal
        .reader_seeded(&priority_cursor, cursor, metrics.sink(&priority_name, kind))
        .map_err(cursor_err(&priority_name))?;
    let telemetry = journal
        .reader(cursor, metrics.sink(name, kind))
        .map_err(cursor_err(name))?;
    Ok(vec![
        DestinationLane {
            reader: priority,
            routing: routing.for_lane(Lane::Priority),
            name: priority_name,
            lane: Lane::Priority.as_str(),
        },
        DestinationLane {
            reader: telemetry,
            routing: routing.for_lane(Lane::Telemetry),
            name: name.to_string(),
            lane: Lane::Telemetry.as_str(),
        },
    ])
}

/// The priority rules the lanes' cursors were written under, one pattern a line, in the data directory.
const PRIORITY_RULES_FILE: &str = "priority-rules";

/// True when the priority rules differ from those of the last run (a
/// missing record counts as different when there are rules).
fn priority_rules_changed(path: &Path, rules: &[String]) -> Result<bool, ServerError> {
    match std::fs::read_to_string(path) {
        Ok(stored) => Ok(stored != rules_text(rules)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(!rules.is_empty()),
        Err(e) => Err(dir_err("read", path)(e)),
    }
}

/// Records the rules (written whole, then renamed into place, so a crash
/// leaves the old record or the new one).
fn record_priority_rules(path: &Path, rules: &[String]) -> Result<(), ServerError> {
    if rules.is_empty() {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(dir_err("remove", path)(e)),
            _ => Ok(()),
        };
    }
    let tmp = path.with_extension("tmp");
    let write = || -> io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        io::Write::write_all(&mut f, rules_text(rules).as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(dir_err("write", path))
}

fn rules_text(rules: &[String]) -> String {
    rules.iter().map(|r| format!("{r}\n")).collect()
}

async fn join_all<T: 'static>(set: &mut JoinSet<T>) {
    while set.join_next().await.is_some() {}
}

/// The periodic blocking work: a spool pass (orphaned files, loss records),
/// dedup pruning, and deleting segments every reader has passed. Runs until
/// shutdown; a pass in progress finishes first.
async fn housekeeping(
    drainer: SpoolDrainer,
    ingest: Arc<Ingest>,
    every: Duration,
    now: Arc<tokio::sync::Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    const PRUNE_EVERY: Duration = Duration::from_secs(5);
    let mut drainer = Some(drainer);
    let mut last_prune: Option<Instant> = None;
    loop {
        let Some(mut d) = drainer.take() else { return };
        let ingest2 = ingest.clone();
        let prune = last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY);
        let joined = tokio::task::spawn_blocking(move || {
            let pass = d.pass();
            if prune {
                ingest2.prune(&pass.spooled_origins);
            }
            ingest2.journal.release_delivered();
            d
        })
        .await;
        match joined {
            Ok(d) => drainer = Some(d),
            Err(e) => {
                error!(error = %e, "the spool drain failed; orphaned spool files wait for the next start");
                return;
            }
        }
        if prune {
            last_prune = Some(Instant::now());
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = now.notified() => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// A random id for the events the sidecar itself produces (throttle output).
fn random_origin() -> u64 {
    let mut bytes = [0u8; 8];
    // SAFETY: writes at most 8 bytes into `bytes`.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n == 8 {
        u64::from_le_bytes(bytes)
    } else {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    }
}

/// The SSE last values as the newest journal data has them (bounded by
/// `sse.last_value_rebuild_bytes`), so clients connecting after a restart
/// see the current state at once. A read error costs only the last values.
async fn rebuild_last_values(
    journal: &Arc<Journal>,
    routing: &Routing,
    cfg: &crate::config::SseConfig,
    to: u64,
) -> sse::last_value::LastValues {
    let (journal, routing) = (journal.clone(), routing.clone());
    let (channels, names, budget) = (
        cfg.last_value_channels,
        cfg.last_value_events_per_channel,
        cfg.last_value_rebuild_bytes,
    );
    let started = std::time::Instant::now();
    let result = tokio::task::spawn_blocking(move || {
        let mut last = sse::last_value::LastValues::new(channels, names);
        let done = sse::last_value::rebuild(&journal, &routing, budget, to, &mut last);
        (last, done)
    })
    .await;
    match result {
        Ok((last, Ok(done))) => {
            info!(
                from = done.from,
                to = done.to,
                events = done.events,
                channels = last.channel_count(),
                last_values = last.event_count(),
                ms = started.elapsed().as_millis() as u64,
                "SSE last values rebuilt from the journal"
            );
            last
        }
        Ok((last, Err(e))) => {
            warn!(error = %e, "SSE: cannot rebuild the last values from the journal; new clients see only what arrives from now on");
            last
        }
        Err(e) => {
            warn!(error = %e, "SSE: the last-value rebuild failed");
            sse::last_value::LastValues::new(channels, names)
        }
    }
}
