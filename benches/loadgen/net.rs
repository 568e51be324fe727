//! Sockets for the harness: UDP with batched `recvmmsg`/`sendmmsg` (one system call
//! moves up to [`BATCH`] datagrams), and TCP streams with Content-Length framing.
//!
//! Buffers are allocated once; a message is written straight into the slot it is
//! sent from.

use std::io::{self, Read, Write};
use std::mem::{size_of, zeroed};
use std::net::{SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};

use socket2::{Domain, Protocol, Socket, Type};

/// Datagrams per system call.
pub const BATCH: usize = 64;
const DGRAM_MAX: usize = 8192;
const SOCK_BUF: usize = 8 << 20;

/// A nonblocking UDP socket on 127.0.0.1 with large kernel buffers.
pub fn udp_socket(addr: SocketAddrV4) -> io::Result<UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    // The kernel caps these at net.core.{r,w}mem_max; whatever we get is fine.
    let _ = s.set_recv_buffer_size(SOCK_BUF);
    let _ = s.set_send_buffer_size(SOCK_BUF);
    s.bind(&SocketAddr::V4(addr).into())?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

fn to_sockaddr(a: SocketAddrV4) -> libc::sockaddr_in {
    // SAFETY: sockaddr_in is plain old data; all-zero is a valid value.
    let mut sa: libc::sockaddr_in = unsafe { zeroed() };
    sa.sin_family = libc::AF_INET as libc::sa_family_t;
    sa.sin_port = a.port().to_be();
    sa.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
    sa
}

fn from_sockaddr(sa: &libc::sockaddr_in) -> SocketAddrV4 {
    SocketAddrV4::new(
        sa.sin_addr.s_addr.to_ne_bytes().into(),
        u16::from_be(sa.sin_port),
    )
}

/// Outgoing datagrams waiting for the next `sendmmsg`.
pub struct SendBatch {
    bufs: Vec<Vec<u8>>,
    addrs: Vec<libc::sockaddr_in>,
    len: usize,
    iov: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    /// Datagrams the kernel refused (counted, not retried).
    pub send_errors: u64,
    pub syscalls: u64,
}

impl SendBatch {
    pub fn new() -> Self {
        SendBatch {
            bufs: (0..BATCH).map(|_| Vec::with_capacity(DGRAM_MAX)).collect(),
            // SAFETY: plain old data, zero is valid.
            addrs: vec![unsafe { zeroed() }; BATCH],
            len: 0,
            iov: Vec::with_capacity(BATCH),
            hdrs: Vec::with_capacity(BATCH),
            send_errors: 0,
            syscalls: 0,
        }
    }

    pub fn is_full(&self) -> bool {
        self.len == BATCH
    }

    pub fn len_free(&self) -> usize {
        BATCH - self.len
    }

    /// A cleared buffer for the next datagram to `to`; the caller must `flush`
    /// first when the batch `is_full`.
    pub fn push(&mut self, to: SocketAddrV4) -> &mut Vec<u8> {
        let i = self.len;
        self.len += 1;
        self.addrs[i] = to_sockaddr(to);
        let b = &mut self.bufs[i];
        b.clear();
        b
    }

    /// Sends everything queued. Over loopback the kernel only refuses when the
    /// receiver's buffer overflows (then the datagram is dropped silently) or the
    /// port is closed (ECONNREFUSED from the previous ICMP): both are counted.
    pub fn flush(&mut self, fd: RawFd) {
        if self.len == 0 {
            return;
        }
        self.iov.clear();
        self.hdrs.clear();
        for i in 0..self.len {
            self.iov.push(libc::iovec {
                iov_base: self.bufs[i].as_mut_ptr().cast(),
                iov_len: self.bufs[i].len(),
            });
        }
        for i in 0..self.len {
            // SAFETY: plain old data, zero is valid.
            let mut h: libc::mmsghdr = unsafe { zeroed() };
            h.msg_hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_in).cast();
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as u32;
            h.msg_hdr.msg_iov = &mut self.iov[i];
            h.msg_hdr.msg_iovlen = 1;
            self.hdrs.push(h);
        }
        let mut done = 0usize;
        let mut spins = 0;
        while done < self.len {
            self.syscalls += 1;
            // SAFETY: hdrs[done..len] point into iov/addrs/bufs, all alive and unmoved.
            let n = unsafe {
                libc::sendmmsg(
                    fd,
                    self.hdrs[done..].as_mut_ptr(),
                    (self.len - done) as u32,
                    0,
                )
            };
            if n > 0 {
                done += n as usize;
                continue;
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EAGAIN) if spins < 1000 => {
                    spins += 1;
                    wait_fd(fd, libc::POLLOUT, 1_000_000);
                }
                Some(libc::EINTR) => {}
                _ => {
                    // Skip the datagram the kernel refused and go on with the rest.
                    self.send_errors += 1;
                    done += 1;
                }
            }
        }
        self.len = 0;
    }
}

