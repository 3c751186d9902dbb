//! The journal: every accepted event, on disk, before PHP is told it is safe.
//!
//! # On-disk format
//!
//! ```text
//! SCADA_DATA_DIR/
//!   lock                          flock of the running sidecar; "pid=<pid> socket=<path>"
//!   journal/<start:020>.seg       segment files, frames only, back to back
//!   cursors/<reader>.cursor       each reader's position (see `cursor`)
//!
//! segment := frame*
//! frame   := len:u32le | crc32:u32le | body[len]      (scada_core::frame)
//! body    := version:u8 (1) | kind:u8 (3 event, 5 samples) | fields
//! ```
//!
//! Frames are stored exactly as PHP sent them. An *offset* is a byte position
//! in the concatenation of all segments (a segment's name is the offset of its
//! first byte), so offsets only ever grow, across restarts too: a new journal
//! starts after the furthest cursor. A segment is closed (a new one started)
//! before an append would take it past `segment_bytes`, and when an append
//! finds the disk full (only closed segments are deleted, so a disk smaller
//! than a segment could otherwise never be freed).
//!
//! # Invariants
//!
//! * Every offset below the head is on a frame boundary and durable: in the
//!   kernel (survives a crash or `kill -9` of the sidecar) or, with
//!   `fsync = true`, on disk (survives power loss). An append returns only
//!   then, and ingest acknowledges frames to PHP only after their append.
//! * A failed append leaves nothing behind: the segment is cut back to where
//!   the append started (if the cut fails too, the next append cuts first), and
//!   the frames are not acknowledged, so PHP still holds them.
//! * The journal owns its readers ([`Journal::reader`]): every stage that
//!   reads it (each sink, the throttle stage) registers, and a segment is
//!   deleted only once every reader's *persisted* cursor is past it. A cursor
//!   that cannot be persisted holds its data on disk.
//! * The most recent appends stay in memory (`memory_bytes`): a reader that
//!   keeps up never touches the disk.
//!
//! # Damage and torn writes
//!
//! A frame that fails its checks is either a torn tail or damage. Reading
//! resynchronises at the next valid frame: the first position from which a
//! whole frame (length in range, CRC, version and kind) is followed by another
//! valid frame, the end of the data, or data not read yet.
//! * Valid frames after the bad bytes: *damage* (bit rot, a bad sector). Only
//!   the damaged frames are lost; they are counted once (`corrupt_frames`,
//!   `corrupt_bytes` in the status and `/metrics`) and logged with segment,
//!   offset and length, and every reader skips them.
//! * Nothing valid after them at the end of the last segment: a *torn tail*,
//!   a write interrupted by a crash. Its frames were never acknowledged (their
//!   clients still hold them), so it is cut on open (`torn_bytes`).
//!
//! # I/O failures
//!
//! | call | outcome |
//! |---|---|
//! | open (list, read, cut a torn tail) | the sidecar does not start: it exits non-zero naming the journal and the error |
//! | write, fsync (ENOSPC, EIO, EROFS, EACCES) | segment cut back, nothing acknowledged; ingest pauses and retries; `writable = 0`, `errors` counted, logged once per change |
//! | write, fsync with the disk full (ENOSPC, EDQUOT) | as above, and the active segment is closed: once delivered it is deleted, and the retried append fits |
//! | sync ([`Journal::sync`], `fsync = false`) | `Err` to the caller, which keeps the other copy (a spool file) and retries |
//! | truncate after a failed write | the next append cuts before writing |
//! | segment create (roll) | the append fails as above; retried |
//! | read | retried by the reader; nothing is skipped for a read error |
//! | unlink of a delivered segment | kept on disk and in the index; retried at the next release |

pub mod cursor;
pub mod lock;
pub mod reader;
pub mod segment;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use scada_core::frame::{Frame, Frames, MAX_BODY_LEN};
use serde::Serialize;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::config::JournalConfig;
use crate::failpoint;
use crate::metrics::{Counter, Flag, SinkMetrics};
use crate::util::lock;
pub use reader::{JournalReader, Stop};
use segment::MAX_FRAME;

/// Complete frames starting at journal offset `start`.
#[derive(Debug, Clone)]
pub struct Batch {
    pub start: u64,
    pub data: Bytes,
}

impl Batch {
    pub fn end(&self) -> u64 {
        self.start + self.data.len() as u64
    }
}

