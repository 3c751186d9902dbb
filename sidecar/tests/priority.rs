//! Alarms ahead of telemetry (`SCADA_PRIORITY`): with real parts, a sidecar,
//! a Pusher-protocol HTTP endpoint that answers slowly (started here; every
//! request waits `delay_ms` before it is answered), and redis-server.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use scada_core::EventId;
use scada_sidecar::config::{Config, PusherConfig, Secret};
use serde_json::Value;
use support::*;

const WAIT: Duration = Duration::from_secs(20);

/// A Pusher HTTP API that records every event it is sent, in arrival order.
#[derive(Clone, Default)]
struct SlowPusher {
    delay_ms: Arc<AtomicU64>,
    /// Requests with an event on a channel starting so never get an answer.
    stall: Arc<Mutex<Option<String>>>,
    /// (channel, n) in the order requests were answered.
    got: Arc<Mutex<Vec<(String, u64)>>>,
}

impl SlowPusher {
    async fn start(delay_ms: u64) -> (Self, u16) {
        let me = Self::default();
        me.delay_ms.store(delay_ms, Ordering::Relaxed);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = me.clone();
        let app = axum::Router::new().fallback(move |body: Bytes| {
            let state = state.clone();
            async move { state.handle(body).await }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (me, port)
    }

    async fn handle(&self, body: Bytes) -> &'static str {
        let delay = self.delay_ms.load(Ordering::Relaxed);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let v: Value = serde_json::from_slice(&body).unwrap();
        let stall = self.stall.lock().unwrap().clone();
        if let Some(prefix) = stall {
            if String::from_utf8_lossy(&body).contains(&format!("\"{prefix}")) {
                std::future::pending::<()>().await;
            }
        }
        let events: Vec<Value> = match v.get("batch") {
            Some(b) => b.as_array().unwrap().clone(),
            None => vec![v],
        };
        let mut got = self.got.lock().unwrap();
        for e in events {
            let data: Value = serde_json::from_str(e["data"].as_str().unwrap()).unwrap();
            let n = data["n"].as_u64().unwrap();
            let channels: Vec<String> = match e.get("channels") {
                Some(c) => c
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_str().unwrap().to_string())
                    .collect(),
                None => vec![e["channel"].as_str().unwrap().to_string()],
            };
            for c in channels {
                got.push((c, n));
            }
        }
        "{}"
    }

    fn count(&self, prefix: &str) -> usize {
        let got = self.got.lock().unwrap();
        got.iter().filter(|(c, _)| c.starts_with(prefix)).count()
    }

    /// Per channel, the distinct `n`s in their first arrival order.
    fn first_arrivals(&self) -> BTreeMap<String, Vec<u64>> {
        let got = self.got.lock().unwrap();
        let mut seen = HashSet::new();
        let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for (c, n) in got.iter() {
            if seen.insert((c.clone(), *n)) {
                out.entry(c.clone()).or_default().push(*n);
            }
        }
        out
    }
}

fn pusher_config(dir: &std::path::Path, port: u16) -> Config {
    let mut c = config(dir, 0);
    c.redis = None;
    c.priority = vec!["alarms-*".into()];
    c.pusher = vec![PusherConfig {
        name: "slow".into(),
        app_id: "1".into(),
        key: "k".into(),
        secret: Secret::new("s"),
        host: "127.0.0.1".into(),
        port,
        scheme: "http".into(),
        max_in_flight: 2,
        timeout_ms: 10_000,
        ..PusherConfig::default()
    }];
    c
}

