//! Throttle rules: which channels are throttled, how long their window is,
//! and whether a window's events are aggregated or conflated (latest wins).
//! They apply to any event on a matching channel, so apps that broadcast
//! through the Laravel driver get the same protection without code changes.

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Numeric samples in events are aggregated per series (count, sum, min,
    /// max, average, first, last) into one `scada.data.received` per window.
    Aggregate,
    /// Only the latest event of each name is delivered per window.
    Latest,
}

/// One rule from the configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Channel pattern; `*` matches any run of characters (`scada-*`).
    pub channels: String,
    /// Window length (1..=60000).
    pub window_ms: u32,
    pub mode: Mode,
}

impl RuleConfig {
    /// Parses the compact form used by `SCADA_THROTTLE`:
    /// `scada-*=100:aggregate;alarms-*=1000:latest`.
    pub fn parse_list(text: &str) -> Result<Vec<RuleConfig>, String> {
        text.split([';', ','])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|item| {
                let (channels, rest) = item.split_once('=').ok_or_else(|| {
                    format!("throttle rule {item:?}: expected pattern=window_ms:mode")
                })?;
                let (ms, mode) = rest.split_once(':').unwrap_or((rest, "aggregate"));
                let window_ms = ms.trim().parse().map_err(|_| {
                    format!("throttle rule {item:?}: window {ms:?} is not a number of milliseconds")
                })?;
                let mode = match mode.trim() {
                    "aggregate" => Mode::Aggregate,
                    "latest" => Mode::Latest,
                    other => {
                        return Err(format!(
                            "throttle rule {item:?}: mode {other:?} must be aggregate or latest"
                        ))
                    }
                };
                Ok(RuleConfig {
                    channels: channels.trim().to_string(),
                    window_ms,
                    mode,
                })
            })
            .collect()
    }

    pub fn validate(&self) -> Result<(), String> {
        if !(1..=60_000).contains(&self.window_ms) {
            return Err(format!(
                "throttle rule {:?}: window_ms must be 1..=60000",
                self.channels
            ));
        }
        validate_pattern(&self.channels).map_err(|e| format!("throttle rule {e}"))
    }
}

/// A channel pattern (throttle and priority rules): channel characters and `*`.
pub fn validate_pattern(pattern: &str) -> Result<(), String> {
    if pattern.is_empty()
        || !pattern
            .bytes()
            .all(|b| b == b'*' || scada_core::validate::channel_name(&[b]).is_ok())
    {
        return Err(format!(
            "pattern {pattern:?} must be channel characters and *"
        ));
    }
    Ok(())
}

pub use scada_core::validate::glob;

/// The configured rules, first match wins.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    rules: Vec<RuleConfig>,
}

impl Rules {
    pub fn new(rules: Vec<RuleConfig>) -> Self {
        Self { rules }
    }

    pub fn matching(&self, channel: &str) -> Option<&RuleConfig> {
        self.rules.iter().find(|r| glob(&r.channels, channel))
    }

    /// True when raw events on `channel` go through the throttle stage
    /// instead of straight to the sinks.
    pub fn throttles(&self, channel: &str) -> bool {
        !self.rules.is_empty() && self.matching(channel).is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_env_form_and_matches_first_rule() {
        let rules =
            RuleConfig::parse_list("scada-*=100:aggregate; alarms-*=1000:latest,other=5").unwrap();
        assert_eq!(rules.len(), 3);
        assert_eq!(rules[2].mode, Mode::Aggregate);
        let r = Rules::new(rules);
        assert_eq!(r.matching("alarms-plc").unwrap().window_ms, 1000);
        assert!(r.throttles("scada-x") && !r.throttles("orders"));
        assert!(RuleConfig::parse_list("x=abc").is_err());
        assert!(RuleConfig::parse_list("x=10:sometimes").is_err());
        assert!(RuleConfig {
            channels: "bad channel".into(),
            window_ms: 10,
            mode: Mode::Latest
        }
        .validate()
        .is_err());
        assert!(RuleConfig {
            channels: "ok*".into(),
            window_ms: 0,
            mode: Mode::Latest
        }
        .validate()
        .is_err());
    }
}
