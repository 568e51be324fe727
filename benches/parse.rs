//! Wire-layer speed (issue 2): parse, and parse plus the forwarding edits, of a
//! typical SUBSCRIBE, a NOTIFY carrying a 1 KiB PIDF, and a 200 response.
//! Targets: parse < 1 µs, parse + edits < 2 µs.
//!
//! Run: `taskset -c 1 cargo bench --bench parse`
//!
//! Measured in thread CPU time (`CLOCK_THREAD_CPUTIME_ID`), not wall time: the
//! project's machines are small and shared, and wall time counts every moment the
//! thread sat descheduled behind other work. `SIP_BENCH_WALL=1` measures wall time.
//! `SIP_BENCH_MIN=1` first prints the fastest of 200 batches of 1000 iterations per
//! case, an estimate of the uncontended cost that noise can only make larger.

use bytes::Bytes;
use criterion::measurement::Measurement;
use criterion::{black_box, criterion_main, Criterion, Throughput};
use presence_proxy::sip::{parse, Limits};

#[path = "support/cpu_time.rs"]
mod cpu_time;
use cpu_time::ThreadCpuTime;

const SUBSCRIBE: &[u8] = b"SUBSCRIBE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;rport;branch=z9hG4bKPj6e1a9b2c3d4e5f60718293a4b5c6d7e8\r\n\
Route: <sip:127.0.0.1:5060;lr>\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=2a5e9f03c1b44e2c9d3e7f1a0b6c8d42\r\n\
To: <sip:bob@example.com>\r\n\
Contact: <sip:alice@192.0.2.10:5060;ob>\r\n\
Call-ID: 8d1f6f1f6e2c4a7b9c0d1e2f3a4b5c6d\r\n\
CSeq: 20143 SUBSCRIBE\r\n\
Event: presence\r\n\
Expires: 600\r\n\
Supported: replaces, 100rel, timer, norefersub\r\n\
Accept: application/pidf+xml, application/xpidf+xml, application/simple-message-summary\r\n\
Allow-Events: presence, dialog, message-summary, refer\r\n\
User-Agent: PJSUA v2.14 Linux-6.1/x86_64/glibc-2.36\r\n\
Content-Length: 0\r\n\r\n";

const OK_200: &[u8] = b"SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK.pp.4f3a2b1c0d9e8f7a;received=127.0.0.1\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;rport=5060;received=192.0.2.10;branch=z9hG4bKPj6e1a9b2c3d4e5f60718293a4b5c6d7e8\r\n\
Record-Route: <sip:127.0.0.1:5060;lr>\r\n\
Call-ID: 8d1f6f1f6e2c4a7b9c0d1e2f3a4b5c6d\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=2a5e9f03c1b44e2c9d3e7f1a0b6c8d42\r\n\
To: <sip:bob@example.com>;tag=z9hG4bK.7aa1d2\r\n\
CSeq: 20143 SUBSCRIBE\r\n\
Contact: <sip:192.0.2.20:5060;transport=udp>\r\n\
Expires: 600\r\n\
Content-Length: 0\r\n\r\n";

fn notify() -> Bytes {
    let mut pidf = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" \
xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" entity=\"sip:bob@example.com\">\n\
<tuple id=\"t5430\"><status><basic>open</basic></status><contact>sip:bob@192.0.2.20</contact></tuple>\n\
<dm:person id=\"p1\"><rpid:activities><rpid:on-the-phone/></rpid:activities></dm:person>\n",
    );
    while pidf.len() < 1000 {
        pidf.push_str("<note>In a meeting until four; call my mobile if urgent.</note>\n");
    }
    pidf.push_str("</presence>\n");
    pidf.truncate(pidf.len());
    let head = format!(
        "NOTIFY sip:alice@192.0.2.10:5060;ob SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bK.Zx3b1d8e0a\r\n\
Route: <sip:127.0.0.1:5060;lr>\r\n\
Max-Forwards: 70\r\n\
From: <sip:bob@example.com>;tag=z9hG4bK.7aa1d2\r\n\
To: \"Alice\" <sip:alice@example.com>;tag=2a5e9f03c1b44e2c9d3e7f1a0b6c8d42\r\n\
Call-ID: 8d1f6f1f6e2c4a7b9c0d1e2f3a4b5c6d\r\n\
CSeq: 2 NOTIFY\r\n\
Contact: <sip:192.0.2.20:5060;transport=udp>\r\n\
Event: presence\r\n\
Subscription-State: active;expires=600\r\n\
Content-Type: application/pidf+xml\r\n\
Content-Length: {}\r\n\r\n",
        pidf.len()
    );
    Bytes::from([head.as_bytes(), pidf.as_bytes()].concat())
}

