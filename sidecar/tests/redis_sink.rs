//! The sidecar against a real redis-server: Laravel's format, acks,
//! outages, restarts, hostile input, duplicates and orphaned spool files.

mod support;

use std::time::Duration;

use scada_core::EventId;
use support::*;

/// A sink's entry in the status, by name.
fn sink<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status["sinks"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no sink {name} in {status}"))
}

fn id(seq: u64) -> EventId {
    EventId { origin: 0xabc, seq }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_publishes_laravels_redis_broadcaster_format_on_every_channel() {
    let redis = Redis::start();
    let dir = temp_dir("format");
    let sidecar = Sidecar::start(config(&dir, redis.port)).await;
    let mut sub = redis.subscribe("laravel_database_*").await;
    let mut client = Client::connect(&sidecar.socket, 1).await;
    client
        .send(&event(
            id(1),
            &["scada-data"],
            "scada.data.received",
            None,
            r#"{"data":{"v":1.5},"channel":"scada-data"}"#,
        ))
        .await;
    client
        .send(&event(
            id(2),
            &["private-a", "presence-b"],
            "App\\Events\\X",
            Some("12.34"),
            r#"{"k":"\u00e9"}"#,
        ))
        .await;
    client.wait_ack(2).await;
    let got = sub.take(3, Duration::from_secs(5)).await;
    assert_eq!(
        got[0],
        (
            "laravel_database_scada-data".into(),
            r#"{"event":"scada.data.received","data":{"data":{"v":1.5},"channel":"scada-data","socket":null},"socket":null}"#.into()
        )
    );
    let x = r#"{"event":"App\\Events\\X","data":{"k":"\u00e9","socket":"12.34"},"socket":"12.34"}"#;
    assert_eq!(got[1], ("laravel_database_private-a".into(), x.into()));
    assert_eq!(got[2], ("laravel_database_presence-b".into(), x.into()));
    let status = sidecar.status().await;
    assert_eq!(status["ingest"]["events"], 2);
    assert_eq!(sink(&status, "redis")["delivered"], 2);
    assert_eq!(sink(&status, "redis")["messages"], 3);
    sidecar.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_keeps_events_through_a_redis_outage_and_delivers_them_in_order() {
    let mut redis = Redis::start();
    let port = redis.port;
    let dir = temp_dir("outage");
    let sidecar = Sidecar::start(config(&dir, port)).await;
    let mut client = Client::connect(&sidecar.socket, 2).await;
    redis.stop();
    for seq in 1..=500 {
        client
            .send(&event(
                id(seq),
                &["ch"],
                "e",
                None,
                &format!(r#"{{"n":{seq}}}"#),
            ))
            .await;
    }
    // Acked while Redis is down: the journal holds them.
    client.wait_ack(500).await;
    // Long enough for the connection manager's own reconnect attempts to give up.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let redis = Redis::start_on(port);
    let mut sub = redis.subscribe("*").await;
    let got = sub.take(500, Duration::from_secs(15)).await;
    for (i, (_, msg)) in got.iter().enumerate() {
        assert!(
            msg.contains(&format!(r#""n":{},"#, i + 1)),
            "out of order at {i}: {msg}"
        );
    }
    let status = sidecar.status().await;
    assert!(sink(&status, "redis")["retries"].as_u64().unwrap() > 0);
    assert_eq!(sink(&status, "redis")["healthy"], 1);
    sidecar.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_resumes_from_the_journal_after_a_crash() {
    let mut redis = Redis::start();
    let port = redis.port;
    redis.stop();
    let dir = temp_dir("crash");
    let sidecar = Sidecar::start(config(&dir, port)).await;
    let mut client = Client::connect(&sidecar.socket, 3).await;
    for seq in 1..=200 {
        client
            .send(&event(
                id(seq),
                &["ch"],
                "e",
                None,
                &format!(r#"{{"n":{seq}}}"#),
            ))
            .await;
    }
    client.wait_ack(200).await;
    sidecar.abort().await; // like kill -9: no graceful shutdown
    drop(client);
    tokio::time::sleep(Duration::from_millis(100)).await;

    let redis = Redis::start_on(port);
    let mut sub = redis.subscribe("*").await;
    let sidecar = Sidecar::start(config(&dir, port)).await;
    let got = sub.take(200, Duration::from_secs(15)).await;
    for (i, (_, msg)) in got.iter().enumerate() {
        assert!(
            msg.contains(&format!(r#""n":{},"#, i + 1)),
            "out of order at {i}: {msg}"
        );
    }
    // A client re-sending what it never saw acknowledged causes no duplicate.
    let mut client = Client::connect(&sidecar.socket, 3).await;
    client
        .send(&event(id(200), &["ch"], "e", None, r#"{"n":200}"#))
        .await;
    client.wait_ack(1).await;
    assert!(sub.drain(Duration::from_millis(500)).await.is_empty());
    assert_eq!(sidecar.status().await["ingest"]["duplicates"], 1);
    sidecar.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_frames_are_refused_and_counted() {
    let redis = Redis::start();
    let dir = temp_dir("hostile");
    let sidecar = Sidecar::start(config(&dir, redis.port)).await;

    // A declared length over the limit: refused before anything is allocated.
    let mut c = Client::connect(&sidecar.socket, 4).await;
    let mut huge = Vec::new();
    huge.extend_from_slice(&(u32::MAX).to_le_bytes());
    huge.extend_from_slice(&[0; 4]);
    c.send(&huge).await;
    assert!(c.closed().await);

    // Garbage (bad checksum): connection closed.
    let mut c = Client::connect(&sidecar.socket, 5).await;
    let mut bad = event(id(1), &["ch"], "e", None, "{}");
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    c.send(&bad).await;
    assert!(c.closed().await);

    // A well-formed frame with an invalid channel is counted; the stream goes on.
    let mut c = Client::connect(&sidecar.socket, 6).await;
    let mut frame = event(id(1), &["okchannel"], "e", None, "{}");
    let at = frame.windows(9).position(|w| w == b"okchannel").unwrap();
    frame[at + 2] = b' ';
    let body_crc = crc32fast::hash(&frame[8..]);
    frame[4..8].copy_from_slice(&body_crc.to_le_bytes());
    c.send(&frame).await;
    c.send(&event(id(2), &["fine"], "e", None, "{}")).await;
    c.wait_ack(2).await;

    // No handshake at all: closed.
    let mut raw = tokio::net::UnixStream::connect(&sidecar.socket)
        .await
        .unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut raw, &event(id(3), &["x"], "e", None, "{}"))
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read(&mut raw, &mut buf),
    )
    .await
    .unwrap()
    .unwrap_or(0);
    assert_eq!(n, 0);

    let s = sidecar.status().await;
    assert_eq!(s["ingest"]["oversized_frames"], 1);
    assert!(s["ingest"]["protocol_errors"].as_u64().unwrap() >= 2);
    assert_eq!(s["ingest"]["invalid_events"], 1);
    assert_eq!(s["ingest"]["events"], 1);
    sidecar.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphaned_spool_files_are_drained_once() {
    let redis = Redis::start();
    let dir = temp_dir("spool");
    let cfg = config(&dir, redis.port);
    let spool = cfg.server.spool_dir();
    std::fs::create_dir_all(&spool).unwrap();
    let mut file = scada_core::spool::HEADER.to_vec();
    for seq in 1..=50 {
        file.extend(event(
            EventId { origin: 77, seq },
            &["spooled"],
            "e",
            None,
            &format!(r#"{{"n":{seq}}}"#),
        ));
    }
    // Plus a torn frame at the end, as if the writer died mid-write.
    file.extend(
        &event(
            EventId {
                origin: 77,
                seq: 51,
            },
            &["spooled"],
            "e",
            None,
            "{}",
        )[..20],
    );
    std::fs::write(spool.join(scada_core::spool::file_name(77, 999)), &file).unwrap();

    let mut sub = redis.subscribe("*").await;
    let sidecar = Sidecar::start(cfg).await;
    let got = sub.take(50, Duration::from_secs(10)).await;
    assert!(got[49].1.contains(r#""n":50"#));
    assert!(sub.drain(Duration::from_millis(500)).await.is_empty());
    let s = sidecar.status().await;
    assert_eq!(s["ingest"]["spool_events"], 50);
    assert_eq!(s["ingest"]["spool_torn"], 1);
    let left: Vec<_> = std::fs::read_dir(&spool)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != scada_sidecar::ingest::spool::LOCK_FILE)
        .collect();
    assert!(left.is_empty(), "spool file removed: {left:?}");
    sidecar.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sidecar_refuses_a_socket_in_use_and_stale_sockets_are_replaced() {
    let redis = Redis::start();
    let dir = temp_dir("hygiene");
    let cfg = config(&dir, redis.port);
    let first = Sidecar::start(cfg.clone()).await;
    // Another sidecar with its own data directory, on the same socket.
    let mut other = cfg.clone();
    other.server.data_dir = dir.join("data-2");
    let err = scada_sidecar::run(other, async {}).await.unwrap_err();
    assert!(err.to_string().contains("already listening"), "{err}");
    first.abort().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The crashed sidecar left its socket file behind; a new one replaces it.
    assert!(cfg.server.socket.exists());
    let second = Sidecar::start(cfg.clone()).await;
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&cfg.server.socket).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o660);
    second.stop().await;
}

/// `HGETALL key` on the test's redis-server, fields sorted.
fn hgetall(port: u16, key: &str) -> Vec<(String, String)> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut conn = client.get_connection().unwrap();
    let mut v: Vec<(String, String)> = redis::cmd("HGETALL").arg(key).query(&mut conn).unwrap();
    v.sort();
    v
}

fn keys(port: u16, pattern: &str) -> Vec<String> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut conn = client.get_connection().unwrap();
    let mut v: Vec<String> = redis::cmd("KEYS").arg(pattern).query(&mut conn).unwrap();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_last_value_each_channel_keeps_its_latest_message_per_event_in_a_hash() {
    let redis = Redis::start();
    let dir = temp_dir("last-value-key");
    let mut c = config(&dir, redis.port);
    let r = c.redis.as_mut().unwrap();
    r.last_value = true;
    r.prefix = "myapp_database_".into();
    let sidecar = Sidecar::start(c).await;
    let mut sub = redis.subscribe("myapp_database_*").await;
    let mut client = Client::connect(&sidecar.socket, 7).await;
    let sends = [
        (&["plant-1"][..], "temp", r#"{"v":1}"#),
        (&["plant-1"][..], "temp", r#"{"v":2}"#),
        (&["plant-1", "plant-2"][..], "alarm", r#"{"on":true}"#),
        (&["plant-2"][..], "App\\Events\\X:y", r#"{"k":"é"}"#),
    ];
    for (seq, (channels, name, payload)) in sends.iter().enumerate() {
        client
            .send(&event(id(100 + seq as u64), channels, name, None, payload))
            .await;
    }
    client.wait_ack(4).await;
    let published = sub.take(5, Duration::from_secs(5)).await;
    // The key holds exactly what was PUBLISHed last for that (channel, event).
    let msg = |ch: &str, needle: &str| -> String {
        published
            .iter()
            .rev()
            .find(|(c, m)| c == &format!("myapp_database_{ch}") && m.contains(needle))
            .unwrap()
            .1
            .clone()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while hgetall(redis.port, "myapp_database_scada:last:plant-2").len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the hash is written with the PUBLISH"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        hgetall(redis.port, "myapp_database_scada:last:plant-1"),
        [
            ("alarm".to_string(), msg("plant-1", "alarm")),
            ("temp".to_string(), msg("plant-1", r#""v":2"#)),
        ]
    );
    assert!(msg("plant-1", r#""v":2"#).contains(r#""data":{"v":2,"socket":null}"#));
    assert_eq!(
        hgetall(redis.port, "myapp_database_scada:last:plant-2"),
        [
            ("App\\Events\\X:y".to_string(), msg("plant-2", "App")),
            ("alarm".to_string(), msg("plant-2", "alarm")),
        ]
    );
    assert_eq!(
        keys(redis.port, "*scada:last:*"),
        [
            "myapp_database_scada:last:plant-1",
            "myapp_database_scada:last:plant-2"
        ]
    );
    // The PUBLISH count is unchanged by the HSETs.
    assert_eq!(sink(&sidecar.status().await, "redis")["messages"], 5);
    sidecar.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_last_value_no_key_is_written() {
    let redis = Redis::start();
    let dir = temp_dir("no-last-value-key");
    let sidecar = Sidecar::start(config(&dir, redis.port)).await;
    let mut sub = redis.subscribe("laravel_database_*").await;
    let mut client = Client::connect(&sidecar.socket, 8).await;
    client
        .send(&event(id(200), &["plant-1"], "temp", None, r#"{"v":1}"#))
        .await;
    client.wait_ack(1).await;
    assert_eq!(sub.take(1, Duration::from_secs(5)).await.len(), 1);
    assert!(
        keys(redis.port, "*").is_empty(),
        "PUBLISH only: {:?}",
        keys(redis.port, "*")
    );
    sidecar.stop().await;
}
