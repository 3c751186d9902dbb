//! Runs real PHP with the built extension (the ext-php-rs integration test
//! pattern): each `php/*.php` script asserts one behaviour and prints `OK`.
//! There is no sidecar here: the socket points nowhere, so events go to a
//! per-test spool directory. Full-stack behaviour is covered by PHPUnit.
//!
//! Every script runs twice: as is, and under valgrind (`USE_ZEND_ALLOC=0`, so
//! PHP's own allocations are checked too), which must report no error at all:
//! an invalid read or write anywhere fails the test. The fault-injection
//! scripts run with the `failpoints` build both ways too.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Builds the cdylib once (`features`: none, or `failpoints`) and returns its path.
/// The failpoints build has a target directory of its own, so it never
/// replaces the release extension other tests load.
fn build_extension(features: Option<&str>) -> PathBuf {
    let root = workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "--release", "-p", "scada-broadcast-ext"])
        .current_dir(&root);
    let target = match features {
        None => target,
        Some(f) => {
            let dir = target.join(f);
            cmd.args(["--features", f]).arg("--target-dir").arg(&dir);
            dir
        }
    };
    let status = cmd.status().expect("cargo build");
    assert!(status.success(), "building the extension failed");
    target.join("release/libscada_broadcast.so")
}

fn extension() -> &'static Path {
    static EXT: OnceLock<PathBuf> = OnceLock::new();
    EXT.get_or_init(|| build_extension(None))
}

/// The extension with fault injection (`SCADA_FAILPOINTS`, see transport/fault.rs).
fn failpoints_extension() -> &'static Path {
    static EXT: OnceLock<PathBuf> = OnceLock::new();
    EXT.get_or_init(|| build_extension(Some("failpoints")))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Under {
    Php,
    Valgrind,
}

/// Exit status valgrind uses when it found errors (distinct from the scripts' own).
const VALGRIND_ERROR_EXIT: i32 = 99;

/// One run of a script: what it printed, and its directory (the spool is in
/// `dir/spool`), removed when dropped.
struct Ran {
    stderr: String,
    dir: PathBuf,
}

impl Ran {
    /// Loss records left in the spool directory.
    fn loss_records(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.join("spool"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".lost"))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Ran {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn run(script: &str) {
    run_with(script, Under::Php, extension(), &[]);
}

fn run_under_valgrind(script: &str) {
    run_with(script, Under::Valgrind, extension(), &[]);
}

fn run_with(script: &str, under: Under, ext: &Path, env: &[(&str, &str)]) -> Ran {
    let tag = if under == Under::Valgrind {
        "vg"
    } else {
        "php"
    };
    let variant: String = env
        .iter()
        .map(|(k, v)| format!("{k}{v}"))
        .collect::<String>();
    let variant = format!(
        "{:x}",
        variant
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64))
    );
    let dir = std::env::temp_dir().join(format!(
        "scada-ext-{script}-{tag}-{variant}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/php")
        .join(format!("{script}.php"));
    let mut cmd = match under {
        Under::Php => Command::new("php"),
        Under::Valgrind => {
            let mut c = Command::new("valgrind");
            c.args([
                "-q",
                "--leak-check=no",
                &format!("--error-exitcode={VALGRIND_ERROR_EXIT}"),
                "php",
            ])
            .env("USE_ZEND_ALLOC", "0")
            .env("TEST_UNDER_VALGRIND", "1");
            c
        }
    };
    cmd.arg("-n")
        .arg(format!("-dextension={}", ext.display()))
        .args([
            "-dzend.assertions=1",
            "-dassert.exception=1",
            "-dmemory_limit=1G",
        ])
        .arg(&path)
        .env("SCADA_SIDECAR_SOCKET", dir.join("no-sidecar.sock"))
        .env("SCADA_SPOOL_DIR", dir.join("spool"))
        .env("TEST_DIR", &dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {tag} (tests/bin/install-deps.sh installs valgrind): {e}")
    });
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.code() != Some(VALGRIND_ERROR_EXIT)
            && !stderr.contains("Invalid read")
            && !stderr.contains("Invalid write"),
        "valgrind found errors in {script}.php:\n{stderr}"
    );
    assert!(
        out.status.success() && stdout.trim_end().ends_with("OK"),
        "{script}.php failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    Ran { stderr, dir }
}