fn forward_request(data: &Bytes, limits: &Limits) -> Bytes {
    let m = parse(data.clone(), limits).expect("bench message parses");
    let mf = m.max_forwards().unwrap_or(70).saturating_sub(1);
    m.edit()
        .push_via(b"SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK.pp.4f3a2b1c0d9e8f7a")
        .set_max_forwards(mf)
        .push_record_route(b"<sip:127.0.0.1:5060;lr>")
        .pop_route()
        .finish()
}

fn forward_response(data: &Bytes, limits: &Limits) -> Bytes {
    let m = parse(data.clone(), limits).expect("bench message parses");
    m.edit().pop_via().finish()
}

fn bench<M: Measurement>(c: &mut Criterion<M>) {
    let limits = Limits::default();
    let cases: [(&str, Bytes, bool); 3] = [
        ("subscribe", Bytes::from_static(SUBSCRIBE), true),
        ("notify_pidf_1k", notify(), true),
        ("200_ok", Bytes::from_static(OK_200), false),
    ];
    let mut g = c.benchmark_group("sip");
    for (name, data, is_request) in &cases {
        g.throughput(Throughput::Bytes(data.len() as u64));
        g.bench_function(format!("parse/{name}"), |b| {
            b.iter(|| parse(black_box(data.clone()), &limits).map(|m| m.headers().len()))
        });
        g.bench_function(format!("parse_and_forward_edits/{name}"), |b| {
            b.iter(|| {
                if *is_request {
                    forward_request(black_box(data), &limits)
                } else {
                    forward_response(black_box(data), &limits)
                }
            })
        });
    }
    g.finish();
}

/// Fastest batch of 1000 iterations out of 200, per case, in ns per iteration.
fn min_of_batches(cases: &[(&str, Bytes, bool)], limits: &Limits) {
    for (name, data, is_request) in cases {
        for edits in [false, true] {
            let mut best = f64::MAX;
            for _ in 0..200 {
                let t = std::time::Instant::now();
                for _ in 0..1000 {
                    if !edits {
                        black_box(
                            parse(black_box(data.clone()), limits)
                                .map(|m| m.headers().len())
                                .ok(),
                        );
                    } else if *is_request {
                        black_box(forward_request(black_box(data), limits));
                    } else {
                        black_box(forward_response(black_box(data), limits));
                    }
                }
                best = best.min(t.elapsed().as_nanos() as f64 / 1000.0);
            }
            let what = if edits {
                "parse_and_forward_edits"
            } else {
                "parse"
            };
            println!("min-of-batches sip/{what}/{name}: {best:.0} ns");
        }
    }
}

/// `SIP_BENCH_COUNT=N SIP_BENCH_ONLY=parse/subscribe`: runs that one case N times
/// and exits, for counting instructions under `valgrind --tool=cachegrind` (run it
/// with N and with 0 and divide the difference by N).
fn count_only(n: u64, only: &str, limits: &Limits) {
    let cases = [
        ("subscribe", Bytes::from_static(SUBSCRIBE), true),
        ("notify_pidf_1k", notify(), true),
        ("200_ok", Bytes::from_static(OK_200), false),
    ];
    for (name, data, is_request) in &cases {
        if only == format!("parse/{name}") {
            for _ in 0..n {
                black_box(
                    parse(black_box(data.clone()), limits)
                        .map(|m| m.headers().len())
                        .ok(),
                );
            }
        } else if only == format!("parse_and_forward_edits/{name}") {
            for _ in 0..n {
                if *is_request {
                    black_box(forward_request(black_box(data), limits));
                } else {
                    black_box(forward_response(black_box(data), limits));
                }
            }
        }
    }
}

fn benches() {
    if let Some(n) = std::env::var("SIP_BENCH_COUNT")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        let only = std::env::var("SIP_BENCH_ONLY").unwrap_or_default();
        count_only(n, &only, &Limits::default());
        return;
    }
    if std::env::var_os("SIP_BENCH_MIN").is_some() {
        let cases = [
            ("subscribe", Bytes::from_static(SUBSCRIBE), true),
            ("notify_pidf_1k", notify(), true),
            ("200_ok", Bytes::from_static(OK_200), false),
        ];
        min_of_batches(&cases, &Limits::default());
    }
    if std::env::var_os("SIP_BENCH_WALL").is_some() {
        let mut c = Criterion::default().configure_from_args();
        bench(&mut c);
    } else {
        let mut c = Criterion::default()
            .with_measurement(ThreadCpuTime)
            .configure_from_args();
        bench(&mut c);
    }
}

criterion_main!(benches);
