//! This process's spool file (format: `scada_core::spool`).
//!
//! The writer appends batches the sidecar cannot take now, in order, and
//! replays them over the connection when it is healthy again, so events of one
//! process keep their order. The file is locked while open; if the process
//! dies, the lock goes with it and the sidecar drains the file instead.
//!
//! Every failing call has one outcome, and none loses or silently duplicates
//! an event (each is tested with a failpoint, see the tests below):
//!
//! | call | fails with ENOSPC, EIO, EROFS, EACCES… | outcome |
//! |---|---|---|
//! | create dir, open (under a temp name), `flock` | | error; nothing written; a file we created is removed |
//! | header write, truncate of a new file, `rename` into place | | error; the temp file is removed, no spool file appears |
//! | append (`pwrite`, possibly partial) | | error; the file is cut back to its last frame; if the cut fails too, the stale tail is cut later and never counted as content |
//! | prepend: temp file write, `fdatasync`, `rename` | | error; the temp file is removed; the spool file is unchanged |
//! | replay read | | error; nothing is advanced: retried later |
//! | truncate once drained | | error, once; the file keeps growing and is truncated at the next drain |
//! | unlink at close (drained) | | the file is truncated to its header instead (the sidecar removes an empty spool) |
//!
//! An error leaves the batch with the caller (the writer), which holds it in
//! memory and decides what new events may still be accepted.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use scada_core::frame::{Frames, MAX_BODY_LEN};
use scada_core::spool::{file_name, HEADER};

use super::fault;
use crate::fork::FdRegistration;

const HEADER_LEN: u64 = HEADER.len() as u64;

fn budget_used_up() -> io::Error {
    io::Error::new(
        io::ErrorKind::StorageFull,
        "spool budget (spool_max_bytes) used up",
    )
}

/// `pwrite` of all of `buf` at `at` (a failpoint may make it stop half-way).
fn write_at(file: &File, buf: &[u8], at: u64) -> io::Result<()> {
    if let Some((stored, e)) = fault::short_write("spool.write", buf.len()) {
        file.write_all_at(&buf[..stored], at)?;
        return Err(e);
    }
    file.write_all_at(buf, at)
}

fn set_len(file: &File, len: u64) -> io::Result<()> {
    fault::check("spool.truncate")?;
    file.set_len(len)
}

fn read_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<()> {
    fault::check("spool.read")?;
    file.read_exact_at(buf, at)
}

fn remove(path: &Path) -> io::Result<()> {
    fault::check("spool.unlink")?;
    std::fs::remove_file(path)
}

/// Creates (or opens) `path` and takes the exclusive lock that tells the
/// sidecar the file has an owner. Nothing is truncated before the lock is ours.
fn create_locked(path: &Path) -> io::Result<File> {
    fault::check("spool.open")?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o660)
        .open(path)?;
    let locked = fault::check("spool.lock").and_then(|()| {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    });
    if let Err(e) = locked {
        // Another owner (would block) keeps its file; an empty file is ours.
        if e.kind() != io::ErrorKind::WouldBlock && file.metadata().is_ok_and(|m| m.len() == 0) {
            let _ = remove(path);
        }
        return Err(e);
    }
    Ok(file)
}

/// Writes the header to a locked file and empties it; removes it on failure.
fn init(file: &File, path: &Path) -> io::Result<()> {
    let r = set_len(file, 0).and_then(|()| write_at(file, &HEADER, 0));
    if r.is_err() {
        let _ = remove(path);
    }
    r
}

/// A new spool file under a temporary name, created, locked and headed
/// before it gets its real name (so the sidecar never finds it half made);
/// removed unless [`TempFile::commit`] renames it into place.
struct TempFile {
    path: PathBuf,
    committed: bool,
}

impl TempFile {
    /// The temporary file for `spool`, open and locked, holding the header.
    fn create(spool: &Path) -> io::Result<(File, TempFile)> {
        let path = spool.with_extension("tmp");
        let file = create_locked(&path)?;
        let tmp = TempFile {
            path,
            committed: false,
        };
        init(&file, &tmp.path)?;
        Ok((file, tmp))
    }