/// What a read found at an offset.
#[derive(Debug)]
pub enum Read {
    Data(Batch),
    /// Nothing after this offset yet.
    AtHead,
    /// Nothing to read here: continue at `to` (the next segment, the oldest
    /// data still kept, or the first valid frame after damage, already
    /// counted and logged).
    Skip {
        to: u64,
    },
}

/// Why an append did not happen. Nothing of it is in the journal.
#[derive(Debug)]
pub enum AppendError {
    Write(io::Error),
    Fsync(io::Error),
    /// Starting a new segment file.
    CreateSegment(io::Error),
    /// Cutting a segment back after an earlier failed write.
    Truncate(io::Error),
    /// The blocking task running the append went away (runtime shutdown).
    Aborted,
}

impl AppendError {
    /// The errno, for tests and logs.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Self::Write(e) | Self::Fsync(e) | Self::CreateSegment(e) | Self::Truncate(e) => {
                e.raw_os_error()
            }
            Self::Aborted => None,
        }
    }
}

impl fmt::Display for AppendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Write(e) => write!(f, "journal write failed: {e}"),
            Self::Fsync(e) => write!(f, "journal fsync failed: {e}"),
            Self::CreateSegment(e) => write!(f, "cannot create a journal segment: {e}"),
            Self::Truncate(e) => write!(f, "cannot cut a journal segment back: {e}"),
            Self::Aborted => f.write_str("journal append aborted"),
        }
    }
}

impl std::error::Error for AppendError {}

/// The journal's health, in the status (`journal`) and `/metrics`.
#[derive(Debug, Default, Serialize)]
pub struct Health {
    /// 1 while appends succeed; 0 after a failed one until the next success.
    pub writable: Flag,
    /// Failed I/O calls (append, unlink, read).
    pub errors: Counter,
    /// Frames lost to damaged journal data (estimated from their headers).
    pub corrupt_frames: Counter,
    pub corrupt_bytes: Counter,
    /// Bytes of an interrupted write cut from the end on open.
    pub torn_bytes: Counter,
}

#[derive(Debug, Clone)]
struct Segment {
    path: PathBuf,
    len: u64,
}

/// What readers see.
#[derive(Debug)]
struct State {
    /// Segments by start offset; the last one is active.
    segments: BTreeMap<u64, Segment>,
    active_start: u64,
    /// End of the durable frames.
    head: u64,
    ring: VecDeque<Batch>,
    ring_bytes: usize,
    /// Damaged ranges already counted: start → end.
    damage: BTreeMap<u64, u64>,
}

/// What only appenders touch (held across the write and fsync; readers
/// never wait for it).
#[derive(Debug)]
struct Writer {
    active: File,
    start: u64,
    end: u64,
    /// The active segment must be cut back to this length before the next
    /// write (a failed write whose cut failed too).
    cut_to: Option<u64>,
    /// Appends before this offset are on disk (see [`Journal::sync`]).
    synced: u64,
}

#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    cursor_dir: PathBuf,
    cfg: JournalConfig,
    writer: Mutex<Writer>,
    state: Mutex<State>,
    head_tx: watch::Sender<u64>,
    readers: Mutex<Vec<Arc<reader::Slot>>>,
    health: Health,
    unlink_failing: AtomicBool,
}

/// What opening found.
#[derive(Debug, Clone, Default)]
pub struct Recovery {
    pub segments: usize,
    pub head: u64,
    pub oldest: u64,
    /// Bytes cut from the tail (an interrupted write).
    pub torn_bytes: u64,
}

