//! Frames: the one container format for every byte exchanged or stored.
//!
//! ```text
//! frame := len:u32le | crc32:u32le | body[len]
//! body  := version:u8 | kind:u8 | kind-specific fields
//! ```
//! * `len` counts the body only, so a reader knows the size before it allocates
//!   and rejects anything over its limit without reading it.
//! * `crc32` (IEEE) covers the body. On the socket it catches bugs; in spool and
//!   journal files it detects a torn write at the tail after a crash.
//! * `version` lets either side refuse a frame it does not understand instead of
//!   misreading it. [`FrameKind`] values are append-only.
//!
//! All integers are little-endian.

use std::fmt;

/// Wire format version written by this build.
pub const VERSION: u8 = 1;
/// Bytes before the body: `len` and `crc32`.
pub const HEADER_LEN: usize = 8;
/// Hard upper bound for a body; the sidecar may configure a lower one.
pub const MAX_BODY_LEN: usize = 1 << 20;
/// Smallest body: version and kind.
const MIN_BODY_LEN: usize = 2;

/// What a frame carries. Append-only: never renumber or reuse a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// Client → sidecar, first frame on a connection.
    Hello = 1,
    /// Sidecar → client, answer to `Hello`.
    Welcome = 2,
    /// A broadcast event (client → sidecar, spool files, journal).
    Event = 3,
    /// Sidecar → client: cumulative count of frames made durable.
    Ack = 4,
    /// One or more numeric samples for host-wide aggregation (client → sidecar).
    Samples = 5,
}

impl FrameKind {
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::Hello,
            2 => Self::Welcome,
            3 => Self::Event,
            4 => Self::Ack,
            5 => Self::Samples,
            _ => return None,
        })
    }
}

