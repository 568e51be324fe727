//! Stateless routing (RFC 3261 §16.11): where each request and response goes and
//! the routing edits that take it there (Via, Max-Forwards, Record-Route, Route).
//!
//! Direction comes from the source alone: anything the upstream sends travels to
//! the phones, everything else goes to the upstream. Phones put their outbound
//! proxy in a Route on every request, so "a Route names us" says nothing about
//! direction (DESIGN.md "The engine").
//!
//! Statelessness needs two derived values instead of a transaction table:
//! - our Via branch is a hash of the incoming transaction's key, so a
//!   retransmission, the CANCEL of an INVITE and the ACK of a non-2xx final
//!   response all get the branch the original got (§16.11: "the branch ... MUST
//!   be the same for each retransmission");
//! - a second hash of what stays constant along a path (Request-URI, tags,
//!   Call-ID, CSeq number, direction) closes the branch: a request arriving with a
//!   Via of ours carrying the same loop hash came back unchanged and is a loop
//!   (482, §16.3 step 4), while a spiral (the Request-URI was retargeted) passes.

use std::hash::{BuildHasher, Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use dashmap::DashMap;

use super::metrics::{DropReason, Refusal};
use super::{ConnId, Direction, EngineConfig, Received, Transport};
use crate::config::canonical_ip;
use crate::sip::{Editor, HeaderKind, Message, Method, Uri};

/// The magic cookie of RFC 3261 §8.1.1.7 followed by our mark, so our own Vias
/// can be told from a previous hop's.
pub const BRANCH_PREFIX: &str = "z9hG4bKpp";
/// Via parameter naming the TCP connection a request came on (see `Router::via`).
pub const CONN_PARAM: &str = "pp-conn";
/// Max-Forwards of a request that arrived without one (RFC 3261 §8.1.1.6).
pub const DEFAULT_MAX_FORWARDS: u32 = 70;
/// Flows remembered for reaching phones (Contact → connection); beyond this new
/// ones are not learned (the phone is then reached at its Contact address).
const MAX_FLOWS: usize = 200_000;
/// Contact addresses remembered per TCP connection.
const MAX_FLOWS_PER_CONN: usize = 8;

/// Where a message goes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHop {
    pub destination: SocketAddr,
    pub transport: Transport,
    pub conn: Option<ConnId>,
}

/// A request the proxy answers itself instead of forwarding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refuse {
    pub status: u16,
    pub reason: &'static str,
    pub why: Refusal,
}

/// A message dropped without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drop(pub DropReason);

/// How to reach a phone that registered or subscribed through us: its Contact
/// address may not be where it can be reached (TCP from an ephemeral port, NAT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Flow {
    remote: SocketAddr,
    transport: Transport,
    conn: Option<ConnId>,
}

/// The routing half of the engine; owns the flow table.
#[derive(Debug)]
pub struct Router {
    cfg: EngineConfig,
    /// `host:port` of each listen address (as in `cfg.local`), written into every
    /// Via and Record-Route: formatted once here instead of per message.
    host_ports: Vec<String>,
    /// Our Record-Route value for each listen address, over UDP and over TCP
    /// (RFC 3261 §16.6 step 4), formatted once like `host_ports`.
    record_routes: Vec<[String; 2]>,
    /// The advertised host as an IP, when it is one.
    advertised_ip: Option<IpAddr>,
    /// Finds [`BRANCH_PREFIX`] in a Via line; built once, as a `Finder`'s set-up
    /// costs more than searching one line.
    our_branch: memchr::memmem::Finder<'static>,
    /// Contact host:port → the flow its requests came on.
    flows: DashMap<SocketAddr, Flow, ahash::RandomState>,
    /// Which contact addresses each TCP connection announced, to forget them when it closes.
    by_conn: DashMap<ConnId, Vec<SocketAddr>, ahash::RandomState>,
}

