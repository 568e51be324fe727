//! Live replay: the capture's messages are sent to a running proxy over UDP on
//! loopback, the replayer playing both the phones and the upstream server, and
//! what the proxy sends back is compared, message for message, with what the
//! offline run of the same engine predicts.
//!
//! Addresses are rewritten so replies come back: each captured phone gets a
//! local socket (its own captured address when that is a free loopback one) and
//! the upstream plays from the address the running proxy forwards to; every
//! `ip:port` of theirs in a header section is replaced by the local one.

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::capture::CapturedMessage;
use super::correlate::ViaMemory;
use super::framing::{self, StartLine};
use super::run::{Handler, Offline, Output, ReplayError};
use super::sides::{Role, Sides};
use crate::engine::{Transmit, Transport};

/// How long to wait for the proxy's sends before moving on.
const SETTLE: Duration = Duration::from_millis(500);
const POLL: Duration = Duration::from_millis(1);

/// How fast to send.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// The capture's own timing divided by `speed`.
    Capture { speed: f64 },
    /// Each message as soon as the proxy has sent what the previous ones called for.
    AsFastAsPossible,
}

/// Where the live replay sends and listens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LiveOptions {
    /// The running proxy.
    pub target: SocketAddr,
    /// The address the running proxy forwards upstream to: the replayer plays the
    /// upstream server there.
    pub upstream_bind: SocketAddr,
    pub pace: Pace,
}

/// Why a live replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("live replay sends only to loopback addresses, not {0}")]
    NotLoopback(SocketAddr),
    #[error("live replay supports UDP captures; message at packet {0} is TCP")]
    Tcp(u64),
    #[error("cannot bind {addr} to play {role}: {source}")]
    Bind {
        addr: SocketAddr,
        role: &'static str,
        source: std::io::Error,
    },
    #[error("sending to {0} failed: {1}")]
    Send(SocketAddr, std::io::Error),
    #[error(transparent)]
    Replay(#[from] ReplayError),
}

/// Which socket a message arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Phone,
    Upstream,
}

/// What identifies a sent message across offline and live: where it went, its
/// method or status, Call-ID, CSeq, and what a watcher learns from it
/// (Subscription-State and the PIDF basic status).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Key {
    pub side: Side,
    pub first: String,
    pub call_id: String,
    pub cseq: String,
    pub view: String,
}

impl Key {
    pub fn of(side: Side, data: &[u8]) -> Key {
        let first = match StartLine::of(data) {
            Some(StartLine::Request(m)) => m.to_string(),
            Some(StartLine::Response(s)) => s.to_string(),
            None => "?".to_string(),
        };
        let text = |v: Option<&[u8]>| {
            v.map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        let state = text(framing::header(data, "subscription-state", None));
        let basic = if framing::find(data, b">open</").is_some() {
            "open"
        } else if framing::find(data, b">closed</").is_some() {
            "closed"
        } else {
            "-"
        };
        Key {
            side,
            first,
            call_id: text(framing::header(data, "call-id", Some("i"))),
            cseq: text(framing::header(data, "cseq", None)),
            view: format!("{state}|{basic}"),
        }
    }
}

/// The comparison of a live run with its offline prediction.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LiveReport {
    /// Captured messages sent to the proxy.
    pub sent: u64,
    /// Sends the offline run predicted.
    pub predicted: u64,
    /// Predicted sends that the proxy made.
    pub agreed: u64,
    /// Predicted but never seen: (captured packet number, what).
    pub missing: Vec<(u64, Key)>,
    /// Seen but not predicted.
    pub unexpected: Vec<Key>,
    /// Repeats of a message already matched (UDP retransmissions).
    pub retransmissions: u64,
}

impl LiveReport {
    pub fn agrees(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty()
    }
}