    /// Renames the file to `spool` (over any file of that name).
    fn commit(mut self, spool: &Path) -> io::Result<()> {
        fault::check("spool.rename").and_then(|()| std::fs::rename(&self.path, spool))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = remove(&self.path);
        }
    }
}

#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    path: PathBuf,
    file: Option<(File, FdRegistration)>,
    /// End of the content (header included).
    len: u64,
    /// Next byte to replay.
    replay_at: u64,
    max_bytes: u64,
    /// The file may extend past `len` (a failed write whose cut failed too):
    /// cut it when possible, and before leaving the file to the sidecar.
    dirty_tail: bool,
    /// A truncate of the drained file failed at this length: not retried
    /// until the file is drained again at another length.
    truncate_failed_at: Option<u64>,
}

impl Spool {
    pub fn new(dir: &Path, origin: u64, pid: u32, max_bytes: u64) -> Self {
        Self {
            dir: dir.to_path_buf(),
            path: dir.join(file_name(origin, pid)),
            file: None,
            len: HEADER_LEN,
            replay_at: HEADER_LEN,
            max_bytes,
            dirty_tail: false,
            truncate_failed_at: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the spool file on first use. It is created under a temporary
    /// name and renamed into place only once it is locked and has its header:
    /// the sidecar moves aside any unlocked spool file shorter than a header
    /// (not a spool file), and under the final name from the start it could
    /// do so between our create and our lock, leaving our events in a file
    /// nothing drains.
    fn open(&mut self) -> io::Result<&File> {
        if self.file.is_none() {
            fault::check("spool.open")?;
            DirBuilder::new()
                .recursive(true)
                .mode(0o770)
                .create(&self.dir)?;
            let (file, tmp) = TempFile::create(&self.path)?;
            tmp.commit(&self.path)?;
            let reg = FdRegistration::new(file.as_raw_fd());
            self.len = HEADER_LEN;
            self.replay_at = HEADER_LEN;
            self.dirty_tail = false;
            self.file = Some((file, reg));
        }
        match &self.file {
            Some((f, _)) => Ok(f),
            None => Err(io::Error::other("spool file not open")),
        }
    }

    fn pending_bytes(&self) -> u64 {
        self.len - self.replay_at
    }

    /// Appends complete frames. Fails without writing when the budget is used up.
    pub fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.append_all(&[bytes])
    }

    /// Appends several runs of complete frames, all or none.
    pub fn append_all(&mut self, chunks: &[&[u8]]) -> io::Result<()> {
        let extra: u64 = chunks.iter().map(|c| c.len() as u64).sum();
        if self.pending_bytes() + extra > self.max_bytes {
            return Err(budget_used_up());
        }
        let start = self.len;
        self.open()?;
        let Some((file, _)) = &self.file else {
            return Err(io::Error::other("spool file not open"));
        };
        let mut at = start;
        for c in chunks {
            if let Err(e) = write_at(file, c, at) {
                // Cut what a partial write left, so the file ends on a frame
                // boundary. If even that fails, `len` still says where the
                // content ends; the stale tail is overwritten or cut later.
                if set_len(file, start).is_err() {
                    self.dirty_tail = true;
                }
                return Err(e);
            }
            at += c.len() as u64;
        }
        if self.dirty_tail && at >= start {
            // Everything up to `at` is ours again; anything after is stale.
            if set_len(file, at).is_ok() {
                self.dirty_tail = false;
            }
        }
        self.len = at;
        Ok(())
    }

    /// Puts `chunks` in front of what is pending, for events older than
    /// everything spooled (written but unacknowledged when a connection was
    /// lost). Rewrites the file: new content goes to a fresh locked file that
    /// replaces the old one, so a crash leaves either file whole.
    pub fn prepend(&mut self, chunks: &[&[u8]]) -> io::Result<()> {
        if !self.has_pending() {
            return self.append_all(chunks);
        }
        let extra: u64 = chunks.iter().map(|c| c.len() as u64).sum();
        if self.pending_bytes() + extra > self.max_bytes {
            return Err(budget_used_up());
        }
        let (new, tmp) = TempFile::create(&self.path)?;
        let mut at = HEADER_LEN;
        for c in chunks {
            write_at(&new, c, at)?;
            at += c.len() as u64;
        }
        if let Some((old, _)) = &self.file {
            let mut pos = self.replay_at;
            let mut buf = vec![0u8; ((self.len - pos) as usize).min(1 << 20)];
            while pos < self.len {
                let n = ((self.len - pos) as usize).min(buf.len());
                read_at(old, &mut buf[..n], pos)?;
                write_at(&new, &buf[..n], at)?;
                pos += n as u64;
                at += n as u64;
            }
        }
        fault::check("spool.sync").and_then(|()| new.sync_data())?;
        tmp.commit(&self.path)?;
        let reg = FdRegistration::new(new.as_raw_fd());
        if let Some((old, mut old_reg)) = self.file.replace((new, reg)) {
            old_reg.release();
            drop(old);
        }
        self.len = at;
        self.replay_at = HEADER_LEN;
        self.dirty_tail = false;
        self.truncate_failed_at = None;
        Ok(())
    }

    pub fn has_pending(&self) -> bool {
        self.replay_at < self.len
    }

    /// Reads up to about `max` bytes of whole frames to replay into `out`;
    /// returns how many frames. Advances the replay position only on success.
    pub fn read_pending(&mut self, max: usize, out: &mut Vec<u8>) -> io::Result<u64> {
        let Some((file, _)) = &self.file else {
            return Ok(0);
        };
        let want = (self.pending_bytes() as usize).min(max.max(MAX_BODY_LEN + 8));
        let start = out.len();
        out.resize(start + want, 0);
        if let Err(e) = read_at(file, &mut out[start..], self.replay_at) {
            out.truncate(start);
            return Err(e);
        }
        let mut frames = Frames::new(&out[start..], MAX_BODY_LEN);
        let mut n = 0u64;
        let mut took = 0usize;
        for f in frames.by_ref() {
            match f {
                Ok(f) => {
                    if took > 0 && took + f.len() > max {
                        break;
                    }
                    took += f.len();
                    n += 1;
                }
                Err(_) => break,
            }
        }
        if n == 0 && want > 0 {
            // Only our own writes are in the file: a broken frame here means
            // the disk returned something else. Never loop on it: report it.
            out.truncate(start);
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "corrupt spool frame",
            ));
        }
        out.truncate(start + took);
        self.replay_at += took as u64;
        Ok(n)
    }

    /// Bytes that could not be replayed because they are corrupt; skips them.
    pub fn skip_corrupt(&mut self) -> u64 {
        let skipped = self.pending_bytes();
        self.replay_at = self.len;
        skipped
    }

    /// Once everything was replayed, empties the file for reuse.
    pub fn reset_if_drained(&mut self) -> io::Result<()> {
        if self.replay_at != self.len
            || self.len == HEADER_LEN
            || self.truncate_failed_at == Some(self.len)
        {
            return Ok(());
        }
        if let Some((file, _)) = &self.file {
            if let Err(e) = set_len(file, HEADER_LEN) {
                self.truncate_failed_at = Some(self.len);
                return Err(e);
            }
        }
        self.len = HEADER_LEN;
        self.replay_at = HEADER_LEN;
        self.dirty_tail = false;
        self.truncate_failed_at = None;
        Ok(())
    }

    /// Closes the file. Drained: removed (or, if that fails, truncated to its
    /// header, which the sidecar removes). Otherwise left for the sidecar,
    /// which drains unlocked spool files: rewritten first if it still holds
    /// replayed events, cut to its content if a stale tail may follow.
    pub fn close(&mut self) -> io::Result<()> {
        let mut result = Ok(());
        if self.has_pending() && self.replay_at > HEADER_LEN {
            // Replayed events are delivered: do not leave them to be delivered again.
            result = self.prepend(&[]);
        }
        if let Some((file, mut reg)) = self.file.take() {
            if !self.has_pending() {
                if let Err(e) = remove(&self.path) {
                    result = set_len(&file, HEADER_LEN).map_err(|_| e);
                }
            } else if self.dirty_tail {
                result = result.and(set_len(&file, self.len));
            }
            reg.release();
            drop(file);
        }
        result
    }
}