/// `(events, reason)` of a loss record's file name.
fn loss_record(name: &str) -> (u64, String) {
    let stem = name.strip_suffix(".lost").unwrap();
    let parts: Vec<&str> = stem.splitn(5, '-').collect();
    (parts[3].parse().unwrap(), parts[4].to_string())
}

#[test]
fn encoding_is_byte_identical_with_json_encode() {
    run("encoding");
}

#[test]
fn bad_input_gets_clear_exceptions() {
    run("errors");
}

#[test]
fn without_a_sidecar_events_are_spooled_not_lost() {
    run("spool_without_sidecar");
}

#[test]
fn forked_children_get_their_own_transport() {
    run("fork");
}

#[test]
fn reentrant_and_throwing_serializers_are_safe() {
    run("reentrancy");
}

#[test]
fn user_code_that_changes_data_mid_walk_never_breaks_the_encoder() {
    run("hostile");
}

// The same scripts under valgrind: zero invalid reads or writes.

#[test]
fn valgrind_encoding() {
    run_under_valgrind("encoding");
}

#[test]
fn valgrind_errors() {
    run_under_valgrind("errors");
}

#[test]
fn valgrind_spool_without_sidecar() {
    run_under_valgrind("spool_without_sidecar");
}

#[test]
fn valgrind_fork() {
    run_under_valgrind("fork");
}

#[test]
fn valgrind_reentrancy() {
    run_under_valgrind("reentrancy");
}

#[test]
fn valgrind_hostile() {
    run_under_valgrind("hostile");
}

#[test]
fn ids_are_given_only_to_accepted_events_in_order() {
    run("ids");
}

#[test]
fn valgrind_ids() {
    run_under_valgrind("ids");
}

/// Every I/O error the spool can meet, injected at its writes: nothing is
/// acknowledged that is not on disk, `reject` calls are refused while there
/// is no destination, and what is still held at exit is counted, logged and
/// left as a loss record.
#[test]
fn a_spool_that_cannot_be_written_refuses_calls_and_reports_what_it_held() {
    no_destination(Under::Php);
}

#[test]
fn valgrind_no_destination() {
    no_destination(Under::Valgrind);
}

fn no_destination(under: Under) {
    for errno in [
        libc_errno::ENOSPC,
        libc_errno::EIO,
        libc_errno::EROFS,
        libc_errno::EACCES,
    ] {
        let spec = format!("spool.write=errno:{errno}");
        let ran = run_with(
            "no_destination",
            under,
            failpoints_extension(),
            &[("SCADA_FAILPOINTS", &spec)],
        );
        let records = ran.loss_records();
        assert_eq!(
            records.len(),
            1,
            "errno {errno}: {records:?}\n{}",
            ran.stderr
        );
        let (events, reason) = loss_record(&records[0]);
        assert_eq!(reason, "no_destination");
        let accepted: u64 = std::fs::read_to_string(ran.dir.join("accepted"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(
            events, accepted,
            "errno {errno}: every accepted event is in the record"
        );
        let line = format!("scada_broadcast: {accepted} accepted event");
        assert!(
            ran.stderr.contains(&line) && ran.stderr.contains("(no_destination)"),
            "errno {errno}: PHP's log says so:\n{}",
            ran.stderr
        );
        assert!(ran.stderr.contains(&records[0]), "the log names the record");
    }
}

/// A writer thread that panics: calls throw BroadcastException naming the
/// cause, stats() shows it, and what it held is reported as lost.
#[test]
fn a_writer_panic_fails_the_transport_loudly_and_reports_what_it_held() {
    writer_panic(Under::Php);
}

#[test]
fn valgrind_writer_panic() {
    writer_panic(Under::Valgrind);
}

fn writer_panic(under: Under) {
    let ran = run_with(
        "writer_panic",
        under,
        failpoints_extension(),
        &[("SCADA_FAILPOINTS", "writer.loop=panic@3x1")],
    );
    let records = ran.loss_records();
    assert_eq!(records.len(), 1, "{records:?}\n{}", ran.stderr);
    let (events, reason) = loss_record(&records[0]);
    assert_eq!(reason, "writer_panic");
    let held: u64 = std::fs::read_to_string(ran.dir.join("held"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(events, held);
    assert!(ran.stderr.contains("(writer_panic)"), "{}", ran.stderr);
}

/// errno values (Linux) for the failpoints above.
mod libc_errno {
    pub const EIO: i32 = 5;
    pub const EACCES: i32 = 13;
    pub const ENOSPC: i32 = 28;
    pub const EROFS: i32 = 30;
}
