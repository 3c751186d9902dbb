//! The status endpoint: `GET /status` (JSON), `GET /metrics` (Prometheus
//! text), `GET /health`, and `POST /flush` (collect orphaned spool files now). Served on a Unix socket next to the main one (what
//! `php artisan scada:status` reads) and, if configured, on a loopback TCP port.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::debug;

use crate::journal::Journal;
use crate::metrics::{Metrics, THROTTLE_KIND};

pub struct StatusContext {
    pub metrics: Arc<Metrics>,
    /// Wakes the spool drainer (`POST /flush`).
    pub spool_now: Arc<tokio::sync::Notify>,
    pub journal: Arc<Journal>,
    pub started: Instant,
    pub socket: String,
    pub spool_dir: String,
    pub destinations: Vec<Value>,
}

impl StatusContext {
    pub fn snapshot(&self) -> Value {
        let head = self.journal.head();
        let sinks: Vec<Value> = self
            .metrics
            .sinks()
            .iter()
            .map(|s| {
                let mut v = serde_json::to_value(&**s).unwrap_or(Value::Null);
                if let Some(o) = v.as_object_mut() {
                    o.insert(
                        "lag_bytes".into(),
                        json!(head.saturating_sub(s.cursor.get())),
                    );
                }
                v
            })
            .collect();
        json!({
            "service": "scada-sidecar",
            "version": env!("CARGO_PKG_VERSION"),
            "pid": std::process::id(),
            "uptime_secs": self.started.elapsed().as_secs(),
            "socket": self.socket,
            "spool_dir": self.spool_dir,
            "destinations": self.destinations,
            "journal": self.journal_status(head),
            "ingest": serde_json::to_value(&self.metrics.ingest).unwrap_or(Value::Null),
            "sinks": sinks,
            "sse": serde_json::to_value(&self.metrics.sse).unwrap_or(Value::Null),
        })
    }

    fn journal_status(&self, head: u64) -> Value {
        let mut j = json!({
            "head": head,
            "oldest": self.journal.oldest(),
            "disk_bytes": self.journal.disk_bytes(),
            "segments": self.journal.segment_count(),
        });
        if let (Some(o), Ok(Value::Object(health))) = (
            j.as_object_mut(),
            serde_json::to_value(self.journal.health()),
        ) {
            o.extend(health);
        }
        j
    }

    /// Prometheus text exposition of the same numbers.
    pub fn prometheus(&self) -> String {
        let snap = self.snapshot();
        let mut out = String::new();
        let num = |v: &Value| v.as_u64().map(|n| n.to_string());
        if let Some(ingest) = snap["ingest"].as_object() {
            for (k, v) in ingest {
                if let Some(n) = num(v) {
                    out.push_str(&format!("scada_ingest_{k} {n}\n"));
                }
            }
        }
        for (reason, n) in self.metrics.ingest.php_lost_events_by_reason.iter() {
            out.push_str(&format!(
                "scada_php_lost_events{{reason=\"{}\"}} {n}\n",
                reason.as_str()
            ));
        }
        if let Some(sse) = snap["sse"].as_object() {
            for (k, v) in sse {
                if let Some(n) = num(v) {
                    out.push_str(&format!("scada_sse_{k} {n}\n"));
                }
            }
        }
        if let Some(j) = snap["journal"].as_object() {
            for (k, v) in j {
                if let Some(n) = num(v) {
                    out.push_str(&format!("scada_journal_{k} {n}\n"));
                }
            }
        }
        if let Some(sinks) = snap["sinks"].as_array() {
            for s in sinks {
                let name = s["name"].as_str().unwrap_or("");
                let kind = s["kind"].as_str().unwrap_or("");
                if let Some(o) = s.as_object() {
                    for (k, v) in o {
                        if let Some(n) = num(v) {
                            out.push_str(&format!(
                                "scada_sink_{k}{{sink=\"{name}\",kind=\"{kind}\"}} {n}\n"
                            ));
                        }
                    }
                }
            }
        }
        out
    }
}

