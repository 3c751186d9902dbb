//! The spool directory from the sidecar's side: orphaned spool files and
//! loss records.
//!
//! * **Orphaned spool files.** A live PHP process holds an exclusive `flock`
//!   on its spool file and replays it itself, in order, once it reconnects. A
//!   file we can lock has no owner any more: its frames are ingested like
//!   socket traffic (validated, de-duplicated, journaled) and the file is
//!   removed, but only once every frame is journaled. A file that was
//!   replaced or removed after we opened it (its path now names another
//!   inode) is not ours to drain. Damaged frames cost only themselves (the
//!   reading resynchronises as the journal's does); a torn tail is counted
//!   and discarded. Drained files are removed only once the journal is synced
//!   to disk (one sync per batch of files): with `fsync = false` the spool
//!   file would otherwise be the only copy to survive a power loss. Draining
//!   stops when the journal's disk budget fills, inside a file too.
//! * **Loss records** (`*.lost`, `scada_core::spool::LossRecord`): a PHP
//!   process that lost accepted events at exit leaves one. Each is logged,
//!   counted in `php_lost_events` (by reason) and removed.
//! * **One drainer.** Only the sidecar holding the spool directory's lock
//!   (`sidecar.lock`) drains and counts: a second sidecar sharing the
//!   directory leaves it alone (and takes over when the first one exits).
//!
//! | failure | outcome |
//! |---|---|
//! | journal append | file kept as it is, nothing counted; retried next pass |
//! | read | file kept; retried next pass; logged once per file and error |
//! | journal sync before the unlink | file kept; the next pass finds only duplicates and retries |
//! | unlink after draining | everything is journaled; the next pass finds only duplicates and retries the unlink |
//! | rename of a file that is not a spool file | left in place, logged once |
//! | unlink of a counted loss record | not counted again; retried |

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use scada_core::frame::{HEADER_LEN, MAX_BODY_LEN};
use scada_core::spool::{self, LossRecord, LOSS_EXTENSION};
use tracing::{debug, error, info, warn};

use super::{AcceptError, Ingest};
use crate::failpoint;
use crate::journal::lock::{self, DirLock, LockError};
use crate::journal::segment;

const CHUNK: usize = 4 * 1024 * 1024;
/// The spool directory's drain lock.
pub const LOCK_FILE: &str = "sidecar.lock";

/// Why a spool file was not drained (it stays for the next pass).
#[derive(Debug)]
pub enum SpoolError {
    Io {
        op: &'static str,
        source: io::Error,
    },
    /// Not a spool file (bad header); moved aside to `moved_to`.
    NotASpoolFile {
        moved_to: PathBuf,
    },
    Journal(AcceptError),
    /// The journal's disk budget filled while draining: `events` of the file
    /// are journaled, the rest waits for the next pass.
    OverBudget {
        events: u64,
    },
}

impl fmt::Display for SpoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { op, source } => write!(f, "cannot {op}: {source}"),
            Self::NotASpoolFile { moved_to } => {
                write!(f, "not a spool file; moved to {}", moved_to.display())
            }
            Self::Journal(e) => write!(f, "{e}"),
            Self::OverBudget { events } => write!(
                f,
                "the journal's disk budget is full ({events} events drained, the rest waits)"
            ),
        }
    }
}

fn io_err(op: &'static str) -> impl FnOnce(io::Error) -> SpoolError {
    move |source| SpoolError::Io { op, source }
}

/// What draining one file took from it.
#[derive(Debug, Default)]
pub struct Drained {
    /// Events journaled by this drain (not duplicates).
    pub events: u64,
    pub duplicates: u64,
    pub torn: bool,
    pub corrupt_frames: u64,
    pub corrupt_bytes: u64,
}

/// A file whose frames are all journaled, still open and locked, to be
/// removed once the journal is synced.
struct DrainedFile {
    path: PathBuf,
    file: File,
    stats: Drained,
}

/// Drained files removed after one journal sync, at most.
const REMOVE_BATCH: usize = 64;

/// What one pass over the directory found.
#[derive(Debug, Default)]
pub struct Pass {
    /// Spool files drained and removed.
    pub files: usize,
    /// Events those files added to the journal.
    pub events: u64,
    /// Origins that still have a spool file (their ids must be remembered).
    pub spooled_origins: HashSet<u64>,
}

