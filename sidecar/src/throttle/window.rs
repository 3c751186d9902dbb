//! The window logic, pure and clock-free (time is passed in), so it is tested
//! with a virtual clock.
//!
//! Per channel: the first input on an idle channel goes out at once (leading
//! edge) and opens a window of `window_ms`; what arrives during the window is
//! accumulated and goes out at the window's end (trailing edge), even if
//! nothing else arrives; then the next window starts. A window that ends empty
//! makes the channel idle again, and nothing is sent for it. So a channel
//! carries at most one event per window (per event name in `latest` mode), and
//! the latest value is never held back longer than one window.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use scada_core::aggregate::SeriesTable;

/// An event kept by a `latest` window.
#[derive(Debug, Clone, PartialEq)]
pub struct Latest {
    pub name: String,
    pub socket_id: Option<String>,
    pub payload: Vec<u8>,
}

/// What a window emits: the aggregate of its samples (if any) and the latest
/// event of each name (if any); both when a window received both.
#[derive(Debug, Clone, Default)]
pub struct Body {
    pub table: SeriesTable,
    pub latest: Vec<Latest>,
}

/// One emission: a channel's window (or its leading edge).
#[derive(Debug, Clone)]
pub struct Output {
    pub channel: String,
    pub window_ms: u32,
    pub start_us: u64,
    pub end_us: u64,
    /// Samples (aggregate) or events (latest) the window consumed.
    pub inputs: u64,
    /// Creation time of the newest input (for latency).
    pub newest_created_us: u64,
    /// Journal offset of its oldest input: until the output is journaled,
    /// the stage's cursor may not pass it.
    pub first_input: u64,
    pub body: Body,
}

/// Input to a channel's window.
pub enum Input<'a> {
    Samples { series: &'a [(&'a str, f64)] },
    Event(Latest),
}

struct Window {
    window_ms: u32,
    start_us: u64,
    deadline_us: u64,
    table: SeriesTable,
    latest: Vec<Latest>,
    inputs: u64,
    newest_created_us: u64,
    /// Journal offset of the oldest input not emitted yet.
    first_pending: Option<u64>,
}

/// All channels' windows.
#[derive(Default)]
pub struct Windows {
    open: HashMap<String, Window>,
    deadlines: BinaryHeap<Reverse<(u64, String)>>,
}

impl Windows {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    /// The earliest window end, if any window is open.
    pub fn next_deadline(&self) -> Option<u64> {
        self.deadlines.peek().map(|Reverse((t, _))| *t)
    }

    /// Oldest journal offset an open window still holds (the stage's cursor may not pass it).
    pub fn oldest_pending(&self) -> Option<u64> {
        self.open.values().filter_map(|w| w.first_pending).min()
    }

    /// Feeds one input; returns the leading-edge output when the channel was idle.
    #[allow(clippy::too_many_arguments)]
    pub fn input(
        &mut self,
        channel: &str,
        window_ms: u32,
        input: Input<'_>,
        created_us: u64,
        offset: u64,
        now_us: u64,
    ) -> Option<Output> {
        if let Some(w) = self.open.get_mut(channel) {
            w.inputs += add(&mut w.table, &mut w.latest, input);
            w.newest_created_us = w.newest_created_us.max(created_us);
            w.first_pending.get_or_insert(offset);
            return None;
        }
        // Idle: out at once, and a window opens.
        let mut table = SeriesTable::new();
        let mut latest = Vec::new();
        let inputs = add(&mut table, &mut latest, input);
        let deadline = now_us + window_ms as u64 * 1000;
        self.open.insert(
            channel.to_string(),
            Window {
                window_ms,
                start_us: now_us,
                deadline_us: deadline,
                table: SeriesTable::new(),
                latest: Vec::new(),
                inputs: 0,
                newest_created_us: 0,
                first_pending: None,
            },
        );
        self.deadlines
            .push(Reverse((deadline, channel.to_string())));
        Some(Output {
            channel: channel.to_string(),
            window_ms,
            start_us: now_us,
            end_us: now_us,
            inputs,
            newest_created_us: created_us,
            first_input: offset,
            body: Body { table, latest },
        })
    }

