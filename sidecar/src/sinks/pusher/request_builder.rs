//! Pusher HTTP API request bodies and signed URLs, built without I/O.

use scada_core::pusher::Signer;
use scada_core::{json, EventView};

use crate::config::PusherConfig;

/// Why an event can never be accepted by this target (a permanent failure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// `data` over the target's per-event limit.
    DataTooLarge { bytes: usize, limit: usize },
    /// The whole request for this one event is over the target's limit.
    RequestTooLarge { bytes: usize, limit: usize },
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::DataTooLarge { bytes, limit } => write!(f, "event data is {bytes} bytes, over the target's {limit} byte limit (max_event_bytes)"),
            Self::RequestTooLarge { bytes, limit } => write!(f, "request for one event is {bytes} bytes, over the target's {limit} byte limit (max_request_bytes)"),
        }
    }
}

/// Checks what the target would refuse for this event alone.
pub fn check(cfg: &PusherConfig, ev: &EventView<'_>) -> Result<(), Violation> {
    check_on(cfg, ev, ev.channels().next().unwrap_or_default())
}

/// [`check`] for an event delivered on `channel` (its first delivered one).
pub fn check_on(cfg: &PusherConfig, ev: &EventView<'_>, channel: &str) -> Result<(), Violation> {
    if ev.payload.len() > cfg.max_event_bytes {
        return Err(Violation::DataTooLarge {
            bytes: ev.payload.len(),
            limit: cfg.max_event_bytes,
        });
    }
    if cfg.max_request_bytes > 0 {
        let mut body = Vec::new();
        if ev.channel_count > 1 {
            events_body(&mut body, ev, cfg.idempotency_key, &|_| true);
        } else {
            batch_open(&mut body);
            batch_item(&mut body, ev, channel, cfg.idempotency_key);
            batch_close(&mut body);
        }
        if body.len() > cfg.max_request_bytes {
            return Err(Violation::RequestTooLarge {
                bytes: body.len(),
                limit: cfg.max_request_bytes,
            });
        }
    }
    Ok(())
}

fn string(out: &mut Vec<u8>, s: &[u8]) {
    // Everything here was validated as UTF-8 on ingest.
    let _ = json::write_string(out, s);
}

/// What a Pusher client receives as an event's `data`: the payload JSON,
/// exactly what Laravel's Pusher driver sends (payload without `socket`).
/// The SSE listener sends the same bytes as its `data:`.
pub fn client_data<'a>(ev: &EventView<'a>) -> &'a [u8] {
    ev.payload
}

fn common_fields(out: &mut Vec<u8>, ev: &EventView<'_>, idempotency: bool) {
    out.extend_from_slice(b",\"data\":");
    // The event's data travels as a JSON string holding the client data.
    string(out, client_data(ev));
    if let Some(socket) = ev.socket_id {
        out.extend_from_slice(b",\"socket_id\":");
        string(out, socket.as_bytes());
    }
    if idempotency {
        out.extend_from_slice(b",\"idempotency_key\":\"");
        out.extend_from_slice(&ev.id.to_hex());
        out.push(b'"');
    }
}

pub fn batch_open(out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"batch\":[");
}

/// One `batch_events` element (an event delivered on one `channel`); call after `batch_open`.
pub fn batch_item(out: &mut Vec<u8>, ev: &EventView<'_>, channel: &str, idempotency: bool) {
    if out.last() != Some(&b'[') {
        out.push(b',');
    }
    out.extend_from_slice(b"{\"name\":");
    string(out, ev.event.as_bytes());
    out.extend_from_slice(b",\"channel\":");
    string(out, channel.as_bytes());
    common_fields(out, ev, idempotency);
    out.push(b'}');
}

pub fn batch_close(out: &mut Vec<u8>) {
    out.extend_from_slice(b"]}");
}

