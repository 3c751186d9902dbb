//! Which PHP the extension is compiled against, read from the headers
//! ext-php-rs generates its bindings from (`php-config --includes`), never
//! guessed: the zval layout and every version-dependent code path follow it.
//!
//! Shared by `build.rs` and its tests (`tests/build_script.rs`).

use std::fmt;
use std::path::{Path, PathBuf};

/// The oldest PHP the extension supports (ext-php-rs 0.16's minimum).
pub const MIN_VERSION_ID: u32 = 80100;

/// The newest PHP minor the extension is tested on (8.4). Some Zend values
/// the extension needs are not in ext-php-rs's bindings and are written out
/// in its code as zend_types.h / zend_hash.h define them for 8.1-8.4
/// (`GC_NOT_COLLECTABLE`, `GC_INFO_MASK` in held.rs, `HASH_FLAG_PACKED` in
/// encode.rs): a newer PHP may change them, so building against one stops
/// unless [`ALLOW_UNTESTED_ENV`] is set.
pub const MAX_TESTED_VERSION_ID: u32 = 80499;

/// Set to `1` to build against a PHP newer than [`MAX_TESTED_VERSION_ID`] anyway.
pub const ALLOW_UNTESTED_ENV: &str = "SCADA_ALLOW_UNTESTED_PHP";

/// Why the build cannot tell which PHP it compiles against.
#[derive(Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// `php-config` could not be run (not installed, or `PHP_CONFIG` is wrong).
    PhpConfig { program: String, reason: String },
    /// None of `php-config --includes` holds `main/php_version.h`.
    NoVersionHeader { includes: String },
    /// `main/php_version.h` has no readable `PHP_VERSION_ID`.
    NoVersionId { header: PathBuf },
    /// Older than [`MIN_VERSION_ID`].
    TooOld { version_id: u32, header: PathBuf },
    /// Newer than [`MAX_TESTED_VERSION_ID`], and [`ALLOW_UNTESTED_ENV`] not set.
    Untested { version_id: u32, header: PathBuf },
    /// `php` on PATH is another PHP than the headers' (ext-php-rs reads the
    /// API version from `php -i` and the structs from the headers).
    Mismatch {
        headers: u32,
        header: PathBuf,
        php: u32,
        php_program: String,
    },
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HINT: &str =
            "install the PHP development headers of the PHP that will load the extension \
             (Debian: php8.x-dev) or point PHP_CONFIG (and PHP) at that installation";
        match self {
            Self::PhpConfig { program, reason } => write!(
                f,
                "cannot run `{program} --includes` ({reason}); the extension's memory layout depends on \
                 the PHP headers it is compiled against: {HINT}"
            ),
            Self::NoVersionHeader { includes } => write!(
                f,
                "no main/php_version.h in the include directories `php-config --includes` gave ({includes}): {HINT}"
            ),
            Self::NoVersionId { header } => write!(
                f,
                "{} has no `#define PHP_VERSION_ID <number>`; cannot tell which PHP this is: {HINT}",
                header.display()
            ),
            Self::TooOld { version_id, header } => write!(
                f,
                "the headers in {} are PHP {} (PHP_VERSION_ID {version_id}); the extension needs PHP {} or newer",
                header.display(),
                dotted(*version_id),
                dotted(MIN_VERSION_ID)
            ),
            Self::Untested { version_id, header } => write!(
                f,
                "the headers in {} are PHP {} (PHP_VERSION_ID {version_id}); the extension is tested up to PHP {}.{} \
                 and writes out Zend constants (GC_NOT_COLLECTABLE, GC_INFO_MASK, HASH_FLAG_PACKED) as 8.1-8.4 \
                 define them. Check them in that PHP's zend_types.h / zend_hash.h, then build with \
                 {ALLOW_UNTESTED_ENV}=1 to try it",
                header.display(),
                dotted(*version_id),
                MAX_TESTED_VERSION_ID / 10000,
                MAX_TESTED_VERSION_ID / 100 % 100
            ),
            Self::Mismatch {
                headers,
                header,
                php,
                php_program,
            } => write!(
                f,
                "`{php_program}` is PHP {} but the headers ({}) are PHP {}: the extension would be built for one \
                 and declared for the other. Set PHP and PHP_CONFIG to the same installation \
                 (e.g. PHP=/usr/bin/php8.4 PHP_CONFIG=/usr/bin/php-config8.4)",
                dotted(*php),
                header.display(),
                dotted(*headers)
            ),
        }
    }
}