fn ev(seq: u64, channel: &str, n: u64) -> Vec<u8> {
    event(
        EventId { origin: 7, seq },
        &[channel],
        "e",
        None,
        &format!(r#"{{"n":{n}}}"#),
    )
}

async fn until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !ok() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_overtake_a_telemetry_backlog_behind_a_slow_pusher_target_across_a_restart() {
    let dir = temp_dir("priority-pusher");
    // 100 ms per request, 2 requests at a time, 10 events each: telemetry
    // drains at most at 200 events/s, so 4,000 of them are a 20 s backlog.
    let (pusher, port) = SlowPusher::start(100).await;
    let sidecar = Sidecar::start(pusher_config(&dir, port)).await;
    let telemetry = 4000u64;
    let mut seq = 0u64;
    let mut client = Client::connect(&sidecar.socket, 7).await;
    for n in 0..telemetry {
        seq += 1;
        client.send(&ev(seq, &format!("plant-{}", n % 4), n)).await;
    }
    client.wait_ack(seq).await;
    until("telemetry starts", || pusher.count("plant-") > 0).await;

    // Alarms arrive while the backlog drains.
    for n in 0..5 {
        seq += 1;
        client.send(&ev(seq, "alarms-1", n)).await;
    }
    client.wait_ack(seq).await;
    until("the first alarms arrive", || pusher.count("alarms-") >= 5).await;
    let behind = pusher.count("plant-");
    assert!(
        (behind as u64) < telemetry / 2,
        "alarms waited for the backlog: {behind} of {telemetry} telemetry events before them"
    );
    let status = sidecar.status().await;
    let names: Vec<&str> = status["sinks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"slow") && names.contains(&"slow:priority"),
        "{names:?}"
    );
    let lanes: Vec<&str> = status["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["lane"].as_str().unwrap())
        .collect();
    assert_eq!(lanes, ["priority", "telemetry"]);

    // More alarms, then kill -9 with both lanes behind.
    for n in 5..10 {
        seq += 1;
        client.send(&ev(seq, "alarms-1", n)).await;
    }
    client.wait_ack(seq).await;
    drop(client);
    sidecar.abort().await;
    assert!(pusher.count("plant-") < telemetry as usize);

    let sidecar = Sidecar::start(pusher_config(&dir, port)).await;
    let mut client = Client::connect(&sidecar.socket, 8).await;
    let mut seq8 = 0u64;
    for n in 10..15 {
        seq8 += 1;
        client
            .send(&event(
                EventId {
                    origin: 8,
                    seq: seq8,
                },
                &["alarms-1"],
                "e",
                None,
                &format!(r#"{{"n":{n}}}"#),
            ))
            .await;
    }
    client.wait_ack(seq8).await;
    until("alarms after the restart arrive", || {
        pusher.first_arrivals().get("alarms-1").map_or(0, Vec::len) == 15
    })
    .await;
    assert!(
        (pusher.count("plant-") as u64) < telemetry,
        "the telemetry backlog was still draining"
    );

    // The target speeds up: everything arrives, nothing lost on either lane,
    // each channel in order.
    pusher.delay_ms.store(0, Ordering::Relaxed);
    until("the telemetry backlog drains", || {
        pusher
            .first_arrivals()
            .iter()
            .filter(|(c, _)| c.starts_with("plant-"))
            .map(|(_, v)| v.len() as u64)
            .sum::<u64>()
            == telemetry
    })
    .await;
    let firsts = pusher.first_arrivals();
    assert_eq!(firsts["alarms-1"], (0..15).collect::<Vec<u64>>());
    for p in 0..4u64 {
        let want: Vec<u64> = (0..telemetry).filter(|n| n % 4 == p).collect();
        assert_eq!(firsts[&format!("plant-{p}")], want, "plant-{p} in order");
    }
    // Repeats only where the status counts them (the kill -9 replay).
    let status = sidecar.status().await;
    let replayed: u64 = status["sinks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "pusher")
        .map(|s| {
            s["replayed_after_restart"].as_u64().unwrap()
                + s["resent_after_unclear_failure"].as_u64().unwrap()
        })
        .sum();
    let received = pusher.got.lock().unwrap().len() as u64;
    assert!(
        received - (telemetry + 15) <= replayed,
        "{} repeats, {replayed} counted",
        received - (telemetry + 15)
    );
    sidecar.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_priority_rule_removed_after_a_run_loses_no_alarm_and_does_not_pin_the_journal() {
    let dir = temp_dir("priority-removed");
    let (pusher, port) = SlowPusher::start(0).await;
    // A run with the rule in which the alarm is never answered, while the
    // telemetry after it is delivered: the priority lane's cursor is behind.
    *pusher.stall.lock().unwrap() = Some("alarms-".into());
    let sidecar = Sidecar::start(pusher_config(&dir, port)).await;
    let mut client = Client::connect(&sidecar.socket, 7).await;
    client.send(&ev(1, "alarms-1", 0)).await;
    client.send(&ev(2, "plant-0", 0)).await;
    client.wait_ack(2).await;
    until("the telemetry arrives", || pusher.count("plant-0") == 1).await;
    drop(client);
    sidecar.abort().await;
    assert_eq!(pusher.count("alarms-"), 0);
    assert!(dir
        .join("data/cursors/pusher-slow.priority.cursor")
        .exists());

    // Next run without the rule: the alarm still arrives, once the stale
    // cursor is folded back; the stale file is gone.
    *pusher.stall.lock().unwrap() = None;
    let mut c = pusher_config(&dir, port);
    c.priority.clear();
    let sidecar = Sidecar::start(c).await;
    until("the alarm and the telemetry arrive", || {
        let f = pusher.first_arrivals();
        f.get("alarms-1").is_some_and(|v| v == &[0]) && f.get("plant-0").is_some_and(|v| v == &[0])
    })
    .await;
    assert!(!dir
        .join("data/cursors/pusher-slow.priority.cursor")
        .exists());
    let status = sidecar.status().await;
    let sinks: Vec<&str> = status["sinks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(sinks, ["throttle", "slow"]);
    // The telemetry in between went again, and is counted as such.
    let slow = &status["sinks"][1];
    assert_eq!(pusher.count("plant-0"), 2);
    assert!(
        slow["replayed_after_restart"].as_u64().unwrap() >= 1,
        "{slow}"
    );
    sidecar.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_channels_bypass_a_matching_throttle_rule() {
    let dir = temp_dir("priority-throttle");
    let redis = Redis::start();
    let mut c = config(&dir, redis.port);
    c.priority = vec!["alarms-*".into()];
    c.throttle = scada_sidecar::throttle::rules::RuleConfig::parse_list("*=1500:latest").unwrap();
    let sidecar = Sidecar::start(c).await;
    let mut sub = redis.subscribe("*").await;
    let mut client = Client::connect(&sidecar.socket, 7).await;
    let mut seq = 0;
    for n in 0..5 {
        seq += 1;
        client.send(&ev(seq, "alarms-1", n)).await;
        seq += 1;
        client.send(&ev(seq, "scada-1", n)).await;
    }
    client.wait_ack(seq).await;
    // Every alarm, in order (a `latest` window would pass only the first and
    // the last); the throttled channel gets its first event at once and its
    // latest at the window's end, after all the alarms.
    let got: Vec<(String, u64)> = sub
        .take(7, WAIT)
        .await
        .iter()
        .map(|(c, m)| {
            let v: Value = serde_json::from_str(m).unwrap();
            (c.clone(), v["data"]["n"].as_u64().unwrap())
        })
        .collect();
    let on = |channel: &str| -> Vec<u64> {
        got.iter()
            .filter(|(c, _)| c == &format!("laravel_database_{channel}"))
            .map(|(_, n)| *n)
            .collect()
    };
    assert_eq!(on("alarms-1"), vec![0, 1, 2, 3, 4], "{got:?}");
    assert_eq!(on("scada-1"), vec![0, 4], "{got:?}");
    assert_eq!(got.last().unwrap().0, "laravel_database_scada-1", "{got:?}");
    assert!(sub.drain(Duration::from_millis(2000)).await.is_empty());
    let status = sidecar.status().await;
    let telemetry = status["sinks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "redis")
        .unwrap()
        .clone();
    assert_eq!(telemetry["throttled"], 5);
    sidecar.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_priority_rule_skips_no_event_of_a_channel_that_changed_lanes() {
    let dir = temp_dir("priority-changed");
    let (pusher, port) = SlowPusher::start(0).await;
    // Run 1, rule `alarms-*`: the telemetry lane (trip-1 among it) is never
    // answered, the alarms after it are: the priority lane is ahead.
    *pusher.stall.lock().unwrap() = Some("trip-".into());
    let sidecar = Sidecar::start(pusher_config(&dir, port)).await;
    let mut client = Client::connect(&sidecar.socket, 7).await;
    let mut seq = 0;
    for n in 0..10 {
        seq += 1;
        client.send(&ev(seq, "trip-1", n)).await;
        seq += 1;
        client.send(&ev(seq, "plant-0", n)).await;
    }
    for n in 0..5 {
        seq += 1;
        client.send(&ev(seq, "alarms-1", n)).await;
    }
    client.wait_ack(seq).await;
    until("the alarms arrive", || pusher.count("alarms-") == 5).await;
    assert_eq!(pusher.count("trip-"), 0);
    drop(client);
    sidecar.abort().await;

    // Run 2, rule `alarms-*,trip-*`: trip-1 moved to the priority lane, whose
    // cursor was past it. Every event still arrives.
    *pusher.stall.lock().unwrap() = None;
    let mut c = pusher_config(&dir, port);
    c.priority = vec!["alarms-*".into(), "trip-*".into()];
    let sidecar = Sidecar::start(c).await;
    until("every event of every channel arrives", || {
        let f = pusher.first_arrivals();
        f.get("trip-1").map_or(0, Vec::len) == 10
            && f.get("plant-0").map_or(0, Vec::len) == 10
            && f.get("alarms-1").map_or(0, Vec::len) == 5
    })
    .await;
    let firsts = pusher.first_arrivals();
    assert_eq!(firsts["trip-1"], (0..10).collect::<Vec<u64>>());
    assert_eq!(firsts["plant-0"], (0..10).collect::<Vec<u64>>());
    // The alarms went again (both lanes resumed where the earlier one was), counted.
    let status = sidecar.status().await;
    let replayed: u64 = status["sinks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "pusher")
        .map(|s| s["replayed_after_restart"].as_u64().unwrap())
        .sum();
    assert!(replayed >= 5, "{status}");
    assert_eq!(
        std::fs::read_to_string(dir.join("data/priority-rules")).unwrap(),
        "alarms-*\ntrip-*\n"
    );
    sidecar.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_both_lanes() {
    let dir = temp_dir("priority-sigterm");
    // 50 ms a request, 10 events each, 2 at a time: 300 events take 0.75 s.
    let (pusher, port) = SlowPusher::start(50).await;
    let sidecar = Sidecar::start(pusher_config(&dir, port)).await;
    let mut client = Client::connect(&sidecar.socket, 7).await;
    let mut seq = 0;
    for n in 0..300 {
        seq += 1;
        client.send(&ev(seq, "plant-0", n)).await;
        if n % 30 == 0 {
            seq += 1;
            client.send(&ev(seq, "alarms-1", n)).await;
        }
    }
    client.wait_ack(seq).await;
    drop(client);
    // Both lanes are behind the slow target now; a graceful stop delivers them.
    assert!(pusher.count("plant-") < 300);
    sidecar.stop().await;
    let firsts = pusher.first_arrivals();
    assert_eq!(firsts["plant-0"], (0..300).collect::<Vec<u64>>());
    assert_eq!(
        firsts["alarms-1"],
        (0..300).step_by(30).collect::<Vec<u64>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_of_the_rules_that_cannot_be_read_stops_the_start_with_the_reason() {
    let dir = temp_dir("priority-record");
    let (_pusher, port) = SlowPusher::start(0).await;
    // Something else where the record goes (EISDIR on read): the lanes'
    // cursors cannot be trusted, so the sidecar does not start on a guess.
    std::fs::create_dir_all(dir.join("data/priority-rules")).unwrap();
    let err = scada_sidecar::run(pusher_config(&dir, port), async {})
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("priority-rules") && err.contains("read"),
        "{err}"
    );
    // Nor when the new record cannot be written (its temporary file is a directory).
    std::fs::remove_dir(dir.join("data/priority-rules")).unwrap();
    std::fs::create_dir_all(dir.join("data/priority-rules.tmp")).unwrap();
    let err = scada_sidecar::run(pusher_config(&dir, port), async {})
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("priority-rules") && err.contains("write"),
        "{err}"
    );
}
