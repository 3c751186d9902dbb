//! Fault injection at every I/O call on the durability path (journal write,
//! fsync, truncate, create, read, unlink; cursor write; spool read, unlink,
//! rename; loss records; the lock; acks), with a real redis-server: each test
//! makes a call fail (ENOSPC, EIO, EROFS, EACCES), tries to lose something,
//! and counts every event end to end. Failpoints are process-wide, so every
//! test holds a `FailScenario` (they run one at a time).

mod support;

use std::future::Future;
use std::time::Duration;

use fail::FailScenario;
use scada_core::EventId;
use scada_sidecar::config::Config;
use scada_sidecar::failpoint;
use scada_sidecar::throttle::rules::RuleConfig;
use support::*;

const ERRNOS: [&str; 4] = ["ENOSPC", "EIO", "EROFS", "EACCES"];

/// A failpoint action that fails `times` calls with each errno in turn
/// (`1*return(ENOSPC)->1*return(EIO)->...`), so one scenario meets all of
/// them at the same call. `then_forever`: the last errno keeps failing until
/// the failpoint is removed.
fn each_errno(times: usize, then_forever: bool) -> String {
    let mut steps: Vec<String> = ERRNOS
        .iter()
        .map(|errno| format!("{times}*return({errno})"))
        .collect();
    if then_forever {
        steps.push(format!("return({})", ERRNOS[ERRNOS.len() - 1]));
    }
    steps.join("->")
}

fn id(origin: u64, seq: u64) -> EventId {
    EventId { origin, seq }
}

