//! The receive loop of one UDP socket: batched reads, a batch fed to the engine,
//! its answers sent together.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

use super::mmsg::{self, RecvBatch};
use super::udp_io::UdpIo;
use super::{now_ms, Outbox, Shared};
use crate::engine::{DropReason, Received, Transmit, Transport};

/// Transmits the engine may accumulate before they are sent: a batch of 32 held
/// until its last datagram is processed would add that whole batch's processing
/// time to the first one's latency; 8 keeps most of the per-call saving.
pub(super) const FLUSH_AT: usize = 8;

/// Receives datagrams until shutdown, feeding each to the engine. The socket is
/// drained (until a batch comes back short, or `WouldBlock`) before the task waits
/// again, yielding to the other
/// tasks (TCP writers, timer) after every full batch; what the engine answers
/// leaves [`FLUSH_AT`] at a time in one `sendmmsg`. No error ends the loop: on
/// Linux a UDP socket reports ICMP port-unreachable of an earlier send as an error
/// on a later receive.
pub(crate) async fn receive_loop(shared: Arc<Shared>, socket: Arc<UdpIo>, local: SocketAddr) {
    let mut shutdown = shared.shutdown.clone();
    let fd = socket.raw_fd();
    let mut batch = RecvBatch::new();
    let mut out = Vec::new();
    let mut outbox = Outbox::default();
    loop {
        let mut ready = tokio::select! {
            _ = shutdown.changed() => return,
            r = socket.readable() => match r {
                Ok(guard) => guard,
                Err(e) => {
                    // Only when the runtime's I/O driver is gone: nothing more can arrive.
                    tracing::error!(%local, error = %e, "UDP socket no longer pollable; not receiving on it");
                    return;
                }
            },
        };
        let mut errors = 0;
        let mut drained = false;
        while !drained {
            // A short batch means the queue was empty when the kernel stopped: the
            // closure reports it as `WouldBlock`, so tokio clears the readiness now
            // instead of after one more `recvmmsg` that would find nothing (at half
            // load, with 1–2 datagrams per wake-up, that call was 40 % of the
            // receives). Nothing is missed: a datagram that lands after the call
            // raises a new edge-triggered event, and tokio only clears a readiness
            // no event has renewed since `try_io` read it.
            let mut got = 0;
            let r = ready.try_io(|_| {
                got = batch.recv(fd)?;
                if got < mmsg::BATCH {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(got)
            });
            let n = match r {
                Ok(Ok(n)) => n,
                // `WouldBlock`: readiness cleared; what the short batch got is served.
                Err(_) if got > 0 => {
                    drained = true;
                    got
                }
                Err(_) => break,
                Ok(Err(e)) => {
                    tracing::debug!(%local, error = %e, "UDP receive error");
                    errors += 1;
                    if errors >= mmsg::BATCH {
                        break;
                    }
                    continue;
                }
            };
            shared.touch();
            let now = now_ms();
            for i in 0..n {
                let Some((datagram, source)) = batch.get(i) else {
                    continue;
                };
                // Keep-alives over UDP (CRLF, RFC 5626 §3.5.1 is for streams, but
                // phones send them anyway) and empty datagrams carry no message.
                if datagram.iter().all(|b| b.is_ascii_whitespace()) {
                    continue;
                }
                let rx = Received {
                    data: Bytes::copy_from_slice(datagram),
                    source,
                    local,
                    transport: Transport::Udp,
                    conn: None,
                };
                shared.engine.handle(now, rx, &mut out);
                if out.len() >= FLUSH_AT {
                    shared.dispatch(&mut out, &mut outbox).await;
                }
            }
            shared.dispatch(&mut out, &mut outbox).await;
            if n == mmsg::BATCH {
                // More is probably waiting: let the rest of the proxy run first.
                tokio::task::yield_now().await;
                if shutdown.has_changed().unwrap_or(true) {
                    return;
                }
            }
        }
    }
}

/// Sends `items` on `socket` (emptying it), a batch per system call, waiting while
/// the socket's send buffer is full. A datagram the kernel refuses is counted and
/// skipped; the rest still go.
pub(super) async fn send_all(shared: &Shared, socket: &UdpIo, items: &mut Vec<Transmit>) {
    let fd = socket.raw_fd();
    let mut start = 0;
    while start < items.len() {
        let rest = &items[start..];
        match mmsg::send(fd, rest) {
            Ok(n) if n > 0 => start += n.min(rest.len()),
            Ok(_) => {
                // sendmmsg(2) sends at least one or fails; never seen, but never loop.
                shared.engine.metrics().dropped(DropReason::SendFailed);
                start += 1;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if let Err(e) = socket.writable().await {
                    tracing::debug!(error = %e, "UDP socket no longer pollable; datagrams dropped");
                    for _ in start..items.len() {
                        shared.engine.metrics().dropped(DropReason::SendFailed);
                    }
                    break;
                }
            }
            Err(e) => {
                shared.engine.metrics().dropped(DropReason::SendFailed);
                tracing::debug!(dest = %rest[0].destination, error = %e, "UDP send failed");
                start += 1;
            }
        }
    }
    items.clear();
}