async fn respond<S: AsyncReadExt + AsyncWrite + Unpin>(
    mut stream: S,
    ctx: &StatusContext,
) -> std::io::Result<()> {
    let mut req = Vec::with_capacity(512);
    let mut buf = [0u8; 512];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && !req.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        req.extend_from_slice(&buf[..n]);
        if req.len() > 8192 {
            break;
        }
    }
    let line =
        String::from_utf8_lossy(req.split(|&b| b == b'\n').next().unwrap_or_default()).to_string();
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or("GET");
    let path = words.next().unwrap_or("/status");
    let (status, ctype, body) = match (method, path) {
        ("POST", "/flush") => {
            ctx.spool_now.notify_one();
            (
                "200 OK",
                "application/json",
                "{\"spool_scan\":\"started\"}".to_string(),
            )
        }
        (_, path) => match path {
            "/" | "/status" => ("200 OK", "application/json", ctx.snapshot().to_string()),
            "/metrics" => ("200 OK", "text/plain; version=0.0.4", ctx.prometheus()),
            "/health" => ("200 OK", "text/plain", "ok\n".to_string()),
            _ => ("404 Not Found", "text/plain", "not found\n".to_string()),
        },
    };
    let head = format!(
        "HTTP/1.0 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

/// A listener the status endpoint can serve: the Unix socket, or loopback TCP.
pub trait StatusListener: Send + 'static {
    type Stream: AsyncReadExt + AsyncWrite + Unpin + Send + 'static;
    fn accept_stream(&self) -> impl Future<Output = std::io::Result<Self::Stream>> + Send;
}

impl StatusListener for UnixListener {
    type Stream = tokio::net::UnixStream;
    async fn accept_stream(&self) -> std::io::Result<Self::Stream> {
        self.accept().await.map(|(s, _)| s)
    }
}

impl StatusListener for TcpListener {
    type Stream = tokio::net::TcpStream;
    async fn accept_stream(&self) -> std::io::Result<Self::Stream> {
        self.accept().await.map(|(s, _)| s)
    }
}

/// How long one status request may take (a client that sends nothing is dropped).
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Answers status requests until shutdown, one task per connection (owned:
/// they end with the listener).
pub async fn serve<L: StatusListener>(
    listener: L,
    ctx: Arc<StatusContext>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut requests = JoinSet::new();
    loop {
        tokio::select! {
            r = listener.accept_stream() => match r {
                Ok(stream) => {
                    let ctx = ctx.clone();
                    requests.spawn(async move {
                        match tokio::time::timeout(REQUEST_TIMEOUT, respond(stream, &ctx)).await {
                            Ok(Err(e)) => debug!(error = %e, "status request failed"),
                            Err(_) => debug!("status request timed out"),
                            Ok(Ok(())) => {}
                        }
                    });
                }
                Err(e) => debug!(error = %e, "status accept failed"),
            },
            Some(_) = requests.join_next(), if !requests.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    requests.abort_all();
    while requests.join_next().await.is_some() {}
}

/// `scada-sidecar --health`: asks a running sidecar for its status over the
/// Unix socket (blocking, 2 s at most) and summarises it in one line.
pub fn probe(socket: &std::path::Path) -> Result<String, String> {
    use std::io::{Read, Write};
    let timeout = Some(std::time::Duration::from_secs(2));
    let mut stream = std::os::unix::net::UnixStream::connect(socket)
        .map_err(|e| format!("cannot connect to {}: {e}", socket.display()))?;
    stream
        .set_read_timeout(timeout)
        .and_then(|()| stream.set_write_timeout(timeout))
        .and_then(|()| stream.write_all(b"GET /status HTTP/1.0\r\n\r\n"))
        .map_err(|e| format!("{}: {e}", socket.display()))?;
    let mut answer = Vec::new();
    stream
        .take(1 << 20)
        .read_to_end(&mut answer)
        .map_err(|e| format!("{}: no answer: {e}", socket.display()))?;
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        return Err(format!(
            "unexpected answer: {}",
            head.lines().next().unwrap_or("")
        ));
    }
    let status: Value =
        serde_json::from_str(body).map_err(|e| format!("unreadable status: {e}"))?;
    let sinks: Vec<String> = status["sinks"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|s| s["kind"] != THROTTLE_KIND)
                .map(|s| {
                    let up = if s["healthy"].as_u64() == Some(1) {
                        "up"
                    } else {
                        "retrying"
                    };
                    format!("{} {up}", s["name"].as_str().unwrap_or("?"))
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(format!(
        "{} events received; targets: {}",
        status["ingest"]["events"],
        if sinks.is_empty() {
            "none".to_string()
        } else {
            sinks.join(", ")
        }
    ))
}