impl Journal {
    /// Opens (or creates) the journal in `dir`, with the readers' cursors in
    /// `cursor_dir`. A fresh journal starts after the furthest cursor, so
    /// offsets never go backwards.
    pub fn open(
        dir: &Path,
        cursor_dir: &Path,
        cfg: JournalConfig,
    ) -> io::Result<(Arc<Journal>, Recovery)> {
        fs::create_dir_all(dir)?;
        fs::create_dir_all(cursor_dir)?;
        failpoint::io(failpoint::JOURNAL_OPEN)?;
        let mut segments: BTreeMap<u64, Segment> = segment::list(dir)?
            .into_iter()
            .map(|(start, path, len)| (start, Segment { path, len }))
            .collect();
        let mut recovery = Recovery::default();
        let mut damage = Vec::new();
        let (active_start, active) = match segments.iter_mut().next_back() {
            Some((&start, seg)) => {
                let data = fs::read(&seg.path)?;
                let scan = segment::scan(&data);
                for (a, b) in scan.damage {
                    damage.push((
                        start + a as u64,
                        start + b as u64,
                        segment::estimate_frames(&data[a..b]),
                    ));
                }
                let file = OpenOptions::new().read(true).write(true).open(&seg.path)?;
                if scan.tail > 0 {
                    segment::truncate(&file, scan.valid_end as u64)?;
                    recovery.torn_bytes = scan.tail as u64;
                    seg.len = scan.valid_end as u64;
                }
                (start, file)
            }
            None => {
                let start = cursor::furthest(cursor_dir);
                let (path, file) = segment::create(dir, start)?;
                segments.insert(start, Segment { path, len: 0 });
                (start, file)
            }
        };
        let head = active_start + segments.get(&active_start).map_or(0, |s| s.len);
        recovery.segments = segments.len();
        recovery.head = head;
        recovery.oldest = segments.keys().next().copied().unwrap_or(head);
        let (head_tx, _) = watch::channel(head);
        let health = Health::default();
        health.writable.set(true);
        health.torn_bytes.set(recovery.torn_bytes);
        let journal = Arc::new(Journal {
            dir: dir.to_path_buf(),
            cursor_dir: cursor_dir.to_path_buf(),
            cfg,
            writer: Mutex::new(Writer {
                active,
                start: active_start,
                end: head,
                cut_to: None,
                synced: 0,
            }),
            state: Mutex::new(State {
                segments,
                active_start,
                head,
                ring: VecDeque::new(),
                ring_bytes: 0,
                damage: BTreeMap::new(),
            }),
            head_tx,
            readers: Mutex::new(Vec::new()),
            health,
            unlink_failing: AtomicBool::new(false),
        });
        for (start, end, frames) in damage {
            journal.record_damage(start, end, frames);
        }
        Ok((journal, recovery))
    }

    /// Registers a reader: its cursor (`cursors/<name>.cursor`) decides,
    /// with every other reader's, which segments may be deleted.
    pub fn reader(
        self: &Arc<Self>,
        name: &str,
        metrics: Arc<SinkMetrics>,
    ) -> io::Result<JournalReader> {
        let path = self.cursor_path(name);
        let reader = JournalReader::open(self.clone(), &path, metrics)?;
        lock(&self.readers).push(reader.slot());
        Ok(reader)
    }

    /// [`Journal::reader`] for a reader added next to `seed` (a
    /// destination's priority lane next to its telemetry lane): when its
    /// cursor does not exist yet, it starts at `seed`'s stored position, so
    /// nothing before it is sent twice and nothing after it is skipped.
    pub fn reader_seeded(
        self: &Arc<Self>,
        name: &str,
        seed: &str,
        metrics: Arc<SinkMetrics>,
    ) -> io::Result<JournalReader> {
        let path = self.cursor_path(name);
        if !path.exists() {
            if let Some(from) = self.stored_position(seed)? {
                let (mut cursor, _) = cursor::CursorFile::open(&path)?;
                cursor.store(from.offset)?;
                cursor.attempt(from.attempted)?;
            }
        }
        self.reader(name, metrics)
    }

    /// Folds the cursor `stale` of a reader that is no longer configured (a
    /// priority rule removed) into `into`'s, then deletes it: `into` rewinds
    /// to it when it is behind, so what `stale` had not delivered yet is
    /// delivered (what `into` had sent already in between goes again,
    /// counted as `replayed_after_restart`). Call before opening `into`.
    /// Returns the bytes rewound.
    pub fn fold_cursor(&self, stale: &str, into: &str) -> io::Result<u64> {
        let stale_path = self.cursor_path(stale);
        if !stale_path.exists() {
            return Ok(0);
        }
        let mut rewound = 0;
        if let Some(behind) = self.stored_position(stale)? {
            let (mut cursor, current) = cursor::CursorFile::open(&self.cursor_path(into))?;
            let at = current.map_or(behind.offset, |p| p.offset);
            if behind.offset < at || current.is_none() {
                // `attempted` stays where `into` had sent up to: counted as replays.
                cursor.attempt(behind.attempted.max(at))?;
                cursor.store(behind.offset)?;
                rewound = at.saturating_sub(behind.offset);
            }
        }
        fs::remove_file(&stale_path)?;
        Ok(rewound)
    }

