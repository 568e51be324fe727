//! Presence enforcement with a fake clock and crafted messages: every decision and
//! pending view, live decision changes with the CSeq shift seen from both ends,
//! retransmission, expiry, giveup, `deactivated` on re-allow, coalescing, caps, identity sources, MESSAGE
//! gating, learned contacts and the watcher-info notifier.
//!
//! The tests drive [`Presence`] exactly as the engine does: each message is parsed,
//! enforcement edits the routing editor or answers, and the edited message is what
//! routing would send on.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use presence_proxy::engine::presence::dialogs::Caps;
use presence_proxy::engine::presence::{Enforced, Presence, PresenceConfig, Step};
use presence_proxy::engine::{ConnId, Direction, Handled, Received, Transmit, Transport};
use presence_proxy::policy::{
    Action, Aor, Change, DefaultExternal, Domain, Org, PendingHow, PendingState, PendingView,
    UserPolicy,
};
use presence_proxy::sip::{self, Message};
use presence_proxy::store::{SledStore, Store};

const PROXY: &str = "127.0.0.1:5060";
const UPSTREAM: &str = "127.0.0.1:5070";
const BOB_PHONE: &str = "127.0.0.1:6001";
const MALLORY_PHONE: &str = "127.0.0.1:6002";
const EVE_PHONE: &str = "127.0.0.1:6003";
const ALICE_PHONE: &str = "127.0.0.1:6004";
const T0: u64 = 1_700_000_000_000;

const OPEN_PIDF: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:alice@example.com">
<tuple id="t1"><status><basic>open</basic></status><contact>sip:alice@192.0.2.4</contact><note>In the lab till 6</note></tuple>
<dm:person id="p1"><rpid:activities><rpid:meeting/></rpid:activities></dm:person>
</presence>"#;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn aor(s: &str) -> Aor {
    Aor::parse(s).unwrap()
}

struct Rig {
    p: Presence,
    store: Arc<SledStore>,
    now: u64,
}

struct Sent {
    enforced: Enforced,
    /// The message as routing would send it on (only meaningful for Route/Rewritten).
    passed: Message,
    out: Vec<Transmit>,
}

fn org(pending_view: PendingView) -> Org {
    Org {
        local_domains: vec![Domain::parse("example.com").unwrap()],
        pending_view,
        pending_timeout_s: 60,
        ..Org::default()
    }
}

impl Rig {
    fn new(pending_view: PendingView) -> Rig {
        Rig::with(pending_view, PresenceConfig::default())
    }

    /// alice owns the presence: internal watchers allowed by default, mallory
    /// blocked by exception, external watchers (eve@other.org) Ask Me → pending.
    fn with(pending_view: PendingView, cfg: PresenceConfig) -> Rig {
        let store = Arc::new(SledStore::temporary().unwrap());
        store
            .apply(Change::SetOrg {
                org: org(pending_view),
            })
            .unwrap();
        let mut alice = UserPolicy::new(aor("alice@example.com"));
        alice.default_external = DefaultExternal::Ask;
        store.apply(Change::PutUser { user: alice }).unwrap();
        store
            .apply(Change::AddUserException {
                owner: aor("alice@example.com"),
                watcher: aor("mallory@example.com"),
                action: Action::Block,
            })
            .unwrap();
        let p = Presence::new(cfg, store.clone() as Arc<dyn Store>);
        let mut rig = Rig { p, store, now: T0 };
        rig.register(BOB_PHONE, "bob@example.com");
        rig.register(MALLORY_PHONE, "mallory@example.com");
        rig.register(EVE_PHONE, "eve@other.org");
        rig.register(ALICE_PHONE, "alice@example.com");
        rig
    }

    fn rx(&self, data: &str, source: &str, transport: Transport) -> Received {
        Received {
            data: Bytes::from(data.replace('\n', "\r\n").replace("\r\r\n", "\r\n")),
            source: addr(source),
            local: addr(PROXY),
            transport,
            conn: (transport == Transport::Tcp).then_some(ConnId(source.len() as u64)),
        }
    }

    fn send(&mut self, data: &str, source: &str, transport: Transport) -> Sent {
        let rx = self.rx(data, source, transport);
        let msg =
            sip::parse(rx.data.clone(), &sip::Limits::default()).expect("test message parses");
        let direction = if source == UPSTREAM {
            Direction::Upstream
        } else {
            Direction::Downstream
        };
        let mut out = Vec::new();
        let mut ed = msg.edit();
        let enforced = if msg.is_request() {
            self.p
                .request(self.now, &rx, &msg, direction, &mut ed, &mut out)
        } else {
            self.p
                .response(self.now, &rx, &msg, direction, &mut ed, &mut out)
        };
        let passed =
            sip::parse(ed.finish(), &sip::Limits::default()).expect("edited message parses");
        Sent {
            enforced,
            passed,
            out,
        }
    }

    fn udp(&mut self, data: &str, source: &str) -> Sent {
        self.send(data, source, Transport::Udp)
    }

    fn register(&mut self, phone: &str, who: &str) {
        self.register_on(phone, who, Transport::Udp);
    }

    fn register_on(&mut self, phone: &str, who: &str, transport: Transport) {
        let (user, _) = who.split_once('@').unwrap();
        let reg = format!(
            "REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/UDP {phone};branch=z9hG4bKreg{user}\nMax-Forwards: 70\nFrom: <sip:{who}>;tag=r{user}\nTo: <sip:{who}>\nCall-ID: reg-{user}\nCSeq: 1 REGISTER\nContact: <sip:{user}@{phone}>\nExpires: 3600\nContent-Length: 0\n\n"
        );
        self.send(&reg, phone, transport);
        let ok = format!(
            "SIP/2.0 200 OK\nVia: SIP/2.0/UDP {PROXY};branch=z9hG4bKppx\nVia: SIP/2.0/UDP {phone};branch=z9hG4bKreg{user}\nFrom: <sip:{who}>;tag=r{user}\nTo: <sip:{who}>;tag=reg\nCall-ID: reg-{user}\nCSeq: 1 REGISTER\nContact: <sip:{user}@{phone}>;expires=3600\nContent-Length: 0\n\n"
        );
        self.udp(&ok, UPSTREAM);
    }

