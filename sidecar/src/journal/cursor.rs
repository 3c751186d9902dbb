//! A sink's position in the journal, persisted after every delivery.
//!
//! Two 32-byte slots are written alternately, each with a sequence number and
//! a CRC; loading picks the valid slot with the higher sequence. A write torn
//! by a crash therefore loses at most the newest position (a few events are
//! delivered again), never the file.
//!
//! Besides the delivered offset, a slot records how far the sink had started
//! sending (`attempted`): after a crash, events between the two may have
//! reached the destination already, so they are counted as possible duplicates
//! when they are sent again.
//!
//! ```text
//! slot := magic "SCC2" | seq:u64le | offset:u64le | attempted:u64le | crc32:u32le (of the 28 bytes before)
//! ```

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::failpoint;

const MAGIC: &[u8; 4] = b"SCC2";
const SLOT: usize = 32;

#[derive(Debug)]
pub struct CursorFile {
    file: File,
    seq: u64,
    offset: u64,
    attempted: u64,
}

/// A stored position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Everything before this offset is delivered.
    pub offset: u64,
    /// Sending had started up to here.
    pub attempted: u64,
}

fn u64_at(slot: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&slot[at..at + 8]);
    u64::from_le_bytes(a)
}

fn decode(slot: &[u8]) -> Option<(u64, Position)> {
    if slot.len() < SLOT || &slot[..4] != MAGIC {
        return None;
    }
    let crc = u32::from_le_bytes([slot[28], slot[29], slot[30], slot[31]]);
    if crc32fast::hash(&slot[..28]) != crc {
        return None;
    }
    Some((
        u64_at(slot, 4),
        Position {
            offset: u64_at(slot, 12),
            attempted: u64_at(slot, 20),
        },
    ))
}

impl CursorFile {
    /// Opens the cursor; returns the stored position if there is a valid one.
    pub fn open(path: &Path) -> io::Result<(Self, Option<Position>)> {
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
        let pos = best.map(|(_, p)| p);
        Ok((
            Self {
                file,
                seq,
                offset: pos.map_or(0, |p| p.offset),
                attempted: pos.map_or(0, |p| p.attempted),
            },
            pos,
        ))
    }

    /// Records that everything before `offset` is delivered.
    pub fn store(&mut self, offset: u64) -> io::Result<()> {
        self.offset = offset;
        self.attempted = self.attempted.max(offset);
        self.write()
    }

    /// Records that sending has started up to `attempted`.
    pub fn attempt(&mut self, attempted: u64) -> io::Result<()> {
        if attempted <= self.attempted {
            return Ok(());
        }
        self.attempted = attempted;
        self.write()
    }

    fn write(&mut self) -> io::Result<()> {
        self.seq += 1;
        let mut slot = [0u8; SLOT];
        slot[..4].copy_from_slice(MAGIC);
        slot[4..12].copy_from_slice(&self.seq.to_le_bytes());
        slot[12..20].copy_from_slice(&self.offset.to_le_bytes());
        slot[20..28].copy_from_slice(&self.attempted.to_le_bytes());
        let crc = crc32fast::hash(&slot[..28]);
        slot[28..32].copy_from_slice(&crc.to_le_bytes());
        let at = (self.seq % 2) * SLOT as u64;
        failpoint::io(failpoint::CURSOR_WRITE)?;
        self.file.write_all_at(&slot, at)
    }
}

/// The furthest position any cursor in `dir` records (sent or delivered):
/// where a fresh journal starts, so offsets never go backwards.
pub fn furthest(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "cursor"))
                .filter_map(|e| CursorFile::open(&e.path()).ok())
                .filter_map(|(_, v)| v)
                .map(|p| p.attempted.max(p.offset))
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
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
        c.attempt(150).unwrap();
        drop(c);
        let (mut c, v) = CursorFile::open(&path).unwrap();
        assert_eq!(
            v,
            Some(Position {
                offset: 100,
                attempted: 150
            })
        );
        c.store(200).unwrap(); // seq 3 → slot 1
        drop(c);
        // Tear the newest slot: the previous position is used.
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&[0xff; 8], SLOT as u64 + 12).unwrap();
        let (_, v) = CursorFile::open(&path).unwrap();
        assert_eq!(
            v,
            Some(Position {
                offset: 100,
                attempted: 150
            })
        );
    }
}