    /// Closes every window that ends at or before `now_us`.
    pub fn expire(&mut self, now_us: u64) -> Vec<Output> {
        let mut out = Vec::new();
        while let Some(Reverse((deadline, _))) = self.deadlines.peek() {
            if *deadline > now_us {
                break;
            }
            let Some(Reverse((deadline, channel))) = self.deadlines.pop() else {
                break;
            };
            let Some(w) = self.open.get_mut(&channel) else {
                continue;
            };
            if w.deadline_us != deadline {
                continue;
            }
            if w.inputs == 0 {
                // An empty window: nothing is sent, the channel is idle again.
                self.open.remove(&channel);
                continue;
            }
            out.push(Output {
                channel: channel.clone(),
                window_ms: w.window_ms,
                start_us: w.start_us,
                end_us: deadline,
                inputs: std::mem::take(&mut w.inputs),
                newest_created_us: std::mem::take(&mut w.newest_created_us),
                first_input: w.first_pending.unwrap_or_default(),
                body: Body {
                    table: std::mem::take(&mut w.table),
                    latest: std::mem::take(&mut w.latest),
                },
            });
            w.first_pending = None;
            w.start_us = deadline;
            w.deadline_us = deadline + w.window_ms as u64 * 1000;
            self.deadlines.push(Reverse((w.deadline_us, channel)));
        }
        out
    }

    /// Shutdown: every open window goes out now.
    pub fn drain(&mut self, now_us: u64) -> Vec<Output> {
        let mut out = Vec::new();
        for (channel, w) in self.open.drain() {
            if w.inputs > 0 {
                out.push(Output {
                    channel,
                    window_ms: w.window_ms,
                    start_us: w.start_us,
                    end_us: now_us,
                    inputs: w.inputs,
                    newest_created_us: w.newest_created_us,
                    first_input: w.first_pending.unwrap_or_default(),
                    body: Body {
                        table: w.table,
                        latest: w.latest,
                    },
                });
            }
        }
        self.deadlines.clear();
        out
    }
}