    /// A watcher's SUBSCRIBE and the upstream's 200; returns the dialog's Call-ID.
    fn subscribe(&mut self, phone: &str, from: &str, to: &str, call: &str) -> Sent {
        let sub = subscribe_msg(phone, from, to, call, 3600);
        self.udp(&sub, phone)
    }

    fn accept(&mut self, phone: &str, from: &str, to: &str, call: &str, expires: u32) -> Sent {
        let ok = format!(
            "SIP/2.0 200 OK\nVia: SIP/2.0/UDP {PROXY};branch=z9hG4bKppx\nVia: SIP/2.0/UDP {phone};branch=z9hG4bK{call}\nFrom: <sip:{from}>;tag=w-{call}\nTo: <sip:{to}>;tag=n-{call}\nCall-ID: {call}\nCSeq: 1 SUBSCRIBE\nContact: <sip:{UPSTREAM}>\nExpires: {expires}\nContent-Length: 0\n\n"
        );
        self.udp(&ok, UPSTREAM)
    }

    fn notify(&mut self, from: &str, to: &str, call: &str, cseq: u32, body: &str) -> Sent {
        let n = notify_msg(from, to, call, cseq, "active;expires=3600", body);
        self.udp(&n, UPSTREAM)
    }

    /// SUBSCRIBE + 200 + first NOTIFY with the open PIDF.
    fn dialog(&mut self, phone: &str, watcher: &str, call: &str) -> Sent {
        self.subscribe(phone, watcher, "alice@example.com", call);
        self.accept(phone, watcher, "alice@example.com", call, 3600);
        self.notify("alice@example.com", watcher, call, 1, OPEN_PIDF)
    }

    fn timeout(&mut self, at: u64) -> Vec<Transmit> {
        self.now = at;
        let mut out = Vec::new();
        self.p.handle_timeout(at, &mut out);
        out
    }

    fn policy_changed(&mut self) -> Vec<Transmit> {
        let mut out = Vec::new();
        self.p
            .policy_changed(self.now, Some(&aor("alice@example.com")), &mut out);
        out
    }
}

fn subscribe_msg(phone: &str, from: &str, to: &str, call: &str, expires: u32) -> String {
    format!(
        "SUBSCRIBE sip:{to} SIP/2.0\nVia: SIP/2.0/UDP {phone};branch=z9hG4bK{call}\nMax-Forwards: 70\nFrom: <sip:{from}>;tag=w-{call}\nTo: <sip:{to}>\nCall-ID: {call}\nCSeq: 1 SUBSCRIBE\nContact: <sip:w@{phone}>\nEvent: presence\nAccept: application/pidf+xml\nExpires: {expires}\nContent-Length: 0\n\n"
    )
}

fn notify_msg(from: &str, to: &str, call: &str, cseq: u32, state: &str, body: &str) -> String {
    let ct = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/pidf+xml\n".to_string()
    };
    format!(
        "NOTIFY sip:w@127.0.0.1:6001 SIP/2.0\nVia: SIP/2.0/UDP {UPSTREAM};branch=z9hG4bKn{call}{cseq}\nMax-Forwards: 70\nRoute: <sip:{PROXY};lr>\nFrom: <sip:{from}>;tag=n-{call}\nTo: <sip:{to}>;tag=w-{call}\nCall-ID: {call}\nCSeq: {cseq} NOTIFY\nContact: <sip:{UPSTREAM}>\nEvent: presence\nSubscription-State: {state}\n{ct}Content-Length: {}\n\n{body}",
        body.replace('\n', "\r\n").len()
    )
}

/// The watcher's 200 to a NOTIFY it received.
fn notify_ok(notify: &Message) -> String {
    let mut s = String::from("SIP/2.0 200 OK\r\n");
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        for v in notify.header_values(name) {
            s.push_str(&format!("{name}: {}\r\n", String::from_utf8_lossy(v)));
        }
    }
    s.push_str("Content-Length: 0\r\n\r\n");
    s
}

fn parse(t: &Transmit) -> Message {
    sip::parse(t.data.clone(), &sip::Limits::default()).unwrap()
}

fn body(m: &Message) -> String {
    String::from_utf8_lossy(m.body()).into_owned()
}

fn header(m: &Message, name: &str) -> String {
    String::from_utf8_lossy(m.header(name).unwrap_or_default()).into_owned()
}

/// The watcher learns nothing: `pending`, no body (anonymous is external, and
/// alice's external default is Ask Me).
fn assert_held(m: &Message) {
    assert!(
        header(m, "Subscription-State").starts_with("pending"),
        "{}",
        header(m, "Subscription-State")
    );
    assert!(m.body().is_empty());
}

fn assert_offline(m: &Message) {
    let b = body(m);
    assert!(b.contains("<basic>closed</basic>"), "{b}");
    for leak in [
        "open",
        "note",
        "lab",
        "meeting",
        "person",
        "192.0.2.4",
        "contact",
    ] {
        assert!(!b.contains(leak), "{leak} leaked: {b}");
    }
    assert_eq!(header(m, "Content-Type"), "application/pidf+xml");
    assert_eq!(header(m, "Content-Length"), b.len().to_string());
}

#[test]
fn allowed_watcher_gets_the_real_notify_untouched() {
    let mut r = Rig::new(PendingView::Hold);
    let s = r.dialog(BOB_PHONE, "bob@example.com", "c-bob");
    assert_eq!(s.enforced.step, Step::Route);
    assert_eq!(s.enforced.watcher, Some(aor("bob@example.com")));
    assert!(body(&s.passed).contains("<basic>open</basic>"));
    assert!(s.out.is_empty());
}

#[test]
fn blocked_watcher_gets_the_offline_document() {
    let mut r = Rig::new(PendingView::Hold);
    let s = r.dialog(MALLORY_PHONE, "mallory@example.com", "c-mal");
    assert_eq!(s.enforced.step, Step::Rewritten);
    assert_offline(&s.passed);
    assert_eq!(
        header(&s.passed, "Subscription-State"),
        "active;expires=3600",
        "state as the notifier set it"
    );
    assert!(s.out.is_empty());
}

