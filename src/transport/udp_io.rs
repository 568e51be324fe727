//! A UDP socket registered with the runtime for reading only.
//!
//! Why not `tokio::net::UdpSocket`: it registers every socket for readable *and*
//! writable edges, and on Linux each datagram the proxy sends raises a writable
//! edge of its own (the skb is released at once on loopback, later on a NIC, and
//! `sock_wfree` wakes the socket's waiters). With no task waiting to write, every
//! such edge still woke the runtime for nothing: at 3 000 flows/s, 2 263 of 7 300
//! `epoll_wait` returns were `EPOLLOUT` alone (strace; BENCHMARKS.md, session 4).
//! Here sends go straight to the kernel, and only a send that finds the buffer full
//! registers for writability, on a duplicate descriptor, for as long as it waits.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};

use tokio::io::unix::{AsyncFd, AsyncFdReadyGuard};
use tokio::io::Interest;

#[derive(Debug)]
pub(crate) struct UdpIo {
    fd: AsyncFd<std::net::UdpSocket>,
}

impl UdpIo {
    /// Registers `socket` (non-blocking, bound) with the current runtime.
    pub(crate) fn new(socket: std::net::UdpSocket) -> io::Result<UdpIo> {
        socket.set_nonblocking(true)?;
        // SAFETY: the `UdpSocket` owns its descriptor, and the `AsyncFd` owns the
        // socket for its whole life and never replaces it, so the descriptor stays
        // open and the same (tokio's I/O-safety contract for registration).
        let fd = unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE)? };
        Ok(UdpIo { fd })
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.fd.get_ref().local_addr()
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Waits until the socket is readable; the guard's `try_io` clears the
    /// readiness when its closure reports `WouldBlock`.
    pub(crate) async fn readable(&self) -> io::Result<AsyncFdReadyGuard<'_, std::net::UdpSocket>> {
        self.fd.readable().await
    }

    /// Waits until a send may find room: a registration for writable edges, on a
    /// duplicate of the descriptor, that lives only while this waits. Registering
    /// reports a socket that is already writable at once, so no edge is missed
    /// between the failed send and the registration.
    pub(crate) async fn writable(&self) -> io::Result<()> {
        let dup = self.fd.get_ref().try_clone()?;
        // SAFETY: as in `new`: `waiter` owns the duplicate and its descriptor.
        let waiter = unsafe { AsyncFd::register_with_interest(dup, Interest::WRITABLE)? };
        let _ready = waiter.writable().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The writable wait registers after a send failed; if the room came back in
    /// between, registering must report it, or the sender would wait for an edge
    /// that already happened.
    #[tokio::test]
    async fn writable_returns_at_once_when_there_is_room() {
        let io = UdpIo::new(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
        tokio::time::timeout(Duration::from_secs(2), io.writable())
            .await
            .expect("writable() waited on a socket with room")
            .unwrap();
    }

    /// Registered for reading only: a datagram makes it readable, and sending from
    /// it needs no registration.
    #[tokio::test]
    async fn reads_through_the_registration_and_sends_without_one() {
        let io = UdpIo::new(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.send_to(b"ping", io.local_addr().unwrap()).unwrap();
        let mut guard = tokio::time::timeout(Duration::from_secs(2), io.readable())
            .await
            .expect("a datagram makes the socket readable")
            .unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = guard
            .try_io(|s| s.get_ref().recv_from(&mut buf))
            .expect("readable")
            .unwrap();
        assert_eq!(
            (&buf[..n], from),
            (&b"ping"[..], peer.local_addr().unwrap())
        );
        io.fd
            .get_ref()
            .send_to(b"pong", peer.local_addr().unwrap())
            .unwrap();
        let n = peer.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"pong");
    }
}
