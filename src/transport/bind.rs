//! Binding the listen addresses: UDP and TCP on the same address and port.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;

use super::udp_io::UdpIo;

/// The sockets of one listen address.
#[derive(Debug)]
pub struct Listener {
    pub(crate) udp: UdpIo,
    pub tcp: TcpListener,
    /// The address as bound (port 0 resolved).
    pub local: SocketAddr,
}

/// Binds UDP and TCP on `addr`. Port 0 picks a port free for both. An IPv6
/// socket is IPv6-only, so `[::]:5060` and `0.0.0.0:5060` can both be listed.
pub fn bind(addr: SocketAddr) -> io::Result<Listener> {
    if addr.port() != 0 {
        let udp = udp_socket(addr)?;
        let tcp = tcp_listener(addr)?;
        return Ok(Listener {
            local: udp.local_addr()?,
            udp,
            tcp,
        });
    }
    let mut last_err = None;
    for _ in 0..16 {
        let udp = udp_socket(addr)?;
        let local = udp.local_addr()?;
        match tcp_listener(local) {
            Ok(tcp) => return Ok(Listener { udp, tcp, local }),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| {
        io::Error::new(io::ErrorKind::AddrInUse, "no port free for UDP and TCP")
    }))
}

fn udp_socket(addr: SocketAddr) -> io::Result<UdpIo> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    // Bursts of NOTIFYs: a larger receive buffer loses fewer under load.
    let _ = s.set_recv_buffer_size(4 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    UdpIo::new(s.into())
}

fn tcp_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.set_nodelay(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    TcpListener::from_std(s.into())
}