#[test]
fn blocked_watcher_of_a_never_published_presentity_gets_an_empty_body() {
    let mut r = Rig::new(PendingView::Hold);
    r.subscribe(
        MALLORY_PHONE,
        "mallory@example.com",
        "alice@example.com",
        "c-e",
    );
    r.accept(
        MALLORY_PHONE,
        "mallory@example.com",
        "alice@example.com",
        "c-e",
        3600,
    );
    let s = r.notify("alice@example.com", "mallory@example.com", "c-e", 1, "");
    assert!(s.passed.body().is_empty());
}

#[test]
fn pending_hold_shows_pending_then_swallows_and_answers_the_notifier() {
    let mut r = Rig::new(PendingView::Hold);
    let s = r.dialog(EVE_PHONE, "eve@other.org", "c-eve");
    assert_eq!(s.enforced.step, Step::Rewritten);
    assert_eq!(
        header(&s.passed, "Subscription-State"),
        "pending;expires=3600"
    );
    assert!(s.passed.body().is_empty());
    assert!(s.passed.content_type().is_none());
    let s = r.notify("alice@example.com", "eve@other.org", "c-eve", 2, OPEN_PIDF);
    assert_eq!(s.enforced.step, Step::Done(Handled::Answered));
    assert_eq!(s.out.len(), 1);
    let ok = parse(&s.out[0]);
    assert_eq!(ok.status(), Some(200));
    assert_eq!(s.out[0].destination, addr(UPSTREAM));
}

#[test]
fn pending_offline_and_show_views() {
    let mut r = Rig::new(PendingView::Offline);
    let s = r.dialog(EVE_PHONE, "eve@other.org", "c-o");
    assert_offline(&s.passed);
    assert_eq!(
        header(&s.passed, "Subscription-State"),
        "active;expires=3600"
    );
    let mut r = Rig::new(PendingView::Show);
    let s = r.dialog(EVE_PHONE, "eve@other.org", "c-s");
    assert_eq!(s.enforced.step, Step::Route);
    assert!(body(&s.passed).contains("<basic>open</basic>"));
}

#[test]
fn pending_request_is_recorded_once_upstream_accepts() {
    let mut r = Rig::new(PendingView::Hold);
    r.subscribe(EVE_PHONE, "eve@other.org", "alice@example.com", "c-p");
    assert!(
        r.store.pending(&aor("alice@example.com")).is_empty(),
        "not before the 2xx"
    );
    r.accept(EVE_PHONE, "eve@other.org", "alice@example.com", "c-p", 3600);
    let pending = r.store.pending(&aor("alice@example.com"));
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].watcher, aor("eve@other.org"));
    assert_eq!(pending[0].how, PendingHow::Subscribe);
}

#[test]
fn refused_subscribe_leaves_no_dialog() {
    let mut r = Rig::new(PendingView::Hold);
    r.subscribe(BOB_PHONE, "bob@example.com", "alice@example.com", "c-401");
    assert_eq!(r.p.dialog_count(), 1);
    let no = "SIP/2.0 403 Forbidden\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKppx\nVia: SIP/2.0/UDP 127.0.0.1:6001;branch=z9hG4bKc-401\nFrom: <sip:bob@example.com>;tag=w-c-401\nTo: <sip:alice@example.com>;tag=x\nCall-ID: c-401\nCSeq: 1 SUBSCRIBE\nContent-Length: 0\n\n";
    r.udp(no, UPSTREAM);
    assert_eq!(r.p.dialog_count(), 0);
}

/// mallory is blocked, then allowed: the proxy injects the kept real state at once,
/// and the notifier's later NOTIFYs and the watcher's responses are renumbered so
/// that neither end sees a clash.
#[test]
fn decision_change_injects_and_shifts_cseq_both_ways() {
    let mut r = Rig::new(PendingView::Hold);
    let first = r.dialog(MALLORY_PHONE, "mallory@example.com", "c-live");
    assert_offline(&first.passed);
    assert_eq!(first.passed.cseq().unwrap().0, 1);

    r.store
        .apply(Change::Answer {
            owner: aor("alice@example.com"),
            watcher: aor("mallory@example.com"),
            action: Action::Allow,
        })
        .unwrap();
    let out = r.policy_changed();
    assert_eq!(out.len(), 1, "one NOTIFY injected");
    assert_eq!(out[0].destination, addr(MALLORY_PHONE));
    let inj = parse(&out[0]);
    assert_eq!(inj.method(), Some(sip::Method::Notify));
    assert_eq!(inj.cseq().unwrap().0, 2);
    assert!(
        body(&inj).contains("<basic>open</basic>"),
        "the kept real state"
    );
    assert_eq!(header(&inj, "Subscription-State"), "active;expires=3600");
    assert_eq!(inj.vias().count(), 1);
    assert!(inj.routes().next().is_none(), "no Route naming the proxy");
    assert_eq!(inj.to().unwrap().tag, Some(&b"w-c-live"[..]));
    assert_eq!(inj.from().unwrap().tag, Some(&b"n-c-live"[..]));

    // The watcher answers the injected NOTIFY: that response ends at the proxy.
    let s = r.udp(&notify_ok(&inj), MALLORY_PHONE);
    assert_eq!(s.enforced.step, Step::Done(Handled::Dropped));
    assert!(
        r.timeout(r.now + 1_000).is_empty(),
        "answered: no retransmission"
    );

    // The notifier's next NOTIFY (its CSeq 2) reaches the watcher as 3.
    let s = r.notify(
        "alice@example.com",
        "mallory@example.com",
        "c-live",
        2,
        OPEN_PIDF,
    );
    assert_eq!(s.passed.cseq().unwrap().0, 3);
    assert!(body(&s.passed).contains("<basic>open</basic>"));
    // The watcher's 200 (CSeq 3) goes back to the notifier as 2.
    let s = r.udp(&notify_ok(&s.passed), MALLORY_PHONE);
    assert_eq!(s.enforced.step, Step::Rewritten);
    assert_eq!(s.passed.cseq().unwrap().0, 2);

    // Blocked again: the Offline document is injected as CSeq 4, and nothing when nothing changed.
    r.store
        .apply(Change::AddUserException {
            owner: aor("alice@example.com"),
            watcher: aor("mallory@example.com"),
            action: Action::Block,
        })
        .unwrap();
    let out = r.policy_changed();
    assert_eq!(out.len(), 1);
    let inj = parse(&out[0]);
    assert_eq!(inj.cseq().unwrap().0, 4);
    assert_offline(&inj);
    assert!(r.policy_changed().is_empty());
}

