//! The driver against a fake service, on tokio's paused clock.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio::time::Instant as TokioInstant;

use super::*;
use crate::metrics::Metrics;

/// Items arrive on a channel, as in a lane.
struct Chan(mpsc::UnboundedReceiver<u32>, Vec<(Vec<u32>, &'static str)>);

fn what<E>(outcome: &Outcome<E>) -> &'static str {
    match outcome {
        Outcome::Delivered => "delivered",
        Outcome::Refused { .. } => "refused",
        Outcome::Stopped => "stopped",
    }
}

impl Source for Chan {
    type Item = u32;
    type Request = Vec<u32>;
    type Error = FakeError;
    fn done(&mut self, request: Vec<u32>, outcome: Outcome<FakeError>) {
        self.1.push((request, what(&outcome)));
    }
    async fn next(&mut self, until: Option<TokioInstant>) -> Pull<u32> {
        let got = match until {
            Some(t) => match tokio::time::timeout_at(t, self.0.recv()).await {
                Ok(got) => got,
                Err(_) => return Pull::Flush,
            },
            None => self.0.recv().await,
        };
        got.map_or(Pull::Done, Pull::Item)
    }
}

/// Requests of at most 3 items.
#[derive(Default)]
struct Three(Vec<u32>);

impl Batch for Vec<u32> {
    fn events(&self) -> u64 {
        self.len() as u64
    }
}

impl Encoder for Three {
    type Item = u32;
    type Request = Vec<u32>;
    fn push(&mut self, item: u32) -> Result<(), u32> {
        if self.0.len() == 3 {
            return Err(item);
        }
        self.0.push(item);
        Ok(())
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    fn is_full(&self) -> bool {
        self.0.len() == 3
    }
    fn take(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.0)
    }
    fn split(&mut self, request: Vec<u32>) -> Result<Vec<Vec<u32>>, Vec<u32>> {
        Ok(request.into_iter().map(|i| vec![i]).collect())
    }
}

#[derive(Debug)]
enum FakeError {
    Down,
    Refused,
}

impl fmt::Display for FakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

/// Every call made: when (virtual time) and what.
type Calls = Arc<Mutex<Vec<(Duration, Vec<u32>)>>>;

/// Fails its first `down` calls, refuses requests holding `poison`, and
/// records every call with the (virtual) time it was made.
struct Fake {
    down: usize,
    poison: Option<u32>,
    calls: Calls,
    start: TokioInstant,
}

impl Service for Fake {
    type Request = Vec<u32>;
    type Error = FakeError;
    async fn call(&mut self, request: &Vec<u32>) -> Result<(), FakeError> {
        self.calls
            .lock()
            .unwrap()
            .push((self.start.elapsed(), request.clone()));
        if self.down > 0 {
            self.down -= 1;
            return Err(FakeError::Down);
        }
        if self.poison.is_some_and(|p| request.contains(&p)) {
            return Err(FakeError::Refused);
        }
        Ok(())
    }
    fn maybe_delivered(_: &FakeError) -> bool {
        true
    }
}

struct Logic;

impl RetryLogic for Logic {
    type Error = FakeError;
    fn decide(&self, e: &FakeError) -> Decision {
        match e {
            FakeError::Down => Decision::Retry,
            FakeError::Refused => Decision::GiveUp,
        }
    }
}

struct Run {
    calls: Vec<(Duration, Vec<u32>)>,
    done: Vec<(Vec<u32>, &'static str)>,
    metrics: Arc<SinkMetrics>,
}

async fn drive(items: &[u32], down: usize, poison: Option<u32>, stop_in: Option<Duration>) -> Run {
    let (tx, rx) = mpsc::unbounded_channel();
    for i in items {
        tx.send(*i).unwrap();
    }
    drop(tx);
    let calls = Arc::new(Mutex::new(Vec::new()));
    let mut service = Fake {
        down,
        poison,
        calls: calls.clone(),
        start: TokioInstant::now(),
    };
    let metrics = Metrics::default().sink("fake", "test");
    let mut retrier = Retrier::new(Logic, metrics.clone(), "the fake");
    let stop_value = match stop_in {
        Some(d) => Stop::Drain {
            deadline: Instant::now() + d,
        },
        None => Stop::No,
    };
    let (_stop_tx, mut stop) = watch::channel(stop_value);
    let mut source = Chan(rx, Vec::new());
    run(
        &mut source,
        &mut Three::default(),
        &mut service,
        &mut retrier,
        Duration::from_millis(5),
        &mut stop,
    )
    .await;
    let calls = calls.lock().unwrap().clone();
    Run {
        calls,
        done: source.1,
        metrics,
    }
}

#[tokio::test(start_paused = true)]
async fn requests_fill_to_the_limit_and_the_last_one_after_the_linger_time() {
    let r = drive(&[1, 2, 3, 4, 5, 6, 7], 0, None, None).await;
    let sent: Vec<Vec<u32>> = r.calls.iter().map(|(_, req)| req.clone()).collect();
    assert_eq!(sent, vec![vec![1, 2, 3], vec![4, 5, 6], vec![7]]);
    assert!(r.done.iter().all(|(_, w)| *w == "delivered"));
    assert_eq!(r.metrics.requests.get(), 3);
}

#[tokio::test(start_paused = true)]
async fn failures_are_retried_in_place_with_growing_jittered_backoff() {
    let r = drive(&[1, 2, 3, 4], 4, None, None).await;
    let sent: Vec<&Vec<u32>> = r.calls.iter().map(|(_, req)| req).collect();
    // The same request until it goes through, then the next: order is kept.
    assert_eq!(
        sent,
        vec![&vec![1, 2, 3]; 5]
            .into_iter()
            .chain([&vec![4]])
            .collect::<Vec<_>>()
    );
    let waits: Vec<Duration> = r
        .calls
        .windows(2)
        .take(4)
        .map(|w| w[1].0 - w[0].0)
        .collect();
    // Each wait is in [d/2, d] for d = 50, 100, 200, 400 ms.
    for (wait, d) in waits.iter().zip([50u64, 100, 200, 400]) {
        let d = Duration::from_millis(d);
        assert!(
            *wait >= d / 2 && *wait <= d + Duration::from_millis(2),
            "{waits:?}"
        );
    }
    assert_eq!(r.metrics.retries.get(), 4);
    assert_eq!(r.metrics.resent_after_unclear_failure.get(), 12);
    assert!(r.metrics.healthy.get());
    assert_eq!(r.done.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_refused_request_is_split_to_find_the_culprit() {
    let r = drive(&[1, 2, 3], 0, Some(2), None).await;
    assert_eq!(
        r.done,
        vec![
            (vec![1], "delivered"),
            (vec![2], "refused"),
            (vec![3], "delivered")
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn at_the_stop_deadline_the_request_is_kept_not_dropped() {
    let r = drive(
        &[1, 2, 3, 4],
        usize::MAX,
        None,
        Some(Duration::from_secs(1)),
    )
    .await;
    assert!(
        r.done.is_empty(),
        "nothing delivered, nothing given up: {:?}",
        r.done
    );
    assert!(r.calls.iter().all(|(_, req)| *req == vec![1, 2, 3]));
}

/// Keeps its items in a queue: everything is available at once.
struct Ready(VecDeque<u32>, usize);

impl Source for Ready {
    type Item = u32;
    type Request = Vec<u32>;
    type Error = FakeError;
    fn done(&mut self, request: Vec<u32>, _: Outcome<FakeError>) {
        self.1 += request.len();
    }
    async fn next(&mut self, _until: Option<TokioInstant>) -> Pull<u32> {
        self.0.pop_front().map_or(Pull::Done, Pull::Item)
    }
}

#[tokio::test(start_paused = true)]
async fn a_source_that_is_done_still_gets_its_last_request_sent() {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let mut service = Fake {
        down: 0,
        poison: None,
        calls: calls.clone(),
        start: TokioInstant::now(),
    };
    let metrics = Metrics::default().sink("fake", "test");
    let mut retrier = Retrier::new(Logic, metrics, "the fake");
    let (_tx, mut stop) = watch::channel(Stop::No);
    let mut source = Ready((1..=4).collect(), 0);
    run(
        &mut source,
        &mut Three::default(),
        &mut service,
        &mut retrier,
        Duration::ZERO,
        &mut stop,
    )
    .await;
    assert_eq!(source.1, 4);
}