impl Router {
    pub fn new(cfg: EngineConfig) -> Self {
        let host_ports: Vec<String> = cfg.local.iter().map(|l| host_port(&cfg, *l)).collect();
        let record_routes = host_ports
            .iter()
            .map(|hp| [Transport::Udp, Transport::Tcp].map(|t| record_route(hp, t)))
            .collect();
        let advertised_ip = cfg
            .advertised_host
            .as_deref()
            .and_then(|h| parse_host_ip(h.as_bytes()));
        Router {
            host_ports,
            record_routes,
            advertised_ip,
            our_branch: memchr::memmem::Finder::new(BRANCH_PREFIX.as_bytes()),
            cfg,
            flows: DashMap::with_hasher_and_shard_amount(
                ahash::RandomState::default(),
                crate::engine::GROWING_MAP_SHARDS,
            ),
            by_conn: DashMap::default(),
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Phone → upstream or upstream → phone, decided by the source address only.
    pub fn direction_of(&self, rx: &Received) -> Direction {
        let src = SocketAddr::new(canonical_ip(rx.source.ip()), rx.source.port());
        let up = self.cfg.upstream;
        if (canonical_ip(up.ip()) == src.ip() && up.port() == src.port())
            || self.cfg.upstream_peers.iter().any(|p| p.matches(rx.source))
        {
            Direction::Upstream
        } else {
            Direction::Downstream
        }
    }

    /// Forgets the flows a closed TCP connection carried.
    pub fn connection_closed(&self, conn: ConnId) {
        if let Some((_, contacts)) = self.by_conn.remove(&conn) {
            for c in contacts {
                self.flows.remove_if(&c, |_, f| f.conn == Some(conn));
            }
        }
    }

    /// Checks a request and applies the routing edits to `ed`: received/rport,
    /// Route naming us removed, Max-Forwards, Record-Route, our Via. The caller
    /// may add its own edits to `ed` before `finish()`.
    pub fn request(
        &self,
        rx: &Received,
        msg: &Message,
        dir: Direction,
        ed: &mut Editor<'_>,
    ) -> Result<NextHop, Refuse> {
        let method = msg.method().unwrap_or(Method::Other);

        // RFC 3261 §16.3 step 3.
        let max_forwards = match msg.max_forwards() {
            Some(0) => {
                return Err(Refuse {
                    status: 483,
                    reason: "Too Many Hops",
                    why: Refusal::TooManyHops,
                })
            }
            Some(n) => n - 1,
            None if msg.header("Max-Forwards").is_some() => {
                return Err(Refuse {
                    status: 400,
                    reason: "Bad Request - Malformed Max-Forwards",
                    why: Refusal::Malformed,
                })
            }
            None => DEFAULT_MAX_FORWARDS,
        };

        let from_tag = msg.from().and_then(|f| f.tag);
        let to = msg.to();
        let to_tag = to.as_ref().and_then(|t| t.tag);
        let loop_hash = loop_hash(msg, dir, from_tag, to_tag);
        let loop_hex = hex_u32(loop_hash);
        let top_via = msg.top_via();
        // Only a Via with our branch can be a loop, so the Vias are parsed one by
        // one only when some Via line holds our prefix at all: a request that never
        // passed here costs one search per Via line.
        let may_loop = msg
            .lines_of_kind(HeaderKind::Via)
            .any(|h| self.our_branch.find(h.value(msg)).is_some());
        if may_loop {
            for v in msg.vias() {
                if v.branch.is_some_and(|b| {
                    b.starts_with(BRANCH_PREFIX.as_bytes()) && b.ends_with(&loop_hex)
                }) && self.names_us(v.host, v.port)
                {
                    return Err(Refuse {
                        status: 482,
                        reason: "Loop Detected",
                        why: Refusal::Loop,
                    });
                }
            }
        }

        // RFC 3261 §16.4: a Route naming us was for us; the next one (if any) is
        // where the request goes. Both of our double Record-Routes come back as Routes.
        let mut next_route: Option<&[u8]> = None;
        for r in msg.routes() {
            if next_route.is_none() && self.uri_names_us(r) {
                ed.pop_route();
            } else {
                next_route = Some(r);
                break;
            }
        }

        let hop = match dir {
            Direction::Downstream => {
                self.learn_flow(rx, msg);
                NextHop {
                    destination: self.cfg.upstream,
                    transport: self.cfg.upstream_transport,
                    conn: None,
                }
            }
            Direction::Upstream => {
                let target = match next_route {
                    Some(r) => r,
                    None => msg.request_uri().unwrap_or_default(),
                };
                self.hop_for_uri(target).ok_or(Refuse {
                    status: 404,
                    reason: "Not Found - No Route To The User",
                    why: Refusal::Unroutable,
                })?
            }
        };

        // RFC 3261 §18.2.1 and RFC 3581 §4.
        if let Some(via) = &top_via {
            let src_ip = canonical_ip(rx.source.ip());
            let wants_rport = via.rport.is_some();
            let sent_by_differs = parse_host_ip(via.host).map(canonical_ip) != Some(src_ip);
            if wants_rport || sent_by_differs {
                let mut text = [0u8; IP_TEXT_MAX];
                ed.set_top_via_params(
                    Some(ip_text(src_ip, &mut text)),
                    wants_rport.then_some(rx.source.port()),
                );
            }
        }

        ed.set_max_forwards(max_forwards);

        let dialog_creating = (method == Method::Subscribe
            || (method == Method::Invite && self.cfg.record_route_invite))
            && to.is_some()
            && to_tag.is_none();
        if dialog_creating {
            // RFC 5658 double Record-Route when the two sides differ: the one
            // nearer the UAS (pushed last, on top) names the side facing it.
            let inbound = self.record_route(rx.local, rx.transport);
            let outbound = self.record_route(self.local_for(hop.destination), hop.transport);
            ed.push_record_route(inbound.as_bytes());
            if outbound != inbound {
                ed.push_record_route(outbound.as_bytes());
            }
        }

        let mut branch = [0u8; BRANCH_LEN];
        branch[..BRANCH_PREFIX.len()].copy_from_slice(BRANCH_PREFIX.as_bytes());
        let tx = transaction_hash(msg, top_via.as_ref(), from_tag, to_tag);
        branch[BRANCH_PREFIX.len()..BRANCH_PREFIX.len() + 16].copy_from_slice(&hex_u64(tx));
        branch[BRANCH_PREFIX.len() + 16] = b'.';
        branch[BRANCH_PREFIX.len() + 17..].copy_from_slice(&loop_hex);
        self.push_via(
            ed,
            self.local_for(hop.destination),
            hop.transport,
            &branch,
            rx.conn,
        );
        Ok(hop)
    }

    /// Is the request addressed to the proxy itself: its Request-URI names us and
    /// every Route (if any) does too? (An OPTIONS keep-alive to an outbound proxy,
    /// RFC 3261 §11.)
    pub fn addressed_to_us(&self, msg: &Message) -> bool {
        msg.request_uri().is_some_and(|u| self.uri_names_us(u))
            && msg.routes().all(|r| self.uri_names_us(r))
    }

    /// Where a response goes: our Via popped, then the next Via's received/rport
    /// or sent-by (RFC 3261 §18.2.2, RFC 3581 §4), over the connection the
    /// request came on when it came over TCP.
    pub fn response(&self, msg: &Message, ed: &mut Editor<'_>) -> Result<NextHop, Drop> {
        let mut vias = msg.vias();
        let ours = vias.next().ok_or(Drop(DropReason::MalformedResponse))?;
        if !self.names_us(ours.host, ours.port) {
            return Err(Drop(DropReason::ResponseNotOurs));
        }
        let next = vias.next().ok_or(Drop(DropReason::ResponseForUs))?;
        ed.pop_via();
        let transport = via_transport(next.transport).ok_or(Drop(DropReason::BadDestination))?;
        let host = next.received.unwrap_or(next.host);
        let ip = parse_host_ip(host)
            .or_else(|| parse_host_ip(next.host))
            .ok_or(Drop(DropReason::BadDestination))?;
        let port = match next.rport {
            Some(Some(p)) => p,
            _ => next.port.unwrap_or(5060),
        };
        let destination = SocketAddr::new(ip, port);
        if !routable(destination) {
            return Err(Drop(DropReason::BadDestination));
        }
        let conn = match transport {
            Transport::Tcp => ours
                .param(CONN_PARAM)
                .flatten()
                .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
                .map(ConnId)
                .or_else(|| self.flows.get(&destination).and_then(|f| f.conn)),
            Transport::Udp => None,
        };
        Ok(NextHop {
            destination,
            transport,
            conn,
        })
    }

    /// Where a request for this URI goes: the flow the phone registered or
    /// subscribed on, else the URI's own address (IP literals only: no DNS on the
    /// forwarding path).
    fn hop_for_uri(&self, uri: &[u8]) -> Option<NextHop> {
        let u = Uri::parse(uri).ok()?;
        if !(u.scheme.eq_ignore_ascii_case(b"sip")) {
            return None;
        }
        let ip = parse_host_ip(u.host)?;
        let addr = SocketAddr::new(ip, u.port.unwrap_or(5060));
        if self.names_us(u.host, u.port) || !routable(addr) {
            return None;
        }
        if let Some(f) = self.flows.get(&addr) {
            return Some(NextHop {
                destination: f.remote,
                transport: f.transport,
                conn: f.conn,
            });
        }
        let transport = match u.param("transport") {
            Some(Some(t)) if t.eq_ignore_ascii_case(b"tcp") => Transport::Tcp,
            Some(Some(t)) if t.eq_ignore_ascii_case(b"udp") => Transport::Udp,
            Some(Some(_)) => return None,
            _ => Transport::Udp,
        };
        Some(NextHop {
            destination: addr,
            transport,
            conn: None,
        })
    }

    /// Remembers how to reach the phone behind this request's Contact, so
    /// requests to it reuse its connection (RFC 5923 style reuse) or reach it
    /// behind NAT.
    fn learn_flow(&self, rx: &Received, msg: &Message) {
        if !matches!(
            msg.method(),
            Some(Method::Register | Method::Subscribe | Method::Invite)
        ) {
            return;
        }
        let Some(contact) = msg.contact_uri().and_then(|c| Uri::parse(c).ok()) else {
            return;
        };
        let Some(ip) = parse_host_ip(contact.host) else {
            return;
        };
        let key = SocketAddr::new(ip, contact.port.unwrap_or(5060));
        let flow = Flow {
            remote: rx.source,
            transport: rx.transport,
            conn: rx.conn,
        };
        if self.flows.get(&key).is_some_and(|f| *f == flow) {
            return;
        }
        if self.flows.len() >= MAX_FLOWS && !self.flows.contains_key(&key) {
            return;
        }
        self.flows.insert(key, flow);
        if let Some(conn) = rx.conn {
            let mut list = self.by_conn.entry(conn).or_default();
            if !list.contains(&key) && list.len() < MAX_FLOWS_PER_CONN {
                list.push(key);
            }
        }
    }

    /// Is host:port one of our listen addresses (or the advertised host)?
    pub fn names_us(&self, host: &[u8], port: Option<u16>) -> bool {
        let port = port.unwrap_or(5060);
        let ip = parse_host_ip(host).map(canonical_ip);
        self.cfg.local.iter().any(|l| {
            if l.port() != port {
                return false;
            }
            match ip {
                Some(ip) => {
                    ip == canonical_ip(l.ip())
                        || (l.ip().is_unspecified() && (ip.is_loopback() || ip.is_unspecified()))
                        || self.advertised_ip == Some(ip)
                }
                None => self
                    .cfg
                    .advertised_host
                    .as_deref()
                    .is_some_and(|h| h.as_bytes().eq_ignore_ascii_case(host)),
            }
        })
    }

    fn uri_names_us(&self, uri: &[u8]) -> bool {
        Uri::parse(uri).is_ok_and(|u| u.user.is_none() && self.names_us(u.host, u.port))
    }

    /// The local address we send to `dest` from: the first listen address of the
    /// same IP family.
    fn local_for(&self, dest: SocketAddr) -> SocketAddr {
        let local = &self.cfg.local;
        local
            .iter()
            .find(|l| l.is_ipv4() == dest.is_ipv4())
            .or_else(|| local.first())
            .copied()
            .unwrap_or_else(|| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5060))
    }

    /// `host:port` for our Via and Record-Route (see [`host_port`]), from the
    /// table made at start when `local` is a listen address.
    fn host_port(&self, local: SocketAddr) -> std::borrow::Cow<'_, str> {
        match self.cfg.local.iter().position(|l| *l == local) {
            Some(i) => std::borrow::Cow::Borrowed(self.host_ports[i].as_str()),
            None => std::borrow::Cow::Owned(host_port(&self.cfg, local)),
        }
    }

