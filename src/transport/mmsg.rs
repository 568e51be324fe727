//! Batched UDP system calls: `recvmmsg(2)` and `sendmmsg(2)` on the raw socket.
//!
//! One datagram per `recvfrom`/`sendto` plus a tokio wake-up each was 35–40 % of the
//! proxy's CPU at saturation (BENCHMARKS.md, e2e profile); one call now moves up to
//! [`BATCH`] datagrams. libc directly rather than the `quinn-udp` crate: quinn-udp
//! batches *sends* with UDP GSO, which needs one destination and equal-sized segments
//! (QUIC's case), while a proxy's batch goes to many peers with messages of every
//! size, which only `sendmmsg` batches.
//!
//! These functions never block (`MSG_DONTWAIT`): the caller runs them inside tokio's
//! `try_io`, so `WouldBlock` clears the socket's readiness.

use std::io;
use std::mem::{self, MaybeUninit};
use std::net::SocketAddr;
use std::os::fd::RawFd;

use socket2::SockAddr;

use crate::engine::Transmit;

/// Datagrams per system call. 32 covers a burst of a loaded proxy; a larger batch
/// only adds latency to the first datagram of it.
pub(super) const BATCH: usize = 32;

/// Receive slot size: the largest UDP payload (65 507 over IPv4, 65 527 over IPv6)
/// fits, so no datagram is ever truncated.
const SLOT: usize = 65_536;

/// Pre-sized receive buffers, reused for every call: no allocation per datagram.
/// The `recvmmsg` headers are built once and point into the buffers: zeroing and
/// refilling all [`BATCH`] of them on every call was most of a call's own work
/// below saturation, where a call brings one or two datagrams.
pub(super) struct RecvBatch {
    bufs: Vec<u8>,
    addrs: Vec<libc::sockaddr_storage>,
    /// One per slot, each naming its slot of `bufs`, and the headers naming them.
    /// Vectors, not boxes: moving a `Box` asserts it is the only way to its
    /// contents, which the pointers into them would contradict.
    #[expect(dead_code, reason = "read only by the kernel, through `hdrs`")]
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    /// Headers the last call filled: their `msg_len` and `msg_namelen` say what
    /// [`get`](Self::get) returns, and the name length must be the address
    /// buffer's size again before the next call.
    filled: usize,
}

// SAFETY: the raw pointers in `iovs` and `hdrs` point only into this batch's own
// heap blocks (`bufs`, `addrs`, `iovs`), which move with it and are never shared,
// resized or reallocated; sending the batch to another thread sends everything
// they reach.
unsafe impl Send for RecvBatch {}

const ADDR_SIZE: libc::socklen_t = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;

impl RecvBatch {
    pub(super) fn new() -> RecvBatch {
        let mut bufs = vec![0u8; BATCH * SLOT];
        // SAFETY: `sockaddr_storage`, `iovec` and `mmsghdr` are plain old data
        // (integers, byte arrays, pointers); all-zero bytes are a valid value of
        // each, and every field recvmmsg reads is set below.
        let mut addrs = vec![unsafe { mem::zeroed::<libc::sockaddr_storage>() }; BATCH];
        let mut iovs = vec![unsafe { mem::zeroed::<libc::iovec>() }; BATCH];
        let mut hdrs = vec![unsafe { mem::zeroed::<libc::mmsghdr>() }; BATCH];
        // Base pointers taken once, so no later borrow of a vector invalidates the
        // pointers derived from them.
        let (buf_base, addr_base, iov_base) =
            (bufs.as_mut_ptr(), addrs.as_mut_ptr(), iovs.as_mut_ptr());
        for (i, h) in hdrs.iter_mut().enumerate() {
            // SAFETY: `i < BATCH`: slot `i` of `bufs` (BATCH * SLOT bytes), entry `i`
            // of `addrs` and of `iovs` (BATCH each) are inside their allocations.
            unsafe {
                let iov = iov_base.add(i);
                (*iov).iov_base = buf_base.add(i * SLOT).cast();
                (*iov).iov_len = SLOT;
                h.msg_hdr.msg_name = addr_base.add(i).cast();
                h.msg_hdr.msg_iov = iov;
            }
            h.msg_hdr.msg_namelen = ADDR_SIZE;
            h.msg_hdr.msg_iovlen = 1;
        }
        RecvBatch {
            bufs,
            addrs,
            iovs,
            hdrs,
            filled: 0,
        }
    }