/// Blocks (`true`) or unblocks bob for alice, and returns what the change sends.
fn set_bob_blocked(r: &mut Rig, blocked: bool) -> Vec<Transmit> {
    let (owner, watcher) = (aor("alice@example.com"), aor("bob@example.com"));
    let change = if blocked {
        Change::AddUserException {
            owner,
            watcher,
            action: Action::Block,
        }
    } else {
        Change::RemoveUserException { owner, watcher }
    };
    r.store.apply(change).unwrap();
    r.policy_changed()
}

#[test]
fn allowed_again_without_a_notify_between_deactivates_and_the_renewal_shows_real_presence() {
    let mut r = Rig::new(PendingView::Hold);
    let first = r.dialog(BOB_PHONE, "bob@example.com", "c-re");
    assert!(body(&first.passed).contains("<basic>open</basic>"));
    let blocked = set_bob_blocked(&mut r, true);
    assert_eq!(blocked.len(), 1);
    let off = parse(&blocked[0]);
    assert_offline(&off);
    r.udp(&notify_ok(&off), BOB_PHONE);

    // Allowed again: the proxy holds no real body (dropped while bob saw it), so it
    // ends bob's subscription for him to renew at once (RFC 6665 §4.2.2).
    let out = set_bob_blocked(&mut r, false);
    assert_eq!(out.len(), 1, "one NOTIFY, to bob");
    assert_eq!(out[0].destination, addr(BOB_PHONE));
    let end = parse(&out[0]);
    assert_eq!(end.method(), Some(sip::Method::Notify));
    assert_eq!(
        header(&end, "Subscription-State"),
        "terminated;reason=deactivated"
    );
    assert!(
        end.body().is_empty(),
        "no presence document: {}",
        body(&end)
    );
    assert!(end.content_type().is_none());
    assert_eq!(end.cseq().unwrap().0, 3);
    assert_eq!(end.to().unwrap().tag, Some(&b"w-c-re"[..]));
    assert_eq!(end.from().unwrap().tag, Some(&b"n-c-re"[..]));

    // While that NOTIFY is in flight, a notifier NOTIFY crossing it is refused.
    let s = r.notify("alice@example.com", "bob@example.com", "c-re", 2, OPEN_PIDF);
    assert_eq!(s.enforced.step, Step::Done(Handled::Answered));
    assert_eq!(parse(&s.out[0]).status(), Some(481));
    assert_eq!(r.p.dialog_count(), 1);
    // Bob's 200 ends the transaction and the proxy forgets the dialog.
    let s = r.udp(&notify_ok(&end), BOB_PHONE);
    assert_eq!(s.enforced.step, Step::Done(Handled::Dropped));
    assert_eq!(r.p.dialog_count(), 0, "the dialog is gone");
    assert!(r.timeout(r.now + 1_000).is_empty(), "no retransmission");
    assert!(r.policy_changed().is_empty());

    // Bob re-subscribes through the proxy; the notifier's first NOTIFY carries its
    // full state (RFC 6665 §4.2.1.2), which bob now sees as it is.
    let renewed = r.dialog(BOB_PHONE, "bob@example.com", "c-re2");
    assert_eq!(renewed.enforced.step, Step::Route);
    assert!(body(&renewed.passed).contains("<basic>open</basic>"));
    assert!(body(&renewed.passed).contains("In the lab till 6"));
    assert_eq!(r.p.dialog_count(), 1);
}

#[test]
fn deactivated_dialog_is_forgotten_when_its_notify_times_out() {
    let mut r = Rig::new(PendingView::Hold);
    r.dialog(BOB_PHONE, "bob@example.com", "c-re-to");
    set_bob_blocked(&mut r, true);
    let out = set_bob_blocked(&mut r, false);
    assert_eq!(
        header(&parse(&out[0]), "Subscription-State"),
        "terminated;reason=deactivated"
    );
    let start = r.now;
    for ms in (0..=32_000).step_by(500) {
        r.timeout(start + ms);
    }
    assert_eq!(r.p.dialog_count(), 0, "Timer F ends it too");
}

#[test]
fn renewal_reusing_the_call_id_and_tag_replaces_the_ended_dialog() {
    let mut r = Rig::new(PendingView::Hold);
    r.dialog(BOB_PHONE, "bob@example.com", "c-same");
    set_bob_blocked(&mut r, true);
    let end = parse(&set_bob_blocked(&mut r, false)[0]);
    // A careless client renews with the same Call-ID and From tag before answering.
    let renewed = r.dialog(BOB_PHONE, "bob@example.com", "c-same");
    r.udp(&notify_ok(&end), BOB_PHONE);
    assert_eq!(r.p.dialog_count(), 1, "the new subscription stays");
    assert!(body(&renewed.passed).contains("<basic>open</basic>"));
    let next = r.notify(
        "alice@example.com",
        "bob@example.com",
        "c-same",
        2,
        OPEN_PIDF,
    );
    assert_eq!(next.enforced.step, Step::Route);
}

