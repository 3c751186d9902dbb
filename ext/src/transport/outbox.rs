//! The outbox: where callers leave encoded frames for the writer thread.
//!
//! A caller appends one complete frame under a short mutex (a memcpy) and only
//! wakes the writer when it sleeps without a timer; while the writer lingers or
//! works, callers never make a system call. The writer swaps the whole buffer
//! out in one step, so the lock is never held across I/O.
//!
//! **Eviction costs a call about its own frame.** While the writer holds
//! events it cannot place (no destination) it takes nothing, so the outbox
//! stays full and every `drop_oldest` call evicts. An evicted frame is only
//! marked (its bytes stay until the buffer is compacted), the bytes that may
//! be evicted are a running count, and the search for the oldest evictable
//! frame resumes where the last one stopped. Compaction moves the live bytes
//! once per `budget / 2` evicted bytes, and at [`Taken::into_batch`] on the
//! writer's side, outside the lock: a few bytes moved per byte evicted,
//! instead of the whole buffer per call.

use std::collections::VecDeque;
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

/// Why the writer thread can no longer take events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriterFailure {
    /// It panicked (a bug); the panic's message.
    Panicked(String),
}

impl std::fmt::Display for WriterFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Panicked(message) => write!(f, "the writer thread panicked: {message}"),
        }
    }
}

/// One frame in the buffer, oldest first.
#[derive(Debug, Clone, Copy)]
struct Slot {
    len: u32,
    /// `drop_oldest` may only evict frames sent under `drop_oldest` themselves.
    policy: Overflow,
    /// False once evicted: its bytes are cut out at the next compaction.
    live: bool,
}

/// Frames waiting for the writer.
#[derive(Debug)]
pub struct Outbox {
    /// The frames of `index`, evicted ones included until compacted.
    buf: Vec<u8>,
    index: VecDeque<Slot>,
    /// Live frames and their bytes.
    frames: u64,
    live_bytes: usize,
    /// Live bytes of `drop_oldest` frames: what eviction could free.
    evictable_bytes: usize,
    /// Bytes of evicted frames still in `buf`.
    dead_bytes: usize,
    /// No live `drop_oldest` frame sits before this position of `index`.
    next_evictable: usize,
    /// When the first live frame was queued: the linger timer starts there.
    pub first_at: Option<Instant>,
    pub writer: WriterState,
    /// Flush tickets: callers take `flush_requested + 1`; the writer publishes
    /// the highest ticket whose events are durable in `flush_done`.
    pub flush_requested: u64,
    pub flush_done: u64,
    pub shutdown: bool,
    /// The process gave up waiting for the writer at exit and reported what
    /// it still held: the writer must not report those events again.
    pub abandoned: bool,
    /// Set when the writer failed (panicked): calls are refused with it.
    pub failure: Option<WriterFailure>,
    /// Bytes moved and frames visited on callers' threads (tests measure it).
    #[cfg(test)]
    work: u64,
}

/// Outcome of [`Outbox::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued; `wake` says whether the caller must signal the writer.
    Queued { wake: bool, evicted: u64 },
    /// Refused under [`Overflow::Reject`].
    Refused,
}

/// What [`Outbox::take`] hands to the writer: frames still to be separated
/// from evicted ones, which [`Taken::into_batch`] does outside the lock.
#[derive(Debug)]
pub struct Taken {
    bytes: Vec<u8>,
    frames: u64,
    /// The frame index, when some frames in `bytes` were evicted.
    evicted: Option<VecDeque<Slot>>,
}

impl Taken {
    /// The live frames, in order, and how many.
    pub fn into_batch(mut self) -> (Vec<u8>, u64) {
        if let Some(mut index) = self.evicted.take() {
            compact(&mut self.bytes, &mut index, 0);
        }
        (self.bytes, self.frames)
    }

    pub fn frames(&self) -> u64 {
        self.frames
    }
}

