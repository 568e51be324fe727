//! Property tests of the wire layer (issue 2): for generated messages, parse →
//! every editor operation → parse again leaves every untouched header line and the
//! body byte-identical and Content-Length right; and parsing never panics, on
//! arbitrary bytes or on mutated RFC 4475 torture messages.

use bytes::Bytes;
use presence_proxy::sip::{bad_request, parse, refusal, Limits, Message};
use proptest::prelude::*;

const METHODS: &[&str] = &[
    "SUBSCRIBE",
    "NOTIFY",
    "MESSAGE",
    "PUBLISH",
    "OPTIONS",
    "INVITE",
];

/// Joins words with a single space or with folding (RFC 3261 §7.3.1).
fn folded(words: Vec<String>, folds: Vec<u8>) -> String {
    let mut out = String::new();
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            out.push_str(match folds.get(i).copied().unwrap_or(0) % 4 {
                0 | 1 => " ",
                2 => "\r\n ",
                _ => "\r\n\t",
            });
        }
        out.push_str(w);
    }
    out
}

fn name_variant(long: &'static str, compact: Option<&'static str>, pick: u8) -> String {
    match (pick % 4, compact) {
        (0, Some(c)) => c.to_string(),
        (1, _) => long.to_ascii_uppercase(),
        (2, _) => long.to_ascii_lowercase(),
        _ => long.to_string(),
    }
}

fn token() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9]{1,8}"
}

fn via_value() -> impl Strategy<Value = String> {
    (
        prop::bool::ANY,
        1u8..250,
        1024u16..65000,
        token(),
        prop::bool::ANY,
        prop::bool::ANY,
    )
        .prop_map(|(tcp, host, port, branch, rport, v6)| {
            let host = if v6 {
                format!("[2001:db8::{host}]")
            } else {
                format!("192.0.2.{host}")
            };
            format!(
                "SIP/2.0/{} {}:{};branch=z9hG4bK{}{}",
                if tcp { "TCP" } else { "UDP" },
                host,
                port,
                branch,
                if rport { ";rport" } else { "" }
            )
        })
}

/// A header line's values joined on one line, possibly across folded lines.
fn list_line(values: Vec<String>, fold: bool) -> String {
    values.join(if fold { ",\r\n " } else { ", " })
}

#[derive(Debug, Clone)]
struct Generated {
    bytes: Vec<u8>,
    body: Vec<u8>,
}

fn message() -> impl Strategy<Value = Generated> {
    let vias = prop::collection::vec(
        (prop::collection::vec(via_value(), 1..3), prop::bool::ANY),
        1..3,
    );
    let routes = prop::collection::vec(
        (prop::collection::vec(token(), 1..3), prop::bool::ANY),
        0..3,
    );
    let rrs = prop::collection::vec(token(), 0..2);
    let exts = prop::collection::vec(
        (
            0usize..3,
            prop::collection::vec(token(), 1..4),
            prop::collection::vec(any::<u8>(), 4),
        ),
        0..4,
    );
    let names = prop::collection::vec(any::<u8>(), 12);
    let misc = (
        0usize..METHODS.len(),
        1u32..100_000,
        prop::option::of(0u32..=255),
        token(),
        token(),
        prop::bool::ANY,
    );
    let body = prop::collection::vec(any::<u8>(), 0..300);
    (vias, routes, rrs, exts, names, misc, body, any::<u64>()).prop_map(
        |(vias, routes, rrs, exts, names, (m, cseq, mf, tag, callid, with_event), body, seed)| {
            let method = METHODS[m];
            let mut headers: Vec<(String, String)> = Vec::new();
            for (vals, fold) in vias {
                headers.push((
                    name_variant("Via", Some("v"), names[0]),
                    list_line(vals, fold),
                ));
            }
            headers.push((
                name_variant("From", Some("f"), names[1]),
                folded(
                    vec!["Alice".into(), format!("<sip:alice@example.com>;tag={tag}")],
                    vec![0, names[2]],
                ),
            ));
            headers.push((
                name_variant("To", Some("t"), names[3]),
                "<sip:bob@example.com>".into(),
            ));
            headers.push((
                name_variant("Call-ID", Some("i"), names[4]),
                format!("{callid}@host"),
            ));
            headers.push((
                name_variant("CSeq", None, names[5]),
                folded(vec![cseq.to_string(), method.into()], vec![0, names[6]]),
            ));
            if let Some(mf) = mf {
                headers.push((name_variant("Max-Forwards", None, names[7]), mf.to_string()));
            }
            for (vals, fold) in routes {
                let vals = vals
                    .into_iter()
                    .map(|t| format!("<sip:{t}.example.com;lr>"))
                    .collect();
                headers.push((name_variant("Route", None, names[8]), list_line(vals, fold)));
            }
            for t in rrs {
                headers.push(("Record-Route".into(), format!("<sip:{t}.example.net;lr>")));
            }
            if with_event {
                headers.push((
                    name_variant("Event", Some("o"), names[9]),
                    "presence;id=1".into(),
                ));
            }
            for (which, words, folds) in exts {
                headers.push((["X-A", "x-b", "X-C"][which].into(), folded(words, folds)));
            }
            // Shuffle deterministically from the seed (order must not matter).
            let mut s = seed;
            for i in (1..headers.len()).rev() {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                headers.swap(i, (s >> 33) as usize % (i + 1));
            }
            let mut text = format!("{method} sip:bob@example.com SIP/2.0\r\n");
            for (n, v) in &headers {
                text.push_str(&format!("{n}: {v}\r\n"));
            }
            text.push_str(&format!(
                "{}: {}\r\n\r\n",
                name_variant("Content-Length", Some("l"), names[10]),
                body.len()
            ));
            let mut bytes = text.into_bytes();
            bytes.extend_from_slice(&body);
            Generated { bytes, body }
        },
    )
}

