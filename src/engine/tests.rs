//! Routing through the whole engine: crafted messages in, Transmits out, no
//! sockets and no clock.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

use super::*;
use crate::policy::{Aor, Change, Org, PendingHow, PendingRequest, PolicyDocument, UserPolicy};
use crate::store::{Account, StoreError, StoreEvent};

/// The smallest store: no users, default org. Routing never consults it.
struct EmptyStore(tokio::sync::broadcast::Sender<StoreEvent>);

impl Store for EmptyStore {
    fn org(&self) -> Arc<Org> {
        Arc::new(Org::default())
    }
    fn user(&self, _: &Aor) -> Option<Arc<UserPolicy>> {
        None
    }
    fn users(&self) -> Vec<Arc<UserPolicy>> {
        Vec::new()
    }
    fn apply(&self, _: Change) -> Result<(), StoreError> {
        Err(StoreError::Io("read-only test store".into()))
    }
    fn apply_all(&self, _: Vec<Change>) -> Result<(), StoreError> {
        Err(StoreError::Io("read-only test store".into()))
    }
    fn export(&self) -> PolicyDocument {
        PolicyDocument::default()
    }
    fn import(&self, _: PolicyDocument) -> Result<(), StoreError> {
        Err(StoreError::Io("read-only test store".into()))
    }
    fn record_pending(&self, _: &Aor, _: &Aor, _: PendingHow, _: u64) -> Result<bool, StoreError> {
        Ok(false)
    }
    fn expire_pending(&self, _: u64) -> Result<Vec<PendingRequest>, StoreError> {
        Ok(Vec::new())
    }
    fn pending(&self, _: &Aor) -> Vec<PendingRequest> {
        Vec::new()
    }
    fn account(&self, _: &Aor) -> Option<Account> {
        None
    }
    fn put_account(&self, _: Account) -> Result<(), StoreError> {
        Err(StoreError::Io("read-only test store".into()))
    }
    fn remove_account(&self, _: &Aor) -> Result<(), StoreError> {
        Err(StoreError::Io("read-only test store".into()))
    }
    fn accounts(&self) -> Vec<Aor> {
        Vec::new()
    }
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<StoreEvent> {
        self.0.subscribe()
    }
}

const NOW: u64 = 1_700_000_000_000;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn engine_with(cfg: EngineConfig) -> Engine {
    Engine::new(
        cfg,
        Arc::new(EmptyStore(tokio::sync::broadcast::channel(4).0)),
    )
}

fn engine() -> Engine {
    engine_with(EngineConfig::new(
        addr("127.0.0.1:5070"),
        Transport::Udp,
        vec![addr("127.0.0.1:5060")],
    ))
}

fn msg(text: &str) -> Bytes {
    Bytes::from(text.replace('\n', "\r\n"))
}

/// A body-less request from bob's phone (127.0.0.1:5062) to alice.
fn from_bob(
    method: &str,
    branch: &str,
    max_forwards: u32,
    to_tag: &str,
    call_id: &str,
    cseq: &str,
) -> Bytes {
    msg(&format!(
        "{method} sip:alice@example.com SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5062;branch={branch}
Max-Forwards: {max_forwards}
From: <sip:bob@example.com>;tag=f1
To: <sip:alice@example.com>{to_tag}
Call-ID: {call_id}
CSeq: {cseq}
Content-Length: 0

"
    ))
}

fn rx(data: Bytes, source: &str, transport: Transport, conn: Option<u64>) -> Received {
    Received {
        data,
        source: addr(source),
        local: addr("127.0.0.1:5060"),
        transport,
        conn: conn.map(ConnId),
    }
}

fn run(e: &Engine, r: Received) -> (Outcome, Vec<Transmit>) {
    let mut out = Vec::new();
    let o = e.handle(NOW, r, &mut out);
    (o, out)
}