/// Waits until `fd` is ready for `events` or `timeout_ns` passes.
pub fn wait_fd(fd: RawFd, events: i16, timeout_ns: u64) {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let ts = libc::timespec {
        tv_sec: (timeout_ns / 1_000_000_000) as _,
        tv_nsec: (timeout_ns % 1_000_000_000) as _,
    };
    // SAFETY: one valid pollfd, valid timespec, no signal mask.
    unsafe { libc::ppoll(&mut p, 1, &ts, std::ptr::null()) };
}

/// Datagrams received by one `recvmmsg`.
pub struct RecvBatch {
    bufs: Vec<Vec<u8>>,
    addrs: Vec<libc::sockaddr_in>,
    iov: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    pub syscalls: u64,
}

impl RecvBatch {
    pub fn new() -> Self {
        let mut bufs: Vec<Vec<u8>> = (0..BATCH).map(|_| vec![0u8; DGRAM_MAX]).collect();
        let iov = bufs
            .iter_mut()
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: b.len(),
            })
            .collect();
        RecvBatch {
            bufs,
            // SAFETY: plain old data, zero is valid.
            addrs: vec![unsafe { zeroed() }; BATCH],
            iov,
            // SAFETY: plain old data, zero is valid.
            hdrs: vec![unsafe { zeroed() }; BATCH],
            syscalls: 0,
        }
    }

    /// Receives up to [`BATCH`] datagrams without blocking; returns how many.
    pub fn recv(&mut self, fd: RawFd) -> usize {
        for i in 0..BATCH {
            let h = &mut self.hdrs[i];
            h.msg_hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_in).cast();
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as u32;
            h.msg_hdr.msg_iov = &mut self.iov[i];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_len = 0;
        }
        self.syscalls += 1;
        // SAFETY: hdrs point into iov/addrs/bufs, which live as long as self and are not moved.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            0
        } else {
            n as usize
        }
    }

    pub fn get(&self, i: usize) -> (&[u8], SocketAddrV4) {
        (
            &self.bufs[i][..self.hdrs[i].msg_len as usize],
            from_sockaddr(&self.addrs[i]),
        )
    }
}

/// One TCP connection of the watcher side: queued output and a framing buffer.
pub struct TcpConn {
    pub stream: TcpStream,
    pub local: SocketAddrV4,
    pub out: Vec<u8>,
    pub inb: Vec<u8>,
    pub closed: bool,
}

impl TcpConn {
    pub fn connect(to: SocketAddrV4) -> io::Result<TcpConn> {
        let stream = TcpStream::connect(to)?;
        stream.set_nodelay(true)?;
        stream.set_nonblocking(true)?;
        let local = match stream.local_addr()? {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(_) => return Err(io::Error::other("IPv6 local address")),
        };
        Ok(TcpConn {
            stream,
            local,
            out: Vec::with_capacity(1 << 16),
            inb: Vec::with_capacity(1 << 17),
            closed: false,
        })
    }

    pub fn fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }

    /// Writes as much queued output as the socket takes.
    pub fn flush(&mut self) -> io::Result<()> {
        let mut off = 0;
        while off < self.out.len() {
            match self.stream.write(&self.out[off..]) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => off += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.out.drain(..off);
        Ok(())
    }

    /// Reads what is available into the framing buffer; false at end of stream.
    pub fn fill(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; 65536];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.inb.extend_from_slice(&chunk[..n]);
                    if n < chunk.len() {
                        return Ok(true);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Length of the first complete message in a TCP byte stream (RFC 3261 §18.3:
/// framed by Content-Length), skipping CRLF keep-alives; `Some((skip, len))`.
pub fn frame(buf: &[u8]) -> Option<(usize, usize)> {
    let skip = buf.iter().position(|&b| b != b'\r' && b != b'\n')?;
    let b = &buf[skip..];
    let hend = crate::sip::header_end(b)?;
    let cl = crate::sip::content_length(&b[..hend]).unwrap_or(0);
    let total = hend + 4 + cl;
    (b.len() >= total).then_some((skip, total))
}