fn add(table: &mut SeriesTable, latest: &mut Vec<Latest>, input: Input<'_>) -> u64 {
    match input {
        Input::Samples { series } => {
            for (name, v) in series {
                table.add(name.as_bytes(), *v);
            }
            series.len() as u64
        }
        Input::Event(ev) => {
            match latest.iter_mut().find(|l| l.name == ev.name) {
                Some(slot) => *slot = ev,
                None => latest.push(ev),
            }
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1000;

    fn samples(w: &mut Windows, ch: &str, vals: &[(&str, f64)], now: u64) -> Option<Output> {
        w.input(ch, 100, Input::Samples { series: vals }, now, now, now)
    }

    fn stats(o: &Output, series: &str) -> (u64, f64, f64, f64) {
        let (_, s) = o
            .body
            .table
            .iter()
            .find(|(n, _)| *n == series.as_bytes())
            .unwrap();
        (s.count, s.sum(), s.min, s.max)
    }

    #[test]
    fn leading_edge_then_one_event_per_window_then_idle() {
        let mut w = Windows::new();
        // Idle channel: the first sample goes out at once.
        let lead = samples(&mut w, "c", &[("a", 1.0)], 0).expect("leading edge");
        assert_eq!((lead.inputs, lead.start_us, lead.end_us), (1, 0, 0));
        // During the window: accumulated, nothing out.
        for i in 1..=9 {
            assert!(samples(
                &mut w,
                "c",
                &[("a", i as f64), ("b", -(i as f64))],
                i * 10 * MS
            )
            .is_none());
        }
        assert!(w.expire(99 * MS).is_empty());
        // Window end: one event with everything since the leading edge.
        let out = w.expire(100 * MS);
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].start_us, out[0].end_us, out[0].inputs),
            (0, 100 * MS, 18)
        );
        assert_eq!(stats(&out[0], "a"), (9, 45.0, 1.0, 9.0));
        assert_eq!(stats(&out[0], "b"), (9, -45.0, -9.0, -1.0));
        // The trailing edge goes out even if nothing else arrives; an empty
        // next window sends nothing and makes the channel idle.
        assert!(w.expire(200 * MS).is_empty());
        assert_eq!(w.open_count(), 0);
        assert!(
            samples(&mut w, "c", &[("a", 5.0)], 250 * MS).is_some(),
            "idle again: leading edge"
        );
    }

    #[test]
    fn a_steady_stream_gives_exactly_one_event_per_window_and_loses_no_sample() {
        let mut w = Windows::new();
        let mut events = 0;
        let mut counted = 0;
        // 2 s of one sample per ms.
        for t in 0..2000u64 {
            if let Some(o) = samples(&mut w, "c", &[("s", 1.0)], t * MS) {
                events += 1;
                counted += o.inputs;
            }
            for o in w.expire(t * MS) {
                events += 1;
                counted += o.inputs;
            }
        }
        for o in w.expire(2100 * MS) {
            events += 1;
            counted += o.inputs;
        }
        assert_eq!(counted, 2000);
        assert!(events <= 2000 / 100 + 2, "{events} events");
        assert!(w.expire(10_000 * MS).is_empty());
    }

    #[test]
    fn channels_have_independent_windows() {
        let mut w = Windows::new();
        assert!(samples(&mut w, "a", &[("x", 1.0)], 0).is_some());
        assert!(samples(&mut w, "b", &[("x", 1.0)], 50 * MS).is_some());
        samples(&mut w, "a", &[("x", 2.0)], 60 * MS);
        samples(&mut w, "b", &[("x", 2.0)], 60 * MS);
        let out = w.expire(100 * MS);
        assert_eq!(
            out.iter().map(|o| o.channel.as_str()).collect::<Vec<_>>(),
            ["a"]
        );
        let out = w.expire(150 * MS);
        assert_eq!(
            out.iter().map(|o| o.channel.as_str()).collect::<Vec<_>>(),
            ["b"]
        );
    }

    #[test]
    fn latest_mode_keeps_the_newest_event_of_each_name() {
        let mut w = Windows::new();
        let ev = |name: &str, n: u8| Latest {
            name: name.into(),
            socket_id: None,
            payload: vec![n],
        };
        let lead = w
            .input("c", 100, Input::Event(ev("tick", 0)), 0, 0, 0)
            .unwrap();
        assert_eq!(lead.body.latest, vec![ev("tick", 0)]);
        for n in 1..5 {
            w.input("c", 100, Input::Event(ev("tick", n)), 0, 0, n as u64 * MS);
        }
        w.input("c", 100, Input::Event(ev("alarm", 9)), 0, 0, 50 * MS);
        w.input(
            "c",
            100,
            Input::Samples {
                series: &[("s", 2.0)],
            },
            0,
            0,
            60 * MS,
        );
        let out = w.expire(100 * MS);
        assert_eq!(out[0].body.latest, vec![ev("tick", 4), ev("alarm", 9)]);
        assert_eq!(
            out[0].body.table.samples(),
            1,
            "samples in the same window are kept too"
        );
        assert_eq!(out[0].inputs, 6);
    }

    #[test]
    fn pending_offsets_hold_the_cursor_until_their_window_is_out() {
        let mut w = Windows::new();
        w.input(
            "c",
            100,
            Input::Samples {
                series: &[("a", 1.0)],
            },
            0,
            10,
            0,
        );
        assert_eq!(w.oldest_pending(), None, "the leading edge is already out");
        w.input(
            "c",
            100,
            Input::Samples {
                series: &[("a", 1.0)],
            },
            0,
            20,
            5 * MS,
        );
        w.input(
            "c",
            100,
            Input::Samples {
                series: &[("a", 1.0)],
            },
            0,
            30,
            6 * MS,
        );
        assert_eq!(w.oldest_pending(), Some(20));
        w.expire(100 * MS);
        assert_eq!(w.oldest_pending(), None);
        let drained = w.drain(150 * MS);
        assert!(drained.is_empty());
    }
}
