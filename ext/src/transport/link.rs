//! The link to the sidecar: connect, handshake, reconnect with backoff.
//!
//! ```text
//! Down ──connect()──► Handshaking ──Welcome──► Up
//!   ▲                      │ timeout, error        │ error, hang-up, bad ack
//!   └──────────────────────┴───────────────────────┘ (next attempt after the backoff)
//! ```
//! Nothing here waits: connecting is non-blocking, the handshake completes
//! when the writer's `poll` sees the socket readable.

use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use scada_core::message::Hello;

use super::connection::Connection;
use super::fault;

pub const BACKOFF_MIN: Duration = Duration::from_millis(20);
pub const BACKOFF_MAX: Duration = Duration::from_secs(1);
const CLIENT: &str = concat!("scada_broadcast/", env!("CARGO_PKG_VERSION"));

/// Exponential backoff between connection attempts.
#[derive(Debug)]
pub struct Backoff {
    next_at: Instant,
    delay: Duration,
}

impl Backoff {
    pub fn new(now: Instant) -> Self {
        Self {
            next_at: now,
            delay: BACKOFF_MIN,
        }
    }

    pub fn due(&self, now: Instant) -> bool {
        now >= self.next_at
    }

    pub fn next_at(&self) -> Instant {
        self.next_at
    }

    /// An attempt failed (or a connection was lost): wait, twice as long next time.
    pub fn failed(&mut self, now: Instant) {
        self.next_at = now + self.delay;
        self.delay = (self.delay * 2).min(BACKOFF_MAX);
    }

    /// Connected: the next loss retries quickly again.
    pub fn reset(&mut self) {
        self.delay = BACKOFF_MIN;
    }
}

enum State {
    Down,
    Handshaking { conn: Connection, since: Instant },
    Up(Connection),
}

/// What reading from the socket brought.
#[derive(Debug, PartialEq, Eq)]
pub enum Readable {
    Nothing,
    /// The handshake completed.
    Connected,
    /// The cumulative ack count.
    Acked(u64),
}

pub struct Link {
    state: State,
    socket: PathBuf,
    origin: u64,
    pid: u32,
    connect_timeout: Duration,
    backoff: Backoff,
}

impl Link {
    pub fn new(socket: PathBuf, origin: u64, pid: u32, connect_timeout: Duration) -> Self {
        Self {
            state: State::Down,
            socket,
            origin,
            pid,
            connect_timeout,
            backoff: Backoff::new(Instant::now()),
        }
    }

    pub fn is_up(&self) -> bool {
        matches!(self.state, State::Up(_))
    }

    pub fn is_down(&self) -> bool {
        matches!(self.state, State::Down)
    }

    pub fn socket(&self) -> &std::path::Path {
        &self.socket
    }

    /// Starts connecting when down and the backoff allows it.
    pub fn try_connect(&mut self, now: Instant) -> io::Result<()> {
        if !self.is_down() || !self.backoff.due(now) {
            return Ok(());
        }
        let hello = Hello {
            origin: self.origin,
            pid: self.pid,
            client: CLIENT,
        };
        match fault::check("socket.connect").and_then(|()| Connection::start(&self.socket, &hello))
        {
            Ok(conn) => {
                self.state = State::Handshaking { conn, since: now };
                Ok(())
            }
            Err(e) => {
                self.backoff.failed(now);
                Err(e)
            }
        }
    }

