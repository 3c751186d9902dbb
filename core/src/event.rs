//! The broadcast event record.
//!
//! ```text
//! Event payload (after version and kind):
//!   origin:u64 | seq:u64 | created_us:u64 | flags:u8
//!   channel_count:u8 | (len:u8 | channel)*
//!   event_len:u16 | event
//!   socket_len:u8 | socket_id          (0 = none)
//!   payload_len:u32 | payload          (a JSON object: the event's data)
//! ```
//! The payload is encoded once, by the extension, and travels as raw bytes:
//! sinks splice it into their own formats without parsing it.

use std::fmt;

use crate::frame::{FrameBuilder, FrameError, FrameKind, Reader};
use crate::validate;

/// Most channels one event may name (Pusher's limit for one trigger).
pub const MAX_CHANNELS: usize = 100;

/// Event flags (one byte; bits are append-only).
pub mod flags {
    /// Produced by the sidecar's throttle stage (an aggregate or the latest of
    /// a window): delivered as is, never throttled again.
    pub const DERIVED: u8 = 1;
}

/// Unique identity of an event: the producing process generation and a counter.
///
/// `origin` is random per process generation (a fork gets a new one), `seq`
/// counts up from 1 inside it. The pair survives every hop, so a subscriber or
/// the sidecar can tell a redelivery from a new event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId {
    pub origin: u64,
    pub seq: u64,
}

impl EventId {
    /// 32 lowercase hex digits, the form used in logs and idempotency keys.
    pub fn to_hex(self) -> [u8; 32] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 32];
        let v = ((self.origin as u128) << 64) | self.seq as u128;
        for (i, b) in out.iter_mut().enumerate() {
            *b = HEX[((v >> (124 - 4 * i)) & 0xf) as usize];
        }
        out
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}{:016x}", self.origin, self.seq)
    }
}

/// Writes an event frame in place, field by field, so the extension can
/// encode the payload straight into the output buffer.
///
/// Order: [`begin`](Self::begin), [`channel`](Self::channel) (1..=100 times),
/// [`event`](Self::event), payload bytes appended by the caller,
/// [`finish`](Self::finish). Names are validated by the caller beforehand.
pub struct EventWriter {
    frame: FrameBuilder,
    count_at: usize,
    channels: usize,
    payload_len_at: usize,
}

impl EventWriter {
    pub fn begin(out: &mut Vec<u8>, id: EventId, created_us: u64) -> Self {
        Self::begin_with_flags(out, id, created_us, 0)
    }

    /// As [`begin`](Self::begin), with [`flags`].
    pub fn begin_with_flags(
        out: &mut Vec<u8>,
        id: EventId,
        created_us: u64,
        event_flags: u8,
    ) -> Self {
        let frame = FrameBuilder::begin(out, FrameKind::Event);
        out.extend_from_slice(&id.origin.to_le_bytes());
        out.extend_from_slice(&id.seq.to_le_bytes());
        out.extend_from_slice(&created_us.to_le_bytes());
        out.push(event_flags);
        let count_at = out.len();
        out.push(0);
        Self {
            frame,
            count_at,
            channels: 0,
            payload_len_at: 0,
        }
    }

    /// Adds a channel. Fails past [`MAX_CHANNELS`] or for a name over 200 bytes.
    pub fn channel(&mut self, out: &mut Vec<u8>, name: &[u8]) -> Result<(), FrameError> {
        if self.channels == MAX_CHANNELS {
            return Err(FrameError::Malformed("more than 100 channels"));
        }
        if name.len() > validate::MAX_CHANNEL_LEN {
            return Err(FrameError::Malformed("channel name over 200 bytes"));
        }
        out.push(name.len() as u8);
        out.extend_from_slice(name);
        self.channels += 1;
        out[self.count_at] = self.channels as u8;
        Ok(())
    }

    /// Writes the event name and socket id and opens the payload.
    pub fn event(
        &mut self,
        out: &mut Vec<u8>,
        name: &[u8],
        socket_id: Option<&[u8]>,
    ) -> Result<(), FrameError> {
        if name.len() > u16::MAX as usize {
            return Err(FrameError::Malformed("event name too long"));
        }
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(name);
        let socket = socket_id.unwrap_or_default();
        if socket.len() > u8::MAX as usize {
            return Err(FrameError::Malformed("socket id too long"));
        }
        out.push(socket.len() as u8);
        out.extend_from_slice(socket);
        self.payload_len_at = out.len();
        out.extend_from_slice(&[0; 4]);
        Ok(())
    }

    /// Offset where the payload starts (to measure or inspect it).
    pub fn payload_start(&self) -> usize {
        self.payload_len_at + 4
    }

