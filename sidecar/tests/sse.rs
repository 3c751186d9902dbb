//! The SSE listener against a real in-process sidecar, a real redis-server and
//! HTTP clients reading the stream (reqwest, or raw TCP for hostile clients).

mod support;

use std::path::Path;
use std::time::Duration;

use scada_core::EventId;
use scada_sidecar::config::{Config, SseConfig};
use serde_json::Value;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(10);

fn sse_config(dir: &Path, redis_port: u16, sse_port: u16) -> Config {
    let mut c = config(dir, redis_port);
    c.sse = Some(SseConfig {
        addr: format!("127.0.0.1:{sse_port}"),
        secret: scada_sidecar::config::Secret::new("s3cr3t"),
        heartbeat_ms: 200,
        request_timeout_ms: 500,
        overflow_grace_ms: 500,
        ..SseConfig::default()
    });
    c
}

#[derive(Debug, Clone, Default, PartialEq)]
struct SseEvent {
    id: Option<String>,
    event: String,
    data: String,
    comment: Option<String>,
}

/// Reads `text/event-stream` as a browser's EventSource does.
struct SseClient {
    resp: reqwest::Response,
    buf: String,
}

impl SseClient {
    async fn open(url: &str, last_id: Option<&str>) -> Self {
        let mut req = reqwest::Client::new().get(url);
        if let Some(id) = last_id {
            req = req.header("Last-Event-ID", id);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200, "{url}");
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Self {
            resp,
            buf: String::new(),
        }
    }

    /// The next event or comment; `None` when the stream ends or times out.
    async fn next(&mut self, wait: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut ev = SseEvent {
                    event: "message".into(),
                    ..Default::default()
                };
                let mut data: Vec<&str> = Vec::new();
                for line in block.lines() {
                    if let Some(c) = line.strip_prefix(':') {
                        ev.comment = Some(c.trim_start().to_string());
                    } else if let Some((field, value)) = line.split_once(':') {
                        let value = value.strip_prefix(' ').unwrap_or(value);
                        match field {
                            "id" => ev.id = Some(value.to_string()),
                            "event" => ev.event = value.to_string(),
                            "data" => data.push(value),
                            _ => {}
                        }
                    }
                }
                ev.data = data.join("\n");
                return Some(ev);
            }
            match tokio::time::timeout_at(deadline, self.resp.chunk()).await {
                Ok(Ok(Some(bytes))) => self.buf.push_str(std::str::from_utf8(&bytes).unwrap()),
                _ => return None,
            }
        }
    }

    /// The next `n` events (comments skipped); fails on a timeout.
    async fn events(&mut self, n: usize) -> Vec<SseEvent> {
        let mut out = Vec::new();
        while out.len() < n {
            match self.next(WAIT).await {
                Some(e) if e.comment.is_some() => {}
                Some(e) => out.push(e),
                None => panic!(
                    "got {} of {n} events: {:?}",
                    out.len(),
                    out.iter().map(|e| (&e.id, &e.event)).collect::<Vec<_>>()
                ),
            }
        }
        out
    }

    /// Events arriving within `wait` (comments skipped).
    async fn drain(&mut self, wait: Duration) -> Vec<SseEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return out;
            }
            match self.next(left).await {
                Some(e) if e.comment.is_none() => out.push(e),
                Some(_) => {}
                None => return out,
            }
        }
    }
}

