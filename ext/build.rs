//! Build settings the extension needs beyond ext-php-rs's own:
//! * `-z nodelete`: PHP unloads extensions at shutdown, but a fork handler and
//!   possibly a writer thread still finishing a flush point into our code, so
//!   the library must stay mapped until the process exits.
//! * `php_packed_zvals`: PHP >= 8.2 stores packed arrays as bare zvals rather
//!   than buckets; the encoder walks hash tables directly and needs to know.
use std::process::Command;

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    println!("cargo:rustc-check-cfg=cfg(php_packed_zvals)");
    println!("cargo:rerun-if-env-changed=PHP");
    let php = std::env::var("PHP").unwrap_or_else(|_| "php".into());
    let version_id = Command::new(&php)
        .args(["-n", "-r", "echo PHP_VERSION_ID;"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(80200);
    if version_id >= 80200 {
        println!("cargo:rustc-cfg=php_packed_zvals");
    }
}