    /// Seals the frame; the payload is everything appended since [`event`](Self::event).
    pub fn finish(self, out: &mut Vec<u8>) -> Result<(), FrameError> {
        if self.channels == 0 {
            self.frame.abandon(out);
            return Err(FrameError::Malformed("event without channels"));
        }
        let len = (out.len() - self.payload_len_at - 4) as u32;
        out[self.payload_len_at..self.payload_len_at + 4].copy_from_slice(&len.to_le_bytes());
        self.frame.finish(out)
    }

    pub fn abandon(self, out: &mut Vec<u8>) {
        self.frame.abandon(out);
    }
}

/// Where the event id (`origin:u64 | seq:u64`) starts in a complete frame:
/// after the frame header, version and kind. Samples frames share the layout.
pub const ID_OFFSET: usize = crate::frame::HEADER_LEN + 2;

/// Gives a sealed event or samples frame its sequence number and re-seals it.
///
/// The extension encodes frames with `seq` 0 and numbers them only once they
/// are accepted, in the order they were queued, so refused or evicted calls
/// never leave gaps in a process's ids.
pub fn set_seq(frame: &mut [u8], seq: u64) -> Result<(), FrameError> {
    let kind = frame.get(crate::frame::HEADER_LEN + 1).copied();
    if !matches!(kind, Some(k) if k == FrameKind::Event as u8 || k == FrameKind::Samples as u8)
        || frame.len() < ID_OFFSET + 16
    {
        return Err(FrameError::Malformed("not an event or samples frame"));
    }
    frame[ID_OFFSET + 8..ID_OFFSET + 16].copy_from_slice(&seq.to_le_bytes());
    crate::frame::reseal(frame);
    Ok(())
}

/// A decoded event, borrowing from the frame it came from.
#[derive(Debug, Clone, Copy)]
pub struct EventView<'a> {
    pub id: EventId,
    pub created_us: u64,
    /// See [`flags`].
    pub flags: u8,
    channels: &'a [u8],
    pub channel_count: usize,
    pub event: &'a str,
    /// Socket id to exclude from delivery (Pusher `socket_id`), if any.
    pub socket_id: Option<&'a str>,
    /// The event's data: a JSON object, as encoded by the extension.
    pub payload: &'a [u8],
}

impl<'a> EventView<'a> {
    /// Decodes and re-validates an event payload. The sidecar calls this on
    /// every frame from a socket or spool file, so nothing a local process
    /// writes is trusted blindly.
    pub fn decode(payload: &'a [u8]) -> Result<Self, FrameError> {
        let mut r = Reader::new(payload);
        let origin = r.u64("event id")?;
        let seq = r.u64("event id")?;
        let created_us = r.u64("event time")?;
        let event_flags = r.u8("event flags")?;
        let channel_count = r.u8("channel count")? as usize;
        if channel_count == 0 || channel_count > MAX_CHANNELS {
            return Err(FrameError::Malformed("channel count outside 1..=100"));
        }
        let before = r.remaining();
        for _ in 0..channel_count {
            let name = r.str8("channel")?;
            validate::channel_name(name).map_err(|_| FrameError::Malformed("invalid channel"))?;
        }
        let channels_len = before - r.remaining();
        let channels_start = payload.len() - before;
        let channels = &payload[channels_start..channels_start + channels_len];
        let event = r.str16("event name")?;
        let event =
            validate::event_name(event).map_err(|_| FrameError::Malformed("invalid event name"))?;
        let socket = r.str8("socket id")?;
        let socket_id = if socket.is_empty() {
            None
        } else {
            Some(
                validate::socket_id(socket)
                    .map_err(|_| FrameError::Malformed("invalid socket id"))?,
            )
        };
        let body = r.bytes32("payload")?;
        r.finish("trailing bytes after payload")?;
        if body.first() != Some(&b'{') || body.last() != Some(&b'}') {
            return Err(FrameError::Malformed("payload is not a JSON object"));
        }
        Ok(Self {
            id: EventId { origin, seq },
            created_us,
            flags: event_flags,
            channels,
            channel_count,
            event,
            socket_id,
            payload: body,
        })
    }

    /// Produced by the throttle stage (deliver as is).
    pub fn is_derived(&self) -> bool {
        self.flags & flags::DERIVED != 0
    }

    /// The channel names (validated ASCII).
    pub fn channels(&self) -> ChannelIter<'a> {
        ChannelIter {
            rest: self.channels,
        }
    }
}