    /// Pushes our Via onto `ed`. Over TCP it carries `alias` (RFC 5923 §5): the next hop may send
    /// its requests for us back over this connection instead of opening one from
    /// an ephemeral port, which would not look like the upstream's address. When
    /// the request came over a TCP connection, the Via names it ([`CONN_PARAM`]) so
    /// the response goes back over that same connection (RFC 3261 §18.2.2)
    /// without the proxy keeping any transaction state.
    fn push_via(
        &self,
        ed: &mut Editor<'_>,
        local: SocketAddr,
        transport: Transport,
        branch: &[u8],
        came_on: Option<ConnId>,
    ) {
        let host_port = self.host_port(local);
        let sent_protocol: &[u8] = match transport {
            Transport::Udp => b"SIP/2.0/UDP ",
            Transport::Tcp => b"SIP/2.0/TCP ",
        };
        let alias: &[u8] = match transport {
            Transport::Udp => b"",
            Transport::Tcp => b";alias",
        };
        let (digits, start) = crate::sip::decimal(came_on.map_or(0, |ConnId(id)| id));
        let conn: [&[u8]; 4] = match came_on {
            Some(_) => [b";", CONN_PARAM.as_bytes(), b"=", &digits[start..]],
            None => [b""; 4],
        };
        ed.push_via_parts(&[
            sent_protocol,
            host_port.as_bytes(),
            b";branch=",
            branch,
            alias,
            conn[0],
            conn[1],
            conn[2],
            conn[3],
        ]);
    }

