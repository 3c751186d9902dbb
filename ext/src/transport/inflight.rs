//! Events on their way over one connection, and the ack arithmetic.
//!
//! ```text
//! push ─► queued (bytes not yet all written) ─► retained (written, waiting) ─► acked: released
//! ```
//! The sidecar acknowledges cumulatively: an ack of `n` says the first `n`
//! frames written on this connection are durable in its journal. A batch is
//! released once all its frames are covered. When the connection is lost,
//! everything not released comes back oldest first (to be spooled or resent);
//! the frame count starts again from zero on the next connection. A batch cut
//! by the loss in the middle of a write comes back whole: the frames the
//! sidecar already read are resent, and its de-duplication drops them.

use std::collections::VecDeque;
use std::io;

/// Complete frames, in order, and how many.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Batch {
    pub bytes: Vec<u8>,
    pub frames: u64,
}

#[derive(Debug)]
struct Queued {
    batch: Batch,
    /// Bytes already written.
    pos: usize,
}

#[derive(Debug)]
struct Retained {
    /// Frames written on this connection once this batch is (cumulative).
    end: u64,
    batch: Batch,
}

/// What an ack released.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Released {
    pub frames: u64,
    /// The released batches' buffers, to reuse.
    pub buffers: Vec<Vec<u8>>,
}

/// An ack that cannot be right: the sidecar acknowledged more frames than
/// were written on this connection.
#[derive(Debug, PartialEq, Eq)]
pub struct AckBeyondWritten {
    pub acked: u64,
    pub written: u64,
}

#[derive(Debug, Default)]
pub struct InFlight {
    queue: VecDeque<Queued>,
    queue_bytes: usize,
    retained: VecDeque<Retained>,
    retained_bytes: usize,
    /// Frames fully written on the current connection.
    written: u64,
    /// Highest ack seen on the current connection.
    acked: u64,
}

impl InFlight {
    pub fn push(&mut self, batch: Batch) {
        self.queue_bytes += batch.bytes.len();
        self.queue.push_back(Queued { batch, pos: 0 });
    }

    /// Bytes held, queued or waiting for their ack.
    pub fn bytes(&self) -> usize {
        self.queue_bytes + self.retained_bytes
    }

    pub fn retained_bytes(&self) -> usize {
        self.retained_bytes
    }

    /// Frames held, queued or waiting for their ack.
    #[cfg(test)]
    pub fn frames(&self) -> u64 {
        self.queue.iter().map(|q| q.batch.frames).sum::<u64>()
            + self.retained.iter().map(|r| r.batch.frames).sum::<u64>()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty() && self.retained.is_empty()
    }

