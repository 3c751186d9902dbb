//! Accepted events a process could not keep: counted, left as a loss record
//! in the spool directory, and written to PHP's error log.
//!
//! A loss is found on the writer thread (or at shutdown), but PHP's logging is
//! not thread-safe: the [`Ledger`] keeps each loss until the PHP thread takes
//! it ([`Ledger::take`]) at its next call, `stats()`, `flush()` or process
//! shutdown, and logs it there. The loss record is written at once, from any
//! thread: its information is in the file *name*, so it can be created on a
//! full disk (see `scada_core::spool::LossRecord`); the sidecar turns it into
//! a metric.

use std::fs::OpenOptions;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;

use scada_core::spool::{LossReason, LossRecord};

use super::fault;

/// One loss, waiting to be logged by the PHP thread.
#[derive(Debug)]
pub struct Loss {
    pub events: u64,
    pub reason: LossReason,
    /// Why, in words (the I/O error, the panic message).
    pub detail: String,
    /// The loss record's path, or why it could not be written.
    pub record: Result<PathBuf, RecordError>,
}

/// Why a loss record could not be written.
#[derive(Debug)]
pub enum RecordError {
    /// Creating the file failed (no directory, read-only, no inodes left).
    Create { path: PathBuf, source: io::Error },
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Create { path, source } => {
                write!(f, "cannot create {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for RecordError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Create { source, .. } => Some(source),
        }
    }
}

impl Loss {
    /// The line for PHP's error log.
    pub fn message(&self) -> String {
        let record = match &self.record {
            Ok(path) => format!("loss record {}", path.display()),
            Err(e) => format!("no loss record could be written: {e}"),
        };
        format!(
            "scada_broadcast: {} accepted event{} {} ({}): {}; {record}",
            self.events,
            if self.events == 1 { "" } else { "s" },
            if self.reason.certain() {
                "lost"
            } else {
                "possibly lost"
            },
            self.reason.as_str(),
            self.detail
        )
    }
}

#[derive(Debug, Default)]
pub struct Ledger {
    pending: Mutex<Vec<Loss>>,
    /// Set while `pending` is not empty: the PHP thread's hot path reads only this.
    any: AtomicBool,
    seq: AtomicU32,
}

impl Ledger {
    /// Records a loss of `events`: writes the loss record into `dir` and keeps
    /// the loss for the PHP thread to log.
    pub fn report(
        &self,
        dir: &Path,
        origin: u64,
        pid: u32,
        events: u64,
        reason: LossReason,
        detail: String,
    ) {
        let record = LossRecord {
            origin,
            pid,
            seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
            events,
            reason,
        };
        let record = write_record(dir, &record, &detail);
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Loss {
                events,
                reason,
                detail,
                record,
            });
        self.any.store(true, Ordering::Release);
    }

    /// True when losses wait to be logged (one atomic load).
    #[inline]
    pub fn has_pending(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    /// Takes the losses to log.
    pub fn take(&self) -> Vec<Loss> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        self.any.store(false, Ordering::Release);
        std::mem::take(&mut *pending)
    }
}

/// Creates the loss record (empty is enough: the name says it all), then
/// writes a readable line into it if there is room.
fn write_record(dir: &Path, record: &LossRecord, detail: &str) -> Result<PathBuf, RecordError> {
    let path = dir.join(record.file_name());
    let created = fault::check("loss.create").and_then(|()| {
        let _ = std::fs::create_dir_all(dir);
        OpenOptions::new().write(true).create_new(true).open(&path)
    });
    let mut file = match created {
        Ok(file) => file,
        Err(source) => return Err(RecordError::Create { path, source }),
    };
    let _ = writeln!(
        file,
        "{} events {} ({}): {detail}",
        record.events,
        if record.reason.certain() {
            "lost"
        } else {
            "possibly lost"
        },
        record.reason.as_str()
    );
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loss_leaves_a_record_named_after_it_and_a_line_to_log() {
        let dir = std::env::temp_dir().join(format!("scada-loss-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let ledger = Ledger::default();
        assert!(!ledger.has_pending());
        ledger.report(
            &dir,
            0xabc,
            42,
            31_337,
            LossReason::NoDestination,
            "disk full".into(),
        );
        assert!(ledger.has_pending());
        let losses = ledger.take();
        assert!(!ledger.has_pending());
        assert_eq!(losses.len(), 1);
        let path = losses[0].record.as_ref().unwrap().clone();
        let name = path.file_name().unwrap().to_str().unwrap();
        let parsed = LossRecord::parse(name).unwrap();
        assert_eq!(
            (parsed.events, parsed.reason, parsed.pid, parsed.seq),
            (31_337, LossReason::NoDestination, 42, 1)
        );
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .contains("disk full"));
        let line = losses[0].message();
        assert!(
            line.contains("31337 accepted events lost (no_destination): disk full"),
            "{line}"
        );
        assert!(line.contains(name), "{line}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn unconfirmed_events_are_said_to_be_possibly_lost() {
        let dir = std::env::temp_dir().join(format!("scada-loss-u-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let ledger = Ledger::default();
        ledger.report(
            &dir,
            0xabc,
            42,
            7,
            LossReason::WriterPanicUnconfirmed,
            "unacknowledged".into(),
        );
        let loss = &ledger.take()[0];
        let line = loss.message();
        assert!(
            line.contains("7 accepted events possibly lost (writer_panic_unconfirmed)"),
            "{line}"
        );
        let path = loss.record.as_ref().unwrap().clone();
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .starts_with("7 events possibly lost"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_record_that_cannot_be_created_is_said_in_the_log_line() {
        fault::set_local("loss.create=errno:28x1");
        let ledger = Ledger::default();
        ledger.report(
            Path::new("/nonexistent"),
            1,
            1,
            1,
            LossReason::WriterPanic,
            "boom".into(),
        );
        let line = ledger.take()[0].message();
        assert!(
            line.contains(
                "1 accepted event lost (writer_panic): boom; no loss record could be written: cannot create /nonexistent/"
            ),
            "{line}"
        );
        assert!(line.contains("No space left on device"), "{line}");
        fault::set_local("");
    }
}
