//! TCP: the accept loop, outbound connections, and one reader/writer pair per
//! connection. Every connection gets a [`ConnId`]; the connection table lets the
//! engine's responses and requests reuse it (RFC 3261 §18.2.2, RFC 5923).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::{now_ms, Outbox, Shared};
use crate::engine::{ConnId, DropReason, Received, Transport};
use crate::sip::framing::StreamFramer;

/// Messages queued for one connection before further ones are dropped.
pub(super) const QUEUE: usize = 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Queued messages joined into one write.
const COALESCE: usize = 64;
/// Room the framer's buffer has before each read: the most one read takes in.
const READ_CHUNK: usize = 16 * 1024;
/// A burst buffer grown past this is given back after use.
const BURST_KEEP: usize = 256 * 1024;

/// What the table keeps per open connection: the queue its writer drains.
#[derive(Debug, Clone)]
pub struct ConnHandle {
    pub tx: mpsc::Sender<Bytes>,
}

/// Accepts connections until shutdown; a failed accept never ends the loop.
pub async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        let (stream, remote) = tokio::select! {
            _ = shutdown.changed() => return,
            r = listener.accept() => match r {
                Ok(v) => v,
                Err(e) => {
                    tracing::debug!(error = %e, "TCP accept failed");
                    // EMFILE and friends: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        if shared.conns.len() >= shared.cfg.max_connections {
            tracing::warn!(%remote, limit = shared.cfg.max_connections, "TCP connection refused: limit reached");
            continue;
        }
        let _ = stream.set_nodelay(true);
        let (id, rx) = shared.register(remote);
        tokio::spawn(run_connection(shared.clone(), id, remote, stream, rx));
    }
}

/// Queues `data` for `remote`, opening a connection when none is open.
pub fn send(shared: &Arc<Shared>, conn: Option<ConnId>, remote: SocketAddr, data: Bytes) {
    let handle = conn
        .and_then(|id| shared.conns.get(&id).map(|h| h.clone()))
        .or_else(|| {
            let id = *shared.by_remote.get(&remote)?;
            shared.conns.get(&id).map(|h| h.clone())
        });
    let handle = match handle {
        Some(h) => h,
        None => {
            if shared.conns.len() >= shared.cfg.max_connections {
                shared.engine.metrics().dropped(DropReason::SendFailed);
                tracing::warn!(%remote, "no TCP connection opened: limit reached");
                return;
            }
            let (id, rx) = shared.register(remote);
            let handle = shared.conns.get(&id).map(|h| h.clone());
            tokio::spawn(connect(shared.clone(), id, remote, rx));
            match handle {
                Some(h) => h,
                None => return,
            }
        }
    };
    if handle.tx.try_send(data).is_err() {
        shared.engine.metrics().dropped(DropReason::SendFailed);
        tracing::debug!(%remote, "TCP send queue full or closed; message dropped");
    }
}

async fn connect(shared: Arc<Shared>, id: ConnId, remote: SocketAddr, rx: mpsc::Receiver<Bytes>) {
    match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(remote)).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            run_connection(shared, id, remote, stream, rx).await;
        }
        Ok(Err(e)) => {
            tracing::debug!(%remote, error = %e, "TCP connect failed");
            shared.engine.metrics().dropped(DropReason::SendFailed);
            shared.unregister(id, remote);
        }
        Err(_) => {
            tracing::debug!(%remote, "TCP connect timed out");
            shared.engine.metrics().dropped(DropReason::SendFailed);
            shared.unregister(id, remote);
        }
    }
}

/// Reads, frames and hands messages to the engine until the peer closes, the
/// stream cannot be framed, the connection idles out or the proxy shuts down.
async fn run_connection(
    shared: Arc<Shared>,
    id: ConnId,
    remote: SocketAddr,
    stream: TcpStream,
    queue: mpsc::Receiver<Bytes>,
) {
    let local = stream.local_addr().unwrap_or(remote);
    let (mut reader, writer) = stream.into_split();
    let writer_task = tokio::spawn(write_loop(writer, queue, remote));

    let mut shutdown = shared.shutdown.clone();
    let mut framer = StreamFramer::new(shared.cfg.max_message);
    let mut out = Vec::new();
    let mut outbox = Outbox::default();
    let idle = shared.cfg.tcp_idle_timeout;
    'conn: loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            r = tokio::time::timeout(idle, reader.read_buf(framer.spare(READ_CHUNK))) => match r {
                Err(_) => {
                    tracing::debug!(%remote, "TCP connection idle; closing");
                    break;
                }
                Ok(Ok(0)) => break,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::debug!(%remote, error = %e, "TCP read failed");
                    break;
                }
            },
        }
        shared.touch();
        loop {
            match framer.next() {
                None => break,
                Some(Ok(data)) => {
                    let rx = Received {
                        data,
                        source: remote,
                        local,
                        transport: Transport::Tcp,
                        conn: Some(id),
                    };
                    shared.engine.handle(now_ms(), rx, &mut out);
                    if out.len() >= super::udp::FLUSH_AT {
                        shared.dispatch(&mut out, &mut outbox).await;
                    }
                }
                Some(Err(e)) => {
                    // Nothing after an unframeable message can be trusted (RFC 3261 §18.3).
                    shared
                        .engine
                        .metrics()
                        .dropped(DropReason::MalformedRequest);
                    tracing::debug!(%remote, error = %e, "TCP stream cannot be framed; closing");
                    shared.dispatch(&mut out, &mut outbox).await;
                    break 'conn;
                }
            }
        }
        // Everything the engine answered to this read leaves together.
        shared.dispatch(&mut out, &mut outbox).await;
        for _ in 0..framer.take_pings() {
            shared.engine.metrics().keepalive();
            if let Some(h) = shared.conns.get(&id) {
                let _ = h.tx.try_send(Bytes::from_static(b"\r\n"));
            }
        }
    }
    shared.unregister(id, remote);
    // Dropping the table's sender ends the writer once its queue is flushed.
    let _ = writer_task.await;
}

/// Drains the connection's queue onto the socket: whatever is queued when the writer
/// wakes leaves in one `write` (one system call and, with `TCP_NODELAY`, usually
/// one segment per burst instead of one per message). Ends when the table drops
/// the queue's sender or a write fails.
async fn write_loop(
    mut writer: OwnedWriteHalf,
    mut queue: mpsc::Receiver<Bytes>,
    remote: SocketAddr,
) {
    let mut batch: Vec<Bytes> = Vec::with_capacity(COALESCE);
    let mut burst: Vec<u8> = Vec::new();
    while queue.recv_many(&mut batch, COALESCE).await > 0 {
        let result = if let [one] = batch.as_slice() {
            writer.write_all(one).await
        } else {
            burst.clear();
            for m in &batch {
                burst.extend_from_slice(m);
            }
            writer.write_all(&burst).await
        };
        batch.clear();
        if burst.capacity() > BURST_KEEP {
            burst = Vec::new();
        }
        if let Err(e) = result {
            tracing::debug!(%remote, error = %e, "TCP write failed");
            break;
        }
    }
    let _ = writer.shutdown().await;
}
