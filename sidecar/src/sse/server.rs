//! The HTTP side: axum routes on hyper's HTTP/1 connections, one task per
//! connection so a client that stops reading can be cut off alone.
//!
//! * `GET /sse?channels=a,b[&token=…][&last_event_id=…]`: the stream.
//! * `OPTIONS /sse`: CORS preflight.
//! * `GET /dashboard/`: the dashboard page ([`super::dashboard`]).
//! * Anything else: 404.
//!
//! Refusals are short text: 400 (channels, Last-Event-ID), 401 (a protected
//! channel without a token), 403 (a bad token, no secret, an origin not
//! allowed), 429 (connection limits).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Request, StatusCode};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use scada_core::sse_token::{self, TokenError};
use serde::Deserialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::stream::{ClientStream, Request as StreamRequest, Start};
use super::{gap, Hub, Item};
use crate::config::SseConfig;
use crate::journal::Journal;
use crate::metrics::Metrics;
use crate::routing::Routing;
use crate::util::lock;

/// Connections beyond the stream limit still get their 429 answer.
const SPARE_CONNECTIONS: usize = 64;
/// How long a stream may take to end once shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

pub struct SseApp {
    pub cfg: SseConfig,
    pub hub: Arc<Hub>,
    pub journal: Arc<Journal>,
    pub routing: Routing,
    pub metrics: Arc<Metrics>,
    pub shutdown: watch::Receiver<bool>,
    /// Listening on loopback: only addresses, `localhost` and allowed hosts are answered.
    loopback: bool,
    streams: AtomicUsize,
    per_client: Mutex<HashMap<IpAddr, usize>>,
}

impl SseApp {
    pub fn new(
        cfg: SseConfig,
        hub: Arc<Hub>,
        journal: Arc<Journal>,
        routing: Routing,
        metrics: Arc<Metrics>,
        shutdown: watch::Receiver<bool>,
    ) -> Arc<Self> {
        // Not parseable: the listener refused to start already.
        let loopback = cfg
            .addr
            .parse::<SocketAddr>()
            .is_ok_and(|a| a.ip().is_loopback());
        Arc::new(Self {
            loopback,
            cfg,
            hub,
            journal,
            routing,
            metrics,
            shutdown,
            streams: AtomicUsize::new(0),
            per_client: Mutex::new(HashMap::new()),
        })
    }
}

/// What a request knows about its connection.
#[derive(Clone)]
struct Conn {
    peer: SocketAddr,
    kill: Arc<Notify>,
}

#[derive(Deserialize)]
struct Params {
    channels: Option<String>,
    token: Option<String>,
    last_event_id: Option<String>,
    /// `1`: each event's data names its channels (see `Item::to_event`).
    envelope: Option<String>,
}

/// A stream's place in the connection limits, released when it ends.
struct LimitGuard {
    app: Arc<SseApp>,
    ip: IpAddr,
}

impl Drop for LimitGuard {
    fn drop(&mut self) {
        self.app.streams.fetch_sub(1, Ordering::AcqRel);
        let mut per = lock(&self.app.per_client);
        if let Some(n) = per.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per.remove(&self.ip);
            }
        }
    }
}

fn refuse(status: StatusCode, reason: impl Into<String>) -> Response {
    (status, reason.into()).into_response()
}

/// Refuses a Host header that would let a DNS-rebinding page in (see [`super::host`]).
async fn check_host(
    State(app): State<Arc<SseApp>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .map(|h| h.to_str().unwrap_or("(not text)"));
    if let Err(host) = super::host::check(&app.cfg.allowed_hosts, app.loopback, host) {
        app.metrics.sse.bad_requests.inc();
        return refuse(
            StatusCode::FORBIDDEN,
            format!("Host {host:?} is not answered by this listener (DNS rebinding protection); add the name to SCADA_SSE_ALLOWED_HOSTS (sse.allowed_hosts)"),
        );
    }
    next.run(request).await
}