    /// A handshake that took too long counts as a failed attempt.
    pub fn check_handshake(&mut self, now: Instant) -> io::Result<()> {
        if let State::Handshaking { since, .. } = self.state {
            if now.duration_since(since) > self.connect_timeout {
                self.drop_connection(now);
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "sidecar did not answer the handshake",
                ));
            }
        }
        Ok(())
    }

    /// Drops the connection (if any); the next attempt waits for the backoff.
    pub fn drop_connection(&mut self, now: Instant) {
        if !self.is_down() {
            self.state = State::Down;
            self.backoff.failed(now);
        }
    }

    /// Writes as much of `buf` as the socket takes now (0 when full or not up).
    pub fn write(&self, buf: &[u8]) -> io::Result<usize> {
        match &self.state {
            State::Up(conn) => {
                if let Some((stored, e)) = fault::short_write("socket.send", buf.len()) {
                    let n = conn.write_some(&buf[..stored])?;
                    return if n == 0 { Err(e) } else { Ok(n) };
                }
                conn.write_some(buf)
            }
            _ => Ok(0),
        }
    }

    /// Reads what the socket has: the handshake's answer or acks. An error
    /// means the connection is lost (the caller drops it).
    pub fn read(&mut self) -> io::Result<Readable> {
        fault::check("socket.recv")?;
        match &mut self.state {
            State::Up(conn) => Ok(conn.read_acks()?.map_or(Readable::Nothing, Readable::Acked)),
            State::Handshaking { conn, .. } => {
                if !conn.poll_welcome()? {
                    return Ok(Readable::Nothing);
                }
                if let State::Handshaking { conn, .. } =
                    std::mem::replace(&mut self.state, State::Down)
                {
                    self.state = State::Up(conn);
                }
                self.backoff.reset();
                Ok(Readable::Connected)
            }
            State::Down => Ok(Readable::Nothing),
        }
    }

    /// The descriptor and events to poll for (`None` when down).
    pub fn poll_fd(&self, want_write: bool) -> Option<(i32, libc::c_short)> {
        match &self.state {
            State::Up(conn) => {
                let mut events = libc::POLLIN;
                if want_write {
                    events |= libc::POLLOUT;
                }
                Some((conn.raw(), events))
            }
            State::Handshaking { conn, .. } => Some((conn.raw(), libc::POLLIN)),
            State::Down => None,
        }
    }

    /// When the link next needs attention by itself: the end of the backoff
    /// (if `want_connect`) or of the handshake's time.
    pub fn next_timer(&self, want_connect: bool) -> Option<Instant> {
        match &self.state {
            State::Down if want_connect => Some(self.backoff.next_at()),
            State::Handshaking { since, .. } => Some(*since + self.connect_timeout),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_limit_and_resets_after_a_connection() {
        let t0 = Instant::now();
        let mut b = Backoff::new(t0);
        assert!(b.due(t0));
        b.failed(t0);
        assert_eq!(b.next_at() - t0, BACKOFF_MIN);
        assert!(!b.due(t0));
        let mut delays = Vec::new();
        for _ in 0..10 {
            let before = b.next_at();
            b.failed(before);
            delays.push(b.next_at() - before);
        }
        assert_eq!(delays[0], BACKOFF_MIN * 2);
        assert_eq!(*delays.last().unwrap(), BACKOFF_MAX);
        b.reset();
        let now = b.next_at();
        b.failed(now);
        assert_eq!(b.next_at() - now, BACKOFF_MIN);
    }

    #[test]
    fn connecting_to_a_missing_socket_fails_and_backs_off() {
        let dir = std::env::temp_dir().join(format!("scada-link-{}", std::process::id()));
        let mut link = Link::new(dir.join("none.sock"), 1, 1, Duration::from_secs(1));
        let now = Instant::now();
        assert!(link.try_connect(now).is_err());
        assert!(link.is_down());
        // Within the backoff no attempt is made (and so no error).
        assert!(link.try_connect(now).is_ok());
        assert_eq!(link.next_timer(true), Some(now + BACKOFF_MIN));
        assert_eq!(link.next_timer(false), None);
    }

    #[test]
    fn an_injected_connect_failure_is_an_attempt_like_any_other() {
        fault::set_local("socket.connect=errno:13x1");
        let mut link = Link::new("/nonexistent/s.sock".into(), 1, 1, Duration::from_secs(1));
        let e = link.try_connect(Instant::now()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert!(link.is_down());
        fault::set_local("");
    }
}
