//! Fork safety.
//!
//! PHP-FPM, Horizon and `pcntl_fork()` copy a process that may have our writer
//! thread, its socket and its spool file. The child gets none of the threads,
//! so everything the parent's writer owns is dead weight in the child, and a
//! mutex it held at the moment of the fork stays locked forever.
//!
//! The rule: state belongs to a *generation*. A `pthread_atfork` child handler
//! bumps the generation and closes the file descriptors the parent's transport
//! registered here (so the child does not keep the parent's connection or spool
//! lock alive). Code that finds state from an older generation builds new state
//! and never touches, locks or drops the old one. Events queued before the fork
//! therefore stay with the parent and are never sent twice.

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Once;

static GENERATION: AtomicU64 = AtomicU64::new(1);
static INSTALL: Once = Once::new();

/// Descriptors that a forked child must close.
static INHERITED_FDS: [AtomicI32; 32] = [const { AtomicI32::new(-1) }; 32];

/// The current process generation (changes in a forked child).
#[inline]
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

/// Installs the fork handler once per process image.
pub fn install() {
    INSTALL.call_once(|| {
        // SAFETY: `on_fork_child` is async-signal-safe (atomics and close(2)),
        // and the library is linked with `-z nodelete`, so the handler stays
        // mapped for the life of the process.
        unsafe {
            libc::pthread_atfork(None, None, Some(on_fork_child));
        }
    });
}

extern "C" fn on_fork_child() {
    GENERATION.fetch_add(1, Ordering::AcqRel);
    for slot in &INHERITED_FDS {
        let fd = slot.swap(-1, Ordering::AcqRel);
        if fd >= 0 {
            // SAFETY: the fd was registered by its owner and is open in the
            // child (inherited); nothing in the child will use it again.
            unsafe {
                libc::close(fd);
            }
        }
    }
}

/// A registration that makes a forked child close `fd`. Call
/// [`FdRegistration::release`] before the owner closes the descriptor.
#[derive(Debug)]
pub struct FdRegistration {
    slot: Option<usize>,
    fd: i32,
}

impl FdRegistration {
    pub fn new(fd: i32) -> Self {
        let slot = INHERITED_FDS.iter().position(|s| {
            s.compare_exchange(-1, fd, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        });
        Self { slot, fd }
    }

    pub fn release(&mut self) {
        if let Some(i) = self.slot.take() {
            let _ =
                INHERITED_FDS[i].compare_exchange(self.fd, -1, Ordering::AcqRel, Ordering::Acquire);
        }
    }
}

impl Drop for FdRegistration {
    fn drop(&mut self) {
        self.release();
    }
}

/// A random 64-bit id for this process generation (the `origin` of event ids).
pub fn new_origin() -> u64 {
    let mut bytes = [0u8; 8];
    // SAFETY: writes at most 8 bytes into `bytes`.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), libc::GRND_NONBLOCK) };
    if n == bytes.len() as isize {
        let v = u64::from_le_bytes(bytes);
        if v != 0 {
            return v;
        }
    }
    // Fallback: time, pid and an address, mixed.
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let pid = std::process::id() as u64;
    let mut x = t ^ (pid << 32) ^ (&bytes as *const _ as u64);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x | 1
}
