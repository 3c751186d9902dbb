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
}