/// Why bytes could not be read as a frame. "Not enough bytes yet" is not an
/// error: [`Frame::parse`] returns `Ok(None)` for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// Declared body length is over the reader's limit (or below the minimum).
    BadLength { len: usize, max: usize },
    /// Body does not match its checksum.
    Checksum,
    /// Written by an incompatible version.
    Version(u8),
    /// Unknown frame kind.
    Kind(u8),
    /// The body of a known kind is malformed.
    Malformed(&'static str),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadLength { len, max } => write!(f, "frame length {len} outside 2..={max}"),
            Self::Checksum => f.write_str("frame checksum mismatch"),
            Self::Version(v) => write!(f, "unsupported frame version {v}"),
            Self::Kind(k) => write!(f, "unknown frame kind {k}"),
            Self::Malformed(what) => write!(f, "malformed frame: {what}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// A complete, checked frame borrowed from a buffer.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub kind: FrameKind,
    /// Kind-specific fields (after version and kind).
    pub payload: &'a [u8],
    /// The whole frame including its header, to copy it verbatim.
    pub raw: &'a [u8],
}

impl<'a> Frame<'a> {
    /// Reads the frame at the start of `buf`.
    ///
    /// `Ok(None)` means `buf` holds only part of a frame; the length is checked
    /// against `max_body` before that, so an oversized frame is refused as soon
    /// as its header is visible.
    pub fn parse(buf: &'a [u8], max_body: usize) -> Result<Option<Frame<'a>>, FrameError> {
        let Some(header) = buf.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if !(MIN_BODY_LEN..=max_body).contains(&len) {
            return Err(FrameError::BadLength { len, max: max_body });
        }
        let Some(raw) = buf.get(..HEADER_LEN + len) else {
            return Ok(None);
        };
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let body = &raw[HEADER_LEN..];
        if crc32fast::hash(body) != crc {
            return Err(FrameError::Checksum);
        }
        if body[0] != VERSION {
            return Err(FrameError::Version(body[0]));
        }
        let kind = FrameKind::from_u8(body[1]).ok_or(FrameError::Kind(body[1]))?;
        Ok(Some(Frame {
            kind,
            payload: &body[2..],
            raw,
        }))
    }

    /// Total bytes this frame occupies.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }
}

/// Appends one frame to a buffer: [`FrameBuilder::begin`] reserves the header,
/// the caller appends fields, [`FrameBuilder::finish`] fills length and CRC.
/// Writing in place means a frame costs no allocation of its own.
pub struct FrameBuilder {
    start: usize,
}

impl FrameBuilder {
    pub fn begin(out: &mut Vec<u8>, kind: FrameKind) -> Self {
        let start = out.len();
        out.extend_from_slice(&[0; HEADER_LEN]);
        out.push(VERSION);
        out.push(kind as u8);
        Self { start }
    }

    /// Completes the frame. Fails (and removes the partial frame) if the body
    /// is over [`MAX_BODY_LEN`].
    pub fn finish(self, out: &mut Vec<u8>) -> Result<(), FrameError> {
        let body_len = out.len() - self.start - HEADER_LEN;
        if body_len > MAX_BODY_LEN {
            out.truncate(self.start);
            return Err(FrameError::BadLength {
                len: body_len,
                max: MAX_BODY_LEN,
            });
        }
        let crc = crc32fast::hash(&out[self.start + HEADER_LEN..]);
        out[self.start..self.start + 4].copy_from_slice(&(body_len as u32).to_le_bytes());
        out[self.start + 4..self.start + 8].copy_from_slice(&crc.to_le_bytes());
        Ok(())
    }

    /// Drops the partial frame, e.g. when encoding its fields failed.
    pub fn abandon(self, out: &mut Vec<u8>) {
        out.truncate(self.start);
    }

    /// Offset of the frame's first byte in the buffer.
    pub fn start(&self) -> usize {
        self.start
    }
}

/// Recomputes the checksum of a complete frame whose body was changed in
/// place (same length).
pub fn reseal(frame: &mut [u8]) {
    if frame.len() < HEADER_LEN {
        return;
    }
    let crc = crc32fast::hash(&frame[HEADER_LEN..]);
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
}

/// Iterates over the complete frames at the start of a buffer. A broken
/// frame is reported once and ends the iteration (nothing after it can be
/// located); [`Frames::consumed`] then points at the broken frame.
pub struct Frames<'a> {
    buf: &'a [u8],
    max_body: usize,
    consumed: usize,
    failed: bool,
}

impl<'a> Frames<'a> {
    pub fn new(buf: &'a [u8], max_body: usize) -> Self {
        Self {
            buf,
            max_body,
            consumed: 0,
            failed: false,
        }
    }

    /// Bytes of complete frames returned so far; the rest is an incomplete tail.
    pub fn consumed(&self) -> usize {
        self.consumed
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>, FrameError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match Frame::parse(&self.buf[self.consumed..], self.max_body) {
            Ok(Some(frame)) => {
                self.consumed += frame.len();
                Some(Ok(frame))
            }
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Little-endian field reader over a frame payload.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    pub fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], FrameError> {
        if self.buf.len() < n {
            return Err(FrameError::Malformed(what));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, FrameError> {
        Ok(self.bytes(1, what)?[0])
    }

    pub fn u16(&mut self, what: &'static str) -> Result<u16, FrameError> {
        let b = self.bytes(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, FrameError> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64(&mut self, what: &'static str) -> Result<u64, FrameError> {
        let b = self.bytes(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    pub fn f64(&mut self, what: &'static str) -> Result<f64, FrameError> {
        Ok(f64::from_bits(self.u64(what)?))
    }

    /// A string with a `u8` length prefix.
    pub fn str8(&mut self, what: &'static str) -> Result<&'a [u8], FrameError> {
        let n = self.u8(what)? as usize;
        self.bytes(n, what)
    }

    /// A string with a `u16` length prefix.
    pub fn str16(&mut self, what: &'static str) -> Result<&'a [u8], FrameError> {
        let n = self.u16(what)? as usize;
        self.bytes(n, what)
    }

    /// Bytes with a `u32` length prefix.
    pub fn bytes32(&mut self, what: &'static str) -> Result<&'a [u8], FrameError> {
        let n = self.u32(what)? as usize;
        self.bytes(n, what)
    }

    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub fn finish(self, what: &'static str) -> Result<(), FrameError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(FrameError::Malformed(what))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_with(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let b = FrameBuilder::begin(&mut out, FrameKind::Ack);
        out.extend_from_slice(payload);
        b.finish(&mut out).unwrap();
        out
    }

    #[test]
    fn round_trips_and_reports_incomplete_input() {
        let buf = frame_with(b"hello");
        for cut in 0..buf.len() {
            assert!(Frame::parse(&buf[..cut], MAX_BODY_LEN).unwrap().is_none());
        }
        let f = Frame::parse(&buf, MAX_BODY_LEN).unwrap().unwrap();
        assert_eq!(f.kind, FrameKind::Ack);
        assert_eq!(f.payload, b"hello");
        assert_eq!(f.raw, &buf[..]);
    }

    #[test]
    fn rejects_oversized_length_before_the_body_arrives() {
        let mut header = Vec::new();
        header.extend_from_slice(&(10_000u32).to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(
            Frame::parse(&header, 1000).unwrap_err(),
            FrameError::BadLength {
                len: 10_000,
                max: 1000
            }
        );
    }

    #[test]
    fn detects_corruption_version_and_kind() {
        let mut buf = frame_with(b"abc");
        buf[HEADER_LEN + 3] ^= 1;
        assert_eq!(
            Frame::parse(&buf, MAX_BODY_LEN).unwrap_err(),
            FrameError::Checksum
        );

        let mut buf = frame_with(b"abc");
        buf[HEADER_LEN] = 99;
        let crc = crc32fast::hash(&buf[HEADER_LEN..]);
        buf[4..8].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            Frame::parse(&buf, MAX_BODY_LEN).unwrap_err(),
            FrameError::Version(99)
        );

        let mut buf = frame_with(b"abc");
        buf[HEADER_LEN + 1] = 200;
        let crc = crc32fast::hash(&buf[HEADER_LEN..]);
        buf[4..8].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            Frame::parse(&buf, MAX_BODY_LEN).unwrap_err(),
            FrameError::Kind(200)
        );
    }

    #[test]
    fn iterates_frames_and_leaves_the_incomplete_tail() {
        let mut buf = frame_with(b"one");
        buf.extend(frame_with(b"two"));
        let whole = buf.len();
        buf.extend(&frame_with(b"three")[..5]);
        let mut it = Frames::new(&buf, MAX_BODY_LEN);
        assert_eq!(it.next().unwrap().unwrap().payload, b"one");
        assert_eq!(it.next().unwrap().unwrap().payload, b"two");
        assert!(it.next().is_none());
        assert_eq!(it.consumed(), whole);
    }

    #[test]
    fn a_broken_frame_is_reported_once_and_ends_iteration() {
        let mut buf = frame_with(b"one");
        let good = buf.len();
        buf.extend(frame_with(b"two"));
        buf[good + HEADER_LEN + 2] ^= 1;
        let mut it = Frames::new(&buf, MAX_BODY_LEN);
        assert!(it.next().unwrap().is_ok());
        assert_eq!(it.next().unwrap().unwrap_err(), FrameError::Checksum);
        assert!(it.next().is_none());
        assert_eq!(it.consumed(), good);
    }

    #[test]
    fn abandon_removes_the_partial_frame() {
        let mut out = b"keep".to_vec();
        let b = FrameBuilder::begin(&mut out, FrameKind::Event);
        out.extend_from_slice(b"partial");
        b.abandon(&mut out);
        assert_eq!(out, b"keep");
    }
}
