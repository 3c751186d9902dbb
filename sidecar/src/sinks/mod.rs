//! Destinations. Each sink reads the journal at its own cursor
//! ([`reader::JournalReader`]), so one slow or failed destination never holds
//! up another, and each resumes where it stopped after a restart.
//!
//! One folder per destination, one file per role:
//! `config` (in `crate::config`), `request_builder` (pure encoding, tested
//! without I/O), `service` (the I/O and its retry classification), `sink`
//! (the loop: read → build → send → commit).

pub mod pusher;
pub mod reader;
pub mod redis;
