use super::segment::tests::frames;
use super::*;
use crate::metrics::Metrics;
use scada_core::frame::HEADER_LEN;

fn cfg(segment: u64, memory: usize) -> JournalConfig {
    JournalConfig {
        segment_bytes: segment,
        max_bytes: segment * 100,
        memory_bytes: memory,
        fsync: false,
    }
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("scada-journal-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    d
}

fn open(dir: &Path, cfg: JournalConfig) -> (Arc<Journal>, Recovery) {
    Journal::open(&dir.join("journal"), &dir.join("cursors"), cfg).unwrap()
}

fn read_all(j: &Journal, mut from: u64, memory: bool) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let r = if memory {
            j.read_memory(from, 1000).unwrap()
        } else {
            j.read_disk(from, 1000).unwrap()
        };
        match r {
            Read::Data(b) => {
                out.extend_from_slice(&b.data);
                from = b.end();
            }
            Read::AtHead => return out,
            Read::Skip { to } => from = to,
        }
    }
}

fn reader(j: &Arc<Journal>, name: &str) -> JournalReader {
    let m = Metrics::default().sink(name, "test");
    j.reader(name, m).unwrap()
}

#[test]
fn appends_roll_segments_and_read_back_from_memory_and_disk() {
    let dir = tmp("roll");
    let (j, rec) = open(&dir, cfg(4000, 1 << 20));
    assert_eq!(rec.head, 0);
    let mut all = Vec::new();
    for _ in 0..10 {
        let chunk = frames(10, 50);
        all.extend_from_slice(&chunk);
        j.append(chunk).unwrap();
    }
    assert!(j.segment_count() > 1);
    assert_eq!(read_all(&j, 0, true), all);
    assert_eq!(read_all(&j, 0, false), all);
    // Reopen: same head, same bytes.
    drop(j);
    let (j, rec) = open(&dir, cfg(4000, 1 << 20));
    assert_eq!(rec.head, all.len() as u64);
    assert_eq!(rec.torn_bytes, 0);
    assert_eq!(read_all(&j, 0, false), all);
}

#[test]
fn a_torn_tail_is_cut_on_open() {
    let dir = tmp("torn");
    let (j, _) = open(&dir, cfg(1 << 20, 1 << 20));
    let good = frames(5, 20);
    j.append(good.clone()).unwrap();
    drop(j);
    let seg = segment::path(&dir.join("journal"), 0);
    let mut data = fs::read(&seg).unwrap();
    data.extend_from_slice(&frames(1, 20)[..15]);
    fs::write(&seg, &data).unwrap();
    let (j, rec) = open(&dir, cfg(1 << 20, 1 << 20));
    assert_eq!(rec.torn_bytes, 15);
    assert_eq!(
        j.health().corrupt_frames.get(),
        0,
        "a torn tail is not damage"
    );
    assert_eq!(read_all(&j, 0, false), good);
    j.append(frames(1, 20)).unwrap();
    assert_eq!(j.head(), good.len() as u64 + 30);
}

const FRAME: usize = HEADER_LEN + 2 + 100;

/// Overwrites `len` bytes at `at` in segment 0.
fn damage(dir: &Path, at: usize, len: usize) {
    let seg = segment::path(&dir.join("journal"), 0);
    let f = OpenOptions::new().write(true).open(seg).unwrap();
    f.write_all_at(&vec![0x5a; len], at as u64).unwrap();
}

#[test]
fn damage_in_the_last_segment_costs_only_the_damaged_frames_and_is_counted_once() {
    let dir = tmp("damage-last");
    let (j, _) = open(&dir, cfg(1 << 20, 1 << 20));
    let all = frames(200, 100);
    j.append(all.clone()).unwrap();
    drop(j);
    // 64 bytes in the middle of frame 100: before this fix, open took it for
    // a torn tail and cut the second half of the segment away.
    damage(&dir, 100 * FRAME + 30, 64);
    let (j, rec) = open(&dir, cfg(1 << 20, 1 << 20));
    assert_eq!(rec.torn_bytes, 0);
    assert_eq!(rec.head, all.len() as u64, "nothing was cut");
    let mut want = all[..100 * FRAME].to_vec();
    want.extend_from_slice(&all[101 * FRAME..]);
    assert_eq!(read_all(&j, 0, false), want);
    assert_eq!(read_all(&j, 0, false), want, "a second reader skips it too");
    assert_eq!(j.health().corrupt_frames.get(), 1);
    assert_eq!(j.health().corrupt_bytes.get(), FRAME as u64);
    // New appends go after the valid data, not into the damage.
    j.append(frames(1, 100)).unwrap();
    assert_eq!(j.head(), all.len() as u64 + FRAME as u64);
}