    /// Receives up to [`BATCH`] datagrams; returns how many. `WouldBlock` when none
    /// is waiting.
    pub(super) fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        for h in &mut self.hdrs[..self.filled] {
            h.msg_hdr.msg_namelen = ADDR_SIZE;
        }
        self.filled = 0;
        // SAFETY: `hdrs` holds BATCH headers, each pointing at its iovec in `iovs`
        // (SLOT writable bytes of `bufs`) and at one `sockaddr_storage` of `addrs`
        // with its true size (reset above where the kernel changed it). All are
        // heap blocks owned by `self`, borrowed mutably for the call, which only
        // writes inside those bounds. A null timeout is allowed.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = (n as usize).min(BATCH);
        self.filled = n;
        Ok(n)
    }

    /// Datagram `i` of the last [`recv`](Self::recv) and its source; `None` past
    /// what that call received, and for a source that is not an IP address (never
    /// on a UDP/IP socket).
    pub(super) fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        if i >= self.filled {
            return None;
        }
        let h = &self.hdrs[i];
        let len = (h.msg_len as usize).min(SLOT);
        let storage = self.addrs[i];
        let addr_len = h.msg_hdr.msg_namelen;
        if addr_len as usize > mem::size_of::<libc::sockaddr_storage>() {
            return None;
        }
        // SAFETY: recvmmsg wrote a socket address of `addr_len` bytes (checked to
        // fit) into `storage`; the rest of it is zero or an earlier address, which
        // `SockAddr` never reads past `addr_len` for IP families.
        let source = unsafe { SockAddr::new(storage, addr_len) }.as_socket()?;
        let start = i * SLOT;
        Some((&self.bufs[start..start + len], source))
    }
}