#[derive(Debug, Clone)]
enum Op {
    PushVia(String),
    PopVia,
    TopViaParams(Option<String>, Option<u16>),
    PopRoute,
    PushRecordRoute(String),
    SetMaxForwards(u32),
    SetRequestUri(String),
    SetHeader(&'static str, String),
    RemoveHeader(&'static str),
    SetCSeq(u32),
    SetBody(Option<String>, Vec<u8>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        token().prop_map(|t| Op::PushVia(format!("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK{t}"))),
        Just(Op::PopVia),
        (prop::option::of(1u8..250), prop::option::of(1u16..65535))
            .prop_map(|(r, p)| Op::TopViaParams(r.map(|r| format!("10.0.0.{r}")), p)),
        Just(Op::PopRoute),
        token().prop_map(|t| Op::PushRecordRoute(format!("<sip:{t}@127.0.0.1;lr>"))),
        (0u32..=255).prop_map(Op::SetMaxForwards),
        token().prop_map(|t| Op::SetRequestUri(format!("sip:{t}@127.0.0.2:5070"))),
        (prop::sample::select(vec!["X-A", "x-b", "X-New"]), token())
            .prop_map(|(n, v)| Op::SetHeader(n, v)),
        prop::sample::select(vec!["X-A", "X-B", "x-c"]).prop_map(Op::RemoveHeader),
        (1u32..1_000_000).prop_map(Op::SetCSeq),
        (
            prop::option::of(Just("application/pidf+xml".to_string())),
            prop::collection::vec(any::<u8>(), 0..200)
        )
            .prop_map(|(ct, b)| Op::SetBody(ct, b)),
    ]
}

fn lines_of(m: &Message) -> Vec<(&[u8], &[u8])> {
    m.headers().iter().map(|h| (h.name(m), h.line(m))).collect()
}

/// Whether the header line named `name` is one the ops may have changed.
fn touched(name: &[u8], ops: &[Op]) -> bool {
    let kind = presence_proxy::sip::HeaderKind::classify(name);
    use presence_proxy::sip::HeaderKind as K;
    ops.iter().any(|op| match op {
        Op::PopVia | Op::TopViaParams(..) => kind == K::Via,
        Op::PopRoute => kind == K::Route,
        Op::SetMaxForwards(_) => kind == K::MaxForwards,
        Op::SetHeader(n, _) | Op::RemoveHeader(n) => name.eq_ignore_ascii_case(n.as_bytes()),
        Op::SetCSeq(_) => kind == K::CSeq,
        Op::SetBody(..) => kind == K::ContentType || kind == K::ContentLength,
        Op::PushVia(_) | Op::PushRecordRoute(_) | Op::SetRequestUri(_) => false,
    })
}

fn is_subsequence(needle: &[&[u8]], hay: &[&[u8]]) -> bool {
    let mut it = hay.iter();
    needle.iter().all(|n| it.any(|h| h == n))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, ..ProptestConfig::default() })]

    #[test]
    fn edits_keep_untouched_bytes(g in message(), ops in prop::collection::vec(op(), 0..8)) {
        let m = parse(Bytes::from(g.bytes.clone()), &Limits::default())
            .map_err(|e| TestCaseError::fail(format!("generated message refused: {e:?}\n{}", String::from_utf8_lossy(&g.bytes))))?;
        prop_assert_eq!(m.body(), &g.body[..]);
        let mut ed = m.edit();
        let mut new_body: Option<Vec<u8>> = None;
        let (mut pushed_vias, mut popped_vias, mut popped_routes) = (Vec::new(), 0usize, 0usize);
        let mut pushed_rrs = Vec::new();
        let mut mf = None;
        let mut cseq = None;
        let mut ruri = None;
        for op in &ops {
            match op {
                Op::PushVia(v) => { ed.push_via(v.as_bytes()); pushed_vias.insert(0, v.clone()); }
                // Keep one original Via: a message without any is refused, rightly.
                Op::PopVia if popped_vias + 1 >= m.header_values("Via").count() => {}
                Op::PopVia => { ed.pop_via(); popped_vias += 1; }
                Op::TopViaParams(r, p) => { ed.set_top_via_params(r.as_deref().map(str::as_bytes), *p); }
                Op::PopRoute => { ed.pop_route(); popped_routes += 1; }
                Op::PushRecordRoute(v) => { ed.push_record_route(v.as_bytes()); pushed_rrs.insert(0, v.clone()); }
                Op::SetMaxForwards(n) => { ed.set_max_forwards(*n); mf = Some(*n); }
                Op::SetRequestUri(u) => { ed.set_request_uri(u.as_bytes()); ruri = Some(u.clone()); }
                Op::SetHeader(n, v) => { ed.set_header(n, v.as_bytes()); }
                Op::RemoveHeader(n) => { ed.remove_header(n); }
                Op::SetCSeq(n) => { ed.set_cseq_number(*n); cseq = Some(*n); }
                Op::SetBody(ct, b) => { ed.set_body(ct.as_deref().map(str::as_bytes), b); new_body = Some(b.clone()); }
            }
        }
        let out = ed.finish();
        let e = parse(out.clone(), &Limits::default())
            .map_err(|err| TestCaseError::fail(format!("edited message refused: {err:?}\n{}", String::from_utf8_lossy(&out))))?;

        // Body and Content-Length.
        let want_body = new_body.clone().unwrap_or_else(|| g.body.clone());
        prop_assert_eq!(e.body(), &want_body[..]);
        let cl: usize = std::str::from_utf8(e.header("Content-Length").unwrap()).unwrap().parse().unwrap();
        prop_assert_eq!(cl, want_body.len());

        // Every untouched header line, byte for byte and in order.
        let before: Vec<&[u8]> = lines_of(&m).into_iter().filter(|(n, _)| !touched(n, &ops)).map(|(_, l)| l).collect();
        let after: Vec<&[u8]> = lines_of(&e).into_iter().map(|(_, l)| l).collect();
        prop_assert!(is_subsequence(&before, &after), "untouched lines changed:\n{}", String::from_utf8_lossy(&out));

        // What the edits were meant to do.
        let orig_vias: Vec<&[u8]> = m.header_values("Via").collect();
        let got_vias: Vec<&[u8]> = e.header_values("Via").collect();
        let kept = orig_vias.len().saturating_sub(popped_vias);
        prop_assert_eq!(got_vias.len(), pushed_vias.len() + kept);
        for (got, want) in got_vias.iter().zip(&pushed_vias) {
            prop_assert_eq!(*got, want.as_bytes());
        }
        let tail = &got_vias[pushed_vias.len()..];
        let orig_tail = &orig_vias[popped_vias.min(orig_vias.len())..];
        for (i, (got, want)) in tail.iter().zip(orig_tail).enumerate() {
            let param_edit = popped_vias == 0 && i == 0 && ops.iter().any(|o| matches!(o, Op::TopViaParams(r, p) if r.is_some() || p.is_some()));
            if !param_edit {
                prop_assert_eq!(got, want);
            }
        }
        let orig_routes: Vec<&[u8]> = m.routes().collect();
        let got_routes: Vec<&[u8]> = e.routes().collect();
        prop_assert_eq!(&got_routes[..], &orig_routes[popped_routes.min(orig_routes.len())..]);
        let got_rrs: Vec<&[u8]> = e.header_values("Record-Route").collect();
        for (got, want) in got_rrs.iter().zip(&pushed_rrs) {
            prop_assert_eq!(*got, want.as_bytes());
        }
        prop_assert_eq!(got_rrs.len(), pushed_rrs.len() + m.header_values("Record-Route").count());
        if let Some(n) = mf { prop_assert_eq!(e.max_forwards(), Some(n)); } else { prop_assert_eq!(e.max_forwards(), m.max_forwards()); }
        if let Some(n) = cseq { prop_assert_eq!(e.cseq().map(|c| c.0), Some(n)); }
        if let Some(u) = ruri { prop_assert_eq!(e.request_uri(), Some(u.as_bytes())); }
        prop_assert_eq!(e.call_id(), m.call_id());
        prop_assert_eq!(e.from().map(|f| f.tag), m.from().map(|f| f.tag));
    }

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..600)) {
        exercise(&data);
    }

    #[test]
    fn parse_never_panics_on_sip_like_text(data in "[A-Za-z0-9 :;,<>\"@=/\\.\\-\r\n\t\\[\\]]{0,400}") {
        exercise(data.as_bytes());
        let mut with_line = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n".to_vec();
        with_line.extend_from_slice(data.as_bytes());
        exercise(&with_line);
    }

    #[test]
    fn parse_never_panics_on_mutated_torture_messages(
        file in 0usize..64,
        muts in prop::collection::vec((0u8..4, any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let files = torture_files();
        let mut data = files[file % files.len()].clone();
        for (kind, at, byte) in muts {
            if data.is_empty() { break; }
            let i = at.index(data.len());
            match kind {
                0 => data[i] = byte,
                1 => data.insert(i, byte),
                2 => { data.remove(i); }
                _ => data.truncate(i),
            }
        }
        exercise(&data);
    }
}

fn torture_files() -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/torture/rfc4475/");
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .expect("torture directory")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "dat"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| std::fs::read(p).expect("readable"))
        .collect()
}

