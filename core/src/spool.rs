//! Spool files: where a PHP process puts events the sidecar cannot take now.
//!
//! Layout: a 16-byte [`HEADER`] then frames exactly as on the socket. A process
//! appends to its own file (`<origin>-<pid>.spool`) while holding an exclusive
//! `flock` on it. When the sidecar is reachable again the process replays the
//! file over its connection, in order, and removes it. A file whose lock is free
//! belongs to a process that is gone: the sidecar drains it. A torn frame at the
//! tail (the process died mid-write) fails its length or CRC check and is
//! counted and discarded; everything before it is delivered.

/// Magic, version, reserved.
pub const HEADER: [u8; 16] = *b"SCADASPL\x01\0\0\0\0\0\0\0";

/// File name extension of spool files.
pub const EXTENSION: &str = "spool";

/// `<origin as 16 hex digits>-<pid>.spool`
pub fn file_name(origin: u64, pid: u32) -> String {
    format!("{origin:016x}-{pid}.{EXTENSION}")
}

/// Checks the header of a spool file.
pub fn header_ok(bytes: &[u8]) -> bool {
    bytes.len() >= HEADER.len() && bytes[..9] == HEADER[..9]
}

/// File name extension of loss records.
pub const LOSS_EXTENSION: &str = "lost";

/// Why a PHP process lost events it had accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LossReason {
    /// Neither the sidecar nor the spool (full disk, budget used up, I/O
    /// error) could take them before the process exited.
    NoDestination,
    /// The shutdown timeout passed with events still in memory.
    ShutdownTimeout,
    /// The writer thread panicked while holding them.
    WriterPanic,
    /// Possibly lost: the writer thread panicked after it had sent them to
    /// the sidecar or replayed them from the spool file, unacknowledged: they
    /// may be in the sidecar's journal, or still in the spool file, or gone.
    WriterPanicUnconfirmed,
    /// Possibly lost: the process stopped waiting for its writer thread at
    /// exit while the writer had them (sending, unacknowledged, or being
    /// spooled): it may still have placed them before the process ended.
    ShutdownTimeoutUnconfirmed,
}

impl LossReason {
    pub const ALL: [LossReason; 5] = [
        LossReason::NoDestination,
        LossReason::ShutdownTimeout,
        LossReason::WriterPanic,
        LossReason::WriterPanicUnconfirmed,
        LossReason::ShutdownTimeoutUnconfirmed,
    ];

    /// False for the `*_unconfirmed` reasons: those events may have arrived.
    pub fn certain(self) -> bool {
        !matches!(
            self,
            Self::WriterPanicUnconfirmed | Self::ShutdownTimeoutUnconfirmed
        )
    }

    /// The name used in file names, logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoDestination => "no_destination",
            Self::ShutdownTimeout => "shutdown_timeout",
            Self::WriterPanic => "writer_panic",
            Self::WriterPanicUnconfirmed => "writer_panic_unconfirmed",
            Self::ShutdownTimeoutUnconfirmed => "shutdown_timeout_unconfirmed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// A PHP process's report that it lost accepted events, left in the spool
/// directory for the sidecar to count (metric and log) and remove.
///
/// Everything the sidecar needs is in the file *name*
/// (`<origin:016x>-<pid>-<seq>-<events>-<reason>.lost`): creating an empty
/// file still works on a filesystem that has no room left for data, which is
/// exactly when such a report is written. The content, when there was room
/// for it, is a human-readable line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LossRecord {
    pub origin: u64,
    pub pid: u32,
    /// Distinguishes several reports of one process.
    pub seq: u32,
    pub events: u64,
    pub reason: LossReason,
}

impl LossRecord {
    pub fn file_name(&self) -> String {
        format!(
            "{:016x}-{}-{}-{}-{}.{LOSS_EXTENSION}",
            self.origin,
            self.pid,
            self.seq,
            self.events,
            self.reason.as_str()
        )
    }

    /// Parses a file name written by [`LossRecord::file_name`].
    pub fn parse(file_name: &str) -> Option<Self> {
        let stem = file_name.strip_suffix(LOSS_EXTENSION)?.strip_suffix('.')?;
        let mut parts = stem.splitn(5, '-');
        let origin = u64::from_str_radix(parts.next()?, 16).ok()?;
        let pid = parts.next()?.parse().ok()?;
        let seq = parts.next()?.parse().ok()?;
        let events = parts.next()?.parse().ok()?;
        let reason = LossReason::parse(parts.next()?)?;
        Some(Self {
            origin,
            pid,
            seq,
            events,
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_header() {
        assert_eq!(file_name(0xab, 42), "00000000000000ab-42.spool");
        assert!(header_ok(&HEADER));
        assert!(!header_ok(b"SCADASPL\x02\0\0\0\0\0\0\0"));
        assert!(!header_ok(b"short"));
    }

    #[test]
    fn loss_records_round_trip_through_their_file_name() {
        let r = LossRecord {
            origin: 0xdead_beef,
            pid: 4242,
            seq: 2,
            events: 31_337,
            reason: LossReason::NoDestination,
        };
        assert_eq!(
            r.file_name(),
            "00000000deadbeef-4242-2-31337-no_destination.lost"
        );
        assert_eq!(LossRecord::parse(&r.file_name()), Some(r));
        for reason in LossReason::ALL {
            let r = LossRecord { reason, ..r };
            assert_eq!(LossRecord::parse(&r.file_name()), Some(r));
        }
        for bad in [
            "00000000deadbeef-4242-2-31337-no_destination.spool",
            "zz-4242-2-31337-no_destination.lost",
            "00000000deadbeef-4242-2-many-no_destination.lost",
            "00000000deadbeef-4242-2-31337-gremlins.lost",
            "00000000deadbeef-4242.lost",
        ] {
            assert_eq!(LossRecord::parse(bad), None, "{bad}");
        }
    }
}
