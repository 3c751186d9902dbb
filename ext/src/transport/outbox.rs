//! The outbox: where callers leave encoded frames for the writer thread.
//!
//! A caller appends one complete frame under a short mutex (a memcpy) and only
//! wakes the writer when it sleeps without a timer; while the writer lingers or
//! works, callers never make a system call. The writer swaps the whole buffer
//! out in one step, so the lock is never held across I/O.

use std::time::Instant;

/// How full buffers are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Refuse the new event: the call returns false and the refusal is counted.
    Reject,
    /// Evict the oldest queued events to make room; evictions are counted.
    DropOldest,
}

impl Overflow {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "reject" => Some(Self::Reject),
            "drop_oldest" => Some(Self::DropOldest),
            _ => None,
        }
    }
}

/// What the writer is doing, as far as callers need to know to wake it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterState {
    /// Not started yet.
    NotStarted,
    /// Sleeping with no timer: the next event must wake it.
    Idle,
    /// Sleeping until its linger timer fires: wake only for a full buffer.
    Lingering,
    /// Awake; it looks at the outbox again before sleeping.
    Busy,
    /// Gone (shutdown finished or the thread could not start).
    Exited,
}

/// Frames waiting for the writer.
#[derive(Debug)]
pub struct Outbox {
    pub buf: Vec<u8>,
    pub frames: u64,
    /// Length and policy of each frame in `buf`, oldest first: `drop_oldest`
    /// may only evict frames that were themselves sent under `drop_oldest`.
    index: std::collections::VecDeque<(u32, Overflow)>,
    /// When `buf` became non-empty: the linger timer starts at the first frame.
    pub first_at: Option<Instant>,
    pub writer: WriterState,
    /// Flush tickets: callers take `flush_requested + 1`; the writer publishes
    /// the highest ticket whose events are durable in `flush_done`.
    pub flush_requested: u64,
    pub flush_done: u64,
    pub shutdown: bool,
}

/// Outcome of [`Outbox::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued; `wake` says whether the caller must signal the writer.
    Queued { wake: bool, evicted: u64 },
    /// Refused under [`Overflow::Reject`].
    Refused,
}

/// A full buffer wakes a lingering writer at once.
pub const HIGH_WATER_BYTES: usize = 256 * 1024;

impl Default for Outbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Outbox {
    pub fn new() -> Self {
        Self {
            buf: Vec::with_capacity(64 * 1024),
            frames: 0,
            index: std::collections::VecDeque::new(),
            first_at: None,
            writer: WriterState::NotStarted,
            flush_requested: 0,
            flush_done: 0,
            shutdown: false,
        }
    }

    /// Appends one complete frame when `budget` bytes allow. When they do
    /// not, the oldest `drop_oldest` frames make room, whatever the new
    /// frame's own policy: telemetry yields to critical events, never the
    /// reverse. If that is not enough the frame is refused.
    pub fn push(&mut self, frame: &[u8], budget: usize, overflow: Overflow) -> Pushed {
        let mut evicted = 0;
        if self.buf.len() + frame.len() > budget {
            evicted = self.evict_for(frame.len(), budget);
            if self.buf.len() + frame.len() > budget {
                return Pushed::Refused;
            }
        }
        if self.buf.is_empty() {
            self.first_at = Some(Instant::now());
        }
        self.buf.extend_from_slice(frame);
        self.index.push_back((frame.len() as u32, overflow));
        self.frames += 1;
        let wake = match self.writer {
            WriterState::Idle => true,
            WriterState::Lingering => self.buf.len() >= HIGH_WATER_BYTES,
            _ => false,
        };
        if wake {
            self.writer = WriterState::Busy;
        }
        Pushed::Queued { wake, evicted }
    }

    /// Evicts the oldest `drop_oldest` frames (never `reject` ones) until
    /// `need` more bytes fit; compacts the buffer in place.
    fn evict_for(&mut self, need: usize, budget: usize) -> u64 {
        let mut excess = (self.buf.len() + need).saturating_sub(budget);
        let mut read = 0usize;
        let mut write = 0usize;
        let mut evicted = 0u64;
        let mut kept = std::collections::VecDeque::with_capacity(self.index.len());
        for &(len, policy) in &self.index {
            let len = len as usize;
            if excess > 0 && policy == Overflow::DropOldest {
                excess = excess.saturating_sub(len);
                evicted += 1;
            } else {
                if read != write {
                    self.buf.copy_within(read..read + len, write);
                }
                write += len;
                kept.push_back((len as u32, policy));
            }
            read += len;
        }
        self.buf.truncate(write);
        self.index = kept;
        self.frames -= evicted.min(self.frames);
        evicted
    }

