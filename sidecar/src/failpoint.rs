//! Fault injection at every I/O call on the durability path.
//!
//! Each call site names its failpoint (`journal.write`, `cursor.write`,
//! `spool.unlink`, ...) and asks [`io`] before doing the real call. With the
//! `failpoints` feature (tests), a point configured through the `fail` crate
//! (`fail::cfg("journal.write", "return(ENOSPC)")`) makes the call fail with
//! that errno instead; without the feature (release builds) [`io`] is an
//! inlined `Ok(())` and nothing of this exists at run time.
//!
//! Errno names accepted as the action's argument: `ENOSPC`, `EIO`, `EROFS`,
//! `EACCES`, `EAGAIN` (no argument: `EIO`).

use std::io;

/// Every failpoint, so tests can list and sweep them.
pub const ALL: &[&str] = &[
    JOURNAL_OPEN,
    JOURNAL_CREATE,
    JOURNAL_WRITE,
    JOURNAL_FSYNC,
    JOURNAL_TRUNCATE,
    JOURNAL_READ,
    JOURNAL_UNLINK,
    CURSOR_WRITE,
    SPOOL_READ,
    SPOOL_LOCKED,
    SPOOL_UNLINK,
    SPOOL_RENAME,
    LOSS_UNLINK,
    LOCK,
    SPOOL_LOCK,
    ACK_WRITE,
];

/// Opening the journal: listing and reading its segments on start.
pub const JOURNAL_OPEN: &str = "journal.open";
/// Creating a journal segment file (open and roll).
pub const JOURNAL_CREATE: &str = "journal.create";
/// Writing frames to the active segment.
pub const JOURNAL_WRITE: &str = "journal.write";
/// `fsync` of a segment: every append with `[journal] fsync = true`,
/// [`crate::journal::Journal::sync`] before drained spool files go otherwise.
pub const JOURNAL_FSYNC: &str = "journal.fsync";
/// Cutting a segment back to a frame boundary (a failed write, a torn tail).
pub const JOURNAL_TRUNCATE: &str = "journal.truncate";
/// Reading frames from a segment file.
pub const JOURNAL_READ: &str = "journal.read";
/// Deleting a delivered segment.
pub const JOURNAL_UNLINK: &str = "journal.unlink";
/// Persisting a reader's cursor.
pub const CURSOR_WRITE: &str = "cursor.write";
/// Reading an orphaned spool file.
pub const SPOOL_READ: &str = "spool.read";
/// Right after an orphaned spool file is locked (tests replace the file here,
/// as a live owner rewriting it would).
pub const SPOOL_LOCKED: &str = "spool.locked";
/// Removing a drained spool file.
pub const SPOOL_UNLINK: &str = "spool.unlink";
/// Moving an unreadable spool file aside (`.bad`).
pub const SPOOL_RENAME: &str = "spool.rename";
/// Removing a loss record once counted.
pub const LOSS_UNLINK: &str = "loss.unlink";
/// Taking the data directory's lock.
pub const LOCK: &str = "lock";
/// Taking the spool directory's lock (`sidecar.lock`), every drain pass.
pub const SPOOL_LOCK: &str = "spool.lock";
/// Writing an acknowledgement to a PHP process.
pub const ACK_WRITE: &str = "ingest.ack";

/// `Err` when the failpoint `name` is configured to fail.
#[cfg(feature = "failpoints")]
pub fn io(name: &str) -> io::Result<()> {
    match fail::eval(name, |arg| errno(arg.as_deref())) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn io(_name: &str) -> io::Result<()> {
    Ok(())
}

/// The error a failpoint argument names.
pub fn errno(arg: Option<&str>) -> io::Error {
    let code = match arg.map(str::trim) {
        Some("ENOSPC") => libc::ENOSPC,
        Some("EROFS") => libc::EROFS,
        Some("EACCES") => libc::EACCES,
        Some("EAGAIN") => libc::EAGAIN,
        _ => libc::EIO,
    };
    io::Error::from_raw_os_error(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_names_the_errno() {
        assert_eq!(errno(Some("ENOSPC")).raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(errno(Some("EROFS")).raw_os_error(), Some(libc::EROFS));
        assert_eq!(errno(Some("EACCES")).raw_os_error(), Some(libc::EACCES));
        assert_eq!(errno(None).raw_os_error(), Some(libc::EIO));
    }
}