#[test]
fn allowed_again_after_a_notify_while_blocked_injects_the_real_state() {
    let mut r = Rig::new(PendingView::Hold);
    r.dialog(BOB_PHONE, "bob@example.com", "c-held");
    let off = parse(&set_bob_blocked(&mut r, true)[0]);
    r.udp(&notify_ok(&off), BOB_PHONE);
    // The notifier's NOTIFY while bob is blocked: he sees Offline, the proxy keeps it.
    let s = r.notify(
        "alice@example.com",
        "bob@example.com",
        "c-held",
        2,
        OPEN_PIDF,
    );
    assert_offline(&s.passed);
    assert_eq!(s.passed.cseq().unwrap().0, 3);
    r.udp(&notify_ok(&s.passed), BOB_PHONE);

    let out = set_bob_blocked(&mut r, false);
    assert_eq!(out.len(), 1);
    let inj = parse(&out[0]);
    assert_eq!(header(&inj, "Subscription-State"), "active;expires=3600");
    assert!(
        body(&inj).contains("<basic>open</basic>"),
        "the kept real state"
    );
    assert_eq!(inj.cseq().unwrap().0, 4);
    r.udp(&notify_ok(&inj), BOB_PHONE);
    assert_eq!(r.p.dialog_count(), 1, "the subscription goes on");
}

#[test]
fn injected_notify_is_retransmitted_over_udp_until_timer_f() {
    let mut r = Rig::new(PendingView::Hold);
    r.dialog(EVE_PHONE, "eve@other.org", "c-rt");
    r.store
        .apply(Change::Answer {
            owner: aor("alice@example.com"),
            watcher: aor("eve@other.org"),
            action: Action::Allow,
        })
        .unwrap();
    let out = r.policy_changed();
    assert_eq!(out.len(), 1);
    let first = out[0].data.clone();
    let start = r.now;
    let mut at = Vec::new();
    for ms in (0..=40_000).step_by(100) {
        for t in r.timeout(start + ms) {
            assert_eq!(t.data, first, "a retransmission is the same request");
            at.push(ms);
        }
    }
    assert_eq!(&at[..4], &[500, 1_500, 3_500, 7_500]);
    assert!(at.iter().all(|&ms| ms < 32_000));
    assert_eq!(r.p.dialog_count(), 0, "Timer F ends the subscription");
}

#[test]
fn injected_notify_over_tcp_is_not_retransmitted() {
    let mut r = Rig::new(PendingView::Hold);
    r.register_on(EVE_PHONE, "eve@other.org", Transport::Tcp);
    r.send(
        &subscribe_msg(
            EVE_PHONE,
            "eve@other.org",
            "alice@example.com",
            "c-tcp",
            3600,
        ),
        EVE_PHONE,
        Transport::Tcp,
    );
    r.accept(
        EVE_PHONE,
        "eve@other.org",
        "alice@example.com",
        "c-tcp",
        3600,
    );
    r.notify("alice@example.com", "eve@other.org", "c-tcp", 1, OPEN_PIDF);
    r.store
        .apply(Change::Answer {
            owner: aor("alice@example.com"),
            watcher: aor("eve@other.org"),
            action: Action::Allow,
        })
        .unwrap();
    let out = r.policy_changed();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].transport, Transport::Tcp);
    assert!(out[0].conn.is_some(), "on the watcher's own connection");
    let start = r.now;
    for ms in (0..31_000).step_by(500) {
        assert!(r.timeout(start + ms).is_empty());
    }
}

#[test]
fn dialog_expires_with_the_granted_expiry() {
    let mut r = Rig::new(PendingView::Hold);
    r.subscribe(BOB_PHONE, "bob@example.com", "alice@example.com", "c-exp");
    r.accept(
        BOB_PHONE,
        "bob@example.com",
        "alice@example.com",
        "c-exp",
        120,
    );
    assert_eq!(r.p.dialog_count(), 1);
    let deadline = r.p.poll_timeout().unwrap();
    assert!(deadline <= T0 + 120_000);
    r.timeout(T0 + 119_000);
    assert_eq!(r.p.dialog_count(), 1);
    r.timeout(T0 + 121_000);
    assert_eq!(r.p.dialog_count(), 0);
}

#[test]
fn unanswered_pending_request_gives_up_the_subscription() {
    let mut r = Rig::new(PendingView::Hold);
    r.dialog(EVE_PHONE, "eve@other.org", "c-gu");
    assert!(r.timeout(T0 + 30_000).is_empty(), "pending_timeout_s is 60");
    let out = r.timeout(T0 + 61_000);
    let n = out
        .iter()
        .map(parse)
        .find(|m| m.method() == Some(sip::Method::Notify))
        .expect("a NOTIFY");
    assert_eq!(header(&n, "Subscription-State"), "terminated;reason=giveup");
    assert!(n.body().is_empty());
    let pending = r.store.pending(&aor("alice@example.com"));
    assert_eq!(pending[0].state, PendingState::Waiting);
    // The notifier's next NOTIFY learns the subscription is gone.
    let s = r.notify("alice@example.com", "eve@other.org", "c-gu", 2, OPEN_PIDF);
    assert_eq!(s.enforced.step, Step::Done(Handled::Answered));
    assert_eq!(parse(&s.out[0]).status(), Some(481));
}

/// A rig where bob is a user whose devices get a NOTIFY at most every `seconds`.
fn rig_with_bob_paced(seconds: u32) -> Rig {
    let r = Rig::new(PendingView::Hold);
    r.store
        .apply(Change::PutUser {
            user: UserPolicy::new(aor("bob@example.com")),
        })
        .unwrap();
    r.store
        .apply(Change::SetRefreshInterval {
            owner: aor("bob@example.com"),
            seconds,
        })
        .unwrap();
    r
}

#[test]
fn notifies_inside_the_refresh_interval_are_coalesced_into_the_newest() {
    let mut r = rig_with_bob_paced(10);
    let s = r.dialog(BOB_PHONE, "bob@example.com", "c-co");
    assert_eq!(
        s.enforced.step,
        Step::Route,
        "the first NOTIFY is never held"
    );
    r.now = T0 + 1_000;
    let s = r.notify(
        "alice@example.com",
        "bob@example.com",
        "c-co",
        2,
        &OPEN_PIDF.replace("In the lab", "Lunch"),
    );
    assert_eq!(s.enforced.step, Step::Done(Handled::Answered));
    assert_eq!(parse(&s.out[0]).status(), Some(200));
    r.now = T0 + 2_000;
    let newest = OPEN_PIDF.replace("In the lab", "Gone home");
    let s = r.notify("alice@example.com", "bob@example.com", "c-co", 3, &newest);
    assert_eq!(s.enforced.step, Step::Done(Handled::Answered));
    assert!(r.timeout(T0 + 9_000).is_empty());
    let out = r.timeout(T0 + 10_000);
    assert_eq!(out.len(), 1, "one NOTIFY for the two held");
    let d = parse(&out[0]);
    assert!(body(&d).contains("Gone home"));
    assert_eq!(d.cseq().unwrap().0, 2);
    assert_eq!(out[0].destination, addr(BOB_PHONE));
}