    /// Hands everything queued to the writer, leaving `spare` (cleared) in its place.
    pub fn take(&mut self, spare: Vec<u8>) -> (Vec<u8>, u64) {
        let frames = std::mem::take(&mut self.frames);
        self.first_at = None;
        self.index.clear();
        (std::mem::replace(&mut self.buf, spare), frames)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scada_core::frame::{FrameBuilder, FrameKind};

    fn frame(n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let b = FrameBuilder::begin(&mut out, FrameKind::Event);
        out.extend(std::iter::repeat_n(b'x', n));
        b.finish(&mut out).unwrap();
        out
    }

    #[test]
    fn wakes_an_idle_writer_only_once() {
        let mut o = Outbox::new();
        o.writer = WriterState::Idle;
        assert_eq!(
            o.push(&frame(10), 1 << 20, Overflow::Reject),
            Pushed::Queued {
                wake: true,
                evicted: 0
            }
        );
        assert_eq!(
            o.push(&frame(10), 1 << 20, Overflow::Reject),
            Pushed::Queued {
                wake: false,
                evicted: 0
            }
        );
        o.writer = WriterState::Lingering;
        assert_eq!(
            o.push(&frame(10), 1 << 20, Overflow::Reject),
            Pushed::Queued {
                wake: false,
                evicted: 0
            }
        );
        assert_eq!(o.frames, 3);
    }

    fn policies(o: &Outbox) -> Vec<Overflow> {
        o.index.iter().map(|(_, p)| *p).collect()
    }

    #[test]
    fn only_drop_oldest_frames_are_ever_evicted() {
        use Overflow::{DropOldest as Telemetry, Reject as Critical};
        let f = frame(100); // 110 bytes
        let mut o = Outbox::new();
        o.writer = WriterState::Busy;
        o.push(&f, 350, Critical);
        o.push(&f, 350, Telemetry);
        o.push(&f, 350, Critical);
        // Full: new telemetry evicts the older telemetry, not the older critical frame.
        assert_eq!(
            o.push(&f, 350, Telemetry),
            Pushed::Queued {
                wake: false,
                evicted: 1
            }
        );
        assert_eq!(policies(&o), [Critical, Critical, Telemetry]);
        // A critical event takes the telemetry frame's place.
        assert_eq!(
            o.push(&f, 350, Critical),
            Pushed::Queued {
                wake: false,
                evicted: 1
            }
        );
        assert_eq!(policies(&o), [Critical, Critical, Critical]);
        // Only critical frames left: both policies are refused, nothing is evicted.
        assert_eq!(o.push(&f, 350, Critical), Pushed::Refused);
        assert_eq!(o.push(&f, 350, Telemetry), Pushed::Refused);
        assert_eq!((o.buf.len(), o.frames), (330, 3));
    }

    #[test]
    fn reject_refuses_when_nothing_may_be_evicted_and_drop_oldest_evicts_whole_frames() {
        let f = frame(100); // 110 bytes
        let mut o = Outbox::new();
        o.writer = WriterState::Busy;
        for _ in 0..3 {
            assert!(matches!(
                o.push(&f, 350, Overflow::Reject),
                Pushed::Queued { .. }
            ));
        }
        assert_eq!(o.push(&f, 350, Overflow::Reject), Pushed::Refused);
        let (buf, frames) = o.take(Vec::new());
        assert_eq!((buf.len(), frames), (330, 3));
        assert!(o.buf.is_empty() && o.first_at.is_none());

        for _ in 0..3 {
            o.push(&f, 350, Overflow::DropOldest);
        }
        // A bigger frame evicts as many whole frames as it needs.
        let big = frame(200); // 210 bytes
        assert_eq!(
            o.push(&big, 350, Overflow::DropOldest),
            Pushed::Queued {
                wake: false,
                evicted: 2
            }
        );
        assert_eq!((o.buf.len(), o.frames), (320, 2));
        assert_eq!(&o.buf[..110], &f[..], "the survivor is intact");
        assert_eq!(&o.buf[110..], &big[..]);
    }
}