fn events(origin: u64, seqs: std::ops::RangeInclusive<u64>, channel: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for seq in seqs {
        out.extend(event(
            id(origin, seq),
            &[channel],
            "e",
            None,
            &format!(r#"{{"n":{seq}}}"#),
        ));
    }
    out
}

/// Enough events (about 1.4 MB) to need a second 1 MiB segment.
const TWO_SEGMENTS: u64 = 20_000;

async fn send_two_segments(client: &mut Client, origin: u64, channel: &str) {
    for first in (1..=TWO_SEGMENTS).step_by(1000) {
        client
            .send(&events(origin, first..=first + 999, channel))
            .await;
    }
}

fn one_mib_segments(cfg: &mut Config) {
    cfg.journal.segment_bytes = 1 << 20;
}

/// A sidecar (configured by `tweak`) on a real redis-server, and a
/// subscriber to every broadcast channel. Redis stops when it is dropped.
struct Stack {
    _redis: Redis,
    sidecar: Sidecar,
    sub: Subscriber,
    cfg: Config,
}

async fn stack(name: &str, tweak: impl FnOnce(&mut Config)) -> Stack {
    let redis = Redis::start();
    let mut cfg = config(&temp_dir(name), redis.port);
    tweak(&mut cfg);
    let sidecar = Sidecar::start(cfg.clone()).await;
    let sub = redis.subscribe("laravel_database_*").await;
    Stack {
        _redis: redis,
        sidecar,
        sub,
        cfg,
    }
}

fn sink<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status["sinks"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no sink {name} in {status}"))
}

/// Waits until `probe` is true (fails after `secs`).
async fn until<F, Fut>(secs: u64, what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !probe().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `n` values of the messages, in arrival order.
fn ns(msgs: &[(String, String)]) -> Vec<u64> {
    msgs.iter()
        .map(|(_, m)| {
            let v: serde_json::Value = serde_json::from_str(m).unwrap();
            v["data"]["n"].as_u64().unwrap()
        })
        .collect()
}

fn u(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_journal_write_is_not_acknowledged_and_its_resend_is_not_a_duplicate() {
    let scenario = FailScenario::setup();
    let Stack {
        _redis,
        sidecar,
        mut sub,
        ..
    } = stack("fault-write", |_| {}).await;
    let mut want = Vec::new();
    for (round, errno) in ERRNOS.iter().enumerate() {
        let origin = 100 + round as u64;
        fail::cfg(failpoint::JOURNAL_WRITE, &format!("return({errno})")).unwrap();
        let mut client = Client::connect(&sidecar.socket, origin).await;
        client.send(&events(origin, 1..=100, "w")).await;
        assert!(
            !client.acked_within(1, Duration::from_millis(400)).await,
            "{errno}: nothing may be acknowledged that is not journaled"
        );
        let s = sidecar.status().await;
        assert_eq!(s["journal"]["writable"], 0, "{errno}");
        // PHP gives up on this connection and resends on a new one, as it
        // does after its unacknowledged budget: before the fix, the ids were
        // remembered before the failed append and the resend was dropped as
        // "duplicates" and acknowledged, silently lost.
        drop(client);
        fail::remove(failpoint::JOURNAL_WRITE);
        let mut client = Client::connect(&sidecar.socket, origin).await;
        client.send(&events(origin, 1..=100, "w")).await;
        client.wait_ack(100).await;
        want.extend(1..=100u64);
    }
    let got = sub.take(400, Duration::from_secs(15)).await;
    assert_eq!(ns(&got), want, "every event once, in order");
    let s = sidecar.status().await;
    assert_eq!(u(&s["ingest"]["events"]), 400, "each journaled once");
    assert_eq!(s["journal"]["writable"], 1);
    assert!(u(&s["ingest"]["journal_errors"]) >= 4);
    assert!(sub.drain(Duration::from_millis(300)).await.is_empty());
    sidecar.stop().await;
    drop(scenario);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_connection_resumes_by_itself_when_the_journal_is_writable_again() {
    let scenario = FailScenario::setup();
    let Stack {
        _redis,
        sidecar,
        mut sub,
        ..
    } = stack("fault-pause", |_| {}).await;
    let mut client = Client::connect(&sidecar.socket, 7).await;
    fail::cfg(failpoint::JOURNAL_WRITE, "return(ENOSPC)").unwrap();
    client.send(&events(7, 1..=300, "p")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let s = sidecar.status().await;
    assert_eq!(u(&s["ingest"]["events"]), 0);
    assert!(u(&s["ingest"]["journal_pauses"]) >= 1);
    assert_eq!(
        u(&s["ingest"]["connections_active"]),
        1,
        "paused, not closed"
    );
    fail::remove(failpoint::JOURNAL_WRITE);
    // Same connection, no resend: the pending chunk is retried.
    client.wait_ack(300).await;
    assert_eq!(
        ns(&sub.take(300, Duration::from_secs(10)).await),
        (1..=300).collect::<Vec<_>>()
    );
    sidecar.stop().await;
    drop(scenario);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fsync_is_not_acknowledged_and_leaves_nothing_behind() {
    let scenario = FailScenario::setup();
    let Stack {
        _redis,
        sidecar,
        mut sub,
        ..
    } = stack("fault-fsync", |c| c.journal.fsync = true).await;
    for (round, errno) in ERRNOS.iter().enumerate() {
        let origin = 200 + round as u64;
        let mut client = Client::connect(&sidecar.socket, origin).await;
        fail::cfg(failpoint::JOURNAL_FSYNC, &format!("return({errno})")).unwrap();
        client.send(&events(origin, 1..=50, "f")).await;
        assert!(
            !client.acked_within(1, Duration::from_millis(300)).await,
            "{errno}"
        );
        fail::remove(failpoint::JOURNAL_FSYNC);
        client.wait_ack(50).await;
    }
    let got = sub.take(200, Duration::from_secs(10)).await;
    assert_eq!(ns(&got), (0..4).flat_map(|_| 1..=50u64).collect::<Vec<_>>());
    // The failed appends were cut: nothing but these 200 events is journaled.
    assert!(sub.drain(Duration::from_millis(300)).await.is_empty());
    let s = sidecar.status().await;
    assert_eq!(u(&s["ingest"]["events"]), 200);
    sidecar.stop().await;
    drop(scenario);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_cut_after_a_partial_write_is_repaired_before_the_next_write() {
    let scenario = FailScenario::setup();
    let Stack {
        _redis,
        sidecar,
        mut sub,
        cfg,
        ..
    } = stack("fault-truncate", |_| {}).await;
    let mut client = Client::connect(&sidecar.socket, 9).await;
    // The write fails after writing half (as ENOSPC does), and so does the
    // cut: half a chunk of garbage sits at the end of the segment.
    fail::cfg(failpoint::JOURNAL_WRITE, "1*return(ENOSPC)").unwrap();
    fail::cfg(failpoint::JOURNAL_TRUNCATE, &each_errno(1, false)).unwrap();
    client.send(&events(9, 1..=100, "t")).await;
    client.wait_ack(100).await;
    client.send(&events(9, 101..=150, "t")).await;
    client.wait_ack(150).await;
    let got = sub.take(150, Duration::from_secs(10)).await;
    assert_eq!(ns(&got), (1..=150).collect::<Vec<_>>());
    // After a crash, the journal holds exactly these frames: no damage, no tail.
    sidecar.abort().await;
    drop(client);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sidecar = Sidecar::start(cfg).await;
    let s = sidecar.status().await;
    assert_eq!(s["journal"]["corrupt_frames"], 0);
    assert_eq!(s["journal"]["torn_bytes"], 0);
    sidecar.stop().await;
    drop(scenario);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_that_cannot_be_created_pauses_ingest_until_it_can_be() {
    let scenario = FailScenario::setup();
    let Stack {
        _redis,
        sidecar,
        mut sub,
        ..
    } = stack("fault-create", one_mib_segments).await;
    // Four attempts fail, one with each errno (~0.5 s of backoff), then the roll succeeds.
    fail::cfg(failpoint::JOURNAL_CREATE, &each_errno(1, false)).unwrap();
    let mut client = Client::connect(&sidecar.socket, 11).await;
    // About 1.4 MB: the second segment is needed on the way.
    let total = TWO_SEGMENTS;
    send_two_segments(&mut client, 11, "c").await;
    client.wait_ack(total).await;
    let got = sub.take(total as usize, Duration::from_secs(20)).await;
    assert_eq!(ns(&got), (1..=total).collect::<Vec<_>>());
    let s = sidecar.status().await;
    assert_eq!(
        u(&s["ingest"]["journal_errors"]),
        ERRNOS.len() as u64,
        "{s}"
    );
    assert!(u(&s["ingest"]["journal_pauses"]) >= 1);
    assert_eq!(u(&s["ingest"]["events"]), total);
    assert_eq!(s["journal"]["writable"], 1);
    sidecar.stop().await;
    drop(scenario);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_that_cannot_be_deleted_stays_readable_and_is_retried() {
    let scenario = FailScenario::setup();
    let Stack {
        _redis,
        sidecar,
        mut sub,
        ..
    } = stack("fault-unlink", one_mib_segments).await;
    fail::cfg(failpoint::JOURNAL_UNLINK, &each_errno(1, true)).unwrap();
    let mut client = Client::connect(&sidecar.socket, 12).await;
    let total = TWO_SEGMENTS;
    send_two_segments(&mut client, 12, "u").await;
    client.wait_ack(total).await;
    sub.take(total as usize, Duration::from_secs(20)).await;
    until(10, "a failed delete with each errno", || async {
        u(&sidecar.status().await["journal"]["errors"]) > ERRNOS.len() as u64
    })
    .await;
    let s = sidecar.status().await;
    assert!(u(&s["journal"]["segments"]) >= 2, "kept: {s}");
    fail::remove(failpoint::JOURNAL_UNLINK);
    until(10, "the delivered segment to be deleted", || async {
        sidecar.status().await["journal"]["segments"] == 1
    })
    .await;
    sidecar.stop().await;
    drop(scenario);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_read_error_is_retried_and_skips_nothing() {
    let scenario = FailScenario::setup();
    let mut redis = Redis::start();
    let port = redis.port;
    redis.stop();
    let dir = temp_dir("fault-read");
    let mut cfg = config(&dir, port);
    cfg.journal.memory_bytes = 1; // every read goes to the disk
    let sidecar = Sidecar::start(cfg).await;
    let mut client = Client::connect(&sidecar.socket, 13).await;
    for round in 0..5 {
        let first = round * 100 + 1;
        client.send(&events(13, first..=first + 99, "r")).await;
        client.wait_ack(first + 99).await;
    }
    fail::cfg(failpoint::JOURNAL_READ, &each_errno(1, true)).unwrap();
    let redis = Redis::start_on(port);
    let mut sub = redis.subscribe("laravel_database_*").await;
    // What the sink had read before the failure (from memory) goes out; the
    // rest is on disk, which cannot be read now: it waits, nothing is skipped.
    let early = sub.drain(Duration::from_millis(1500)).await;
    assert!(early.len() < 500, "some events must wait for the disk");
    until(10, "a failed read with each errno", || async {
        u(&sidecar.status().await["journal"]["errors"]) > ERRNOS.len() as u64
    })
    .await;
    fail::remove(failpoint::JOURNAL_READ);
    let mut got = early;
    got.extend(sub.take(500 - got.len(), Duration::from_secs(15)).await);
    assert_eq!(ns(&got), (1..=500).collect::<Vec<_>>());
    sidecar.stop().await;
    drop(scenario);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_that_cannot_be_persisted_holds_its_data_on_disk() {
    let scenario = FailScenario::setup();
    let Stack {
        _redis,
        sidecar,
        mut sub,
        cfg,
        ..
    } = stack("fault-cursor", one_mib_segments).await;
    fail::cfg(failpoint::CURSOR_WRITE, &each_errno(1, true)).unwrap();
    let mut client = Client::connect(&sidecar.socket, 14).await;
    let total = TWO_SEGMENTS;
    send_two_segments(&mut client, 14, "k").await;
    client.wait_ack(total).await;
    sub.take(total as usize, Duration::from_secs(20)).await;
    until(10, "a failed cursor write with each errno", || async {
        u(&sink(&sidecar.status().await, "redis")["cursor_errors"]) > ERRNOS.len() as u64
    })
    .await;
    let s = sidecar.status().await;
    assert!(
        u(&s["journal"]["segments"]) >= 2,
        "delivered but not persisted: kept ({s})"
    );
    // Crash: the next start delivers them again (at least once), never loses them.
    sidecar.abort().await;
    drop(client);
    fail::remove(failpoint::CURSOR_WRITE);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sidecar = Sidecar::start(cfg).await;
    let again = sub.take(total as usize, Duration::from_secs(20)).await;
    assert_eq!(ns(&again), (1..=total).collect::<Vec<_>>());
    sidecar.stop().await;
    drop(scenario);
}

/// An orphaned spool file of `origin` with `n` events.
fn spool_file(dir: &std::path::Path, origin: u64, n: u64) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let mut file = scada_core::spool::HEADER.to_vec();
    file.extend(events(origin, 1..=n, "s"));
    let path = dir.join(scada_core::spool::file_name(origin, 4242));
    std::fs::write(&path, &file).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_drain_the_journal_refuses_keeps_its_file_and_loses_nothing() {
    let scenario = FailScenario::setup();
    let redis = Redis::start();
    let dir = temp_dir("fault-drain");
    let cfg = config(&dir, redis.port);
    let path = spool_file(&cfg.server.spool_dir(), 21, 50);
    fail::cfg(failpoint::JOURNAL_WRITE, "return(ENOSPC)").unwrap();
    let mut sub = redis.subscribe("laravel_database_*").await;
    let sidecar = Sidecar::start(cfg).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(path.exists(), "not drained, not deleted");
    let s = sidecar.status().await;
    assert_eq!(
        (
            u(&s["ingest"]["spool_files"]),
            u(&s["ingest"]["duplicates"])
        ),
        (0, 0)
    );
    // Before the fix, the retry found every id "seen", logged the file as
    // drained and deleted it: all 50 lost.
    fail::remove(failpoint::JOURNAL_WRITE);
    let got = sub.take(50, Duration::from_secs(10)).await;
    assert_eq!(ns(&got), (1..=50).collect::<Vec<_>>());
    until(5, "the file to be removed", || async { !path.exists() }).await;
    let s = sidecar.status().await;
    assert_eq!(
        (
            u(&s["ingest"]["spool_events"]),
            u(&s["ingest"]["duplicates"])
        ),
        (50, 0)
    );
    sidecar.stop().await;
    drop(scenario);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spool_read_unlink_and_rename_failures_keep_the_file_and_lose_nothing() {
    let scenario = FailScenario::setup();
    let redis = Redis::start();
    let dir = temp_dir("fault-spool");
    let cfg = config(&dir, redis.port);
    let spool = cfg.server.spool_dir();
    let path = spool_file(&spool, 31, 40);
    let bad = spool.join(scada_core::spool::file_name(32, 1));
    std::fs::write(&bad, b"not a spool file at all").unwrap();
    fail::cfg(failpoint::SPOOL_READ, &each_errno(1, true)).unwrap();
    fail::cfg(failpoint::SPOOL_RENAME, &each_errno(1, true)).unwrap();
    let mut sub = redis.subscribe("laravel_database_*").await;
    let sidecar = Sidecar::start(cfg).await;
    until(5, "spool errors", || async {
        // Each errno at the read of the good file and at the rename of the bad one.
        u(&sidecar.status().await["ingest"]["spool_errors"]) > 2 * ERRNOS.len() as u64
    })
    .await;
    assert!(path.exists() && bad.exists());
    assert!(sub.drain(Duration::from_millis(200)).await.is_empty());
    // Reads work again; the unlink after draining fails once with each errno:
    // each following pass finds only duplicates, the last removes the file.
    fail::cfg(failpoint::SPOOL_UNLINK, &each_errno(1, false)).unwrap();
    fail::remove(failpoint::SPOOL_READ);
    fail::remove(failpoint::SPOOL_RENAME);
    let got = sub.take(40, Duration::from_secs(10)).await;
    assert_eq!(ns(&got), (1..=40).collect::<Vec<_>>());
    until(5, "the drained file to be removed", || async {
        !path.exists()
    })
    .await;
    until(5, "the bad file to be moved aside", || async {
        !bad.exists() && bad.with_extension("bad").exists()
    })
    .await;
    assert!(
        sub.drain(Duration::from_millis(300)).await.is_empty(),
        "delivered once"
    );
    let s = sidecar.status().await;
    assert_eq!(u(&s["ingest"]["spool_events"]), 40, "{s}");
    assert_eq!(
        u(&s["ingest"]["duplicates"]),
        40 * ERRNOS.len() as u64,
        "each pass after a failed unlink found only duplicates"
    );
    sidecar.stop().await;
    drop(scenario);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loss_records_are_counted_once_even_when_they_cannot_be_removed() {
    let scenario = FailScenario::setup();
    let redis = Redis::start();
    let dir = temp_dir("fault-loss");
    let cfg = config(&dir, redis.port);
    let spool = cfg.server.spool_dir();
    std::fs::create_dir_all(&spool).unwrap();
    let record = scada_core::spool::LossRecord {
        origin: 0xfeed,
        pid: 77,
        seq: 1,
        events: 1234,
        reason: scada_core::spool::LossReason::NoDestination,
    };
    let path = spool.join(record.file_name());
    std::fs::write(&path, b"1234 events: spool full\n").unwrap();
    fail::cfg(failpoint::LOSS_UNLINK, "return(EACCES)").unwrap();
    let sidecar = Sidecar::start(cfg).await;
    until(5, "the loss record to be counted", || async {
        sidecar.status().await["ingest"]["php_lost_events"] == 1234
    })
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await; // several passes
    assert!(path.exists());
    let s = sidecar.status().await;
    assert_eq!(s["ingest"]["php_lost_events"], 1234, "counted once");
    assert_eq!(
        s["ingest"]["php_lost_events_by_reason"]["no_destination"],
        1234
    );
    fail::remove(failpoint::LOSS_UNLINK);
    until(5, "the loss record to be removed", || async {
        !path.exists()
    })
    .await;
    let metrics = sidecar.get("/metrics").await;
    assert!(
        metrics.contains("scada_php_lost_events{reason=\"no_destination\"} 1234"),
        "{metrics}"
    );
    assert_eq!(sidecar.status().await["ingest"]["php_lost_events"], 1234);
    sidecar.stop().await;
    drop(scenario);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_ack_costs_a_resend_not_an_event() {
    let scenario = FailScenario::setup();
    let Stack {
        _redis,
        sidecar,
        mut sub,
        ..
    } = stack("fault-ack", |_| {}).await;
    fail::cfg(failpoint::ACK_WRITE, "1*return(EIO)").unwrap();
    let mut client = Client::connect(&sidecar.socket, 41).await;
    client.send(&events(41, 1..=100, "a")).await;
    assert!(client.closed().await, "the connection ends without an ack");
    let mut client = Client::connect(&sidecar.socket, 41).await;
    client.send(&events(41, 1..=100, "a")).await;
    client.wait_ack(100).await;
    // Each file in order; files (origins) in any order.
    let mut got = ns(&sub.take(100, Duration::from_secs(10)).await);
    got.sort_unstable();
    assert_eq!(got, (1..=100).collect::<Vec<_>>());
    assert!(sub.drain(Duration::from_millis(300)).await.is_empty());
    assert_eq!(sidecar.status().await["ingest"]["duplicates"], 100);
    sidecar.stop().await;
    drop(scenario);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_directory_lock_names_its_holder_and_a_lock_error_stops_the_start() {
    let scenario = FailScenario::setup();
    let redis = Redis::start();
    let dir = temp_dir("fault-lock");
    let cfg = config(&dir, redis.port);
    let first = Sidecar::start(cfg.clone()).await;
    // A second sidecar on the same data directory with its own socket.
    let mut second = cfg.clone();
    second.server.socket = dir.join("run2/sidecar.sock");
    let err = scada_sidecar::run(second.clone(), async {})
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("pid={}", std::process::id()))
            && msg.contains(&cfg.server.socket.display().to_string()),
        "{msg}"
    );
    assert!(!second.server.socket.exists(), "it stopped before binding");
    first.stop().await;
    fail::cfg(failpoint::LOCK, "return(EACCES)").unwrap();
    let err = scada_sidecar::run(cfg.clone(), async {}).await.unwrap_err();
    assert!(err.to_string().contains("cannot lock"), "{err}");
    drop(scenario);
}

/// A stack aggregating `agg-*` whose journal takes ingest's first append
/// and refuses every one after it (the throttle stage's outputs), with one
/// acknowledged input from `origin`.
async fn a_throttled_input_whose_output_is_refused(name: &str, origin: u64) -> (Stack, Client) {
    let stack = stack(name, |c| {
        c.throttle = RuleConfig::parse_list("agg-*=200:aggregate").unwrap()
    })
    .await;
    fail::cfg(failpoint::JOURNAL_WRITE, "1*off->return(ENOSPC)").unwrap();
    let mut client = Client::connect(&stack.sidecar.socket, origin).await;
    client
        .send(&event(
            id(origin, 1),
            &["agg-1"],
            "scada.data.received",
            None,
            r#"{"data":{"v":4.5}}"#,
        ))
        .await;
    client.wait_ack(1).await;
    (stack, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_output_the_journal_refuses_is_retried_not_dropped() {
    let scenario = FailScenario::setup();
    // The first append (ingest's) passes, the throttle stage's leading-edge
    // output fails: before the fix it was logged, dropped, and the cursor
    // moved past its input.
    let (
        Stack {
            _redis,
            sidecar,
            mut sub,
            ..
        },
        _client,
    ) = a_throttled_input_whose_output_is_refused("fault-throttle", 51).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(sub.drain(Duration::from_millis(50)).await.is_empty());
    fail::remove(failpoint::JOURNAL_WRITE);
    let got = sub.take(1, Duration::from_secs(10)).await;
    let v: serde_json::Value = serde_json::from_str(&got[0].1).unwrap();
    assert_eq!(v["data"]["data"]["v"]["count"], 1, "{v}");
    assert!(sub.drain(Duration::from_millis(500)).await.is_empty());
    sidecar.stop().await;
    drop(scenario);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_slow_fsync_blocks_neither_readers_nor_the_runtime_and_acks_wait_for_it() {
    let scenario = FailScenario::setup();
    let Stack {
        _redis, sidecar, ..
    } = stack("fault-slow-fsync", |c| c.journal.fsync = true).await;
    // Each fsync takes 1.5 s (a slow disk). Before the fix it ran under the
    // journal's lock on the runtime thread: the status endpoint (which reads
    // the journal head) and every sink stalled with it.
    fail::cfg(failpoint::JOURNAL_FSYNC, "sleep(1500)").unwrap();
    let mut client = Client::connect(&sidecar.socket, 61).await;
    client.send(&events(61, 1..=10, "y")).await;
    tokio::time::sleep(Duration::from_millis(200)).await; // the fsync is under way
    let t = std::time::Instant::now();
    let s = sidecar.status().await;
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "status took {:?} during an fsync",
        t.elapsed()
    );
    assert_eq!(s["ingest"]["events"], 0, "not counted before it is durable");
    assert!(
        !client.acked_within(10, Duration::from_millis(500)).await,
        "no ack before the fsync returned"
    );
    fail::remove(failpoint::JOURNAL_FSYNC);
    client.wait_ack(10).await;
    sidecar.stop().await;
    drop(scenario);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_file_replaced_after_it_was_opened_is_not_drained_or_deleted_by_mistake() {
    let scenario = FailScenario::setup();
    let redis = Redis::start();
    let dir = temp_dir("fault-inode");
    let cfg = config(&dir, redis.port);
    let spool = cfg.server.spool_dir();
    let path = spool_file(&spool, 71, 30);
    // Between the drain's open and its lock, the owner rewrites the file
    // (as the extension's prepend does: old events first, then new ones)
    // and renames the new one over the path.
    let replaced = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let (path, replaced) = (path.clone(), replaced.clone());
        fail::cfg_callback(failpoint::SPOOL_LOCKED, move || {
            if !replaced.swap(true, std::sync::atomic::Ordering::SeqCst) {
                let mut file = scada_core::spool::HEADER.to_vec();
                file.extend(events(71, 1..=60, "s"));
                let tmp = path.with_extension("tmp");
                std::fs::write(&tmp, &file).unwrap();
                std::fs::rename(&tmp, &path).unwrap();
            }
        })
        .unwrap();
    }
    let mut sub = redis.subscribe("laravel_database_*").await;
    let sidecar = Sidecar::start(cfg).await;
    // Before the fix, the drain read the old file's 30 events and then
    // deleted the path: the new file, and events 31..60 with it.
    let got = sub.take(60, Duration::from_secs(10)).await;
    assert_eq!(ns(&got), (1..=60).collect::<Vec<_>>());
    assert!(replaced.load(std::sync::atomic::Ordering::SeqCst));
    until(5, "the new file to be drained and removed", || async {
        !path.exists()
    })
    .await;
    assert!(sub.drain(Duration::from_millis(300)).await.is_empty());
    sidecar.stop().await;
    drop(scenario);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_that_cannot_be_opened_stops_the_start_and_keeps_its_data() {
    let scenario = FailScenario::setup();
    let Stack {
        _redis,
        sidecar,
        mut sub,
        cfg,
    } = stack("fault-open", |_| {}).await;
    let mut client = Client::connect(&sidecar.socket, 81).await;
    client.send(&events(81, 1..=100, "o")).await;
    client.wait_ack(100).await;
    sub.take(100, Duration::from_secs(10)).await;
    sidecar.stop().await;
    for errno in ERRNOS {
        fail::cfg(failpoint::JOURNAL_OPEN, &format!("return({errno})")).unwrap();
        let err = scada_sidecar::run(cfg.clone(), async {}).await.unwrap_err();
        assert!(
            err.to_string().contains("cannot open the journal"),
            "{errno}: {err}"
        );
    }
    fail::remove(failpoint::JOURNAL_OPEN);
    let sidecar = Sidecar::start(cfg).await;
    assert!(
        u(&sidecar.status().await["journal"]["head"]) > 0,
        "the journal is intact"
    );
    sidecar.stop().await;
    drop(scenario);
}

/// The throttle stage's persisted cursor must stay before an input whose
/// window output could not be journaled: a crash while the journal keeps
/// refusing that output must not lose the window. Before the fix (the cursor
/// ignored the unjournaled outputs' oldest input) the restarted stage began
/// after the input: "received 0 of 1".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_while_a_throttled_output_is_refused_loses_nothing() {
    let scenario = FailScenario::setup();
    let (
        Stack {
            _redis,
            sidecar,
            mut sub,
            cfg,
        },
        client,
    ) = a_throttled_input_whose_output_is_refused("fault-throttle-crash", 52).await;
    // The stage read the input and has been refused (it persists its cursor
    // while it retries, the window long closed).
    until(5, "the throttle stage to be refused", || async {
        u(&sink(&sidecar.status().await, "throttle")["retries"]) >= 3
    })
    .await;
    sidecar.abort().await;
    drop(client);
    fail::remove(failpoint::JOURNAL_WRITE);
    let sidecar = Sidecar::start(cfg).await;
    let got = sub.take(1, Duration::from_secs(10)).await;
    let v: serde_json::Value = serde_json::from_str(&got[0].1).unwrap();
    assert_eq!(v["data"]["data"]["v"]["count"], 1, "{v}");
    sidecar.stop().await;
    drop(scenario);
}

/// With `fsync = false` (the default) a journal append reaches the page
/// cache only, so a drained spool file may be the only copy on disk: it is
/// removed only after the journal is synced. Before the fix it was unlinked
/// right after the append (the sync never ran: the file was gone here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_spool_file_stays_until_the_journal_is_synced_to_disk() {
    let scenario = FailScenario::setup();
    let redis = Redis::start();
    let dir = temp_dir("fault-spool-sync");
    let cfg = config(&dir, redis.port);
    assert!(!cfg.journal.fsync);
    let spool = cfg.server.spool_dir();
    let mut sub = redis.subscribe("laravel_database_*").await;
    let sidecar = Sidecar::start(cfg).await;
    let mut want = Vec::new();
    for (round, errno) in ERRNOS.iter().enumerate() {
        fail::cfg(failpoint::JOURNAL_FSYNC, &format!("return({errno})")).unwrap();
        let errors = u(&sidecar.status().await["ingest"]["spool_errors"]);
        let first = 1 + 40 * round as u64;
        let path = spool_file_of(&spool, 90 + round as u64, first..=first + 39);
        want.extend(first..=first + 39);
        // Journaled (and so delivered), but not on disk yet: the file stays.
        assert_eq!(
            ns(&sub.take(40, Duration::from_secs(10)).await),
            (first..=first + 39).collect::<Vec<_>>()
        );
        until(5, "the failed sync to be counted", || async {
            u(&sidecar.status().await["ingest"]["spool_errors"]) >= errors + 2
        })
        .await;
        assert!(path.exists(), "{errno}: the only copy on disk was deleted");
        fail::remove(failpoint::JOURNAL_FSYNC);
        until(5, "the file to be removed", || async { !path.exists() }).await;
    }
    let s = sidecar.status().await;
    assert_eq!(u(&s["ingest"]["spool_events"]), 160, "{s}");
    assert_eq!(u(&s["ingest"]["spool_files"]), 4, "{s}");
    assert!(u(&s["journal"]["errors"]) >= 8, "{s}");
    assert!(sub.drain(Duration::from_millis(300)).await.is_empty());
    sidecar.stop().await;
    drop(scenario);
}

/// An orphaned spool file of `origin` holding `seqs`, written under another
/// name and renamed into place (a running drainer never sees half of it).
fn spool_file_of(
    dir: &std::path::Path,
    origin: u64,
    seqs: std::ops::RangeInclusive<u64>,
) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let mut file = scada_core::spool::HEADER.to_vec();
    file.extend(events(origin, seqs, "s"));
    let path = dir.join(scada_core::spool::file_name(origin, 4242));
    let tmp = dir.join(format!(".{origin}.tmp"));
    std::fs::write(&tmp, &file).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    path
}

/// A loss record of `events` events from `origin`.
fn loss_record(dir: &std::path::Path, origin: u64, events: u64) -> std::path::PathBuf {
    let record = scada_core::spool::LossRecord {
        origin,
        pid: 77,
        seq: 1,
        events,
        reason: scada_core::spool::LossReason::NoDestination,
    };
    let path = dir.join(record.file_name());
    std::fs::write(&path, format!("{events} events: spool full\n")).unwrap();
    path
}

/// `sidecar.lock` that cannot be taken (not "held by another sidecar") means
/// nobody drains: counted in `spool_lock_errors`, logged as an error, retried
/// every pass, and nothing is drained or deleted meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_lock_error_is_counted_and_retried_and_nothing_is_drained_meanwhile() {
    let scenario = FailScenario::setup();
    let redis = Redis::start();
    let dir = temp_dir("fault-spool-lock");
    let cfg = config(&dir, redis.port);
    let spool = cfg.server.spool_dir();
    let file = spool_file_of(&spool, 0xa1, 1..=30);
    let record = loss_record(&spool, 0xa2, 17);
    fail::cfg(failpoint::SPOOL_LOCK, "return(EACCES)").unwrap();
    let mut sub = redis.subscribe("laravel_database_*").await;
    let sidecar = Sidecar::start(cfg).await;
    for errno in ERRNOS {
        fail::cfg(failpoint::SPOOL_LOCK, &format!("return({errno})")).unwrap();
        let errors = u(&sidecar.status().await["ingest"]["spool_lock_errors"]);
        until(5, "lock errors", || async {
            u(&sidecar.status().await["ingest"]["spool_lock_errors"]) >= errors + 2
        })
        .await;
    }
    let s = sidecar.status().await;
    assert_eq!(s["ingest"]["spool_drainer"], 0, "{s}");
    assert_eq!(s["ingest"]["php_lost_events"], 0, "{s}");
    assert!(file.exists() && record.exists());
    assert!(sub.drain(Duration::from_millis(100)).await.is_empty());
    fail::remove(failpoint::SPOOL_LOCK);
    assert_eq!(
        ns(&sub.take(30, Duration::from_secs(10)).await),
        (1..=30).collect::<Vec<_>>()
    );
    until(5, "the files to be processed", || async {
        !file.exists() && !record.exists()
    })
    .await;
    let s = sidecar.status().await;
    assert_eq!(s["ingest"]["spool_drainer"], 1, "{s}");
    assert_eq!(s["ingest"]["php_lost_events"], 17, "{s}");
    let metrics = sidecar.get("/metrics").await;
    assert!(
        metrics.contains("scada_ingest_spool_lock_errors "),
        "{metrics}"
    );
    sidecar.stop().await;
    drop(scenario);
}

/// Two running sidecars (own data directories and sockets) sharing one spool
/// directory: only the lock holder drains, so every orphaned event is
/// delivered once and every loss record counted once; when the holder
/// stops, the other takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sidecars_on_one_spool_directory_drain_each_file_and_count_each_loss_once() {
    let scenario = FailScenario::setup();
    let redis = Redis::start();
    let spool = temp_dir("two-drainers-spool");
    let with_spool = |name: &str| {
        let mut cfg = config(&temp_dir(name), redis.port);
        cfg.server.spool_dir = spool.clone();
        cfg
    };
    let mut sub = redis.subscribe("laravel_database_*").await;
    let a = Sidecar::start(with_spool("two-drainers-a")).await;
    until(5, "a to take the spool lock", || async {
        a.status().await["ingest"]["spool_drainer"] == 1
    })
    .await;
    let b = Sidecar::start(with_spool("two-drainers-b")).await;
    // A slow disk: a loss record is still there while the other sidecar's
    // pass comes by (before the directory lock, both counted it).
    fail::cfg(failpoint::LOSS_UNLINK, "sleep(300)").unwrap();
    let lost = |s: &serde_json::Value| u(&s["ingest"]["php_lost_events"]);
    // Files arrive while both run (several passes of each).
    let mut files = Vec::new();
    for k in 0..5u64 {
        files.push(spool_file_of(&spool, 0xb0 + k, 1 + 20 * k..=20 * (k + 1)));
        files.push(loss_record(&spool, 0xc0 + k, 10 + k));
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    // Each file in order; files (origins) in any order.
    let mut got = ns(&sub.take(100, Duration::from_secs(10)).await);
    got.sort_unstable();
    assert_eq!(got, (1..=100).collect::<Vec<_>>());
    until(5, "every file to be processed", || async {
        files.iter().all(|f| !f.exists())
    })
    .await;
    let (sa, sb) = (a.status().await, b.status().await);
    assert_eq!((lost(&sa), lost(&sb)), (60, 0), "{sa}\n{sb}");
    assert_eq!(
        (
            sa["ingest"]["spool_drainer"].clone(),
            sb["ingest"]["spool_drainer"].clone()
        ),
        (1.into(), 0.into())
    );
    assert_eq!(u(&sb["ingest"]["spool_lock_errors"]), 0, "held is no error");
    // The drainer stops: the other takes its place.
    a.stop().await;
    until(5, "b to take the spool lock", || async {
        b.status().await["ingest"]["spool_drainer"] == 1
    })
    .await;
    let file = spool_file_of(&spool, 0xb9, 101..=120);
    let record = loss_record(&spool, 0xc9, 7);
    assert_eq!(
        ns(&sub.take(20, Duration::from_secs(10)).await),
        (101..=120).collect::<Vec<_>>()
    );
    until(5, "b to process them", || async {
        !file.exists() && !record.exists()
    })
    .await;
    assert_eq!(lost(&b.status().await), 7);
    assert!(
        sub.drain(Duration::from_millis(500)).await.is_empty(),
        "once"
    );
    b.stop().await;
    drop(scenario);
}
