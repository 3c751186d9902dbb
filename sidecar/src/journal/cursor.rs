//! A sink's position in the journal, persisted after every delivery.
//!
//! Two 32-byte slots are written alternately, each with a sequence number and
//! a CRC; loading picks the valid slot with the higher sequence. A write torn
//! by a crash therefore loses at most the newest position (a few events are
//! delivered again), never the file.
//!
//! ```text
//! slot := magic "SCCU" | seq:u64le | offset:u64le | crc32:u32le (of the 20 bytes before) | pad:u32
//! ```

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

const MAGIC: &[u8; 4] = b"SCCU";
const SLOT: usize = 32;

#[derive(Debug)]
pub struct CursorFile {
    file: File,
    seq: u64,
}

fn decode(slot: &[u8]) -> Option<(u64, u64)> {
    if slot.len() < SLOT || &slot[..4] != MAGIC {
        return None;
    }
    let crc = u32::from_le_bytes([slot[20], slot[21], slot[22], slot[23]]);
    if crc32fast::hash(&slot[..20]) != crc {
        return None;
    }
    let mut a = [0u8; 8];
    a.copy_from_slice(&slot[4..12]);
    let seq = u64::from_le_bytes(a);
    a.copy_from_slice(&slot[12..20]);
    Some((seq, u64::from_le_bytes(a)))
}

impl CursorFile {
    /// Opens the cursor; returns the stored offset if there is a valid one.
    pub fn open(path: &Path) -> io::Result<(Self, Option<u64>)> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut buf = [0u8; 2 * SLOT];
        let n = file.read_at(&mut buf, 0)?;
        let best = [decode(&buf[..n.min(SLOT)]), decode(&buf[SLOT.min(n)..n])]
            .into_iter()
            .flatten()
            .max_by_key(|(seq, _)| *seq);
        let seq = best.map_or(0, |(s, _)| s);
        Ok((Self { file, seq }, best.map(|(_, off)| off)))
    }

    pub fn store(&mut self, offset: u64) -> io::Result<()> {
        self.seq += 1;
        let mut slot = [0u8; SLOT];
        slot[..4].copy_from_slice(MAGIC);
        slot[4..12].copy_from_slice(&self.seq.to_le_bytes());
        slot[12..20].copy_from_slice(&offset.to_le_bytes());
        let crc = crc32fast::hash(&slot[..20]);
        slot[20..24].copy_from_slice(&crc.to_le_bytes());
        let at = (self.seq % 2) * SLOT as u64;
        self.file.write_all_at(&slot, at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_survives_a_torn_slot() {
        let path = std::env::temp_dir().join(format!("scada-cursor-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let (mut c, v) = CursorFile::open(&path).unwrap();
        assert_eq!(v, None);
        c.store(100).unwrap();
        c.store(200).unwrap();
        drop(c);
        let (mut c, v) = CursorFile::open(&path).unwrap();
        assert_eq!(v, Some(200));
        c.store(300).unwrap(); // seq 3 → slot 1
        drop(c);
        // Tear the newest slot: the previous position is used.
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&[0xff; 8], SLOT as u64 + 12).unwrap();
        let (_, v) = CursorFile::open(&path).unwrap();
        assert_eq!(v, Some(200));
    }
}