struct Sockets {
    /// The clock of the Via memory.
    started: Instant,
    upstream: UdpSocket,
    phones: HashMap<SocketAddr, UdpSocket>,
    /// Captured `ip:port` text -> local `ip:port` text.
    rewrites: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Runs the capture live against `opts.target` and offline through `handler`
/// at once, and compares.
pub fn run_live<H: Handler, W: Write>(
    messages: impl Iterator<Item = Result<CapturedMessage, ReplayError>>,
    sides: &Sides,
    handler: &mut H,
    opts: LiveOptions,
    output: &mut Output<W>,
) -> Result<LiveReport, LiveError> {
    if !opts.target.ip().is_loopback() {
        return Err(LiveError::NotLoopback(opts.target));
    }
    let upstream = bind(opts.upstream_bind, "the upstream")?;
    let mut sockets = Sockets {
        started: Instant::now(),
        upstream,
        phones: HashMap::new(),
        rewrites: Vec::new(),
    };
    add_rewrite(&mut sockets.rewrites, sides.upstream.0, opts.upstream_bind);
    let mut offline = Offline::new(sides, handler);
    let mut report = LiveReport::default();
    // Predicted sends not yet seen, and seen sends not (yet) predicted.
    let mut expected: HashMap<Key, Vec<u64>> = HashMap::new();
    let mut seen: HashMap<Key, u64> = HashMap::new();
    let mut matched: HashMap<Key, u64> = HashMap::new();
    let mut live_vias = ViaMemory::default();
    let start = Instant::now();
    let mut first_us = None;
    for m in messages {
        let m = m?;
        let role = sides.role(&m);
        if !matches!(role, Role::FromPhone | Role::FromUpstream) {
            offline.step(&m, output)?;
            continue;
        }
        if m.transport == Transport::Tcp {
            return Err(LiveError::Tcp(m.packet));
        }
        // Wait for the proxy to catch up with what was predicted so far, then for
        // the message's time.
        let settle_until = Instant::now() + SETTLE;
        while expected.values().any(|v| !v.is_empty()) && Instant::now() < settle_until {
            receive(
                &sockets,
                &mut live_vias,
                &mut expected,
                &mut seen,
                &mut matched,
                &mut report,
            );
            std::thread::sleep(POLL);
        }
        if let Pace::Capture { speed } = opts.pace {
            let t0 = *first_us.get_or_insert(m.time_us);
            let offset = Duration::from_micros(
                ((m.time_us.saturating_sub(t0)) as f64 / speed.max(1e-3)) as u64,
            );
            while start.elapsed() < offset {
                receive(
                    &sockets,
                    &mut live_vias,
                    &mut expected,
                    &mut seen,
                    &mut matched,
                    &mut report,
                );
                std::thread::sleep(POLL);
            }
        }
        if let Some(_line) = offline.step(&m, output)? {
            for t in offline.sent() {
                report.predicted += 1;
                let key = Key::of(side_of(t, sides), &t.data);
                if let Some(n) = seen.get_mut(&key).filter(|n| **n > 0) {
                    *n -= 1;
                    report.agreed += 1;
                    *matched.entry(key).or_default() += 1;
                } else {
                    expected.entry(key).or_default().push(m.packet);
                }
            }
        }
        let data = rewrite(&m.data, &sockets.rewrites);
        live_vias.received(&data, sockets.started.elapsed().as_millis() as u64);
        let data = live_vias.restore(&data, opts.target, m.transport);
        let socket = match role {
            Role::FromUpstream => &sockets.upstream,
            _ => phone_socket(&mut sockets, m.src)?,
        };
        socket
            .send_to(&data, opts.target)
            .map_err(|e| LiveError::Send(opts.target, e))?;
        report.sent += 1;
    }
    let until = Instant::now() + SETTLE;
    while Instant::now() < until {
        receive(
            &sockets,
            &mut live_vias,
            &mut expected,
            &mut seen,
            &mut matched,
            &mut report,
        );
        if expected.values().all(|v| v.is_empty()) && Instant::now() + SETTLE / 2 > until {
            break;
        }
        std::thread::sleep(POLL);
    }
    for (key, packets) in expected {
        for p in packets {
            report.missing.push((p, key.clone()));
        }
    }
    for (key, n) in seen {
        for _ in 0..n {
            report.unexpected.push(key.clone());
        }
    }
    report.missing.sort();
    report.unexpected.sort();
    Ok(report)
}

fn side_of(t: &Transmit, sides: &Sides) -> Side {
    if sides.upstream.matches(t.destination) {
        Side::Upstream
    } else {
        Side::Phone
    }
}

/// Drains every socket; each arrival is matched against the predictions.
fn receive(
    sockets: &Sockets,
    vias: &mut ViaMemory,
    expected: &mut HashMap<Key, Vec<u64>>,
    seen: &mut HashMap<Key, u64>,
    matched: &mut HashMap<Key, u64>,
    report: &mut LiveReport,
) {
    let mut buf = vec![0u8; 65_536];
    let all = std::iter::once((Side::Upstream, &sockets.upstream))
        .chain(sockets.phones.values().map(|s| (Side::Phone, s)));
    for (side, socket) in all {
        while let Ok((n, _from)) = socket.recv_from(&mut buf) {
            let data = &buf[..n];
            if !framing::looks_like_sip(data) {
                continue;
            }
            vias.sent(data, sockets.started.elapsed().as_millis() as u64);
            let key = Key::of(side, data);
            match expected.get_mut(&key) {
                Some(v) if !v.is_empty() => {
                    v.remove(0);
                    report.agreed += 1;
                    *matched.entry(key).or_default() += 1;
                }
                _ if matched.get(&key).is_some_and(|n| *n > 0) => report.retransmissions += 1,
                _ => *seen.entry(key).or_default() += 1,
            }
        }
    }
}

fn bind(addr: SocketAddr, role: &'static str) -> Result<UdpSocket, LiveError> {
    let s = UdpSocket::bind(addr).map_err(|source| LiveError::Bind { addr, role, source })?;
    s.set_nonblocking(true)
        .map_err(|source| LiveError::Bind { addr, role, source })?;
    Ok(s)
}

/// The socket playing the phone at `captured`: its own address when that is a
/// free loopback one, else an ephemeral loopback port (and the rewrite to it).
fn phone_socket(sockets: &mut Sockets, captured: SocketAddr) -> Result<&UdpSocket, LiveError> {
    if !sockets.phones.contains_key(&captured) {
        let loopback = match captured.ip() {
            IpAddr::V4(_) => SocketAddr::from(([127, 0, 0, 1], 0)),
            IpAddr::V6(_) => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0)),
        };
        let socket = if captured.ip().is_loopback() {
            bind(captured, "a phone").or_else(|_| bind(loopback, "a phone"))?
        } else {
            bind(loopback, "a phone")?
        };
        let local = socket.local_addr().map_err(|source| LiveError::Bind {
            addr: loopback,
            role: "a phone",
            source,
        })?;
        add_rewrite(&mut sockets.rewrites, captured, local);
        sockets.phones.insert(captured, socket);
    }
    sockets.phones.get(&captured).ok_or(LiveError::Bind {
        addr: captured,
        role: "a phone",
        source: std::io::ErrorKind::NotFound.into(),
    })
}