/// Sends the first (up to [`BATCH`]) of `items` in one call; returns how many were
/// sent. An error means the *first* of them failed (sendmmsg(2) reports a later
/// failure as a short count, and the failing datagram is then first next time).
pub(super) fn send(fd: RawFd, items: &[Transmit]) -> io::Result<usize> {
    let n = items.len().min(BATCH);
    if n == 0 {
        return Ok(0);
    }
    // Only the first `n` entries of each array are written and passed: a batch is
    // often one or two datagrams below saturation, and building all BATCH
    // addresses (132 bytes each) and zeroing all headers every call was most of
    // this function's instructions there (benches/instructions.sh).
    let mut addrs = [const { MaybeUninit::<SockAddr>::uninit() }; BATCH];
    let mut iovs = [const { MaybeUninit::<libc::iovec>::uninit() }; BATCH];
    let mut hdrs = [const { MaybeUninit::<libc::mmsghdr>::uninit() }; BATCH];
    for (i, t) in items.iter().take(n).enumerate() {
        let addr = addrs[i].write(SockAddr::from(t.destination));
        let iov = iovs[i].write(libc::iovec {
            iov_base: t.data.as_ptr() as *mut libc::c_void,
            iov_len: t.data.len(),
        });
        // SAFETY: `mmsghdr` is plain old data (pointers and integers), valid
        // all-zero; the fields sendmmsg reads are set below.
        let hdr = hdrs[i].write(unsafe { mem::zeroed() });
        let h = &mut hdr.msg_hdr;
        h.msg_name = addr.as_ptr() as *mut libc::c_void;
        h.msg_namelen = addr.len();
        h.msg_iov = iov;
        h.msg_iovlen = 1;
    }
    // SAFETY: the first `n` headers (all written above) point at addresses in
    // `addrs` (with their true lengths) and at one iovec each, which points at the
    // bytes of a `Bytes` in `items`; all are borrowed for the whole call, and
    // sendmmsg reads only those `n` (and writes only their `msg_len`); the `*mut`
    // casts are the C signature.
    let sent = unsafe {
        libc::sendmmsg(
            fd,
            hdrs.as_mut_ptr().cast::<libc::mmsghdr>(),
            n as libc::c_uint,
            libc::MSG_DONTWAIT,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sent as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Transport;
    use bytes::Bytes;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    fn tx(data: &'static [u8], destination: SocketAddr) -> Transmit {
        Transmit {
            data: Bytes::from_static(data),
            destination,
            transport: Transport::Udp,
            conn: None,
        }
    }

    #[test]
    fn a_batch_sent_in_one_call_is_received_in_one_call_in_order() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = b.local_addr().unwrap();
        let items: Vec<Transmit> = [&b"one"[..], b"two", b"three"]
            .iter()
            .map(|d| tx(d, to))
            .collect();
        assert_eq!(send(a.as_raw_fd(), &items).unwrap(), 3);
        let mut batch = RecvBatch::new();
        let mut got = Vec::new();
        // Loopback delivery is synchronous, but read until all three are in.
        while got.len() < 3 {
            b.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            let mut peek = [0u8; 1];
            b.peek_from(&mut peek).unwrap();
            let n = batch.recv(b.as_raw_fd()).unwrap();
            for i in 0..n {
                let (data, from) = batch.get(i).unwrap();
                assert_eq!(from, a.local_addr().unwrap());
                got.push(data.to_vec());
            }
        }
        assert_eq!(
            got,
            vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
        );
    }

    /// The headers are built once: a batch reused for calls of different sizes,
    /// from different senders, and moved to another thread between them, still
    /// reads each datagram whole and from its own sender (IPv6 here: the longer
    /// address, where a stale header would show).
    #[test]
    fn a_reused_batch_reads_every_call_afresh() {
        let b = UdpSocket::bind("[::1]:0").unwrap();
        b.set_nonblocking(true).unwrap();
        let to = b.local_addr().unwrap();
        let senders = [
            UdpSocket::bind("[::1]:0").unwrap(),
            UdpSocket::bind("[::1]:0").unwrap(),
        ];
        let mut batch = RecvBatch::new();
        let rounds: [&[&[u8]]; 3] = [
            &[b"first-long-datagram", b"2", b"three"],
            &[b"x"],
            &[b"yy", b"zzz"],
        ];
        for (round, datagrams) in rounds.iter().enumerate() {
            let from = &senders[round % 2];
            for d in *datagrams {
                from.send_to(d, to).unwrap();
            }
            let mut got = Vec::new();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while got.len() < datagrams.len() && std::time::Instant::now() < deadline {
                let n = batch.recv(b.as_raw_fd()).unwrap_or(0);
                for i in 0..n {
                    let (data, source) = batch.get(i).unwrap();
                    assert_eq!(source, from.local_addr().unwrap(), "round {round}");
                    got.push(data.to_vec());
                }
            }
            let want: Vec<Vec<u8>> = datagrams.iter().map(|d| d.to_vec()).collect();
            assert_eq!(got, want, "round {round}");
            assert!(
                batch.get(datagrams.len()).is_none(),
                "no slot past the last call's count is served (round {round})"
            );
            batch = std::thread::spawn(move || batch).join().unwrap();
        }
    }

    #[test]
    fn an_empty_socket_reports_would_block() {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let e = RecvBatch::new().recv(s.as_raw_fd()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn more_than_a_batch_is_sent_a_batch_at_a_time() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = b.local_addr().unwrap();
        let items: Vec<Transmit> = (0..BATCH + 5).map(|_| tx(b"x", to)).collect();
        assert_eq!(send(a.as_raw_fd(), &items).unwrap(), BATCH);
        assert_eq!(send(a.as_raw_fd(), &items[BATCH..]).unwrap(), 5);
        assert_eq!(send(a.as_raw_fd(), &[]).unwrap(), 0);
    }

    #[test]
    fn an_ipv6_destination_on_an_ipv4_socket_fails_the_first_item() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let items = vec![tx(b"x", "[::1]:9".parse().unwrap())];
        assert!(send(a.as_raw_fd(), &items).is_err());
    }
}
