//! Drains spool files whose PHP process is gone.
//!
//! A live process holds an exclusive `flock` on its spool file and replays it
//! itself, in order, once it reconnects. A file we can lock has no owner any
//! more: its complete frames are ingested like socket traffic (validated,
//! de-duplicated, journaled) and the file is removed. A torn frame at the end
//! is counted and discarded.

use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

use scada_core::frame::{HEADER_LEN, MAX_BODY_LEN};
use scada_core::spool;
use tracing::{info, warn};

use super::Ingest;

const CHUNK: usize = 4 * 1024 * 1024;

/// Drains every orphaned spool file in `dir`; returns how many files were drained.
pub fn drain_dir(dir: &Path, ingest: &Ingest) -> usize {
    if ingest.over_budget() {
        return 0;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut drained = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some(spool::EXTENSION) {
            continue;
        }
        match drain_file(&path, ingest) {
            Ok(Some(events)) => {
                drained += 1;
                ingest.metrics.ingest.spool_files.inc();
                ingest.metrics.ingest.spool_events.add(events);
                if events > 0 {
                    info!(file = %path.display(), events, "drained orphaned spool file");
                }
            }
            Ok(None) => {}
            Err(e) => {
                ingest.metrics.ingest.spool_errors.inc();
                warn!(file = %path.display(), error = %e, "cannot drain spool file");
            }
        }
    }
    drained
}

/// `Ok(None)` when the file still has an owner.
fn drain_file(path: &Path, ingest: &Ingest) -> io::Result<Option<u64>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::WouldBlock {
            Ok(None)
        } else {
            Err(e)
        };
    }
    let len = file.metadata()?.len();
    let mut header = [0u8; 16];
    let n = file.read_at(&mut header, 0)?;
    if n < header.len() || !spool::header_ok(&header) {
        let bad = path.with_extension("bad");
        fs::rename(path, &bad)?;
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not a spool file; moved to {}", bad.display()),
        ));
    }
    let before = ingest.metrics.ingest.events.get() + ingest.metrics.ingest.duplicates.get();
    let mut pos = header.len() as u64;
    let mut buf = Vec::new();
    while pos < len {
        let want = ((len - pos) as usize).min(CHUNK.max(MAX_BODY_LEN + HEADER_LEN));
        buf.resize(want, 0);
        file.read_exact_at(&mut buf, pos)?;
        let accepted = ingest.accept(&buf)?;
        pos += accepted.consumed as u64;
        if accepted.error.is_some() || accepted.consumed == 0 {
            ingest.metrics.ingest.spool_torn.inc();
            warn!(file = %path.display(), at = pos, "spool file ends in a torn or corrupt frame; the rest is discarded");
            break;
        }
    }
    let after = ingest.metrics.ingest.events.get() + ingest.metrics.ingest.duplicates.get();
    fs::remove_file(path)?;
    Ok(Some(after - before))
}
