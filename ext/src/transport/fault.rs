//! Fault injection: named points in the transport's I/O paths that tests can
//! make fail, to prove what happens when `write`, `fsync`, `rename`,
//! `truncate`, `unlink`, `flock`, `connect`, `send` or `recv` fails.
//!
//! Compiled in unit tests and with the `failpoints` cargo feature (a separate
//! build for the PHP-level tests); in a release build [`check`] and
//! [`short_write`] are empty inline functions and cost nothing.
//!
//! A point is configured with `name=action[@skip][xtimes]`, several separated
//! by `;`, e.g. `spool.write=errno:28@2x1;writer.loop=panic`:
//! * `errno:N`: the call fails with OS error N (28 ENOSPC, 5 EIO, 30 EROFS, 13 EACCES);
//! * `short:N`: a write stores half of its bytes, then fails with error N;
//! * `panic`: the calling thread panics (for the writer thread's panic handling);
//! * `@skip`: let the first `skip` hits pass; `xtimes`: fire `times` times, then pass.
//!
//! PHP processes read `SCADA_FAILPOINTS` when their first transport starts
//! (failpoints builds only). Unit tests set points for their own thread with
//! [`set_local`], so tests running in parallel do not disturb each other.

use std::io;

#[cfg(any(test, feature = "failpoints"))]
mod imp {
    use std::cell::RefCell;
    use std::io;
    use std::sync::Mutex;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Action {
        Errno(i32),
        Short(i32),
        Panic,
    }

    #[derive(Debug, Clone)]
    pub struct Point {
        name: String,
        action: Action,
        skip: u64,
        times: Option<u64>,
    }

    static GLOBAL: Mutex<Vec<Point>> = Mutex::new(Vec::new());
    /// Code a unit test runs when its thread reaches a point: another
    /// process's action at exactly that moment (see [`super::on_local`]).
    #[cfg(test)]
    pub type Hook = (String, Box<dyn FnMut()>);
    thread_local! {
        static LOCAL: RefCell<Vec<Point>> = const { RefCell::new(Vec::new()) };
        #[cfg(test)]
        pub static HOOKS: RefCell<Vec<Hook>> = const { RefCell::new(Vec::new()) };
    }

    /// Why a failpoint spec was refused; each names the item at fault.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum SpecError {
        /// An item without `=`.
        NoAction(String),
        /// `xtimes` is not a number.
        BadCount(String),
        /// `@skip` is not a number.
        BadSkip(String),
        /// `errno:N` or `short:N` with N not a number.
        BadErrno(String),
        /// An action other than `errno:N`, `short:N`, `panic`.
        UnknownAction(String),
    }

    impl std::fmt::Display for SpecError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self {
                Self::NoAction(item) => write!(f, "failpoint {item:?}: expected name=action"),
                Self::BadCount(item) => write!(f, "bad count in {item:?}"),
                Self::BadSkip(item) => write!(f, "bad skip in {item:?}"),
                Self::BadErrno(item) => write!(f, "bad errno in {item:?}"),
                Self::UnknownAction(item) => write!(f, "failpoint {item:?}: unknown action"),
            }
        }
    }

    impl std::error::Error for SpecError {}

    pub fn parse(spec: &str) -> Result<Vec<Point>, SpecError> {
        let mut points = Vec::new();
        for item in spec.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let at_fault = || item.to_string();
            let (name, rest) = item
                .split_once('=')
                .ok_or_else(|| SpecError::NoAction(at_fault()))?;
            let (rest, times) = match rest.split_once('x') {
                Some((r, t)) => (
                    r,
                    Some(t.parse().map_err(|_| SpecError::BadCount(at_fault()))?),
                ),
                None => (rest, None),
            };
            let (action, skip) = match rest.split_once('@') {
                Some((a, s)) => (a, s.parse().map_err(|_| SpecError::BadSkip(at_fault()))?),
                None => (rest, 0),
            };
            let errno = |n: &str| n.parse().map_err(|_| SpecError::BadErrno(at_fault()));
            let action = match action.split_once(':') {
                Some(("errno", n)) => Action::Errno(errno(n)?),
                Some(("short", n)) => Action::Short(errno(n)?),
                None if action == "panic" => Action::Panic,
                _ => return Err(SpecError::UnknownAction(at_fault())),
            };
            points.push(Point {
                name: name.to_string(),
                action,
                skip,
                times,
            });
        }
        Ok(points)
    }

    pub fn set_global(spec: &str) -> Result<(), SpecError> {
        let points = parse(spec)?;
        *GLOBAL.lock().unwrap_or_else(|e| e.into_inner()) = points;
        Ok(())
    }

    #[cfg_attr(not(test), allow(dead_code))] // unit tests only
    pub fn set_local(spec: &str) -> Result<(), SpecError> {
        let points = parse(spec)?;
        LOCAL.with(|l| *l.borrow_mut() = points);
        Ok(())
    }

    /// Counts a hit on `name`; the action to take if the point fires.
    fn hit(points: &mut [Point], name: &str) -> Option<Action> {
        let p = points.iter_mut().find(|p| p.name == name)?;
        if p.skip > 0 {
            p.skip -= 1;
            return None;
        }
        match &mut p.times {
            Some(0) => None,
            Some(n) => {
                *n -= 1;
                Some(p.action)
            }
            None => Some(p.action),
        }
    }

    pub fn fire(name: &str) -> Option<Action> {
        #[cfg(test)]
        HOOKS.with(|h| {
            for (point, hook) in h.borrow_mut().iter_mut() {
                if point == name {
                    hook();
                }
            }
        });
        let local = LOCAL.with(|l| {
            let mut l = l.borrow_mut();
            if l.iter().any(|p| p.name == name) {
                Some(hit(&mut l, name))
            } else {
                None
            }
        });
        match local {
            Some(action) => action,
            None => hit(&mut GLOBAL.lock().unwrap_or_else(|e| e.into_inner()), name),
        }
    }

    pub fn error(errno: i32, name: &str) -> io::Error {
        let e = io::Error::from_raw_os_error(errno);
        io::Error::new(e.kind(), format!("{e} (failpoint {name})"))
    }

    #[allow(clippy::panic)] // the point of this action: tests of the panic handling
    pub fn panic(name: &str) -> ! {
        panic!("failpoint {name}")
    }
}

