//! This process's spool file (format: `scada_core::spool`).
//!
//! The writer appends batches the sidecar cannot take now, in order, and
//! replays them over the connection when it is healthy again, so events of one
//! process keep their order. The file is locked while open; if the process
//! dies, the lock goes with it and the sidecar drains the file instead.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use scada_core::frame::{Frames, MAX_BODY_LEN};
use scada_core::spool::{file_name, HEADER};

use crate::fork::FdRegistration;

const HEADER_LEN: u64 = HEADER.len() as u64;

#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    path: PathBuf,
    file: Option<(File, FdRegistration)>,
    /// File length (header included).
    len: u64,
    /// Next byte to replay.
    replay_at: u64,
    max_bytes: u64,
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
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn open(&mut self) -> io::Result<&File> {
        if self.file.is_none() {
            DirBuilder::new()
                .recursive(true)
                .mode(0o770)
                .create(&self.dir)?;
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o660)
                .open(&self.path)?;
            // SAFETY: flock on a descriptor we own.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                return Err(io::Error::last_os_error());
            }
            file.write_all_at(&HEADER, 0)?;
            let reg = FdRegistration::new(file.as_raw_fd());
            self.len = HEADER_LEN;
            self.replay_at = HEADER_LEN;
            self.file = Some((file, reg));
        }
        match &self.file {
            Some((f, _)) => Ok(f),
            None => Err(io::Error::other("spool file not open")),
        }
    }

    /// Appends complete frames. Fails without writing when the budget is used up.
    pub fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.len - self.replay_at + bytes.len() as u64 > self.max_bytes {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "spool budget (spool_max_bytes) used up",
            ));
        }
        let at = self.len;
        let file = self.open()?;
        if let Err(e) = file.write_all_at(bytes, at) {
            // Cut a partial write so the file ends on a frame boundary.
            let _ = file.set_len(at);
            return Err(e);
        }
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Puts `chunks` in front of what is pending, for events older than
    /// everything spooled (written but unacknowledged when a connection was
    /// lost). Rewrites the file: new content goes to a fresh locked file that
    /// replaces the old one, so a crash leaves either file whole.
    pub fn prepend(&mut self, chunks: &[&[u8]]) -> io::Result<()> {
        if !self.has_pending() {
            for c in chunks {
                self.append(c)?;
            }
            return Ok(());
        }
        let extra: u64 = chunks.iter().map(|c| c.len() as u64).sum();
        if self.len - self.replay_at + extra > self.max_bytes {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "spool budget (spool_max_bytes) used up",
            ));
        }
        let tmp = self.path.with_extension("tmp");
        let new = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o660)
            .open(&tmp)?;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(new.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let _ = std::fs::remove_file(&tmp);
            return Err(io::Error::last_os_error());
        }
        let mut at = 0u64;
        new.write_all_at(&HEADER, at)?;
        at += HEADER_LEN;
        for c in chunks {
            new.write_all_at(c, at)?;
            at += c.len() as u64;
        }
        if let Some((old, _)) = &self.file {
            let mut pos = self.replay_at;
            let mut buf = vec![0u8; 1 << 20];
            while pos < self.len {
                let n = ((self.len - pos) as usize).min(buf.len());
                old.read_exact_at(&mut buf[..n], pos)?;
                new.write_all_at(&buf[..n], at)?;
                pos += n as u64;
                at += n as u64;
            }
        }
        std::fs::rename(&tmp, &self.path)?;
        let reg = FdRegistration::new(new.as_raw_fd());
        if let Some((old, mut old_reg)) = self.file.replace((new, reg)) {
            old_reg.release();
            drop(old);
        }
        self.len = at;
        self.replay_at = HEADER_LEN;
        Ok(())
    }

    pub fn has_pending(&self) -> bool {
        self.replay_at < self.len
    }

    /// Reads up to about `max` bytes of whole frames to replay into `out`;
    /// returns how many frames. Advances the replay position.
    pub fn read_pending(&mut self, max: usize, out: &mut Vec<u8>) -> io::Result<u64> {
        let Some((file, _)) = &self.file else {
            return Ok(0);
        };
        let want = ((self.len - self.replay_at) as usize).min(max.max(MAX_BODY_LEN + 8));
        let start = out.len();
        out.resize(start + want, 0);
        file.read_exact_at(&mut out[start..], self.replay_at)?;
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
            // Our own file is corrupt from here on (cannot happen unless the
            // disk lies): drop the rest rather than loop on it.
            self.replay_at = self.len;
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

    /// Once everything was replayed, empties the file for reuse.
    pub fn reset_if_drained(&mut self) -> io::Result<()> {
        if self.replay_at == self.len && self.len > HEADER_LEN {
            if let Some((file, _)) = &self.file {
                file.set_len(HEADER_LEN)?;
            }
            self.len = HEADER_LEN;
            self.replay_at = HEADER_LEN;
        }
        Ok(())
    }

    /// Closes the file: removed when nothing is left in it, otherwise left for
    /// the sidecar, which drains unlocked spool files.
    pub fn close(&mut self) {
        if let Some((file, mut reg)) = self.file.take() {
            if !self.has_pending() {
                let _ = std::fs::remove_file(&self.path);
            }
            reg.release();
            drop(file);
        }
    }
}