fn text(t: &Transmit) -> String {
    String::from_utf8(t.data.to_vec()).unwrap()
}

fn parsed(t: &Transmit) -> sip::Message {
    sip::parse(t.data.clone(), &Limits::default()).expect("the proxy sends parseable SIP")
}

fn subscribe(via: &str, extra: &str) -> Bytes {
    msg(&format!(
        "SUBSCRIBE sip:alice@example.com SIP/2.0
Via: {via}
Route: <sip:127.0.0.1:5060;lr>
Max-Forwards: 70
From: <sip:bob@example.com>;tag=f1
To: <sip:alice@example.com>
Call-ID: c1@example.com
CSeq: 1 SUBSCRIBE
Contact: <sip:bob@127.0.0.1:5062>
Event: presence
{extra}Content-Length: 0

"
    ))
}

fn phone_subscribe() -> Bytes {
    subscribe("SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-1;rport", "")
}

#[test]
fn phone_request_goes_upstream_with_only_routing_headers_changed() {
    let e = engine();
    let (o, out) = run(
        &e,
        rx(phone_subscribe(), "127.0.0.1:5062", Transport::Udp, None),
    );
    assert_eq!(o.action, Handled::Forwarded);
    assert_eq!(o.direction, Direction::Downstream);
    assert_eq!(out.len(), 1);
    let t = &out[0];
    assert_eq!(
        (t.destination, t.transport),
        (addr("127.0.0.1:5070"), Transport::Udp)
    );
    let m = parsed(t);
    let vias: Vec<_> = m.vias().collect();
    assert_eq!(vias.len(), 2);
    assert_eq!(vias[0].host, b"127.0.0.1");
    assert_eq!(vias[0].port, Some(5060));
    assert!(vias[0].branch.unwrap().starts_with(b"z9hG4bKpp"));
    assert_eq!(vias[1].rport, Some(Some(5062)), "rport filled (RFC 3581)");
    assert_eq!(vias[1].received, Some(&b"127.0.0.1"[..]));
    assert_eq!(m.max_forwards(), Some(69));
    assert_eq!(m.routes().count(), 0, "the Route naming us is removed");
    assert_eq!(
        m.record_routes().collect::<Vec<_>>(),
        vec![&b"sip:127.0.0.1:5060;lr"[..]]
    );
    let s = text(t);
    for line in [
        "From: <sip:bob@example.com>;tag=f1\r\n",
        "To: <sip:alice@example.com>\r\n",
        "Call-ID: c1@example.com\r\n",
        "CSeq: 1 SUBSCRIBE\r\n",
        "Contact: <sip:bob@127.0.0.1:5062>\r\n",
        "Event: presence\r\n",
    ] {
        assert!(s.contains(line), "{line:?} kept byte for byte in\n{s}");
    }
    assert_eq!(
        e.metrics().requests_in(Method::Subscribe, Transport::Udp),
        1
    );
    assert_eq!(
        e.metrics().requests_out(Method::Subscribe, Transport::Udp),
        1
    );
}

#[test]
fn received_is_added_only_when_sent_by_differs() {
    let e = engine();
    let (_, out) = run(
        &e,
        rx(
            subscribe("SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-2", ""),
            "127.0.0.1:5062",
            Transport::Udp,
            None,
        ),
    );
    let m = parsed(&out[0]);
    let phone = m.vias().nth(1).unwrap();
    assert_eq!((phone.received, phone.rport), (None, None));
    let (_, out) = run(
        &e,
        rx(
            subscribe("SIP/2.0/UDP 10.1.2.3:5062;branch=z9hG4bK-3", ""),
            "127.0.0.1:40000",
            Transport::Udp,
            None,
        ),
    );
    let m = parsed(&out[0]);
    let phone = m.vias().nth(1).unwrap();
    assert_eq!(phone.received, Some(&b"127.0.0.1"[..]), "RFC 3261 §18.2.1");
    assert_eq!(phone.rport, None);
}

