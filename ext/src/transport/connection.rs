//! One connection to the sidecar: handshake, non-blocking writes, acks.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use scada_core::frame::{Frame, FrameKind, MAX_BODY_LEN};
use scada_core::message::{Ack, Hello, Welcome};

use super::sys;
use crate::fork::FdRegistration;

#[derive(Debug)]
pub struct Connection {
    fd: OwnedFd,
    _registration: FdRegistration,
    rbuf: Vec<u8>,
}

fn protocol_error(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

impl Connection {
    /// Connects and sends the handshake; never waits. The connection is usable
    /// once [`Connection::poll_welcome`] returns true.
    pub fn start(path: &Path, hello: &Hello<'_>) -> io::Result<Self> {
        let fd = sys::unix_connect(path)?;
        let conn = Self {
            _registration: FdRegistration::new(fd.as_raw_fd()),
            fd,
            rbuf: Vec::with_capacity(256),
        };
        let mut out = Vec::with_capacity(64);
        hello
            .encode(&mut out)
            .map_err(|e| protocol_error(e.to_string()))?;
        // A fresh socket has room for a 50-byte hello; anything else is a failure.
        if conn.write_some(&out)? != out.len() {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "sidecar not accepting data",
            ));
        }
        Ok(conn)
    }

    /// Reads what arrived; true once the sidecar's Welcome is in.
    pub fn poll_welcome(&mut self) -> io::Result<bool> {
        self.fill()?;
        match self.next_frame()? {
            Some((FrameKind::Welcome, payload)) => {
                Welcome::decode(&payload).map_err(|e| protocol_error(e.to_string()))?;
                Ok(true)
            }
            Some((kind, _)) => Err(protocol_error(format!(
                "expected Welcome from the sidecar, got {kind:?}"
            ))),
            None => Ok(false),
        }
    }

    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Writes as much of `buf` as the socket takes now. `Ok(n)` may be short.
    pub fn write_some(&self, buf: &[u8]) -> io::Result<usize> {
        match sys::send(self.raw(), buf) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Reads whatever arrived; `Err` when the sidecar closed the connection.
    fn fill(&mut self) -> io::Result<()> {
        let mut tmp = [0u8; 4096];
        loop {
            match sys::recv(self.raw(), &mut tmp) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "sidecar closed the connection",
                    ))
                }
                Ok(n) => {
                    self.rbuf.extend_from_slice(&tmp[..n]);
                    if self.rbuf.len() > 64 * 1024 {
                        return Err(protocol_error("sidecar sent too much data".into()));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    fn next_frame(&mut self) -> io::Result<Option<(FrameKind, Vec<u8>)>> {
        match Frame::parse(&self.rbuf, MAX_BODY_LEN) {
            Ok(Some(f)) => {
                let item = (f.kind, f.payload.to_vec());
                let len = f.len();
                self.rbuf.drain(..len);
                Ok(Some(item))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(protocol_error(format!("bad frame from sidecar: {e}"))),
        }
    }

    /// Reads pending acks; returns the highest cumulative frame count seen.
    pub fn read_acks(&mut self) -> io::Result<Option<u64>> {
        self.fill()?;
        let mut latest = None;
        while let Some((kind, payload)) = self.next_frame()? {
            if kind == FrameKind::Ack {
                let ack = Ack::decode(&payload).map_err(|e| protocol_error(e.to_string()))?;
                latest = Some(latest.map_or(ack.frames, |l: u64| l.max(ack.frames)));
            }
        }
        Ok(latest)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Stop the child-closes-this registration before the fd number is freed.
        self._registration.release();
    }
}
