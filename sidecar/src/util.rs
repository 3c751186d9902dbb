//! Small helpers several stages share: a mutex lock that survives a
//! panicked holder, the wall clock in microseconds, an optional deadline.

use std::sync::{Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Locks `m`, also after a thread panicked holding it: the state guarded
/// here (indexes, counters) stays consistent at every step, and a panic must
/// not take every later caller down with it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Microseconds since the Unix epoch (0 if the clock is before it).
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Sleeps until `deadline`; forever without one (a `select!` branch that
/// never fires).
pub async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