#[test]
fn damage_in_a_closed_segment_is_skipped_by_every_reader_and_the_scan() {
    let dir = tmp("damage-closed");
    let c = cfg(1 << 20, 1 << 10);
    let (j, _) = open(&dir, c.clone());
    let mut all = Vec::new();
    for _ in 0..12 {
        let chunk = frames(1000, 100);
        all.extend_from_slice(&chunk);
        j.append(chunk).unwrap();
    }
    assert!(j.segment_count() >= 2);
    // Across two frames (a header included) in segment 0, which is closed.
    damage(&dir, 5000 * FRAME - 20, 64);
    let got = read_all(&j, 0, false);
    assert_eq!(got.len(), all.len() - 2 * FRAME);
    assert_eq!(got[..4999 * FRAME], all[..4999 * FRAME]);
    assert_eq!(got[4999 * FRAME..], all[5001 * FRAME..]);
    let mut scanned = 0;
    j.scan(0, |_, _| scanned += 1).unwrap();
    assert_eq!(scanned, 12_000 - 2);
    assert_eq!(
        j.health().corrupt_frames.get(),
        2,
        "counted once for all readers"
    );
}

#[test]
fn damage_at_the_end_of_a_closed_segment_skips_to_the_next_segment() {
    let dir = tmp("damage-end");
    let (j, _) = open(&dir, cfg(1 << 20, 1 << 10));
    for _ in 0..3 {
        j.append(frames(5000, 100)).unwrap();
    }
    let seg0_len = fs::metadata(segment::path(&dir.join("journal"), 0))
        .unwrap()
        .len();
    damage(&dir, seg0_len as usize - 50, 50);
    let got = read_all(&j, 0, false);
    assert_eq!(got.len() as u64, j.head() - FRAME as u64);
    assert_eq!(j.health().corrupt_frames.get(), 1);
}

#[test]
fn memory_is_bounded_and_lagging_readers_fall_back_to_disk() {
    let dir = tmp("ring");
    let (j, _) = open(&dir, cfg(1 << 20, 1000));
    for _ in 0..20 {
        j.append(frames(4, 40)).unwrap();
    }
    assert!(
        j.read_memory(0, 1000).is_none(),
        "old data must have left memory"
    );
    let head = j.head();
    assert!(matches!(j.read_memory(head, 1000), Some(Read::AtHead)));
    assert_eq!(read_all(&j, 0, false).len() as u64, head);
}

#[test]
fn segments_are_released_only_past_every_registered_reader() {
    let dir = tmp("release");
    let (j, _) = open(&dir, cfg(2000, 1 << 20));
    let mut fast = reader(&j, "fast");
    let mut slow = reader(&j, "throttle");
    for _ in 0..10 {
        j.append(frames(10, 50)).unwrap();
    }
    let segs = j.segment_count();
    fast.commit(j.head());
    assert_eq!(j.release_delivered(), 0, "the slow reader holds everything");
    slow.commit(2000);
    assert!(j.release_delivered() >= 1);
    assert_eq!(j.oldest(), 1800, "the segment the slow reader is in stays");
    slow.commit(j.head());
    j.release_delivered();
    assert_eq!(j.segment_count(), 1, "all but the active segment: {segs}");
    assert!(matches!(j.read_disk(0, 100).unwrap(), Read::Skip { .. }));
}

#[test]
fn a_new_journal_starts_after_the_furthest_cursor() {
    let dir = tmp("minhead");
    {
        let (j, _) = open(&dir, cfg(2000, 1 << 20));
        let mut r = reader(&j, "redis");
        j.append(frames(10, 50)).unwrap();
        r.commit(j.head());
    }
    let head = 10 * (HEADER_LEN + 52) as u64;
    fs::remove_dir_all(dir.join("journal")).unwrap();
    let (j, rec) = open(&dir, cfg(2000, 1 << 20));
    assert_eq!((rec.head, j.head()), (head, head));
}

#[tokio::test]
async fn a_reader_whose_stop_sender_is_gone_stops_instead_of_spinning() {
    let dir = tmp("stop");
    let (j, _) = open(&dir, cfg(1 << 20, 1 << 20));
    let mut r = reader(&j, "throttle");
    let (tx, mut rx) = watch::channel(Stop::No);
    drop(tx);
    // Before the fix, `stop.changed()` failing at once made this loop forever.
    let got = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        r.next_batch(1000, &mut rx),
    )
    .await;
    assert!(matches!(got, Ok(None)), "the reader must stop");
}

