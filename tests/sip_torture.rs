//! Every RFC 4475 torture message in `../shared/torture/rfc4475/` and the
//! pjproject raw messages in `../shared/raw-sip/pjproject/`, parsed with no
//! network: the table says, per file, what the wire layer must decide and why.
//! Section numbers are RFC 4475's; "400"/"drop" is what the proxy does with the
//! verdict (a refused request is answered when a Via can be read, a refused response
//! is dropped: RFC 3261 §16.3, §18.3).

use bytes::Bytes;
use presence_proxy::sip::{parse, refusal, Limits, Message, Method, ParseError};

#[derive(Debug, Clone, PartialEq)]
enum Expect {
    /// Parses; the proxy may forward it (application-layer checks are the engine's).
    Parse,
    /// Refused with exactly this error.
    Refuse(ParseError),
}
use Expect::*;

struct Case {
    file: &'static str,
    section: &'static str,
    expect: Expect,
    why: &'static str,
}

const fn case(
    file: &'static str,
    section: &'static str,
    expect: Expect,
    why: &'static str,
) -> Case {
    Case {
        file,
        section,
        expect,
        why,
    }
}

fn table() -> Vec<Case> {
    vec![
        // §3.1.1 valid messages: all must parse.
        case("wsinv.dat", "3.1.1.1", Parse, "LWS, folding, compact forms, odd case and escapes are all legal"),
        case("intmeth.dat", "3.1.1.2", Parse, "every token/URI character is legal, even `?` in the user part"),
        case("esc01.dat", "3.1.1.3", Parse, "% escapes are legal in URIs and parameters"),
        case("escnull.dat", "3.1.1.4", Parse, "%00 is a legal escape in a user part"),
        case("esc02.dat", "3.1.1.5", Parse, "RE%47IST%45R is an extension method token, not an escape"),
        case("lwsdisp.dat", "3.1.1.6", Parse, "no LWS is needed between display name and <"),
        case("longreq.dat", "3.1.1.7", Parse, "long values are legal (each line below max_line)"),
        case("dblreq.dat", "3.1.1.8", Parse, "bytes after Content-Length in a datagram are ignored"),
        case("semiuri.dat", "3.1.1.9", Parse, "`;` is legal in a URI user part"),
        case("transports.dat", "3.1.1.10", Parse, "unknown transport tokens in Via are legal"),
        case("mpart01.dat", "3.1.1.11", Parse, "multipart bodies are opaque to the proxy"),
        case("unreason.dat", "3.1.1.12", Parse, "a reason phrase may be any UTF-8"),
        case("noreason.dat", "3.1.1.13", Parse, "the reason phrase may be empty"),
        // §3.1.2 invalid messages: refused with the right reason.
        case("badinv01.dat", "3.1.2.1", Refuse(ParseError::BadHeader("Via")),
            "empty Via elements/params (`;;,;,,`): 400"),
        case("clerr.dat", "3.1.2.2", Refuse(ParseError::BodyTruncated),
            "Content-Length beyond the datagram: 400 (RFC 3261 §18.3)"),
        case("ncl.dat", "3.1.2.3", Refuse(ParseError::BadContentLength), "negative Content-Length: 400"),
        case("scalar02.dat", "3.1.2.4", Refuse(ParseError::BadHeader("CSeq")),
            "CSeq number not below 2**31: 400"),
        case("scalarlg.dat", "3.1.2.5", Refuse(ParseError::BadHeader("CSeq")),
            "response with an overlarge CSeq: dropped"),
        case("quotbal.dat", "3.1.2.6", Refuse(ParseError::BadHeader("To")),
            "unterminated quoted display name: 400"),
        case("ltgtruri.dat", "3.1.2.7", Refuse(ParseError::BadRequestUri("not a URI")),
            "<> around the Request-URI: 400"),
        case("lwsruri.dat", "3.1.2.8", Refuse(ParseError::BadRequestLine),
            "LWS inside the Request-URI splits the Request-Line: 400"),
        case("lwsstart.dat", "3.1.2.9", Refuse(ParseError::BadRequestLine),
            "several SP between Request-Line elements: 400"),
        case("trws.dat", "3.1.2.10", Refuse(ParseError::BadRequestLine),
            "SP after SIP-Version: 400 (the RFC also tolerates accepting it; we keep the grammar)"),
        case("escruri.dat", "3.1.2.11", Refuse(ParseError::BadRequestUri("headers in Request-URI")),
            "escaped headers in the Request-URI: 400 is acceptable, and a proxy cannot honour them"),
        case("baddate.dat", "3.1.2.12", Parse,
            "non-GMT Date: rejecting is only for elements that use Date; a proxy forwards it unchanged"),
        case("regbadct.dat", "3.1.2.13", Refuse(ParseError::BadHeader("Contact")),
            "addr-spec with `?` not in <>: 400"),
        case("badaspec.dat", "3.1.2.14", Refuse(ParseError::BadHeader("To")), "LWS inside <addr-spec>: 400"),
        case("baddn.dat", "3.1.2.15", Refuse(ParseError::BadHeader("From")),
            "unquoted display name with `,`: 400 (the file lacks the final empty line; that alone is tolerated)"),
        case("baddn.ersip-variant.dat", "3.1.2.15", Refuse(ParseError::BadHeader("From")),
            "same, with the empty line"),
        case("badvers.dat", "3.1.2.16", Refuse(ParseError::BadVersion), "SIP/7.0: 505 Version Not Supported"),
        case("mismatch01.dat", "3.1.2.17", Refuse(ParseError::CSeqMismatch), "OPTIONS with CSeq INVITE: 400"),
        case("mismatch02.dat", "3.1.2.18", Refuse(ParseError::CSeqMismatch), "NEWMETHOD with CSeq INVITE: 400"),
        case("bigcode.dat", "3.1.2.19", Refuse(ParseError::BadStatusCode), "status 4294967301: dropped"),
        // §3.2 transaction layer, §3.3 application layer, §3.4 backward compatibility.
        case("badbranch.dat", "3.2.1", Parse, "no z9hG4bK cookie is a transaction-layer matter"),
        case("insuf.dat", "3.3.1", Refuse(ParseError::MissingHeader("From")),
            "no From/To/Call-ID: 400 (RFC 3261 §8.1.1)"),
        case("unkscm.dat", "3.3.2", Parse, "well-formed; routing an unknown scheme (416) is the engine's call"),
        case("novelsc.dat", "3.3.3", Parse, "im: Request-URI is well-formed"),
        case("unksm2.dat", "3.3.4", Parse, "unknown schemes in To/From/Contact are well-formed"),
        case("bext01.dat", "3.3.5", Parse, "Require/Proxy-Require are application layer (420 by a UAS)"),
        case("invut.dat", "3.3.6", Parse, "unknown Content-Type is for the UAS (415)"),
        case("regaut01.dat", "3.3.7", Parse, "unknown Authorization scheme is for the registrar (401)"),
        case("multi01.dat", "3.3.8", Refuse(ParseError::DuplicateHeader("From")),
            "two values in single-value fields: 400"),
        case("mcl01.dat", "3.3.9", Refuse(ParseError::DuplicateHeader("Content-Length")),
            "two Content-Length values: 400, framing is ambiguous"),
        case("bcast.dat", "3.3.10", Parse, "well-formed response; not sending to broadcast is the engine's"),
        case("zeromf.dat", "3.3.11", Parse, "Max-Forwards 0 is well-formed; 483 is the engine's"),
        case("cparam01.dat", "3.3.12", Parse, "Contact header parameter"),
        case("cparam02.dat", "3.3.13", Parse, "Contact URI parameter inside <>"),
        case("regescrt.dat", "3.3.14", Parse, "escaped header inside <> in Contact is legal"),
        case("sdp01.dat", "3.3.15", Parse, "unacceptable Accept is for the UAS (406)"),
        case("inv2543.dat", "3.4.1", Parse, "RFC 2543 syntax (no branch cookie, no Content-Length) is accepted"),
        case("test.dat", "-", Refuse(ParseError::BadRequestLine),
            "not an RFC 4475 case: Request-Line without SIP-Version"),
    ]
}

