//! Enforcement costs: the Offline rewrite of realistic PIDF+RPID bodies (1 KiB and
//! 4 KiB, target under 5 µs each), an XPIDF body, and an RLMI bundle with some
//! resources blocked. NOTIFY-through-the-engine cases join this file
//! when the engine lands.
//!
//! `cargo bench --bench enforce`
//!
//! Instruction counts of one rewrite, on a machine too shared for timings:
//! `ENFORCE_ITERS=N ENFORCE_CASE=pidf_4k valgrind --tool=cachegrind --cache-sim=no
//! target/release/deps/enforce-*` for two values of N (see `fixed_iterations`).
//!
//! Each case runs twice: `offline_rewrite` in wall-clock time (criterion's default)
//! and `offline_rewrite_cpu` in the benchmark thread's CPU time. On a machine shared
//! with other work (the development box runs 2 cores at load ~15) wall time mostly
//! measures the scheduler; thread CPU time measures the code.

use criterion::measurement::Measurement;
use criterion::{black_box, criterion_group, BenchmarkId, Criterion, Throughput};
use presence_proxy::pidf::{self, PIDF_CONTENT_TYPE};

#[path = "support/cpu_time.rs"]
mod cpu_time;
use cpu_time::ThreadCpuTime;

/// One tuple as a softphone publishes it (RFC 3863 + RFC 4480 tuple extensions).
fn tuple(i: usize) -> String {
    format!(
        r#"  <tuple id="t{i:04}-sg89ae">
    <status><basic>open</basic></status>
    <dm:deviceID>urn:uuid:4a3f{i:04}-d3c1-4b8e-9a51-0003ba4811e3</dm:deviceID>
    <rpid:relationship><rpid:self/></rpid:relationship>
    <rpid:service-class><rpid:electronic/></rpid:service-class>
    <contact priority="0.8">sip:alice@192.0.2.{i}:5060;transport=tcp</contact>
    <note xml:lang="en">Available for calls</note>
    <timestamp>2026-11-22T01:00:{s:02}Z</timestamp>
  </tuple>
"#,
        s = i % 60
    )
}

/// The person and device elements (RFC 4479, RFC 4480).
const PERSON: &str = r#"  <dm:person id="p1">
    <rpid:activities><rpid:meeting/></rpid:activities>
    <rpid:mood><rpid:happy/></rpid:mood>
    <rpid:place-type><lt:office/></rpid:place-type>
    <rpid:privacy><rpid:quiet/></rpid:privacy>
    <rpid:sphere>work</rpid:sphere>
    <rpid:time-offset>60</rpid:time-offset>
    <dm:note>Quarterly review until 3pm</dm:note>
    <dm:timestamp>2026-11-22T01:00:00Z</dm:timestamp>
  </dm:person>
"#;

/// A device element (RFC 4479 §3.2), in the larger document only.
const DEVICE: &str = r#"  <dm:device id="pc147">
    <rpid:user-input idle-threshold="600" last-input="2026-11-22T00:58:00Z">active</rpid:user-input>
    <dm:deviceID>urn:uuid:4a3f0000-d3c1-4b8e-9a51-0003ba4811e3</dm:deviceID>
  </dm:device>
"#;

/// A PIDF+RPID document of about `size` bytes: one tuple and a person, then more
/// tuples and a device while they fit.
fn document(size: usize) -> Vec<u8> {
    let head = r#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
    xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
    xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"
    xmlns:lt="urn:ietf:params:xml:ns:location-type"
    entity="sip:alice@example.com">
"#;
    let mut tuples = tuple(1);
    let mut device = "";
    if head.len() + tuples.len() + PERSON.len() + DEVICE.len() < size {
        device = DEVICE;
    }
    let mut i = 2;
    while head.len() + tuples.len() + tuple(i).len() + PERSON.len() + device.len() < size {
        tuples.push_str(&tuple(i));
        i += 1;
    }
    format!("{head}{tuples}{PERSON}{device}</presence>\n").into_bytes()
}

/// An XPIDF NOTIFY body as Asterisk sends it for a phone in use.
const XPIDF: &str = r#"<?xml version="1.0" encoding="ISO-8859-1"?>
<!DOCTYPE presence PUBLIC "-//IETF//DTD RFCxxxx XPIDF 1.0//EN" "xpidf.dtd">
<presence>
<presentity uri="sip:bob@example.com;method=SUBSCRIBE" />
<atom id="bob">
<address uri="sip:bob@192.0.2.7:5060;user=ip" priority="0.800000">
<status status="inuse" />
<msnsubstatus substatus="onthephone" />
</address>
</atom>
</presence>
"#;