/// Parse, and on success read every accessor, edit and re-parse; on failure build
/// the refusal. Nothing may panic, and an accepted message stays acceptable after
/// a forwarding edit.
fn exercise(data: &[u8]) {
    match parse(Bytes::copy_from_slice(data), &Limits::default()) {
        Ok(m) => {
            let _ = (
                m.method(),
                m.request_uri(),
                m.status(),
                m.reason_phrase(),
                m.call_id(),
                m.cseq(),
            );
            let _ = (
                m.from(),
                m.to(),
                m.top_via(),
                m.max_forwards(),
                m.contact_uri(),
                m.event(),
            );
            let _ = (
                m.expires(),
                m.subscription_state(),
                m.content_type(),
                m.p_asserted_identity(),
            );
            let _ = (
                m.vias().count(),
                m.routes().count(),
                m.record_routes().count(),
            );
            if let Some(u) = m.request_uri() {
                let _ = presence_proxy::sip::Uri::parse(u);
            }
            let out = m
                .edit()
                .push_via(b"SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKp")
                .set_top_via_params(Some(b"127.0.0.9"), Some(5099))
                .set_max_forwards(5)
                .pop_route()
                .push_record_route(b"<sip:127.0.0.1;lr>")
                .finish();
            let again = parse(out.clone(), &Limits::default());
            assert!(
                again.is_ok(),
                "edited message refused: {:?}\n{}",
                again.err(),
                String::from_utf8_lossy(&out)
            );
            let plain = m.edit().finish();
            let again = parse(plain, &Limits::default()).expect("unedited message re-parses");
            assert_eq!(again.body(), m.body());
        }
        Err(e) => {
            let _ = e.reason();
            let _ = refusal(data, &e);
            let _ = bad_request(data, e.reason());
        }
    }
}
