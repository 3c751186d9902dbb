//! Which events each stage sees: one policy for every sink and the throttle stage.
//!
//! * A raw event's channel that a throttle rule matches belongs to the
//!   throttle stage: the stage takes it as input, and no sink delivers the
//!   event on that channel.
//! * Every other channel of a raw event, and every channel of a derived
//!   event (the throttle stage's output), is delivered by every sink.
//! * Samples frames are throttle input only.
//! * A channel a priority rule (`SCADA_PRIORITY`) matches is never throttle
//!   input (a priority rule beats a throttle rule), and an event delivered
//!   on at least one priority channel goes through each destination's
//!   priority lane; every other event through its telemetry lane.

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
    /// Not this sink's business (samples, unreadable, the other lane's).
    Skip,
}

/// A destination's lane: alarms ahead of telemetry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Events on at least one priority channel.
    Priority,
    /// Everything else.
    Telemetry,
}

impl Lane {
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Priority => "priority",
            Lane::Telemetry => "telemetry",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Routing {
    rules: Arc<Rules>,
    /// Channel patterns of the priority rule (same syntax as throttle rules).
    priority: Arc<Vec<String>>,
    /// Set for a sink that runs one lane: the other lane's events are skipped.
    lane: Option<Lane>,
}

impl Routing {
    pub fn new(rules: Arc<Rules>) -> Self {
        Self::with_priority(rules, Vec::new())
    }

    pub fn with_priority(rules: Arc<Rules>, priority: Vec<String>) -> Self {
        Self {
            rules,
            priority: Arc::new(priority),
            lane: None,
        }
    }

    /// The same policy for a sink that delivers only `lane`'s events.
    pub fn for_lane(&self, lane: Lane) -> Self {
        Self {
            lane: Some(lane),
            ..self.clone()
        }
    }

    /// True when a priority rule exists: destinations then run two lanes.
    pub fn has_priority(&self) -> bool {
        !self.priority.is_empty()
    }

    /// Whether the priority rule matches `channel`.
    pub fn is_priority(&self, channel: &str) -> bool {
        self.priority
            .iter()
            .any(|p| scada_core::validate::glob(p, channel))
    }

    /// The lane of a delivered event: priority when any channel a sink
    /// delivers it on is a priority channel.
    pub fn lane_of(&self, ev: &EventView<'_>) -> Lane {
        if self.has_priority() && self.sink_channels(ev).any(|c| self.is_priority(c)) {
            Lane::Priority
        } else {
            Lane::Telemetry
        }
    }

    /// The throttle rule that takes `channel` of `ev` as input, if any.
    pub fn throttle_rule<'r>(
        &'r self,
        ev: &EventView<'_>,
        channel: &str,
    ) -> Option<&'r RuleConfig> {
        if ev.is_derived() || self.rules.is_empty() || self.is_priority(channel) {
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
            match self.lane {
                // The other lane of this destination delivers it.
                Some(lane) if self.lane_of(&ev) != lane => Route::Skip,
                _ => Route::Deliver(ev),
            }
        } else if self.lane == Some(Lane::Priority) {
            // Counted once, by the telemetry lane.
            Route::Skip
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

    #[test]
    fn priority_channels_bypass_throttle_rules_and_take_the_priority_lane() {
        let r = Routing::with_priority(
            Arc::new(Rules::new(
                RuleConfig::parse_list("*=100:aggregate").unwrap(),
            )),
            vec!["alarms-*".into()],
        );
        // The throttle rule matches everything but the priority channels.
        assert_eq!(route(&r, &frame(&["scada-1"], 0)), None);
        assert_eq!(
            route(&r, &frame(&["alarms-1", "scada-1"], 0)),
            Some(vec!["alarms-1".into()])
        );
        let prio = r.for_lane(Lane::Priority);
        let tele = r.for_lane(Lane::Telemetry);
        let skip = Some(vec!["skip".to_string()]);
        assert_eq!(
            route(&prio, &frame(&["alarms-1"], 0)),
            Some(vec!["alarms-1".into()])
        );
        assert_eq!(route(&tele, &frame(&["alarms-1"], 0)), skip);
        // A derived (throttle output) event is telemetry unless on a priority channel.
        assert_eq!(route(&prio, &frame(&["scada-1"], DERIVED)), skip);
        assert_eq!(
            route(&tele, &frame(&["scada-1"], DERIVED)),
            Some(vec!["scada-1".into()])
        );
        // Throttled: counted by the telemetry lane only.
        assert_eq!(route(&tele, &frame(&["scada-1"], 0)), None);
        assert_eq!(route(&prio, &frame(&["scada-1"], 0)), skip);
        assert!(r.has_priority() && r.is_priority("alarms-x") && !r.is_priority("alarm"));
        // No rule: one lane, everything telemetry.
        let none = Routing::default();
        assert!(!none.has_priority());
        let f = frame(&["alarms-1"], 0);
        let parsed = Frame::parse(&f, MAX_BODY_LEN).unwrap().unwrap();
        let Route::Deliver(ev) = none.for_sink(parsed.kind, parsed.payload) else {
            panic!("delivered")
        };
        assert_eq!(none.lane_of(&ev), Lane::Telemetry);
    }
}