const RLMI_CT: &str = "multipart/related;type=\"application/rlmi+xml\";start=\"<root@x>\";boundary=\"50UBfW7LSCVLtggUPytvwPbsTd3pWb\"";

/// An RFC 4662 bundle: the RLMI root and one 1 KiB PIDF+RPID part per resource.
fn rlmi_bundle(resources: usize) -> Vec<u8> {
    let dash = "--50UBfW7LSCVLtggUPytvwPbsTd3pWb";
    let mut out = format!(
        "{dash}\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <root@x>\r\n\
         Content-Type: application/rlmi+xml;charset=\"UTF-8\"\r\n\r\n\
         <?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
         <list xmlns=\"urn:ietf:params:xml:ns:rlmi\" uri=\"sip:friends@example.com\" version=\"1\" fullState=\"true\">\r\n"
    );
    for i in 0..resources {
        out.push_str(&format!(
            "<resource uri=\"sip:u{i}@example.com\"><name>User {i}</name>\
             <instance id=\"i{i}\" state=\"active\" cid=\"c{i}@x\"/></resource>\r\n"
        ));
    }
    out.push_str("</list>\r\n");
    let doc = String::from_utf8(document(1024)).expect("ASCII");
    for i in 0..resources {
        let part = doc.replace("sip:alice@example.com", &format!("sip:u{i}@example.com"));
        out.push_str(&format!(
            "{dash}\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <c{i}@x>\r\n\
             Content-Type: application/pidf+xml;charset=\"UTF-8\"\r\n\r\n{part}\r\n"
        ));
    }
    out.push_str(dash);
    out.push_str("--\r\n");
    out.into_bytes()
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

fn offline_rewrite<M: Measurement>(c: &mut Criterion<M>, group_name: &str) {
    let mut group = c.benchmark_group(group_name);
    for (name, size) in [("pidf_rpid_1KiB", 1024), ("pidf_rpid_4KiB", 4096)] {
        let body = document(size);
        // The input must be a real document for the figure to mean anything.
        let out = pidf::offline(PIDF_CONTENT_TYPE, &body, None).expect("bench body rewrites");
        assert!(out.body.windows(6).any(|w| w == b"closed"));
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::new(name, body.len()), &body, |b, body| {
            b.iter(|| pidf::offline(black_box(PIDF_CONTENT_TYPE), black_box(body), None))
        });
    }
    let xpidf = XPIDF.as_bytes();
    group.throughput(Throughput::Bytes(xpidf.len() as u64));
    group.bench_function("xpidf", |b| {
        b.iter(|| pidf::offline(black_box(pidf::XPIDF_CONTENT_TYPE), black_box(xpidf), None))
    });
    let bundle = rlmi_bundle(8);
    let blocked = |uri: &str| uri.ends_with("3@example.com") || uri.ends_with("6@example.com");
    let out = pidf::rewrite_rlmi(RLMI_CT.as_bytes(), &bundle, &blocked).expect("bundle rewrites");
    assert_eq!(
        count(&out.body, b"<basic>closed</basic>"),
        2,
        "two resources rewritten"
    );
    group.throughput(Throughput::Bytes(bundle.len() as u64));
    group.bench_function("rlmi_8_resources_2_blocked", |b| {
        b.iter(|| pidf::rewrite_rlmi(black_box(RLMI_CT.as_bytes()), black_box(&bundle), &blocked))
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("offline_document", |b| {
        b.iter(|| pidf::offline_document(black_box("sip:alice@example.com")))
    });
    group.finish();
}

fn offline_rewrite_wall(c: &mut Criterion) {
    offline_rewrite(c, "offline_rewrite");
}

fn offline_rewrite_cpu(c: &mut Criterion<ThreadCpuTime>) {
    offline_rewrite(c, "offline_rewrite_cpu");
}

/// A NOTIFY from the upstream through the whole engine (parse, dialog lookup,
/// decision, rewrite, routing edits) for an allowed and for a blocked watcher.
mod through_engine {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use bytes::Bytes;
    use presence_proxy::engine::{Engine, EngineConfig, Handled, Received, Transport};
    use presence_proxy::policy::{Action, Aor, Change, Domain, Org, UserPolicy};
    use presence_proxy::store::{SledStore, Store};

    const PROXY: &str = "127.0.0.1:5060";
    const UPSTREAM: &str = "127.0.0.1:5070";
    pub const NOW: u64 = 1_700_000_000_000;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("literal address")
    }

    /// A datagram as the UDP driver hands it over: an exact-size copy
    /// (`Bytes::copy_from_slice`), so what the engine keeps of it is counted right.
    fn rx(data: String, source: &str) -> Received {
        Received {
            data: Bytes::copy_from_slice(data.replace('\n', "\r\n").as_bytes()),
            source: addr(source),
            local: addr(PROXY),
            transport: Transport::Udp,
            conn: None,
        }
    }

    /// alice's presence; bob is allowed (internal default), mallory blocked.
    pub fn engine() -> Engine {
        engine_with(false)
    }

    /// The same, with From trusted (as `benches/e2e.sh` runs the proxy) and the
    /// domain `blocked.example.net` blocked by the admin.
    pub fn engine_with(trust_from: bool) -> Engine {
        let store = Arc::new(SledStore::temporary().expect("temporary store"));
        let org = Org {
            local_domains: vec![Domain::parse("example.com").expect("domain")],
            blocked_domains: vec![Domain::parse("blocked.example.net").expect("domain")],
            ..Org::default()
        };
        store.apply(Change::SetOrg { org }).expect("org");
        let alice = Aor::parse("alice@example.com").expect("aor");
        store
            .apply(Change::PutUser {
                user: UserPolicy::new(alice.clone()),
            })
            .expect("user");
        store
            .apply(Change::AddUserException {
                owner: alice,
                watcher: Aor::parse("mallory@example.com").expect("aor"),
                action: Action::Block,
            })
            .expect("exception");
        let mut cfg = EngineConfig::new(addr(UPSTREAM), Transport::Udp, vec![addr(PROXY)]);
        cfg.trust_from = trust_from;
        let engine = Engine::new(cfg, store as Arc<dyn Store>);
        for (user, phone) in [("bob", "127.0.0.1:6001"), ("mallory", "127.0.0.1:6002")] {
            let mut out = Vec::new();
            let reg = format!("REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/UDP {phone};branch=z9hG4bKr{user}\nMax-Forwards: 70\nFrom: <sip:{user}@example.com>;tag=r\nTo: <sip:{user}@example.com>\nCall-ID: reg-{user}\nCSeq: 1 REGISTER\nContact: <sip:{user}@{phone}>\nContent-Length: 0\n\n");
            engine.handle(NOW, rx(reg, phone), &mut out);
            let ok = format!("SIP/2.0 200 OK\nVia: {}\nVia: SIP/2.0/UDP {phone};branch=z9hG4bKr{user}\nFrom: <sip:{user}@example.com>;tag=r\nTo: <sip:{user}@example.com>;tag=k\nCall-ID: reg-{user}\nCSeq: 1 REGISTER\nContact: <sip:{user}@{phone}>;expires=3600\nContent-Length: 0\n\n", top_via(&out));
            engine.handle(NOW, rx(ok, UPSTREAM), &mut out);
            out.clear();
            let sub = format!("SUBSCRIBE sip:alice@example.com SIP/2.0\nVia: SIP/2.0/UDP {phone};branch=z9hG4bKs{user}\nMax-Forwards: 70\nFrom: <sip:{user}@example.com>;tag=w{user}\nTo: <sip:alice@example.com>\nCall-ID: sub-{user}\nCSeq: 1 SUBSCRIBE\nContact: <sip:{user}@{phone}>\nEvent: presence\nExpires: 3600\nContent-Length: 0\n\n");
            engine.handle(NOW, rx(sub, phone), &mut out);
            let ok = format!("SIP/2.0 200 OK\nVia: {}\nVia: SIP/2.0/UDP {phone};branch=z9hG4bKs{user}\nFrom: <sip:{user}@example.com>;tag=w{user}\nTo: <sip:alice@example.com>;tag=n{user}\nCall-ID: sub-{user}\nCSeq: 1 SUBSCRIBE\nContact: <sip:{UPSTREAM}>\nExpires: 3600\nContent-Length: 0\n\n", top_via(&out));
            engine.handle(NOW, rx(ok, UPSTREAM), &mut out);
        }
        engine
    }

    fn top_via(out: &[presence_proxy::engine::Transmit]) -> String {
        let sent = out.last().expect("forwarded");
        let text = String::from_utf8_lossy(&sent.data).into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix("Via: "))
            .expect("a Via")
            .to_string()
    }

    /// The NOTIFY the upstream sends `user` with alice's open PIDF.
    pub fn notify(user: &str, body: &[u8]) -> Received {
        let body = String::from_utf8_lossy(body);
        let data = format!("NOTIFY sip:{user}@127.0.0.1:6001 SIP/2.0\nVia: SIP/2.0/UDP {UPSTREAM};branch=z9hG4bKn{user}\nMax-Forwards: 70\nRoute: <sip:{PROXY};lr>\nFrom: <sip:alice@example.com>;tag=n{user}\nTo: <sip:{user}@example.com>;tag=w{user}\nCall-ID: sub-{user}\nCSeq: 2 NOTIFY\nContact: <sip:{UPSTREAM}>\nEvent: presence\nSubscription-State: active;expires=3600\nContent-Type: application/pidf+xml\nContent-Length: {}\n\n", body.len());
        let mut r = rx(data, UPSTREAM);
        let mut bytes = r.data.to_vec();
        bytes.extend_from_slice(body.as_bytes());
        r.data = Bytes::from(bytes);
        r
    }

    /// Sets up `n` more subscriptions the way the e2e harness does: watcher
    /// `w{i}` (every tenth in a domain the admin blocks) SUBSCRIBEs to `o{i mod 50 000}`
    /// with From trust,
    /// the upstream accepts, sends a NOTIFY with `body`, and the watcher answers.
    pub fn settle(engine: &Engine, body: &[u8], n: u64) {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let mut out = Vec::new();
        let text = String::from_utf8_lossy(body);
        for _ in 0..n {
            let i = NEXT.fetch_add(1, Ordering::Relaxed);
            let user = if i % 10 == 7 {
                format!("w{i}@blocked.example.net")
            } else {
                format!("w{i}@example.com")
            };
            let owner = format!("o{}@example.com", i % 50_000);
            let phone = format!("127.0.0.{}:{}", 2 + i % 200, 1024 + i % 60000);
            let call = format!("m{i}-8f2a1c9e4b7d@10.1.2.3");
            out.clear();
            let sub = format!("SUBSCRIBE sip:{owner} SIP/2.0\nVia: SIP/2.0/UDP {phone};branch=z9hG4bKm{i}\nMax-Forwards: 70\nFrom: <sip:{user}>;tag=f{i}a7\nTo: <sip:{owner}>\nCall-ID: {call}\nCSeq: 1 SUBSCRIBE\nContact: <sip:w{i}@{phone}>\nEvent: presence\nExpires: 3600\nContent-Length: 0\n\n");
            engine.handle(NOW, rx(sub, &phone), &mut out);
            let Some(via) = out.last().map(|t| first_via(&t.data)) else {
                continue;
            };
            out.clear();
            let ok = format!("SIP/2.0 200 OK\nVia: {via}\nVia: SIP/2.0/UDP {phone};branch=z9hG4bKm{i}\nRecord-Route: <sip:{PROXY};lr>\nFrom: <sip:{user}>;tag=f{i}a7\nTo: <sip:{owner}>;tag=n{i}b3\nCall-ID: {call}\nCSeq: 1 SUBSCRIBE\nContact: <sip:{UPSTREAM}>\nExpires: 3600\nContent-Length: 0\n\n");
            engine.handle(NOW, rx(ok, UPSTREAM), &mut out);
            out.clear();
            let notify = format!("NOTIFY sip:w{i}@{phone} SIP/2.0\nVia: SIP/2.0/UDP {UPSTREAM};branch=z9hG4bKn{i}\nMax-Forwards: 70\nRoute: <sip:{PROXY};lr>\nFrom: <sip:{owner}>;tag=n{i}b3\nTo: <sip:{user}>;tag=f{i}a7\nCall-ID: {call}\nCSeq: 1 NOTIFY\nContact: <sip:{UPSTREAM}>\nEvent: presence\nSubscription-State: active;expires=3600\nContent-Type: application/pidf+xml\nContent-Length: {}\n\n{text}", body.len());
            engine.handle(NOW, rx(notify, UPSTREAM), &mut out);
            let Some(via) = out.last().map(|t| first_via(&t.data)) else {
                continue;
            };
            out.clear();
            let ok = format!("SIP/2.0 200 OK\nVia: {via}\nVia: SIP/2.0/UDP {UPSTREAM};branch=z9hG4bKn{i}\nFrom: <sip:{owner}>;tag=n{i}b3\nTo: <sip:{user}>;tag=f{i}a7\nCall-ID: {call}\nCSeq: 1 NOTIFY\nContent-Length: 0\n\n");
            engine.handle(NOW, rx(ok, &phone), &mut out);
        }
    }

    fn first_via(data: &[u8]) -> String {
        String::from_utf8_lossy(data)
            .lines()
            .find_map(|l| l.strip_prefix("Via: "))
            .unwrap_or_default()
            .to_string()
    }

    pub fn check(engine: &Engine, rx: Received, expect: Handled) {
        let mut out = Vec::new();
        let o = engine.handle(NOW, rx, &mut out);
        assert_eq!(o.action, expect, "{o:?}");
        assert_eq!(out.len(), 1);
    }
}