/// Dropped without [`Spool::close`] (the writer panicked): the file stays
/// for the sidecar, so a stale tail that follows the content is cut here;
/// it holds events the writer reports as lost.
impl Drop for Spool {
    fn drop(&mut self) {
        if let Some((file, _)) = &self.file {
            if self.dirty_tail {
                let _ = set_len(file, self.len);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scada_core::frame::{FrameBuilder, FrameKind};

    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Self {
            let p = std::env::temp_dir().join(format!(
                "scada-spool-{name}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&p);
            Self(p)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
            fault::set_local("");
        }
    }

    /// `n` frames of `size` body bytes each, tagged with `tag`.
    fn frames(tag: u8, n: usize, size: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..n {
            let b = FrameBuilder::begin(&mut out, FrameKind::Event);
            out.extend(std::iter::repeat_n(tag, size));
            b.finish(&mut out).unwrap();
        }
        out
    }

    /// Tags of the frames, as the sidecar would read the file.
    fn on_disk(path: &Path) -> Vec<u8> {
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(&bytes[..16], &HEADER);
        Frames::new(&bytes[16..], MAX_BODY_LEN)
            .map(|f| f.expect("every frame on disk is whole").payload[0])
            .collect()
    }

    fn replay_all(s: &mut Spool) -> Vec<u8> {
        let mut out = Vec::new();
        while s.has_pending() {
            s.read_pending(1 << 20, &mut out).unwrap();
        }
        Frames::new(&out, MAX_BODY_LEN)
            .map(|f| f.unwrap().payload[0])
            .collect()
    }

    fn spool(dir: &Dir) -> Spool {
        Spool::new(&dir.0, 0xabc, 1, 1 << 20)
    }

    fn tmp_files(dir: &Dir) -> Vec<String> {
        std::fs::read_dir(&dir.0)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".tmp"))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn appends_replays_in_order_and_removes_the_drained_file() {
        let d = Dir::new("basic");
        let mut s = spool(&d);
        s.append(&frames(1, 2, 10)).unwrap();
        s.append(&frames(2, 1, 10)).unwrap();
        assert_eq!(on_disk(s.path()), [1, 1, 2]);
        assert_eq!(replay_all(&mut s), [1, 1, 2]);
        s.reset_if_drained().unwrap();
        assert_eq!(std::fs::metadata(s.path()).unwrap().len(), 16);
        s.close().unwrap();
        assert!(!s.path().exists());
    }

    #[test]
    fn open_failures_write_nothing_and_leave_no_file() {
        for point in [
            "spool.open",
            "spool.lock",
            "spool.truncate",
            "spool.write",
            "spool.rename",
        ] {
            for errno in [libc::ENOSPC, libc::EIO, libc::EROFS, libc::EACCES] {
                let d = Dir::new("open");
                fault::set_local(&format!("{point}=errno:{errno}x1"));
                let mut s = spool(&d);
                let e = s.append(&frames(1, 1, 10)).unwrap_err();
                assert_eq!(e.raw_os_error(), None, "{point}");
                assert!(e.to_string().contains(point), "{point}: {e}");
                assert!(!s.path().exists(), "{point}/{errno}: no file left behind");
                assert!(tmp_files(&d).is_empty(), "{point}/{errno}: no temp file");
                // The point fired once: the next attempt works and holds only its own events.
                s.append(&frames(2, 1, 10)).unwrap();
                assert_eq!(on_disk(s.path()), [2], "{point}/{errno}");
            }
        }
    }

    /// What the sidecar's drain does to each unlocked `*.spool` file it can
    /// lock: one shorter than a header is not a spool file and is moved aside
    /// to `.bad` (sidecar/src/ingest/spool.rs).
    fn sidecar_moves_aside_headerless_spool_files(dir: &Path) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "spool") {
                continue;
            }
            let f = File::open(&path).unwrap();
            // SAFETY: flock on a descriptor we own.
            if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                continue; // owned
            }
            if f.metadata().unwrap().len() < HEADER_LEN {
                std::fs::rename(&path, path.with_extension("bad")).unwrap();
            }
        }
    }

    /// The sidecar drains at any moment, so also between the spool file's
    /// creation and its lock (the hook runs its pass exactly there): the
    /// events still end up in the spool file, none in a `.bad` file.
    #[test]
    fn the_sidecar_never_finds_a_new_spool_file_before_it_is_locked_and_headed() {
        let d = Dir::new("race");
        let mut s = spool(&d);
        let dir = d.0.clone();
        fault::on_local("spool.lock", move || {
            sidecar_moves_aside_headerless_spool_files(&dir)
        });
        s.append(&frames(1, 2, 10)).unwrap();
        let names: Vec<String> = std::fs::read_dir(&d.0)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, [file_name(0xabc, 1)], "only the spool file");
        assert_eq!(on_disk(s.path()), [1, 1]);
        // Unlocked afterwards (the process died): the sidecar would drain it.
        s.append(&frames(2, 1, 10)).unwrap();
        drop(s);
        assert_eq!(on_disk(&d.0.join(file_name(0xabc, 1))), [1, 1, 2]);
    }

    #[test]
    fn a_directory_that_cannot_be_created_is_an_error() {
        let d = Dir::new("nodir");
        std::fs::create_dir_all(&d.0).unwrap();
        let file_in_the_way = d.0.join("x");
        std::fs::write(&file_in_the_way, b"").unwrap();
        let mut s = Spool::new(&file_in_the_way.join("spool"), 1, 1, 1 << 20);
        assert!(s.append(&frames(1, 1, 10)).is_err());
    }

    #[test]
    fn a_partial_append_is_cut_back_to_the_last_frame() {
        let d = Dir::new("partial");
        let mut s = spool(&d);
        s.append(&frames(1, 2, 10)).unwrap();
        fault::set_local("spool.write=short:28x1");
        let e = s.append(&frames(2, 4, 100)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        assert_eq!(on_disk(s.path()), [1, 1], "the torn half is gone");
        s.append(&frames(3, 1, 10)).unwrap();
        assert_eq!(replay_all(&mut s), [1, 1, 3]);
    }

    #[test]
    fn a_partial_append_whose_cut_fails_leaves_a_tail_that_is_never_content() {
        let d = Dir::new("dirty");
        let mut s = spool(&d);
        s.append(&frames(1, 1, 10)).unwrap();
        fault::set_local("spool.write=short:5x1;spool.truncate=errno:5x1");
        assert!(s.append(&frames(2, 4, 100)).is_err());
        assert!(
            std::fs::metadata(s.path()).unwrap().len() > s.len,
            "a stale tail is on disk"
        );
        // The next append overwrites from the end of the content and cuts the rest.
        s.append(&frames(3, 1, 10)).unwrap();
        assert_eq!(std::fs::metadata(s.path()).unwrap().len(), s.len);
        assert_eq!(on_disk(s.path()), [1, 3]);
        assert_eq!(replay_all(&mut s), [1, 3]);
    }

    #[test]
    fn a_stale_tail_is_cut_before_the_file_is_left_to_the_sidecar() {
        let d = Dir::new("dirty-close");
        let mut s = spool(&d);
        s.append(&frames(1, 1, 10)).unwrap();
        fault::set_local("spool.write=short:5x1;spool.truncate=errno:5x1");
        assert!(s.append(&frames(2, 4, 100)).is_err());
        s.close().unwrap();
        assert_eq!(on_disk(&d.0.join(file_name(0xabc, 1))), [1]);
    }

    #[test]
    fn append_all_is_all_or_nothing() {
        let d = Dir::new("all");
        let mut s = spool(&d);
        s.append(&frames(1, 1, 10)).unwrap();
        fault::set_local("spool.write=errno:28@1x1"); // the second chunk fails
        assert!(s
            .append_all(&[&frames(2, 1, 10), &frames(3, 1, 10)])
            .is_err());
        assert_eq!(on_disk(s.path()), [1], "the first chunk was cut again");
    }

    #[test]
    fn the_budget_refuses_before_writing() {
        let d = Dir::new("budget");
        let mut s = Spool::new(&d.0, 1, 1, 100);
        let e = s.append(&frames(1, 1, 200)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        assert!(!s.path().exists());
    }

    #[test]
    fn prepend_puts_older_events_first_and_keeps_the_file_whole_on_every_failure() {
        for point in [
            "spool.open",
            "spool.lock",
            "spool.write",
            "spool.read",
            "spool.sync",
            "spool.rename",
        ] {
            let d = Dir::new("prepend");
            let mut s = spool(&d);
            s.append(&frames(1, 3, 10)).unwrap();
            let mut first = Vec::new();
            s.read_pending(1, &mut first).unwrap(); // one replayed, two pending
                                                    // The failpoint fires on the prepend's first such call.
            fault::set_local(&format!("{point}=errno:28x1"));
            let older = frames(9, 2, 10);
            let e = s.prepend(&[&older]).unwrap_err();
            assert!(e.to_string().contains(point), "{point}: {e}");
            assert!(tmp_files(&d).is_empty(), "{point}: temp file removed");
            assert_eq!(replay_all(&mut s), [1, 1], "{point}: spool unchanged");
        }
        let d = Dir::new("prepend-ok");
        let mut s = spool(&d);
        s.append(&frames(1, 2, 10)).unwrap();
        s.prepend(&[&frames(9, 1, 10), &frames(8, 1, 10)]).unwrap();
        assert!(tmp_files(&d).is_empty());
        assert_eq!(on_disk(s.path()), [9, 8, 1, 1]);
        assert_eq!(replay_all(&mut s), [9, 8, 1, 1]);
    }

    #[test]
    fn a_failed_replay_read_advances_nothing() {
        let d = Dir::new("read");
        let mut s = spool(&d);
        s.append(&frames(1, 2, 10)).unwrap();
        fault::set_local("spool.read=errno:5x1");
        let mut out = Vec::new();
        assert!(s.read_pending(1 << 20, &mut out).is_err());
        assert!(out.is_empty());
        assert_eq!(replay_all(&mut s), [1, 1]);
    }

    #[test]
    fn a_failed_truncate_of_a_drained_file_is_reported_once_and_retried_at_the_next_drain() {
        let d = Dir::new("trunc");
        let mut s = spool(&d);
        s.append(&frames(1, 1, 10)).unwrap();
        replay_all(&mut s);
        fault::set_local("spool.truncate=errno:5x1");
        assert!(s.reset_if_drained().is_err());
        assert!(s.reset_if_drained().is_ok(), "not retried on every loop");
        s.append(&frames(2, 1, 10)).unwrap();
        assert_eq!(
            replay_all(&mut s),
            [2],
            "new events follow the replayed ones"
        );
        s.reset_if_drained().unwrap();
        assert_eq!(std::fs::metadata(s.path()).unwrap().len(), 16);
    }

    #[test]
    fn a_drained_file_that_cannot_be_removed_is_emptied_instead() {
        let d = Dir::new("unlink");
        let mut s = spool(&d);
        s.append(&frames(1, 1, 10)).unwrap();
        replay_all(&mut s);
        fault::set_local("spool.unlink=errno:30x1");
        s.close().unwrap();
        assert_eq!(on_disk(&d.0.join(file_name(0xabc, 1))), Vec::<u8>::new());
        // Both failing is reported.
        let d = Dir::new("unlink2");
        let mut s = spool(&d);
        s.append(&frames(1, 1, 10)).unwrap();
        replay_all(&mut s);
        fault::set_local("spool.unlink=errno:30x1;spool.truncate=errno:30");
        assert!(s.close().is_err());
    }

    #[test]
    fn a_file_left_for_the_sidecar_holds_only_what_was_not_replayed() {
        let d = Dir::new("left");
        let mut s = spool(&d);
        s.append(&frames(1, 1, 10)).unwrap();
        s.append(&frames(2, 1, 10)).unwrap();
        let mut out = Vec::new();
        s.read_pending(1, &mut out).unwrap(); // frame 1 replayed (and acked)
        s.close().unwrap();
        assert_eq!(on_disk(&d.0.join(file_name(0xabc, 1))), [2]);
    }

    #[test]
    fn corrupt_content_is_reported_and_skipped_not_looped_on() {
        let d = Dir::new("corrupt");
        let mut s = spool(&d);
        s.append(&frames(1, 1, 10)).unwrap();
        let (f, _) = s.file.as_ref().unwrap();
        f.write_all_at(b"garbage!", 16).unwrap();
        let mut out = Vec::new();
        let e = s.read_pending(1 << 20, &mut out).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(s.has_pending(), "still pending until the writer counts it");
        assert_eq!(s.skip_corrupt(), 20, "the whole frame");
        assert!(!s.has_pending());
    }
}
