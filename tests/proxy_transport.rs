//! The live transport of the running binary on loopback: IPv4 and IPv6 listeners,
//! responses back over the phone's own TCP connection, CRLF keep-alives, and
//! receive loops that survive bad input.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use common::Proxy;
use presence_proxy::sip::framing::StreamFramer;
use presence_proxy::sip::{self, Limits};

const WAIT: Duration = Duration::from_secs(5);

fn request(method: &str, transport: &str, sent_by: &str, call_id: &str, contact: &str) -> Vec<u8> {
    format!(
        "{method} sip:alice@example.com SIP/2.0\r\nVia: SIP/2.0/{transport} {sent_by};branch=z9hG4bK-{call_id};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:bob@example.com>;tag=b1\r\nTo: <sip:alice@example.com>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 {method}\r\nContact: <{contact}>\r\nEvent: presence\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// The upstream's answer: the request's Vias, From, To (+tag), Call-ID, CSeq.
fn answer(req: &[u8], status: &str) -> Vec<u8> {
    let m = sip::parse(bytes::Bytes::copy_from_slice(req), &Limits::default())
        .expect("forwarded request parses");
    let mut out = format!("SIP/2.0 {status}\r\n");
    for v in m.header_values("Via") {
        out.push_str(&format!("Via: {}\r\n", String::from_utf8_lossy(v)));
    }
    for r in m.record_routes() {
        out.push_str(&format!(
            "Record-Route: <{}>\r\n",
            String::from_utf8_lossy(r)
        ));
    }
    for h in ["From", "Call-ID", "CSeq"] {
        out.push_str(&format!(
            "{h}: {}\r\n",
            String::from_utf8_lossy(m.header(h).unwrap())
        ));
    }
    out.push_str(&format!(
        "To: {};tag=up1\r\nContent-Length: 0\r\n\r\n",
        String::from_utf8_lossy(m.header("To").unwrap())
    ));
    out.into_bytes()
}

fn recv_udp(s: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = vec![0u8; 65536];
    let (n, from) = s.recv_from(&mut buf).expect("a datagram within 5 s");
    (buf[..n].to_vec(), from)
}

fn recv_tcp(s: &mut TcpStream, framer: &mut StreamFramer) -> Vec<u8> {
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 16384];
    loop {
        if let Some(m) = framer.next() {
            return m.expect("framable").to_vec();
        }
        let n = s.read(&mut buf).expect("read within 5 s");
        assert!(n > 0, "connection closed");
        framer.push(&buf[..n]);
    }
}

fn status(m: &[u8]) -> String {
    String::from_utf8_lossy(m)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn ipv6_and_ipv4_listeners_forward_and_answer_back() {
    let upstream = UdpSocket::bind("127.0.0.1:22201").unwrap();
    let proxy = Proxy::start(&[
        "--listen",
        "127.0.0.1:22200",
        "--listen",
        "[::1]:22200",
        "--upstream",
        "udp:127.0.0.1:22201",
    ]);
    let phone6 = UdpSocket::bind("[::1]:0").unwrap();
    let port = phone6.local_addr().unwrap().port();
    let req = request(
        "SUBSCRIBE",
        "UDP",
        &format!("[::1]:{port}"),
        "v6-1",
        &format!("sip:bob@[::1]:{port}"),
    );
    phone6.send_to(&req, "[::1]:22200").unwrap();
    let (fwd, from) = recv_udp(&upstream);
    assert_eq!(
        from,
        "127.0.0.1:22200".parse().unwrap(),
        "sent from the IPv4 listener to the IPv4 upstream"
    );
    let m = sip::parse(bytes::Bytes::from(fwd.clone()), &Limits::default()).unwrap();
    let vias: Vec<_> = m.vias().collect();
    assert_eq!(
        (vias[0].host, vias[0].port),
        (&b"127.0.0.1"[..], Some(22200))
    );
    assert_eq!(
        vias[1].host, b"[::1]",
        "the phone's IPv6 Via kept (RFC 5118)"
    );
    assert_eq!(vias[1].rport, Some(Some(port)));
    // Phone on IPv6, upstream on IPv4: one Record-Route per side.
    assert_eq!(m.record_routes().count(), 2);

    upstream
        .send_to(&answer(&fwd, "202 Accepted"), "127.0.0.1:22200")
        .unwrap();
    let (resp, _) = recv_udp(&phone6);
    assert_eq!(status(&resp), "SIP/2.0 202 Accepted");
    let r = sip::parse(bytes::Bytes::from(resp), &Limits::default()).unwrap();
    assert_eq!(r.vias().count(), 1, "our Via popped");
    assert!(proxy.stop().success());
}

#[test]
fn tcp_phone_gets_its_answer_and_upstream_requests_on_its_own_connection() {
    let upstream = UdpSocket::bind("127.0.0.1:22211").unwrap();
    let proxy = Proxy::start(&[
        "--listen",
        "127.0.0.1:22210",
        "--upstream",
        "udp:127.0.0.1:22211",
    ]);
    let mut phone = TcpStream::connect("127.0.0.1:22210").unwrap();
    let mut framer = StreamFramer::default();
    // The phone's Contact names a port nobody listens on: the proxy must use the
    // connection the phone opened.
    let req = request(
        "SUBSCRIBE",
        "TCP",
        "127.0.0.1:22219",
        "tcp-1",
        "sip:bob@127.0.0.1:22219;transport=tcp",
    );
    phone.write_all(&req).unwrap();
    let (fwd, _) = recv_udp(&upstream);
    upstream
        .send_to(&answer(&fwd, "200 OK"), "127.0.0.1:22210")
        .unwrap();
    assert_eq!(status(&recv_tcp(&mut phone, &mut framer)), "SIP/2.0 200 OK");

    let notify = "NOTIFY sip:bob@127.0.0.1:22219;transport=tcp SIP/2.0\r\n\
                  Via: SIP/2.0/UDP 127.0.0.1:22211;branch=z9hG4bK-n1\r\n\
                  Route: <sip:127.0.0.1:22210;lr>\r\nMax-Forwards: 70\r\n\
                  From: <sip:alice@example.com>;tag=up1\r\nTo: <sip:bob@example.com>;tag=b1\r\n\
                  Call-ID: tcp-1\r\nCSeq: 1 NOTIFY\r\nEvent: presence\r\nSubscription-State: active\r\n\
                  Content-Length: 0\r\n\r\n";
    upstream
        .send_to(notify.as_bytes(), "127.0.0.1:22210")
        .unwrap();
    let got = recv_tcp(&mut phone, &mut framer);
    assert!(
        status(&got).starts_with("NOTIFY sip:bob@127.0.0.1:22219"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert!(proxy.stop().success());
}

#[test]
fn tcp_keepalive_ping_gets_a_pong_and_the_connection_stays_usable() {
    let upstream = UdpSocket::bind("127.0.0.1:22221").unwrap();
    let proxy = Proxy::start(&[
        "--listen",
        "127.0.0.1:22220",
        "--upstream",
        "udp:127.0.0.1:22221",
    ]);
    let mut phone = TcpStream::connect("127.0.0.1:22220").unwrap();
    phone.write_all(b"\r\n\r\n").unwrap();
    phone.set_read_timeout(Some(WAIT)).unwrap();
    let mut pong = [0u8; 2];
    phone.read_exact(&mut pong).unwrap();
    assert_eq!(&pong, b"\r\n", "RFC 5626 §4.4.1 pong");
    let req = request(
        "OPTIONS",
        "TCP",
        "127.0.0.1:22229",
        "ka-1",
        "sip:bob@127.0.0.1:22229;transport=tcp",
    );
    phone.write_all(&req).unwrap();
    let (fwd, _) = recv_udp(&upstream);
    assert!(status(&fwd).starts_with("OPTIONS "));
    assert!(proxy.stop().success());
}

#[test]
fn bad_input_never_ends_a_receive_loop() {
    let upstream = UdpSocket::bind("127.0.0.1:22231").unwrap();
    let proxy = Proxy::start(&[
        "--listen",
        "127.0.0.1:22230",
        "--upstream",
        "udp:127.0.0.1:22231",
    ]);
    let phone = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = phone.local_addr().unwrap().port();
    for junk in [
        &b"\x00\x01\x02"[..],
        b"SIP/2.0 999999 x\r\n\r\n",
        b"INVITE\r\n\r\n",
        &[0xffu8; 70_000][..60_000],
        b"\r\n",
    ] {
        phone.send_to(junk, "127.0.0.1:22230").unwrap();
    }
    // A stream that cannot be framed is closed; the listener keeps accepting.
    let mut bad = TcpStream::connect("127.0.0.1:22230").unwrap();
    bad.write_all(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -4\r\n\r\n")
        .unwrap();
    bad.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 64];
    assert!(
        matches!(bad.read(&mut buf), Ok(0) | Err(_)),
        "unframeable stream closed"
    );
    drop(TcpStream::connect("127.0.0.1:22230").unwrap());

    let req = request(
        "OPTIONS",
        "UDP",
        &format!("127.0.0.1:{port}"),
        "after-junk",
        "sip:bob@127.0.0.1",
    );
    phone.send_to(&req, "127.0.0.1:22230").unwrap();
    let (fwd, _) = recv_udp(&upstream);
    assert!(status(&fwd).starts_with("OPTIONS "));
    let mut tcp = TcpStream::connect("127.0.0.1:22230").unwrap();
    tcp.write_all(&request(
        "OPTIONS",
        "TCP",
        "127.0.0.1:9",
        "after-junk-tcp",
        "sip:bob@127.0.0.1",
    ))
    .unwrap();
    let (fwd, _) = recv_udp(&upstream);
    assert!(String::from_utf8_lossy(&fwd).contains("after-junk-tcp"));
    assert!(!proxy.log().contains("panicked"));
    assert!(proxy.stop().success());
}

#[test]
fn tcp_upstream_is_reached_over_one_connection() {
    let upstream = TcpListener::bind("127.0.0.1:22241").unwrap();
    let proxy = Proxy::start(&[
        "--listen",
        "127.0.0.1:22240",
        "--upstream",
        "tcp:127.0.0.1:22241",
    ]);
    let phone = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = phone.local_addr().unwrap().port();
    for i in 0..3 {
        let req = request(
            "OPTIONS",
            "UDP",
            &format!("127.0.0.1:{port}"),
            &format!("up-tcp-{i}"),
            "sip:bob@127.0.0.1",
        );
        phone.send_to(&req, "127.0.0.1:22240").unwrap();
    }
    upstream.set_nonblocking(false).unwrap();
    let (mut conn, _) = upstream.accept().unwrap();
    let mut framer = StreamFramer::default();
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(recv_tcp(&mut conn, &mut framer));
    }
    for (i, m) in got.iter().enumerate() {
        let m = sip::parse(bytes::Bytes::from(m.clone()), &Limits::default()).unwrap();
        assert_eq!(m.top_via().unwrap().transport, b"TCP");
        assert_eq!(m.call_id(), Some(format!("up-tcp-{i}").as_bytes()));
    }
    // The answer comes back on the same connection and goes to the phone over UDP.
    conn.write_all(&answer(&got[0], "200 OK")).unwrap();
    let (resp, _) = recv_udp(&phone);
    assert_eq!(status(&resp), "SIP/2.0 200 OK");
    upstream.set_nonblocking(true).unwrap();
    assert!(
        upstream.accept().is_err(),
        "no second connection was opened"
    );
    assert!(proxy.stop().success());
}

#[test]
fn tcp_limits_idle_timeout_and_connection_cap() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("limits.toml");
    std::fs::write(
        &file,
        "[sip.limits]\ntcp_idle_timeout_s = 1\nmax_connections = 2\n",
    )
    .unwrap();
    let proxy = Proxy::start(&[
        "--config",
        file.to_str().unwrap(),
        "--listen",
        "127.0.0.1:22250",
        "--upstream",
        "udp:127.0.0.1:22251",
    ]);
    let mut first = TcpStream::connect("127.0.0.1:22250").unwrap();
    let _second = TcpStream::connect("127.0.0.1:22250").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let mut third = TcpStream::connect("127.0.0.1:22250").unwrap();
    third
        .set_read_timeout(Some(Duration::from_millis(800)))
        .unwrap();
    let mut buf = [0u8; 16];
    assert!(
        matches!(third.read(&mut buf), Ok(0)),
        "a connection over max_connections is closed at once"
    );

    first
        .set_read_timeout(Some(Duration::from_secs(4)))
        .unwrap();
    let started = std::time::Instant::now();
    assert!(
        matches!(first.read(&mut buf), Ok(0)),
        "an idle connection is closed"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "not before the idle timeout"
    );
    assert!(proxy.stop().success());
}

#[test]
fn udp_burst_of_several_batches_is_forwarded_whole_and_in_order() {
    let upstream = UdpSocket::bind("127.0.0.1:22271").unwrap();
    let proxy = Proxy::start(&[
        "--listen",
        "127.0.0.1:22270",
        "--upstream",
        "udp:127.0.0.1:22271",
    ]);
    let phone = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = phone.local_addr().unwrap().port();
    // More than three receive batches, sent before the proxy can read any.
    const N: usize = 100;
    for i in 0..N {
        let req = request(
            "OPTIONS",
            "UDP",
            &format!("127.0.0.1:{port}"),
            &format!("burst-{i}"),
            "sip:bob@127.0.0.1",
        );
        phone.send_to(&req, "127.0.0.1:22270").unwrap();
    }
    let mut answers = Vec::new();
    for i in 0..N {
        let (fwd, _) = recv_udp(&upstream);
        let m = sip::parse(bytes::Bytes::from(fwd.clone()), &Limits::default()).unwrap();
        assert_eq!(m.call_id(), Some(format!("burst-{i}").as_bytes()));
        answers.push(answer(&fwd, "200 OK"));
    }
    for a in &answers {
        upstream.send_to(a, "127.0.0.1:22270").unwrap();
    }
    for i in 0..N {
        let (resp, _) = recv_udp(&phone);
        let m = sip::parse(bytes::Bytes::from(resp), &Limits::default()).unwrap();
        assert_eq!(m.call_id(), Some(format!("burst-{i}").as_bytes()));
    }
    assert!(proxy.stop().success());
}

/// The receive loop stops reading after a short batch without waiting for
/// `WouldBlock` (src/transport/udp.rs): a datagram that lands after that read must
/// still wake it. Ping-pong in small bursts, so a missed wake-up is never covered by
/// a later datagram: the next burst is only sent once this one is through.
#[test]
fn udp_small_bursts_in_lockstep_are_each_forwarded() {
    let upstream = UdpSocket::bind("127.0.0.1:22281").unwrap();
    let proxy = Proxy::start(&[
        "--listen",
        "127.0.0.1:22280",
        "--upstream",
        "udp:127.0.0.1:22281",
    ]);
    let phone = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = phone.local_addr().unwrap().port();
    for round in 0..300 {
        let burst = 1 + round % 4;
        for i in 0..burst {
            let req = request(
                "OPTIONS",
                "UDP",
                &format!("127.0.0.1:{port}"),
                &format!("step-{round}-{i}"),
                "sip:bob@127.0.0.1",
            );
            phone.send_to(&req, "127.0.0.1:22280").unwrap();
        }
        for i in 0..burst {
            let (fwd, _) = recv_udp(&upstream);
            let m = sip::parse(bytes::Bytes::from(fwd), &Limits::default()).unwrap();
            assert_eq!(m.call_id(), Some(format!("step-{round}-{i}").as_bytes()));
        }
        if round % 50 == 0 {
            // Now and then let the proxy's runtime go idle between bursts.
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    assert!(proxy.stop().success());
}

#[test]
fn tcp_burst_in_one_write_is_forwarded_whole_and_in_order_both_ways() {
    let upstream = TcpListener::bind("127.0.0.1:22281").unwrap();
    let proxy = Proxy::start(&[
        "--listen",
        "127.0.0.1:22280",
        "--upstream",
        "tcp:127.0.0.1:22281",
    ]);
    let mut phone = TcpStream::connect("127.0.0.1:22280").unwrap();
    const N: usize = 100;
    let mut burst = Vec::new();
    for i in 0..N {
        burst.extend(request(
            "OPTIONS",
            "TCP",
            "127.0.0.1:9",
            &format!("tcp-burst-{i}"),
            "sip:bob@127.0.0.1;transport=tcp",
        ));
    }
    phone.write_all(&burst).unwrap();
    upstream.set_nonblocking(false).unwrap();
    let (mut conn, _) = upstream.accept().unwrap();
    let mut framer = StreamFramer::default();
    let mut answers = Vec::new();
    for i in 0..N {
        let fwd = recv_tcp(&mut conn, &mut framer);
        let m = sip::parse(bytes::Bytes::from(fwd.clone()), &Limits::default()).unwrap();
        assert_eq!(m.call_id(), Some(format!("tcp-burst-{i}").as_bytes()));
        answers.extend(answer(&fwd, "200 OK"));
    }
    conn.write_all(&answers).unwrap();
    let mut framer = StreamFramer::default();
    for i in 0..N {
        let resp = recv_tcp(&mut phone, &mut framer);
        let m = sip::parse(bytes::Bytes::from(resp), &Limits::default()).unwrap();
        assert_eq!(m.status(), Some(200));
        assert_eq!(m.call_id(), Some(format!("tcp-burst-{i}").as_bytes()));
    }
    assert!(proxy.stop().success());
}