    fn record_route(&self, local: SocketAddr, transport: Transport) -> std::borrow::Cow<'_, str> {
        match self.cfg.local.iter().position(|l| *l == local) {
            Some(i) => {
                let t = match transport {
                    Transport::Udp => 0,
                    Transport::Tcp => 1,
                };
                std::borrow::Cow::Borrowed(self.record_routes[i][t].as_str())
            }
            None => std::borrow::Cow::Owned(record_route(&self.host_port(local), transport)),
        }
    }
}

/// The longest text of an IP address (an IPv6 address with an embedded IPv4).
const IP_TEXT_MAX: usize = 45;

/// `ip` as text in `buf`, without a heap allocation: the `received` parameter of
/// every request whose Via asks for `rport` (RFC 3581 §4).
fn ip_text(ip: IpAddr, buf: &mut [u8; IP_TEXT_MAX]) -> &[u8] {
    use std::io::Write;
    if let IpAddr::V4(v4) = ip {
        // By hand: `Display` for an address goes through the formatter's padding
        // machinery, about 1 100 instructions per request for 7 to 15 bytes.
        let mut n = 0;
        for (i, octet) in v4.octets().into_iter().enumerate() {
            if i > 0 {
                buf[n] = b'.';
                n += 1;
            }
            if octet >= 100 {
                buf[n] = b'0' + octet / 100;
                n += 1;
            }
            if octet >= 10 {
                buf[n] = b'0' + octet / 10 % 10;
                n += 1;
            }
            buf[n] = b'0' + octet % 10;
            n += 1;
        }
        return &buf[..n];
    }
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    // Cannot fail: IP_TEXT_MAX holds the longest address.
    let _ = write!(cursor, "{ip}");
    let n = cursor.position() as usize;
    &buf[..n]
}