fn torture_dir() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/torture/rfc4475/")
}

fn read(dir: &str, file: &str) -> Vec<u8> {
    std::fs::read(format!("{dir}{file}")).unwrap_or_else(|e| panic!("{dir}{file}: {e}"))
}

fn parse_file(dir: &str, file: &str) -> Result<Message, ParseError> {
    parse(Bytes::from(read(dir, file)), &Limits::default())
}

#[test]
fn every_rfc4475_message_gets_the_verdict_in_the_table() {
    let table = table();
    // Every .dat file in the directory has an entry (nothing silently untested).
    let mut on_disk: Vec<String> = std::fs::read_dir(torture_dir())
        .expect("../shared/torture/rfc4475 is readable")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".dat"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = table.iter().map(|c| c.file.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "table and directory differ");

    let mut wrong = Vec::new();
    for c in &table {
        let got = parse_file(torture_dir(), c.file);
        let ok = match (&c.expect, &got) {
            (Parse, Ok(_)) => true,
            (Refuse(want), Err(e)) => want == e,
            _ => false,
        };
        if !ok {
            wrong.push(format!(
                "{} (§{}): expected {:?} because {}; got {:?}",
                c.file,
                c.section,
                c.expect,
                c.why,
                got.map(|_| "parsed")
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn refused_requests_get_an_addressed_reply_and_refused_responses_none() {
    for c in table() {
        let Refuse(err) = &c.expect else { continue };
        let data = read(torture_dir(), c.file);
        let is_response = data.starts_with(b"SIP/");
        let reply = refusal(&data, err);
        if is_response {
            assert!(
                reply.is_none(),
                "{}: a response is dropped, never answered",
                c.file
            );
            continue;
        }
        let has_via = String::from_utf8_lossy(&data)
            .lines()
            .any(|l| l.to_ascii_lowercase().starts_with("via") || l.starts_with("v:"));
        if !has_via {
            assert!(
                reply.is_none(),
                "{}: without a Via no reply can be addressed",
                c.file
            );
            continue;
        }
        let reply =
            reply.unwrap_or_else(|| panic!("{}: no reply although Via is readable", c.file));
        // Not re-parsed: the copied Via may be the malformed one (badinv01).
        let want_reason = if err.status() == 400 {
            err.reason()
        } else {
            "Version Not Supported"
        };
        let status_line = format!("SIP/2.0 {} {}\r\n", err.status(), want_reason);
        assert!(
            reply.starts_with(status_line.as_bytes()),
            "{}: {:?}",
            c.file,
            reply
        );
        assert!(reply.ends_with(b"Content-Length: 0\r\n\r\n"), "{}", c.file);
        // The transaction identifiers come back byte for byte (RFC 3261 §8.2.6.2).
        let text = String::from_utf8_lossy(&data);
        let via_line = text
            .lines()
            .find(|l| l.starts_with("Via:") || l.starts_with("v:"))
            .expect("the message has a Via line");
        assert!(
            String::from_utf8_lossy(&reply).contains(via_line),
            "{}: Via not copied",
            c.file
        );
    }
}

#[test]
fn valid_messages_are_read_as_rfc4475_describes() {
    let dir = torture_dir();
    let m = parse_file(dir, "wsinv.dat").unwrap();
    assert_eq!(m.max_forwards(), Some(68));
    assert_eq!(m.cseq(), Some((9, &b"INVITE"[..])));
    assert_eq!(m.to().unwrap().tag, Some(&b"1918181833n"[..]));
    assert_eq!(m.from().unwrap().tag, Some(&b"98asjd8"[..]));
    let vias: Vec<_> = m.vias().map(|v| (v.transport, v.host)).collect();
    assert_eq!(
        vias,
        vec![
            (&b"UDP"[..], &b"192.0.2.2"[..]),
            (b"TCP", b"spindle.example.com"),
            (b"UDP", b"192.168.255.111"),
        ]
    );
    assert_eq!(m.vias().nth(2).unwrap().branch, Some(&b"z9hG4bK30239"[..]));
    assert_eq!(
        m.routes().next(),
        Some(&b"sip:services.example.com;lr;unknownwith=value;unknown-no-value"[..])
    );
    assert_eq!(m.body().len(), 150);
    assert_eq!(m.header("s"), Some(&b""[..]));

    let m = parse_file(dir, "intmeth.dat").unwrap();
    assert_eq!(m.method(), Some(Method::Other));
    assert_eq!(
        m.method_bytes(),
        Some(&b"!interesting-Method0123456789_*+`.%indeed'~"[..])
    );

    let m = parse_file(dir, "esc02.dat").unwrap();
    assert_eq!(
        m.method(),
        Some(Method::Other),
        "escapes in a method are not decoded"
    );

    let data = read(dir, "dblreq.dat");
    let m = parse(Bytes::from(data.clone()), &Limits::default()).unwrap();
    assert_eq!(m.method(), Some(Method::Register));
    assert!(m.raw().len() < data.len());
    assert!(
        !m.raw().windows(6).any(|w| w == b"INVITE"),
        "the trailing INVITE is not part of it"
    );
    assert_eq!(
        m.call_id(),
        Some(&b"dblreq.0ha0isndaksdj99sdfafnl3lk233412"[..]),
        "compact `I:`"
    );

    let m = parse_file(dir, "transports.dat").unwrap();
    let t: Vec<_> = m.vias().map(|v| v.transport).collect();
    assert_eq!(t, vec![&b"UDP"[..], b"SCTP", b"TLS", b"UNKNOWN", b"TCP"]);

    let m = parse_file(dir, "lwsdisp.dat").unwrap();
    assert_eq!(m.from().unwrap().display, Some(&b"caller"[..]));

    let m = parse_file(dir, "unreason.dat").unwrap();
    assert_eq!(m.status(), Some(200));
    assert!(std::str::from_utf8(m.reason_phrase().unwrap()).is_ok());
    let m = parse_file(dir, "noreason.dat").unwrap();
    assert_eq!(m.reason_phrase(), Some(&b""[..]));

    let m = parse_file(dir, "mpart01.dat").unwrap();
    assert_eq!(m.content_type(), Some(&b"multipart/mixed"[..]));
    assert_eq!(Some(m.body().len() as u32), presence_proxy_cl(&m));

    let m = parse_file(dir, "inv2543.dat").unwrap();
    assert_eq!(m.header("Content-Length"), None);
    assert!(
        !m.body().is_empty(),
        "without Content-Length the body is the rest of the datagram"
    );
}

fn presence_proxy_cl(m: &Message) -> Option<u32> {
    std::str::from_utf8(m.header("Content-Length")?)
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[test]
fn valid_messages_forward_byte_identical_without_edits() {
    for c in table() {
        if c.expect != Parse {
            continue;
        }
        let m = parse_file(torture_dir(), c.file).unwrap();
        let out = m.edit().finish();
        if m.header("Content-Length").is_some() {
            assert_eq!(&out, m.raw(), "{}", c.file);
        } else {
            // Content-Length is added (DESIGN.md: every message we write carries it).
            let again = parse(out, &Limits::default()).unwrap();
            assert_eq!(again.body(), m.body(), "{}", c.file);
            assert_eq!(
                presence_proxy_cl(&again),
                Some(m.body().len() as u32),
                "{}",
                c.file
            );
        }
    }
}

/// pjproject's sendto scripts: what pjsua (a UA) answered, and what a proxy's wire
/// layer decides.
#[test]
fn pjproject_raw_messages() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/raw-sip/pjproject/");
    let cases: &[(&str, Expect, &str)] = &[
        ("500_pres_subscribe_with_bad_event.sip", Parse,
            "well-formed; 489 Bad Event is the notifier's answer"),
        ("363_non_sip_uri_subscribe.sip", Refuse(ParseError::BadHeader("Contact")),
            "Contact addr-spec `http:...?pname=pvalue` holds `?` outside <> (RFC 3261 §20.10); pjsua is lenient, a proxy answers 400"),
        ("364_non_sip_uri_subscribe.sip", Refuse(ParseError::BadHeader("Contact")),
            "same Contact; pjsua answers 400 too"),
        ("999_message_no_body.sip", Refuse(ParseError::BodyTruncated),
            "Content-Length 50 with no body in the datagram: 400 (RFC 3261 §18.3)"),
    ];
    for (file, expect, why) in cases {
        let got = parse_file(dir, file);
        match (expect, &got) {
            (Parse, Ok(m)) => {
                assert!(
                    !m.raw().windows(2).any(|w| w == b"\r\n"),
                    "{file}: LF line endings"
                );
            }
            (Refuse(want), Err(e)) => assert_eq!(want, e, "{file}: {why}"),
            _ => panic!(
                "{file}: expected {expect:?} ({why}), got {:?}",
                got.map(|_| "parsed")
            ),
        }
    }
    let m = parse_file(dir, "500_pres_subscribe_with_bad_event.sip").unwrap();
    assert_eq!(m.event().unwrap().package, b"message-summary");
    assert_eq!(m.top_via().unwrap().rport, Some(None));
    // Lines the editor adds follow the message's LF convention.
    let out = m
        .edit()
        .push_via(b"SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx")
        .finish();
    let text = String::from_utf8(out.to_vec()).unwrap();
    assert!(text.contains(
        "\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\nVia: SIP/2.0/UDP localhost;rport;"
    ));
    assert!(!text.contains('\r'));
}

/// IPv6 references per RFC 5118 (messages written for this test in the style of its
/// §4 examples; 192.0.2.0/24 and 2001:db8::/32 are documentation ranges).
#[test]
fn ipv6_references_per_rfc5118() {
    let ok = |s: &str| parse(Bytes::from(s.to_string()), &Limits::default());
    let base = |ruri: &str, via: &str, contact: &str| {
        format!(
            "REGISTER {ruri} SIP/2.0\r\nTo: <sip:user@[2001:db8::10]>\r\nFrom: <sip:user@[2001:db8::10]>;tag=81x2\r\n\
Via: {via}\r\nCall-ID: SSG9559905523997077@hlau_4100\r\nMax-Forwards: 70\r\nContact: {contact}\r\n\
CSeq: 98176 REGISTER\r\nContent-Length: 0\r\n\r\n"
        )
    };
    // §4.1 a basic IPv6 reference.
    let m = ok(&base(
        "sip:[2001:db8::10]",
        "SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKas3-111",
        "\"Caller\" <sip:caller@[2001:db8::1]>",
    ))
    .unwrap();
    let via = m.top_via().unwrap();
    assert_eq!(via.host, b"[2001:db8::9:1]");
    assert_eq!(via.port, None);
    assert_eq!(m.contact_uri(), Some(&b"sip:caller@[2001:db8::1]"[..]));
    let uri = presence_proxy::sip::Uri::parse(m.request_uri().unwrap()).unwrap();
    assert_eq!(uri.host, b"[2001:db8::10]");
    // §4.2 an IPv6 reference without brackets is not a URI: 400.
    let e = ok(&base(
        "sip:[2001:db8::10]",
        "SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKas3-111",
        "<sip:caller@[2001:db8::1]>",
    )
    .replace(
        "REGISTER sip:[2001:db8::10]",
        "REGISTER sip:user@2001:db8::10",
    ))
    .unwrap_err();
    assert_eq!(e, ParseError::BadRequestUri("not a URI"));
    // §4.3/§4.4 port inside vs outside the brackets.
    let u = presence_proxy::sip::Uri::parse(b"sip:[2001:db8::10:5070]").unwrap();
    assert_eq!((u.host, u.port), (&b"[2001:db8::10:5070]"[..], None));
    let u = presence_proxy::sip::Uri::parse(b"sip:[2001:db8::10]:5070").unwrap();
    assert_eq!((u.host, u.port), (&b"[2001:db8::10]"[..], Some(5070)));
    // §4.5 received with and without brackets, port on sent-by.
    let m = ok(&base(
        "sip:[2001:db8::10]",
        "SIP/2.0/UDP [2001:db8::9:1]:6050;received=[2001:db8::9:255];branch=z9hG4bKas3",
        "<sip:caller@[2001:db8::1]>",
    ))
    .unwrap();
    let via = m.top_via().unwrap();
    assert_eq!(via.port, Some(6050));
    assert_eq!(via.received, Some(&b"[2001:db8::9:255]"[..]));
    let m = ok(&base(
        "sip:[2001:db8::10]",
        "SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;branch=z9hG4bKas3",
        "<sip:caller@[2001:db8::1]>",
    ))
    .unwrap();
    assert_eq!(m.top_via().unwrap().received, Some(&b"2001:db8::9:255"[..]));
    // §4.6 IPv4 and IPv6 Vias mixed; §4.8 IPv4-mapped address.
    let m = ok(&base(
        "sip:[::ffff:192.0.2.10]",
        "SIP/2.0/UDP [::ffff:192.0.2.128];branch=z9hG4bKas3, SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKa2",
        "<sip:caller@[::ffff:192.0.2.128]>",
    ))
    .unwrap();
    let hosts: Vec<_> = m.vias().map(|v| v.host).collect();
    assert_eq!(hosts, vec![&b"[::ffff:192.0.2.128]"[..], b"192.0.2.1"]);
    // The editor writes an IPv6 received/rport back into the top Via.
    let out = m
        .edit()
        .set_top_via_params(Some(b"[2001:db8::7]"), Some(5062))
        .finish();
    let again = parse(out, &Limits::default()).unwrap();
    let via = again.top_via().unwrap();
    assert_eq!(via.received, Some(&b"[2001:db8::7]"[..]));
    assert_eq!(via.rport, Some(Some(5062)));
}

/// Each limit is its own error with its own reason phrase (DESIGN.md "Limits").
#[test]
fn limits_refuse_with_distinct_reasons() {
    let data = Bytes::from(read(torture_dir(), "longreq.dat"));
    let cases = [
        (
            Limits {
                max_message: 1000,
                ..Limits::default()
            },
            ParseError::MessageTooLarge {
                size: data.len(),
                limit: 1000,
            },
        ),
        (
            Limits {
                max_line: 500,
                ..Limits::default()
            },
            ParseError::LineTooLong { limit: 500 },
        ),
        (
            Limits {
                max_headers: 10,
                ..Limits::default()
            },
            ParseError::TooManyHeaders { limit: 10 },
        ),
    ];
    let mut reasons = Vec::new();
    for (limits, want) in cases {
        let got = parse(data.clone(), &limits).unwrap_err();
        assert_eq!(got, want);
        reasons.push(got.reason());
    }
    reasons.dedup();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(parse(data, &Limits::default()).is_ok());
}
