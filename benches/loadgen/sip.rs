//! Just enough SIP for the load harness: a header index over a received message and
//! the four messages of a presence flow written into reusable buffers.
//!
//! The harness plays both ends of RFC 3265/6665 subscriptions, so it needs the
//! dialog fields (RFC 3261 §12), the route set taken from Record-Route (§12.1.1:
//! the UAS keeps it in received order) and the top Via to answer a response to
//! (§18.2.2, with `received`/`rport` from RFC 3581). Nothing is allocated: spans
//! index into the received bytes.

use std::net::{Ipv4Addr, SocketAddrV4};

/// A byte range of the message being looked at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn of<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.start as usize..self.end as usize]
    }
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

/// At most this many Via or Record-Route header lines are indexed; a proxy chain
/// on loopback has one or two.
pub const MAX_LINES: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Subscribe,
    Notify,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Request(Method),
    Response(u16),
}

/// The header index of one message.
#[derive(Debug, Clone)]
pub struct Msg {
    pub start: Start,
    pub ruri: Span,
    pub vias: [Span; MAX_LINES],
    pub n_vias: usize,
    pub rrs: [Span; MAX_LINES],
    pub n_rrs: usize,
    pub from: Span,
    pub to: Span,
    pub call_id: Span,
    pub cseq: Span,
    pub contact: Span,
    pub body: Span,
}

fn trim(buf: &[u8], mut s: usize, mut e: usize) -> (usize, usize) {
    while s < e && (buf[s] == b' ' || buf[s] == b'\t') {
        s += 1;
    }
    while e > s && (buf[e - 1] == b' ' || buf[e - 1] == b'\t') {
        e -= 1;
    }
    (s, e)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let last = hay.len() - needle.len();
    let mut i = 0;
    while i <= last {
        match hay[i..=last].iter().position(|&b| b == first) {
            None => return None,
            Some(p) => {
                i += p;
                if &hay[i..i + needle.len()] == needle {
                    return Some(i);
                }
                i += 1;
            }
        }
    }
    None
}

/// Where the header block ends (index of the blank line's CRLFCRLF), if complete.
pub fn header_end(buf: &[u8]) -> Option<usize> {
    find(buf, b"\r\n\r\n")
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

fn parse_u64(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 {
        return None;
    }
    let mut n = 0u64;
    for &b in v {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(b - b'0');
    }
    Some(n)
}

/// Content-Length of a complete header block (TCP framing, RFC 3261 §18.3).
pub fn content_length(head: &[u8]) -> Option<usize> {
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l") {
            return parse_u64(line[colon + 1..].trim_ascii()).map(|n| n as usize);
        }
    }
    None
}

impl Msg {
    /// Indexes a message; `None` when it is not one the harness can use.
    pub fn parse(buf: &[u8]) -> Option<Msg> {
        let hend = header_end(buf)?;
        let mut m = Msg {
            start: Start::Response(0),
            ruri: Span::default(),
            vias: [Span::default(); MAX_LINES],
            n_vias: 0,
            rrs: [Span::default(); MAX_LINES],
            n_rrs: 0,
            from: Span::default(),
            to: Span::default(),
            call_id: Span::default(),
            cseq: Span::default(),
            contact: Span::default(),
            body: Span::default(),
        };
        let mut pos = 0usize;
        let mut first = true;
        let mut clen: Option<usize> = None;
        while pos < hend {
            let eol = find(&buf[pos..hend + 2], b"\r\n")
                .map(|i| pos + i)
                .unwrap_or(hend);
            let line = &buf[pos..eol];
            if first {
                first = false;
                if let Some(rest) = line.strip_prefix(b"SIP/2.0 ") {
                    let code = parse_u64(rest.get(..3)?)? as u16;
                    m.start = Start::Response(code);
                } else {
                    let sp = line.iter().position(|&b| b == b' ')?;
                    let method = match &line[..sp] {
                        b"SUBSCRIBE" => Method::Subscribe,
                        b"NOTIFY" => Method::Notify,
                        _ => Method::Other,
                    };
                    m.start = Start::Request(method);
                    let sp2 = line[sp + 1..].iter().position(|&b| b == b' ')? + sp + 1;
                    m.ruri = Span {
                        start: (pos + sp + 1) as u32,
                        end: (pos + sp2) as u32,
                    };
                }
            } else if let Some(colon) = line.iter().position(|&b| b == b':') {
                let name = line[..colon].trim_ascii();
                let (vs, ve) = trim(buf, pos + colon + 1, eol);
                let span = Span {
                    start: vs as u32,
                    end: ve as u32,
                };
                let is = |long: &[u8], short: &[u8]| {
                    name.eq_ignore_ascii_case(long)
                        || (!short.is_empty() && name.eq_ignore_ascii_case(short))
                };
                if is(b"via", b"v") {
                    if m.n_vias < MAX_LINES {
                        m.vias[m.n_vias] = span;
                        m.n_vias += 1;
                    }
                } else if is(b"record-route", b"") {
                    if m.n_rrs < MAX_LINES {
                        m.rrs[m.n_rrs] = span;
                        m.n_rrs += 1;
                    }
                } else if is(b"from", b"f") {
                    m.from = span;
                } else if is(b"to", b"t") {
                    m.to = span;
                } else if is(b"call-id", b"i") {
                    m.call_id = span;
                } else if is(b"cseq", b"") {
                    m.cseq = span;
                } else if is(b"contact", b"m") {
                    m.contact = span;
                } else if is(b"content-length", b"l") {
                    clen = parse_u64(span.of(buf)).map(|n| n as usize);
                }
            }
            pos = eol + 2;
        }
        let bstart = hend + 4;
        let blen = clen.unwrap_or(buf.len().saturating_sub(bstart));
        if bstart + blen > buf.len() || m.n_vias == 0 || m.call_id.is_empty() || m.cseq.is_empty() {
            return None;
        }
        m.body = Span {
            start: bstart as u32,
            end: (bstart + blen) as u32,
        };
        Some(m)
    }