/// Iterator over the channel names of an [`EventView`].
#[derive(Clone)]
pub struct ChannelIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for ChannelIter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let (&len, rest) = self.rest.split_first()?;
        let (name, rest) = rest.split_at(len as usize);
        self.rest = rest;
        // Validated as ASCII by `EventView::decode`.
        std::str::from_utf8(name).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{Frame, MAX_BODY_LEN};

    fn encode(channels: &[&str], event: &str, socket: Option<&str>, payload: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = EventWriter::begin(
            &mut out,
            EventId { origin: 7, seq: 42 },
            1_700_000_000_000_000,
        );
        for c in channels {
            w.channel(&mut out, c.as_bytes()).unwrap();
        }
        w.event(&mut out, event.as_bytes(), socket.map(str::as_bytes))
            .unwrap();
        out.extend_from_slice(payload.as_bytes());
        w.finish(&mut out).unwrap();
        out
    }

    #[test]
    fn set_seq_numbers_event_and_samples_frames_and_reseals_them() {
        let mut ev = encode(&["a"], "e", None, "{}");
        set_seq(&mut ev, 99).unwrap();
        let f = Frame::parse(&ev, MAX_BODY_LEN).unwrap().unwrap();
        let v = EventView::decode(f.payload).unwrap();
        assert_eq!(v.id, EventId { origin: 7, seq: 99 });

        let mut out = Vec::new();
        let id = EventId { origin: 5, seq: 0 };
        let mut w = crate::SamplesWriter::begin(&mut out, id, 1, 100, b"c").unwrap();
        w.sample(&mut out, b"s", 1.5).unwrap();
        w.finish(&mut out).unwrap();
        set_seq(&mut out, 3).unwrap();
        let f = Frame::parse(&out, MAX_BODY_LEN).unwrap().unwrap();
        assert_eq!(crate::SamplesView::decode(f.payload).unwrap().id.seq, 3);

        let mut hello = Vec::new();
        let b = crate::frame::FrameBuilder::begin(&mut hello, FrameKind::Hello);
        hello.extend_from_slice(&[0; 20]);
        b.finish(&mut hello).unwrap();
        assert!(
            set_seq(&mut hello, 1).is_err(),
            "only events and samples carry ids"
        );
        assert!(set_seq(&mut ev[..12], 1).is_err(), "too short");
    }

    #[test]
    fn encodes_and_decodes_every_field() {
        let buf = encode(
            &["scada-data", "private-plc.1"],
            "scada.data.received",
            Some("123.456"),
            r#"{"a":1}"#,
        );
        let frame = Frame::parse(&buf, MAX_BODY_LEN).unwrap().unwrap();
        assert_eq!(frame.kind, FrameKind::Event);
        let ev = EventView::decode(frame.payload).unwrap();
        assert_eq!(ev.id, EventId { origin: 7, seq: 42 });
        assert_eq!(ev.created_us, 1_700_000_000_000_000);
        assert_eq!(
            ev.channels().collect::<Vec<_>>(),
            ["scada-data", "private-plc.1"]
        );
        assert_eq!(ev.channel_count, 2);
        assert_eq!(ev.event, "scada.data.received");
        assert_eq!(ev.socket_id, Some("123.456"));
        assert_eq!(ev.payload, br#"{"a":1}"#);
    }

    #[test]
    fn refuses_events_without_channels_or_with_bad_fields() {
        let mut out = Vec::new();
        let mut w = EventWriter::begin(&mut out, EventId { origin: 1, seq: 1 }, 0);
        w.event(&mut out, b"e", None).unwrap();
        out.extend_from_slice(b"{}");
        assert!(w.finish(&mut out).is_err());
        assert!(out.is_empty());

        let buf = encode(&["ok"], "e", None, "[1]");
        let frame = Frame::parse(&buf, MAX_BODY_LEN).unwrap().unwrap();
        assert!(EventView::decode(frame.payload).is_err());

        let buf = encode(&["bad channel"], "e", None, "{}");
        let frame = Frame::parse(&buf, MAX_BODY_LEN).unwrap().unwrap();
        assert!(EventView::decode(frame.payload).is_err());
    }

    #[test]
    fn decode_never_panics_on_truncated_payloads() {
        let buf = encode(&["a", "b"], "ev", Some("1.2"), r#"{"x":"y"}"#);
        let frame = Frame::parse(&buf, MAX_BODY_LEN).unwrap().unwrap();
        for cut in 0..frame.payload.len() {
            assert!(EventView::decode(&frame.payload[..cut]).is_err());
        }
    }

    #[test]
    fn id_hex_matches_display() {
        let id = EventId {
            origin: 0xdead_beef,
            seq: 0x1234,
        };
        assert_eq!(std::str::from_utf8(&id.to_hex()).unwrap(), id.to_string());
        assert_eq!(id.to_string(), "00000000deadbeef0000000000001234");
    }
}