    fn cursor_path(&self, name: &str) -> PathBuf {
        self.cursor_dir.join(format!("{name}.cursor"))
    }

    fn stored_position(&self, name: &str) -> io::Result<Option<cursor::Position>> {
        let path = self.cursor_path(name);
        if !path.exists() {
            return Ok(None);
        }
        Ok(cursor::CursorFile::open(&path)?.1)
    }

    pub fn health(&self) -> &Health {
        &self.health
    }

    pub fn head(&self) -> u64 {
        lock(&self.state).head
    }

    /// Offset of the oldest byte still on disk.
    pub fn oldest(&self) -> u64 {
        let s = lock(&self.state);
        s.segments.keys().next().copied().unwrap_or(s.head)
    }

    /// Bytes on disk between the oldest segment and the head.
    pub fn disk_bytes(&self) -> u64 {
        let s = lock(&self.state);
        s.head - s.segments.keys().next().copied().unwrap_or(s.head)
    }

    pub fn segment_count(&self) -> usize {
        lock(&self.state).segments.len()
    }

    /// True when an append waits for the disk (`fsync = true`): callers on
    /// the runtime threads must append through [`Journal::append_async`].
    pub fn waits_for_disk(&self) -> bool {
        self.cfg.fsync
    }

    /// Notified whenever the head moves.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.head_tx.subscribe()
    }

    /// Appends complete frames; returns their start offset. When this
    /// returns Ok the frames are durable (see the module docs); on Err
    /// nothing of them is in the journal. Blocking (one write, and an fsync
    /// with `fsync = true`).
    pub fn append(&self, frames: Vec<u8>) -> Result<u64, AppendError> {
        if frames.is_empty() {
            return Ok(self.head());
        }
        let mut w = lock(&self.writer);
        let start = match self.write(&mut w, &frames) {
            Ok(start) => start,
            Err(e) => {
                self.failed(&e);
                return Err(e);
            }
        };
        let head = {
            let mut s = lock(&self.state);
            s.head = w.end;
            let active_start = s.active_start;
            if let Some(seg) = s.segments.get_mut(&active_start) {
                seg.len = w.end - active_start;
            }
            let data = Bytes::from(frames);
            s.ring_bytes += data.len();
            s.ring.push_back(Batch { start, data });
            while s.ring_bytes > self.cfg.memory_bytes && s.ring.len() > 1 {
                if let Some(old) = s.ring.pop_front() {
                    s.ring_bytes -= old.data.len();
                }
            }
            s.head
        };
        drop(w);
        self.head_tx.send_replace(head);
        if !self.health.writable.set(true) {
            info!("the journal is writable again: ingest resumes");
        }
        Ok(start)
    }

    /// [`Journal::append`] from async code: off the runtime threads when it
    /// waits for the disk.
    pub async fn append_async(self: &Arc<Self>, frames: Vec<u8>) -> Result<u64, AppendError> {
        if !self.waits_for_disk() {
            return self.append(frames);
        }
        let journal = self.clone();
        tokio::task::spawn_blocking(move || journal.append(frames))
            .await
            .unwrap_or(Err(AppendError::Aborted))
    }

    /// Makes every append so far survive power loss: with `fsync = false`
    /// appends reach the kernel only, and a caller about to delete the only
    /// other copy of their frames (a drained spool file) must wait for this.
    /// Blocking; does not hold up appends (the files are synced outside the
    /// writer's lock). With `fsync = true` every append is synced already.
    pub fn sync(&self) -> io::Result<()> {
        if self.cfg.fsync {
            return Ok(());
        }
        let (upto, active, closed) = {
            let w = lock(&self.writer);
            let s = lock(&self.state);
            let closed: Vec<PathBuf> = s
                .segments
                .range(..w.start)
                .filter(|(&start, seg)| start + seg.len > w.synced)
                .map(|(_, seg)| seg.path.clone())
                .collect();
            (w.end, w.active.try_clone()?, closed)
        };
        let sync = |file: &File| {
            failpoint::io(failpoint::JOURNAL_FSYNC)
                .and_then(|()| file.sync_data())
                .inspect_err(|_| self.health.errors.inc())
        };
        for path in closed {
            // By path, not a kept descriptor: a descriptor would keep a
            // deleted segment's space allocated.
            match File::open(&path) {
                Ok(file) => sync(&file)?,
                // Released meanwhile: delivered, nothing owed.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        sync(&active)?;
        let mut w = lock(&self.writer);
        w.synced = w.synced.max(upto);
        Ok(())
    }

    fn write(&self, w: &mut Writer, frames: &[u8]) -> Result<u64, AppendError> {
        if let Some(len) = w.cut_to {
            segment::truncate(&w.active, len).map_err(AppendError::Truncate)?;
            w.cut_to = None;
        }
        let active_len = w.end - w.start;
        if active_len > 0 && active_len + frames.len() as u64 > self.cfg.segment_bytes {
            self.roll(w).map_err(AppendError::CreateSegment)?;
        }
        let at = w.end - w.start;
        if let Err(e) = failpoint::io(failpoint::JOURNAL_WRITE) {
            // An injected failure behaves like a real ENOSPC: part written.
            let _ = w.active.write_all_at(&frames[..frames.len() / 2], at);
            self.undo(w, at, &e);
            return Err(AppendError::Write(e));
        }
        if let Err(e) = w.active.write_all_at(frames, at) {
            self.undo(w, at, &e);
            return Err(AppendError::Write(e));
        }
        if self.cfg.fsync {
            if let Err(e) =
                failpoint::io(failpoint::JOURNAL_FSYNC).and_then(|()| w.active.sync_data())
            {
                self.undo(w, at, &e);
                return Err(AppendError::Fsync(e));
            }
        }
        let start = w.end;
        w.end += frames.len() as u64;
        Ok(start)
    }

    /// After a failed write or fsync: cuts the active segment back to `len`
    /// (a frame boundary), and when the disk is full, closes it. Only closed
    /// segments are ever deleted, so a disk that fills before the active
    /// segment reaches `segment_bytes` (any disk smaller than one segment)
    /// could otherwise never be freed: every reader would deliver everything
    /// and the same append would still fail, forever.
    fn undo(&self, w: &mut Writer, len: u64, error: &io::Error) {
        if segment::truncate(&w.active, len).is_err() {
            // The cut is owed to this file: it stays active until it is done.
            w.cut_to = Some(len);
            return;
        }
        if is_disk_full(error) && w.end > w.start {
            match self.roll(w) {
                Ok(()) => {
                    info!(closed_at = w.start, "the disk is full: the active journal segment is closed early, to be deleted once delivered")
                }
                // Retried at the next failed append.
                Err(e) => debug!(error = %e, "cannot close the full journal segment yet"),
            }
        }
    }

    fn roll(&self, w: &mut Writer) -> io::Result<()> {
        let start = w.end;
        let (path, file) = segment::create(&self.dir, start)?;
        w.active = file;
        w.start = start;
        let mut s = lock(&self.state);
        s.segments.insert(start, Segment { path, len: 0 });
        s.active_start = start;
        Ok(())
    }

    fn failed(&self, e: &AppendError) {
        self.health.errors.inc();
        if self.health.writable.set(false) {
            warn!(error = %e, "the journal is not writable: ingest pauses and retries; PHP processes keep their events (unacknowledged, then in their spool) until it is writable again");
        }
    }

    /// Frames at `from` (a frame boundary), at most about `max` bytes, from
    /// memory; `None` when they left memory (read the disk).
    pub fn read_memory(&self, from: u64, max: usize) -> Option<Read> {
        let s = lock(&self.state);
        if from >= s.head {
            return Some(Read::AtHead);
        }
        let front = s.ring.front()?;
        if from < front.start {
            return None;
        }
        let idx = match s.ring.binary_search_by(|b| b.start.cmp(&from)) {
            Ok(i) => i,
            Err(i) => i.checked_sub(1)?,
        };
        let batch = &s.ring[idx];
        let skip = (from - batch.start) as usize;
        if skip >= batch.data.len() {
            return None;
        }
        let mut data = batch.data.slice(skip..);
        if data.len() > max {
            let cut = segment::frames_prefix(&data, max);
            if cut > 0 {
                data = data.slice(..cut);
            }
        }
        Some(Read::Data(Batch { start: from, data }))
    }

    /// Length of the whole, valid frame starting at `at`; `None` when none
    /// does (not a frame boundary, released, or past the head). For offsets
    /// from outside (an SSE client's `Last-Event-ID`): unlike a read, a miss
    /// is not recorded as damage. Blocking when `at` left memory.
    pub fn frame_len_at(&self, at: u64) -> io::Result<Option<usize>> {
        match self.read_memory(at, 1) {
            Some(Read::Data(batch)) => {
                return Ok(Frame::parse(&batch.data, MAX_BODY_LEN)
                    .ok()
                    .flatten()
                    .map(|f| f.len()))
            }
            Some(_) => return Ok(None),
            None => {}
        }
        let (path, seg_start, seg_len) = {
            let s = lock(&self.state);
            let Some((&start, seg)) = s.segments.range(..=at).next_back() else {
                return Ok(None);
            };
            (seg.path.clone(), start, seg.len)
        };
        let room = (seg_start + seg_len).saturating_sub(at);
        if room < scada_core::frame::HEADER_LEN as u64 {
            return Ok(None);
        }
        let file = File::open(&path)?;
        let mut header = [0u8; scada_core::frame::HEADER_LEN];
        self.read_at(&file, &mut header, at - seg_start)?;
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let total = scada_core::frame::HEADER_LEN + len;
        if len > MAX_BODY_LEN || total as u64 > room {
            return Ok(None);
        }
        let mut buf = vec![0u8; total];
        self.read_at(&file, &mut buf, at - seg_start)?;
        Ok(Frame::parse(&buf, MAX_BODY_LEN)
            .ok()
            .flatten()
            .map(|f| f.len()))
    }

    /// Reads frames at `from` from the segment files (blocking I/O).
    pub fn read_disk(&self, from: u64, max: usize) -> io::Result<Read> {
        let (path, seg_start, seg_len) = {
            let s = lock(&self.state);
            if from >= s.head {
                return Ok(Read::AtHead);
            }
            if let Some((_, &end)) = s.damage.range(..=from).next_back() {
                if end > from {
                    return Ok(Read::Skip { to: end });
                }
            }
            let Some((&start, seg)) = s.segments.range(..=from).next_back() else {
                // Below the oldest segment: those bytes were released.
                let oldest = s.segments.keys().next().copied().unwrap_or(s.head);
                return Ok(Read::Skip { to: oldest });
            };
            (seg.path.clone(), start, seg.len)
        };
        let seg_end = seg_start + seg_len;
        if from >= seg_end {
            // End of a closed segment: the next one starts here.
            return Ok(Read::Skip { to: seg_end });
        }
        let want = (seg_end - from).min(max.max(MAX_FRAME) as u64) as usize;
        let file = File::open(&path)?;
        let mut buf = vec![0u8; want];
        self.read_at(&file, &mut buf, from - seg_start)?;
        let cut = segment::frames_prefix(&buf, max);
        if cut > 0 {
            buf.truncate(cut);
            return Ok(Read::Data(Batch {
                start: from,
                data: Bytes::from(buf),
            }));
        }
        // Damage at `from`: skip to the next valid frame in this segment.
        let next = self.resync(&file, seg_start, seg_len, from)?;
        let frames = segment::estimate_frames_in_file(
            |buf, at| self.read_at(&file, buf, at - seg_start),
            from,
            next,
        )?;
        self.record_damage(from, next, frames);
        Ok(Read::Skip { to: next })
    }

    fn read_at(&self, file: &File, buf: &mut [u8], at: u64) -> io::Result<()> {
        segment::read_at(file, buf, at).inspect_err(|_| self.health.errors.inc())
    }

    /// The offset of the first valid frame after `from` in a segment, or its end.
    fn resync(&self, file: &File, seg_start: u64, seg_len: u64, from: u64) -> io::Result<u64> {
        let seg_end = seg_start + seg_len;
        let next = segment::find_in_file(
            |buf, at| self.read_at(file, buf, at - seg_start),
            from,
            seg_end,
        )?;
        Ok(next.unwrap_or(seg_end))
    }

    /// Counts and logs a damaged range once, however many readers meet it.
    fn record_damage(&self, start: u64, end: u64, frames: u64) {
        let segment = {
            let mut s = lock(&self.state);
            if s.damage
                .range(..=start)
                .next_back()
                .is_some_and(|(_, &e)| e > start)
            {
                return;
            }
            s.damage.insert(start, end);
            s.segments
                .range(..=start)
                .next_back()
                .map(|(&seg_start, seg)| (seg.path.clone(), start - seg_start))
        };
        self.health.corrupt_frames.add(frames);
        self.health.corrupt_bytes.add(end - start);
        let (path, at) = segment.unwrap_or_default();
        warn!(segment = %path.display(), offset_in_segment = at, journal_offset = start, bytes = end - start, frames, "damaged journal data: skipped to the next valid frame; the damaged frames are lost (counted in corrupt_frames)");
    }

    /// Reads at `from`, from memory or (off the async threads) from disk.
    pub async fn read(self: &Arc<Self>, from: u64, max: usize) -> io::Result<Read> {
        if let Some(r) = self.read_memory(from, max) {
            return Ok(r);
        }
        let journal = self.clone();
        tokio::task::spawn_blocking(move || journal.read_disk(from, max))
            .await
            .map_err(io::Error::other)?
    }

    /// The offset every registered reader has persisted: what may be deleted.
    pub fn delivered_everywhere(&self) -> Option<u64> {
        lock(&self.readers).iter().map(|r| r.persisted()).min()
    }

    /// Deletes closed segments that every registered reader has passed (by
    /// its persisted cursor). Returns how many were deleted. A segment that
    /// cannot be deleted stays on disk and readable; retried next time.
    pub fn release_delivered(&self) -> usize {
        let Some(upto) = self.delivered_everywhere() else {
            return 0;
        };
        let doomed: Vec<(u64, PathBuf)> = {
            let s = lock(&self.state);
            s.segments
                .iter()
                .filter(|(&start, seg)| start != s.active_start && start + seg.len <= upto)
                .map(|(&start, seg)| (start, seg.path.clone()))
                .collect()
        };
        let mut removed = 0;
        for (start, path) in doomed {
            let result =
                failpoint::io(failpoint::JOURNAL_UNLINK).and_then(|()| fs::remove_file(&path));
            match result {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    self.health.errors.inc();
                    if !self.unlink_failing.swap(true, Ordering::Relaxed) {
                        warn!(segment = %path.display(), error = %e, "cannot delete a delivered journal segment; it stays on disk and is retried");
                    }
                    break;
                }
            }
            let mut s = lock(&self.state);
            if let Some(seg) = s.segments.remove(&start) {
                let end = start + seg.len;
                let gone: Vec<u64> = s.damage.range(..end).map(|(&a, _)| a).collect();
                for a in gone {
                    s.damage.remove(&a);
                }
            }
            removed += 1;
        }
        if removed > 0 && self.unlink_failing.swap(false, Ordering::Relaxed) {
            info!("delivered journal segments are deleted again");
        }
        removed
    }

    /// The start of the segment holding offset `at` (a frame boundary), or
    /// the oldest data kept when `at` was released: where a scan of the
    /// newest data may begin.
    pub fn segment_start_at(&self, at: u64) -> u64 {
        let s = lock(&self.state);
        s.segments
            .range(..=at)
            .next_back()
            .map(|(&start, _)| start)
            .or_else(|| s.segments.keys().next().copied())
            .unwrap_or(s.head)
    }

    /// Every frame from `from` to the head, for recovery scans (dedup
    /// rebuild); damaged ranges are skipped (and counted) as readers skip them.
    pub fn scan(&self, from: u64, mut f: impl FnMut(u64, Frame<'_>)) -> io::Result<()> {
        let mut pos = from.max(self.oldest());
        let head = self.head();
        while pos < head {
            match self.read_disk(pos, 4 * 1024 * 1024)? {
                Read::Data(batch) => {
                    let mut at = batch.start;
                    for frame in Frames::new(&batch.data, MAX_BODY_LEN).map_while(Result::ok) {
                        f(at, frame);
                        at += frame.len() as u64;
                    }
                    pos = batch.end();
                }
                Read::AtHead => break,
                Read::Skip { to } => {
                    if to <= pos {
                        break;
                    }
                    pos = to;
                }
            }
        }
        Ok(())
    }
}

/// ENOSPC, or a quota (EDQUOT): space may return once something is deleted.
fn is_disk_full(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}

#[cfg(test)]
mod tests;