    /// The method named in CSeq (what a response answers).
    pub fn cseq_method(&self, buf: &[u8]) -> Method {
        let v = self.cseq.of(buf);
        match v.iter().rposition(|&b| b == b' ') {
            Some(i) => match v[i + 1..].trim_ascii() {
                b"SUBSCRIBE" => Method::Subscribe,
                b"NOTIFY" => Method::Notify,
                _ => Method::Other,
            },
            None => Method::Other,
        }
    }
}

/// Flow number carried in the Call-ID `lg<nonce>-<flow>@lg` the harness wrote.
pub fn flow_of(call_id: &[u8], nonce: &[u8]) -> Option<u64> {
    let rest = call_id
        .strip_prefix(b"lg")?
        .strip_prefix(nonce)?
        .strip_prefix(b"-")?;
    let end = rest.iter().position(|&b| b == b'@').unwrap_or(rest.len());
    parse_u64(&rest[..end])
}

/// Where a URI points: IPv4 host and port, whether it is a loose router (`;lr`,
/// RFC 3261 §16.12.1.1) and whether it asks for TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UriAddr {
    pub addr: SocketAddrV4,
    pub lr: bool,
    pub tcp: bool,
}

/// Parses `<sip:user@1.2.3.4:5;params>` (or without brackets). Only IPv4 literals:
/// the harness never resolves names.
pub fn uri_addr(v: &[u8]) -> Option<UriAddr> {
    let v = match v.iter().position(|&b| b == b'<') {
        Some(lt) => {
            let gt = v[lt..].iter().position(|&b| b == b'>')? + lt;
            &v[lt + 1..gt]
        }
        None => v,
    };
    let v = v
        .strip_prefix(b"sip:")
        .or_else(|| v.strip_prefix(b"sips:"))?;
    let pend = v
        .iter()
        .position(|&b| b == b';' || b == b'?')
        .unwrap_or(v.len());
    let (hostport, params) = (&v[..pend], &v[pend..]);
    let hostport = match hostport.iter().position(|&b| b == b'@') {
        Some(at) => &hostport[at + 1..],
        None => hostport,
    };
    let (host, port) = match hostport.iter().position(|&b| b == b':') {
        Some(c) => (&hostport[..c], parse_u64(&hostport[c + 1..])? as u16),
        None => (hostport, 5060),
    };
    let ip: Ipv4Addr = std::str::from_utf8(host).ok()?.parse().ok()?;
    let mut lr = false;
    let mut tcp = false;
    for p in params.split(|&b| b == b';') {
        let p = p.trim_ascii();
        if p.eq_ignore_ascii_case(b"lr") || p.len() > 3 && p[..3].eq_ignore_ascii_case(b"lr=") {
            lr = true;
        }
        if p.eq_ignore_ascii_case(b"transport=tcp") {
            tcp = true;
        }
    }
    Some(UriAddr {
        addr: SocketAddrV4::new(ip, port),
        lr,
        tcp,
    })
}

/// The first element of a comma-separated header value (a Via or a Record-Route
/// line may carry several).
pub fn first_element(v: &[u8]) -> &[u8] {
    let mut in_angle = false;
    for (i, &b) in v.iter().enumerate() {
        match b {
            b'<' => in_angle = true,
            b'>' => in_angle = false,
            b',' if !in_angle => return v[..i].trim_ascii(),
            _ => {}
        }
    }
    v.trim_ascii()
}

/// Where a response to a message with this top Via goes over UDP: sent-by, with
/// `received` and `rport` taking precedence (RFC 3261 §18.2.2, RFC 3581 §4).
pub fn via_addr(via: &[u8]) -> Option<SocketAddrV4> {
    let via = first_element(via);
    let sp = via.iter().position(|&b| b == b' ')?;
    let rest = via[sp..].trim_ascii_start();
    let pend = rest.iter().position(|&b| b == b';').unwrap_or(rest.len());
    let hostport = rest[..pend].trim_ascii();
    let (host, port) = match hostport.iter().position(|&b| b == b':') {
        Some(c) => (&hostport[..c], parse_u64(&hostport[c + 1..])? as u16),
        None => (hostport, 5060),
    };
    let mut ip: Ipv4Addr = std::str::from_utf8(host).ok()?.parse().ok()?;
    let mut port = port;
    for p in rest[pend..].split(|&b| b == b';') {
        let p = p.trim_ascii();
        if let Some(v) = p.strip_prefix(b"received=") {
            if let Some(r) = std::str::from_utf8(v).ok().and_then(|s| s.parse().ok()) {
                ip = r;
            }
        } else if let Some(v) = p.strip_prefix(b"rport=") {
            if let Some(r) = parse_u64(v) {
                port = r as u16;
            }
        }
    }
    Some(SocketAddrV4::new(ip, port))
}