pub fn router(app: Arc<SseApp>) -> Router {
    Router::new()
        .route("/sse", get(open_stream).options(preflight))
        .fallback(|| async {
            refuse(
                StatusCode::NOT_FOUND,
                "not found: the stream is GET /sse?channels=a,b",
            )
        })
        .with_state(app.clone())
        .merge(
            Router::new()
                .route("/dashboard", get(super::dashboard::redirect))
                .route("/dashboard/", get(super::dashboard::index))
                .route("/dashboard/{*path}", get(super::dashboard::asset))
                .with_state(super::dashboard::Page::new(&app.cfg.dashboard_connect)),
        )
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            check_host,
        ))
}

/// The `Access-Control-Allow-Origin` value for this request's origin;
/// `Err` when it comes from an origin that is not allowed.
fn cors(cfg: &SseConfig, headers: &HeaderMap) -> Result<Option<HeaderValue>, ()> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(None);
    };
    let origin_str = origin.to_str().map_err(|_| ())?;
    if cfg.cors_origins.iter().any(|o| o == "*") {
        return Ok(Some(HeaderValue::from_static("*")));
    }
    if cfg.cors_origins.iter().any(|o| o == origin_str) {
        return Ok(Some(origin.clone()));
    }
    // Same origin: the page was served by whoever answers on this host.
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let same = host.is_some_and(|h| {
        origin_str
            .strip_prefix("http://")
            .or_else(|| origin_str.strip_prefix("https://"))
            == Some(h)
    });
    if same {
        Ok(None)
    } else {
        Err(())
    }
}