#[test]
fn branch_is_derived_from_the_incoming_transaction() {
    let e = engine();
    let branch_of = |data: Bytes| {
        let (_, out) = run(&e, rx(data, "127.0.0.1:5062", Transport::Udp, None));
        let m = parsed(&out[0]);
        let b = m.top_via().unwrap().branch.unwrap().to_vec();
        b
    };
    let invite = |method: &str, branch: &str| {
        msg(&format!(
            "{method} sip:alice@example.com SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5062;branch={branch}
Max-Forwards: 70
From: <sip:bob@example.com>;tag=f1
To: <sip:alice@example.com>
Call-ID: inv1
CSeq: 1 {method}
Content-Length: 0

"
        ))
    };
    let a = branch_of(invite("INVITE", "z9hG4bK-a"));
    assert_eq!(
        a,
        branch_of(invite("INVITE", "z9hG4bK-a")),
        "a retransmission gets the same branch"
    );
    assert_eq!(
        a,
        branch_of(invite("CANCEL", "z9hG4bK-a")),
        "CANCEL matches its INVITE (RFC 3261 §16.10)"
    );
    assert_ne!(
        a,
        branch_of(invite("INVITE", "z9hG4bK-b")),
        "another transaction, another branch"
    );
}

#[test]
fn upstream_request_goes_by_request_uri_and_reuses_the_phones_tcp_connection() {
    let e = engine();
    let sub = msg("SUBSCRIBE sip:alice@example.com SIP/2.0
Via: SIP/2.0/TCP 127.0.0.1:5062;branch=z9hG4bK-t1
Max-Forwards: 70
From: <sip:bob@example.com>;tag=f1
To: <sip:alice@example.com>
Call-ID: t1
CSeq: 1 SUBSCRIBE
Contact: <sip:bob@127.0.0.1:5062;transport=tcp>
Event: presence
Content-Length: 0

");
    let (_, out) = run(&e, rx(sub, "127.0.0.1:40001", Transport::Tcp, Some(7)));
    // Phone on TCP, upstream on UDP: two Record-Routes (RFC 5658), the one on top
    // faces the upstream.
    let m = parsed(&out[0]);
    assert_eq!(
        m.record_routes().collect::<Vec<_>>(),
        vec![
            &b"sip:127.0.0.1:5060;lr"[..],
            &b"sip:127.0.0.1:5060;transport=tcp;lr"[..]
        ]
    );
    let notify = msg("NOTIFY sip:bob@127.0.0.1:5062;transport=tcp SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-n1
Route: <sip:127.0.0.1:5060;lr>, <sip:127.0.0.1:5060;transport=tcp;lr>
Max-Forwards: 70
From: <sip:alice@example.com>;tag=a1
To: <sip:bob@example.com>;tag=f1
Call-ID: t1
CSeq: 1 NOTIFY
Event: presence
Subscription-State: active
Content-Length: 0

");
    let (o, out) = run(
        &e,
        rx(notify.clone(), "127.0.0.1:5070", Transport::Udp, None),
    );
    assert_eq!(o.direction, Direction::Upstream);
    assert_eq!(out.len(), 1);
    let t = &out[0];
    assert_eq!(
        (t.destination, t.transport, t.conn),
        (addr("127.0.0.1:40001"), Transport::Tcp, Some(ConnId(7)))
    );
    let m = parsed(t);
    assert_eq!(m.routes().count(), 0, "both of our Routes removed");
    assert_eq!(m.top_via().unwrap().transport, b"TCP");
    assert_eq!(
        m.top_via().unwrap().param("alias"),
        Some(None),
        "RFC 5923 connection reuse offered"
    );

    e.connection_closed(ConnId(7));
    let (_, out) = run(&e, rx(notify, "127.0.0.1:5070", Transport::Udp, None));
    let t = &out[0];
    assert_eq!(
        (t.destination, t.transport, t.conn),
        (addr("127.0.0.1:5062"), Transport::Tcp, None)
    );
}

#[test]
fn response_goes_back_by_via_without_our_via() {
    let e = engine();
    let (_, out) = run(
        &e,
        rx(phone_subscribe(), "127.0.0.1:40002", Transport::Udp, None),
    );
    let fwd = parsed(&out[0]);
    let vias: Vec<String> = fwd
        .header_values("Via")
        .map(|v| String::from_utf8(v.to_vec()).unwrap())
        .collect();
    let ok = msg(&format!(
        "SIP/2.0 202 Accepted
Via: {}
Via: {}
From: <sip:bob@example.com>;tag=f1
To: <sip:alice@example.com>;tag=a1
Call-ID: c1@example.com
CSeq: 1 SUBSCRIBE
Record-Route: <sip:127.0.0.1:5060;lr>
Expires: 3600
Content-Length: 0

",
        vias[0], vias[1]
    ));
    let (o, out) = run(&e, rx(ok, "127.0.0.1:5070", Transport::Udp, None));
    assert_eq!(o.action, Handled::Forwarded);
    let t = &out[0];
    assert_eq!(
        t.destination,
        addr("127.0.0.1:40002"),
        "rport and received honoured (RFC 3581 §4)"
    );
    let m = parsed(t);
    assert_eq!(m.vias().count(), 1);
    assert_eq!(m.top_via().unwrap().branch, Some(&b"z9hG4bK-1"[..]));
    assert!(text(t).contains("Record-Route: <sip:127.0.0.1:5060;lr>\r\n"));
}

#[test]
fn responses_not_for_a_forwarded_request_are_dropped_and_counted() {
    let e = engine();
    let resp = |vias: &str| {
        msg(&format!(
            "SIP/2.0 200 OK
{vias}From: <sip:a@example.com>;tag=1
To: <sip:b@example.com>;tag=2
Call-ID: r1
CSeq: 1 OPTIONS
Content-Length: 0

"
        ))
    };
    let cases = [
        ("Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK1\n", DropReason::ResponseNotOurs),
        ("Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKpp1\n", DropReason::ResponseForUs),
        (
            "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKpp1\nVia: SIP/2.0/UDP 255.255.255.255;branch=z9hG4bK2\n",
            DropReason::BadDestination,
        ),
        (
            "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKpp1\nVia: SIP/2.0/UDP phone.example.com;branch=z9hG4bK2\n",
            DropReason::BadDestination,
        ),
        (
            "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKpp1\nVia: SIP/2.0/SCTP 127.0.0.1;branch=z9hG4bK2\n",
            DropReason::BadDestination,
        ),
    ];
    for (vias, reason) in cases {
        let before = e.metrics().drops(reason);
        let (o, out) = run(&e, rx(resp(vias), "127.0.0.1:5070", Transport::Udp, None));
        assert_eq!(o.action, Handled::Dropped, "{vias}");
        assert!(out.is_empty(), "{vias}");
        assert_eq!(e.metrics().drops(reason), before + 1, "{vias}");
    }
}

#[test]
fn max_forwards_zero_is_refused_with_483_and_an_ack_is_dropped() {
    let e = engine();
    let data = from_bob("OPTIONS", "z9hG4bK-mf", 0, "", "mf", "1 OPTIONS");
    let (o, out) = run(&e, rx(data, "127.0.0.1:5062", Transport::Udp, None));
    assert_eq!(o.action, Handled::Refused);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].destination, addr("127.0.0.1:5062"));
    let r = parsed(&out[0]);
    assert_eq!(r.status(), Some(483));
    assert!(
        r.to().unwrap().tag.is_some(),
        "our response carries a To tag"
    );
    assert_eq!(e.metrics().refusals(Refusal::TooManyHops), 1);

    let ack = from_bob("ACK", "z9hG4bK-ack", 0, ";tag=x", "mf", "1 ACK");
    let (o, out) = run(&e, rx(ack, "127.0.0.1:5062", Transport::Udp, None));
    assert_eq!(o.action, Handled::Dropped);
    assert!(out.is_empty(), "an ACK is never answered");
}

