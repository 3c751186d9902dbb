//! The journal: every accepted event, on disk, before PHP is told it is safe.
//!
//! # Design
//! * Append-only segment files `<start offset, 20 digits>.seg` holding frames
//!   exactly as they arrived (length, CRC, body). An offset is a byte position
//!   in the concatenation of all segments, so it only ever grows.
//! * Ingest appends a chunk of complete frames, then acknowledges them to the
//!   client: an event acked to PHP survives a crash or kill -9 of the sidecar
//!   (the page cache keeps the write; `fsync = true` also survives power loss).
//! * Each sink reads at its own offset and persists it in a [`cursor`] file
//!   after every delivery, so a restart resumes where each sink stopped.
//! * The most recent appends stay in memory (`memory_bytes`): a sink that keeps
//!   up never touches the disk; one that falls behind (an outage, a restart)
//!   reads segment files until it catches up.
//! * Segments every sink has passed are deleted.
//!
//! # Torn writes
//! On open, the last segment is scanned and cut at the first frame that is
//! incomplete or fails its CRC: the tail of a write interrupted by a crash.
//! Its events were never acknowledged, so their clients still hold them.

pub mod cursor;

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use scada_core::frame::{Frame, FrameError, Frames, HEADER_LEN, MAX_BODY_LEN};
use tokio::sync::watch;

use crate::config::JournalConfig;

const SEGMENT_EXT: &str = "seg";

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

/// What `read` found at an offset.
#[derive(Debug)]
pub enum Read {
    Data(Batch),
    /// Nothing after this offset yet.
    AtHead,
    /// Unreadable frames (disk corruption): continue from `skip_to`.
    Corrupt {
        skip_to: u64,
        error: String,
    },
}

#[derive(Debug, Clone)]
struct Segment {
    path: PathBuf,
    len: u64,
}

#[derive(Debug)]
struct Inner {
    /// Segments by start offset; the last one is active.
    segments: BTreeMap<u64, Segment>,
    active: File,
    active_start: u64,
    head: u64,
    ring: VecDeque<Batch>,
    ring_bytes: usize,
}

#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    cfg: JournalConfig,
    inner: Mutex<Inner>,
    head_tx: watch::Sender<u64>,
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

fn segment_path(dir: &Path, start: u64) -> PathBuf {
    dir.join(format!("{start:020}.{SEGMENT_EXT}"))
}

/// Length of the valid frame prefix of `data`.
fn valid_prefix(data: &[u8]) -> u64 {
    let mut frames = Frames::new(data, MAX_BODY_LEN);
    for f in frames.by_ref() {
        if f.is_err() {
            break;
        }
    }
    frames.consumed() as u64
}