fn add_rewrite(rewrites: &mut Vec<(Vec<u8>, Vec<u8>)>, from: SocketAddr, to: SocketAddr) {
    if from != to {
        rewrites.push((hostport(from).into_bytes(), hostport(to).into_bytes()));
    }
}

fn hostport(a: SocketAddr) -> String {
    match a.ip() {
        IpAddr::V4(ip) => format!("{ip}:{}", a.port()),
        IpAddr::V6(ip) => format!("[{ip}]:{}", a.port()),
    }
}

/// Replaces captured addresses in the header section (the body, and so its
/// Content-Length, stays as captured).
fn rewrite(data: &Bytes, rewrites: &[(Vec<u8>, Vec<u8>)]) -> Bytes {
    if rewrites.is_empty() {
        return data.clone();
    }
    let head_end = framing::find(data, b"\r\n\r\n").map_or(data.len(), |e| e + 4);
    let (head, body) = data.split_at(head_end);
    let mut out = BytesMut::with_capacity(data.len() + 64);
    let mut i = 0;
    'outer: while i < head.len() {
        for (from, to) in rewrites {
            if head[i..].starts_with(from)
                && !head.get(i + from.len()).is_some_and(u8::is_ascii_digit)
            {
                out.extend_from_slice(to);
                i += from.len();
                continue 'outer;
            }
        }
        out.extend_from_slice(&head[i..i + 1]);
        i += 1;
    }
    out.extend_from_slice(body);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Direction, Handled, Outcome, Received};
    use crate::replay::run::detect;
    use crate::replay::sides::choose;
    use crate::replay::CaptureReader;

    /// A stateless proxy (RFC 3261 §16.11): requests from phones go upstream,
    /// requests from the upstream go by Request-URI, responses by the Via below
    /// its own; it blocks MESSAGEs from carol with 480.
    struct Stateless {
        upstream: SocketAddr,
        me: SocketAddr,
    }

    fn hostport_of(uri_or_via: &str) -> Option<SocketAddr> {
        let start = uri_or_via
            .find('@')
            .map(|i| i + 1)
            .or_else(|| uri_or_via.rfind(' ').map(|i| i + 1))?;
        let rest = &uri_or_via[start..];
        let end = rest.find([';', '>', ' ', ',']).unwrap_or(rest.len());
        rest[..end].parse().ok()
    }

    impl Handler for Stateless {
        fn handle(&mut self, _now: u64, r: Received, out: &mut Vec<Transmit>) -> Outcome {
            let text = String::from_utf8_lossy(&r.data).into_owned();
            let dir = if r.source == self.upstream {
                Direction::Upstream
            } else {
                Direction::Downstream
            };
            let mut lines: Vec<&str> = text.split("\r\n").collect();
            if text.starts_with("SIP/2.0") {
                if !lines
                    .get(1)
                    .is_some_and(|l| l.contains("branch=z9hG4bKfake"))
                {
                    return Outcome::new(dir, Handled::Dropped).because("not our Via");
                }
                lines.remove(1);
                let Some(next) = lines
                    .iter()
                    .find(|l| l.starts_with("Via:"))
                    .and_then(|l| hostport_of(l))
                else {
                    return Outcome::new(dir, Handled::Dropped).because("no Via left");
                };
                out.push(Transmit {
                    data: lines.join("\r\n").into(),
                    destination: next,
                    transport: r.transport,
                    conn: None,
                });
                return Outcome::new(dir, Handled::Forwarded);
            }
            if text.starts_with("MESSAGE") && text.contains("From: <sip:carol@") {
                let mut resp = vec!["SIP/2.0 480 Temporarily Unavailable"];
                resp.extend(lines.iter().filter(|l| {
                    l.starts_with("Via:")
                        || l.starts_with("From:")
                        || l.starts_with("To:")
                        || l.starts_with("Call-ID:")
                        || l.starts_with("CSeq:")
                }));
                resp.extend(["Content-Length: 0", "", ""]);
                let back = lines
                    .iter()
                    .find(|l| l.starts_with("Via:"))
                    .and_then(|l| hostport_of(l))
                    .unwrap_or(r.source);
                out.push(Transmit {
                    data: resp.join("\r\n").into(),
                    destination: back,
                    transport: r.transport,
                    conn: None,
                });
                return Outcome::new(dir, Handled::Answered);
            }
            let destination = if dir == Direction::Downstream {
                self.upstream
            } else {
                match hostport_of(lines[0]) {
                    Some(a) => a,
                    None => return Outcome::new(dir, Handled::Dropped).because("no route"),
                }
            };
            let via = format!(
                "Via: SIP/2.0/UDP {};branch=z9hG4bKfake{}",
                self.me,
                text.len()
            );
            lines.insert(1, &via);
            out.push(Transmit {
                data: lines.join("\r\n").into(),
                destination,
                transport: r.transport,
                conn: None,
            });
            Outcome::new(dir, Handled::Forwarded)
        }
    }

    fn free_port() -> SocketAddr {
        UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .unwrap()
    }

    #[test]
    fn live_and_offline_agree_message_for_message_with_a_stateless_fake() {
        let bytes = std::fs::read(format!(
            "{}/pcaps/presence-udp.pcap",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let mut reader = CaptureReader::new(bytes.as_slice()).unwrap();
        let sides = choose(None, None, Some(&detect(&mut reader, None).unwrap())).unwrap();
        let upstream_bind = free_port();
        let proxy_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let target = proxy_socket.local_addr().unwrap();
        proxy_socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let live_proxy = std::thread::spawn(move || {
            let mut fake = Stateless {
                upstream: upstream_bind,
                me: target,
            };
            let mut buf = vec![0u8; 65536];
            let mut out = Vec::new();
            while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok((n, from)) = proxy_socket.recv_from(&mut buf) else {
                    continue;
                };
                out.clear();
                let r = Received {
                    data: Bytes::copy_from_slice(&buf[..n]),
                    source: from,
                    local: target,
                    transport: Transport::Udp,
                    conn: None,
                };
                fake.handle(0, r, &mut out);
                for t in &out {
                    let _ = proxy_socket.send_to(&t.data, t.destination);
                }
            }
        });
        let mut offline_fake = Stateless {
            upstream: sides.upstream.0,
            me: sides.proxy.0,
        };
        let mut reader = CaptureReader::new(bytes.as_slice()).unwrap();
        let messages = std::iter::from_fn(move || {
            reader.next_message().map_err(ReplayError::from).transpose()
        });
        let opts = LiveOptions {
            target,
            upstream_bind,
            pace: Pace::AsFastAsPossible,
        };
        let mut output: Output<Vec<u8>> = Output::None;
        let report = run_live(messages, &sides, &mut offline_fake, opts, &mut output);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        live_proxy.join().unwrap();
        let report = report.unwrap();
        assert_eq!(report.sent, 38);
        assert!(report.agrees(), "{report:#?}");
        // 38 messages, each sent on but Kamailio's 404 to carol's MESSAGE (the
        // fake answered that MESSAGE 480 itself, so the 404 has no Via of ours).
        assert_eq!((report.predicted, report.agreed), (37, 37));
    }

    #[test]
    fn rewrite_touches_headers_only_and_whole_ports() {
        let rw = vec![(b"10.0.0.5:5062".to_vec(), b"127.0.0.1:40001".to_vec())];
        let m = Bytes::from_static(b"NOTIFY sip:bob@10.0.0.5:5062 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.5:50621\r\n\r\n10.0.0.5:5062");
        assert_eq!(
            rewrite(&m, &rw).as_ref(),
            &b"NOTIFY sip:bob@127.0.0.1:40001 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.5:50621\r\n\r\n10.0.0.5:5062"[..]
        );
    }

    #[test]
    fn keys_tell_what_the_watcher_learns() {
        let a = Key::of(Side::Phone, b"NOTIFY sip:b SIP/2.0\r\nCall-ID: c\r\nCSeq: 2 NOTIFY\r\nSubscription-State: active\r\n\r\n<basic>closed</basic>");
        let b = Key::of(Side::Phone, b"NOTIFY sip:b SIP/2.0\r\ni: c\r\nCSeq: 2 NOTIFY\r\nSubscription-State: active\r\n\r\n<basic>open</basic>");
        assert_eq!(
            (a.first.as_str(), a.call_id.as_str(), a.cseq.as_str()),
            ("NOTIFY", "c", "2 NOTIFY")
        );
        assert_eq!(a.view, "active|closed");
        assert_ne!(a, b);
    }
}