/// `80427` → `8.4.27`.
pub fn dotted(version_id: u32) -> String {
    format!(
        "{}.{}.{}",
        version_id / 10000,
        version_id / 100 % 100,
        version_id % 100
    )
}

/// The include directories of `php-config --includes` output (`-I/a -I/b`).
pub fn include_dirs(includes: &str) -> Vec<PathBuf> {
    includes
        .split_whitespace()
        .map(|arg| PathBuf::from(arg.strip_prefix("-I").unwrap_or(arg)))
        .collect()
}

/// `main/php_version.h` under the first include directory that has it.
pub fn version_header(includes: &str) -> Result<PathBuf, HeaderError> {
    include_dirs(includes)
        .into_iter()
        .map(|dir| dir.join("main").join("php_version.h"))
        .find(|p| p.is_file())
        .ok_or_else(|| HeaderError::NoVersionHeader {
            includes: includes.trim().to_string(),
        })
}

/// `PHP_VERSION_ID` from the text of `php_version.h`.
pub fn parse_version_id(header_text: &str) -> Option<u32> {
    header_text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("#define"), Some("PHP_VERSION_ID"), Some(n)) => n.parse().ok(),
            _ => None,
        }
    })
}

/// Reads and checks the headers' PHP version.
pub fn headers_version(header: &Path) -> Result<u32, HeaderError> {
    let text = std::fs::read_to_string(header).map_err(|_| HeaderError::NoVersionId {
        header: header.to_path_buf(),
    })?;
    let version_id = parse_version_id(&text).ok_or_else(|| HeaderError::NoVersionId {
        header: header.to_path_buf(),
    })?;
    if version_id < MIN_VERSION_ID {
        return Err(HeaderError::TooOld {
            version_id,
            header: header.to_path_buf(),
        });
    }
    Ok(version_id)
}

/// A PHP newer than the tested ones only with the explicit opt-in.
pub fn check_tested(
    version_id: u32,
    header: &Path,
    allow_untested: bool,
) -> Result<(), HeaderError> {
    if version_id > MAX_TESTED_VERSION_ID && !allow_untested {
        return Err(HeaderError::Untested {
            version_id,
            header: header.to_path_buf(),
        });
    }
    Ok(())
}

/// A running `php` must be the headers' major.minor (patch levels may differ).
pub fn check_same_php(
    headers: u32,
    header: &Path,
    php: Option<u32>,
    php_program: &str,
) -> Result<(), HeaderError> {
    match php {
        Some(php) if php / 100 != headers / 100 => Err(HeaderError::Mismatch {
            headers,
            header: header.to_path_buf(),
            php,
            php_program: php_program.to_string(),
        }),
        _ => Ok(()),
    }
}

/// The cfgs the extension's code branches on, for a `PHP_VERSION_ID`.
pub fn cfgs(version_id: u32) -> Vec<&'static str> {
    let mut cfgs = Vec::new();
    // PHP 8.2 stores packed arrays as bare zvals (`arPacked`) instead of buckets.
    if version_id >= 80200 {
        cfgs.push("php_packed_zvals");
    }
    cfgs
}

/// Every cfg [`cfgs`] may emit (for `rustc-check-cfg`).
pub const ALL_CFGS: &[&str] = &["php_packed_zvals"];
