//! Samples inside ordinary events, for `aggregate` rules: an app that
//! broadcasts `ScadaDataReceived`-shaped events through the Laravel driver
//! gets the same aggregation as `broadcastAggregatedData`.
//!
//! From the payload's `data` (or the payload itself): a sample
//! (`{"channel": "PLC-1", "value": 42.1, ...}`), a list of samples, or a flat
//! map `tag => number`. Anything else is not aggregatable (the event is
//! conflated instead).

use serde_json::{Map, Value};

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64().filter(|f| f.is_finite()),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

fn series_of(sample: &Map<String, Value>) -> String {
    match sample.get("channel") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "unknown".into(),
    }
}

/// `(series, value)` pairs, or `None` when the payload holds no samples.
pub fn samples(payload: &[u8]) -> Option<Vec<(String, f64)>> {
    let root: Value = serde_json::from_slice(payload).ok()?;
    let data = match root.get("data") {
        Some(d) => d,
        None => &root,
    };
    let mut out = Vec::new();
    match data {
        Value::Array(items) => {
            for item in items {
                let obj = item.as_object()?;
                out.push((series_of(obj), number(obj.get("value")?)?));
            }
        }
        Value::Object(obj) if obj.contains_key("value") => {
            out.push((series_of(obj), number(obj.get("value")?)?));
        }
        Value::Object(obj) => {
            for (k, v) in obj {
                out.push((k.clone(), number(v)?));
            }
        }
        _ => return None,
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_three_shapes() {
        assert_eq!(
            samples(br#"{"data":{"id":1,"channel":"PLC-1","value":42.5,"unit":"C"},"channel":"scada-live"}"#),
            Some(vec![("PLC-1".into(), 42.5)])
        );
        assert_eq!(
            samples(br#"{"data":[{"channel":"a","value":1},{"value":"2.5"}]}"#),
            Some(vec![("a".into(), 1.0), ("unknown".into(), 2.5)])
        );
        assert_eq!(
            samples(br#"{"temp":21.5,"pressure":-1}"#),
            Some(vec![("pressure".into(), -1.0), ("temp".into(), 21.5)])
        );
        assert_eq!(samples(br#"{"data":{"order":"x"}}"#), None);
        assert_eq!(samples(br#"{"data":[{"channel":"a"}]}"#), None);
        assert_eq!(samples(br#"{}"#), None);
        assert_eq!(samples(b"not json"), None);
    }
}