/// An `/events` body for an event on several channels (those `keep` accepts).
pub fn events_body(
    out: &mut Vec<u8>,
    ev: &EventView<'_>,
    idempotency: bool,
    keep: &dyn Fn(&str) -> bool,
) {
    out.extend_from_slice(b"{\"name\":");
    string(out, ev.event.as_bytes());
    out.extend_from_slice(b",\"channels\":[");
    for (i, c) in ev.channels().filter(|c| keep(c)).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, c.as_bytes());
    }
    out.push(b']');
    common_fields(out, ev, idempotency);
    out.push(b'}');
}

/// `path?signed query`, ready to append to the base URL.
pub fn signed_path(signer: &Signer, path: &str, body: &[u8], timestamp: u64) -> String {
    match signer.sign_request("POST", path, &[], body, timestamp) {
        Ok(params) => format!("{path}?{}", scada_core::pusher::join_query(&params)),
        // POST is always a valid method.
        Err(_) => path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scada_core::frame::{Frame, MAX_BODY_LEN};
    use scada_core::{EventId, EventWriter};

    fn frame(channels: &[&str], socket: Option<&str>, payload: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = EventWriter::begin(&mut out, EventId { origin: 1, seq: 2 }, 0);
        for c in channels {
            w.channel(&mut out, c.as_bytes()).unwrap();
        }
        w.event(&mut out, b"scada.data.received", socket.map(str::as_bytes))
            .unwrap();
        out.extend_from_slice(payload.as_bytes());
        w.finish(&mut out).unwrap();
        out
    }

    fn with<T>(buf: &[u8], f: impl FnOnce(&EventView<'_>) -> T) -> T {
        let fr = Frame::parse(buf, MAX_BODY_LEN).unwrap().unwrap();
        f(&EventView::decode(fr.payload).unwrap())
    }

    #[test]
    fn batch_bodies_carry_data_as_a_json_string() {
        let a = frame(&["scada-data"], None, r#"{"v":1.5,"s":"a\/b"}"#);
        let b = frame(&["private-x"], Some("1.2"), "{}");
        let mut body = Vec::new();
        batch_open(&mut body);
        with(&a, |ev| batch_item(&mut body, ev, "scada-data", false));
        with(&b, |ev| batch_item(&mut body, ev, "private-x", true));
        batch_close(&mut body);
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"batch":[{"name":"scada.data.received","channel":"scada-data","data":"{\"v\":1.5,\"s\":\"a\\\/b\"}"},{"name":"scada.data.received","channel":"private-x","data":"{}","socket_id":"1.2","idempotency_key":"00000000000000010000000000000002"}]}"#
        );
    }

    #[test]
    fn multi_channel_events_use_the_events_endpoint() {
        let a = frame(&["a", "b"], Some("3.4"), r#"{"k":1}"#);
        let mut body = Vec::new();
        with(&a, |ev| events_body(&mut body, ev, false, &|_| true));
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"name":"scada.data.received","channels":["a","b"],"data":"{\"k\":1}","socket_id":"3.4"}"#
        );
    }

    #[test]
    fn limits_are_checked_per_target() {
        let big = frame(
            &["c"],
            None,
            &format!(r#"{{"x":"{}"}}"#, "y".repeat(11_000)),
        );
        let mut cfg = PusherConfig::default();
        assert!(matches!(
            with(&big, |ev| check(&cfg, ev)),
            Err(Violation::DataTooLarge { limit: 10240, .. })
        ));
        cfg.max_event_bytes = 1 << 20;
        cfg.max_request_bytes = 10_000;
        assert!(matches!(
            with(&big, |ev| check(&cfg, ev)),
            Err(Violation::RequestTooLarge { limit: 10000, .. })
        ));
        let small = frame(&["c"], None, "{}");
        assert_eq!(with(&small, |ev| check(&cfg, ev)), Ok(()));
    }

    #[test]
    fn paths_are_signed_like_the_sdk() {
        let signer = Signer::new("key", "secret", None).unwrap();
        let p = signed_path(&signer, "/apps/1/batch_events", b"{}", 1_700_000_000);
        assert!(p.starts_with("/apps/1/batch_events?auth_key=key&auth_timestamp=1700000000&auth_version=1.0&body_md5=99914b932bd37a50b983c5e7c90ae93b&auth_signature="));
    }
}