/// Cuts evicted frames out of `buf` (and `index`), moving live ones down.
/// Returns the new position of index entry `keep_at` and the bytes moved.
fn compact(buf: &mut Vec<u8>, index: &mut VecDeque<Slot>, keep_at: usize) -> (usize, usize) {
    let (mut read, mut write, mut moved) = (0usize, 0usize, 0usize);
    let mut new_keep_at = 0;
    let mut i = 0;
    index.retain(|slot| {
        let len = slot.len as usize;
        if i < keep_at && slot.live {
            new_keep_at += 1;
        }
        i += 1;
        if slot.live {
            if read != write {
                buf.copy_within(read..read + len, write);
                moved += len;
            }
            write += len;
        }
        read += len;
        slot.live
    });
    buf.truncate(write);
    (new_keep_at, moved)
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
            index: VecDeque::new(),
            frames: 0,
            live_bytes: 0,
            evictable_bytes: 0,
            dead_bytes: 0,
            next_evictable: 0,
            first_at: None,
            writer: WriterState::NotStarted,
            flush_requested: 0,
            flush_done: 0,
            shutdown: false,
            abandoned: false,
            failure: None,
            #[cfg(test)]
            work: 0,
        }
    }

    /// Live frames queued.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Live bytes queued.
    pub fn bytes(&self) -> usize {
        self.live_bytes
    }

    pub fn is_empty(&self) -> bool {
        self.frames == 0
    }

    /// Appends one complete frame when `budget` bytes allow. When they do
    /// not, the oldest `drop_oldest` frames make room, whatever the new
    /// frame's own policy: telemetry yields to critical events, never the
    /// reverse. If that is not enough the frame is refused.
    pub fn push(&mut self, frame: &[u8], budget: usize, overflow: Overflow) -> Pushed {
        let mut evicted = 0;
        if self.live_bytes + frame.len() > budget {
            evicted = self.evict_for(frame.len(), budget);
            if self.live_bytes + frame.len() > budget {
                return Pushed::Refused;
            }
        }
        if self.dead_bytes > budget / 2 {
            self.compact();
        }
        if self.frames == 0 {
            self.first_at = Some(Instant::now());
        }
        self.buf.extend_from_slice(frame);
        self.index.push_back(Slot {
            len: frame.len() as u32,
            policy: overflow,
            live: true,
        });
        self.frames += 1;
        self.live_bytes += frame.len();
        if overflow == Overflow::DropOldest {
            self.evictable_bytes += frame.len();
        }
        let wake = match self.writer {
            WriterState::Idle => true,
            WriterState::Lingering => self.live_bytes >= HIGH_WATER_BYTES,
            _ => false,
        };
        if wake {
            self.writer = WriterState::Busy;
        }
        Pushed::Queued { wake, evicted }
    }

    /// Evicts the oldest `drop_oldest` frames (never `reject` ones) until
    /// `need` more bytes fit. Evicts nothing when even all of them would not
    /// make room: the new frame is refused then, and no event may be lost for
    /// nothing.
    fn evict_for(&mut self, need: usize, budget: usize) -> u64 {
        let excess = (self.live_bytes + need).saturating_sub(budget);
        if self.evictable_bytes < excess {
            return 0;
        }
        let (mut freed, mut evicted) = (0usize, 0u64);
        while freed < excess {
            let Some(slot) = self.index.get_mut(self.next_evictable) else {
                break;
            };
            #[cfg(test)]
            {
                self.work += 1;
            }
            if slot.live && slot.policy == Overflow::DropOldest {
                slot.live = false;
                freed += slot.len as usize;
                evicted += 1;
            }
            self.next_evictable += 1;
        }
        self.live_bytes -= freed;
        self.evictable_bytes -= freed;
        self.dead_bytes += freed;
        self.frames -= evicted;
        evicted
    }

    fn compact(&mut self) {
        let (next, _moved) = compact(&mut self.buf, &mut self.index, self.next_evictable);
        #[cfg(test)]
        {
            self.work += _moved as u64;
        }
        self.next_evictable = next;
        self.dead_bytes = 0;
    }

    /// Hands everything queued to the writer, leaving `spare` (cleared) in its place.
    pub fn take(&mut self, spare: Vec<u8>) -> Taken {
        let evicted = if self.dead_bytes > 0 {
            Some(std::mem::take(&mut self.index))
        } else {
            self.index.clear();
            None
        };
        let taken = Taken {
            bytes: std::mem::replace(&mut self.buf, spare),
            frames: self.frames,
            evicted,
        };
        self.frames = 0;
        self.live_bytes = 0;
        self.evictable_bytes = 0;
        self.dead_bytes = 0;
        self.next_evictable = 0;
        self.first_at = None;
        taken
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
        o.index
            .iter()
            .filter(|s| s.live)
            .map(|s| s.policy)
            .collect()
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
        // Not enough telemetry to make room for a bigger frame: refused, and
        // the telemetry that could not have helped stays.
        let mut o2 = Outbox::new();
        o2.writer = WriterState::Busy;
        o2.push(&f, 350, Critical);
        o2.push(&f, 350, Telemetry);
        o2.push(&f, 350, Critical);
        assert_eq!(o2.push(&frame(200), 350, Critical), Pushed::Refused);
        assert_eq!(policies(&o2), [Critical, Telemetry, Critical]);
        // Only critical frames left: both policies are refused, nothing is evicted.
        assert_eq!(o.push(&f, 350, Critical), Pushed::Refused);
        assert_eq!(o.push(&f, 350, Telemetry), Pushed::Refused);
        assert_eq!((o.bytes(), o.frames), (330, 3));
    }

    /// The no-destination state with a full 8 MiB buffer: the writer takes
    /// nothing, so every `drop_oldest` call evicts. Each call must cost about
    /// the same as the frame it queues (bytes moved + frames visited on the
    /// caller's thread), not a pass over the whole buffer.
    #[test]
    fn evicting_from_a_full_buffer_costs_a_call_about_its_own_frame() {
        const BUDGET: usize = 8 << 20;
        let f = frame(100); // 110 bytes
        let mut o = Outbox::new();
        o.writer = WriterState::Busy;
        while o.frames * (f.len() as u64) + (f.len() as u64) <= BUDGET as u64 {
            o.push(&f, BUDGET, Overflow::DropOldest);
        }
        // Enough calls to evict the buffer several times over: the
        // compactions they cause are part of their cost.
        let calls = 8 * (BUDGET / f.len()) as u64;
        let before = o.work;
        let mut evicted = 0;
        for _ in 0..calls {
            match o.push(&f, BUDGET, Overflow::DropOldest) {
                Pushed::Queued { evicted: e, .. } => evicted += e,
                Pushed::Refused => panic!("a drop_oldest frame always finds room"),
            }
        }
        assert_eq!(evicted, calls, "one frame evicted per call");
        let per_call = (o.work - before) / calls;
        assert!(
            per_call <= 4 * f.len() as u64,
            "{per_call} units of work per call (bytes moved + frames visited) for a {}-byte frame",
            f.len()
        );
    }

    /// Against a model of the rule (evict the oldest `drop_oldest` frames
    /// until the new one fits, or refuse and evict nothing): random pushes of
    /// both policies and sizes, takes in between, compaction included.
    #[test]
    fn eviction_and_compaction_keep_exactly_the_frames_the_rule_keeps() {
        use scada_core::frame::{Frames, MAX_BODY_LEN};
        let budget = 2_000;
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut o = Outbox::new();
        o.writer = WriterState::Busy;
        let mut model: VecDeque<(u32, usize, Overflow)> = VecDeque::new();
        for id in 0..20_000u32 {
            let policy = if next() % 3 == 0 {
                Overflow::Reject
            } else {
                Overflow::DropOldest
            };
            let mut f = Vec::new();
            let b = FrameBuilder::begin(&mut f, FrameKind::Event);
            f.extend_from_slice(&id.to_le_bytes());
            f.extend(std::iter::repeat_n(b'x', (next() % 300) as usize));
            b.finish(&mut f).unwrap();

            let total: usize = model.iter().map(|m| m.1).sum();
            let expected = if total + f.len() <= budget {
                Pushed::Queued {
                    wake: false,
                    evicted: 0,
                }
            } else {
                let excess = total + f.len() - budget;
                let evictable: usize = model
                    .iter()
                    .filter(|m| m.2 == Overflow::DropOldest)
                    .map(|m| m.1)
                    .sum();
                if evictable < excess {
                    Pushed::Refused
                } else {
                    let (mut freed, mut evicted) = (0, 0);
                    model.retain(|m| {
                        if freed < excess && m.2 == Overflow::DropOldest {
                            freed += m.1;
                            evicted += 1;
                            false
                        } else {
                            true
                        }
                    });
                    Pushed::Queued {
                        wake: false,
                        evicted,
                    }
                }
            };
            if expected != Pushed::Refused {
                model.push_back((id, f.len(), policy));
            }
            assert_eq!(o.push(&f, budget, policy), expected, "frame {id}");
            assert_eq!(o.frames(), model.len() as u64);
            assert!(
                o.buf.len() <= budget + budget / 2 + f.len(),
                "memory stays bounded"
            );
            if next() % 50 == 0 {
                let (bytes, frames) = o.take(Vec::new()).into_batch();
                let ids: Vec<u32> = Frames::new(&bytes, MAX_BODY_LEN)
                    .map(|f| {
                        let p = f.unwrap().payload;
                        u32::from_le_bytes([p[0], p[1], p[2], p[3]])
                    })
                    .collect();
                let want: Vec<u32> = model.drain(..).map(|m| m.0).collect();
                assert_eq!(ids, want);
                assert_eq!(frames, want.len() as u64);
            }
        }
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
        let (buf, frames) = o.take(Vec::new()).into_batch();
        assert_eq!((buf.len(), frames), (330, 3));
        assert!(o.is_empty() && o.buf.is_empty() && o.first_at.is_none());

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
        assert_eq!((o.bytes(), o.frames), (320, 2));
        let (buf, frames) = o.take(Vec::new()).into_batch();
        assert_eq!((buf.len(), frames), (320, 2));
        assert_eq!(&buf[..110], &f[..], "the survivor is intact");
        assert_eq!(&buf[110..], &big[..]);
    }
}
