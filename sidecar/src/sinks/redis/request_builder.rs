//! Laravel's RedisBroadcaster format, built without I/O.
//!
//! Laravel publishes, for each channel, `PUBLISH <prefix><channel> <message>`
//! where the message is
//! `{"event":<name>,"data":{...payload...,"socket":<id|null>},"socket":<id|null>}`
//! (`socket` appears twice: the broadcast event merges it into the payload, and
//! the broadcaster adds it again at the top level).

use scada_core::{json, EventView};

/// Appends the message for `ev` to `out`.
pub fn message(out: &mut Vec<u8>, ev: &EventView<'_>) {
    out.extend_from_slice(b"{\"event\":");
    // Validated as UTF-8 on ingest, so this cannot fail.
    let _ = json::write_string(out, ev.event.as_bytes());
    out.extend_from_slice(b",\"data\":");
    let payload = ev.payload;
    // The payload is a JSON object (checked on ingest): splice `socket` in before its `}`.
    let body = &payload[..payload.len() - 1];
    out.extend_from_slice(body);
    if body.len() > 1 {
        out.push(b',');
    }
    out.extend_from_slice(b"\"socket\":");
    socket(out, ev.socket_id);
    out.extend_from_slice(b"},\"socket\":");
    socket(out, ev.socket_id);
    out.push(b'}');
}

fn socket(out: &mut Vec<u8>, id: Option<&str>) {
    match id {
        Some(id) => {
            let _ = json::write_string(out, id.as_bytes());
        }
        None => out.extend_from_slice(b"null"),
    }
}

/// The Redis channel: Laravel's connection prefix, then the broadcast channel.
pub fn channel(out: &mut Vec<u8>, prefix: &str, channel: &str) {
    out.extend_from_slice(prefix.as_bytes());
    out.extend_from_slice(channel.as_bytes());
}

/// The hash keeping a channel's latest message per event name (opt-in,
/// `SCADA_REDIS_LAST_VALUE`): `<prefix>scada:last:<channel>`, field the event
/// name, value the message PUBLISHed. Channel names hold no `:`, so the key
/// is unambiguous; Laravel reads it as `Redis::hgetall('scada:last:<channel>')`
/// (its connection adds the prefix).
pub fn last_value_key(out: &mut Vec<u8>, prefix: &str, channel: &str) {
    out.extend_from_slice(prefix.as_bytes());
    out.extend_from_slice(LAST_VALUE_KEY.as_bytes());
    out.extend_from_slice(channel.as_bytes());
}

/// What follows the prefix in a last-value key, before the channel.
pub const LAST_VALUE_KEY: &str = "scada:last:";

#[cfg(test)]
mod tests {
    use super::*;
    use scada_core::frame::{Frame, MAX_BODY_LEN};
    use scada_core::{EventId, EventWriter};

    fn event(payload: &str, socket: Option<&str>) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = EventWriter::begin(&mut out, EventId { origin: 1, seq: 1 }, 0);
        w.channel(&mut out, b"scada-data").unwrap();
        w.event(&mut out, b"scada.data.received", socket.map(str::as_bytes))
            .unwrap();
        out.extend_from_slice(payload.as_bytes());
        w.finish(&mut out).unwrap();
        out
    }

    fn msg(payload: &str, socket: Option<&str>) -> String {
        let buf = event(payload, socket);
        let f = Frame::parse(&buf, MAX_BODY_LEN).unwrap().unwrap();
        let ev = EventView::decode(f.payload).unwrap();
        let mut out = Vec::new();
        message(&mut out, &ev);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn matches_laravel_redis_broadcaster() {
        // php: json_encode(['event' => 'scada.data.received',
        //   'data' => ['data' => ['value' => 1.5], 'socket' => null], 'socket' => null])
        assert_eq!(
            msg(r#"{"data":{"value":1.5}}"#, None),
            r#"{"event":"scada.data.received","data":{"data":{"value":1.5},"socket":null},"socket":null}"#
        );
        assert_eq!(
            msg(r#"{"a":1}"#, Some("123.456")),
            r#"{"event":"scada.data.received","data":{"a":1,"socket":"123.456"},"socket":"123.456"}"#
        );
        assert_eq!(
            msg("{}", None),
            r#"{"event":"scada.data.received","data":{"socket":null},"socket":null}"#
        );
    }

    #[test]
    fn channel_gets_the_connection_prefix() {
        let mut out = Vec::new();
        channel(&mut out, "laravel_database_", "private-orders.1");
        assert_eq!(out, b"laravel_database_private-orders.1");
    }

    #[test]
    fn last_value_keys_are_prefixed_per_channel() {
        let mut out = Vec::new();
        last_value_key(&mut out, "laravel_database_", "plant-1");
        assert_eq!(out, b"laravel_database_scada:last:plant-1");
    }
}
