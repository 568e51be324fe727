//! RFC 4475 torture messages through the RUNNING proxy binary, over UDP and over
//! TCP, inside a network namespace with only loopback up (the messages name
//! outside addresses such as 192.0.2.x; there they can reach nothing real).
//!
//! The table says per file what the proxy does and why. Valid requests must reach
//! the fake upstream byte-identical except for Via, Max-Forwards and
//! Record-Route (and a Content-Length the proxy adds when one was missing).
//! Afterwards the proxy still forwards normal traffic, has not panicked, and
//! exits 0 on SIGTERM.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{in_netns, Proxy};
use presence_proxy::sip::framing::StreamFramer;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Reaches the upstream with only the routing headers changed.
    Forward,
    /// Answered by the proxy with this status; nothing reaches the upstream.
    Respond(u16),
    /// Nothing answered, nothing forwarded (counted by the proxy).
    Drop,
}
use Expect::*;

struct Case {
    file: &'static str,
    section: &'static str,
    udp: Expect,
    tcp: Expect,
    why: &'static str,
}

const fn case(
    file: &'static str,
    section: &'static str,
    udp: Expect,
    tcp: Expect,
    why: &'static str,
) -> Case {
    Case {
        file,
        section,
        udp,
        tcp,
        why,
    }
}