fn with_cors(mut response: Response, allow: Option<HeaderValue>) -> Response {
    if let Some(v) = allow {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

async fn preflight(State(app): State<Arc<SseApp>>, headers: HeaderMap) -> Response {
    match cors(&app.cfg, &headers) {
        Ok(allow) => {
            let mut r = with_cors(StatusCode::NO_CONTENT.into_response(), allow);
            let h = r.headers_mut();
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET"),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("authorization, last-event-id"),
            );
            r
        }
        Err(()) => {
            app.metrics.sse.auth_refusals.inc();
            refuse(StatusCode::FORBIDDEN, "origin not allowed")
        }
    }
}

/// The channels of `?channels=`, validated.
fn parse_channels(cfg: &SseConfig, raw: Option<&str>) -> Result<Vec<String>, String> {
    let raw = raw.unwrap_or("").trim();
    if raw.is_empty() {
        return Err("channels is required: /sse?channels=a,b".into());
    }
    let mut out: Vec<String> = Vec::new();
    for name in raw.split(',') {
        scada_core::validate::channel_name(name.as_bytes())
            .map_err(|e| format!("channel {name:?} {e}"))?;
        if !out.iter().any(|c| c == name) {
            out.push(name.to_string());
        }
        if out.len() > cfg.max_channels {
            return Err(format!(
                "too many channels: at most {} per stream",
                cfg.max_channels
            ));
        }
    }
    Ok(out)
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    v.strip_prefix("Bearer ").map(|t| t.trim().to_string())
}

/// 401/403 (status and reason) unless the token covers the protected
/// channels; the token's expiry when one was needed.
fn authorize(
    cfg: &SseConfig,
    channels: &[String],
    token: Option<String>,
) -> Result<Option<u64>, (StatusCode, String)> {
    let names: Vec<&str> = channels.iter().map(String::as_str).collect();
    if !names.iter().any(|c| sse_token::is_protected(c)) {
        return Ok(None);
    }
    if cfg.secret.is_empty() {
        return Err((StatusCode::FORBIDDEN, TokenError::NoSecret.to_string()));
    }
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Err((
            StatusCode::UNAUTHORIZED,
            "a token is required for private- and presence- channels (?token= or Authorization: Bearer)".into(),
        ));
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    sse_token::verify(cfg.secret.expose(), &token, &names, now)
        .map(Some)
        .map_err(|e| (StatusCode::FORBIDDEN, e.to_string()))
}

/// Takes a place in the limits, or the 429 reason.
fn admit(app: &Arc<SseApp>, ip: IpAddr) -> Result<LimitGuard, String> {
    let mut per = lock(&app.per_client);
    let mine = per.get(&ip).copied().unwrap_or(0);
    if mine >= app.cfg.max_connections_per_client {
        return Err(format!(
            "too many SSE connections from this address (limit {})",
            app.cfg.max_connections_per_client
        ));
    }
    if app.streams.load(Ordering::Acquire) >= app.cfg.max_connections {
        return Err(format!(
            "too many SSE connections (limit {})",
            app.cfg.max_connections
        ));
    }
    app.streams.fetch_add(1, Ordering::AcqRel);
    *per.entry(ip).or_default() += 1;
    Ok(LimitGuard {
        app: app.clone(),
        ip,
    })
}

async fn open_stream(
    State(app): State<Arc<SseApp>>,
    Extension(conn): Extension<Conn>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    let m = &app.metrics.sse;
    let allow = match cors(&app.cfg, &headers) {
        Ok(allow) => allow,
        Err(()) => {
            m.auth_refusals.inc();
            return refuse(StatusCode::FORBIDDEN, "origin not allowed");
        }
    };
    let channels = match parse_channels(&app.cfg, params.channels.as_deref()) {
        Ok(c) => c,
        Err(reason) => {
            m.bad_requests.inc();
            return with_cors(refuse(StatusCode::BAD_REQUEST, reason), allow);
        }
    };
    let envelope = match params.envelope.as_deref() {
        None | Some("0") => false,
        Some("1") => true,
        Some(v) => {
            m.bad_requests.inc();
            return with_cors(
                refuse(StatusCode::BAD_REQUEST, format!("envelope {v:?}: 0 or 1")),
                allow,
            );
        }
    };
    let token = params.token.or_else(|| bearer(&headers));
    let expires = match authorize(&app.cfg, &channels, token) {
        Ok(expires) => expires,
        Err((status, reason)) => {
            m.auth_refusals.inc();
            return with_cors(refuse(status, reason), allow);
        }
    };
    let last_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or(params.last_event_id)
        .filter(|v| !v.trim().is_empty());
    let last_id = match last_id.map(|v| v.trim().parse::<u64>().map_err(|_| v)) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(v)) => {
            m.bad_requests.inc();
            return with_cors(
                refuse(
                    StatusCode::BAD_REQUEST,
                    format!("Last-Event-ID {v:?} is not an id of this stream (a decimal number)"),
                ),
                allow,
            );
        }
    };
    let guard = match admit(&app, conn.peer.ip()) {
        Ok(g) => g,
        Err(reason) => {
            m.limit_refusals.inc();
            return with_cors(refuse(StatusCode::TOO_MANY_REQUESTS, reason), allow);
        }
    };
    let Some(reg) = app.hub.register(&channels, conn.kill.clone()) else {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    };
    let (start, first) = match last_id {
        None => (Start::Latest, Vec::new()),
        Some(id) => resume_point(&app, id, reg.live_from).await,
    };
    if !first.is_empty() {
        m.gaps.add(first.len() as u64);
    }
    let stream = ClientStream::new(
        reg,
        start,
        first,
        StreamRequest {
            channels,
            envelope,
            expires,
        },
        app.journal.clone(),
        app.routing.clone(),
        app.metrics.clone(),
        app.shutdown.clone(),
        Box::new(guard),
    );
    let sse = Sse::new(stream.into_stream()).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_millis(app.cfg.heartbeat_ms))
            .text("heartbeat"),
    );
    let mut response = sse.into_response();
    // Proxies (nginx) must not buffer the stream.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    with_cors(response, allow)
}

