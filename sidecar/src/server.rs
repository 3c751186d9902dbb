//! Wiring: sockets, journal, ingest, sinks, spool drain, status, shutdown.
//!
//! `run(config, shutdown)` is the whole daemon; `main.rs` only parses
//! arguments and sets up logging, and tests call `run` directly.

use std::future::Future;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::ingest::{self, Ingest};
use crate::journal::Journal;
use crate::metrics::Metrics;
use crate::sinks::pusher::PusherSink;
use crate::sinks::reader::{JournalReader, Stop};
use crate::sinks::redis::RedisSink;
use crate::status::{self, StatusContext};
use crate::throttle::rules::Rules;
use crate::throttle::ThrottleStage;

#[derive(Debug)]
pub struct ServerError(pub String);

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ServerError {}

fn err(what: impl std::fmt::Display, e: impl std::fmt::Display) -> ServerError {
    ServerError(format!("{what}: {e}"))
}

fn make_dir(path: &Path, mode: u32) -> Result<(), ServerError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(|e| err(format!("cannot create directory {}", path.display()), e))?;
    set_mode(path, mode)
}

fn set_mode(path: &Path, mode: u32) -> Result<(), ServerError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| err(format!("cannot set permissions of {}", path.display()), e))
}

/// Resolves a group name or number to a gid.
fn group_id(group: &str) -> Result<libc::gid_t, ServerError> {
    if let Ok(gid) = group.parse::<libc::gid_t>() {
        return Ok(gid);
    }
    let name = std::ffi::CString::new(group).map_err(|e| err("invalid socket_group", e))?;
    // SAFETY: getgrnam reads a NUL-terminated name; the result is checked for null
    // and only its gid field is read before any other call.
    let gr = unsafe { libc::getgrnam(name.as_ptr()) };
    if gr.is_null() {
        return Err(ServerError(format!(
            "socket_group {group:?} does not exist"
        )));
    }
    // SAFETY: checked non-null above.
    Ok(unsafe { (*gr).gr_gid })
}