/// Every file of `../shared/torture/rfc4475/`, sent by a phone to the proxy.
const CASES: &[Case] = &[
    // 3.1.1 valid messages: a proxy forwards them, touching only routing headers.
    case("wsinv.dat", "3.1.1.1", Forward, Forward, "valid: odd whitespace, folding, escaped URIs"),
    case("intmeth.dat", "3.1.1.2", Forward, Forward, "valid: unusual but legal method and URI characters"),
    case("esc01.dat", "3.1.1.3", Forward, Forward, "valid: % escaping"),
    case("escnull.dat", "3.1.1.4", Forward, Forward, "valid: escaped NULs in URIs"),
    case("esc02.dat", "3.1.1.5", Forward, Forward, "valid: % that is not an escape; unknown method"),
    case("lwsdisp.dat", "3.1.1.6", Forward, Forward, "valid: no LWS between display name and <"),
    case("longreq.dat", "3.1.1.7", Forward, Forward, "valid: long header values"),
    case("dblreq.dat", "3.1.1.8", Forward, Forward,
        "valid: UDP ignores octets after Content-Length; on TCP they are the next message"),
    case("semiuri.dat", "3.1.1.9", Forward, Forward, "valid: ; in the user part"),
    case("transports.dat", "3.1.1.10", Forward, Forward, "valid: unknown transports in lower Vias"),
    case("mpart01.dat", "3.1.1.11", Forward, Forward, "valid: multipart body forwarded as is"),
    case("unreason.dat", "3.1.1.12", Drop, Drop,
        "valid response, but its top Via is not ours: a stateless proxy forwards only answers to what it forwarded (RFC 3261 §16.11); the upstream-side test forwards it"),
    case("noreason.dat", "3.1.1.13", Drop, Drop, "as 3.1.1.12: empty reason phrase, Via not ours"),
    // 3.1.2 invalid messages: 400 with a reason when a response can be addressed.
    case("badinv01.dat", "3.1.2.1", Respond(400), Respond(400), "empty header parameters and list elements"),
    case("clerr.dat", "3.1.2.2", Respond(400), Drop,
        "Content-Length larger than the message: 400 over UDP; on TCP the proxy waits for the rest (§18.3) and the peer closes"),
    case("ncl.dat", "3.1.2.3", Respond(400), Drop, "negative Content-Length: 400; on TCP the stream cannot be framed, closed"),
    case("scalar02.dat", "3.1.2.4", Respond(400), Respond(400), "overlarge CSeq number"),
    case("scalarlg.dat", "3.1.2.5", Drop, Drop, "malformed response: never answered (RFC 3261 §16.7), dropped"),
    case("quotbal.dat", "3.1.2.6", Respond(400), Respond(400), "unterminated quoted display name"),
    case("ltgtruri.dat", "3.1.2.7", Respond(400), Respond(400), "<> around the Request-URI"),
    case("lwsruri.dat", "3.1.2.8", Respond(400), Respond(400), "LWS inside the Request-URI"),
    case("lwsstart.dat", "3.1.2.9", Respond(400), Respond(400), "several SP in the Request-Line"),
    case("trws.dat", "3.1.2.10", Respond(400), Respond(400), "SP at the end of the Request-Line (strict reading)"),
    case("escruri.dat", "3.1.2.11", Respond(400), Respond(400), "escaped headers in the Request-URI"),
    case("baddate.dat", "3.1.2.12", Forward, Forward,
        "bad Date time zone: a proxy does not interpret Date and forwards it (the RFC allows it)"),
    case("regbadct.dat", "3.1.2.13", Respond(400), Respond(400), "name-addr with parameters not in <>"),
    case("badaspec.dat", "3.1.2.14", Respond(400), Respond(400), "spaces inside an addr-spec"),
    case("baddn.dat", "3.1.2.15", Respond(400), Drop,
        "non-token display name, and the headers never end: 400 over UDP; on TCP the message never completes"),
    case("baddn.ersip-variant.dat", "3.1.2.15", Respond(400), Respond(400), "non-token characters in the display name"),
    case("badvers.dat", "3.1.2.16", Respond(505), Respond(505), "unknown SIP version: 505 (RFC 3261 §21.5.7)"),
    case("mismatch01.dat", "3.1.2.17", Respond(400), Respond(400), "CSeq method differs from the Request-Line"),
    case("mismatch02.dat", "3.1.2.18", Respond(400), Respond(400), "unknown method with a CSeq mismatch"),
    case("bigcode.dat", "3.1.2.19", Drop, Drop, "response with a 4-digit code: malformed response, dropped"),
    // 3.2 transaction layer.
    case("badbranch.dat", "3.2.1", Forward, Forward,
        "no magic cookie in the branch: valid; our branch is derived from the RFC 2543 transaction key"),
    // 3.3 application layer: the upstream is the UAS; a proxy routes.
    case("insuf.dat", "3.3.1", Respond(400), Respond(400), "missing From (and other mandatory headers)"),
    case("unkscm.dat", "3.3.2", Forward, Forward,
        "unknown Request-URI scheme: phone requests go to the upstream whatever the URI; the UAS answers 416"),
    case("novelsc.dat", "3.3.3", Forward, Forward, "atypical scheme: forwarded to the upstream"),
    case("unksm2.dat", "3.3.4", Forward, Forward, "unknown schemes in headers: forwarded untouched"),
    case("bext01.dat", "3.3.5", Forward, Forward,
        "Proxy-Require of an unknown extension: RFC 3261 §16.3 asks 420; forwarded to the upstream registrar, which sees it (known limit)"),
    case("invut.dat", "3.3.6", Forward, Forward, "unknown Content-Type: the UAS answers 415"),
    case("regaut01.dat", "3.3.7", Forward, Forward, "unknown Authorization scheme: the registrar challenges"),
    case("multi01.dat", "3.3.8", Respond(400), Respond(400), "several values in single-value headers"),
    case("mcl01.dat", "3.3.9", Respond(400), Drop,
        "multiple Content-Length values: 400 over UDP; on TCP the stream cannot be framed, closed"),
    case("bcast.dat", "3.3.10", Drop, Drop,
        "response whose top Via is not ours; the upstream-side test shows the broadcast Via is never used"),
    case("zeromf.dat", "3.3.11", Respond(483), Respond(483), "Max-Forwards 0: a proxy answers 483 (RFC 3261 §16.3)"),
    case("cparam01.dat", "3.3.12", Forward, Forward, "Contact parameters: valid"),
    case("cparam02.dat", "3.3.13", Forward, Forward, "URL parameter in Contact: valid"),
    case("regescrt.dat", "3.3.14", Forward, Forward, "escaped header in a Contact URI: valid"),
    case("sdp01.dat", "3.3.15", Forward, Forward, "Accept the UAS cannot honour: the UAS answers 406"),
    case("inv2543.dat", "3.4.1", Forward, Drop,
        "RFC 2543 syntax: forwarded over UDP; it has no Content-Length, so on TCP it cannot be framed (§18.3) and is dropped"),
    case("test.dat", "-", Drop, Drop,
        "not an RFC 4475 case: no SIP-Version in the Request-Line and no usable Via, dropped"),
];

fn torture_dir() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/torture/rfc4475"
    ))
}