/// Where a client with `Last-Event-ID: id` resumes, and the gap it is told of first.
async fn resume_point(app: &SseApp, id: u64, live_from: u64) -> (Start, Vec<Item>) {
    let oldest = app.journal.oldest();
    if id >= live_from {
        // Not an id this journal gave out (a wiped data directory, a forged id).
        return (
            Start::From { from: live_from },
            vec![gap(id, live_from, "unknown event id")],
        );
    }
    if id < oldest {
        return (
            Start::From { from: oldest },
            vec![gap(id, oldest, "the journal no longer holds these events")],
        );
    }
    let journal = app.journal.clone();
    let len = tokio::task::spawn_blocking(move || journal.frame_len_at(id))
        .await
        .ok()
        .and_then(Result::ok)
        .flatten();
    match len {
        Some(len) => (
            Start::After {
                next: id + len as u64,
            },
            Vec::new(),
        ),
        None => (
            Start::From { from: live_from },
            vec![gap(id, live_from, "unknown event id")],
        ),
    }
}

/// Accepts connections until shutdown, then ends every stream and waits
/// (briefly) for the connections to close.
pub async fn serve(listener: TcpListener, app: Arc<SseApp>, mut shutdown: watch::Receiver<bool>) {
    let router = router(app.clone());
    let open = Arc::new(AtomicUsize::new(0));
    let mut connections = JoinSet::new();
    let limit = app.cfg.max_connections + SPARE_CONNECTIONS;
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    if open.load(Ordering::Acquire) >= limit {
                        debug!(%peer, "SSE: connection refused, too many open");
                        drop(stream);
                        continue;
                    }
                    open.fetch_add(1, Ordering::AcqRel);
                    let open = open.clone();
                    let router = router.clone();
                    let cfg = app.cfg.clone();
                    let shutdown = shutdown.clone();
                    connections.spawn(async move {
                        connection(stream, peer, router, &cfg, shutdown).await;
                        open.fetch_sub(1, Ordering::AcqRel);
                    });
                }
                Err(e) => {
                    warn!(error = %e, "SSE: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    app.hub.close();
    if tokio::time::timeout(SHUTDOWN_GRACE * 2, async {
        while connections.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        connections.abort_all();
    }
    info!("SSE listener stopped");
}

/// TCP keepalive, so the half-open socket of a browser that vanished without
/// a FIN (power cut, Wi-Fi gone) is closed by the kernel, and a
/// TCP_USER_TIMEOUT as long, so unacknowledged heartbeats give up as soon.
fn keepalive(stream: &TcpStream, cfg: &SseConfig) -> std::io::Result<()> {
    if cfg.tcp_keepalive_secs == 0 {
        return Ok(());
    }
    let idle = Duration::from_secs(cfg.tcp_keepalive_secs);
    let interval = Duration::from_secs(cfg.tcp_keepalive_interval_secs);
    let socket = socket2::SockRef::from(stream);
    socket.set_tcp_keepalive(
        &socket2::TcpKeepalive::new()
            .with_time(idle)
            .with_interval(interval)
            .with_retries(cfg.tcp_keepalive_probes),
    )?;
    socket.set_tcp_user_timeout(Some(idle + interval * cfg.tcp_keepalive_probes))
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    cfg: &SseConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    if let Err(e) = keepalive(&stream, cfg) {
        debug!(%peer, error = %e, "SSE: cannot set TCP keepalive");
    }
    let kill = Arc::new(Notify::new());
    let conn = Conn {
        peer,
        kill: kill.clone(),
    };
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(conn.clone());
        let mut router = router.clone();
        async move { tower_service::Service::call(&mut router, req).await }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(cfg.request_timeout_ms));
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                debug!(%peer, error = %e, "SSE connection ended");
            }
        }
        _ = shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn.as_mut()).await;
        }
        _ = kill.notified() => {
            // Overflowed: a client that reads takes its final event and
            // reconnects; one that does not is cut off. The connection takes
            // no further request: a browser would send its resumed stream on
            // it, and the grace is for the overflowed stream only.
            conn.as_mut().graceful_shutdown();
            let grace = Duration::from_millis(cfg.overflow_grace_ms);
            let _ = tokio::time::timeout(grace, conn.as_mut()).await;
        }
    }
}