fn notify_through_engine(c: &mut Criterion) {
    let engine = through_engine::engine();
    let body = document(1024);
    let mut group = c.benchmark_group("notify_through_engine");
    group.throughput(Throughput::Elements(1));
    for (name, user, expect) in [
        (
            "allowed_1KiB",
            "bob",
            presence_proxy::engine::Handled::Forwarded,
        ),
        (
            "blocked_1KiB",
            "mallory",
            presence_proxy::engine::Handled::Rewritten,
        ),
    ] {
        let rx = through_engine::notify(user, &body);
        through_engine::check(&engine, rx.clone(), expect);
        let mut out = Vec::with_capacity(4);
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                engine.handle(through_engine::NOW, black_box(rx.clone()), &mut out)
            })
        });
    }
    group.finish();
}

/// `ENFORCE_COUNT=N`: N NOTIFYs of each engine case and nothing else, for
/// instruction counts that do not depend on criterion's sampling:
/// `ENFORCE_COUNT=10000 valgrind --tool=cachegrind --cache-sim=no target/release/deps/enforce-*`
/// (subtract a run with `ENFORCE_COUNT=0`, which is the set-up alone).
fn fixed_count(n: u64) {
    let engine = through_engine::engine();
    let body = document(1024);
    for user in ["bob", "mallory"] {
        let rx = through_engine::notify(user, &body);
        let mut out = Vec::with_capacity(4);
        for _ in 0..n {
            out.clear();
            black_box(engine.handle(through_engine::NOW, black_box(rx.clone()), &mut out));
        }
    }
}