fn read(file: &str) -> Vec<u8> {
    std::fs::read(torture_dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// Splits a message into (start line, logical header lines, body); a header
/// line keeps its folded continuation lines and its line ending, byte for byte.
fn split(msg: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>, Vec<u8>) {
    let (head_end, body_start) = find_head_end(msg).unwrap_or((msg.len(), msg.len()));
    let head = &msg[..head_end];
    let mut lines: Vec<Vec<u8>> = Vec::new();
    for raw in head.split_inclusive(|&b| b == b'\n') {
        if matches!(raw.first(), Some(b' ' | b'\t')) && lines.len() > 1 {
            lines.last_mut().unwrap().extend_from_slice(raw);
        } else {
            lines.push(raw.to_vec());
        }
    }
    let start = if lines.is_empty() {
        Vec::new()
    } else {
        lines.remove(0)
    };
    (start, lines, msg[body_start..].to_vec())
}

fn find_head_end(msg: &[u8]) -> Option<(usize, usize)> {
    for i in 0..msg.len() {
        if msg[i..].starts_with(b"\r\n\r\n") {
            return Some((i + 2, i + 4));
        }
        if msg[i..].starts_with(b"\n\n") {
            return Some((i + 1, i + 2));
        }
    }
    None
}

fn name_of(line: &[u8]) -> String {
    let colon = line.iter().position(|&b| b == b':').unwrap_or(line.len());
    String::from_utf8_lossy(&line[..colon])
        .trim()
        .to_ascii_lowercase()
}

fn content_length(lines: &[Vec<u8>]) -> Option<usize> {
    lines
        .iter()
        .find(|l| matches!(name_of(l).as_str(), "content-length" | "l"))
        .and_then(|l| {
            let colon = l.iter().position(|&b| b == b':')?;
            String::from_utf8_lossy(&l[colon + 1..]).trim().parse().ok()
        })
}

/// The message minus what the proxy may change.
fn comparable(
    msg: &[u8],
    drop_content_length: bool,
    body_len: Option<usize>,
) -> (Vec<u8>, Vec<Vec<u8>>, Vec<u8>) {
    let (start, lines, mut body) = split(msg);
    let lines = lines
        .into_iter()
        .filter(|l| {
            let n = name_of(l);
            let routing = matches!(n.as_str(), "via" | "v" | "max-forwards" | "record-route");
            let length = matches!(n.as_str(), "content-length" | "l");
            !(routing || (drop_content_length && length))
        })
        .collect();
    if let Some(n) = body_len {
        body.truncate(n);
    }
    (start, lines, body)
}

/// Asserts `forwarded` is `original` with only the routing headers changed, our
/// Via on top and Max-Forwards decremented.
fn assert_forwarded_intact(file: &str, original: &[u8], forwarded: &[u8]) {
    let (_, orig_lines, _) = split(original);
    let had_cl = content_length(&orig_lines);
    let want = comparable(original, had_cl.is_none(), had_cl);
    let got = comparable(forwarded, had_cl.is_none(), None);
    assert_eq!(
        String::from_utf8_lossy(&got.0),
        String::from_utf8_lossy(&want.0),
        "{file}: start line changed"
    );
    let show = |v: &Vec<Vec<u8>>| {
        v.iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect::<String>()
    };
    assert_eq!(
        show(&got.1),
        show(&want.1),
        "{file}: headers other than Via/Max-Forwards/Record-Route changed"
    );
    assert_eq!(got.2, want.2, "{file}: body changed");
    let (_, fwd_lines, _) = split(forwarded);
    let top_via = fwd_lines
        .iter()
        .find(|l| matches!(name_of(l).as_str(), "via" | "v"))
        .expect("a Via");
    let top_via = String::from_utf8_lossy(top_via);
    assert!(
        top_via.contains("branch=z9hG4bKpp"),
        "{file}: our Via is not on top: {top_via}"
    );
    let mf = |lines: &[Vec<u8>]| {
        lines
            .iter()
            .find(|l| name_of(l) == "max-forwards")
            .map(|l| {
                let colon = l.iter().position(|&b| b == b':').unwrap();
                String::from_utf8_lossy(&l[colon + 1..])
                    .trim()
                    .parse::<u32>()
                    .unwrap()
            })
    };
    let expected_mf = mf(&orig_lines).map_or(70, |n| n - 1);
    assert_eq!(mf(&fwd_lines), Some(expected_mf), "{file}: Max-Forwards");
}

fn status_of(resp: &[u8]) -> u16 {
    let line = String::from_utf8_lossy(resp.split(|&b| b == b'\r').next().unwrap_or_default())
        .into_owned();
    line.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not a response: {line}"))
}

/// What the proxy did with one message: the first thing seen at the upstream
/// or the sender within `wait`.
enum Seen {
    Upstream(Vec<u8>),
    Answer(Vec<u8>),
    Nothing,
}

impl std::fmt::Debug for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Seen::Upstream(m) => write!(f, "forwarded:\n{}", String::from_utf8_lossy(m)),
            Seen::Answer(m) => write!(f, "answered:\n{}", String::from_utf8_lossy(m)),
            Seen::Nothing => write!(f, "nothing"),
        }
    }
}

