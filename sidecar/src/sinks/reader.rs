//! A sink's view of the journal: reads from its cursor, waits for new data,
//! and persists its position after each delivery.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;
use tracing::{error, warn};

use crate::journal::cursor::CursorFile;
use crate::journal::{Batch, Journal, Read};
use crate::metrics::SinkMetrics;

/// How a sink should stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Keep running.
    No,
    /// Deliver everything up to the journal head, then stop; give up at the deadline.
    Drain { deadline: Instant },
}

pub struct JournalReader {
    journal: Arc<Journal>,
    head_rx: watch::Receiver<u64>,
    cursor: CursorFile,
    /// Next offset to read.
    pos: u64,
    /// Offset delivered up to (persisted).
    committed: u64,
    /// Before a restart, sending had started up to here: events below it may
    /// have been delivered already and are counted when sent again.
    replay_until: u64,
    pub metrics: Arc<SinkMetrics>,
}

/// Outcome of waiting for data.
enum Next {
    Data(Batch),
    /// Stop requested and everything available was read (or the deadline passed).
    Stopped,
}

impl JournalReader {
    /// Opens the sink's cursor file; a new sink starts at the oldest journal data.
    pub fn open(
        journal: Arc<Journal>,
        cursor_path: &Path,
        metrics: Arc<SinkMetrics>,
    ) -> io::Result<Self> {
        let (cursor, stored) = CursorFile::open(cursor_path)?;
        let pos = stored
            .map_or_else(|| journal.oldest(), |p| p.offset)
            .max(journal.oldest());
        metrics.cursor.set(pos);
        Ok(Self {
            head_rx: journal.subscribe(),
            journal,
            cursor,
            pos,
            committed: pos,
            replay_until: stored.map_or(0, |p| p.attempted),
            metrics,
        })
    }

    pub fn position(&self) -> u64 {
        self.committed
    }

    /// Next offset to read (everything before it was handed out).
    pub fn read_position(&self) -> u64 {
        self.pos
    }

    /// The next batch, or `None` once stopping. A read error is logged and
    /// retried after a pause: a sink never gives up over a disk hiccup.
    pub async fn next_batch(
        &mut self,
        max: usize,
        stop: &mut watch::Receiver<Stop>,
    ) -> Option<Batch> {
        loop {
            match self.next(max, stop).await {
                Ok(Next::Data(batch)) => return Some(batch),
                Ok(Next::Stopped) => return None,
                Err(e) => {
                    error!(sink = %self.metrics.name, error = %e, "cannot read the journal; retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Next frames after the read position, at most about `max` bytes.
    async fn next(&mut self, max: usize, stop: &mut watch::Receiver<Stop>) -> io::Result<Next> {
        loop {
            let stopping = *stop.borrow();
            if let Stop::Drain { deadline } = stopping {
                if Instant::now() >= deadline {
                    return Ok(Next::Stopped);
                }
            }
            match self.journal.read(self.pos, max).await? {
                Read::Data(batch) => {
                    self.pos = batch.end();
                    return Ok(Next::Data(batch));
                }
                Read::Corrupt { skip_to, error } => {
                    if !error.is_empty() {
                        warn!(sink = %self.metrics.name, from = self.pos, skip_to, %error, "skipping unreadable journal data");
                    }
                    if skip_to <= self.pos {
                        // No way forward from here (cannot happen with a sane
                        // journal); wait for new data instead of spinning.
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                    self.pos = skip_to.max(self.pos).min(self.journal.head());
                }
                Read::AtHead => {
                    if matches!(stopping, Stop::Drain { .. }) {
                        return Ok(Next::Stopped);
                    }
                    tokio::select! {
                        _ = self.head_rx.changed() => {}
                        _ = stop.changed() => {}
                    }
                }
            }
        }
    }

    /// Records that sending has started up to `offset` (before a request goes out).
    pub fn attempt(&mut self, offset: u64) -> io::Result<()> {
        self.cursor.attempt(offset)
    }

    /// Counts `events` ending at `end` as possible duplicates when they lie
    /// in the range a crashed predecessor may already have sent.
    pub fn count_replayed(&self, start: u64, events: u64) {
        if start < self.replay_until {
            self.metrics.replayed_after_restart.add(events);
        }
    }

    /// Records that everything before `offset` is delivered.
    pub fn commit(&mut self, offset: u64) -> io::Result<()> {
        if offset > self.committed {
            self.committed = offset;
            self.metrics.cursor.set(offset);
            self.cursor.store(offset)?;
        }
        Ok(())
    }
}
