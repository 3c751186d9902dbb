//! Remembers which event ids were journaled, so a redelivery (a client
//! re-sending what a lost connection left unacknowledged, or a spool file
//! holding events that also arrived over the socket) is counted and dropped.
//!
//! Ids of one origin (a PHP process generation) are counters, so the set is
//! kept as sorted disjoint ranges: in practice one range per origin.
//!
//! # Bounded
//! * Gaps (ids that never arrive: events a full buffer evicted, or calls
//!   refused after their id was taken) would each add a range. An origin
//!   keeps at most [`MAX_RANGES`]; beyond that its oldest gap is closed. A
//!   process sends its events in order (the writer replays its spool before
//!   anything newer), so an id far below its newest never arrives late.
//! * An origin is forgotten once it has no connection and no spool file
//!   (it can no longer resend anything) and has been idle for `idle`.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use scada_core::EventId;

/// Ranges kept per origin; the oldest gaps are closed beyond it.
pub const MAX_RANGES: usize = 64;

#[derive(Debug)]
struct Ranges {
    /// Sorted, disjoint, non-adjacent inclusive ranges.
    ranges: Vec<(u64, u64)>,
    last_seen: Instant,
}

impl Ranges {
    fn new(now: Instant) -> Self {
        Self {
            ranges: Vec::new(),
            last_seen: now,
        }
    }

    fn contains(&self, seq: u64) -> bool {
        if let Some(last) = self.ranges.last() {
            if seq > last.1 {
                return false;
            }
        }
        let i = self.ranges.partition_point(|r| r.1 < seq);
        self.ranges.get(i).is_some_and(|r| r.0 <= seq)
    }

    /// Inserts `seq`; false if it was already present. Returns the gaps it
    /// had to close to stay within [`MAX_RANGES`] through `closed`.
    fn insert(&mut self, seq: u64, closed: &mut u64) -> bool {
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
        if self.ranges.len() > MAX_RANGES {
            // Close the oldest gap: ids in it are taken as seen.
            self.ranges[0].1 = self.ranges[1].1;
            self.ranges.remove(1);
            *closed += 1;
        }
        true
    }
}

#[derive(Debug)]
pub struct Dedup {
    origins: HashMap<u64, Ranges>,
    idle: Duration,
    max_origins: usize,
    /// Gaps closed to keep the state bounded (for the status).
    pub gaps_closed: u64,
}

impl Dedup {
    pub fn new(idle: Duration, max_origins: usize) -> Self {
        Self {
            origins: HashMap::new(),
            idle,
            max_origins,
            gaps_closed: 0,
        }
    }

    /// True when `id` was journaled before.
    pub fn seen(&self, id: EventId) -> bool {
        self.origins
            .get(&id.origin)
            .is_some_and(|r| r.contains(id.seq))
    }

    /// Records that `id` is journaled; false if it already was.
    pub fn insert(&mut self, id: EventId, now: Instant) -> bool {
        let r = self
            .origins
            .entry(id.origin)
            .or_insert_with(|| Ranges::new(now));
        r.last_seen = now;
        r.insert(id.seq, &mut self.gaps_closed)
    }

    /// Forgets origins that can send nothing more (not in `live`: no
    /// connection, no spool file) and were idle for the configured time, and
    /// the least recently seen ones beyond the size limit.
    pub fn prune(&mut self, now: Instant, live: &HashSet<u64>) {
        let idle = self.idle;
        self.origins.retain(|origin, r| {
            if live.contains(origin) {
                r.last_seen = now;
            }
            now.duration_since(r.last_seen) < idle
        });
        if self.origins.len() > self.max_origins {
            let mut by_age: Vec<(u64, Instant)> = self
                .origins
                .iter()
                .map(|(&o, r)| (o, r.last_seen))
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

    /// Ranges held across all origins (what the memory grows with).
    pub fn ranges(&self) -> usize {
        self.origins.values().map(|r| r.ranges.len()).sum()
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
            assert!(!d.seen(id(1, seq)));
            assert!(d.insert(id(1, seq), now), "{seq}");
        }
        for seq in [1, 3, 4, 10, 11, 12] {
            assert!(d.seen(id(1, seq)));
            assert!(!d.insert(id(1, seq), now), "{seq}");
        }
        assert!(d.insert(id(2, 1), now));
        assert_eq!(d.origins[&1].ranges, vec![(1, 5), (10, 12)]);
        assert!(d.insert(id(1, 6), now));
        for seq in 7..=9 {
            assert!(d.insert(id(1, seq), now));
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
        let mut closed = 0;
        for round in 0..200 {
            let mut r = Ranges::new(Instant::now());
            let mut set = std::collections::HashSet::new();
            // Mostly ascending with gaps, replays and out-of-order bursts,
            // few enough gaps to stay under the cap.
            let mut base = 1u64;
            for _ in 0..200 {
                let seq = match next() % 10 {
                    0..=6 => {
                        base += 1 + u64::from(next() % 8 == 0);
                        base
                    }
                    7..=8 => base.saturating_sub(next() % 50).max(1),
                    _ => 1 + next() % (base + 20),
                };
                assert_eq!(
                    r.contains(seq),
                    set.contains(&seq),
                    "round {round} seq {seq}"
                );
                assert_eq!(
                    r.insert(seq, &mut closed),
                    set.insert(seq),
                    "round {round} seq {seq}"
                );
            }
            for w in r.ranges.windows(2) {
                assert!(
                    w[0].1 + 1 < w[1].0,
                    "ranges must stay disjoint and non-adjacent: {w:?}"
                );
            }
        }
        assert_eq!(closed, 0);
    }

    #[test]
    fn a_long_run_of_gaps_keeps_the_state_flat() {
        // Every second id never arrives (a refused call took it): before the
        // cap, every one of them added a range, ~16 bytes each, forever.
        let mut d = Dedup::new(Duration::from_secs(60), 100);
        let now = Instant::now();
        for seq in (1..2_000_000u64).step_by(2) {
            assert!(d.insert(id(7, seq), now));
        }
        assert_eq!(d.ranges(), MAX_RANGES);
        assert!(d.gaps_closed > 900_000);
        // Recent ids are still exact: repeats dropped, the newest gaps open.
        assert!(d.seen(id(7, 1_999_999)));
        assert!(!d.seen(id(7, 1_999_998)));
        assert!(!d.insert(id(7, 1_999_997), now));
        assert!(d.insert(id(7, 2_000_001), now));
    }

    #[test]
    fn origins_that_can_send_nothing_more_expire_live_ones_stay() {
        let mut d = Dedup::new(Duration::from_secs(10), 2);
        let t0 = Instant::now();
        d.insert(id(1, 1), t0);
        d.insert(id(2, 1), t0 + Duration::from_secs(5));
        d.insert(id(3, 1), t0 + Duration::from_secs(6));
        d.prune(t0 + Duration::from_secs(7), &HashSet::new());
        assert_eq!(d.origins(), 2);
        assert!(!d.origins.contains_key(&1));
        // Origin 3 still has a connection or a spool file: kept however idle.
        let live: HashSet<u64> = [3].into();
        d.prune(t0 + Duration::from_secs(60), &live);
        assert_eq!(d.origins(), 1);
        assert!(d.seen(id(3, 1)));
        d.prune(t0 + Duration::from_secs(120), &HashSet::new());
        assert_eq!(d.origins(), 0);
    }
}