#[test]
fn a_decision_change_is_never_delayed_by_pacing() {
    let mut r = rig_with_bob_paced(3600);
    r.dialog(BOB_PHONE, "bob@example.com", "c-nd");
    r.now += 1_000;
    r.store
        .apply(Change::AddUserException {
            owner: aor("alice@example.com"),
            watcher: aor("bob@example.com"),
            action: Action::Block,
        })
        .unwrap();
    let out = r.policy_changed();
    assert_eq!(out.len(), 1);
    assert_offline(&parse(&out[0]));
}

#[test]
fn caps_evict_the_oldest_pending_dialog_first() {
    let cfg = PresenceConfig {
        caps: Caps {
            per_owner: 2,
            global: 100,
        },
        ..PresenceConfig::default()
    };
    let mut r = Rig::with(PendingView::Hold, cfg);
    r.dialog(BOB_PHONE, "bob@example.com", "c-1");
    r.subscribe(EVE_PHONE, "eve@other.org", "alice@example.com", "c-2"); // not yet accepted
    r.subscribe(
        MALLORY_PHONE,
        "mallory@example.com",
        "alice@example.com",
        "c-3",
    );
    assert_eq!(r.p.dialog_count(), 2);
    assert_eq!(r.p.evicted(), 1);
    // The accepted dialog survived: its NOTIFYs are still judged per dialog.
    let s = r.notify("alice@example.com", "bob@example.com", "c-1", 2, OPEN_PIDF);
    assert_eq!(s.enforced.watcher, Some(aor("bob@example.com")));
}

#[test]
fn identity_from_a_trusted_peers_asserted_identity() {
    let cfg = PresenceConfig {
        trusted_peer: Arc::new(|a: SocketAddr| {
            a == "127.0.0.1:7000".parse::<SocketAddr>().unwrap()
        }),
        ..PresenceConfig::default()
    };
    let mut r = Rig::with(PendingView::Hold, cfg);
    let sub = subscribe_msg(
        "127.0.0.1:7000",
        "nobody@example.com",
        "alice@example.com",
        "c-pai",
        3600,
    )
    .replace(
        "Event: presence\n",
        "Event: presence\nP-Asserted-Identity: <sip:mallory@example.com>\n",
    );
    let s = r.udp(&sub, "127.0.0.1:7000");
    assert_eq!(s.enforced.watcher, Some(aor("mallory@example.com")));
    assert!(
        s.passed.header("P-Asserted-Identity").is_some(),
        "kept inside the trust domain"
    );
}

#[test]
fn asserted_identity_from_anyone_else_is_stripped_and_ignored() {
    let mut r = Rig::new(PendingView::Hold);
    let sub = subscribe_msg(
        "127.0.0.1:7001",
        "x@example.com",
        "alice@example.com",
        "c-npai",
        3600,
    )
    .replace(
        "Event: presence\n",
        "Event: presence\nP-Asserted-Identity: <sip:bob@example.com>\n",
    );
    let s = r.udp(&sub, "127.0.0.1:7001");
    assert_eq!(s.enforced.watcher, Some(Aor::anonymous()));
    assert!(s.passed.header("P-Asserted-Identity").is_none());
}

#[test]
fn identity_from_the_registered_flow_beats_a_forged_from() {
    let mut r = Rig::new(PendingView::Hold);
    // mallory's phone claims to be bob.
    let s = r.subscribe(
        MALLORY_PHONE,
        "bob@example.com",
        "alice@example.com",
        "c-forge",
    );
    assert_eq!(s.enforced.watcher, Some(aor("mallory@example.com")));
    r.accept(
        MALLORY_PHONE,
        "bob@example.com",
        "alice@example.com",
        "c-forge",
        3600,
    );
    let s = r.notify(
        "alice@example.com",
        "bob@example.com",
        "c-forge",
        1,
        OPEN_PIDF,
    );
    assert_offline(&s.passed);
}

#[test]
fn a_forged_from_on_an_unregistered_flow_gains_nothing() {
    let mut r = Rig::new(PendingView::Hold);
    let s = r.subscribe(
        "127.0.0.1:7002",
        "bob@example.com",
        "alice@example.com",
        "c-anon",
    );
    assert_eq!(s.enforced.watcher, Some(Aor::anonymous()));
    r.accept(
        "127.0.0.1:7002",
        "bob@example.com",
        "alice@example.com",
        "c-anon",
        3600,
    );
    let s = r.notify(
        "alice@example.com",
        "bob@example.com",
        "c-anon",
        1,
        OPEN_PIDF,
    );
    assert_held(&s.passed);
    assert!(
        r.store.pending(&aor("alice@example.com")).is_empty(),
        "no pending request for nobody"
    );
}

#[test]
fn trust_from_believes_from_when_configured() {
    let cfg = PresenceConfig {
        trust_from: true,
        ..PresenceConfig::default()
    };
    let mut r = Rig::with(PendingView::Hold, cfg);
    let s = r.subscribe(
        "127.0.0.1:7003",
        "bob@example.com",
        "alice@example.com",
        "c-tf",
    );
    assert_eq!(s.enforced.watcher, Some(aor("bob@example.com")));
}

#[test]
fn untracked_notify_is_judged_for_an_anonymous_watcher() {
    let mut r = Rig::new(PendingView::Hold);
    let s = r.notify(
        "alice@example.com",
        "bob@example.com",
        "c-unknown",
        5,
        OPEN_PIDF,
    );
    assert_held(&s.passed);
    // With the external default Block, the same NOTIFY shows Offline.
    r.store
        .apply(Change::SetDefaults {
            owner: aor("alice@example.com"),
            internal: None,
            external: Some(DefaultExternal::Block),
        })
        .unwrap();
    let s = r.notify(
        "alice@example.com",
        "bob@example.com",
        "c-unknown",
        6,
        OPEN_PIDF,
    );
    assert_offline(&s.passed);
}