impl Journal {
    /// Opens (or creates) the journal in `dir`. `min_head` is where a fresh
    /// journal starts, so offsets never go backwards relative to cursors.
    pub fn open(
        dir: &Path,
        cfg: JournalConfig,
        min_head: u64,
    ) -> io::Result<(Arc<Journal>, Recovery)> {
        fs::create_dir_all(dir)?;
        let mut segments = BTreeMap::new();
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some(SEGMENT_EXT) {
                continue;
            }
            let Some(start) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            let len = fs::metadata(&path)?.len();
            segments.insert(start, Segment { path, len });
        }
        let mut recovery = Recovery::default();
        let (active_start, active) = match segments.iter_mut().next_back() {
            Some((&start, seg)) => {
                let data = fs::read(&seg.path)?;
                let valid = valid_prefix(&data);
                let file = OpenOptions::new().read(true).write(true).open(&seg.path)?;
                if valid < seg.len {
                    recovery.torn_bytes = seg.len - valid;
                    file.set_len(valid)?;
                    seg.len = valid;
                }
                (start, file)
            }
            None => {
                let path = segment_path(dir, min_head);
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&path)?;
                segments.insert(min_head, Segment { path, len: 0 });
                (min_head, file)
            }
        };
        let head = active_start + segments.get(&active_start).map_or(0, |s| s.len);
        recovery.segments = segments.len();
        recovery.head = head;
        recovery.oldest = segments.keys().next().copied().unwrap_or(head);
        let (head_tx, _) = watch::channel(head);
        let journal = Journal {
            dir: dir.to_path_buf(),
            cfg,
            inner: Mutex::new(Inner {
                segments,
                active,
                active_start,
                head,
                ring: VecDeque::new(),
                ring_bytes: 0,
            }),
            head_tx,
        };
        Ok((Arc::new(journal), recovery))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn head(&self) -> u64 {
        self.lock().head
    }

    /// Offset of the oldest byte still on disk.
    pub fn oldest(&self) -> u64 {
        let inner = self.lock();
        inner.segments.keys().next().copied().unwrap_or(inner.head)
    }

    /// Bytes on disk between the oldest segment and the head.
    pub fn disk_bytes(&self) -> u64 {
        let inner = self.lock();
        inner.head - inner.segments.keys().next().copied().unwrap_or(inner.head)
    }

    pub fn segment_count(&self) -> usize {
        self.lock().segments.len()
    }

    /// Notified whenever the head moves.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.head_tx.subscribe()
    }

    /// Appends complete frames; returns their start offset. The bytes are in
    /// the kernel (or on disk with `fsync`) when this returns.
    pub fn append(&self, frames: Vec<u8>) -> io::Result<u64> {
        if frames.is_empty() {
            return Ok(self.head());
        }
        let mut inner = self.lock();
        let active_len = inner.head - inner.active_start;
        if active_len > 0 && active_len + frames.len() as u64 > self.cfg.segment_bytes {
            self.roll(&mut inner)?;
        }
        let start = inner.head;
        let offset = start - inner.active_start;
        if let Err(e) = inner.active.write_all_at(&frames, offset) {
            // Leave the file ending on a frame boundary.
            let _ = inner.active.set_len(offset);
            return Err(e);
        }
        if self.cfg.fsync {
            inner.active.sync_data()?;
        }
        inner.head += frames.len() as u64;
        let active_start = inner.active_start;
        let head = inner.head;
        if let Some(seg) = inner.segments.get_mut(&active_start) {
            seg.len = head - active_start;
        }
        let data = Bytes::from(frames);
        inner.ring_bytes += data.len();
        inner.ring.push_back(Batch { start, data });
        while inner.ring_bytes > self.cfg.memory_bytes && inner.ring.len() > 1 {
            if let Some(old) = inner.ring.pop_front() {
                inner.ring_bytes -= old.data.len();
            }
        }
        drop(inner);
        self.head_tx.send_replace(head);
        Ok(start)
    }

    fn roll(&self, inner: &mut Inner) -> io::Result<()> {
        let start = inner.head;
        let path = segment_path(&self.dir, start);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        inner.active = file;
        inner.active_start = start;
        inner.segments.insert(start, Segment { path, len: 0 });
        Ok(())
    }

    /// Frames at `from` (a frame boundary), at most about `max` bytes. Served
    /// from memory when possible; otherwise `read_disk` must be used.
    pub fn read_memory(&self, from: u64, max: usize) -> Option<Read> {
        let inner = self.lock();
        if from >= inner.head {
            return Some(Read::AtHead);
        }
        let front = inner.ring.front()?;
        if from < front.start {
            return None;
        }
        let idx = match inner.ring.binary_search_by(|b| b.start.cmp(&from)) {
            Ok(i) => i,
            Err(i) => i.checked_sub(1)?,
        };
        let batch = &inner.ring[idx];
        let skip = (from - batch.start) as usize;
        if skip >= batch.data.len() {
            return None;
        }
        let mut data = batch.data.slice(skip..);
        if data.len() > max {
            // Cut at a frame boundary (the first frame always fits).
            let mut frames = Frames::new(&data, MAX_BODY_LEN);
            let mut cut = 0;
            for f in frames.by_ref() {
                match f {
                    Ok(f) if cut == 0 || cut + f.len() <= max => cut += f.len(),
                    _ => break,
                }
            }
            if cut > 0 {
                data = data.slice(..cut);
            }
        }
        Some(Read::Data(Batch { start: from, data }))
    }

    /// Reads frames at `from` from the segment files (blocking I/O).
    pub fn read_disk(&self, from: u64, max: usize) -> io::Result<Read> {
        let (path, seg_start, seg_len, head) = {
            let inner = self.lock();
            if from >= inner.head {
                return Ok(Read::AtHead);
            }
            let Some((&start, seg)) = inner.segments.range(..=from).next_back() else {
                // Below the oldest segment: those bytes were dropped; go on from there.
                let oldest = inner.segments.keys().next().copied().unwrap_or(inner.head);
                return Ok(Read::Corrupt {
                    skip_to: oldest,
                    error: format!("offset {from} is older than the journal"),
                });
            };
            (seg.path.clone(), start, seg.len, inner.head)
        };
        let seg_end = seg_start + seg_len;
        if from >= seg_end {
            // End of a closed segment: the next one starts here.
            return Ok(Read::Corrupt {
                skip_to: seg_end.max(from),
                error: String::new(),
            });
        }
        let want = (seg_end - from).min(max.max(MAX_BODY_LEN + HEADER_LEN) as u64) as usize;
        let file = File::open(&path)?;
        let mut buf = vec![0u8; want];
        file.read_exact_at(&mut buf, from - seg_start)?;
        let mut frames = Frames::new(&buf, MAX_BODY_LEN);
        let mut cut = 0;
        let mut err: Option<FrameError> = None;
        for f in frames.by_ref() {
            match f {
                Ok(f) if cut == 0 || cut + f.len() <= max => cut += f.len(),
                Ok(_) => break,
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        if cut == 0 {
            let error = match err {
                Some(e) => e.to_string(),
                None => match Frame::parse(&buf, MAX_BODY_LEN) {
                    Ok(None) => "truncated frame".into(),
                    Ok(Some(_)) => "frame larger than expected".into(),
                    Err(e) => e.to_string(),
                },
            };
            return Ok(Read::Corrupt {
                skip_to: seg_end.min(head),
                error,
            });
        }
        buf.truncate(cut);
        Ok(Read::Data(Batch {
            start: from,
            data: Bytes::from(buf),
        }))
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

    /// Deletes closed segments that end at or before `offset` (every sink is past them).
    pub fn release_before(&self, offset: u64) -> io::Result<usize> {
        let mut inner = self.lock();
        let active = inner.active_start;
        let doomed: Vec<u64> = inner
            .segments
            .iter()
            .filter(|(&start, seg)| start != active && start + seg.len <= offset)
            .map(|(&start, _)| start)
            .collect();
        for start in &doomed {
            if let Some(seg) = inner.segments.remove(start) {
                fs::remove_file(&seg.path)?;
            }
        }
        Ok(doomed.len())
    }

    /// Frames of every closed and active segment from `from`, for recovery
    /// scans (dedup rebuild). Calls `f` with each frame.
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
                Read::Corrupt { skip_to, .. } => {
                    if skip_to <= pos {
                        break;
                    }
                    pos = skip_to;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scada_core::frame::{FrameBuilder, FrameKind};

    fn frames(n: usize, size: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..n {
            let b = FrameBuilder::begin(&mut out, FrameKind::Event);
            out.extend(std::iter::repeat_n(i as u8, size));
            b.finish(&mut out).unwrap();
        }
        out
    }

    fn cfg(segment: u64, memory: usize) -> JournalConfig {
        JournalConfig {
            segment_bytes: segment,
            max_bytes: segment * 100,
            memory_bytes: memory,
            fsync: false,
        }
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("scada-journal-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn read_all(j: &Journal, mut from: u64, memory: bool) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let r = if memory {
                j.read_memory(from, 1000).unwrap()
            } else {
                j.read_disk(from, 1000).unwrap()
            };
            match r {
                Read::Data(b) => {
                    out.extend_from_slice(&b.data);
                    from = b.end();
                }
                Read::AtHead => return out,
                Read::Corrupt { skip_to, .. } => from = skip_to,
            }
        }
    }

    #[test]
    fn appends_roll_segments_and_read_back_from_memory_and_disk() {
        let dir = tmp("roll");
        let (j, rec) = Journal::open(&dir, cfg(4000, 1 << 20), 0).unwrap();
        assert_eq!(rec.head, 0);
        let mut all = Vec::new();
        for _ in 0..10 {
            let chunk = frames(10, 50);
            all.extend_from_slice(&chunk);
            j.append(chunk).unwrap();
        }
        assert!(j.segment_count() > 1);
        assert_eq!(read_all(&j, 0, true), all);
        assert_eq!(read_all(&j, 0, false), all);
        // Reopen: same head, same bytes.
        drop(j);
        let (j, rec) = Journal::open(&dir, cfg(4000, 1 << 20), 0).unwrap();
        assert_eq!(rec.head, all.len() as u64);
        assert_eq!(rec.torn_bytes, 0);
        assert_eq!(read_all(&j, 0, false), all);
    }

    #[test]
    fn a_torn_tail_is_cut_on_open() {
        let dir = tmp("torn");
        let (j, _) = Journal::open(&dir, cfg(1 << 20, 1 << 20), 0).unwrap();
        let good = frames(5, 20);
        j.append(good.clone()).unwrap();
        drop(j);
        let seg = segment_path(&dir, 0);
        let mut data = fs::read(&seg).unwrap();
        data.extend_from_slice(&frames(1, 20)[..15]);
        fs::write(&seg, &data).unwrap();
        let (j, rec) = Journal::open(&dir, cfg(1 << 20, 1 << 20), 0).unwrap();
        assert_eq!(rec.torn_bytes, 15);
        assert_eq!(read_all(&j, 0, false), good);
        j.append(frames(1, 20)).unwrap();
        assert_eq!(j.head(), good.len() as u64 + 30);
    }

    #[test]
    fn memory_is_bounded_and_lagging_readers_fall_back_to_disk() {
        let dir = tmp("ring");
        let (j, _) = Journal::open(&dir, cfg(1 << 20, 1000), 0).unwrap();
        for _ in 0..20 {
            j.append(frames(4, 40)).unwrap();
        }
        assert!(
            j.read_memory(0, 1000).is_none(),
            "old data must have left memory"
        );
        let head = j.head();
        assert!(matches!(j.read_memory(head, 1000), Some(Read::AtHead)));
        assert_eq!(read_all(&j, 0, false).len() as u64, head);
    }

    #[test]
    fn released_segments_are_deleted_and_new_journals_start_at_min_head() {
        let dir = tmp("release");
        let (j, _) = Journal::open(&dir, cfg(2000, 1 << 20), 0).unwrap();
        for _ in 0..10 {
            j.append(frames(10, 50)).unwrap();
        }
        let segs = j.segment_count();
        let removed = j.release_before(j.head()).unwrap();
        assert_eq!(removed, segs - 1);
        assert!(matches!(j.read_disk(0, 100).unwrap(), Read::Corrupt { .. }));

        let dir2 = tmp("minhead");
        let (j2, rec) = Journal::open(&dir2, cfg(2000, 1 << 20), 12345).unwrap();
        assert_eq!((rec.head, j2.head()), (12345, 12345));
    }
}