/// Fails when the point `name` is configured to fire now.
#[cfg(any(test, feature = "failpoints"))]
pub fn check(name: &str) -> io::Result<()> {
    match imp::fire(name) {
        None => Ok(()),
        Some(imp::Action::Errno(n) | imp::Action::Short(n)) => Err(imp::error(n, name)),
        Some(imp::Action::Panic) => imp::panic(name),
    }
}

/// For writes: `Some((stored, error))` when the point fires with `short:N`
/// (only `stored` bytes of `len` may be written, then the call fails), or
/// with `errno:N` (`stored` is 0).
#[cfg(any(test, feature = "failpoints"))]
pub fn short_write(name: &str, len: usize) -> Option<(usize, io::Error)> {
    match imp::fire(name)? {
        imp::Action::Errno(n) => Some((0, imp::error(n, name))),
        imp::Action::Short(n) => Some((len / 2, imp::error(n, name))),
        imp::Action::Panic => imp::panic(name),
    }
}

/// Configures points for the whole process (from `SCADA_FAILPOINTS`).
#[cfg(any(test, feature = "failpoints"))]
pub fn configure_from_env() {
    if let Ok(spec) = std::env::var("SCADA_FAILPOINTS") {
        if let Err(e) = imp::set_global(&spec) {
            eprintln!("scada_broadcast: SCADA_FAILPOINTS: {e}");
        }
    }
}

/// Configures points for the calling thread only (unit tests); also
/// removes the thread's hooks.
#[cfg(test)]
pub fn set_local(spec: &str) {
    if let Err(e) = imp::set_local(spec) {
        panic!("{e}");
    }
    imp::HOOKS.with(|h| h.borrow_mut().clear());
}

/// Runs `hook` each time the calling thread reaches point `name`, before the
/// point's own action (unit tests: what another process does at that moment).
#[cfg(test)]
pub fn on_local(name: &str, hook: impl FnMut() + 'static) {
    imp::HOOKS.with(|h| h.borrow_mut().push((name.to_string(), Box::new(hook))));
}

#[cfg(not(any(test, feature = "failpoints")))]
#[inline(always)]
pub fn check(_name: &str) -> io::Result<()> {
    Ok(())
}

#[cfg(not(any(test, feature = "failpoints")))]
#[inline(always)]
pub fn short_write(_name: &str, _len: usize) -> Option<(usize, io::Error)> {
    None
}

#[cfg(not(any(test, feature = "failpoints")))]
#[inline(always)]
pub fn configure_from_env() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_fire_after_skip_for_times_then_pass() {
        set_local("a.b=errno:28@1x2;c=short:5");
        assert!(check("a.b").is_ok(), "skipped");
        let e = check("a.b").unwrap_err();
        assert_eq!(e.raw_os_error(), None);
        assert!(e.to_string().contains("No space left on device"), "{e}");
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        assert!(check("a.b").is_err());
        assert!(check("a.b").is_ok(), "fired twice, then passes");
        assert!(check("unknown").is_ok());
        let (stored, e) = short_write("c", 100).unwrap();
        assert_eq!(stored, 50);
        assert!(e.to_string().contains("Input/output error"));
        set_local("");
        assert!(check("c").is_ok());
    }

    #[test]
    fn bad_specs_are_refused() {
        use imp::SpecError::*;
        for (bad, why) in [
            ("noequals", NoAction("noequals".into())),
            ("a=errno:q", BadErrno("a=errno:q".into())),
            ("a=short:q", BadErrno("a=short:q".into())),
            ("a=boom", UnknownAction("a=boom".into())),
            ("a=errno:5@z", BadSkip("a=errno:5@z".into())),
            ("a=errno:5xq", BadCount("a=errno:5xq".into())),
        ] {
            assert_eq!(imp::parse(bad).err(), Some(why), "{bad}");
        }
        assert_eq!(
            imp::parse("ok=panic; a=boom").err().map(|e| e.to_string()),
            Some("failpoint \"a=boom\": unknown action".into())
        );
    }
}