fn chown_group(path: &Path, gid: libc::gid_t) -> Result<(), ServerError> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|e| err("path", e))?;
    // SAFETY: valid C string; -1 keeps the owner.
    if unsafe { libc::chown(c.as_ptr(), u32::MAX, gid) } != 0 {
        return Err(err(
            format!("cannot chown {}", path.display()),
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Binds a Unix socket, removing a stale file left by a crash but never one
/// that a running sidecar still listens on.
pub fn bind_unix(path: &Path, mode: u32) -> Result<UnixListener, ServerError> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ServerError(format!(
                "another process is already listening on {}; is a sidecar running?",
                path.display()
            )));
        }
        std::fs::remove_file(path)
            .map_err(|e| err(format!("cannot remove stale socket {}", path.display()), e))?;
    }
    let listener = UnixListener::bind(path)
        .map_err(|e| err(format!("cannot listen on {}", path.display()), e))?;
    set_mode(path, mode)?;
    Ok(listener)
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

    // Journal, then the sinks' cursors (a fresh journal starts after the furthest cursor).
    let cursor_dir = server.data_dir.join("cursors");
    make_dir(&cursor_dir, 0o750)?;
    let min_head = std::fs::read_dir(&cursor_dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| crate::journal::cursor::CursorFile::open(&e.path()).ok())
                .filter_map(|(_, v)| v)
                .map(|p| p.attempted.max(p.offset))
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0);
    let (journal, recovery) = Journal::open(
        &server.data_dir.join("journal"),
        config.journal.clone(),
        min_head,
    )
    .map_err(|e| err("cannot open the journal", e))?;
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
        .map_err(|e| err("cannot scan the journal", e))?;
    info!(
        head = recovery.head,
        undelivered_bytes = recovery.head - recovery.oldest,
        segments = recovery.segments,
        events = remembered,
        "journal open"
    );

    // The throttle stage: one window per channel for the whole host.
    let rules = Arc::new(Rules::new(config.throttle.clone()));
    let (throttle_stop_tx, throttle_stop_rx) = watch::channel(Stop::No);
    let throttle_task = {
        let m = metrics.sink("throttle", "throttle");
        let reader = JournalReader::open(journal.clone(), &cursor_dir.join("throttle.cursor"), m)
            .map_err(|e| err("cannot open the throttle cursor", e))?;
        let stage = ThrottleStage::new(reader, journal.clone(), rules.clone(), random_origin());
        tokio::spawn(stage.run(throttle_stop_rx))
    };

    // Sinks.
    let (stop_tx, stop_rx) = watch::channel(Stop::No);
    let mut sinks = JoinSet::new();
    let mut destinations = Vec::new();
    if let Some(redis) = &config.redis {
        let m = metrics.sink("redis", "redis");
        let reader = JournalReader::open(journal.clone(), &cursor_dir.join("redis.cursor"), m)
            .map_err(|e| err("cannot open the redis cursor", e))?;
        if reader.position() < journal.head() {
            info!(
                events_bytes = journal.head() - reader.position(),
                "redis sink resumes with undelivered journal data"
            );
        }
        let sink = RedisSink::new(redis.clone(), reader, rules.clone()).map_err(ServerError)?;
        destinations.push(json!({"name": "redis", "kind": "redis", "target": redis.describe(), "prefix": redis.prefix}));
        sinks.spawn(sink.run(stop_rx.clone()));
    }
    for target in &config.pusher {
        let m = metrics.sink(&target.name, "pusher");
        let reader = JournalReader::open(
            journal.clone(),
            &cursor_dir.join(format!("pusher-{}.cursor", target.name)),
            m,
        )
        .map_err(|e| {
            err(
                format!("cannot open the cursor of pusher target {}", target.name),
                e,
            )
        })?;
        let sink = PusherSink::new(target.clone(), reader, rules.clone()).map_err(ServerError)?;
        destinations.push(json!({"name": target.name, "kind": "pusher", "target": target.base_url(), "app_id": target.app_id, "max_batch_events": target.max_batch_events}));
        sinks.spawn(sink.run(stop_rx.clone()));
    }

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
        let addr: std::net::SocketAddr = server
            .status_addr
            .parse()
            .map_err(|e| err(format!("SCADA_STATUS_ADDR {:?}", server.status_addr), e))?;
        if !addr.ip().is_loopback() && !server.status_allow_remote {
            return Err(ServerError(format!(
                "status address {addr} is not loopback; set server.status_allow_remote = true to expose it"
            )));
        }
        let tcp = TcpListener::bind(addr)
            .await
            .map_err(|e| err(format!("cannot listen on {addr}"), e))?;
        background.spawn(status::serve(tcp, status_ctx.clone(), shutdown_rx.clone()));
    }

    // Orphaned spool files, dedup pruning and journal clean-up, periodically.
    {
        let ingest = ingest.clone();
        let metrics = metrics.clone();
        let journal = journal.clone();
        let spool_dir = spool_dir.clone();
        let every = Duration::from_millis(server.spool_scan_ms.max(50));
        let mut shutdown = shutdown_rx.clone();
        background.spawn(async move {
            let mut last_prune = Instant::now();
            loop {
                let (ingest2, dir) = (ingest.clone(), spool_dir.clone());
                let _ =
                    tokio::task::spawn_blocking(move || ingest::spool::drain_dir(&dir, &ingest2))
                        .await;
                if last_prune.elapsed() > Duration::from_secs(60) {
                    ingest.prune();
                    last_prune = Instant::now();
                }
                release_delivered(&journal, &metrics);
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = spool_now.notified() => {}
                    _ = shutdown.changed() => return,
                }
            }
        });
    }

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
    if tokio::time::timeout_at(deadline.into(), throttle_task)
        .await
        .is_err()
    {
        warn!("the throttle stage did not stop in time; its open windows are recovered from the journal on the next start");
    }
    let _ = stop_tx.send(Stop::Drain { deadline });
    // A sink stuck in a connection attempt is aborted: what it had not
    // delivered stays journaled, and its replay is counted on the next start.
    if tokio::time::timeout_at(hard_deadline.into(), async {
        while sinks.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        warn!("sinks did not stop in time; undelivered events stay journaled for the next start");
        sinks.abort_all();
    }
    release_delivered(&journal, &metrics);
    background.abort_all();
    let _ = std::fs::remove_file(&status_path);
    let head = journal.head();
    let behind: Vec<String> = metrics
        .sinks()
        .iter()
        .filter(|s| s.cursor.get() < head)
        .map(|s| format!("{} ({} bytes)", s.name, head - s.cursor.get()))
        .collect();
    if behind.is_empty() {
        info!("stopped; everything journaled was delivered");
    } else {
        warn!(sinks = %behind.join(", "), "stopped; undelivered events stay journaled for the next start");
    }
    Ok(())
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

/// Deletes journal segments every sink has delivered.
fn release_delivered(journal: &Journal, metrics: &Metrics) {
    let min = metrics.sinks().iter().map(|s| s.cursor.get()).min();
    if let Some(min) = min {
        if let Err(e) = journal.release_before(min) {
            warn!(error = %e, "cannot delete delivered journal segments");
        }
    }
}
