//! A reader of the journal (a sink, the throttle stage): reads from its
//! cursor, waits for new data, and persists its position after each delivery.
//!
//! Readers are created by [`Journal::reader`](super::Journal::reader), which
//! registers them: the journal deletes a segment only once every registered
//! reader has *persisted* a position past it. When a cursor cannot be written
//! (a full or failing disk), the reader goes on from its position in memory,
//! the error is counted (`cursor_errors`) and logged once, and the journal
//! keeps the data: at worst it is delivered again after a restart (counted as
//! `replayed_after_restart`), never deleted undelivered.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{error, info, warn};

use super::cursor::CursorFile;
use super::{Batch, Journal, Read};
use crate::metrics::SinkMetrics;

/// How a stage should stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Keep running.
    No,
    /// Deliver everything up to the journal head, then stop; give up at the deadline.
    Drain { deadline: Instant },
}

impl Stop {
    /// What `stop` says now. A sender that is gone means: stop now (a stage
    /// whose owner is gone must end, not spin on a closed channel).
    pub fn current(stop: &watch::Receiver<Stop>) -> Stop {
        match stop.has_changed() {
            Ok(_) => *stop.borrow(),
            Err(_) => Stop::Drain {
                deadline: Instant::now(),
            },
        }
    }

    pub fn deadline(self) -> Option<Instant> {
        match self {
            Stop::No => None,
            Stop::Drain { deadline } => Some(deadline),
        }
    }

    /// Resolves when the stop request changes; at once when its sender is gone.
    pub async fn changed(stop: &mut watch::Receiver<Stop>) {
        let _ = stop.changed().await;
    }
}

/// A registered reader's persisted position, as the journal sees it.
#[derive(Debug)]
pub struct Slot {
    persisted: AtomicU64,
}

impl Slot {
    pub fn persisted(&self) -> u64 {
        self.persisted.load(Ordering::Acquire)
    }
}

pub struct JournalReader {
    journal: Arc<Journal>,
    slot: Arc<Slot>,
    head_rx: watch::Receiver<u64>,
    cursor: CursorFile,
    /// Next offset to read.
    pos: u64,
    /// Offset delivered up to (in memory; persisted unless `cursor_failing`).
    committed: u64,
    cursor_failing: bool,
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

const READ_RETRY: Duration = Duration::from_secs(1);

impl JournalReader {
    /// Opens the cursor file; a new reader starts at the oldest journal data.
    pub(super) fn open(
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
            slot: Arc::new(Slot {
                persisted: AtomicU64::new(pos),
            }),
            cursor,
            pos,
            committed: pos,
            cursor_failing: false,
            replay_until: stored.map_or(0, |p| p.attempted),
            metrics,
        })
    }

    pub(super) fn slot(&self) -> Arc<Slot> {
        self.slot.clone()
    }

    pub fn journal(&self) -> &Arc<Journal> {
        &self.journal
    }

    pub fn position(&self) -> u64 {
        self.committed
    }

    /// Next offset to read (everything before it was handed out).
    pub fn read_position(&self) -> u64 {
        self.pos
    }

    /// The next batch, or `None` once stopping. A read error is counted,
    /// logged and retried after a pause: nothing is skipped for it.
    pub async fn next_batch(
        &mut self,
        max: usize,
        stop: &mut watch::Receiver<Stop>,
    ) -> Option<Batch> {
        let mut failing = false;
        loop {
            match self.next(max, stop).await {
                Ok(Next::Data(batch)) => {
                    if failing {
                        info!(sink = %self.metrics.name, "the journal is readable again");
                    }
                    return Some(batch);
                }
                Ok(Next::Stopped) => return None,
                Err(e) => {
                    if !failing {
                        error!(sink = %self.metrics.name, at = self.pos, error = %e, "cannot read the journal; retrying (nothing is skipped)");
                        failing = true;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(READ_RETRY) => {}
                        _ = Stop::changed(stop) => {}
                    }
                    if let Some(deadline) = Stop::current(stop).deadline() {
                        if Instant::now() >= deadline {
                            return None;
                        }
                    }
                }
            }
        }
    }

    /// Next frames after the read position, at most about `max` bytes.
    async fn next(&mut self, max: usize, stop: &mut watch::Receiver<Stop>) -> io::Result<Next> {
        loop {
            let stopping = Stop::current(stop);
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
                Read::Skip { to } => {
                    if to <= self.pos {
                        // No way forward from here (cannot happen with a sane
                        // journal); wait for new data instead of spinning.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    self.pos = to.max(self.pos).min(self.journal.head());
                }
                Read::AtHead => {
                    if matches!(stopping, Stop::Drain { .. }) {
                        return Ok(Next::Stopped);
                    }
                    tokio::select! {
                        _ = self.head_rx.changed() => {}
                        _ = Stop::changed(stop) => {}
                    }
                }
            }
        }
    }

    /// Records that sending has started up to `offset` (before a request
    /// goes out). Not persisting it only under-counts possible duplicates
    /// after a crash; it is logged with the cursor's other failures.
    pub fn attempt(&mut self, offset: u64) {
        let result = self.cursor.attempt(offset);
        self.cursor_result(result);
    }

    /// Counts `events` starting at `start` as possible duplicates when they
    /// lie in the range a crashed predecessor may already have sent.
    pub fn count_replayed(&self, start: u64, events: u64) {
        if start < self.replay_until {
            self.metrics.replayed_after_restart.add(events);
        }
    }

    /// Records that everything before `offset` is delivered. If the cursor
    /// cannot be written, the journal keeps the data (see the module docs).
    pub fn commit(&mut self, offset: u64) {
        if offset <= self.committed && !self.cursor_failing {
            return;
        }
        self.committed = self.committed.max(offset);
        self.metrics.cursor.set(self.committed);
        let result = self.cursor.store(self.committed);
        if result.is_ok() {
            self.slot.persisted.store(self.committed, Ordering::Release);
        }
        self.cursor_result(result);
    }

    fn cursor_result(&mut self, result: io::Result<()>) {
        match result {
            Ok(()) => {
                if self.cursor_failing {
                    self.cursor_failing = false;
                    info!(sink = %self.metrics.name, at = self.committed, "the cursor is persisted again");
                }
            }
            Err(e) => {
                self.metrics.cursor_errors.inc();
                if !self.cursor_failing {
                    self.cursor_failing = true;
                    warn!(sink = %self.metrics.name, error = %e, "cannot persist the cursor; delivery goes on, the journal keeps this data until it is persisted (after a restart it would be delivered again)");
                }
            }
        }
    }
}
