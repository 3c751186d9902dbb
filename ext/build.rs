//! Build settings the extension needs beyond ext-php-rs's own:
//! * `-z nodelete`: PHP unloads extensions at shutdown, but a fork handler and
//!   possibly a writer thread still finishing a flush point into our code, so
//!   the library must stay mapped until the process exits.
//! * version cfgs (`php_packed_zvals`: PHP >= 8.2 stores packed arrays as bare
//!   zvals rather than buckets; the encoder walks hash tables directly and
//!   needs to know). They come from the headers being compiled against
//!   (`php-config --includes`, the ones ext-php-rs generates bindings from);
//!   when the build cannot tell, it stops with a message saying what to fix.
use std::process::{Command, ExitCode};

#[path = "build/php_headers.rs"]
mod php_headers;

use php_headers::HeaderError;

fn main() -> ExitCode {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    for cfg in php_headers::ALL_CFGS {
        println!("cargo:rustc-check-cfg=cfg({cfg})");
    }
    for var in ["PHP", "PHP_CONFIG", "PATH", php_headers::ALLOW_UNTESTED_ENV] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    println!("cargo:rerun-if-changed=build/php_headers.rs");
    match version_id() {
        Ok(version_id) => {
            for cfg in php_headers::cfgs(version_id) {
                println!("cargo:rustc-cfg={cfg}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: scada_broadcast: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The headers' PHP_VERSION_ID, cross-checked with `php` when it runs.
fn version_id() -> Result<u32, HeaderError> {
    let php_config = std::env::var("PHP_CONFIG").unwrap_or_else(|_| "php-config".into());
    let includes = Command::new(&php_config)
        .arg("--includes")
        .output()
        .map_err(|e| e.to_string())
        .and_then(|o| {
            if o.status.success() {
                Ok(String::from_utf8_lossy(&o.stdout).into_owned())
            } else {
                Err(format!("exit status {}", o.status))
            }
        })
        .map_err(|reason| HeaderError::PhpConfig {
            program: php_config.clone(),
            reason,
        })?;
    let header = php_headers::version_header(&includes)?;
    println!("cargo:rerun-if-changed={}", header.display());
    let version_id = php_headers::headers_version(&header)?;
    let allow_untested = std::env::var(php_headers::ALLOW_UNTESTED_ENV).is_ok_and(|v| v == "1");
    php_headers::check_tested(version_id, &header, allow_untested)?;

    // Not running is fine here (the headers decide); ext-php-rs reports it itself.
    let php = std::env::var("PHP").unwrap_or_else(|_| "php".into());
    let php_version = Command::new(&php)
        .args(["-n", "-r", "echo PHP_VERSION_ID;"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<u32>()
                .ok()
        });
    php_headers::check_same_php(version_id, &header, php_version, &php)?;
    Ok(version_id)
}
