//! Segment files and reading frames out of them, damage included.
//!
//! Everything that knows where frames start lives here: the cut at a frame
//! boundary (memory and disk reads), resynchronisation after damage, and the
//! estimate of how many frames a damaged range held. The journal, its
//! recovery scan and the spool drain all use these.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use scada_core::frame::{Frame, FrameKind, HEADER_LEN, MAX_BODY_LEN, VERSION};

use crate::failpoint;

pub const EXTENSION: &str = "seg";
/// Largest frame on disk.
pub const MAX_FRAME: usize = HEADER_LEN + MAX_BODY_LEN;

/// `<start offset, 20 digits>.seg`
pub fn path(dir: &Path, start: u64) -> PathBuf {
    dir.join(format!("{start:020}.{EXTENSION}"))
}

/// Start offset and length of every segment file in `dir`.
pub fn list(dir: &Path) -> io::Result<Vec<(u64, PathBuf, u64)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some(EXTENSION) {
            continue;
        }
        let Some(start) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        let len = fs::metadata(&path)?.len();
        out.push((start, path, len));
    }
    out.sort_by_key(|(start, _, _)| *start);
    Ok(out)
}

/// Creates an empty segment file for frames from offset `start`.
pub fn create(dir: &Path, start: u64) -> io::Result<(PathBuf, File)> {
    failpoint::io(failpoint::JOURNAL_CREATE)?;
    let path = path(dir, start);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)?;
    Ok((path, file))
}

/// Cuts `file` back to `len` bytes (a frame boundary).
pub fn truncate(file: &File, len: u64) -> io::Result<()> {
    failpoint::io(failpoint::JOURNAL_TRUNCATE)?;
    file.set_len(len)
}

/// Reads exactly `buf.len()` bytes at `at`.
pub fn read_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<()> {
    failpoint::io(failpoint::JOURNAL_READ)?;
    file.read_exact_at(buf, at)
}

/// Length of the whole frames at the start of `data`, at most about `max`
/// bytes (the first frame always counts, whatever its size). 0 when the
/// first frame is broken or incomplete.
pub fn frames_prefix(data: &[u8], max: usize) -> usize {
    let mut cut = 0;
    while let Ok(Some(f)) = Frame::parse(&data[cut..], MAX_BODY_LEN) {
        if cut > 0 && cut + f.len() > max {
            break;
        }
        cut += f.len();
    }
    cut
}

/// True when a whole, valid frame starts at `at` and what follows it is a
/// valid frame too, or the end of the data, or data not read yet.
/// Requiring two frames in a row makes a false match in damaged bytes all
/// but impossible (two CRC32s, lengths, versions and kinds must agree).
fn frame_starts_at(data: &[u8], at: usize) -> bool {
    let Some(first) = parse_strict(&data[at..]) else {
        return false;
    };
    let next = at + first;
    if next == data.len() {
        return true;
    }
    match Frame::parse(&data[next..], MAX_BODY_LEN) {
        Ok(Some(_)) => true,
        // The next frame runs past what we have: data not read yet, or a
        // torn tail at the end; either way `at` is a frame start.
        Ok(None) => true,
        Err(_) => false,
    }
}

/// Length of the valid frame at the start of `data`.
fn parse_strict(data: &[u8]) -> Option<usize> {
    // Cheap checks first: most damaged positions fail on length or version.
    if data.len() < HEADER_LEN + 2 {
        return None;
    }
    let len = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
    if !(2..=MAX_BODY_LEN).contains(&len) || data[HEADER_LEN] != VERSION {
        return None;
    }
    FrameKind::from_u8(data[HEADER_LEN + 1])?;
    match Frame::parse(data, MAX_BODY_LEN) {
        Ok(Some(f)) => Some(f.len()),
        _ => None,
    }
}

/// The next frame start after damage at `from` in `data`, if any.
pub fn resync(data: &[u8], from: usize) -> Option<usize> {
    find_frame(data, from + 1, data.len())
}

/// The first frame start at or after `from` and before `limit`.
pub fn find_frame(data: &[u8], from: usize, limit: usize) -> Option<usize> {
    (from..limit.min(data.len())).find(|&at| frame_starts_at(data, at))
}

/// The first frame start after damage at `from`, before `end`, in a file
/// read through `read` (`read(buf, offset)` fills `buf` from `offset`),
/// scanned in windows so a large damaged range is never read at once.
pub fn find_in_file(
    mut read: impl FnMut(&mut [u8], u64) -> io::Result<()>,
    from: u64,
    end: u64,
) -> io::Result<Option<u64>> {
    const WINDOW: usize = 4 * MAX_FRAME;
    let mut window = from;
    while window < end {
        let len = ((end - window) as usize).min(WINDOW);
        let mut buf = vec![0u8; len];
        read(&mut buf, window)?;
        let last = window + len as u64 == end;
        // A candidate needs its whole frame in view unless the data ends here.
        let limit = if last { len } else { len - MAX_FRAME };
        let first = usize::from(window == from);
        if let Some(at) = find_frame(&buf, first, limit) {
            return Ok(Some(window + at as u64));
        }
        if last {
            break;
        }
        window += (len - MAX_FRAME) as u64;
    }
    Ok(None)
}

