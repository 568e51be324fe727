//! The load loop: both ends of many presence subscriptions at once, on one thread.
//!
//! Per flow: the watcher sends SUBSCRIBE (to the proxy, or straight to the server in
//! a direct run); the presence server answers 202 with a To tag and the Record-Route
//! echoed, then sends an in-dialog NOTIFY with a ~1 KiB PIDF along the route set
//! (RFC 3261 §12.1.1, §16.12); the watcher answers 200. A flow is complete when the
//! watcher has the 202 and the NOTIFY and the server has the 200: four messages
//! through the proxy. Each of the four is timed from the moment the sending side
//! queues it to the moment the other side reads it.
//!
//! One thread, readiness from one `ppoll`, datagrams moved `BATCH` per system call:
//! the harness has to stay well ahead of the proxy it loads.

use std::collections::VecDeque;
use std::net::{SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::gen;
use crate::net::{self, RecvBatch, SendBatch, TcpConn};
use crate::sip::{
    self, first_element, flow_of, name_addr_uri, uri_addr, via_addr, Method, Msg, Out, Start,
};

#[derive(Debug, Clone)]
pub struct Config {
    /// Where watchers send SUBSCRIBE: the proxy, or the server for a direct run.
    pub target: SocketAddrV4,
    pub watcher: SocketAddrV4,
    pub server: SocketAddrV4,
    pub tcp: bool,
    pub conns: usize,
    /// Outstanding flows at most (window mode, and a cap in rate mode).
    pub window: usize,
    /// Flows started per second; 0 = as fast as the window allows.
    pub rate: f64,
    pub count: u64,
    pub duration: Duration,
    pub timeout: Duration,
    /// Check blocked pairs arrive closed and allowed open (off for direct runs).
    pub check: bool,
    pub users: u64,
    pub first_flow: u64,
    /// Poll without ever sleeping (see `--spin`).
    pub spin: bool,
}

fn local_v4(s: &UdpSocket) -> anyhow::Result<SocketAddrV4> {
    match s.local_addr()? {
        std::net::SocketAddr::V4(a) => Ok(a),
        std::net::SocketAddr::V6(a) => {
            anyhow::bail!("IPv6 address {a}: the harness uses IPv4 loopback")
        }
    }
}

const GOT_SUB: u8 = 1;
const GOT_202: u8 = 2;
const GOT_NOTIFY: u8 = 4;
const GOT_200: u8 = 8;
const DONE: u8 = 16;
const TIMED_OUT: u8 = 32;
const ALL: u8 = GOT_SUB | GOT_202 | GOT_NOTIFY | GOT_200;

#[derive(Debug, Clone, Copy, Default)]
struct Flow {
    t_sub: u64,
    t_srv: u64,
    t_ok: u64,
    bits: u8,
}

/// Message legs, in flow order.
pub const LEGS: [&str; 4] = ["subscribe", "accepted", "notify", "ok"];

pub struct Stats {
    pub started: u64,
    pub completed: u64,
    pub timeouts: u64,
    /// Responses other than 2xx.
    pub bad_status: u64,
    /// NOTIFY bodies that contradict the policy (blocked open, allowed closed, neither).
    pub mismatches: u64,
    pub unparsable: u64,
    /// Messages for flows this run does not know, or requests it does not expect.
    pub unexpected: u64,
    /// Messages for flows that had already timed out.
    pub late: u64,
    pub duplicates: u64,
    pub send_errors: u64,
    pub tcp_errors: u64,
    pub closed_seen: u64,
    pub open_seen: u64,
    /// Messages read by the watcher and the server sides.
    pub msgs_in: u64,
    pub syscalls: u64,
    pub elapsed: Duration,
    pub legs: Vec<Histogram<u64>>,
    pub all: Histogram<u64>,
}

fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("static histogram bounds are valid")
}