/// `ENFORCE_MEMORY=N`: heap and resident memory that N active subscriptions
/// (SUBSCRIBE, 200, NOTIFY with a 1 KiB PIDF, 200, one in ten blocked) leave in
/// the engine, per subscription: the engine's share of issue 7's memory figure.
fn memory(n: u64) {
    let engine = through_engine::engine_with(true);
    let body = document(1024);
    through_engine::settle(&engine, &body, 1_000);
    let (heap0, rss0) = (alloc::live(), alloc::rss());
    let sizes0 = alloc::by_size();
    through_engine::settle(&engine, &body, n);
    let (heap1, rss1) = (alloc::live(), alloc::rss());
    let sizes1 = alloc::by_size();
    let per = |a: u64, b: u64| b.saturating_sub(a) as f64 / n as f64;
    if std::env::var_os("ENFORCE_MEMORY_SIZES").is_some() {
        // Live allocations by requested size that the N subscriptions added, at
        // least one per twenty subscriptions: where the bytes go.
        for (size, (a, b)) in sizes0.iter().zip(&sizes1).enumerate() {
            let d = b.saturating_sub(*a);
            if d >= n / 20 {
                let label = if size == alloc::SIZES - 1 {
                    ">=".to_string()
                } else {
                    String::new()
                };
                println!(
                    "  {label}{size} B: {:.2} per subscription",
                    d as f64 / n as f64
                );
            }
        }
    }
    println!(
        "{n} active subscriptions: {:.0} B heap, {:.0} B RSS per subscription ({} dialogs)",
        per(heap0, heap1),
        per(rss0, rss1),
        engine.presence().dialog_count()
    );
}