/// Drains orphaned spool files and counts loss records; owns what it must
/// remember between passes.
pub struct SpoolDrainer {
    dir: PathBuf,
    ingest: Arc<Ingest>,
    owner: String,
    lock: Option<DirLock>,
    lock_error: Option<String>,
    /// The last error logged per file (each is logged once until it changes).
    failures: HashMap<PathBuf, String>,
    /// Loss records counted but not removed yet (never counted twice).
    counted_losses: HashSet<OsString>,
    bad_names: HashSet<OsString>,
}

/// The origin in a spool file name (`<origin:016x>-<pid>.spool`).
fn origin_of(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(spool::EXTENSION)?.strip_suffix('.')?;
    u64::from_str_radix(stem.split('-').next()?, 16).ok()
}

/// True when `path` still names the file `file` is open on.
fn same_file(file: &File, path: &Path) -> io::Result<bool> {
    let open = file.metadata()?;
    match fs::metadata(path) {
        Ok(now) => Ok(now.dev() == open.dev() && now.ino() == open.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

impl SpoolDrainer {
    /// `owner` describes this sidecar in the lock file (e.g. its socket).
    pub fn new(dir: &Path, ingest: Arc<Ingest>, owner: &str) -> Self {
        Self {
            dir: dir.to_path_buf(),
            ingest,
            owner: owner.to_string(),
            lock: None,
            lock_error: None,
            failures: HashMap::new(),
            counted_losses: HashSet::new(),
            bad_names: HashSet::new(),
        }
    }

    /// True while this sidecar holds the spool directory's lock.
    pub fn is_drainer(&self) -> bool {
        self.lock.is_some()
    }

    /// Takes the spool directory's lock unless held already; retried every
    /// pass. Another sidecar holding it is normal (it drains); failing to
    /// take it (EACCES, ENOSPC, EIO on `sidecar.lock`) is not: nobody drains
    /// then, so it is counted (`spool_lock_errors`) and logged as an error.
    fn take_lock(&mut self) -> bool {
        if self.lock.is_none() {
            let path = self.dir.join(LOCK_FILE);
            match DirLock::acquire(&path, &self.owner, failpoint::SPOOL_LOCK) {
                Ok(lock) => {
                    if self.lock_error.take().is_some() {
                        info!(dir = %self.dir.display(), "spool directory lock taken: this sidecar drains orphaned spool files and loss records now");
                    }
                    self.lock = Some(lock);
                }
                Err(e) => self.lock_failed(e),
            }
        }
        let m = &self.ingest.metrics.ingest;
        m.spool_drainer.set(self.is_drainer());
        self.is_drainer()
    }

    fn lock_failed(&mut self, e: LockError) {
        let (msg, held) = match &e {
            LockError::Held { holder, .. } => (format!("held by {holder}"), true),
            LockError::Io { .. } => (e.to_string(), false),
        };
        if !held {
            self.ingest.metrics.ingest.spool_lock_errors.inc();
        }
        if self.lock_error.as_deref() == Some(&msg) {
            return;
        }
        if held {
            info!(dir = %self.dir.display(), lock = %msg, "another sidecar drains this spool directory; this one leaves its orphaned spool files and loss records alone");
        } else {
            error!(dir = %self.dir.display(), error = %msg, "cannot take the spool directory lock: orphaned spool files and loss records wait (nothing is deleted); retried every pass");
        }
        self.lock_error = Some(msg);
    }

    /// One pass: loss records, then orphaned spool files. Blocking.
    pub fn pass(&mut self) -> Pass {
        let mut pass = Pass::default();
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return pass;
        };
        let mut spools = Vec::new();
        let mut losses = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(text) = name.to_str() else { continue };
            if let Some(origin) = origin_of(text) {
                pass.spooled_origins.insert(origin);
                spools.push(entry.path());
            } else if text.ends_with(LOSS_EXTENSION)
                && text.len() > LOSS_EXTENSION.len()
                && text.as_bytes()[text.len() - LOSS_EXTENSION.len() - 1] == b'.'
            {
                losses.push((name, entry.path()));
            }
        }
        if !self.take_lock() {
            return pass;
        }
        for (name, path) in losses {
            self.loss_record(name, &path);
        }
        self.failures.retain(|p, _| p.exists());
        let mut drained = Vec::new();
        for path in spools {
            if self.ingest.over_budget() {
                break;
            }
            match self.drain_file(&path) {
                Ok(Some(file)) => {
                    drained.push(file);
                    if drained.len() == REMOVE_BATCH {
                        self.remove_drained(&mut drained, &mut pass);
                    }
                }
                Ok(None) => {}
                Err(SpoolError::Journal(e)) => {
                    // The journal logs its own state changes; the file waits.
                    debug!(file = %path.display(), error = %e, "orphaned spool file waits for the journal");
                }
                Err(SpoolError::OverBudget { events }) => {
                    self.ingest.metrics.ingest.spool_events.add(events);
                    pass.events += events;
                    debug!(file = %path.display(), events, "orphaned spool file partly drained: the journal's disk budget is full; the rest waits");
                }
                Err(e) => {
                    self.ingest.metrics.ingest.spool_errors.inc();
                    let msg = e.to_string();
                    if self.failures.get(&path) != Some(&msg) {
                        warn!(file = %path.display(), error = %msg, "cannot drain orphaned spool file; it is kept and retried");
                        self.failures.insert(path, msg);
                    }
                }
            }
        }
        self.remove_drained(&mut drained, &mut pass);
        pass
    }

    /// Removes drained files once the journal holding their events is on
    /// disk: with `fsync = false` an append reaches the page cache only, and
    /// the spool file may be the only copy that survives a power loss. One
    /// sync for many files. A file that cannot be removed now is drained again
    /// next pass (finding only duplicates) and removed then.
    fn remove_drained(&mut self, drained: &mut Vec<DrainedFile>, pass: &mut Pass) {
        if drained.is_empty() {
            return;
        }
        let synced = self.ingest.journal.sync();
        let m = &self.ingest.metrics.ingest;
        for DrainedFile { path, file, stats } in drained.drain(..) {
            m.spool_events.add(stats.events);
            pass.events += stats.events;
            // Everything is journaled: now the file may go, if it is still ours.
            let removed = match &synced {
                Err(e) => Err(format!("the journal cannot be synced to disk: {e}")),
                Ok(()) => match same_file(&file, &path) {
                    Ok(false) => Ok(()),
                    Ok(true) => failpoint::io(failpoint::SPOOL_UNLINK)
                        .and_then(|()| fs::remove_file(&path))
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                },
            };
            drop(file); // its lock
            if let Err(e) = removed {
                m.spool_errors.inc();
                let msg = format!("cannot remove after draining: {e}");
                if self.failures.get(&path) != Some(&msg) {
                    warn!(file = %path.display(), error = %e, events = stats.events, "drained orphaned spool file (every event is journaled) but cannot remove it yet; retried");
                    self.failures.insert(path, msg);
                }
                continue;
            }
            pass.files += 1;
            if let Some(origin) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(origin_of)
            {
                pass.spooled_origins.remove(&origin);
            }
            self.failures.remove(&path);
            m.spool_files.inc();
            if stats.torn {
                m.spool_torn.inc();
            }
            m.spool_corrupt_frames.add(stats.corrupt_frames);
            m.spool_corrupt_bytes.add(stats.corrupt_bytes);
            if stats.events > 0 || stats.duplicates > 0 {
                info!(file = %path.display(), events = stats.events, duplicates = stats.duplicates, "drained orphaned spool file");
            }
        }
    }

    /// Counts a loss record once, then removes it.
    fn loss_record(&mut self, name: OsString, path: &Path) {
        let Some(record) = name.to_str().and_then(LossRecord::parse) else {
            if self.bad_names.insert(name) {
                warn!(file = %path.display(), "unreadable loss record name; left in place");
            }
            return;
        };
        if !self.counted_losses.contains(&name) {
            let mut detail = String::new();
            if let Ok(f) = File::open(path) {
                let _ = f.take(512).read_to_string(&mut detail);
            }
            self.ingest
                .metrics
                .ingest
                .add_php_lost(record.reason, record.events);
            warn!(origin = %format_args!("{:016x}", record.origin), pid = record.pid, events = record.events, reason = record.reason.as_str(), detail = detail.trim(), "a PHP process lost accepted events it could neither deliver nor spool (loss record); counted in php_lost_events");
            self.counted_losses.insert(name.clone());
        }
        match failpoint::io(failpoint::LOSS_UNLINK).and_then(|()| fs::remove_file(path)) {
            Ok(()) => {
                self.counted_losses.remove(&name);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.counted_losses.remove(&name);
            }
            Err(e) => {
                let msg = format!("cannot remove: {e}");
                if self.failures.get(path) != Some(&msg) {
                    warn!(file = %path.display(), error = %e, "cannot remove a counted loss record; it is not counted again");
                    self.failures.insert(path.to_path_buf(), msg);
                }
            }
        }
    }

    /// Journals every frame of an orphaned file; the file stays locked (and
    /// in place) for [`SpoolDrainer::remove_drained`]. `Ok(None)` when the
    /// file still has an owner, or is not the file we opened.
    fn drain_file(&self, path: &Path) -> Result<Option<DrainedFile>, SpoolError> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(SpoolError::Io {
                    op: "open",
                    source: e,
                })
            }
        };
        match lock::try_lock(&file) {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(e) => {
                return Err(SpoolError::Io {
                    op: "lock",
                    source: e,
                })
            }
        }
        failpoint::io(failpoint::SPOOL_LOCKED).map_err(io_err("lock"))?;
        // The owner may have replaced (rewritten and renamed) or removed the
        // file between our open and our lock: then the path is not ours.
        if !same_file(&file, path).map_err(io_err("stat"))? {
            return Ok(None);
        }
        let len = file.metadata().map_err(io_err("stat"))?.len();
        let read = |buf: &mut [u8], at: u64| {
            failpoint::io(failpoint::SPOOL_READ).and_then(|()| file.read_exact_at(buf, at))
        };
        let mut header = [0u8; spool::HEADER.len()];
        let header_ok = len >= header.len() as u64 && {
            // A read error is not a bad header: the file stays as it is.
            read(&mut header, 0).map_err(io_err("read"))?;
            spool::header_ok(&header)
        };
        if !header_ok {
            let bad = path.with_extension("bad");
            failpoint::io(failpoint::SPOOL_RENAME)
                .and_then(|()| fs::rename(path, &bad))
                .map_err(io_err("move an unreadable spool file aside"))?;
            return Err(SpoolError::NotASpoolFile { moved_to: bad });
        }
        let mut drained = Drained::default();
        let mut pos = header.len() as u64;
        let mut buf = Vec::new();
        while pos < len {
            if pos > header.len() as u64 && self.ingest.over_budget() {
                // One large file must not take the journal past its budget:
                // the rest waits (what is journaled is a duplicate next time).
                return Err(SpoolError::OverBudget {
                    events: drained.events,
                });
            }
            let want = ((len - pos) as usize).min(CHUNK.max(MAX_BODY_LEN + HEADER_LEN));
            buf.resize(want, 0);
            read(&mut buf, pos).map_err(io_err("read"))?;
            let accepted = self.ingest.accept(&buf).map_err(SpoolError::Journal)?;
            drained.events += accepted.events;
            drained.duplicates += accepted.duplicates;
            pos += accepted.consumed as u64;
            if accepted.error.is_none() && accepted.consumed > 0 {
                continue; // the rest of this chunk is the start of the next frame
            }
            // Damaged or torn at `pos`: go on at the next valid frame, if any.
            match segment::find_in_file(read, pos, len).map_err(io_err("read"))? {
                Some(next) => {
                    drained.corrupt_frames += segment::estimate_frames_in_file(read, pos, next)
                        .map_err(io_err("read"))?;
                    drained.corrupt_bytes += next - pos;
                    warn!(file = %path.display(), at = pos, bytes = next - pos, "damaged frames in an orphaned spool file; skipped to the next valid frame (counted in spool_corrupt_frames)");
                    pos = next;
                }
                None => {
                    drained.torn = true;
                    warn!(file = %path.display(), at = pos, "spool file ends in a torn or corrupt frame; the rest is discarded");
                    break;
                }
            }
        }
        Ok(Some(DrainedFile {
            path: path.to_path_buf(),
            file,
            stats: drained,
        }))
    }
}
