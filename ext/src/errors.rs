//! Exceptions the extension throws. Every message names the method, the
//! argument and, inside arrays, the path to the bad value.

use ext_php_rs::exception::PhpException;
use ext_php_rs::prelude::*;
use ext_php_rs::zend::{ce, ClassEntry};

// SPL's class entries, exported by the PHP binary (PHPAPI) as C extensions
// use them. Looking classes up by name does not work during MINIT: the
// executor's class table does not exist yet.
unsafe extern "C" {
    static spl_ce_InvalidArgumentException: *mut ClassEntry;
    static spl_ce_RuntimeException: *mut ClassEntry;
}

fn invalid_argument_exception() -> &'static ClassEntry {
    // SAFETY: SPL is always compiled in and registers this class before any
    // dynamically loaded extension starts.
    unsafe { spl_ce_InvalidArgumentException.as_ref() }.unwrap_or_else(ce::exception)
}

fn runtime_exception() -> &'static ClassEntry {
    // SAFETY: as above.
    unsafe { spl_ce_RuntimeException.as_ref() }.unwrap_or_else(ce::exception)
}

/// Thrown for invalid arguments: channel or event names, payload values,
/// sizes, options. Extends `\InvalidArgumentException`.
#[php_class]
#[php(name = "Scada\\Broadcasting\\InvalidBroadcastException")]
#[php(extends(ce = invalid_argument_exception, stub = "\\InvalidArgumentException"))]
#[derive(Default)]
pub struct InvalidBroadcastException;

/// Thrown when the extension cannot work at all (for example it cannot
/// create its wake-up descriptor). Extends `\RuntimeException`.
#[php_class]
#[php(name = "Scada\\Broadcasting\\BroadcastException")]
#[php(extends(ce = runtime_exception, stub = "\\RuntimeException"))]
#[derive(Default)]
pub struct BroadcastException;

// Only the extension creates these (the engine builds them without a
// constructor when it throws). ext-php-rs would give them a public
// `__construct()` that only throws "You cannot instantiate this class", so
// they declare a private one: reflection, the stubs and PHPStan then say what
// PHP allows, `new` is an `\Error` naming the private constructor.
#[php_impl]
impl InvalidBroadcastException {
    #[php(vis = "private")]
    pub fn __construct() -> Self {
        Self
    }
}

#[php_impl]
impl BroadcastException {
    #[php(vis = "private")]
    pub fn __construct() -> Self {
        Self
    }
}

pub fn invalid(message: String) -> PhpException {
    PhpException::from_class::<InvalidBroadcastException>(printable(message))
}

pub fn runtime(message: String) -> PhpException {
    PhpException::from_class::<BroadcastException>(printable(message))
}

/// A `\TypeError`, for arguments of the wrong PHP type.
pub fn type_error(message: String) -> PhpException {
    PhpException::new(printable(message), 0, ce::type_error())
}

/// Messages quote user input, and a NUL byte would make the exception
/// impossible to throw (ext-php-rs builds a C string): escape it.
fn printable(message: String) -> String {
    if message.contains('\0') {
        message.replace('\0', "\\0")
    } else {
        message
    }
}
