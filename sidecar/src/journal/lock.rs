//! One sidecar per directory: an exclusive `flock` on a lock file.
//!
//! The data directory's lock is taken before the journal is opened, so a
//! second sidecar on the same `SCADA_DATA_DIR` (a systemd unit next to
//! `php artisan scada:sidecar`) stops before it touches a segment, naming the
//! holder. The spool directory has its own lock, held by whichever sidecar
//! drains orphaned spool files: exactly one process ever drains them.
//!
//! The lock file holds `pid=<pid> socket=<path>` of its holder, for that
//! message; the lock itself is the `flock`, released by the kernel when the
//! holder exits, however it exits.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::failpoint;

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct DirLock {
    path: PathBuf,
    _file: File,
}

#[derive(Debug)]
pub enum LockError {
    /// Another process holds the lock.
    Held {
        path: PathBuf,
        holder: String,
    },
    Io {
        path: PathBuf,
        source: io::Error,
    },
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Held { path, holder } => write!(
                f,
                "{} is locked by another scada-sidecar ({holder}); only one sidecar may use a directory",
                path.display()
            ),
            Self::Io { path, source } => write!(f, "cannot lock {}: {source}", path.display()),
        }
    }
}

impl std::error::Error for LockError {}

impl DirLock {
    /// Takes the lock `path` without waiting; `owner` describes this process
    /// to whoever finds the lock taken (e.g. `socket=/run/.../sidecar.sock`).
    /// `failpoint` names this lock for fault injection.
    pub fn acquire(path: &Path, owner: &str, failpoint: &str) -> Result<Self, LockError> {
        let io_err = |source| LockError::Io {
            path: path.to_path_buf(),
            source,
        };
        failpoint::io(failpoint).map_err(io_err)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o640)
            .open(path)
            .map_err(io_err)?;
        if !try_lock(&file).map_err(io_err)? {
            let mut holder = String::new();
            let _ = (&mut file).take(512).read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(LockError::Held {
                path: path.to_path_buf(),
                holder: if holder.is_empty() {
                    "holder unknown".into()
                } else {
                    holder.to_string()
                },
            });
        }
        // Who holds it, for the next one's message. Not essential: a full
        // disk must not keep the sidecar from starting.
        let text = format!("pid={} {owner}\n", std::process::id());
        if file.set_len(0).is_ok() {
            let _ = file.write_all_at(text.as_bytes(), 0);
        }
        Ok(Self {
            path: path.to_path_buf(),
            _file: file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Takes an exclusive `flock` on `file` without waiting: `Ok(false)` when
/// another open file description holds it.
pub fn try_lock(file: &File) -> io::Result<bool> {
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.kind() == io::ErrorKind::WouldBlock {
        Ok(false)
    } else {
        Err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_identity() {
        let dir = std::env::temp_dir().join(format!("scada-lock-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("lock");
        let first = DirLock::acquire(&path, "socket=/a.sock", "test").unwrap();
        // flock is per open file description: a second open in this process conflicts too.
        match DirLock::acquire(&path, "socket=/b.sock", "test") {
            Err(LockError::Held { holder, .. }) => {
                assert_eq!(holder, format!("pid={} socket=/a.sock", std::process::id()))
            }
            other => panic!("expected Held, got {other:?}"),
        }
        drop(first);
        let again = DirLock::acquire(&path, "socket=/b.sock", "test").unwrap();
        assert_eq!(again.path(), path);
    }
}