/// A port for an SSE listener, below the ephemeral range `free_port` (and
/// so redis-server) draws from: concurrent tests never pick the same one.
fn sse_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 12_000 + (std::process::id() % 400) as u16 * 40;
    loop {
        let port = base + NEXT.fetch_add(1, Ordering::Relaxed) % 2000;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

struct Stack {
    redis: Redis,
    sidecar: Sidecar,
    port: u16,
    dir: std::path::PathBuf,
    /// The configuration it was started with (a restart keeps it).
    config: Config,
}

impl Stack {
    async fn start(name: &str, tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = temp_dir(name);
        let redis = Redis::start();
        let port = sse_port();
        let mut c = sse_config(&dir, redis.port, port);
        tweak(&mut c);
        let sidecar = Sidecar::start(c.clone()).await;
        Self {
            redis,
            sidecar,
            port,
            dir,
            config: c,
        }
    }

    fn url(&self, query: &str) -> String {
        format!("http://127.0.0.1:{}/sse?{query}", self.port)
    }

    /// Stops (SIGTERM) or kills (-9) the sidecar and starts it again on the same data.
    async fn restart(self, kill: bool) -> Self {
        let Stack {
            redis,
            sidecar,
            port,
            dir,
            config,
        } = self;
        let status = sidecar.socket.parent().unwrap().join("status.sock");
        if kill {
            sidecar.abort().await;
        } else {
            sidecar.stop().await;
        }
        // A killed sidecar's tasks are cancelled, not joined: wait until its
        // listeners are gone, as a killed process's are.
        let deadline = std::time::Instant::now() + WAIT;
        while std::os::unix::net::UnixStream::connect(&status).is_ok()
            || std::net::TcpListener::bind(("127.0.0.1", port)).is_err()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the old sidecar's listeners stay open"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let sidecar = Sidecar::start(config.clone()).await;
        Stack {
            redis,
            sidecar,
            port,
            dir,
            config,
        }
    }

    async fn sse_status(&self) -> Value {
        self.sidecar.status().await["sse"].clone()
    }
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Sends `frames` as one PHP process and waits for their acknowledgement.
async fn produce(socket: &Path, origin: u64, frames: &[Vec<u8>]) {
    let mut c = Client::connect(socket, origin).await;
    for f in frames {
        c.send(f).await;
    }
    c.wait_ack(frames.len() as u64).await;
}

fn ev(origin: u64, seq: u64, channels: &[&str], name: &str, payload: &str) -> Vec<u8> {
    event(EventId { origin, seq }, channels, name, None, payload)
}

async fn status_of(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_ids_names_and_the_data_redis_and_pusher_clients_get() {
    let s = Stack::start("data", |_| {}).await;
    let mut sub = s.redis.subscribe("*").await;
    let mut client = SseClient::open(&s.url("channels=plant-1,plant-2"), None).await;
    let payloads = [
        r#"{"channel":"PLC-1","value":21.5,"s":"a\/b \u00e9"}"#,
        r#"{"multi":true,"line":"x\ny"}"#,
        r#"{"other":1}"#,
    ];
    produce(
        &s.sidecar.socket,
        7,
        &[
            ev(7, 1, &["plant-1"], "scada.data.received", payloads[0]),
            // On both requested channels: sent once.
            ev(7, 2, &["plant-1", "plant-2"], "scada.alarm", payloads[1]),
            ev(7, 3, &["elsewhere"], "scada.data.received", payloads[2]),
            ev(7, 4, &["plant-2"], "scada.data.received", payloads[2]),
        ],
    )
    .await;
    let got = client.events(3).await;
    assert_eq!(
        got.iter().map(|e| e.event.as_str()).collect::<Vec<_>>(),
        ["scada.data.received", "scada.alarm", "scada.data.received"]
    );
    assert_eq!(got[0].data, payloads[0], "the payload bytes, untouched");
    assert_eq!(got[1].data, payloads[1]);
    assert_eq!(got[2].data, payloads[2]);
    let ids: Vec<u64> = got
        .iter()
        .map(|e| e.id.as_ref().unwrap().parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert!(client.drain(Duration::from_millis(400)).await.is_empty());

    // Redis got the same data (Laravel's envelope adds `socket`).
    let msgs = sub.take(5, WAIT).await;
    let redis_data: Vec<Value> = msgs
        .iter()
        .filter(|(ch, _)| !ch.ends_with("elsewhere"))
        .map(|(_, m)| {
            let mut v: Value = serde_json::from_str(m).unwrap();
            let mut d = v["data"].take();
            d.as_object_mut().unwrap().remove("socket");
            d
        })
        .collect();
    for e in &got {
        let sse: Value = serde_json::from_str(&e.data).unwrap();
        assert!(redis_data.contains(&sse), "{sse} not in {redis_data:?}");
    }
    let st = s.sse_status().await;
    assert_eq!(u(&st["clients_connected"]), 1);
    assert_eq!(u(&st["events_sent"]), 3);
    let metrics = s.sidecar.get("/metrics").await;
    assert!(metrics.contains("scada_sse_events_sent 3"), "{metrics}");
    s.sidecar.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_streams_get_heartbeats() {
    let s = Stack::start("heartbeat", |_| {}).await;
    let mut client = SseClient::open(&s.url("channels=quiet"), None).await;
    let first = client.next(Duration::from_secs(2)).await.unwrap();
    assert_eq!(first.comment.as_deref(), Some("connected"));
    let started = std::time::Instant::now();
    let e = client.next(Duration::from_secs(2)).await.unwrap();
    assert_eq!(e.comment.as_deref(), Some("heartbeat"));
    assert!(started.elapsed() >= Duration::from_millis(150));
    let e = client.next(Duration::from_secs(2)).await.unwrap();
    assert_eq!(e.comment.as_deref(), Some("heartbeat"));
    s.sidecar.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_client_first_gets_the_latest_event_per_channel_and_name() {
    let s = Stack::start("last-value", |_| {}).await;
    // A client already connected: the stage has seen everything below.
    let mut watcher = SseClient::open(&s.url("channels=a"), None).await;
    produce(
        &s.sidecar.socket,
        9,
        &[
            ev(9, 1, &["a"], "temp", r#"{"v":1}"#),
            ev(9, 2, &["a"], "temp", r#"{"v":2}"#),
            ev(9, 3, &["a"], "alarm", r#"{"on":true}"#),
            ev(9, 4, &["b"], "temp", r#"{"v":40}"#),
            ev(9, 5, &["c"], "temp", r#"{"v":50}"#),
        ],
    )
    .await;
    watcher.events(3).await;
    let mut client = SseClient::open(&s.url("channels=a,b"), None).await;
    let got = client.events(3).await;
    let view: Vec<(&str, &str)> = got
        .iter()
        .map(|e| (e.event.as_str(), e.data.as_str()))
        .collect();
    assert_eq!(
        view,
        [
            ("temp", r#"{"v":2}"#),
            ("alarm", r#"{"on":true}"#),
            ("temp", r#"{"v":40}"#)
        ]
    );
    // Then live.
    produce(
        &s.sidecar.socket,
        10,
        &[ev(10, 1, &["b"], "temp", r#"{"v":41}"#)],
    )
    .await;
    let live = client.events(1).await;
    assert_eq!(live[0].data, r#"{"v":41}"#);
    assert!(client.drain(Duration::from_millis(300)).await.is_empty());
    s.sidecar.stop().await;
}

async fn resume_after_restart(kill: bool) {
    let s = Stack::start(if kill { "resume-kill" } else { "resume" }, |_| {}).await;
    let mut client = SseClient::open(&s.url("channels=r"), None).await;
    let batch = |from: u64, to: u64| -> Vec<Vec<u8>> {
        (from..to)
            .map(|i| ev(11, i, &["r"], "n", &format!(r#"{{"i":{i}}}"#)))
            .collect()
    };
    produce(&s.sidecar.socket, 11, &batch(1, 21)).await;
    let first = client.events(20).await;
    let last_id = first.last().unwrap().id.clone().unwrap();
    drop(client);
    let s = s.restart(kill).await;
    // Produced while the client is away.
    produce(&s.sidecar.socket, 12, &batch(21, 41)).await;
    let mut client = SseClient::open(&s.url("channels=r"), Some(&last_id)).await;
    let rest = client.events(20).await;
    let is: Vec<u64> = first
        .iter()
        .chain(&rest)
        .map(|e| {
            serde_json::from_str::<Value>(&e.data).unwrap()["i"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(is, (1..41).collect::<Vec<u64>>(), "no gap, no repeat");
    assert!(rest.iter().all(|e| e.event == "n"));
    // And live after the catch-up, still without repeats.
    produce(&s.sidecar.socket, 13, &batch(41, 43)).await;
    let live = client.events(2).await;
    assert_eq!(live[0].data, r#"{"i":41}"#);
    assert!(client.drain(Duration::from_millis(300)).await.is_empty());
    s.sidecar.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_event_id_resumes_after_a_graceful_restart_without_gap_or_repeat() {
    resume_after_restart(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_event_id_resumes_after_kill_9_without_gap_or_repeat() {
    resume_after_restart(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_event_says_what_retention_removed_then_the_stream_goes_on() {
    let s = Stack::start("gap", |c| {
        c.journal.segment_bytes = 1024 * 1024;
        c.journal.max_bytes = 64 * 1024 * 1024;
    })
    .await;
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(8000));
    let mut watcher = SseClient::open(&s.url("channels=g"), None).await;
    produce(
        &s.sidecar.socket,
        14,
        &[ev(14, 1, &["g"], "first", r#"{"i":1}"#)],
    )
    .await;
    let first_id = watcher.events(1).await[0].id.clone().unwrap();
    drop(watcher);
    // Over a segment of other traffic, delivered to Redis, then released.
    let filler: Vec<Vec<u8>> = (2..300)
        .map(|i| ev(14, i, &["other"], "fill", &big))
        .collect();
    produce(&s.sidecar.socket, 14, &filler).await;
    produce(
        &s.sidecar.socket,
        15,
        &[ev(15, 1, &["g"], "after", r#"{"i":2}"#)],
    )
    .await;
    let deadline = std::time::Instant::now() + WAIT;
    let oldest = loop {
        let oldest = u(&s.sidecar.status().await["journal"]["oldest"]);
        if oldest > first_id.parse::<u64>().unwrap() {
            break oldest;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the first segment was never released"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut client = SseClient::open(
        &s.url(&format!("channels=g&last_event_id={first_id}")),
        None,
    )
    .await;
    let got = client.events(2).await;
    assert_eq!(got[0].event, "gap");
    let gap: Value = serde_json::from_str(&got[0].data).unwrap();
    assert_eq!(gap["from"].as_u64().unwrap().to_string(), first_id);
    assert_eq!(u(&gap["to"]), oldest);
    assert!(got[0].id.is_none(), "a gap moves no Last-Event-ID");
    assert_eq!(
        (got[1].event.as_str(), got[1].data.as_str()),
        ("after", r#"{"i":2}"#)
    );
    assert!(u(&s.sse_status().await["gaps"]) >= 1);

    // An id this journal never gave out: a gap too, then live.
    let mut forged = SseClient::open(&s.url("channels=g"), Some("1")).await;
    let e = forged.events(1).await;
    assert_eq!(e[0].event, "gap");
    assert!(
        e[0].data.contains("unknown event id") || e[0].data.contains("no longer holds"),
        "{}",
        e[0].data
    );
    s.sidecar.stop().await;
}

/// What a new client without `Last-Event-ID` gets first: (id, event, data).
async fn last_values(s: &Stack, channels: &str, n: usize) -> Vec<(String, String, String)> {
    let mut client = SseClient::open(&s.url(&format!("channels={channels}")), None).await;
    let got = client.events(n).await;
    assert!(
        client.drain(Duration::from_millis(500)).await.is_empty(),
        "nothing more than the last values"
    );
    got.into_iter()
        .map(|e| (e.id.unwrap_or_default(), e.event, e.data))
        .collect()
}

async fn last_values_survive_a_restart(kill: bool) {
    let name = if kill {
        "lv-restart-kill"
    } else {
        "lv-restart"
    };
    let s = Stack::start(name, |c| {
        c.throttle =
            scada_sidecar::throttle::rules::RuleConfig::parse_list("live-*=200:latest").unwrap();
    })
    .await;
    let mut watcher = SseClient::open(&s.url("channels=a,b,live-1"), None).await;
    produce(
        &s.sidecar.socket,
        30,
        &[
            ev(30, 1, &["a"], "temp", r#"{"v":1}"#),
            ev(30, 2, &["a"], "temp", r#"{"v":2}"#),
            ev(30, 3, &["a", "b"], "alarm", r#"{"on":true}"#),
            ev(30, 4, &["b"], "temp", r#"{"v":40}"#),
        ],
    )
    .await;
    watcher.events(3).await;
    // 50 raw samples on a throttled channel: the journal holds them and the windows.
    let raw: Vec<Vec<u8>> = (1..=50)
        .map(|i| ev(31, i, &["live-1"], "tick", &format!(r#"{{"i":{i}}}"#)))
        .collect();
    produce(&s.sidecar.socket, 31, &raw).await;
    let windows = watcher.drain(Duration::from_millis(1500)).await;
    assert_eq!(windows.last().unwrap().data, r#"{"i":50}"#);
    drop(watcher);
    let before = last_values(&s, "a,b,live-1", 4).await;
    let view: Vec<(&str, &str)> = before
        .iter()
        .map(|(_, e, d)| (e.as_str(), d.as_str()))
        .collect();
    assert_eq!(
        view,
        [
            ("temp", r#"{"v":2}"#),
            ("alarm", r#"{"on":true}"#),
            ("temp", r#"{"v":40}"#),
            ("tick", r#"{"i":50}"#),
        ]
    );

    // After the restart a new client gets the same events, ids included,
    // before anything new arrives: rebuilt from the journal (the last
    // window of the throttled channel, not its raw samples).
    let s = s.restart(kill).await;
    assert_eq!(last_values(&s, "a,b,live-1", 4).await, before);
    assert_eq!(last_values(&s, "b", 2).await, before[1..3].to_vec());
    // Live events still replace them.
    produce(
        &s.sidecar.socket,
        32,
        &[ev(32, 1, &["b"], "temp", r#"{"v":41}"#)],
    )
    .await;
    let mut watcher = SseClient::open(&s.url("channels=b"), None).await;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        // The new event reaches the hub asynchronously; a new client sees it soon.
        let got = watcher.events(2).await;
        if got[1].data == r#"{"v":41}"# {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{got:?}");
        watcher = SseClient::open(&s.url("channels=b"), None).await;
    }
    s.sidecar.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_values_survive_a_graceful_restart() {
    last_values_survive_a_restart(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_values_survive_kill_9() {
    last_values_survive_a_restart(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_value_rebuild_reads_only_its_budget() {
    // Redis down (its sink holds every segment), 1 MiB segments, 400 events
    // of 8 KB on 400 channels: 4 segments.
    let mut s = Stack::start("lv-budget", |c| {
        c.journal.segment_bytes = 1024 * 1024;
        let sse = c.sse.as_mut().unwrap();
        sse.max_channels = 400;
        sse.last_value_rebuild_bytes = 1;
    })
    .await;
    s.redis.stop();
    let pad = "x".repeat(8000);
    let frames: Vec<Vec<u8>> = (1..=400)
        .map(|i| {
            let ch = format!("c-{i}");
            ev(
                33,
                i,
                &[ch.as_str()],
                "e",
                &format!(r#"{{"i":{i},"pad":"{pad}"}}"#),
            )
        })
        .collect();
    for chunk in frames.chunks(50) {
        produce(&s.sidecar.socket, 33, chunk).await;
    }
    let all: Vec<String> = (1..=400).map(|i| format!("c-{i}")).collect();
    let url = s.url(&format!("channels={}", all.join(",")));
    let ids = |got: &[SseEvent]| -> Vec<u64> {
        got.iter()
            .map(|e| {
                serde_json::from_str::<Value>(&e.data).unwrap()["i"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    };

    // A 1-byte budget: the rest of the newest segment only.
    let mut s = s.restart(false).await;
    let got = SseClient::open(&url, None)
        .await
        .drain(Duration::from_millis(1500))
        .await;
    let newest = ids(&got);
    assert!(
        !newest.is_empty() && newest.len() < 200,
        "the newest segment's events only, got {}",
        newest.len()
    );
    assert_eq!(*newest.last().unwrap(), 400);

    // The default budget (64 MiB) covers the whole journal: all 400, in order.
    s.config.sse.as_mut().unwrap().last_value_rebuild_bytes =
        SseConfig::default().last_value_rebuild_bytes;
    let s = s.restart(false).await;
    let got = SseClient::open(&url, None)
        .await
        .drain(Duration::from_millis(1500))
        .await;
    assert_eq!(ids(&got), (1..=400).collect::<Vec<u64>>());
    s.sidecar.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_channel_streams_its_windows_not_the_raw_samples() {
    let s = Stack::start("throttle", |c| {
        c.throttle =
            scada_sidecar::throttle::rules::RuleConfig::parse_list("live-*=300:latest").unwrap();
    })
    .await;
    let mut client = SseClient::open(&s.url("channels=live-1"), None).await;
    let raw: Vec<Vec<u8>> = (1..=30)
        .map(|i| ev(16, i, &["live-1"], "tick", &format!(r#"{{"i":{i}}}"#)))
        .collect();
    produce(&s.sidecar.socket, 16, &raw).await;
    let got = client.drain(Duration::from_millis(1500)).await;
    assert!(
        !got.is_empty() && got.len() < 10,
        "windows, not 30 samples: {got:?}"
    );
    assert_eq!(
        got.last().unwrap().data,
        r#"{"i":30}"#,
        "the latest of the last window"
    );
    s.sidecar.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_with_a_status_and_a_reason() {
    let s = Stack::start("refusals", |c| {
        let sse = c.sse.as_mut().unwrap();
        sse.max_channels = 3;
        sse.max_connections_per_client = 2;
        sse.cors_origins = vec!["https://allowed.example".into()];
    })
    .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = scada_core::sse_token::issue("s3cr3t", now + 60, &["private-p"]).unwrap();
    let expired = scada_core::sse_token::issue("s3cr3t", now - 1, &["private-p"]).unwrap();
    let cases: Vec<(String, u16, &str)> = vec![
        (s.url(""), 400, "channels is required"),
        (s.url("channels=bad%20name"), 400, "channel \"bad name\""),
        (s.url("channels=a,b,c,d"), 400, "too many channels"),
        (s.url("channels=a&last_event_id=abc"), 400, "Last-Event-ID"),
        (s.url("channels=private-p"), 401, "token is required"),
        (s.url("channels=presence-room"), 401, "token is required"),
        (
            s.url(&format!("channels=private-p&token={expired}")),
            403,
            "token expired",
        ),
        (
            s.url(&format!("channels=private-q&token={token}")),
            403,
            "not valid for these channels",
        ),
        (
            s.url("channels=private-p&token=v1.x.y"),
            403,
            "malformed token",
        ),
        (
            format!("http://127.0.0.1:{}/nope", s.port),
            404,
            "not found",
        ),
    ];
    for (url, status, reason) in &cases {
        let (got, body) = status_of(url).await;
        assert_eq!(
            (got, body.contains(reason)),
            (*status, true),
            "{url}: {got} {body}"
        );
    }
    // A good token (query or bearer) opens the stream, with public channels too.
    let ok = reqwest::get(s.url(&format!("channels=private-p,public&token={token}")))
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let bearer = reqwest::Client::new()
        .get(s.url("channels=private-p"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 200);
    // Per-client limit: 2 open, the third refused.
    let (got, body) = status_of(&s.url("channels=a")).await;
    assert_eq!(got, 429, "{body}");
    assert!(
        body.contains("too many SSE connections from this address (limit 2)"),
        "{body}"
    );
    drop((ok, bearer));
    tokio::time::sleep(Duration::from_millis(200)).await;
    // CORS: allowed origin echoed, others refused.
    let r = reqwest::Client::new()
        .get(s.url("channels=a"))
        .header("Origin", "https://allowed.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://allowed.example"
    );
    drop(r);
    let r = reqwest::Client::new()
        .get(s.url("channels=a"))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.text().await.unwrap(), "origin not allowed");
    let st = s.sse_status().await;
    assert!(u(&st["auth_refusals"]) >= 6, "{st}");
    assert!(u(&st["bad_requests"]) >= 4, "{st}");
    assert_eq!(u(&st["limit_refusals"]), 1, "{st}");
    s.sidecar.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_channels_are_refused_when_no_secret_is_configured() {
    let s = Stack::start("no-secret", |c| {
        c.sse.as_mut().unwrap().secret = scada_sidecar::config::Secret::default();
    })
    .await;
    let (got, body) = status_of(&s.url("channels=private-x&token=v1.1.ab")).await;
    assert_eq!((got, body.as_str()), (403, "no SSE secret configured"));
    let open = reqwest::get(s.url("channels=public")).await.unwrap();
    assert_eq!(open.status(), 200);
    drop(open);
    s.sidecar.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_total_connection_limit_answers_429() {
    let s = Stack::start("total-limit", |c| {
        c.sse.as_mut().unwrap().max_connections = 1;
    })
    .await;
    let _one = SseClient::open(&s.url("channels=a"), None).await;
    let (got, body) = status_of(&s.url("channels=a")).await;
    assert_eq!(
        (got, body.as_str()),
        (429, "too many SSE connections (limit 1)")
    );
    s.sidecar.stop().await;
}

/// Opens a stream over raw TCP and reads the response head.
async fn raw_stream(port: u16, query: &str) -> TcpStream {
    let mut t = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    t.write_all(format!("GET /sse?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(WAIT, t.read(&mut b))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 1, "closed before the response head");
        head.push(b[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_overflows_alone_and_resumes_from_its_last_id() {
    let s = Stack::start("overflow", |c| {
        c.sse.as_mut().unwrap().client_queue_events = 64;
        // Longer than WAIT: the connection must close when the overflowed
        // stream ends, not when the grace runs out (a browser would send its
        // resumed stream on a connection still open, and have it cut).
        c.sse.as_mut().unwrap().overflow_grace_ms = 120_000;
    })
    .await;
    let mut sub = s.redis.subscribe("*").await;
    let mut good = SseClient::open(&s.url("channels=o"), None).await;
    // Stops reading right after its response head.
    let mut slow = raw_stream(s.port, "channels=o").await;
    let n = 1000u64;
    let pad = "y".repeat(32_000);
    let started = std::time::Instant::now();
    // In bursts of 20 (a reading client keeps up with that), 32 MB in all:
    // more than the socket buffers hold for the client that does not read.
    for burst in 0..n / 20 {
        let frames: Vec<Vec<u8>> = (burst * 20 + 1..=burst * 20 + 20)
            .map(|i| {
                ev(
                    17,
                    i,
                    &["o"],
                    "big",
                    &format!(r#"{{"i":{i},"pad":"{pad}"}}"#),
                )
            })
            .collect();
        produce(&s.sidecar.socket, 17, &frames).await;
        assert_eq!(good.events(20).await.len(), 20);
    }
    // The pipeline did not wait for the slow client: Redis got everything too.
    assert_eq!(sub.take(n as usize, WAIT).await.len(), n as usize);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(u(&s.sse_status().await["overflows"]), 1);

    // The slow client now reads: what was queued, then the final overflow
    // event, then the end of the connection (no keep-alive after an overflow).
    let mut text = Vec::new();
    tokio::time::timeout(WAIT, slow.read_to_end(&mut text))
        .await
        .expect("the overflowed connection closes after its final event")
        .unwrap();
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.contains("event: overflow"),
        "{}",
        &text[text.len().saturating_sub(300)..]
    );
    let last_id: u64 = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("id: "))
        .unwrap()
        .parse()
        .unwrap();
    let seen = text.matches("event: big").count() as u64;
    assert!(seen < n, "it overflowed before the end");
    // Resuming from its last id gives exactly the rest.
    let mut again = SseClient::open(&s.url("channels=o"), Some(&last_id.to_string())).await;
    let rest = again.events((n - seen) as usize).await;
    let last: Value = serde_json::from_str(&rest.last().unwrap().data).unwrap();
    assert_eq!(u(&last["i"]), n);
    let first: Value = serde_json::from_str(&rest[0].data).unwrap();
    assert_eq!(u(&first["i"]), seen + 1);
    s.sidecar.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_again_is_cut_off_after_the_grace() {
    let s = Stack::start("cutoff", |c| {
        c.sse.as_mut().unwrap().client_queue_events = 4;
    })
    .await;
    let _silent = raw_stream(s.port, "channels=z").await;
    let pad = "q".repeat(16_000);
    let frames: Vec<Vec<u8>> = (1..=600)
        .map(|i| {
            ev(
                18,
                i,
                &["z"],
                "big",
                &format!(r#"{{"i":{i},"pad":"{pad}"}}"#),
            )
        })
        .collect();
    produce(&s.sidecar.socket, 18, &frames).await;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let st = s.sse_status().await;
        if u(&st["overflows"]) == 1 && u(&st["clients_connected"]) == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{st}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.sidecar.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connections_are_closed_and_do_not_block_others() {
    let s = Stack::start("half-open", |_| {}).await;
    // Connects and sends nothing; another sends half a request.
    let mut silent = TcpStream::connect(("127.0.0.1", s.port)).await.unwrap();
    let mut partial = TcpStream::connect(("127.0.0.1", s.port)).await.unwrap();
    partial
        .write_all(b"GET /sse?channels=a HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // Meanwhile a normal client is served.
    let mut client = SseClient::open(&s.url("channels=h"), None).await;
    produce(&s.sidecar.socket, 19, &[ev(19, 1, &["h"], "e", "{}")]).await;
    assert_eq!(client.events(1).await[0].data, "{}");
    for t in [&mut silent, &mut partial] {
        let mut buf = Vec::new();
        let r = tokio::time::timeout(Duration::from_secs(3), t.read_to_end(&mut buf)).await;
        assert!(
            r.is_ok(),
            "the server closed the idle connection (request_timeout_ms)"
        );
    }
    s.sidecar.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_idle_streams_and_a_normal_client_is_still_served() {
    let s = Stack::start("many", |c| {
        c.sse.as_mut().unwrap().max_connections_per_client = 5000;
        c.sse.as_mut().unwrap().heartbeat_ms = 20_000;
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..2000 {
        idle.push(raw_stream(s.port, "channels=idle").await);
    }
    assert_eq!(u(&s.sse_status().await["clients_connected"]), 2000);
    let mut client = SseClient::open(&s.url("channels=busy"), None).await;
    let started = std::time::Instant::now();
    produce(
        &s.sidecar.socket,
        20,
        &[ev(20, 1, &["busy"], "e", r#"{"ok":1}"#)],
    )
    .await;
    assert_eq!(client.events(1).await[0].data, r#"{"ok":1}"#);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    drop(idle);
    s.sidecar.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_every_stream_cleanly() {
    let s = Stack::start("shutdown", |_| {}).await;
    let mut a = SseClient::open(&s.url("channels=s"), None).await;
    let mut b = SseClient::open(&s.url("channels=t"), None).await;
    let stopped = tokio::spawn(s.sidecar.stop());
    for c in [&mut a, &mut b] {
        // Heartbeats may come first; then the end of the stream, not a timeout.
        let started = std::time::Instant::now();
        while c.next(Duration::from_secs(5)).await.is_some() {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the stream did not end"
            );
        }
        assert!(started.elapsed() < Duration::from_secs(4));
    }
    tokio::time::timeout(WAIT, stopped).await.unwrap().unwrap();
    assert!(
        TcpStream::connect(("127.0.0.1", s.port)).await.is_err(),
        "no longer listening"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_envelope_each_event_names_the_requested_channels_it_is_on() {
    let s = Stack::start("envelope", |_| {}).await;
    let mut wrapped = SseClient::open(&s.url("channels=b,a&envelope=1"), None).await;
    let mut bare = SseClient::open(&s.url("channels=a,b"), None).await;
    let payload = r#"{"v":1.5,"s":"x\ny"}"#;
    produce(
        &s.sidecar.socket,
        9,
        &[
            ev(9, 1, &["a"], "scada.data.received", payload),
            // On both requested channels (and one not requested): once, naming both in request order.
            ev(9, 2, &["a", "other", "b"], "scada.alarm", payload),
            ev(9, 3, &["b"], "scada.data.received", payload),
        ],
    )
    .await;
    let got = wrapped.events(3).await;
    let envelopes: Vec<Value> = got
        .iter()
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    let data: Value = serde_json::from_str(payload).unwrap();
    assert_eq!(
        envelopes[0],
        serde_json::json!({"channels": ["a"], "data": data})
    );
    assert_eq!(
        envelopes[1],
        serde_json::json!({"channels": ["b", "a"], "data": data})
    );
    assert_eq!(
        envelopes[2],
        serde_json::json!({"channels": ["b"], "data": data})
    );
    assert_eq!(got[1].event, "scada.alarm");
    assert!(wrapped.drain(Duration::from_millis(300)).await.is_empty());
    // The same events without the envelope: the bare payload, the same ids.
    let plain = bare.events(3).await;
    assert!(plain.iter().all(|e| e.data == payload));
    assert_eq!(
        plain.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        got.iter().map(|e| e.id.clone()).collect::<Vec<_>>()
    );
    // Resumed and last-value events carry the envelope too.
    let mut resumed = SseClient::open(&s.url("channels=a&envelope=1"), got[0].id.as_deref()).await;
    let again = resumed.events(1).await;
    assert_eq!(again[0].id, got[1].id);
    let v: Value = serde_json::from_str(&again[0].data).unwrap();
    assert_eq!(v["channels"], serde_json::json!(["a"]));
    let mut fresh = SseClient::open(&s.url("channels=b&envelope=1"), None).await;
    for e in fresh.events(2).await {
        let v: Value = serde_json::from_str(&e.data).unwrap();
        assert_eq!(v["channels"], serde_json::json!(["b"]), "{}", e.data);
    }
    assert_eq!(
        status_of(&s.url("channels=a&envelope=yes")).await,
        (400, "envelope \"yes\": 0 or 1".to_string())
    );
    s.sidecar.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_ends_with_expired_when_its_token_expires_and_resumes_with_a_new_one() {
    let s = Stack::start("expiry", |_| {}).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let short = scada_core::sse_token::issue("s3cr3t", now + 2, &["private-p"]).unwrap();
    let mut client =
        SseClient::open(&s.url(&format!("channels=private-p&token={short}")), None).await;
    produce(
        &s.sidecar.socket,
        5,
        &[ev(
            5,
            1,
            &["private-p"],
            "scada.data.received",
            r#"{"n":1}"#,
        )],
    )
    .await;
    let first = client.events(1).await;
    let started = std::time::Instant::now();
    let end = client.events(1).await;
    assert_eq!(end[0].event, "expired", "{end:?}");
    assert!(end[0].data.contains("token expired"));
    assert!(started.elapsed() < Duration::from_secs(4));
    assert!(
        client.next(Duration::from_secs(2)).await.is_none(),
        "the stream ends"
    );
    // Meanwhile an event arrived: a new token and the last id resume with no gap.
    produce(
        &s.sidecar.socket,
        5,
        &[ev(
            5,
            2,
            &["private-p"],
            "scada.data.received",
            r#"{"n":2}"#,
        )],
    )
    .await;
    let fresh = scada_core::sse_token::issue("s3cr3t", now + 600, &["private-p"]).unwrap();
    let mut again = SseClient::open(
        &s.url(&format!("channels=private-p&token={fresh}")),
        first[0].id.as_deref(),
    )
    .await;
    let next = again.events(1).await;
    assert_eq!(next[0].data, r#"{"n":2}"#);
    assert!(again.drain(Duration::from_millis(300)).await.is_empty());
    s.sidecar.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_only_sse_configured_the_sidecar_streams_and_serves_the_dashboard() {
    let dir = temp_dir("sse-only");
    let port = sse_port();
    let mut c = sse_config(&dir, 0, port);
    c.redis = None;
    c.validate().expect("SSE alone is a destination");
    let sidecar = Sidecar::start(c).await;
    let base = format!("http://127.0.0.1:{port}");
    let mut client = SseClient::open(&format!("{base}/sse?channels=plant-live"), None).await;
    produce(
        &sidecar.socket,
        3,
        &[ev(
            3,
            1,
            &["plant-live"],
            "scada.data.received",
            r#"{"v":1}"#,
        )],
    )
    .await;
    assert_eq!(client.events(1).await[0].data, r#"{"v":1}"#);

    // The page, its modules and its vendored assets, from this origin only.
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirect
        .get(format!("{base}/dashboard?channels=plant-live"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 308);
    assert_eq!(r.headers()["location"], "/dashboard/?channels=plant-live");
    for (path, kind) in [
        ("/dashboard/", "text/html"),
        ("/dashboard/js/main.js", "text/javascript"),
        ("/dashboard/vendor/uPlot.iife.min.js", "text/javascript"),
        ("/dashboard/dashboard.css", "text/css"),
    ] {
        let r = reqwest::get(format!("{base}{path}")).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers();
        assert!(
            h["content-type"].to_str().unwrap().starts_with(kind),
            "{path}"
        );
        assert!(h["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'self'"));
        assert!(!r.bytes().await.unwrap().is_empty());
    }
    let page = reqwest::get(format!("{base}/dashboard/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("js/main.js"), "{page}");
    for path in [
        "/dashboard/vendor/README.txt",
        "/dashboard/../Cargo.toml",
        "/dashboard/%2e%2e/Cargo.toml",
        "/dashboard/nope.js",
    ] {
        assert_eq!(status_of(&format!("{base}{path}")).await.0, 404, "{path}");
    }
    sidecar.stop().await;
}

/// The server side of the loopback connection from `client_port` to the
/// listener on `server_port`, as the kernel lists it in /proc/net/tcp:
/// (timer kind, timer ticks left, socket inode). Timer kind 2 is keepalive.
fn server_socket(server_port: u16, client_port: u16) -> Option<(u32, u64, u64)> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let port = |addr: &str| u16::from_str_radix(addr.rsplit(':').next()?, 16).ok();
        if port(f[1])? != server_port || port(f[2])? != client_port {
            return None;
        }
        let (tr, when) = f[5].split_once(':')?;
        Some((
            u32::from_str_radix(tr, 16).ok()?,
            u64::from_str_radix(when, 16).ok()?,
            f[9].parse().ok()?,
        ))
    })
}

/// This process's descriptor for the socket with `inode` (the in-process
/// sidecar's accepted connection).
fn fd_of_socket(inode: u64) -> i32 {
    let want = format!("socket:[{inode}]");
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        if std::fs::read_link(entry.path()).is_ok_and(|l| l.to_string_lossy() == want) {
            return entry.file_name().to_string_lossy().parse().unwrap();
        }
    }
    panic!("no descriptor for socket inode {inode}");
}

fn sockopt(fd: i32, level: i32, name: i32) -> i32 {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: reads an int option of a socket this process holds into `v`.
    let r = unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    assert_eq!(
        r,
        0,
        "getsockopt({level}, {name}): {}",
        std::io::Error::last_os_error()
    );
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_connections_have_tcp_keepalive_so_vanished_browsers_are_detected() {
    let s = Stack::start("keepalive", |c| {
        let sse = c.sse.as_mut().unwrap();
        sse.heartbeat_ms = 60_000;
        sse.tcp_keepalive_secs = 7;
        sse.tcp_keepalive_interval_secs = 2;
        sse.tcp_keepalive_probes = 4;
    })
    .await;
    let client = raw_stream(s.port, "channels=k").await;
    let (_, _, inode) = server_socket(s.port, client.local_addr().unwrap().port())
        .expect("the accepted connection in /proc/net/tcp");
    let fd = fd_of_socket(inode);
    assert_eq!(sockopt(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE), 1);
    assert_eq!(sockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE), 7);
    assert_eq!(sockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL), 2);
    assert_eq!(sockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT), 4);
    // Unacknowledged writes give up as soon as the probes would: 7 + 2 × 4 s.
    assert_eq!(
        sockopt(fd, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT),
        15_000
    );
    // And the kernel runs the keepalive timer (what `ss -tnoe` shows as
    // timer:(keepalive,…)), due within the 7 s idle time (ticks of 1/100 s).
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (timer, left, _) = server_socket(s.port, client.local_addr().unwrap().port()).unwrap();
        if timer == 2 {
            assert!(left > 0 && left <= 700, "keepalive due in {left} ticks");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no keepalive timer (timer kind {timer})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(client);
    s.sidecar.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_keepalive_is_on_by_default_and_can_be_turned_off() {
    let s = Stack::start("keepalive-default", |c| {
        c.sse.as_mut().unwrap().heartbeat_ms = 60_000;
    })
    .await;
    let client = raw_stream(s.port, "channels=k").await;
    let (_, _, inode) = server_socket(s.port, client.local_addr().unwrap().port()).unwrap();
    let fd = fd_of_socket(inode);
    assert_eq!(sockopt(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE), 1);
    assert_eq!(sockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE), 60);
    assert_eq!(sockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL), 10);
    assert_eq!(sockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT), 3);
    drop(client);
    let mut s = s;
    s.config.sse.as_mut().unwrap().tcp_keepalive_secs = 0;
    let s = s.restart(false).await;
    let client = raw_stream(s.port, "channels=k").await;
    let (timer, _, inode) = server_socket(s.port, client.local_addr().unwrap().port()).unwrap();
    assert_eq!(
        sockopt(fd_of_socket(inode), libc::SOL_SOCKET, libc::SO_KEEPALIVE),
        0
    );
    assert_ne!(timer, 2, "no keepalive timer");
    drop(client);
    s.sidecar.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_overtakes_a_telemetry_backlog_queued_for_a_slow_client() {
    let s = Stack::start("priority", |c| {
        c.priority = vec!["alarms-*".into()];
        c.sse.as_mut().unwrap().client_queue_events = 2000;
        c.sse.as_mut().unwrap().overflow_grace_ms = 5000;
    })
    .await;
    let mut sub = s.redis.subscribe("*").await;
    // Stops reading right after its response head: 32 MB of telemetry fill
    // the socket buffers and then its queue.
    let mut slow = raw_stream(s.port, "channels=plant,alarms-1").await;
    let n = 1000u64;
    let pad = "t".repeat(32_000);
    for burst in 0..n / 20 {
        let frames: Vec<Vec<u8>> = (burst * 20 + 1..=burst * 20 + 20)
            .map(|i| {
                ev(
                    21,
                    i,
                    &["plant"],
                    "telemetry",
                    &format!(r#"{{"i":{i},"pad":"{pad}"}}"#),
                )
            })
            .collect();
        produce(&s.sidecar.socket, 21, &frames).await;
    }
    assert_eq!(sub.take(n as usize, WAIT).await.len(), n as usize);
    produce(
        &s.sidecar.socket,
        21,
        &[ev(21, n + 1, &["alarms-1"], "alarm", r#"{"trip":1}"#)],
    )
    .await;
    assert_eq!(sub.take(1, WAIT).await.len(), 1);
    // Give the stage a moment to queue the alarm, then read everything.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut text = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut chunk = vec![0u8; 1 << 16];
    while tokio::time::Instant::now() < deadline {
        let got = tokio::time::timeout(WAIT, slow.read(&mut chunk)).await;
        let Ok(Ok(k)) = got else { break };
        if k == 0 {
            break;
        }
        text.extend_from_slice(&chunk[..k]);
        let t = String::from_utf8_lossy(&text);
        if t.matches("event: telemetry").count() as u64 == n && t.contains("event: alarm") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&text);
    assert!(!text.contains("event: overflow"), "no overflow expected");
    assert_eq!(
        text.matches("event: telemetry").count() as u64,
        n,
        "every telemetry event arrives"
    );
    let at = text.find("event: alarm").expect("the alarm arrives");
    let before = &text[..at];
    let telemetry_before = before.matches("event: telemetry").count() as u64;
    assert!(
        telemetry_before < n,
        "the alarm overtook queued telemetry ({telemetry_before} of {n} before it)"
    );
    // It carries the id of the last event sent in order, so a reconnect
    // resumes before what it overtook (nothing is missed).
    let last_before: u64 = before
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("id: "))
        .unwrap()
        .parse()
        .unwrap();
    let alarm_id: u64 = text[at..]
        .lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix("id: "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(alarm_id, last_before);
    s.sidecar.stop().await;
}

/// The status line and body of a GET with this Host header.
async fn with_host(port: u16, path: &str, host: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}{path}"))
        .header("Host", host)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_listener_refuses_host_names_a_dns_rebinding_page_would_send() {
    let s = Stack::start("hosts", |_| {}).await;
    // A page whose own name resolves to 127.0.0.1 sends that name.
    let (status, body) = with_host(s.port, "/sse?channels=plant", "evil.example:8090").await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("DNS rebinding") && body.contains("SCADA_SSE_ALLOWED_HOSTS"),
        "{body}"
    );
    assert_eq!(
        with_host(s.port, "/dashboard/", "evil.example").await.0,
        403
    );
    // Addresses and localhost (an ssh -L tunnel) are answered.
    assert_eq!(
        with_host(s.port, "/dashboard/", &format!("localhost:{}", s.port))
            .await
            .0,
        200
    );
    assert_eq!(
        with_host(s.port, "/dashboard/", &format!("127.0.0.1:{}", s.port))
            .await
            .0,
        200
    );
    let mut client = SseClient::open(&s.url("channels=plant"), None).await;
    produce(
        &s.sidecar.socket,
        31,
        &[ev(31, 1, &["plant"], "tick", r#"{"n":1}"#)],
    )
    .await;
    assert_eq!(client.events(1).await[0].data, r#"{"n":1}"#);
    s.sidecar.stop().await;

    // A name the operator lists (a proxy in front that keeps the Host) is answered.
    let s = Stack::start("hosts-listed", |c| {
        c.sse.as_mut().unwrap().allowed_hosts = vec!["scada.plant.example".into()];
    })
    .await;
    assert_eq!(
        with_host(s.port, "/dashboard/", "scada.plant.example")
            .await
            .0,
        200
    );
    assert_eq!(
        with_host(s.port, "/dashboard/", "evil.example").await.0,
        403
    );
    s.sidecar.stop().await;
}