const PIDF_HEAD: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" \
xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" xmlns:c=\"urn:ietf:params:xml:ns:pidf:cipid\" entity=\"";
const PIDF_MID: &[u8] = b"\">\r\n<tuple id=\"lg-t1\">\r\n<status><basic>open</basic></status>\r\n<contact priority=\"0.8\">";
const PIDF_TAIL: &[u8] = b"</contact>\r\n<note xml:lang=\"en\">Available</note>\r\n<timestamp>2026-01-01T09:00:00Z</timestamp>\r\n\
</tuple>\r\n<dm:person id=\"lg-p1\">\r\n<rpid:activities><rpid:unknown/></rpid:activities>\r\n\
<rpid:mood><rpid:happy/></rpid:mood>\r\n<c:display-name>Load Generator Owner</c:display-name>\r\n\
<dm:note>At the desk, reachable by chat and phone until the evening</dm:note>\r\n\
<dm:timestamp>2026-01-01T09:00:00Z</dm:timestamp>\r\n</dm:person>\r\n<dm:device id=\"lg-d1\">\r\n\
<dm:deviceID>urn:uuid:00000000-1111-4222-8333-444444444444</dm:deviceID>\r\n<dm:note>Desk phone</dm:note>\r\n\
<dm:timestamp>2026-01-01T09:00:00Z</dm:timestamp>\r\n</dm:device>\r\n</presence>\r\n";

pub struct Runner {
    cfg: Config,
    nonce: Vec<u8>,
    t0: Instant,
    flows: Vec<Flow>,
    queue: VecDeque<u32>,
    outstanding: usize,
    wsock: Option<UdpSocket>,
    ssock: UdpSocket,
    conns: Vec<TcpConn>,
    wsend: SendBatch,
    ssend: SendBatch,
    st: Stats,
}

impl Runner {
    pub fn new(mut cfg: Config, nonce: u64) -> anyhow::Result<Runner> {
        anyhow::ensure!(
            cfg.count > 0 && cfg.count < u32::MAX as u64,
            "--count out of range"
        );
        anyhow::ensure!(cfg.window > 0, "--window must be positive");
        anyhow::ensure!(cfg.users >= 10, "--users must be at least 10");
        let ssock = net::udp_socket(cfg.server)?;
        // Port 0 binds an ephemeral port; a direct run then targets it.
        let direct = cfg.target == cfg.server;
        cfg.server = local_v4(&ssock)?;
        if direct {
            cfg.target = cfg.server;
        }
        let (wsock, conns) = if cfg.tcp {
            let mut conns = Vec::new();
            for _ in 0..cfg.conns.max(1) {
                conns.push(TcpConn::connect(cfg.target)?);
            }
            (None, conns)
        } else {
            let w = net::udp_socket(cfg.watcher)?;
            cfg.watcher = local_v4(&w)?;
            (Some(w), Vec::new())
        };
        let count = cfg.count as usize;
        Ok(Runner {
            nonce: nonce.to_string().into_bytes(),
            t0: Instant::now(),
            flows: vec![Flow::default(); count],
            queue: VecDeque::with_capacity(cfg.window.min(count) + 1),
            outstanding: 0,
            wsock,
            ssock,
            conns,
            wsend: SendBatch::new(),
            ssend: SendBatch::new(),
            st: Stats {
                started: 0,
                completed: 0,
                timeouts: 0,
                bad_status: 0,
                mismatches: 0,
                unparsable: 0,
                unexpected: 0,
                late: 0,
                duplicates: 0,
                send_errors: 0,
                tcp_errors: 0,
                closed_seen: 0,
                open_seen: 0,
                msgs_in: 0,
                syscalls: 0,
                elapsed: Duration::ZERO,
                legs: (0..4).map(|_| hist()).collect(),
                all: hist(),
            },
            cfg,
        })
    }

    fn now(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }

    /// Runs until `count` flows are done or timed out, or the duration is over
    /// and every started flow is settled.
    pub fn run(mut self) -> Stats {
        self.t0 = Instant::now();
        let dur = self.cfg.duration.as_nanos() as u64;
        let tmo = self.cfg.timeout.as_nanos() as u64;
        let hard_stop = dur + tmo + 2_000_000_000;
        let mut last_sweep = 0u64;
        let mut busy = true;
        let mut pfds: Vec<libc::pollfd> = Vec::new();
        let mut recv = RecvBatch::new();
        loop {
            let now = self.now();
            // 1. start flows
            let may_start = now < dur && self.st.started < self.cfg.count;
            let mut next_due = u64::MAX;
            if may_start {
                let due = if self.cfg.rate > 0.0 {
                    ((self.cfg.rate * now as f64 / 1e9) as u64 + 1).min(self.cfg.count)
                } else {
                    self.cfg.count
                };
                let mut n = 0;
                while self.st.started < due
                    && self.outstanding < self.cfg.window
                    && n < net::BATCH * 4
                {
                    self.start_flow(now);
                    n += 1;
                }
                if n > 0 {
                    busy = true;
                }
                if self.cfg.rate > 0.0 && self.st.started < self.cfg.count {
                    next_due = ((self.st.started as f64) * 1e9 / self.cfg.rate) as u64;
                }
            }
            self.flush_watcher();
            // 2. wait for readiness (not at all while there is work)
            pfds.clear();
            pfds.push(libc::pollfd {
                fd: self.ssock.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
            if let Some(w) = &self.wsock {
                pfds.push(libc::pollfd {
                    fd: w.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
            for c in &self.conns {
                let ev = if c.out.is_empty() {
                    libc::POLLIN
                } else {
                    libc::POLLIN | libc::POLLOUT
                };
                pfds.push(libc::pollfd {
                    fd: c.fd(),
                    events: ev,
                    revents: 0,
                });
            }
            let wait = if busy || self.cfg.spin {
                0
            } else {
                let until_sweep = (last_sweep + 2_000_000).saturating_sub(now);
                let until_due = next_due.saturating_sub(now);
                until_sweep.min(until_due).min(2_000_000)
            };
            let ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: wait as _,
            };
            self.st.syscalls += 1;
            // SAFETY: pfds is a valid array of pollfd; ts a valid timespec.
            let r =
                unsafe { libc::ppoll(pfds.as_mut_ptr(), pfds.len() as _, &ts, std::ptr::null()) };
            busy = false;
            if r > 0 {
                if pfds[0].revents != 0 && self.drain_server(&mut recv) {
                    busy = true;
                }
                if self.wsock.is_some() {
                    if pfds[1].revents != 0 && self.drain_watcher_udp(&mut recv) {
                        busy = true;
                    }
                } else {
                    for i in 0..self.conns.len() {
                        let rev = pfds[1 + i].revents;
                        if rev & libc::POLLOUT != 0 {
                            self.flush_conn(i);
                        }
                        if rev & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) != 0
                            && self.drain_conn(i)
                        {
                            busy = true;
                        }
                    }
                }
            }
            // 3. timeouts
            let now = self.now();
            if now >= last_sweep + 1_000_000 {
                last_sweep = now;
                self.sweep(now, tmo);
            }
            if (!may_start || now >= dur)
                && self.outstanding == 0
                && (self.st.started > 0 || now >= dur)
            {
                break;
            }
            if now >= hard_stop {
                // Whatever is still outstanding never finished.
                self.sweep(u64::MAX, 0);
                break;
            }
        }
        self.st.elapsed = self.t0.elapsed();
        self.st.send_errors = self.wsend.send_errors + self.ssend.send_errors;
        self.st.syscalls += self.wsend.syscalls + self.ssend.syscalls + recv.syscalls;
        self.st
    }

    fn sweep(&mut self, now: u64, tmo: u64) {
        while let Some(&id) = self.queue.front() {
            let f = &mut self.flows[id as usize];
            if f.bits & DONE != 0 {
                self.queue.pop_front();
            } else if now.saturating_sub(f.t_sub) >= tmo {
                f.bits |= TIMED_OUT | DONE;
                self.outstanding -= 1;
                self.st.timeouts += 1;
                self.queue.pop_front();
            } else {
                break;
            }
        }
    }

    fn start_flow(&mut self, now: u64) {
        let id = self.st.started;
        self.st.started += 1;
        self.outstanding += 1;
        self.queue.push_back(id as u32);
        self.flows[id as usize].t_sub = now;
        let flow = self.cfg.first_flow + id;
        let (w, o, _) = gen::pair(flow % self.cfg.users, self.cfg.users);
        let (buf, local, tcp) = if self.cfg.tcp {
            let ci = (id as usize) % self.conns.len();
            let c = &mut self.conns[ci];
            (&mut c.out, c.local, true)
        } else {
            if self.wsend.is_full() {
                self.flush_watcher();
            }
            (self.wsend.push(self.cfg.target), self.cfg.watcher, false)
        };
        let tr: &[u8] = if tcp { b"TCP" } else { b"UDP" };
        let mut o_ = Out(buf);
        o_.s(b"SUBSCRIBE sip:o")
            .n(o)
            .s(b"@example.com SIP/2.0\r\nVia: SIP/2.0/")
            .s(tr)
            .s(b" ")
            .addr(local);
        o_.s(b";branch=z9hG4bK-lg")
            .s(&self.nonce)
            .s(b"-")
            .n(id)
            .s(b";rport\r\nMax-Forwards: 70\r\n");
        o_.s(b"From: <sip:w")
            .n(w)
            .s(b"@example.com>;tag=w")
            .n(id)
            .s(b"\r\nTo: <sip:o")
            .n(o)
            .s(b"@example.com>\r\n");
        o_.s(b"Call-ID: lg")
            .s(&self.nonce)
            .s(b"-")
            .n(id)
            .s(b"@lg\r\nCSeq: 1 SUBSCRIBE\r\n");
        o_.s(b"Contact: <sip:w").n(w).s(b"@").addr(local);
        if tcp {
            o_.s(b";transport=tcp");
        }
        o_.s(b">\r\nEvent: presence\r\nAccept: application/pidf+xml\r\nExpires: 3600\r\n");
        o_.s(b"User-Agent: presence-proxy-loadgen\r\nContent-Length: 0\r\n\r\n");
    }

    fn flush_watcher(&mut self) {
        if let Some(w) = &self.wsock {
            self.wsend.flush(w.as_raw_fd());
        } else {
            for i in 0..self.conns.len() {
                if !self.conns[i].out.is_empty() {
                    self.flush_conn(i);
                }
            }
        }
    }

    fn flush_conn(&mut self, i: usize) {
        self.st.syscalls += 1;
        if self.conns[i].flush().is_err() && !self.conns[i].closed {
            self.conns[i].closed = true;
            self.st.tcp_errors += 1;
        }
    }

    /// The flow a message belongs to, if this run started it.
    fn flow_id(&mut self, buf: &[u8], m: &Msg) -> Option<usize> {
        match flow_of(m.call_id.of(buf), &self.nonce) {
            Some(id) if id < self.st.started => {
                let f = &self.flows[id as usize];
                if f.bits & TIMED_OUT != 0 {
                    self.st.late += 1;
                    None
                } else {
                    Some(id as usize)
                }
            }
            _ => {
                self.st.unexpected += 1;
                None
            }
        }
    }

    fn record(&mut self, leg: usize, sent: u64, now: u64) {
        let d = now.saturating_sub(sent).max(1);
        self.st.legs[leg].saturating_record(d);
        self.st.all.saturating_record(d);
    }

    fn settle(&mut self, id: usize) {
        let f = &mut self.flows[id];
        if f.bits & ALL == ALL && f.bits & DONE == 0 {
            f.bits |= DONE;
            self.outstanding -= 1;
            self.st.completed += 1;
        }
    }

    /// Reads the presence server's socket until it is empty (bounded per call).
    fn drain_server(&mut self, recv: &mut RecvBatch) -> bool {
        let mut any = false;
        for _ in 0..8 {
            let n = recv.recv(self.ssock.as_raw_fd());
            if n == 0 {
                break;
            }
            any = true;
            let now = self.now();
            for i in 0..n {
                let (buf, _src) = recv.get(i);
                self.on_server(buf, now);
            }
            self.ssend.flush(self.ssock.as_raw_fd());
            if n < net::BATCH {
                break;
            }
        }
        any
    }

    fn on_server(&mut self, buf: &[u8], now: u64) {
        self.st.msgs_in += 1;
        let Some(m) = Msg::parse(buf) else {
            self.st.unparsable += 1;
            return;
        };
        let Some(id) = self.flow_id(buf, &m) else {
            return;
        };
        match m.start {
            Start::Request(Method::Subscribe) => {
                if self.flows[id].bits & GOT_SUB != 0 {
                    self.st.duplicates += 1;
                    return;
                }
                let t_sub = self.flows[id].t_sub;
                self.record(0, t_sub, now);
                self.flows[id].bits |= GOT_SUB;
                self.flows[id].t_srv = now;
                self.answer_subscribe(buf, &m, id as u64);
            }
            Start::Response(code) if m.cseq_method(buf) == Method::Notify => {
                if !(200..300).contains(&code) {
                    self.st.bad_status += 1;
                    return;
                }
                if self.flows[id].bits & GOT_200 != 0 {
                    self.st.duplicates += 1;
                    return;
                }
                let t_ok = self.flows[id].t_ok;
                self.record(3, t_ok, now);
                self.flows[id].bits |= GOT_200;
                self.settle(id);
            }
            _ => self.st.unexpected += 1,
        }
    }

    /// 202 with the Record-Route echoed and a To tag, then the NOTIFY along the
    /// route set: to the first Route when it is a loose router, else to the Contact.
    fn answer_subscribe(&mut self, buf: &[u8], m: &Msg, id: u64) {
        let Some(reply_to) = via_addr(m.vias[0].of(buf)) else {
            self.st.unparsable += 1;
            return;
        };
        let contact = m.contact.of(buf);
        let Some(target) = uri_addr(contact) else {
            self.st.unparsable += 1;
            return;
        };
        let next_hop = if m.n_rrs > 0 {
            match uri_addr(first_element(m.rrs[0].of(buf))) {
                Some(u) if u.lr => u.addr,
                Some(u) => u.addr,
                None => {
                    self.st.unparsable += 1;
                    return;
                }
            }
        } else {
            target.addr
        };
        if self.ssend.len_free() < 2 {
            self.ssend.flush(self.ssock.as_raw_fd());
        }
        let server = self.cfg.server;
        // 202 Accepted (RFC 6665 allows 200 or 202; the kit's server sends 202).
        {
            let mut o = Out(self.ssend.push(reply_to));
            o.s(b"SIP/2.0 202 Accepted\r\n");
            for v in &m.vias[..m.n_vias] {
                o.s(b"Via: ").s(v.of(buf)).s(b"\r\n");
            }
            o.s(b"From: ")
                .s(m.from.of(buf))
                .s(b"\r\nTo: ")
                .s(m.to.of(buf))
                .s(b";tag=s")
                .n(id)
                .s(b"\r\n");
            o.s(b"Call-ID: ")
                .s(m.call_id.of(buf))
                .s(b"\r\nCSeq: ")
                .s(m.cseq.of(buf))
                .s(b"\r\n");
            for rr in &m.rrs[..m.n_rrs] {
                o.s(b"Record-Route: ").s(rr.of(buf)).s(b"\r\n");
            }
            o.s(b"Contact: <sip:")
                .addr(server)
                .s(b">\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n");
        }
        // NOTIFY in the new dialog: From/To swapped, our tag on From.
        let owner = name_addr_uri(m.to.of(buf));
        let body_len = PIDF_HEAD.len() + PIDF_MID.len() + PIDF_TAIL.len() + 2 * owner.len();
        let mut o = Out(self.ssend.push(next_hop));
        o.s(b"NOTIFY ")
            .s(name_addr_uri(contact))
            .s(b" SIP/2.0\r\nVia: SIP/2.0/UDP ")
            .addr(server);
        o.s(b";branch=z9hG4bK-lgn")
            .s(&self.nonce)
            .s(b"-")
            .n(id)
            .s(b"\r\nMax-Forwards: 70\r\n");
        o.s(b"From: ")
            .s(m.to.of(buf))
            .s(b";tag=s")
            .n(id)
            .s(b"\r\nTo: ")
            .s(m.from.of(buf))
            .s(b"\r\n");
        o.s(b"Call-ID: ")
            .s(m.call_id.of(buf))
            .s(b"\r\nCSeq: 1 NOTIFY\r\n");
        for rr in &m.rrs[..m.n_rrs] {
            o.s(b"Route: ").s(rr.of(buf)).s(b"\r\n");
        }
        o.s(b"Contact: <sip:")
            .addr(server)
            .s(b">\r\nEvent: presence\r\nSubscription-State: active;expires=3600\r\n");
        o.s(b"Content-Type: application/pidf+xml\r\nContent-Length: ")
            .n(body_len as u64)
            .s(b"\r\n\r\n");
        o.s(PIDF_HEAD).s(owner).s(PIDF_MID).s(owner).s(PIDF_TAIL);
    }

    fn drain_watcher_udp(&mut self, recv: &mut RecvBatch) -> bool {
        let Some(fd) = self.wsock.as_ref().map(|w| w.as_raw_fd()) else {
            return false;
        };
        let mut any = false;
        for _ in 0..8 {
            let n = recv.recv(fd);
            if n == 0 {
                break;
            }
            any = true;
            let now = self.now();
            for i in 0..n {
                let (buf, _src) = recv.get(i);
                self.on_watcher(buf, now, None);
            }
            self.wsend.flush(fd);
            if n < net::BATCH {
                break;
            }
        }
        any
    }

    fn drain_conn(&mut self, ci: usize) -> bool {
        self.st.syscalls += 1;
        // A read error ends the connection just as end of stream does.
        let open = self.conns[ci].fill().unwrap_or(false);
        if !open && !self.conns[ci].closed {
            self.conns[ci].closed = true;
            self.st.tcp_errors += 1;
        }
        let inb = std::mem::take(&mut self.conns[ci].inb);
        let now = self.now();
        let mut off = 0;
        let mut any = false;
        while let Some((skip, len)) = net::frame(&inb[off..]) {
            let s = off + skip;
            self.on_watcher(&inb[s..s + len], now, Some(ci));
            off = s + len;
            any = true;
        }
        let mut inb = inb;
        inb.drain(..off);
        self.conns[ci].inb = inb;
        if !self.conns[ci].out.is_empty() {
            self.flush_conn(ci);
        }
        any
    }

    fn on_watcher(&mut self, buf: &[u8], now: u64, conn: Option<usize>) {
        self.st.msgs_in += 1;
        let Some(m) = Msg::parse(buf) else {
            self.st.unparsable += 1;
            return;
        };
        let Some(id) = self.flow_id(buf, &m) else {
            return;
        };
        match m.start {
            Start::Response(code) if m.cseq_method(buf) == Method::Subscribe => {
                if !(200..300).contains(&code) {
                    self.st.bad_status += 1;
                    return;
                }
                if self.flows[id].bits & GOT_202 != 0 {
                    self.st.duplicates += 1;
                    return;
                }
                let t = self.flows[id].t_srv;
                self.record(1, t, now);
                self.flows[id].bits |= GOT_202;
                self.settle(id);
            }
            Start::Request(Method::Notify) => {
                let dup = self.flows[id].bits & GOT_NOTIFY != 0;
                if dup {
                    self.st.duplicates += 1;
                } else {
                    let t = self.flows[id].t_srv;
                    self.record(2, t, now);
                    self.check_body(buf, &m, id);
                    self.flows[id].bits |= GOT_NOTIFY;
                    self.flows[id].t_ok = now;
                }
                self.answer_notify(buf, &m, conn);
                if !dup {
                    self.settle(id);
                }
            }
            _ => self.st.unexpected += 1,
        }
    }

    /// Blocked pairs must arrive `closed`, allowed ones `open` (the server always
    /// sends open); anything else is a mismatch.
    fn check_body(&mut self, buf: &[u8], m: &Msg, id: usize) {
        let body = m.body.of(buf);
        let closed = sip::contains(body, b"closed</");
        let open = sip::contains(body, b"open</");
        if closed {
            self.st.closed_seen += 1;
        } else if open {
            self.st.open_seen += 1;
        }
        if self.cfg.check {
            let flow = self.cfg.first_flow + id as u64;
            let (_, _, blocked) = gen::pair(flow % self.cfg.users, self.cfg.users);
            let ok = if blocked {
                closed && !open
            } else {
                open && !closed
            };
            if !ok {
                self.st.mismatches += 1;
            }
        }
    }

    /// 200 OK to the NOTIFY: on the same connection for TCP (RFC 3261 §18.2.2),
    /// else to the top Via.
    fn answer_notify(&mut self, buf: &[u8], m: &Msg, conn: Option<usize>) {
        let out: &mut Vec<u8> = match conn {
            Some(ci) => &mut self.conns[ci].out,
            None => {
                let Some(to) = via_addr(m.vias[0].of(buf)) else {
                    self.st.unparsable += 1;
                    return;
                };
                if self.wsend.is_full() {
                    if let Some(w) = &self.wsock {
                        self.wsend.flush(w.as_raw_fd());
                    }
                }
                self.wsend.push(to)
            }
        };
        let mut o = Out(out);
        o.s(b"SIP/2.0 200 OK\r\n");
        for v in &m.vias[..m.n_vias] {
            o.s(b"Via: ").s(v.of(buf)).s(b"\r\n");
        }
        o.s(b"From: ")
            .s(m.from.of(buf))
            .s(b"\r\nTo: ")
            .s(m.to.of(buf))
            .s(b"\r\n");
        o.s(b"Call-ID: ")
            .s(m.call_id.of(buf))
            .s(b"\r\nCSeq: ")
            .s(m.cseq.of(buf))
            .s(b"\r\n");
        o.s(b"Content-Length: 0\r\n\r\n");
    }
}