const ANSWER_WAIT: Duration = Duration::from_secs(3);
const DROP_WAIT: Duration = Duration::from_millis(400);

/// The fake upstream's TCP side: every framed message of every accepted
/// connection into a channel.
fn tcp_upstream(listener: TcpListener) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut framer = StreamFramer::default();
                let mut buf = [0u8; 16384];
                loop {
                    let n = match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    framer.push(&buf[..n]);
                    while let Some(Ok(m)) = framer.next() {
                        let _ = tx.send(m.to_vec());
                    }
                }
            });
        }
    });
    rx
}

fn drain_udp(s: &UdpSocket) {
    let mut buf = [0u8; 65536];
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    while s.recv_from(&mut buf).is_ok() {}
}

fn drain_chan(rx: &mpsc::Receiver<Vec<u8>>) {
    while rx.recv_timeout(Duration::from_millis(50)).is_ok() {}
}

fn via_udp(
    phone: &UdpSocket,
    upstream: &UdpSocket,
    proxy: SocketAddr,
    data: &[u8],
    wait: Duration,
) -> Seen {
    phone.send_to(data, proxy).expect("send to proxy");
    let deadline = Instant::now() + wait;
    let mut buf = vec![0u8; 65536];
    phone.set_nonblocking(true).unwrap();
    upstream.set_nonblocking(true).unwrap();
    let seen = loop {
        if let Ok((n, _)) = upstream.recv_from(&mut buf) {
            break Seen::Upstream(buf[..n].to_vec());
        }
        if let Ok((n, _)) = phone.recv_from(&mut buf) {
            break Seen::Answer(buf[..n].to_vec());
        }
        if Instant::now() > deadline {
            break Seen::Nothing;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    phone.set_nonblocking(false).unwrap();
    upstream.set_nonblocking(false).unwrap();
    seen
}

fn via_tcp(
    proxy: SocketAddr,
    upstream: &mpsc::Receiver<Vec<u8>>,
    data: &[u8],
    wait: Duration,
) -> Seen {
    let mut conn = TcpStream::connect(proxy).expect("connect to proxy");
    conn.write_all(data).expect("write to proxy");
    // Half-close: a message waiting for more bytes is never completed.
    let _ = conn.shutdown(Shutdown::Write);
    conn.set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    let deadline = Instant::now() + wait;
    let mut framer = StreamFramer::default();
    let mut buf = [0u8; 16384];
    let mut closed = false;
    loop {
        if let Ok(m) = upstream.try_recv() {
            return Seen::Upstream(m);
        }
        if !closed {
            match conn.read(&mut buf) {
                Ok(0) => closed = true,
                Ok(n) => {
                    framer.push(&buf[..n]);
                    if let Some(Ok(m)) = framer.next() {
                        return Seen::Answer(m.to_vec());
                    }
                }
                Err(_) => {}
            }
        }
        if Instant::now() > deadline {
            return Seen::Nothing;
        }
        if closed {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

fn check(file: &str, transport: &str, expect: Expect, original: &[u8], seen: Seen) {
    match (expect, seen) {
        (Forward, Seen::Upstream(m)) => {
            assert_forwarded_intact(&format!("{file} ({transport})"), original, &m)
        }
        (Respond(code), Seen::Answer(m)) => {
            assert_eq!(
                status_of(&m),
                code,
                "{file} ({transport}): answered {}",
                String::from_utf8_lossy(&m)
            )
        }
        (Drop, Seen::Nothing) => {}
        (expect, seen) => panic!("{file} ({transport}): expected {expect:?}, saw {seen:?}"),
    }
}

fn options(call_id: &str, via_port: u16) -> Vec<u8> {
    format!(
        "OPTIONS sip:alice@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{via_port};branch=z9hG4bK-{call_id}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:bob@example.com>;tag=1\r\nTo: <sip:alice@example.com>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

#[test]
fn every_torture_file_is_in_the_table() {
    let mut files: Vec<String> = std::fs::read_dir(torture_dir())
        .expect("../shared/torture/rfc4475")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.ends_with(".dat"))
        .collect();
    files.sort();
    let mut listed: Vec<String> = CASES.iter().map(|c| c.file.to_string()).collect();
    listed.sort();
    assert_eq!(files, listed);
    assert!(CASES
        .iter()
        .all(|c| !c.why.is_empty() && !c.section.is_empty()));
}

#[test]
fn torture_messages_through_the_running_proxy() {
    in_netns(|| {
        // The messages' outside addresses exist only inside this namespace, on lo.
        let ok = Command::new("ip")
            .args(["addr", "add", "192.0.2.0/24", "dev", "lo"])
            .status()
            .unwrap();
        assert!(ok.success());

        let upstream_udp = UdpSocket::bind("127.0.0.1:5070").unwrap();
        let upstream_tcp = tcp_upstream(TcpListener::bind("127.0.0.1:5071").unwrap());
        let udp_proxy = Proxy::start(&[
            "--listen",
            "127.0.0.1:5060",
            "--upstream",
            "udp:127.0.0.1:5070",
            "--log-level",
            "info,presence_proxy::engine=debug",
        ]);
        let tcp_proxy = Proxy::start(&[
            "--listen",
            "127.0.0.1:5061",
            "--upstream",
            "tcp:127.0.0.1:5071",
        ]);
        let phone = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (p_udp, p_tcp): (SocketAddr, SocketAddr) = (
            "127.0.0.1:5060".parse().unwrap(),
            "127.0.0.1:5061".parse().unwrap(),
        );

        for c in CASES {
            let data = read(c.file);
            let wait = |e: Expect| if e == Drop { DROP_WAIT } else { ANSWER_WAIT };
            let seen = via_udp(&phone, &upstream_udp, p_udp, &data, wait(c.udp));
            check(c.file, "udp", c.udp, &data, seen);
            drain_udp(&upstream_udp);
            drain_udp(&phone);
            let seen = via_tcp(p_tcp, &upstream_tcp, &data, wait(c.tcp));
            check(c.file, "tcp", c.tcp, &data, seen);
            drain_chan(&upstream_tcp);
        }

        // Valid responses coming back from the upstream with our Via on top go
        // to the next Via; a broadcast Via is never used (RFC 4475 §3.3.10).
        let ours = "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKpp0000000000000000.00000000\r\n";
        for (file, next_hop) in [
            ("unreason.dat", "192.0.2.198:5060"),
            ("noreason.dat", "192.0.2.105:5060"),
        ] {
            let phone_side = UdpSocket::bind(next_hop).unwrap();
            phone_side.set_read_timeout(Some(ANSWER_WAIT)).unwrap();
            let original = read(file);
            let eol = original.iter().position(|&b| b == b'\n').unwrap() + 1;
            let mut resp = original[..eol].to_vec();
            resp.extend_from_slice(ours.as_bytes());
            resp.extend_from_slice(&original[eol..]);
            upstream_udp.send_to(&resp, p_udp).unwrap();
            let mut buf = vec![0u8; 65536];
            let (n, _) = phone_side
                .recv_from(&mut buf)
                .unwrap_or_else(|e| panic!("{file}: not forwarded: {e}"));
            assert_eq!(
                &buf[..n],
                &original[..],
                "{file}: forwarded byte-identical once our Via is popped"
            );
        }
        let bcast = String::from_utf8(read("bcast.dat")).unwrap();
        let bcast = bcast.replacen(
            "Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923\r\n",
            ours,
            1,
        );
        assert!(
            bcast.contains("z9hG4bKpp"),
            "bcast.dat rewritten to carry our Via on top"
        );
        let drops_before = udp_proxy.log().matches("bad_destination").count();
        upstream_udp.send_to(bcast.as_bytes(), p_udp).unwrap();
        assert!(
            common::wait_for(ANSWER_WAIT, || udp_proxy
                .log()
                .matches("bad_destination")
                .count()
                > drops_before),
            "bcast.dat: the proxy did not drop the response for its broadcast Via:\n{}",
            udp_proxy.log()
        );

        // Still forwarding normal traffic, on both transports.
        let data = options("after-torture-udp", phone.local_addr().unwrap().port());
        let seen = via_udp(&phone, &upstream_udp, p_udp, &data, ANSWER_WAIT);
        check("OPTIONS after torture", "udp", Forward, &data, seen);
        let data = options("after-torture-tcp", 9);
        let seen = via_tcp(p_tcp, &upstream_tcp, &data, ANSWER_WAIT);
        check("OPTIONS after torture", "tcp", Forward, &data, seen);

        for (name, proxy) in [("udp", udp_proxy), ("tcp", tcp_proxy)] {
            let log = proxy.log();
            assert!(!log.contains("panicked"), "{name} proxy panicked:\n{log}");
            let status = proxy.stop();
            assert!(
                status.success(),
                "{name} proxy exit status after SIGTERM: {status}"
            );
        }
    });
}