/// `<sip:host:port;lr>`, with `transport=tcp` over TCP (RFC 3261 §16.6 step 4).
fn record_route(host_port: &str, transport: Transport) -> String {
    let t = match transport {
        Transport::Udp => "",
        Transport::Tcp => ";transport=tcp",
    };
    format!("<sip:{host_port}{t};lr>")
}

/// `host:port` for our Via and Record-Route; IPv6 in brackets (RFC 5118 §4.1).
fn host_port(cfg: &EngineConfig, local: SocketAddr) -> String {
    if let Some(h) = &cfg.advertised_host {
        return format!("{h}:{}", local.port());
    }
    let ip = match local.ip() {
        IpAddr::V4(v) if v.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v) if v.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, local.port()).to_string()
}

/// Length of our branch: prefix, 16 hex digits of the transaction hash, `.`, 8 of
/// the loop hash.
const BRANCH_LEN: usize = BRANCH_PREFIX.len() + 16 + 1 + 8;

/// The hasher of both derived hashes: fixed seeds, so a retransmission gets the
/// same branch after a restart too (as RFC 3261 §16.11 asks of a stateless
/// proxy); the values are not secrets, only stable. ahash instead of SipHash: it
/// was ~3 % of the instructions per forwarded request.
fn stable_hasher() -> impl Hasher {
    ahash::RandomState::with_seeds(
        0x243f_6a88_85a3_08d3,
        0x1319_8a2e_0370_7344,
        0xa409_3822_299f_31d0,
        0x082e_fa98_ec4e_6c89,
    )
    .build_hasher()
}

