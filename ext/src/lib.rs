//! The `scada_broadcast` PHP extension.
//!
//! Gives PHP `Scada\Broadcasting\ScadaBroadcastingService`, whose calls
//! validate and encode an event and hand it to the local scada-broadcast
//! sidecar without waiting for it, in about a microsecond.
//!
//! # Layout
//! - [`service`]: `ScadaBroadcastingService`: argument validation, payload shapes, stats.
//! - [`signer`]: `PusherSigner`: channel/user authorization, webhooks, API request signing.
//! - [`encode`]: PHP values → JSON bytes identical to `json_encode()`.
//! - [`held`]: our own reference on each PHP array while it is read, so user code cannot free it.
//! - [`options`]: php.ini directives, environment and constructor options.
//! - [`transport`]: outbox, writer thread, socket and spool I/O.
//! - [`fork`]: generation tracking so forked children never inherit state.
//! - [`errors`]: the exception classes.
//!
//! Nothing starts at module startup: the writer thread and its socket are
//! created on the first event of each process (and again in a forked child).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod declared;
pub mod encode;
pub mod errors;
pub mod fork;
pub mod held;
pub mod options;
pub mod service;
pub mod signer;
pub mod transport;

use ext_php_rs::prelude::*;
use ext_php_rs::zend::{IniEntryDef, ModuleEntry};
use ext_php_rs::{info_table_end, info_table_row, info_table_start};

/// MINIT: register php.ini directives. Nothing else starts here.
pub fn startup(_ty: i32, module_number: i32) -> i32 {
    IniEntryDef::register(options::INI_ENTRIES.as_slice(), module_number);
    0
}

/// MSHUTDOWN: deliver or spool what this process still holds.
unsafe extern "C" fn module_shutdown(_ty: i32, _module_number: i32) -> i32 {
    // A panic must not unwind into PHP's shutdown sequence.
    let _ = std::panic::catch_unwind(transport::shutdown_all);
    0
}

extern "C" fn module_info(_module: *mut ModuleEntry) {
    info_table_start!();
    info_table_row!("scada_broadcast support", "enabled");
    info_table_row!("version", env!("CARGO_PKG_VERSION"));
    info_table_row!(
        "wire format version",
        scada_core::frame::VERSION.to_string()
    );
    info_table_end!();
}

#[php_module]
#[php(startup = "startup")]
pub fn get_module(module: ModuleBuilder) -> ModuleBuilder {
    module
        .name("scada_broadcast")
        .class::<errors::InvalidBroadcastException>()
        .class::<errors::BroadcastException>()
        .class::<service::ScadaBroadcastingService>()
        .class::<signer::PusherSigner>()
        .shutdown_function(module_shutdown)
        .info_function(module_info)
}