    pub fn has_queued(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Writes queued bytes with `write` (which returns how many it took; 0
    /// when the socket is full) until everything is written or it stops
    /// taking. An error is returned as is: the connection is then lost.
    pub fn write_with(
        &mut self,
        mut write: impl FnMut(&[u8]) -> io::Result<usize>,
    ) -> io::Result<()> {
        while let Some(front) = self.queue.front_mut() {
            let n = write(&front.batch.bytes[front.pos..])?;
            if n == 0 {
                return Ok(());
            }
            front.pos += n;
            if front.pos < front.batch.bytes.len() {
                continue;
            }
            let Some(done) = self.queue.pop_front() else {
                break;
            };
            let len = done.batch.bytes.len();
            self.queue_bytes -= len;
            self.retained_bytes += len;
            self.written += done.batch.frames;
            self.retained.push_back(Retained {
                end: self.written,
                batch: done.batch,
            });
        }
        Ok(())
    }

    /// Applies a cumulative ack: releases every batch whose frames it covers.
    pub fn ack(&mut self, acked: u64) -> Result<Released, AckBeyondWritten> {
        if acked > self.written {
            return Err(AckBeyondWritten {
                acked,
                written: self.written,
            });
        }
        self.acked = self.acked.max(acked);
        let mut released = Released::default();
        while self.retained.front().is_some_and(|r| r.end <= self.acked) {
            let Some(r) = self.retained.pop_front() else {
                break;
            };
            self.retained_bytes -= r.batch.bytes.len();
            released.frames += r.batch.frames;
            released.buffers.push(r.batch.bytes);
        }
        Ok(released)
    }

    /// The connection is gone: everything not acknowledged, oldest first.
    /// Counting restarts for the next connection.
    pub fn take_unacked(&mut self) -> Vec<Batch> {
        let out = self
            .retained
            .drain(..)
            .map(|r| r.batch)
            .chain(self.queue.drain(..).map(|q| q.batch))
            .collect();
        self.queue_bytes = 0;
        self.retained_bytes = 0;
        self.written = 0;
        self.acked = 0;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(tag: u8, frames: u64, len: usize) -> Batch {
        Batch {
            bytes: vec![tag; len],
            frames,
        }
    }

    /// A socket that takes at most `room` bytes per call, recording them.
    struct Socket {
        room: usize,
        got: Vec<u8>,
    }

    impl Socket {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(self.room);
            self.got.extend_from_slice(&buf[..n]);
            Ok(n)
        }
    }

    #[test]
    fn partial_writes_finish_a_batch_before_the_next_and_count_its_frames_once() {
        let mut f = InFlight::default();
        f.push(batch(1, 3, 10));
        f.push(batch(2, 2, 6));
        let mut s = Socket {
            room: 4,
            got: Vec::new(),
        };
        // A full socket: write_with returns after the first short write.
        let mut calls = 0;
        f.write_with(|b| {
            calls += 1;
            if calls > 2 {
                return Ok(0);
            }
            s.write(b)
        })
        .unwrap();
        assert_eq!(s.got.len(), 8);
        assert_eq!(
            (f.written, f.bytes(), f.frames()),
            (0, 16, 5),
            "nothing fully written yet"
        );
        f.write_with(|b| s.write(b)).unwrap();
        assert_eq!(
            s.got,
            [vec![1; 10], vec![2; 6]].concat(),
            "bytes in order, none twice"
        );
        assert_eq!(
            (f.written, f.retained_bytes(), f.has_queued()),
            (5, 16, false)
        );
    }

    #[test]
    fn acks_release_whole_batches_and_may_span_several() {
        let mut f = InFlight::default();
        for (tag, frames) in [(1, 3), (2, 2), (3, 4)] {
            f.push(batch(tag, frames, 8));
        }
        f.write_with(|b| Ok(b.len())).unwrap();
        assert_eq!(f.written, 9);
        // Inside the first batch: nothing released.
        assert_eq!(f.ack(2).unwrap(), Released::default());
        // Covers the first two batches.
        let r = f.ack(5).unwrap();
        assert_eq!((r.frames, r.buffers.len()), (5, 2));
        // An older ack arriving late changes nothing.
        assert_eq!(f.ack(4).unwrap(), Released::default());
        assert_eq!((f.frames(), f.bytes()), (4, 8));
        let r = f.ack(9).unwrap();
        assert_eq!(r.frames, 4);
        assert!(f.is_empty());
        assert_eq!(f.bytes(), 0);
    }

    #[test]
    fn an_ack_beyond_what_was_written_is_refused() {
        let mut f = InFlight::default();
        f.push(batch(1, 3, 8));
        f.write_with(|b| Ok(b.len() / 2)).unwrap(); // half written: 0 frames
        assert_eq!(
            f.ack(1),
            Err(AckBeyondWritten {
                acked: 1,
                written: 0
            })
        );
    }

    #[test]
    fn a_lost_connection_returns_everything_unacked_oldest_first_and_resets_the_count() {
        let mut f = InFlight::default();
        f.push(batch(1, 2, 4));
        f.push(batch(2, 2, 4));
        f.push(batch(3, 1, 4));
        let mut calls = 0;
        // Batches 1 and 2 written, 3 cut in the middle.
        f.write_with(|b| {
            calls += 1;
            Ok(if calls == 3 {
                2
            } else if calls > 3 {
                0
            } else {
                b.len()
            })
        })
        .unwrap();
        f.ack(2).unwrap(); // batch 1 durable
        let back = f.take_unacked();
        assert_eq!(
            back,
            vec![batch(2, 2, 4), batch(3, 1, 4)],
            "the cut batch comes back whole"
        );
        assert!(f.is_empty());
        assert_eq!((f.bytes(), f.written, f.acked), (0, 0, 0));
        // The next connection counts from zero: its first ack of 1 releases the first batch.
        f.push(batch(4, 1, 4));
        f.write_with(|b| Ok(b.len())).unwrap();
        assert_eq!(f.ack(1).unwrap().frames, 1);
    }

    #[test]
    fn a_write_error_leaves_the_batches_in_place_for_take_unacked() {
        let mut f = InFlight::default();
        f.push(batch(1, 1, 4));
        let e = f
            .write_with(|_| Err(io::Error::from_raw_os_error(libc::EPIPE)))
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPIPE));
        assert_eq!(f.take_unacked(), vec![batch(1, 1, 4)]);
    }
}
