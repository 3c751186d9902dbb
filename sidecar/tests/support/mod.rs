//! Real processes for sidecar integration tests: a `redis-server` on a free
//! loopback port, the sidecar itself (`scada_sidecar::run` in-process), and a
//! client speaking the extension's wire protocol.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use scada_core::frame::{Frame, FrameKind, MAX_BODY_LEN};
use scada_core::message::{Ack, Hello};
use scada_core::{EventId, EventWriter};
use scada_sidecar::config::{Config, RedisConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Redis {
    pub port: u16,
    child: Option<Child>,
}

impl Redis {
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    pub fn start_on(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (make deps)");
        let r = Self {
            port,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        r
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Subscribes to `pattern` and collects `(channel, message)` pairs.
    pub async fn subscribe(&self, pattern: &str) -> Subscriber {
        let client = redis::Client::open(self.url()).unwrap();
        let mut pubsub = client.get_async_pubsub().await.unwrap();
        pubsub.psubscribe(pattern).await.unwrap();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut stream = pubsub.into_on_message();
            while let Some(msg) = stream.next().await {
                let payload: Vec<u8> = msg.get_payload().unwrap();
                if tx
                    .send((
                        msg.get_channel_name().to_string(),
                        String::from_utf8(payload).unwrap(),
                    ))
                    .is_err()
                {
                    break;
                }
            }
        });
        Subscriber { rx, _task: task }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

pub struct Subscriber {
    rx: tokio::sync::mpsc::UnboundedReceiver<(String, String)>,
    _task: JoinHandle<()>,
}

impl Subscriber {
    /// Waits for `n` messages (fails after `timeout`).
    pub async fn take(&mut self, n: usize, timeout: Duration) -> Vec<(String, String)> {
        let mut out = Vec::with_capacity(n);
        let deadline = tokio::time::Instant::now() + timeout;
        while out.len() < n {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(m)) => out.push(m),
                _ => panic!("received {} of {n} messages before the timeout", out.len()),
            }
        }
        out
    }

    /// Messages that arrive within `wait` (to check nothing more comes).
    pub async fn drain(&mut self, wait: Duration) -> Vec<(String, String)> {
        let mut out = Vec::new();
        while let Ok(Some(m)) = tokio::time::timeout(wait, self.rx.recv()).await {
            out.push(m);
        }
        out
    }
}

pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("scada-sidecar-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn config(dir: &Path, redis_port: u16) -> Config {
    let mut c = Config::default();
    c.server.socket = dir.join("run/sidecar.sock");
    c.server.data_dir = dir.join("data");
    c.server.shutdown_timeout_secs = 2;
    c.server.spool_scan_ms = 100;
    c.redis = Some(RedisConfig {
        port: redis_port,
        prefix: "laravel_database_".into(),
        timeout_ms: 500,
        ..RedisConfig::default()
    });
    c
}

/// A sidecar running in this process.
pub struct Sidecar {
    pub socket: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), scada_sidecar::server::ServerError>>>,
}

impl Sidecar {
    pub async fn start(config: Config) -> Self {
        let socket = config.server.socket.clone();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(scada_sidecar::run(config, async move {
            let _ = rx.await;
        }));
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(&socket).await.is_err() {
            if task.is_finished() {
                match task.await {
                    Ok(Err(e)) => panic!("sidecar did not start: {e}"),
                    other => panic!("sidecar did not start: {other:?}"),
                }
            }
            assert!(Instant::now() < deadline, "sidecar did not start");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Self {
            socket,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// SIGTERM equivalent: graceful shutdown, waits for it to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    /// kill -9 equivalent: the task is dropped mid-flight, nothing is flushed.
    /// Waits until the task is gone, as a killed process is gone: its data
    /// directory lock is released before the next sidecar starts.
    pub async fn abort(mut self) {
        // Never send (or drop) the shutdown signal: a task still running on
        // another worker could see it and shut down gracefully, removing its socket.
        std::mem::forget(self.stop.take());
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    pub async fn status(&self) -> serde_json::Value {
        serde_json::from_str(&self.get("/status").await).unwrap()
    }

    /// The body of `GET path` on the status socket.
    pub async fn get(&self, path: &str) -> String {
        let sock = self.socket.parent().unwrap().join("status.sock");
        let mut s = UnixStream::connect(sock).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.unwrap();
        let text = String::from_utf8(buf).unwrap();
        text.split("\r\n\r\n").nth(1).unwrap().to_string()
    }
}

/// Encodes one event frame as the extension does.
pub fn event(
    id: EventId,
    channels: &[&str],
    name: &str,
    socket: Option<&str>,
    payload: &str,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = EventWriter::begin(&mut out, id, 1_700_000_000_000_000);
    for c in channels {
        w.channel(&mut out, c.as_bytes()).unwrap();
    }
    w.event(&mut out, name.as_bytes(), socket.map(str::as_bytes))
        .unwrap();
    out.extend_from_slice(payload.as_bytes());
    w.finish(&mut out).unwrap();
    out
}

/// A client speaking the extension's protocol.
pub struct Client {
    pub stream: UnixStream,
    buf: Vec<u8>,
}

impl Client {
    pub async fn connect(socket: &Path, origin: u64) -> Self {
        let mut stream = UnixStream::connect(socket).await.unwrap();
        let mut hello = Vec::new();
        Hello {
            origin,
            pid: 1,
            client: "test",
        }
        .encode(&mut hello)
        .unwrap();
        stream.write_all(&hello).await.unwrap();
        let mut c = Self {
            stream,
            buf: Vec::new(),
        };
        let f = c.next_frame().await.expect("welcome");
        assert_eq!(f.0, FrameKind::Welcome);
        c
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    async fn next_frame(&mut self) -> Option<(FrameKind, Vec<u8>)> {
        loop {
            if let Ok(Some(f)) = Frame::parse(&self.buf, MAX_BODY_LEN) {
                let out = (f.kind, f.payload.to_vec());
                let len = f.len();
                self.buf.drain(..len);
                return Some(out);
            }
            let mut tmp = [0u8; 4096];
            let n = self.stream.read(&mut tmp).await.ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&tmp[..n]);
        }
    }

    /// Waits until the sidecar acknowledges `frames` frames in total.
    pub async fn wait_ack(&mut self, frames: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let f = tokio::time::timeout_at(deadline, self.next_frame())
                .await
                .expect("ack timeout")
                .expect("connection closed before ack");
            if f.0 == FrameKind::Ack && Ack::decode(&f.1).unwrap().frames >= frames {
                return;
            }
        }
    }

    /// True when the sidecar acknowledges `frames` frames within `wait`
    /// (false on timeout or when the connection closes first).
    pub async fn acked_within(&mut self, frames: u64, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.next_frame()).await {
                Ok(Some((FrameKind::Ack, payload))) => {
                    if Ack::decode(&payload).unwrap().frames >= frames {
                        return true;
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return false,
            }
        }
    }

    /// True once the sidecar closed the connection.
    pub async fn closed(&mut self) -> bool {
        matches!(
            tokio::time::timeout(Duration::from_secs(5), self.next_frame()).await,
            Ok(None)
        )
    }
}
