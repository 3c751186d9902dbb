//! Retrying as a decision, not a loop: a [`RetryLogic`] classifies each
//! failure, a [`Backoff`] says how long to wait. Sinks combine the two.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What to do after a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Transient (connection, timeout, 5xx, 429): wait and try again.
    Retry,
    /// Permanent (the request itself is wrong): count it, log it (the error
    /// says why), move on.
    GiveUp,
}

/// Classifies a destination's errors.
pub trait RetryLogic {
    type Error;
    fn decide(&self, error: &Self::Error) -> Decision;
}

/// Exponential backoff with jitter: each wait is uniformly random in
/// `[d/2, d]` where `d` doubles from `min` up to `max`, so many sidecars
/// recovering together do not retry in lockstep.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
    rng: u64,
    attempts: u32,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15);
        Self {
            min,
            max,
            current: min,
            rng: seed | 1,
            attempts: 0,
        }
    }

    fn random(&mut self) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// The next wait.
    pub fn next_delay(&mut self) -> Duration {
        self.attempts += 1;
        let d = self.current;
        self.current = (self.current * 2).min(self.max);
        let half = d.as_micros() as u64 / 2;
        let jitter = if half == 0 {
            0
        } else {
            self.random() % (half + 1)
        };
        Duration::from_micros(half + jitter)
    }

    /// Failed attempts since the last success.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    pub fn reset(&mut self) {
        self.current = self.min;
        self.attempts = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_with_jitter_and_are_capped() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let mut ceilings = vec![];
        for _ in 0..8 {
            let ceiling = b.current;
            let d = b.next_delay();
            assert!(
                d >= ceiling / 2 && d <= ceiling,
                "{d:?} outside [{:?}, {ceiling:?}]",
                ceiling / 2
            );
            ceilings.push(ceiling);
        }
        assert_eq!(
            ceilings[..5],
            [100, 200, 400, 800, 1600].map(Duration::from_millis)
        );
        assert_eq!(*ceilings.last().unwrap(), Duration::from_secs(2));
        assert_eq!(b.attempts(), 8);
        b.reset();
        assert_eq!((b.attempts(), b.current), (0, Duration::from_millis(100)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_loop_under_paused_time_waits_the_backoff() {
        let mut b = Backoff::new(Duration::from_millis(50), Duration::from_millis(400));
        let start = tokio::time::Instant::now();
        let mut total = Duration::ZERO;
        for _ in 0..4 {
            let d = b.next_delay();
            total += d;
            tokio::time::sleep(d).await;
        }
        // The timer has millisecond granularity: each sleep may round up.
        assert!(start.elapsed() >= total && start.elapsed() <= total + Duration::from_millis(4));
        assert!(total >= Duration::from_millis(375) && total <= Duration::from_millis(750));
    }
}
