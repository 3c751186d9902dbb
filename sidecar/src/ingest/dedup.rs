//! Remembers which event ids were journaled, so a redelivery (a client
//! re-sending what a lost connection left unacknowledged, or a spool file
//! holding events that also arrived over the socket) is counted and dropped.
//!
//! Ids of one origin (a PHP process generation) are counters, so the set is
//! kept as sorted disjoint ranges: in practice one range per origin.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use scada_core::EventId;

#[derive(Debug, Default)]
struct Ranges {
    /// Sorted, disjoint, non-adjacent inclusive ranges.
    ranges: Vec<(u64, u64)>,
    last_seen: Option<Instant>,
}

impl Ranges {
    /// Inserts `seq`; false if it was already present.
    fn insert(&mut self, seq: u64) -> bool {
        // Fast path: the next id of the newest range.
        if let Some(last) = self.ranges.last_mut() {
            if seq == last.1.wrapping_add(1) {
                last.1 = seq;
                return true;
            }
            if seq >= last.0 && seq <= last.1 {
                return false;
            }
        }
        let i = self.ranges.partition_point(|r| r.1 < seq);
        if let Some(r) = self.ranges.get(i) {
            if r.0 <= seq {
                return false;
            }
        }
        let joins_prev = i > 0 && self.ranges[i - 1].1 + 1 == seq;
        let joins_next = self.ranges.get(i).is_some_and(|r| r.0 == seq + 1);
        match (joins_prev, joins_next) {
            (true, true) => {
                self.ranges[i - 1].1 = self.ranges[i].1;
                self.ranges.remove(i);
            }
            (true, false) => self.ranges[i - 1].1 = seq,
            (false, true) => self.ranges[i].0 = seq,
            (false, false) => self.ranges.insert(i, (seq, seq)),
        }
        true
    }
}

#[derive(Debug)]
pub struct Dedup {
    origins: HashMap<u64, Ranges>,
    idle: Duration,
    max_origins: usize,
}

impl Dedup {
    pub fn new(idle: Duration, max_origins: usize) -> Self {
        Self {
            origins: HashMap::new(),
            idle,
            max_origins,
        }
    }

    /// True the first time an id is seen.
    pub fn first_time(&mut self, id: EventId, now: Instant) -> bool {
        let r = self.origins.entry(id.origin).or_default();
        r.last_seen = Some(now);
        r.insert(id.seq)
    }

    /// Forgets origins idle for longer than the configured time, and the
    /// least recently seen ones beyond the size limit.
    pub fn prune(&mut self, now: Instant) {
        let idle = self.idle;
        self.origins
            .retain(|_, r| r.last_seen.is_some_and(|t| now.duration_since(t) < idle));
        if self.origins.len() > self.max_origins {
            let mut by_age: Vec<(u64, Instant)> = self
                .origins
                .iter()
                .map(|(&o, r)| (o, r.last_seen.unwrap_or(now)))
                .collect();
            by_age.sort_by_key(|(_, t)| *t);
            let excess = self.origins.len() - self.max_origins;
            for (o, _) in by_age.into_iter().take(excess) {
                self.origins.remove(&o);
            }
        }
    }

    pub fn origins(&self) -> usize {
        self.origins.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(origin: u64, seq: u64) -> EventId {
        EventId { origin, seq }
    }

    #[test]
    fn detects_repeats_in_any_order_and_merges_ranges() {
        let mut d = Dedup::new(Duration::from_secs(60), 100);
        let now = Instant::now();
        for seq in [1, 2, 3, 10, 12, 11, 5, 4] {
            assert!(d.first_time(id(1, seq), now), "{seq}");
        }
        for seq in [1, 3, 4, 10, 11, 12] {
            assert!(!d.first_time(id(1, seq), now), "{seq}");
        }
        assert!(d.first_time(id(2, 1), now));
        assert_eq!(d.origins[&1].ranges, vec![(1, 5), (10, 12)]);
        assert!(d.first_time(id(1, 6), now));
        for seq in 7..=9 {
            assert!(d.first_time(id(1, seq), now));
        }
        assert_eq!(d.origins[&1].ranges, vec![(1, 12)]);
    }

    #[test]
    fn agrees_with_a_set_for_random_orders() {
        let mut rng = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for round in 0..200 {
            let mut r = Ranges::default();
            let mut set = std::collections::HashSet::new();
            // Mostly ascending with gaps, replays and out-of-order bursts.
            let mut base = 1u64;
            for _ in 0..2000 {
                let seq = match next() % 10 {
                    0..=5 => {
                        base += 1 + next() % 3;
                        base
                    }
                    6..=7 => base.saturating_sub(next() % 50).max(1),
                    _ => 1 + next() % (base + 20),
                };
                assert_eq!(r.insert(seq), set.insert(seq), "round {round} seq {seq}");
            }
            for w in r.ranges.windows(2) {
                assert!(
                    w[0].1 + 1 < w[1].0,
                    "ranges must stay disjoint and non-adjacent: {w:?}"
                );
            }
        }
    }

    #[test]
    fn prunes_idle_and_excess_origins() {
        let mut d = Dedup::new(Duration::from_secs(10), 2);
        let t0 = Instant::now();
        d.first_time(id(1, 1), t0);
        d.first_time(id(2, 1), t0 + Duration::from_secs(5));
        d.first_time(id(3, 1), t0 + Duration::from_secs(6));
        d.prune(t0 + Duration::from_secs(7));
        assert_eq!(d.origins(), 2);
        assert!(!d.origins.contains_key(&1));
        d.prune(t0 + Duration::from_secs(60));
        assert_eq!(d.origins(), 0);
    }
}
