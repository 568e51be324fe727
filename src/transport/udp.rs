//! The receive loop of one UDP socket.

use std::sync::Arc;

use bytes::Bytes;
use tokio::net::UdpSocket;

use super::{now_ms, Shared};
use crate::engine::{Received, Transport};

/// Receives datagrams until shutdown, feeding each to the engine. No error ends
/// the loop: on Linux a UDP socket reports ICMP port-unreachable of an earlier
/// send as an error on a later receive.
pub async fn receive_loop(shared: Arc<Shared>, socket: Arc<UdpSocket>) {
    let local = match socket.local_addr() {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "UDP socket has no local address; not receiving on it");
            return;
        }
    };
    let mut shutdown = shared.shutdown.clone();
    let mut buf = vec![0u8; 65_536];
    let mut out = Vec::new();
    loop {
        let (n, source) = tokio::select! {
            _ = shutdown.changed() => return,
            r = socket.recv_from(&mut buf) => match r {
                Ok(v) => v,
                Err(e) => {
                    tracing::debug!(%local, error = %e, "UDP receive error");
                    continue;
                }
            },
        };
        let datagram = &buf[..n];
        // Keep-alives over UDP (CRLF, RFC 5626 §3.5.1 is for streams, but phones
        // send them anyway) and empty datagrams carry no message.
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
        shared.engine.handle(now_ms(), rx, &mut out);
        shared.dispatch(&mut out).await;
    }
}