/// A global allocator that counts live heap bytes (for [`memory`] only; one
/// relaxed atomic add per allocation does not move the timed cases).
mod alloc {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicU64, Ordering};

    struct Counting;
    static LIVE: AtomicU64 = AtomicU64::new(0);
    /// Live allocations by requested size (the last slot: that size or more).
    pub const SIZES: usize = 4_097;
    static BY_SIZE: [AtomicU64; SIZES] = [const { AtomicU64::new(0) }; SIZES];

    fn slot(size: usize) -> &'static AtomicU64 {
        &BY_SIZE[size.min(SIZES - 1)]
    }

    // SAFETY: every call goes to `System` with the caller's layout unchanged; the
    // counter is only bookkeeping.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            LIVE.fetch_add(l.size() as u64, Ordering::Relaxed);
            slot(l.size()).fetch_add(1, Ordering::Relaxed);
            // SAFETY: forwarded as received (GlobalAlloc's contract is the caller's).
            unsafe { System.alloc(l) }
        }
        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            LIVE.fetch_sub(l.size() as u64, Ordering::Relaxed);
            slot(l.size()).fetch_sub(1, Ordering::Relaxed);
            // SAFETY: `p` came from `alloc`/`realloc` above with this layout.
            unsafe { System.dealloc(p, l) }
        }
        unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
            LIVE.fetch_add(new as u64, Ordering::Relaxed);
            LIVE.fetch_sub(l.size() as u64, Ordering::Relaxed);
            slot(l.size()).fetch_sub(1, Ordering::Relaxed);
            slot(new).fetch_add(1, Ordering::Relaxed);
            // SAFETY: as for `dealloc`, and `new` is the caller's valid size.
            unsafe { System.realloc(p, l, new) }
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;

    pub fn live() -> u64 {
        LIVE.load(Ordering::Relaxed)
    }

    pub fn by_size() -> Vec<u64> {
        BY_SIZE.iter().map(|c| c.load(Ordering::Relaxed)).collect()
    }

    /// Resident set size from `/proc/self/statm` (pages of 4 KiB).
    pub fn rss() -> u64 {
        std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map_or(0, |p| p * 4096)
    }
}