fn message_msg(phone: &str, from: &str, to: &str, call: &str) -> String {
    format!(
        "MESSAGE sip:{to} SIP/2.0\nVia: SIP/2.0/UDP {phone};branch=z9hG4bK{call}\nMax-Forwards: 70\nFrom: <sip:{from}>;tag=m-{call}\nTo: <sip:{to}>\nCall-ID: {call}\nCSeq: 1 MESSAGE\nContent-Type: text/plain\nContent-Length: 5\n\nhello"
    )
}

#[test]
fn message_from_a_blocked_watcher_is_answered_480_and_not_forwarded() {
    let mut r = Rig::new(PendingView::Hold);
    let s = r.udp(
        &message_msg(
            MALLORY_PHONE,
            "mallory@example.com",
            "alice@example.com",
            "m-1",
        ),
        MALLORY_PHONE,
    );
    assert_eq!(s.enforced.step, Step::Done(Handled::Answered));
    assert_eq!(s.out.len(), 1);
    let resp = parse(&s.out[0]);
    assert_eq!(resp.status(), Some(480));
    assert_eq!(s.out[0].destination, addr(MALLORY_PHONE));
    assert!(resp.to().unwrap().tag.is_some());
}

#[test]
fn message_block_status_403_by_config() {
    let cfg = PresenceConfig {
        message_block_status: 403,
        ..PresenceConfig::default()
    };
    let mut r = Rig::with(PendingView::Hold, cfg);
    let s = r.udp(
        &message_msg(
            MALLORY_PHONE,
            "mallory@example.com",
            "alice@example.com",
            "m-2",
        ),
        MALLORY_PHONE,
    );
    assert_eq!(parse(&s.out[0]).status(), Some(403));
}

#[test]
fn message_from_an_allowed_watcher_passes_and_pending_asks_the_owner() {
    let mut r = Rig::new(PendingView::Hold);
    let s = r.udp(
        &message_msg(BOB_PHONE, "bob@example.com", "alice@example.com", "m-3"),
        BOB_PHONE,
    );
    assert_eq!(s.enforced.step, Step::Route);
    assert!(s.out.is_empty());
    let s = r.udp(
        &message_msg(EVE_PHONE, "eve@other.org", "alice@example.com", "m-4"),
        EVE_PHONE,
    );
    assert_eq!(parse(&s.out[0]).status(), Some(480));
    let pending = r.store.pending(&aor("alice@example.com"));
    assert_eq!((pending.len(), pending[0].how), (1, PendingHow::Message));
}

#[test]
fn invite_from_an_unknown_watcher_passes_and_records_a_pending_request() {
    let mut r = Rig::new(PendingView::Hold);
    let inv = message_msg(EVE_PHONE, "eve@other.org", "alice@example.com", "i-1")
        .replace("MESSAGE", "INVITE")
        .replace(
            "Content-Type: text/plain\n",
            "Contact: <sip:eve@127.0.0.1:6003>\nContent-Type: text/plain\n",
        );
    let s = r.udp(&inv, EVE_PHONE);
    assert_eq!(s.enforced.step, Step::Route);
    let pending = r.store.pending(&aor("alice@example.com"));
    assert_eq!((pending.len(), pending[0].how), (1, PendingHow::Call));
}

