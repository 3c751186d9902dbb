//! Which events each stage sees: one policy for every sink and the throttle stage.
//!
//! * A raw event's channel that a throttle rule matches belongs to the
//!   throttle stage: the stage takes it as input, and no sink delivers the
//!   event on that channel.
//! * Every other channel of a raw event, and every channel of a derived
//!   event (the throttle stage's output), is delivered by every sink.
//! * Samples frames are throttle input only.

use std::sync::Arc;

use scada_core::frame::FrameKind;
use scada_core::EventView;

use crate::throttle::rules::{RuleConfig, Rules};

/// What a sink does with a journal frame.
#[derive(Debug, Clone, Copy)]
pub enum Route<'a> {
    /// Deliver it on [`Routing::sink_channels`] (at least one).
    Deliver(EventView<'a>),
    /// Every channel is throttled: the throttle stage delivers for it (counted as `throttled`).
    Throttled,
    /// Not a destination's business (samples, unreadable).
    Skip,
}

#[derive(Debug, Clone, Default)]
pub struct Routing {
    rules: Arc<Rules>,
}

impl Routing {
    pub fn new(rules: Arc<Rules>) -> Self {
        Self { rules }
    }

    /// The throttle rule that takes `channel` of `ev` as input, if any.
    pub fn throttle_rule<'r>(
        &'r self,
        ev: &EventView<'_>,
        channel: &str,
    ) -> Option<&'r RuleConfig> {
        if ev.is_derived() || self.rules.is_empty() {
            return None;
        }
        self.rules.matching(channel)
    }

    /// True when some raw event may be throttled (the stage has work).
    pub fn has_rules(&self) -> bool {
        !self.rules.is_empty()
    }

    /// Whether a sink delivers `ev` on `channel`.
    pub fn delivers_on(&self, ev: &EventView<'_>, channel: &str) -> bool {
        self.throttle_rule(ev, channel).is_none()
    }

    /// The channels a sink delivers `ev` on, in the event's order.
    pub fn sink_channels<'a>(&'a self, ev: &EventView<'a>) -> impl Iterator<Item = &'a str> + 'a {
        let ev = *ev;
        ev.channels().filter(move |c| self.delivers_on(&ev, c))
    }

    /// What a sink does with the frame `(kind, payload)`.
    pub fn for_sink<'a>(&self, kind: FrameKind, payload: &'a [u8]) -> Route<'a> {
        if kind != FrameKind::Event {
            return Route::Skip;
        }
        let Ok(ev) = EventView::decode(payload) else {
            return Route::Skip;
        };
        if ev.channels().any(|c| self.delivers_on(&ev, c)) {
            Route::Deliver(ev)
        } else {
            Route::Throttled
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::throttle::rules::RuleConfig;
    use scada_core::event::flags::DERIVED;
    use scada_core::frame::{Frame, MAX_BODY_LEN};
    use scada_core::{EventId, EventWriter};

    fn frame(channels: &[&str], flags: u8) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w =
            EventWriter::begin_with_flags(&mut out, EventId { origin: 1, seq: 1 }, 0, flags);
        for c in channels {
            w.channel(&mut out, c.as_bytes()).unwrap();
        }
        w.event(&mut out, b"e", None).unwrap();
        out.extend_from_slice(b"{}");
        w.finish(&mut out).unwrap();
        out
    }

    fn route(r: &Routing, buf: &[u8]) -> Option<Vec<String>> {
        let f = Frame::parse(buf, MAX_BODY_LEN).unwrap().unwrap();
        match r.for_sink(f.kind, f.payload) {
            Route::Deliver(ev) => Some(r.sink_channels(&ev).map(str::to_string).collect()),
            Route::Throttled => None,
            Route::Skip => Some(vec!["skip".into()]),
        }
    }

    #[test]
    fn throttled_channels_go_to_the_stage_and_the_rest_to_sinks() {
        let r = Routing::new(Arc::new(Rules::new(
            RuleConfig::parse_list("scada-*=100:aggregate").unwrap(),
        )));
        assert_eq!(
            route(&r, &frame(&["orders"], 0)),
            Some(vec!["orders".into()])
        );
        assert_eq!(route(&r, &frame(&["scada-1"], 0)), None);
        assert_eq!(
            route(&r, &frame(&["scada-1", "orders", "scada-2", "b"], 0)),
            Some(vec!["orders".into(), "b".into()])
        );
        // The stage's own output is delivered as it is.
        assert_eq!(
            route(&r, &frame(&["scada-1"], DERIVED)),
            Some(vec!["scada-1".into()])
        );
        let none = Routing::default();
        assert_eq!(
            route(&none, &frame(&["scada-1"], 0)),
            Some(vec!["scada-1".into()])
        );
    }
}