/// The URI inside a name-addr (`<sip:a@b>;tag=x` → `sip:a@b`).
pub fn name_addr_uri(v: &[u8]) -> &[u8] {
    if let Some(lt) = v.iter().position(|&b| b == b'<') {
        if let Some(gt) = v[lt..].iter().position(|&b| b == b'>') {
            return &v[lt + 1..lt + gt];
        }
    }
    let end = v.iter().position(|&b| b == b';').unwrap_or(v.len());
    &v[..end]
}

/// Appends to a reusable buffer without allocating once it has grown.
pub struct Out<'a>(pub &'a mut Vec<u8>);

impl Out<'_> {
    #[inline]
    pub fn s(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }
    #[inline]
    pub fn n(&mut self, mut v: u64) -> &mut Self {
        let mut tmp = [0u8; 20];
        let mut i = tmp.len();
        loop {
            i -= 1;
            tmp[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.0.extend_from_slice(&tmp[i..]);
        self
    }
    pub fn addr(&mut self, a: SocketAddrV4) -> &mut Self {
        let o = a.ip().octets();
        self.n(o[0].into())
            .s(b".")
            .n(o[1].into())
            .s(b".")
            .n(o[2].into())
            .s(b".")
            .n(o[3].into());
        self.s(b":").n(a.port().into())
    }
}

/// Self-checks of the parser on the message shapes the harness meets.
pub fn selftest() -> Result<(), String> {
    let m = b"SIP/2.0 202 Accepted\r\nv: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx;rport=5099;received=127.0.0.2, SIP/2.0/UDP 127.0.0.1:1\r\nVia: SIP/2.0/UDP 127.0.0.1:7000;branch=a\r\nFrom: <sip:w1@example.com>;tag=a\r\nt: <sip:o1@example.com>;tag=b\r\ni: lg77-42@lg\r\nCSeq: 1 SUBSCRIBE\r\nRecord-Route: <sip:127.0.0.1:5060;lr;r2=on>, <sip:127.0.0.1:5061;transport=tcp;lr>\r\nl: 0\r\n\r\n";
    let p = Msg::parse(m).ok_or("202 did not parse")?;
    check(p.start == Start::Response(202), "status")?;
    check(p.n_vias == 2 && p.n_rrs == 1, "via/rr count")?;
    check(p.cseq_method(m) == Method::Subscribe, "cseq method")?;
    check(flow_of(p.call_id.of(m), b"77") == Some(42), "flow id")?;
    check(flow_of(p.call_id.of(m), b"7").is_none(), "flow id nonce")?;
    let via = via_addr(p.vias[0].of(m)).ok_or("via")?;
    check(
        via == "127.0.0.2:5099".parse().map_err(|_| "addr")?,
        "via received/rport",
    )?;
    let rr = uri_addr(first_element(p.rrs[0].of(m))).ok_or("rr uri")?;
    check(rr.lr && !rr.tcp && rr.addr.port() == 5060, "rr lr")?;
    check(
        name_addr_uri(p.to.of(m)) == b"sip:o1@example.com",
        "name-addr uri",
    )?;
    let n = b"NOTIFY sip:w1@127.0.0.1:7000;transport=tcp SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5060;branch=z\r\nCall-ID: c\r\nCSeq: 1 NOTIFY\r\nContent-Length: 5\r\n\r\nhelloEXTRA";
    let p = Msg::parse(n).ok_or("notify did not parse")?;
    check(p.start == Start::Request(Method::Notify), "method")?;
    check(p.body.of(n) == b"hello", "body by content-length")?;
    check(
        uri_addr(p.ruri.of(n)).map(|u| u.tcp) == Some(true),
        "ruri tcp",
    )?;
    check(
        content_length(&n[..header_end(n).ok_or("hend")?]) == Some(5),
        "framing length",
    )?;
    check(Msg::parse(b"garbage\r\n\r\n").is_none(), "garbage refused")?;
    check(Msg::parse(b"SIP/2.0 20").is_none(), "truncated refused")?;
    let mut v = Vec::new();
    Out(&mut v)
        .n(0)
        .s(b" ")
        .n(18446744073709551615)
        .s(b" ")
        .addr("127.0.0.1:5060".parse().map_err(|_| "a")?);
    check(v == b"0 18446744073709551615 127.0.0.1:5060", "writer")?;
    Ok(())
}

fn check(ok: bool, what: &str) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("sip selftest failed: {what}"))
    }
}
