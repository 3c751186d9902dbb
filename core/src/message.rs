//! Connection control messages between the extension and the sidecar.
//!
//! A client opens a connection with [`Hello`]; the sidecar answers [`Welcome`]
//! and from then on sends an [`Ack`] whenever events it read from this
//! connection are durable (journaled). The client keeps every event it wrote
//! until an ack covers it, and re-sends or spools what a lost connection left
//! unacknowledged.

use crate::frame::{FrameBuilder, FrameError, FrameKind, Reader};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello<'a> {
    /// Random id of the client's process generation (the `origin` of its event ids).
    pub origin: u64,
    pub pid: u32,
    /// Free text for logs, e.g. `scada_broadcast/0.1.0 php/8.2.36`.
    pub client: &'a str,
}

impl<'a> Hello<'a> {
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), FrameError> {
        let f = FrameBuilder::begin(out, FrameKind::Hello);
        out.extend_from_slice(&self.origin.to_le_bytes());
        out.extend_from_slice(&self.pid.to_le_bytes());
        let client = &self.client.as_bytes()[..self.client.len().min(255)];
        out.push(client.len() as u8);
        out.extend_from_slice(client);
        f.finish(out)
    }

    pub fn decode(payload: &'a [u8]) -> Result<Self, FrameError> {
        let mut r = Reader::new(payload);
        let origin = r.u64("hello origin")?;
        let pid = r.u32("hello pid")?;
        let client = std::str::from_utf8(r.str8("hello client")?)
            .map_err(|_| FrameError::Malformed("hello client is not UTF-8"))?;
        r.finish("trailing bytes after hello")?;
        Ok(Self {
            origin,
            pid,
            client,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    /// Largest frame body the sidecar accepts.
    pub max_frame: u32,
}

impl Welcome {
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), FrameError> {
        let f = FrameBuilder::begin(out, FrameKind::Welcome);
        out.extend_from_slice(&self.max_frame.to_le_bytes());
        f.finish(out)
    }

    pub fn decode(payload: &[u8]) -> Result<Self, FrameError> {
        let mut r = Reader::new(payload);
        let max_frame = r.u32("welcome max frame")?;
        Ok(Self { max_frame })
    }
}

/// Acknowledgement flags.
pub mod ack_flags {
    /// The sidecar is over a buffer budget: clients should expect refusals.
    pub const BACKPRESSURE: u32 = 1;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// Frames read from this connection so far that are durable (cumulative).
    pub frames: u64,
    pub flags: u32,
}

impl Ack {
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), FrameError> {
        let f = FrameBuilder::begin(out, FrameKind::Ack);
        out.extend_from_slice(&self.frames.to_le_bytes());
        out.extend_from_slice(&self.flags.to_le_bytes());
        f.finish(out)
    }

    pub fn decode(payload: &[u8]) -> Result<Self, FrameError> {
        let mut r = Reader::new(payload);
        let frames = r.u64("ack frames")?;
        let flags = r.u32("ack flags")?;
        Ok(Self { frames, flags })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{Frame, MAX_BODY_LEN};

    #[test]
    fn messages_round_trip() {
        let mut out = Vec::new();
        Hello {
            origin: 9,
            pid: 1234,
            client: "php",
        }
        .encode(&mut out)
        .unwrap();
        Welcome { max_frame: 4096 }.encode(&mut out).unwrap();
        Ack {
            frames: 77,
            flags: ack_flags::BACKPRESSURE,
        }
        .encode(&mut out)
        .unwrap();
        let mut frames = crate::frame::Frames::new(&out, MAX_BODY_LEN);
        let f = frames.next().unwrap().unwrap();
        assert_eq!(f.kind, FrameKind::Hello);
        assert_eq!(
            Hello::decode(f.payload).unwrap(),
            Hello {
                origin: 9,
                pid: 1234,
                client: "php"
            }
        );
        let f = frames.next().unwrap().unwrap();
        assert_eq!(Welcome::decode(f.payload).unwrap().max_frame, 4096);
        let f = frames.next().unwrap().unwrap();
        assert_eq!(
            Ack::decode(f.payload).unwrap(),
            Ack {
                frames: 77,
                flags: 1
            }
        );
        let _ = Frame::parse(&out, MAX_BODY_LEN).unwrap();
    }
}