#[test]
fn a_request_coming_back_unchanged_is_a_loop_but_a_retargeted_one_spirals() {
    let e = engine();
    let (_, out) = run(
        &e,
        rx(phone_subscribe(), "127.0.0.1:5062", Transport::Udp, None),
    );
    let looped = out[0].data.clone();
    let (o, out) = run(
        &e,
        rx(looped.clone(), "127.0.0.1:5099", Transport::Udp, None),
    );
    assert_eq!(o.action, Handled::Refused);
    assert_eq!(parsed(&out[0]).status(), Some(482));
    assert_eq!(e.metrics().refusals(Refusal::Loop), 1);

    let s = String::from_utf8(looped.to_vec()).unwrap();
    let spiral = Bytes::from(s.replacen("sip:alice@example.com", "sip:alice@127.0.0.1:5555", 1));
    let (o, out) = run(&e, rx(spiral, "127.0.0.1:5099", Transport::Udp, None));
    assert_eq!(
        o.action,
        Handled::Forwarded,
        "a spiral is not a loop (RFC 3261 §16.3 step 4)"
    );
    assert_eq!(parsed(&out[0]).vias().count(), 3);
}

#[test]
fn malformed_request_gets_400_with_a_reason_and_malformed_response_is_dropped() {
    let e = engine();
    let bad = from_bob("SUBSCRIBE", "z9hG4bK-bad", 70, "", "bad", "1 NOTIFY");
    let (o, out) = run(&e, rx(bad, "127.0.0.1:5062", Transport::Udp, None));
    assert_eq!(o.action, Handled::Refused);
    assert_eq!(out.len(), 1);
    let r = parsed(&out[0]);
    assert_eq!(r.status(), Some(400));
    let reason = String::from_utf8(r.reason_phrase().unwrap().to_vec()).unwrap();
    assert!(
        reason.contains("CSeq"),
        "reason says what is wrong: {reason}"
    );
    assert_eq!(e.metrics().refusals(Refusal::Malformed), 1);

    let (o, out) = run(
        &e,
        rx(
            msg("SIP/2.0 20 OK\nVia: x\n\n"),
            "127.0.0.1:5070",
            Transport::Udp,
            None,
        ),
    );
    assert_eq!(o.action, Handled::Dropped);
    assert!(out.is_empty());
    assert_eq!(e.metrics().drops(DropReason::MalformedResponse), 1);

    let (o, out) = run(
        &e,
        rx(
            Bytes::from_static(b"\x00\xff garbage"),
            "127.0.0.1:5062",
            Transport::Udp,
            None,
        ),
    );
    assert_eq!(o.action, Handled::Dropped);
    assert!(out.is_empty());
    assert_eq!(e.metrics().drops(DropReason::MalformedRequest), 1);
}