/// A real, small filesystem (tests run as root); unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// `None` (the test is skipped, and says so) only when not root.
    fn mount(name: &str, size: &str) -> Option<Self> {
        let dir = tmp(name);
        fs::create_dir_all(&dir).unwrap();
        let st = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .unwrap();
        // SAFETY: geteuid has no preconditions.
        if !st.success() && unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: mounting a tmpfs needs root");
            return None;
        }
        assert!(st.success(), "cannot mount a tmpfs on {}", dir.display());
        Some(Self(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// A disk smaller than one segment (the default 64 MiB): it fills inside the
/// active segment. Before the fix, nothing could ever be freed (only closed
/// segments are deleted): once every reader had delivered everything, the
/// same append still failed with ENOSPC, forever, across restarts too.
#[test]
fn a_disk_that_fills_inside_the_active_segment_frees_it_once_delivered() {
    let Some(disk) = Tmpfs::mount("full-active", "2m") else {
        return;
    };
    let (j, _) = open(&disk.0, cfg(64 << 20, 1 << 20));
    let mut r = reader(&j, "only");
    let mut appended = 0;
    let err = loop {
        match j.append(frames(100, 100)) {
            Ok(_) => appended += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
    assert!(appended > 100, "the disk holds {appended} appends");
    let head = j.head();
    assert!(!j.health().writable.get());
    // Nothing is delivered yet: nothing may be freed, and the appends keep failing.
    assert_eq!(j.release_delivered(), 0);
    assert!(j.append(frames(100, 100)).is_err());
    assert_eq!(j.head(), head, "a failed append leaves nothing behind");
    // Every reader has delivered everything: the full segment goes, ingest resumes.
    r.commit(head);
    assert_eq!(j.release_delivered(), 1);
    let again = j.append(frames(100, 100));
    assert!(again.is_ok(), "ingest never resumes: {again:?}");
    assert_eq!(again.ok(), Some(head), "offsets go on where they were");
    assert!(j.health().writable.get());
    assert_eq!(j.oldest(), head);
    assert_eq!(read_all(&j, head, false), frames(100, 100));
    // And after a restart the journal is where it was.
    drop((r, j));
    let (j, rec) = open(&disk.0, cfg(64 << 20, 1 << 20));
    assert_eq!((rec.oldest, rec.head), (head, j.head()));
    assert!(j.append(frames(100, 100)).is_ok());
}

#[test]
fn frame_len_at_finds_frame_starts_only_and_records_no_damage() {
    let dir = tmp("frame-len-at");
    // No memory to speak of: all but the last append are read from disk.
    let (j, _) = open(&dir, cfg(4000, 1));
    let first = frames(3, 40);
    let len = Frame::parse(&first, MAX_BODY_LEN).unwrap().unwrap().len();
    j.append(first).unwrap();
    let second_at = j.head();
    j.append(frames(2, 40)).unwrap();
    for at in [0, len as u64, second_at] {
        assert_eq!(
            j.frame_len_at(at).unwrap(),
            Some(len),
            "disk or memory at {at}"
        );
    }
    for at in [1, len as u64 - 1, second_at + 3, j.head(), j.head() + 100] {
        assert_eq!(j.frame_len_at(at).unwrap(), None, "not a frame start: {at}");
    }
    assert_eq!(j.health().corrupt_frames.get(), 0);
    assert_eq!(j.health().errors.get(), 0);
}

#[test]
fn a_new_priority_lane_starts_at_its_telemetry_lane_and_a_removed_one_is_folded_back() {
    let dir = tmp("lanes");
    {
        let (j, _) = open(&dir, cfg(2000, 1 << 20));
        let mut telemetry = reader(&j, "pusher-main");
        j.append(frames(10, 50)).unwrap();
        telemetry.commit(500);
        telemetry.attempt(600);
    }
    // A priority rule is added: its lane starts where the telemetry lane is.
    {
        let (j, _) = open(&dir, cfg(2000, 1 << 20));
        let m = Metrics::default().sink("p", "test");
        let mut prio = j
            .reader_seeded("pusher-main.priority", "pusher-main", m)
            .unwrap();
        assert_eq!(prio.position(), 500);
        // What the single lane had sent before is counted when sent again.
        prio.count_replayed(550, 1);
        assert_eq!(prio.metrics.replayed_after_restart.get(), 1);
        let mut telemetry = reader(&j, "pusher-main");
        telemetry.commit(j.head());
        prio.commit(520);
        // An existing priority cursor is not re-seeded.
        drop(prio);
        let m = Metrics::default().sink("p", "test");
        let prio = j
            .reader_seeded("pusher-main.priority", "pusher-main", m)
            .unwrap();
        assert_eq!(prio.position(), 520);
    }
    // The rule is removed: the stale priority cursor rewinds the telemetry
    // lane (nothing it had not delivered is lost), and is deleted so it
    // never pins the journal.
    let (j, _) = open(&dir, cfg(2000, 1 << 20));
    let head = j.head();
    assert_eq!(
        j.fold_cursor("pusher-main.priority", "pusher-main")
            .unwrap(),
        head - 520
    );
    assert!(!dir.join("cursors/pusher-main.priority.cursor").exists());
    let telemetry = reader(&j, "pusher-main");
    assert_eq!(telemetry.position(), 520);
    telemetry.count_replayed(550, 3);
    assert_eq!(telemetry.metrics.replayed_after_restart.get(), 3);
    // Nothing to fold the second time.
    assert_eq!(
        j.fold_cursor("pusher-main.priority", "pusher-main")
            .unwrap(),
        0
    );
}
