//! The latest event per (channel, event name), for clients that connect
//! without a `Last-Event-ID`: they see the current state at once, then the
//! live stream. Bounded in channels and in event names per channel.
//!
//! Kept in memory and rebuilt on start ([`rebuild`]) from the newest part of
//! the journal, so a restart does not leave new clients with nothing until
//! the next sample: what the sinks would deliver (windows of throttled
//! channels, not their raw samples), at most `last_value_rebuild_bytes` plus
//! the rest of the segment that bound falls in.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use scada_core::frame::{Frames, MAX_BODY_LEN};

use super::{render, wanted_event, Item};
use crate::journal::{Journal, Read};
use crate::routing::Routing;

#[derive(Debug, Default)]
struct Channel {
    /// Event name → its latest event; oldest replaced first when full.
    events: Vec<(String, Arc<Item>)>,
    /// When this channel last changed, to evict the stalest channel.
    touched: u64,
}

#[derive(Debug)]
pub struct LastValues {
    channels: HashMap<String, Channel>,
    max_channels: usize,
    max_events: usize,
    clock: u64,
}

impl LastValues {
    pub fn new(max_channels: usize, max_events: usize) -> Self {
        Self {
            channels: HashMap::new(),
            max_channels,
            max_events,
            clock: 0,
        }
    }

    /// Remembers `item` as the latest `event` on `channel`.
    pub fn record(&mut self, channel: &str, event: &str, item: &Arc<Item>) {
        if self.max_channels == 0 || self.max_events == 0 {
            return;
        }
        self.clock += 1;
        if !self.channels.contains_key(channel) && self.channels.len() >= self.max_channels {
            // Full: the channel that changed longest ago makes room.
            if let Some(stalest) = self
                .channels
                .iter()
                .min_by_key(|(_, c)| c.touched)
                .map(|(name, _)| name.clone())
            {
                self.channels.remove(&stalest);
            }
        }
        let entry = self.channels.entry(channel.to_string()).or_default();
        entry.touched = self.clock;
        if let Some(slot) = entry.events.iter_mut().find(|(name, _)| name == event) {
            // A rebuild and the live stage may both see an event: the newest stays.
            if slot.1.offset <= item.offset {
                slot.1 = item.clone();
            }
            return;
        }
        if entry.events.len() >= self.max_events {
            if let Some(oldest) = entry
                .events
                .iter()
                .enumerate()
                .min_by_key(|(_, (_, it))| it.offset)
                .map(|(i, _)| i)
            {
                entry.events.remove(oldest);
            }
        }
        entry.events.push((event.to_string(), item.clone()));
    }

    /// The latest events on any of `channels`, each once, oldest first.
    pub fn snapshot<'a>(&self, channels: impl IntoIterator<Item = &'a str>) -> Vec<Arc<Item>> {
        let mut out: Vec<Arc<Item>> = channels
            .into_iter()
            .filter_map(|c| self.channels.get(c))
            .flat_map(|c| c.events.iter().map(|(_, it)| it.clone()))
            .collect();
        out.sort_by_key(|it| it.offset);
        out.dedup_by_key(|it| it.offset);
        out
    }

    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// How many (channel, event name) pairs are kept.
    pub fn event_count(&self) -> usize {
        self.channels.values().map(|c| c.events.len()).sum()
    }
}

/// What [`rebuild`] read and kept.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Rebuilt {
    /// Journal offsets scanned: `from..to`.
    pub from: u64,
    pub to: u64,
    /// Events that a sink would deliver among them.
    pub events: u64,
}

/// Records into `last` every event a sink would deliver from the newest
/// `budget` bytes of the journal before `to` (starting at the beginning of
/// the segment that bound falls in, the nearest frame boundary known), oldest
/// first, so the latest per channel and name wins. Blocking I/O; `budget` 0
/// reads nothing. Damaged ranges are skipped as every reader skips them.
pub fn rebuild(
    journal: &Journal,
    routing: &Routing,
    budget: u64,
    to: u64,
    last: &mut LastValues,
) -> io::Result<Rebuilt> {
    let from = if budget == 0 {
        to
    } else {
        journal.segment_start_at(to.saturating_sub(budget)).min(to)
    };
    let mut done = Rebuilt {
        from,
        to: from,
        events: 0,
    };
    let mut pos = from;
    while pos < to {
        match journal.read_disk(pos, 4 * 1024 * 1024)? {
            Read::Data(batch) => {
                let mut at = batch.start;
                for frame in Frames::new(&batch.data, MAX_BODY_LEN).map_while(Result::ok) {
                    let offset = at;
                    at += frame.len() as u64;
                    if offset >= to {
                        break;
                    }
                    let Some(ev) = wanted_event(routing, &frame, |_| true) else {
                        continue;
                    };
                    let channels: Vec<String> =
                        routing.sink_channels(&ev).map(str::to_string).collect();
                    let Some(item) = render(offset, &ev, channels).map(Arc::new) else {
                        continue;
                    };
                    for c in routing.sink_channels(&ev) {
                        last.record(c, ev.event, &item);
                    }
                    done.events += 1;
                }
                pos = batch.end();
            }
            Read::AtHead => break,
            Read::Skip { to: next } if next > pos => pos = next,
            Read::Skip { .. } => break,
        }
    }
    done.to = pos.min(to);
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::sse::Event;

    fn item(offset: u64) -> Arc<Item> {
        let mut item = Item::control(Event::default().data("x"));
        item.offset = Some(offset);
        Arc::new(item)
    }

    fn offsets(v: Vec<Arc<Item>>) -> Vec<Option<u64>> {
        v.into_iter().map(|i| i.offset).collect()
    }

    #[test]
    fn keeps_the_latest_per_channel_and_event_name_each_once() {
        let mut lv = LastValues::new(10, 10);
        lv.record("a", "e1", &item(1));
        lv.record("a", "e1", &item(5));
        lv.record("a", "e2", &item(3));
        let both = item(7);
        lv.record("a", "e3", &both);
        lv.record("b", "e3", &both);
        lv.record("c", "e1", &item(9));
        assert_eq!(
            offsets(lv.snapshot(["a", "b"])),
            [Some(3), Some(5), Some(7)]
        );
        assert!(lv.snapshot(["zzz"]).is_empty());
    }

    #[test]
    fn an_older_event_never_replaces_a_newer_one() {
        // The rebuild and the live stage may record the same events in any order.
        let mut lv = LastValues::new(10, 10);
        lv.record("a", "e1", &item(9));
        lv.record("a", "e1", &item(4));
        assert_eq!(offsets(lv.snapshot(["a"])), [Some(9)]);
        lv.record("a", "e1", &item(9));
        lv.record("a", "e1", &item(12));
        assert_eq!(offsets(lv.snapshot(["a"])), [Some(12)]);
        assert_eq!(lv.event_count(), 1);
    }

    #[test]
    fn is_bounded_in_channels_and_names() {
        let mut lv = LastValues::new(2, 2);
        lv.record("a", "e1", &item(1));
        lv.record("b", "e1", &item(2));
        lv.record("a", "e1", &item(3));
        lv.record("c", "e1", &item(4)); // evicts b, the stalest
        assert_eq!(lv.channel_count(), 2);
        assert!(lv.snapshot(["b"]).is_empty());
        lv.record("a", "e2", &item(5));
        lv.record("a", "e3", &item(6)); // replaces e1 (offset 3), the oldest
        assert_eq!(offsets(lv.snapshot(["a"])), [Some(5), Some(6)]);
    }
}
