//! One PHP process's connection: handshake, frames in, acks out.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use scada_core::frame::{Frame, FrameKind, MAX_BODY_LEN};
use scada_core::message::{Ack, Hello, Welcome};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::watch;
use tracing::{debug, warn};

use super::{AcceptError, Ingest};
use crate::failpoint;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Says once per minute that the disk budget is full (not once per connection).
fn warn_budget_once() {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if now.saturating_sub(LAST.swap(now, Ordering::Relaxed)) >= 60 {
        warn!("journal disk budget (journal.max_bytes) is full: destinations are behind; pausing ingest, PHP processes spool and apply their overflow policy");
    }
}
const READ_CHUNK: usize = 256 * 1024;

/// Serves one client until it disconnects, breaks the protocol, or shutdown.
pub async fn serve(
    mut stream: UnixStream,
    ingest: Arc<Ingest>,
    mut shutdown: watch::Receiver<bool>,
) {
    let m = &ingest.metrics.ingest;
    m.connections_active.inc();
    m.connections_total.inc();
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&mut stream, &mut buf)).await {
        Ok(Ok((origin, pid, client))) => {
            debug!(origin = %format_args!("{origin:016x}"), pid, client, "client connected");
            ingest.connected(origin);
            if let Err(e) = pump(&mut stream, &mut buf, &ingest, &mut shutdown).await {
                debug!(pid, error = %e, "client connection ended");
            }
            ingest.disconnected(origin);
        }
        // Connected and closed without a byte: a liveness probe, not an error.
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof && buf.is_empty() => {
            debug!("connection closed before its handshake (probe)");
        }
        Ok(Err(e)) => {
            m.protocol_errors.inc();
            warn!(error = %e, "handshake failed; closing connection");
        }
        Err(_) => debug!("no handshake within {HANDSHAKE_TIMEOUT:?}; closing connection"),
    }
    m.connections_active.sub(1);
}

async fn handshake(
    stream: &mut UnixStream,
    buf: &mut BytesMut,
) -> std::io::Result<(u64, u32, String)> {
    loop {
        match Frame::parse(buf, MAX_BODY_LEN) {
            Ok(Some(frame)) => {
                if frame.kind != FrameKind::Hello {
                    return Err(std::io::Error::other(format!(
                        "first frame must be Hello, got {:?}",
                        frame.kind
                    )));
                }
                let hello = Hello::decode(frame.payload).map_err(std::io::Error::other)?;
                let out = (hello.origin, hello.pid, hello.client.to_string());
                let len = frame.len();
                buf.advance(len);
                let mut reply = Vec::new();
                Welcome {
                    max_frame: MAX_BODY_LEN as u32,
                }
                .encode(&mut reply)
                .map_err(std::io::Error::other)?;
                stream.write_all(&reply).await?;
                return Ok(out);
            }
            Ok(None) => {}
            Err(e) => return Err(std::io::Error::other(e)),
        }
        if stream.read_buf(buf).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed before handshake",
            ));
        }
    }
}

/// Offers the frames in `buf` to ingest: on Ok the processed bytes are
/// removed from `buf`, on Err it is left as it was.
async fn offer(ingest: &Arc<Ingest>, buf: &mut BytesMut) -> Result<super::Accepted, AcceptError> {
    if !ingest.journal.waits_for_disk() {
        let accepted = ingest.accept(buf)?;
        buf.advance(accepted.consumed);
        return Ok(accepted);
    }
    // The append waits for the disk: off the runtime, with the bytes.
    let chunk = buf.split().freeze();
    let result = ingest.accept_async(chunk.clone()).await;
    let keep = result.as_ref().map_or(0, |a| a.consumed);
    buf.extend_from_slice(&chunk[keep..]);
    result
}

/// Retry delays while the journal cannot take a chunk.
const PAUSE_MIN: Duration = Duration::from_millis(20);
const PAUSE_MAX: Duration = Duration::from_secs(2);

async fn pump(
    stream: &mut UnixStream,
    buf: &mut BytesMut,
    ingest: &Arc<Ingest>,
    shutdown: &mut watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut frames_total: u64 = 0;
    let mut ack = Vec::with_capacity(32);
    let mut pause = PAUSE_MIN;
    loop {
        if !buf.is_empty() {
            // The chunk is offered until the journal takes it; nothing more
            // is read meanwhile, so the client's unacknowledged budget fills
            // and it spools (or refuses, by its overflow policy) on its side.
            let accepted = match offer(ingest, buf).await {
                Ok(a) => {
                    pause = PAUSE_MIN;
                    a
                }
                Err(AcceptError::Journal(e)) => {
                    if pause == PAUSE_MIN {
                        ingest.metrics.ingest.journal_pauses.inc();
                    }
                    debug!(error = %e, retry_in = ?pause, "journal cannot take this chunk; not acknowledged, retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = shutdown.changed() => return Ok(()),
                    }
                    pause = (pause * 2).min(PAUSE_MAX);
                    continue;
                }
            };
            if accepted.frames > 0 {
                frames_total += accepted.frames;
                ack.clear();
                Ack {
                    frames: frames_total,
                    flags: 0,
                }
                .encode(&mut ack)
                .map_err(std::io::Error::other)?;
                // A lost ack costs a resend, which is dropped as a duplicate.
                failpoint::io(failpoint::ACK_WRITE)?;
                stream.write_all(&ack).await?;
            }
            if let Some(e) = accepted.error {
                warn!(error = %e, "unreadable frame from client; closing its connection");
                return Err(std::io::Error::other(e));
            }
        }
        if ingest.over_budget() {
            ingest.metrics.ingest.budget_pauses.inc();
            warn_budget_once();
            while ingest.over_budget() {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                    _ = shutdown.changed() => return Ok(()),
                }
            }
        }
        buf.reserve(READ_CHUNK);
        tokio::select! {
            r = stream.read_buf(buf) => {
                if r? == 0 {
                    return Ok(());
                }
            }
            _ = shutdown.changed() => return Ok(()),
        }
    }
}