#[test]
fn the_owners_own_subscribe_teaches_a_contact_within_the_limit() {
    let mut r = Rig::new(PendingView::Hold);
    r.subscribe(
        ALICE_PHONE,
        "alice@example.com",
        "dave@example.com",
        "c-learn",
    );
    r.accept(
        ALICE_PHONE,
        "alice@example.com",
        "dave@example.com",
        "c-learn",
        3600,
    );
    assert!(
        r.p.learned_waiting(),
        "queued, not written on the packet path"
    );
    r.p.apply_learned();
    let alice = r.store.user(&aor("alice@example.com")).unwrap();
    let c = alice
        .contacts
        .iter()
        .find(|c| c.aor == aor("dave@example.com"))
        .expect("learned");
    assert!(c.learned);

    // At the limit: not learned, counted, and the phone's SUBSCRIBE is unaffected.
    let mut o = org(PendingView::Hold);
    o.classes.get_mut("default").unwrap().contact_limit = 1;
    r.store.apply(Change::SetOrg { org: o }).unwrap();
    r.subscribe(
        ALICE_PHONE,
        "alice@example.com",
        "erin@example.com",
        "c-learn2",
    );
    let s = r.accept(
        ALICE_PHONE,
        "alice@example.com",
        "erin@example.com",
        "c-learn2",
        3600,
    );
    assert_eq!(s.enforced.step, Step::Route);
    r.p.apply_learned();
    let alice = r.store.user(&aor("alice@example.com")).unwrap();
    assert!(!alice.has_contact(&aor("erin@example.com")));
    assert_eq!(
        r.p.counters()
            .contacts_not_learned
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

fn winfo_msg(expires: u32, to_tag: Option<&str>, cseq: u32) -> String {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    format!(
        "SUBSCRIBE sip:alice@example.com SIP/2.0\nVia: SIP/2.0/UDP {ALICE_PHONE};branch=z9hG4bKwi{cseq}\nMax-Forwards: 70\nFrom: <sip:alice@example.com>;tag=wi\nTo: <sip:alice@example.com>{to_tag}\nCall-ID: winfo-1\nCSeq: {cseq} SUBSCRIBE\nContact: <sip:alice@{ALICE_PHONE}>\nEvent: presence.winfo\nAccept: application/watcherinfo+xml\nExpires: {expires}\nContent-Length: 0\n\n"
    )
}

#[test]
fn winfo_is_answered_by_the_proxy_and_lists_pending_watchers() {
    let mut r = Rig::new(PendingView::Hold);
    r.dialog(EVE_PHONE, "eve@other.org", "c-wi");
    let s = r.udp(&winfo_msg(600, None, 1), ALICE_PHONE);
    assert_eq!(s.enforced.step, Step::Done(Handled::Answered));
    assert_eq!(s.out.len(), 2, "200 and a full-state NOTIFY");
    let ok = parse(&s.out[0]);
    assert_eq!(ok.status(), Some(200));
    assert_eq!(header(&ok, "Expires"), "600");
    let tag = String::from_utf8_lossy(ok.to().unwrap().tag.unwrap()).into_owned();
    let n = parse(&s.out[1]);
    assert_eq!(header(&n, "Event"), "presence.winfo");
    assert_eq!(header(&n, "Content-Type"), "application/watcherinfo+xml");
    let doc = body(&n);
    assert!(doc.contains("state=\"full\""), "{doc}");
    assert!(
        doc.contains("status=\"pending\"") && doc.contains("sip:eve@other.org"),
        "{doc}"
    );
    assert!(r.udp(&notify_ok(&n), ALICE_PHONE).enforced.step == Step::Done(Handled::Dropped));

    // A new pending request: a partial-state NOTIFY naming it.
    let out = r.udp(
        &message_msg(
            "127.0.0.1:6009",
            "zed@other.org",
            "alice@example.com",
            "m-wi",
        ),
        "127.0.0.1:6009",
    );
    assert!(
        out.out.iter().all(|t| parse(t).status() == Some(480)),
        "zed is anonymous: nothing to tell"
    );
    r.register("127.0.0.1:6010", "zoe@other.org");
    let s = r.udp(
        &message_msg(
            "127.0.0.1:6010",
            "zoe@other.org",
            "alice@example.com",
            "m-wi2",
        ),
        "127.0.0.1:6010",
    );
    let partial = s
        .out
        .iter()
        .map(parse)
        .find(|m| m.method() == Some(sip::Method::Notify))
        .expect("partial NOTIFY");
    let doc = body(&partial);
    assert!(
        doc.contains("state=\"partial\"")
            && doc.contains("sip:zoe@other.org")
            && !doc.contains("eve@other.org"),
        "{doc}"
    );
    assert!(partial.cseq().unwrap().0 > n.cseq().unwrap().0);

    // Refresh with Expires: 0 ends it with a terminated NOTIFY.
    let s = r.udp(&winfo_msg(0, Some(&tag), 2), ALICE_PHONE);
    assert_eq!(parse(&s.out[0]).status(), Some(200));
    let last = parse(&s.out[1]);
    assert!(header(&last, "Subscription-State").starts_with("terminated"));
    // Gone: a later refresh is 481.
    let s = r.udp(&winfo_msg(600, Some(&tag), 3), ALICE_PHONE);
    assert_eq!(parse(&s.out[0]).status(), Some(481));
}

#[test]
fn winfo_for_someone_elses_aor_goes_upstream() {
    let mut r = Rig::new(PendingView::Hold);
    let s = r.udp(&winfo_msg(600, None, 1), BOB_PHONE);
    assert_eq!(s.enforced.step, Step::Route);
    assert!(s.out.is_empty());
}

/// RFC 3261 §12.1.1: the proxy answering a watcher-info SUBSCRIBE is its UAS, so
/// its 2xx copies the Record-Route and its NOTIFYs carry that route set, in order.
#[test]
fn winfo_notifies_follow_the_subscribes_record_route() {
    let mut r = Rig::new(PendingView::Hold);
    let rr = "<sip:192.0.2.50;lr>, <sip:192.0.2.51;lr>";
    let sub = winfo_msg(600, None, 1).replace(
        "Event: presence.winfo",
        &format!("Record-Route: {rr}\nEvent: presence.winfo"),
    );
    let s = r.udp(&sub, ALICE_PHONE);
    assert_eq!(s.enforced.step, Step::Done(Handled::Answered));
    let ok = parse(&s.out[0]);
    assert_eq!(ok.status(), Some(200));
    assert_eq!(header(&ok, "Record-Route"), rr);
    let n = parse(&s.out[1]);
    assert_eq!(n.method(), Some(sip::Method::Notify));
    assert_eq!(
        n.routes().collect::<Vec<_>>(),
        vec![&b"sip:192.0.2.50;lr"[..], &b"sip:192.0.2.51;lr"[..]]
    );
}

/// RFC 3261 §10.3 step 8: the 2xx to REGISTER lists every binding of the AoR, each
/// with its own expiry; the flow is vouched for only as long as its own binding
/// lasts, not as long as another device's.
#[test]
fn a_registered_flow_lasts_as_long_as_its_own_binding() {
    let mut r = Rig::new(PendingView::Hold);
    let phone = "127.0.0.1:6020";
    let reg = format!(
        "REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/UDP {phone};branch=z9hG4bKregz\nMax-Forwards: 70\nFrom: <sip:zoe@example.com>;tag=rz\nTo: <sip:zoe@example.com>\nCall-ID: reg-zoe\nCSeq: 1 REGISTER\nContact: <sip:zoe@{phone}>\nExpires: 60\nContent-Length: 0\n\n"
    );
    r.udp(&reg, phone);
    let ok = format!(
        "SIP/2.0 200 OK\nVia: SIP/2.0/UDP {PROXY};branch=z9hG4bKppx\nVia: SIP/2.0/UDP {phone};branch=z9hG4bKregz\nFrom: <sip:zoe@example.com>;tag=rz\nTo: <sip:zoe@example.com>;tag=reg\nCall-ID: reg-zoe\nCSeq: 1 REGISTER\nContact: <sip:zoe@127.0.0.1:7001>;expires=3600, <sip:zoe@{phone}>;expires=60\nContent-Length: 0\n\n"
    );
    r.udp(&ok, UPSTREAM);
    r.now = T0 + 30_000;
    let s = r.subscribe(phone, "zoe@example.com", "alice@example.com", "c-z1");
    assert_eq!(s.enforced.watcher, Some(aor("zoe@example.com")));
    r.now = T0 + 61_000;
    let s = r.subscribe(phone, "zoe@example.com", "alice@example.com", "c-z2");
    assert_eq!(
        s.enforced.watcher,
        Some(Aor::anonymous()),
        "its own binding expired; the other device's does not count"
    );
}