fn hex_u64(v: u64) -> [u8; 16] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = HEX[((v >> (60 - 4 * i)) & 0xf) as usize];
    }
    out
}

fn hex_u32(v: u32) -> [u8; 8] {
    let mut out = [0u8; 8];
    out.copy_from_slice(&hex_u64(u64::from(v))[8..]);
    out
}

/// Hash of what identifies the incoming transaction (RFC 3261 §17.2.3): the top
/// Via's branch when it carries the magic cookie, else the RFC 2543 key (top Via,
/// tags, Call-ID, CSeq number, Request-URI). The method is left out so CANCEL and
/// a non-2xx ACK match their INVITE. The caller has parsed the top Via and tags.
fn transaction_hash(
    msg: &Message,
    top_via: Option<&crate::sip::Via<'_>>,
    from_tag: Option<&[u8]>,
    to_tag: Option<&[u8]>,
) -> u64 {
    let mut h = stable_hasher();
    match top_via {
        Some(v) if v.branch.is_some_and(|b| b.starts_with(b"z9hG4bK")) => {
            v.branch.hash(&mut h);
            v.host.hash(&mut h);
            v.port.hash(&mut h);
        }
        _ => {
            msg.header("Via").hash(&mut h);
            from_tag.hash(&mut h);
            to_tag.hash(&mut h);
            msg.call_id().hash(&mut h);
            msg.cseq().map(|c| c.0).hash(&mut h);
            msg.request_uri().hash(&mut h);
        }
    }
    h.finish()
}

/// Hash of what a request keeps along its whole path, for loop detection
/// (RFC 3261 §16.6 step 8's second part), as 8 hex digits.
fn loop_hash(msg: &Message, dir: Direction, from_tag: Option<&[u8]>, to_tag: Option<&[u8]>) -> u32 {
    let mut h = stable_hasher();
    matches!(dir, Direction::Upstream).hash(&mut h);
    msg.request_uri().hash(&mut h);
    from_tag.hash(&mut h);
    to_tag.hash(&mut h);
    msg.call_id().hash(&mut h);
    msg.cseq().map(|c| c.0).hash(&mut h);
    msg.first_of_kind(crate::sip::HeaderKind::ProxyRequire)
        .hash(&mut h);
    h.finish() as u32
}

/// An IP literal in a Via or URI host (IPv6 bracketed per RFC 5118, or bare in a
/// `received` parameter).
pub fn parse_host_ip(host: &[u8]) -> Option<IpAddr> {
    // A dotted quad is read by hand: std's parser costs about 170 instructions and
    // runs two or three times per message (Via, Route, Request-URI). Only an IPv6
    // reference (brackets, colons) goes on to it.
    if host.first() != Some(&b'[') {
        if let Some(v4) = parse_ipv4(host) {
            return Some(IpAddr::V4(v4));
        }
        memchr::memchr(b':', host)?;
    }
    let s = std::str::from_utf8(host).ok()?;
    let s = s
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(s);
    s.parse().ok()
}