#[test]
fn upstream_request_without_a_usable_destination_gets_404() {
    let e = engine();
    let data = msg("NOTIFY sip:bob@phone.example.com SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-u
Max-Forwards: 70
From: <sip:alice@example.com>;tag=a1
To: <sip:bob@example.com>;tag=f1
Call-ID: u
CSeq: 1 NOTIFY
Event: presence
Content-Length: 0

");
    let (o, out) = run(&e, rx(data, "127.0.0.1:5070", Transport::Udp, None));
    assert_eq!(o.action, Handled::Refused);
    assert_eq!(out[0].destination, addr("127.0.0.1:5070"));
    assert_eq!(parsed(&out[0]).status(), Some(404));
    assert_eq!(e.metrics().refusals(Refusal::Unroutable), 1);
}

#[test]
fn ipv6_addresses_in_via_and_request_uri() {
    let e = engine_with(EngineConfig::new(
        addr("[::1]:5070"),
        Transport::Udp,
        vec![addr("[::1]:5060")],
    ));
    let local = addr("[::1]:5060");
    let sub = msg("SUBSCRIBE sip:alice@example.com SIP/2.0
Via: SIP/2.0/UDP [2001:db8::9]:5062;branch=z9hG4bK-v6
Max-Forwards: 70
From: <sip:bob@example.com>;tag=f1
To: <sip:alice@example.com>
Call-ID: v6
CSeq: 1 SUBSCRIBE
Contact: <sip:bob@[::1]:5062>
Event: presence
Content-Length: 0

");
    let r = Received {
        data: sub,
        source: addr("[::1]:5062"),
        local,
        transport: Transport::Udp,
        conn: None,
    };
    let (_, out) = run(&e, r);
    let t = &out[0];
    assert_eq!(t.destination, addr("[::1]:5070"));
    let m = parsed(t);
    let vias: Vec<_> = m.vias().collect();
    assert_eq!(
        vias[0].host, b"[::1]",
        "IPv6 sent-by in brackets (RFC 5118 §4.1)"
    );
    assert_eq!(
        vias[1].received,
        Some(&b"::1"[..]),
        "received holds the bare IPv6 address"
    );
    assert_eq!(m.record_routes().next(), Some(&b"sip:[::1]:5060;lr"[..]));

    let notify = msg("NOTIFY sip:bob@[::1]:5062 SIP/2.0
Via: SIP/2.0/UDP [::1]:5070;branch=z9hG4bK-n6
Route: <sip:[::1]:5060;lr>
Max-Forwards: 70
From: <sip:alice@example.com>;tag=a1
To: <sip:bob@example.com>;tag=f1
Call-ID: v6
CSeq: 1 NOTIFY
Event: presence
Content-Length: 0

");
    let r = Received {
        data: notify,
        source: addr("[::1]:5070"),
        local,
        transport: Transport::Udp,
        conn: None,
    };
    let (o, out) = run(&e, r);
    assert_eq!(o.direction, Direction::Upstream);
    assert_eq!(out[0].destination, addr("[::1]:5062"));
}

#[test]
fn in_dialog_and_non_presence_requests_are_not_record_routed() {
    let e = engine();
    let refresh = subscribe("SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-r", "");
    let s = String::from_utf8(refresh.to_vec()).unwrap().replace(
        "To: <sip:alice@example.com>",
        "To: <sip:alice@example.com>;tag=a1",
    );
    let (_, out) = run(
        &e,
        rx(Bytes::from(s), "127.0.0.1:5062", Transport::Udp, None),
    );
    assert_eq!(parsed(&out[0]).record_routes().count(), 0);

    let invite = msg("INVITE sip:alice@example.com SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-i
Max-Forwards: 70
From: <sip:bob@example.com>;tag=f1
To: <sip:alice@example.com>
Call-ID: i
CSeq: 1 INVITE
Contact: <sip:bob@127.0.0.1:5062>
Content-Length: 0

");
    let (_, out) = run(
        &e,
        rx(invite.clone(), "127.0.0.1:5062", Transport::Udp, None),
    );
    assert_eq!(
        parsed(&out[0]).record_routes().count(),
        0,
        "INVITE not record-routed by default"
    );
    let mut cfg = EngineConfig::new(
        addr("127.0.0.1:5070"),
        Transport::Udp,
        vec![addr("127.0.0.1:5060")],
    );
    cfg.record_route_invite = true;
    let e = engine_with(cfg);
    let (_, out) = run(&e, rx(invite, "127.0.0.1:5062", Transport::Udp, None));
    assert_eq!(
        parsed(&out[0]).record_routes().count(),
        1,
        "record_route_invite = true"
    );
}

#[test]
fn options_addressed_to_the_proxy_is_answered_by_it() {
    let e = engine();
    let ping = msg("OPTIONS sip:127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-ka
Max-Forwards: 70
From: <sip:bob@example.com>;tag=f1
To: <sip:127.0.0.1:5060>
Call-ID: ka
CSeq: 1 OPTIONS
Content-Length: 0

");
    let (o, out) = run(&e, rx(ping, "127.0.0.1:5062", Transport::Udp, None));
    assert_eq!(o.action, Handled::Answered);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].destination, addr("127.0.0.1:5062"));
    let r = parsed(&out[0]);
    assert_eq!(r.status(), Some(200));
    assert!(r
        .header("Allow")
        .is_some_and(|a| a.windows(9).any(|w| w == b"SUBSCRIBE")));

    // An OPTIONS for a user goes on as any request.
    let (o, out) = run(
        &e,
        rx(phone_subscribe(), "127.0.0.1:5062", Transport::Udp, None),
    );
    assert_eq!(o.action, Handled::Forwarded);
    assert_eq!(out[0].destination, addr("127.0.0.1:5070"));
}

#[test]
fn response_returns_over_the_tcp_connection_the_request_came_on() {
    let e = engine();
    // A MESSAGE teaches no flow; its Via names a port the phone does not listen on.
    let message = msg("MESSAGE sip:alice@example.com SIP/2.0
Via: SIP/2.0/TCP 127.0.0.1:5062;branch=z9hG4bK-m
Max-Forwards: 70
From: <sip:bob@example.com>;tag=f1
To: <sip:alice@example.com>
Call-ID: m1
CSeq: 1 MESSAGE
Content-Type: text/plain
Content-Length: 2

hi");
    let (_, out) = run(&e, rx(message, "127.0.0.1:40009", Transport::Tcp, Some(9)));
    let fwd = parsed(&out[0]);
    let vias: Vec<String> = fwd
        .header_values("Via")
        .map(|v| String::from_utf8(v.to_vec()).unwrap())
        .collect();
    assert!(vias[0].contains(";pp-conn=9"), "{}", vias[0]);
    let ok = msg(&format!(
        "SIP/2.0 200 OK
Via: {}
Via: {}
From: <sip:bob@example.com>;tag=f1
To: <sip:alice@example.com>;tag=a1
Call-ID: m1
CSeq: 1 MESSAGE
Content-Length: 0

",
        vias[0], vias[1]
    ));
    let (_, out) = run(&e, rx(ok, "127.0.0.1:5070", Transport::Udp, None));
    let t = &out[0];
    assert_eq!(
        (t.transport, t.conn),
        (Transport::Tcp, Some(ConnId(9))),
        "RFC 3261 §18.2.2"
    );
    assert_eq!(parsed(t).vias().count(), 1);
}

/// The driver's write-behind covers both kinds of deferred store work: a pending
/// refresh written without a flush is reported as waiting and flushed by it.
#[test]
fn write_behind_flushes_a_pending_refresh() {
    let store = Arc::new(crate::store::SledStore::temporary().unwrap());
    let e = Engine::new(
        EngineConfig::new(
            addr("127.0.0.1:5070"),
            Transport::Udp,
            vec![addr("127.0.0.1:5060")],
        ),
        store.clone(),
    );
    let (alice, eve) = (
        Aor::parse("alice@example.com").unwrap(),
        Aor::parse("eve@partner.net").unwrap(),
    );
    assert!(!e.write_behind_waiting());
    store
        .record_pending(&alice, &eve, PendingHow::Subscribe, NOW)
        .unwrap();
    assert!(
        !e.write_behind_waiting(),
        "a new request is flushed at once"
    );
    store
        .record_pending(&alice, &eve, PendingHow::Subscribe, NOW + 1)
        .unwrap();
    assert!(e.write_behind_waiting());
    e.write_behind().unwrap();
    assert!(!e.write_behind_waiting());
}
