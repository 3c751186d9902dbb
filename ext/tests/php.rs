//! Runs real PHP with the built extension (the ext-php-rs integration test
//! pattern): each `php/*.php` script asserts one behaviour and prints `OK`.
//! There is no sidecar here: the socket points nowhere, so events go to a
//! per-test spool directory. Full-stack behaviour is covered by PHPUnit.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Builds the cdylib once and returns its path.
fn extension() -> &'static Path {
    static EXT: OnceLock<PathBuf> = OnceLock::new();
    EXT.get_or_init(|| {
        let root = workspace_root();
        let status = Command::new(env!("CARGO"))
            .args(["build", "--release", "-p", "scada-broadcast-ext"])
            .current_dir(&root)
            .status()
            .expect("cargo build");
        assert!(status.success(), "building the extension failed");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        target.join("release/libscada_broadcast.so")
    })
}

fn run(script: &str) {
    let dir = std::env::temp_dir().join(format!("scada-ext-{script}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/php")
        .join(format!("{script}.php"));
    let out = Command::new("php")
        .arg("-n")
        .arg(format!("-dextension={}", extension().display()))
        .args([
            "-dzend.assertions=1",
            "-dassert.exception=1",
            "-dmemory_limit=1G",
        ])
        .arg(&path)
        .env("SCADA_SIDECAR_SOCKET", dir.join("no-sidecar.sock"))
        .env("SCADA_SPOOL_DIR", dir.join("spool"))
        .env("TEST_DIR", &dir)
        .output()
        .expect("run php");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("OK"),
        "{script}.php failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    let _ = std::fs::remove_dir_all(&dir);
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