criterion_group!(wall, offline_rewrite_wall, notify_through_engine);
criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(ThreadCpuTime);
    targets = offline_rewrite_cpu
}

/// `ENFORCE_ITERS=N ENFORCE_CASE=pidf_1k|pidf_4k|xpidf|rlmi`: runs that one rewrite N
/// times and exits, without criterion, for instruction counts under valgrind
/// (`valgrind --tool=cachegrind --cache-sim=no`): the difference between two values
/// of N divided by their difference is the count per rewrite, free of set-up costs.
fn fixed_iterations(iters: &str) {
    let n: usize = iters.parse().expect("ENFORCE_ITERS is a count");
    let case = std::env::var("ENFORCE_CASE").unwrap_or_else(|_| "pidf_4k".into());
    let bundle = rlmi_bundle(8);
    let blocked = |uri: &str| uri.ends_with("3@example.com") || uri.ends_with("6@example.com");
    let (ct, body): (&[u8], Vec<u8>) = match case.as_str() {
        "pidf_1k" => (PIDF_CONTENT_TYPE, document(1024)),
        "pidf_4k" => (PIDF_CONTENT_TYPE, document(4096)),
        "xpidf" => (pidf::XPIDF_CONTENT_TYPE, XPIDF.as_bytes().to_vec()),
        "rlmi" => (RLMI_CT.as_bytes(), bundle),
        other => panic!("unknown ENFORCE_CASE {other}"),
    };
    for _ in 0..n {
        let out = if case == "rlmi" {
            pidf::rewrite_rlmi(black_box(ct), black_box(&body), &blocked)
        } else {
            pidf::offline(black_box(ct), black_box(&body), None)
        };
        black_box(out.expect("bench body rewrites"));
    }
}

fn main() {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = env("ENFORCE_COUNT") {
        return fixed_count(n);
    }
    if let Some(n) = env("ENFORCE_MEMORY") {
        return memory(n);
    }
    if let Ok(iters) = std::env::var("ENFORCE_ITERS") {
        return fixed_iterations(&iters);
    }
    wall();
    cpu();
    Criterion::default().configure_from_args().final_summary();
}