/// How many frames a damaged range most likely held: its frame headers are
/// followed where they are intact, and each stretch that cannot be followed
/// counts as one frame. Exact when the damage is smaller than a frame.
pub fn estimate_frames(damaged: &[u8]) -> u64 {
    let mut frames = 0;
    let mut at = 0;
    while at < damaged.len() {
        frames += 1;
        let rest = &damaged[at..];
        let len = rest
            .get(..4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
        match len {
            Some(len) if (2..=MAX_BODY_LEN).contains(&len) && HEADER_LEN + len <= rest.len() => {
                at += HEADER_LEN + len;
            }
            _ => {
                // An unreadable header: the next plausible one (length,
                // version and kind in range) is where the next frame begins.
                match (at + 1..damaged.len()).find(|&p| plausible_header(&damaged[p..])) {
                    Some(p) => at = p,
                    None => break,
                }
            }
        }
    }
    frames
}

/// [`estimate_frames`] of the damaged range `from..to` of a file read through
/// `read` (as in [`find_in_file`]); at most 64 MiB of it is read.
pub fn estimate_frames_in_file(
    mut read: impl FnMut(&mut [u8], u64) -> io::Result<()>,
    from: u64,
    to: u64,
) -> io::Result<u64> {
    let mut damaged = vec![0u8; ((to - from) as usize).min(64 << 20)];
    read(&mut damaged, from)?;
    Ok(estimate_frames(&damaged))
}

fn plausible_header(data: &[u8]) -> bool {
    if data.len() < HEADER_LEN + 2 {
        return false;
    }
    let len = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
    (2..=MAX_BODY_LEN).contains(&len)
        && HEADER_LEN + len <= data.len()
        && data[HEADER_LEN] == VERSION
        && FrameKind::from_u8(data[HEADER_LEN + 1]).is_some()
}

/// What a pass over a segment's bytes found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Scan {
    /// End of the last valid frame (relative to the data).
    pub valid_end: usize,
    /// Damaged ranges `(start, end)` followed by valid frames.
    pub damage: Vec<(usize, usize)>,
    /// Bytes after the last valid frame that no valid frame follows: a torn
    /// tail in the last segment, damage in a closed one.
    pub tail: usize,
}

/// Walks all of `data` (a whole segment or spool file body), resynchronising
/// after every damaged range.
pub fn scan(data: &[u8]) -> Scan {
    let mut out = Scan::default();
    let mut at = 0;
    while at < data.len() {
        match Frame::parse(&data[at..], MAX_BODY_LEN) {
            Ok(Some(f)) => {
                at += f.len();
                out.valid_end = at;
            }
            _ => match resync(data, at) {
                Some(next) => {
                    out.damage.push((at, next));
                    at = next;
                }
                None => break,
            },
        }
    }
    out.tail = data.len() - out.valid_end;
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use scada_core::frame::FrameBuilder;

    /// `n` event frames with bodies of `size` bytes of their index.
    pub fn frames(n: usize, size: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..n {
            let b = FrameBuilder::begin(&mut out, FrameKind::Event);
            out.extend(std::iter::repeat_n(i as u8, size));
            b.finish(&mut out).unwrap();
        }
        out
    }

    const FRAME: usize = HEADER_LEN + 2 + 100;

    #[test]
    fn damage_in_the_middle_costs_only_the_damaged_frames() {
        let mut data = frames(100, 100);
        // 64 bytes inside frame 40's body.
        data[40 * FRAME + 20..40 * FRAME + 84].fill(0xa5);
        let s = scan(&data);
        assert_eq!(s.damage, vec![(40 * FRAME, 41 * FRAME)]);
        assert_eq!((s.valid_end, s.tail), (data.len(), 0));
        assert_eq!(estimate_frames(&data[40 * FRAME..41 * FRAME]), 1);
        // Across a frame boundary, header included: two frames.
        let mut data = frames(100, 100);
        data[50 * FRAME - 30..50 * FRAME + 34].fill(0);
        let s = scan(&data);
        assert_eq!(s.damage, vec![(49 * FRAME, 51 * FRAME)]);
        assert_eq!(estimate_frames(&data[49 * FRAME..51 * FRAME]), 2);
    }

    #[test]
    fn a_torn_tail_is_a_tail_not_damage() {
        let mut data = frames(10, 100);
        data.extend_from_slice(&frames(1, 100)[..50]);
        let s = scan(&data);
        assert!(s.damage.is_empty());
        assert_eq!((s.valid_end, s.tail), (10 * FRAME, 50));
        // Garbage at the end with nothing valid after it: a tail too.
        let mut data = frames(10, 100);
        data.extend_from_slice(&[0xee; 300]);
        let s = scan(&data);
        assert!(s.damage.is_empty());
        assert_eq!(s.tail, 300);
    }

    #[test]
    fn a_damaged_length_that_points_past_the_end_still_resyncs() {
        let mut data = frames(20, 100);
        // Frame 5 claims 900 KB: "incomplete", but valid frames follow.
        data[5 * FRAME..5 * FRAME + 4].copy_from_slice(&(900_000u32).to_le_bytes());
        let s = scan(&data);
        assert_eq!(s.damage, vec![(5 * FRAME, 6 * FRAME)]);
        assert_eq!(s.tail, 0);
    }

    #[test]
    fn the_cut_keeps_whole_frames_and_always_the_first() {
        let data = frames(10, 100);
        assert_eq!(frames_prefix(&data, 3 * FRAME + 5), 3 * FRAME);
        assert_eq!(frames_prefix(&data, 1), FRAME);
        assert_eq!(frames_prefix(&data[..FRAME - 1], 1 << 20), 0);
        assert_eq!(frames_prefix(&data, usize::MAX), data.len());
    }

    #[test]
    fn resync_never_matches_inside_random_garbage() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut garbage = vec![0u8; 1 << 20];
        for b in garbage.iter_mut() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            *b = rng as u8;
        }
        assert_eq!(resync(&garbage, 0), None);
    }
}
