//! The latest event per (channel, event name), for clients that connect
//! without a `Last-Event-ID`: they see the current state at once, then the
//! live stream. Bounded in channels and in event names per channel.

use std::collections::HashMap;
use std::sync::Arc;

use super::Item;

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
            slot.1 = item.clone();
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
