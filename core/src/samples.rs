//! Samples: numeric values for host-wide throttled aggregation
//! (`broadcastAggregatedData`). All PHP processes sending to one channel share
//! one window in the sidecar, which emits one aggregated event per window.
//!
//! ```text
//! Samples payload (after version and kind):
//!   origin:u64 | seq:u64 | created_us:u64 | throttle_ms:u32
//!   channel_len:u8 | channel
//!   count:u32 | (series_len:u16 | series | value:f64)*
//! ```
//! Values are finite (checked by the extension and again on decode).

use crate::event::EventId;
use crate::frame::{FrameBuilder, FrameError, FrameKind, Reader};
use crate::validate;

/// Shortest and longest throttle window a caller may ask for.
pub const MIN_THROTTLE_MS: u32 = 1;
pub const MAX_THROTTLE_MS: u32 = 60_000;
/// Most samples in one frame.
pub const MAX_SAMPLES: usize = 65_536;
/// Longest series name.
pub const MAX_SERIES_LEN: usize = 200;

/// Writes a samples frame in place: [`begin`](Self::begin), [`sample`](Self::sample)…, [`finish`](Self::finish).
pub struct SamplesWriter {
    frame: FrameBuilder,
    count_at: usize,
    count: u32,
}

impl SamplesWriter {
    /// `channel` must be a valid channel name (checked by the caller).
    pub fn begin(
        out: &mut Vec<u8>,
        id: EventId,
        created_us: u64,
        throttle_ms: u32,
        channel: &[u8],
    ) -> Result<Self, FrameError> {
        if channel.len() > validate::MAX_CHANNEL_LEN {
            return Err(FrameError::Malformed("channel name over 200 bytes"));
        }
        let frame = FrameBuilder::begin(out, FrameKind::Samples);
        out.extend_from_slice(&id.origin.to_le_bytes());
        out.extend_from_slice(&id.seq.to_le_bytes());
        out.extend_from_slice(&created_us.to_le_bytes());
        out.extend_from_slice(&throttle_ms.to_le_bytes());
        out.push(channel.len() as u8);
        out.extend_from_slice(channel);
        let count_at = out.len();
        out.extend_from_slice(&[0; 4]);
        Ok(Self {
            frame,
            count_at,
            count: 0,
        })
    }

    pub fn sample(
        &mut self,
        out: &mut Vec<u8>,
        series: &[u8],
        value: f64,
    ) -> Result<(), FrameError> {
        if series.len() > MAX_SERIES_LEN {
            return Err(FrameError::Malformed("series name over 200 bytes"));
        }
        if self.count as usize == MAX_SAMPLES {
            return Err(FrameError::Malformed("more than 65536 samples in one call"));
        }
        out.extend_from_slice(&(series.len() as u16).to_le_bytes());
        out.extend_from_slice(series);
        out.extend_from_slice(&value.to_bits().to_le_bytes());
        self.count += 1;
        Ok(())
    }

    pub fn finish(self, out: &mut Vec<u8>) -> Result<(), FrameError> {
        out[self.count_at..self.count_at + 4].copy_from_slice(&self.count.to_le_bytes());
        self.frame.finish(out)
    }

    pub fn abandon(self, out: &mut Vec<u8>) {
        self.frame.abandon(out);
    }
}

/// A decoded samples frame.
#[derive(Debug, Clone, Copy)]
pub struct SamplesView<'a> {
    pub id: EventId,
    pub created_us: u64,
    pub throttle_ms: u32,
    pub channel: &'a str,
    pub count: usize,
    values: &'a [u8],
}

impl<'a> SamplesView<'a> {
    pub fn decode(payload: &'a [u8]) -> Result<Self, FrameError> {
        let mut r = Reader::new(payload);
        let origin = r.u64("samples id")?;
        let seq = r.u64("samples id")?;
        let created_us = r.u64("samples time")?;
        let throttle_ms = r.u32("throttle")?;
        if !(MIN_THROTTLE_MS..=MAX_THROTTLE_MS).contains(&throttle_ms) {
            return Err(FrameError::Malformed("throttle outside 1..=60000 ms"));
        }
        let channel = validate::channel_name(r.str8("channel")?)
            .map_err(|_| FrameError::Malformed("invalid channel"))?;
        let count = r.u32("sample count")? as usize;
        if count == 0 || count > MAX_SAMPLES {
            return Err(FrameError::Malformed("sample count outside 1..=65536"));
        }
        let start = payload.len() - r.remaining();
        for _ in 0..count {
            let series = r.str16("series")?;
            if series.len() > MAX_SERIES_LEN || std::str::from_utf8(series).is_err() {
                return Err(FrameError::Malformed("invalid series name"));
            }
            if !r.f64("value")?.is_finite() {
                return Err(FrameError::Malformed("non-finite value"));
            }
        }
        r.finish("trailing bytes after samples")?;
        Ok(Self {
            id: EventId { origin, seq },
            created_us,
            throttle_ms,
            channel,
            count,
            values: &payload[start..],
        })
    }

    /// `(series, value)` pairs (validated on decode).
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, f64)> {
        let mut r = Reader::new(self.values);
        (0..self.count).map_while(move |_| {
            let series = std::str::from_utf8(r.str16("series").ok()?).ok()?;
            let value = r.f64("value").ok()?;
            Some((series, value))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{Frame, MAX_BODY_LEN};

    #[test]
    fn round_trips_and_refuses_bad_values() {
        let mut out = Vec::new();
        let mut w = SamplesWriter::begin(
            &mut out,
            EventId { origin: 1, seq: 2 },
            3,
            100,
            b"scada-agg",
        )
        .unwrap();
        w.sample(&mut out, b"PLC-1", -1.5).unwrap();
        w.sample(&mut out, "Suhu °C".as_bytes(), 42.0).unwrap();
        w.finish(&mut out).unwrap();
        let f = Frame::parse(&out, MAX_BODY_LEN).unwrap().unwrap();
        assert_eq!(f.kind, FrameKind::Samples);
        let v = SamplesView::decode(f.payload).unwrap();
        assert_eq!(
            (v.channel, v.throttle_ms, v.count, v.created_us),
            ("scada-agg", 100, 2, 3)
        );
        assert_eq!(
            v.iter().collect::<Vec<_>>(),
            vec![("PLC-1", -1.5), ("Suhu °C", 42.0)]
        );

        let mut out = Vec::new();
        let mut w =
            SamplesWriter::begin(&mut out, EventId { origin: 1, seq: 2 }, 3, 100, b"c").unwrap();
        w.sample(&mut out, b"s", f64::NAN).unwrap();
        w.finish(&mut out).unwrap();
        let f = Frame::parse(&out, MAX_BODY_LEN).unwrap().unwrap();
        assert!(SamplesView::decode(f.payload).is_err());

        // A zero throttle and an empty sample list are refused on decode.
        for (throttle, samples) in [(0u32, 1usize), (100, 0)] {
            let mut out = Vec::new();
            let mut w =
                SamplesWriter::begin(&mut out, EventId { origin: 1, seq: 2 }, 3, throttle, b"c")
                    .unwrap();
            for _ in 0..samples {
                w.sample(&mut out, b"s", 1.0).unwrap();
            }
            w.finish(&mut out).unwrap();
            let f = Frame::parse(&out, MAX_BODY_LEN).unwrap().unwrap();
            assert!(
                SamplesView::decode(f.payload).is_err(),
                "throttle {throttle}, {samples} samples"
            );
        }
    }
}