/// `IPv4address` (RFC 3261 §25.1), read exactly as `Ipv4Addr::from_str` reads it:
/// four decimal octets of one to three digits, no leading zero, none above 255.
/// One pass over the bytes; a name fails at its first letter.
fn parse_ipv4(b: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut part = 0;
    let (mut value, mut digits) = (0u16, 0u8);
    for &c in b {
        match c {
            b'0'..=b'9' => {
                // A leading zero is only allowed alone ("0", not "01").
                if digits == 3 || (digits == 1 && value == 0) {
                    return None;
                }
                value = value * 10 + u16::from(c - b'0');
                digits += 1;
            }
            b'.' if digits > 0 && part < 3 => {
                octets[part] = u8::try_from(value).ok()?;
                part += 1;
                (value, digits) = (0, 0);
            }
            _ => return None,
        }
    }
    if digits == 0 || part != 3 {
        return None;
    }
    octets[3] = u8::try_from(value).ok()?;
    Some(Ipv4Addr::from(octets))
}

fn via_transport(t: &[u8]) -> Option<Transport> {
    if t.eq_ignore_ascii_case(b"UDP") {
        Some(Transport::Udp)
    } else if t.eq_ignore_ascii_case(b"TCP") {
        Some(Transport::Tcp)
    } else {
        None
    }
}

/// Never send to broadcast, multicast or unspecified addresses or port 0 (RFC
/// 4475 §3.3.10: a response with a broadcast Via must not be sent there).
fn routable(addr: SocketAddr) -> bool {
    let ip = canonical_ip(addr.ip());
    let bad = match ip {
        IpAddr::V4(v4) => v4.is_broadcast() || v4.is_multicast() || v4.is_unspecified(),
        IpAddr::V6(v6) => v6.is_multicast() || v6.is_unspecified(),
    };
    !bad && addr.port() != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The `received` text is the address's own `Display`, for every address.
        #[test]
        fn ip_text_is_the_address_display(bits in any::<u32>(), v6 in any::<u128>()) {
            let mut buf = [0u8; IP_TEXT_MAX];
            for ip in [
                IpAddr::V4(Ipv4Addr::from(bits)),
                IpAddr::V6(Ipv6Addr::from(v6)),
                IpAddr::V6(Ipv4Addr::from(bits).to_ipv6_mapped()),
            ] {
                let want = ip.to_string();
                prop_assert_eq!(ip_text(ip, &mut buf), want.as_bytes());
            }
        }
    }

    proptest! {
        /// The hand-written IPv4 reader agrees with std's, on addresses and on
        /// near misses (leading zeros, 256, empty or extra parts, names).
        #[test]
        fn a_host_reads_as_std_reads_it(
            host in "[0-9.a-z:]{0,17}",
            near in "([0-9]{1,4}[.]){2,4}[0-9]{0,4}",
            bits in any::<u32>(),
        ) {
            let std_ip = |h: &str| h.parse::<IpAddr>().ok();
            prop_assert_eq!(parse_host_ip(host.as_bytes()), std_ip(&host));
            prop_assert_eq!(parse_host_ip(near.as_bytes()), std_ip(&near));
            let quad = Ipv4Addr::from(bits).to_string();
            prop_assert_eq!(parse_host_ip(quad.as_bytes()), std_ip(&quad));
        }
    }

    #[test]
    fn hosts_near_an_ipv4_address() {
        for h in [
            "1.2.3.4",
            "01.2.3.4",
            "1.2.3.256",
            "1.2.3",
            "1.2.3.4.5",
            "1..3.4",
            "0.0.0.0",
            "255.255.255.255",
            "1.2.3.4 ",
            "a.b.c.d",
            "[::1]",
            "::1",
            "[1.2.3.4]",
            "1.2.3.0004",
            "",
        ] {
            assert_eq!(
                parse_host_ip(h.as_bytes()),
                h.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                    .ok(),
                "{h}"
            );
        }
    }

    #[test]
    fn ip_text_of_the_edges() {
        let mut buf = [0u8; IP_TEXT_MAX];
        for ip in [
            "0.0.0.0",
            "255.255.255.255",
            "10.0.100.9",
            "192.0.2.10",
            "1.20.255.99",
        ] {
            let a: IpAddr = ip.parse().unwrap();
            assert_eq!(ip_text(a, &mut buf), ip.as_bytes());
        }
    }
}
