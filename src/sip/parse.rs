//! The parser: `nom` over the bytes of one whole message (a UDP datagram or one
//! framed TCP message), producing spans only.
//!
//! Two passes: [`scan`] finds the start line, the header lines (folding joined,
//! RFC 3261 §7.3.1) and the body (Content-Length, §18.3); [`validate`] then checks
//! what a proxy must be able to rely on before forwarding (§16.3 and the RFC 4475
//! §3.1.2 cases). The lenient scan used for addressing a 400 skips the second pass
//! and tolerates broken lines.

use bytes::{Buf, Bytes};
use nom::bytes::complete::{tag_no_case, take_while1, take_while_m_n};
use nom::character::complete::char;
use nom::combinator::{all_consuming, rest};
use nom::sequence::tuple;
use nom::IResult;

use super::error::ParseError;
use super::header::{find_byte, split_commas, trim_lws, HeaderKind};
use super::message::{Header, Message, StartLine, MAX_HEADERS_CAPACITY, MAX_MESSAGE_SPAN};
use super::method::Method;
use super::spans::{NameAddrSpans, ViaSpans};
use super::uri::Uri;
use super::values::{is_token, parse_cseq, parse_u32, run_len, NameAddr, Via, TOKEN};
use super::Limits;

/// Parses one whole message and checks it is fit to forward.
///
/// Returns the message by value; a caller on a hot path that keeps a [`Message`]
/// of its own should use [`parse_into`], which builds it where it lives.
pub fn parse(data: Bytes, limits: &Limits) -> Result<Message, ParseError> {
    let mut msg = Message::empty();
    parse_into(data, limits, &mut msg)?;
    Ok(msg)
}

/// [`parse`] into `out`, which is overwritten: on success it is the parsed
/// message; on error only [`Message::raw`] means anything: it holds `data`, less
/// any CRLFs before the start line, for a caller to answer the message with.
///
/// The index is written in place, so nothing is copied on return: a returned
/// `Result<Message, _>` moved the 1.1 KB inline index once more per hop.
pub fn parse_into(data: Bytes, limits: &Limits, out: &mut Message) -> Result<(), ParseError> {
    scan(data, limits, true, out)?;
    (out.top_vias, out.from_to) = validate(out)?;
    Ok(())
}

/// Best-effort scan of a message that failed [`parse`], so a 400 can still copy
/// Via/From/To/Call-ID/CSeq: header lines that do not parse are skipped. Only the
/// first [`MAX_MESSAGE_SPAN`] bytes are looked at; the headers a response copies
/// come first.
pub(crate) fn scan_lenient(data: &[u8]) -> Option<Message> {
    let limits = Limits {
        max_message: usize::MAX,
        max_headers: MAX_HEADERS_CAPACITY,
        max_line: usize::MAX,
    };
    let data = &data[..data.len().min(MAX_MESSAGE_SPAN)];
    let mut msg = Message::empty();
    scan(Bytes::copy_from_slice(data), &limits, false, &mut msg).ok()?;
    Some(msg)
}

type Res<'a, T> = IResult<&'a [u8], T>;

fn sp(i: &[u8]) -> Res<'_, char> {
    char(' ')(i)
}

fn not_space(i: &[u8]) -> Res<'_, &[u8]> {
    take_while1(|b| b != b' ' && b != b'\t')(i)
}

/// `Request-Line = Method SP Request-URI SP SIP-Version` — exactly one SP between
/// elements (RFC 4475 §3.1.2.9, §3.1.2.10).
fn request_line(i: &[u8]) -> Res<'_, (&[u8], &[u8], &[u8])> {
    let (i, (method, _, uri, _, version)) =
        all_consuming(tuple((take_while1(is_token), sp, not_space, sp, not_space)))(i)?;
    Ok((i, (method, uri, version)))
}

/// `Status-Line = SIP-Version SP Status-Code SP Reason-Phrase`; the reason may be
/// empty (RFC 4475 §3.1.1.13) and is any UTF-8 text (§3.1.1.12).
fn status_line(i: &[u8]) -> Res<'_, (&[u8], &[u8], &[u8])> {
    let (i, (version, _, code)) =
        tuple((not_space, sp, take_while1(|b: u8| b.is_ascii_digit())))(i)?;
    let (i, reason) = if i.is_empty() {
        (i, i)
    } else {
        let (i, _) = sp(i)?;
        rest(i)?
    };
    Ok((i, (version, code, reason)))
}

fn is_sip_version(v: &[u8]) -> bool {
    fn version(i: &[u8]) -> Res<'_, &[u8]> {
        all_consuming(tag_no_case("SIP/2.0"))(i)
    }
    version(v).is_ok()
}

/// `field-name HCOLON`: a token, optional WSP, a colon (RFC 4475 §3.1.1.1 puts
/// white space before the colon). Returns the rest of the line and the name.
/// Hand-written rather than `nom`: it runs once per header line.
fn header_name(i: &[u8]) -> Option<(&[u8], &[u8])> {
    let name_len = run_len(i, &TOKEN);
    if name_len == 0 {
        return None;
    }
    let mut colon = name_len;
    while let Some(b' ' | b'\t') = i.get(colon) {
        colon += 1;
    }
    match i.get(colon) {
        Some(b':') => Some((&i[colon + 1..], &i[..name_len])),
        _ => None,
    }
}

/// Looks like a Status-Line: starts with `SIP/` followed by a digit.
fn is_status_line(line: &[u8]) -> bool {
    fn prefix(i: &[u8]) -> Res<'_, &[u8]> {
        let (i, _) = tag_no_case("SIP/")(i)?;
        take_while_m_n(1, 1, |b: u8| b.is_ascii_digit())(i)
    }
    prefix(line).is_ok()
}

/// Index of the next `\n` at or after `from`.
fn find_lf(data: &[u8], from: usize) -> Option<usize> {
    find_byte(data, from, b'\n')
}

/// An offset into a message that [`scan`] has checked is at most
/// [`MAX_MESSAGE_SPAN`] bytes long.
fn to_u16(n: usize) -> u16 {
    debug_assert!(n <= MAX_MESSAGE_SPAN);
    u16::try_from(n).unwrap_or(u16::MAX)
}

fn to_u32(n: usize) -> u32 {
    u32::from(to_u16(n))
}

/// Scans `data` into `out` (every field of `out` is overwritten on success).
fn scan(data: Bytes, limits: &Limits, strict: bool, out: &mut Message) -> Result<(), ParseError> {
    // A reused message keeps nothing of the last one parsed into it.
    out.top_vias = [None; 2];
    out.from_to = [None; 2];
    // The bytes live in `out` from here on, so a caller still has them to answer
    // a message that fails (a 400 needs its Via, From, To) without keeping a clone.
    out.raw = data;
    let max_message = limits.max_message.min(MAX_MESSAGE_SPAN);
    if out.raw.len() > max_message {
        return Err(ParseError::MessageTooLarge {
            size: out.raw.len(),
            limit: max_message,
        });
    }
    // RFC 3261 §7.5: CRLFs before the start line are ignored.
    let lead = out
        .raw
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    // `advance`/`truncate` adjust the handle in place; `slice` would clone it, and
    // cloning a Vec-backed `Bytes` allocates its shared header.
    out.raw.advance(lead);
    if out.raw.is_empty() {
        return Err(ParseError::Empty);
    }
    let max_headers = limits.max_headers.min(MAX_HEADERS_CAPACITY);
    let d: &[u8] = &out.raw;

    let (line_end, next) = match find_lf(d, 0) {
        Some(lf) => (lf, lf + 1),
        None if strict => return Err(ParseError::MissingEmptyLine),
        None => (d.len(), d.len()),
    };
    let lf_only = line_end == 0 || d[line_end - 1] != b'\r';
    let content_end = if lf_only { line_end } else { line_end - 1 };
    if content_end > limits.max_line {
        return Err(ParseError::LineTooLong {
            limit: limits.max_line,
        });
    }
    let line = &d[..content_end];
    let start = if is_status_line(line) {
        let (_, (version, code, reason)) =
            status_line(line).map_err(|_| ParseError::BadStatusLine)?;
        if !is_sip_version(version) {
            return Err(ParseError::BadVersion);
        }
        let status = match parse_u32(code) {
            Some(n) if code.len() == 3 && (100..=699).contains(&n) => n as u16,
            _ => return Err(ParseError::BadStatusCode),
        };
        let reason_start = content_end - reason.len();
        StartLine::Response {
            status,
            reason_start: to_u32(reason_start),
            reason_end: to_u32(content_end),
        }
    } else {
        match request_line(line) {
            Ok((_, (method, uri, version))) => {
                if strict && !is_sip_version(version) {
                    return Err(ParseError::BadVersion);
                }
                let uri_start = method.len() + 1;
                StartLine::Request {
                    method: Method::from_bytes(method),
                    method_end: to_u32(method.len()),
                    uri_start: to_u32(uri_start),
                    uri_end: to_u32(uri_start + uri.len()),
                }
            }
            Err(_) if strict => return Err(ParseError::BadRequestLine),
            Err(_) => {
                // Lenient: still a request if it starts with a token, so a 400 can
                // be addressed from its headers.
                let method_len = line.iter().take_while(|&&b| is_token(b)).count();
                if method_len == 0 {
                    return Err(ParseError::BadRequestLine);
                }
                StartLine::Request {
                    method: Method::from_bytes(&line[..method_len]),
                    method_end: to_u32(method_len),
                    uri_start: to_u32(method_len),
                    uri_end: to_u32(method_len),
                }
            }
        }
    };

    let headers = &mut out.headers;
    headers.clear();
    // Whether the last header line was kept (a continuation of a skipped line in
    // lenient mode is skipped too).
    let mut last_kept = false;
    let mut blank_missing = false;
    // The first Content-Length line and whether there was another (§20.14 allows one).
    let mut content_length: Option<usize> = None;
    let mut more_content_lengths = false;
    let mut pos = next;
    let (headers_end, body_start) = loop {
        if pos >= d.len() {
            // The datagram ends right after a complete header line: the empty line
            // is missing (RFC 4475 §3.1.2.15 as published), but where the headers end
            // is unambiguous, so take it as an empty body; the editor restores the
            // empty line when it forwards.
            blank_missing = true;
            break (d.len(), d.len());
        }
        let (lf, next) = match find_lf(d, pos) {
            Some(lf) => (lf, lf + 1),
            None if strict => return Err(ParseError::MissingEmptyLine),
            None => (d.len(), d.len()),
        };
        let end = if lf > pos && d[lf - 1] == b'\r' {
            lf - 1
        } else {
            lf
        };
        if end == pos {
            break (pos, next);
        }
        if end - pos > limits.max_line {
            return Err(ParseError::LineTooLong {
                limit: limits.max_line,
            });
        }
        let line = &d[pos..end];
        if line[0] == b' ' || line[0] == b'\t' {
            // Folding: this line continues the previous header's value.
            match headers.last_mut() {
                Some(h) if last_kept => {
                    h.line_end = to_u16(next);
                    set_value(h, d, h.value_start as usize, end);
                }
                _ if strict => return Err(ParseError::BadHeaderLine),
                _ => {}
            }
            pos = next;
            continue;
        }
        match header_name(line) {
            Some((after, name)) => {
                if headers.len() >= max_headers {
                    if strict {
                        return Err(ParseError::TooManyHeaders { limit: max_headers });
                    }
                    last_kept = false;
                    pos = next;
                    continue;
                }
                let value_start = end - after.len();
                let mut h = Header {
                    line_start: to_u16(pos),
                    name_end: to_u16(pos + name.len()),
                    value_start: 0,
                    value_end: 0,
                    line_end: to_u16(next),
                    kind: HeaderKind::classify(name),
                };
                set_value(&mut h, d, value_start, end);
                if h.kind == HeaderKind::ContentLength {
                    match content_length {
                        None => content_length = Some(headers.len()),
                        Some(_) => more_content_lengths = true,
                    }
                }
                // `max_headers` is at most the capacity, so this push succeeds.
                last_kept = headers.push(h);
            }
            None if strict => return Err(ParseError::BadHeaderLine),
            None => last_kept = false,
        }
        pos = next;
    };

    let mut body_end = d.len();
    if let Some(h) = content_length.and_then(|i| headers.as_slice().get(i)) {
        let value = &d[h.value_start as usize..h.value_end as usize];
        let more = more_content_lengths || value.contains(&b',');
        let len = parse_u32(value);
        match (more, len) {
            (false, Some(n)) if body_start + n as usize <= d.len() => {
                body_end = body_start + n as usize
            }
            _ if !strict => {}
            (true, _) => return Err(ParseError::DuplicateHeader("Content-Length")),
            (false, None) => return Err(ParseError::BadContentLength),
            (false, Some(_)) => return Err(ParseError::BodyTruncated),
        }
    }

    // Bytes past Content-Length in a datagram are not part of the message
    // (RFC 3261 §18.3).
    out.raw.truncate(body_end);
    out.start = start;
    out.start_line_end = to_u32(next);
    out.headers_end = to_u32(headers_end);
    out.body_start = to_u32(body_start);
    out.body_end = to_u32(body_end);
    out.lf_only = lf_only;
    out.blank_missing = blank_missing;
    Ok(())
}

/// Sets the value span to `[from, to)` trimmed of LWS (folding included).
fn set_value(h: &mut Header, d: &[u8], from: usize, to: usize) {
    let v = &d[from..to];
    let t = trim_lws(v);
    let lead = if t.is_empty() {
        v.len()
    } else {
        (t.as_ptr() as usize) - (v.as_ptr() as usize)
    };
    h.value_start = to_u16(from + lead);
    h.value_end = to_u16(from + lead + t.len());
}

const REQUIRED: [HeaderKind; 5] = [
    HeaderKind::Via,
    HeaderKind::From,
    HeaderKind::To,
    HeaderKind::CallId,
    HeaderKind::CSeq,
];

const SINGLE: [HeaderKind; 7] = [
    HeaderKind::From,
    HeaderKind::To,
    HeaderKind::CallId,
    HeaderKind::CSeq,
    HeaderKind::MaxForwards,
    HeaderKind::ContentType,
    HeaderKind::ContentLength,
];

fn name_of(kind: HeaderKind) -> &'static str {
    kind.long_name().unwrap_or("header")
}

/// The checks a proxy needs before it may forward (RFC 3261 §16.3 "reasonable
/// syntax check") and the RFC 4475 §3.1.2 / §3.3.8 refusals.
///
/// One pass over the index checks each line, then the verdicts are reported in a
/// fixed order (missing, duplicated, Request-URI, From, To, Call-ID, CSeq, Via,
/// Max-Forwards, Contact, Route, Record-Route), so a message with several faults
/// always gets the same reason whatever the order of its lines.
/// What validation parsed and the message keeps: the first two Vias, From and To.
type Parsed = ([Option<ViaSpans>; 2], [Option<NameAddrSpans>; 2]);

/// Returns the first two Vias, and From and To, as parsed on the way
/// ([`Message::vias`], [`Message::from`] and [`Message::to`] serve them).
fn validate(msg: &Message) -> Result<Parsed, ParseError> {
    let mut top_vias = [None; 2];
    let mut from_to = [None; 2];
    let mut vias = 0;
    let mut lines = [0u16; HeaderKind::COUNT];
    let mut bad = [false; HeaderKind::COUNT];
    let mut cseq = None;
    for h in msg.headers() {
        let kind = h.kind;
        lines[kind as usize] += 1;
        let first = lines[kind as usize] == 1;
        let v = h.value(msg);
        let ok = match kind {
            // Only the first line counts here: a second one is refused as a duplicate.
            HeaderKind::From | HeaderKind::To if first => match NameAddr::parse(v) {
                Some(n) => {
                    from_to[usize::from(kind == HeaderKind::To)] = NameAddrSpans::of(&msg.raw, &n);
                    true
                }
                None => false,
            },
            HeaderKind::CallId if first => {
                !v.is_empty() && v.iter().all(|&b| b > b' ' && b != 0x7f)
            }
            HeaderKind::CSeq if first => {
                cseq = parse_cseq(v);
                cseq.is_some()
            }
            // 1*DIGIT, 0-255 in practice (RFC 3261 §20.22; RFC 4475 §3.1.2.4).
            HeaderKind::MaxForwards if first => parse_u32(v).is_some_and(|n| n <= 255),
            // Every Via value, not only the top one: a response is routed by the
            // next one after ours is popped (RFC 3261 §18.2.2).
            HeaderKind::Via => split_commas(v).all(|(s, e)| match Via::parse(&v[s..e]) {
                Some(via) => {
                    if let Some(slot) = top_vias.get_mut(vias) {
                        *slot = ViaSpans::of(&msg.raw, &via);
                    }
                    vias += 1;
                    true
                }
                None => false,
            }),
            HeaderKind::Contact => split_commas(v).all(|(s, e)| {
                let elem = &v[s..e];
                elem == b"*" || NameAddr::parse(elem).is_some()
            }),
            // Route and Record-Route take name-addr only (RFC 3261 §20.30, §20.34).
            HeaderKind::Route | HeaderKind::RecordRoute => split_commas(v).all(|(s, e)| {
                let elem = &v[s..e];
                find_byte(elem, 0, b'<').is_some() && NameAddr::parse(elem).is_some()
            }),
            _ => true,
        };
        if !ok {
            bad[kind as usize] = true;
        }
    }
    for kind in REQUIRED {
        if lines[kind as usize] == 0 {
            return Err(ParseError::MissingHeader(name_of(kind)));
        }
    }
    // RFC 3261 §7.3.1: these may appear once; RFC 4475 §3.3.8.
    for kind in SINGLE {
        if lines[kind as usize] > 1 {
            return Err(ParseError::DuplicateHeader(name_of(kind)));
        }
    }
    if let Some(uri) = msg.request_uri() {
        let u = Uri::parse(uri).map_err(|_| ParseError::BadRequestUri("not a URI"))?;
        // RFC 3261 §19.1.1 (table): headers are not allowed in a Request-URI
        // (RFC 4475 §3.1.2.11).
        if u.is_sip() && !u.headers.is_empty() {
            return Err(ParseError::BadRequestUri("headers in Request-URI"));
        }
    }
    for kind in [HeaderKind::From, HeaderKind::To, HeaderKind::CallId] {
        if bad[kind as usize] {
            return Err(ParseError::BadHeader(name_of(kind)));
        }
    }
    let (_, cseq_method) = cseq.ok_or(ParseError::BadHeader("CSeq"))?;
    if let Some(method) = msg.method_bytes() {
        if method != cseq_method {
            return Err(ParseError::CSeqMismatch);
        }
    }
    for kind in [
        HeaderKind::Via,
        HeaderKind::MaxForwards,
        HeaderKind::Contact,
        HeaderKind::Route,
        HeaderKind::RecordRoute,
    ] {
        if bad[kind as usize] {
            return Err(ParseError::BadHeader(name_of(kind)));
        }
    }
    Ok((top_vias, from_to))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBSCRIBE: &[u8] = b"SUBSCRIBE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@example.com>\r\n\
From: Alice <sip:alice@example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.example.com\r\n\
CSeq: 314159 SUBSCRIBE\r\n\
Contact: <sip:alice@192.0.2.1:5060>\r\n\
Event: presence\r\n\
Expires: 3600\r\n\
Content-Length: 0\r\n\r\n";

    fn p(b: &[u8]) -> Result<Message, ParseError> {
        parse(Bytes::copy_from_slice(b), &Limits::default())
    }

    /// A caller answers a message that fails with a 400 built from its bytes, so
    /// the failed parse leaves them in the message, whichever step refused it.
    #[test]
    fn a_failed_parse_keeps_the_bytes() {
        let no_via = String::from_utf8_lossy(SUBSCRIBE).replace(
            "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport\r\n",
            "",
        );
        let bad_line =
            String::from_utf8_lossy(SUBSCRIBE).replace("Event: presence", "Event presence");
        let too_big = format!(
            "{}{}",
            String::from_utf8_lossy(SUBSCRIBE),
            "x".repeat(70_000)
        );
        for (text, lead) in [(no_via, "\r\n"), (bad_line, ""), (too_big, "")] {
            let data = Bytes::from(format!("{lead}{text}"));
            let mut msg = Message::empty();
            let limits = Limits::default();
            assert!(parse_into(data.clone(), &limits, &mut msg).is_err());
            assert_eq!(
                msg.raw().as_ref(),
                text.as_bytes(),
                "less the leading CRLF only"
            );
        }
    }

    #[test]
    fn find_lf_agrees_with_a_plain_search() {
        let mut data = vec![b'x'; 40];
        for lf in [
            None,
            Some(0),
            Some(7),
            Some(8),
            Some(15),
            Some(16),
            Some(39),
        ] {
            data.iter_mut().for_each(|b| *b = 0x8a);
            if let Some(at) = lf {
                data[at] = b'\n';
            }
            for from in 0..=data.len() + 1 {
                let want = data
                    .get(from..)
                    .and_then(|s| s.iter().position(|&b| b == b'\n'))
                    .map(|p| from + p);
                assert_eq!(find_lf(&data, from), want, "lf {lf:?} from {from}");
            }
        }
        // Bytes just above and below LF, next to an LF, must not confuse the test.
        let d = b"\x0b\x09\x0a\x0b\x09\x0a\x0b\x09\x0b\x0a";
        assert_eq!(find_lf(d, 0), Some(2));
        assert_eq!(find_lf(d, 3), Some(5));
        assert_eq!(find_lf(d, 6), Some(9));
    }

    #[test]
    fn parses_a_subscribe() {
        let m = p(SUBSCRIBE).unwrap();
        assert!(m.is_request());
        assert_eq!(m.method(), Some(Method::Subscribe));
        assert_eq!(m.request_uri(), Some(&b"sip:bob@example.com"[..]));
        assert_eq!(m.call_id(), Some(&b"a84b4c76e66710@pc33.example.com"[..]));
        assert_eq!(m.cseq(), Some((314159, &b"SUBSCRIBE"[..])));
        assert_eq!(m.from().unwrap().tag, Some(&b"1928301774"[..]));
        assert_eq!(m.to().unwrap().uri, b"sip:bob@example.com");
        let via = m.top_via().unwrap();
        assert_eq!(via.branch, Some(&b"z9hG4bK776asdhds"[..]));
        assert_eq!(via.rport, Some(None));
        assert_eq!(m.max_forwards(), Some(70));
        assert_eq!(m.event().unwrap().package, b"presence");
        assert_eq!(m.expires(), Some(3600));
        assert_eq!(m.contact_uri(), Some(&b"sip:alice@192.0.2.1:5060"[..]));
        assert_eq!(m.body(), b"");
    }

    #[test]
    fn compact_forms_folding_and_multi_values() {
        let raw = b"NOTIFY sip:alice@192.0.2.1 SIP/2.0\r\n\
v: SIP/2.0/UDP proxy.example.com;branch=z9hG4bK1, SIP/2.0/TCP 192.0.2.9;branch=z9hG4bK2\r\n\
VIA: SIP/2.0/UDP [2001:db8::1]:5062;branch=z9hG4bK3\r\n\
f: <sip:bob@example.com>;tag=a\r\n\
t: <sip:alice@example.com>\r\n ;tag=b\r\n\
i: n1@x\r\n\
CSeq: 2 NOTIFY\r\n\
o: presence;id=5\r\n\
Subscription-State: active;expires=60\r\n\
Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n\
route: <sip:p3.example.com;lr>\r\n\
c: application/pidf+xml;charset=utf-8\r\n\
l: 5\r\n\r\nhello";
        let m = p(raw).unwrap();
        let vias: Vec<_> = m.vias().map(|v| v.host).collect();
        assert_eq!(
            vias,
            vec![&b"proxy.example.com"[..], b"192.0.2.9", b"[2001:db8::1]"]
        );
        assert_eq!(m.to().unwrap().tag, Some(&b"b"[..]));
        assert_eq!(
            m.header("To"),
            Some(&b"<sip:alice@example.com>\r\n ;tag=b"[..])
        );
        assert_eq!(
            m.header_unfolded("t").unwrap().as_ref(),
            b"<sip:alice@example.com> ;tag=b"
        );
        assert_eq!(m.event().unwrap().id, Some(&b"5"[..]));
        assert_eq!(m.subscription_state().unwrap().expires, Some(60));
        let routes: Vec<_> = m.routes().collect();
        assert_eq!(routes.len(), 3);
        assert_eq!(routes[2], b"sip:p3.example.com;lr");
        assert_eq!(m.content_type(), Some(&b"application/pidf+xml"[..]));
        assert_eq!(
            m.header("content-type"),
            Some(&b"application/pidf+xml;charset=utf-8"[..])
        );
        assert_eq!(m.body(), b"hello");
        assert_eq!(m.header_values("Via").count(), 3);
    }

    #[test]
    fn responses_and_reason_phrases() {
        let m = p(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 SUBSCRIBE\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert_eq!(m.status(), Some(200));
        assert_eq!(m.reason_phrase(), Some(&b"OK"[..]));
        assert!(!m.is_request());
        assert_eq!(m.method(), None);
    }

    #[test]
    fn lf_only_messages_parse() {
        let raw = String::from_utf8(SUBSCRIBE.to_vec())
            .unwrap()
            .replace("\r\n", "\n");
        let m = p(raw.as_bytes()).unwrap();
        assert_eq!(m.call_id(), Some(&b"a84b4c76e66710@pc33.example.com"[..]));
        assert!(m.lf_only);
    }

    #[test]
    fn trailing_bytes_after_content_length_are_not_part_of_the_message() {
        let mut raw = SUBSCRIBE.to_vec();
        raw.extend_from_slice(b"garbage");
        let m = p(&raw).unwrap();
        assert_eq!(m.raw().len(), SUBSCRIBE.len());
    }

    #[test]
    fn limits_are_distinct_errors() {
        let small = Limits {
            max_message: 100,
            ..Limits::default()
        };
        assert!(matches!(
            parse(Bytes::from_static(SUBSCRIBE), &small),
            Err(ParseError::MessageTooLarge { .. })
        ));
        let few = Limits {
            max_headers: 3,
            ..Limits::default()
        };
        assert_eq!(
            parse(Bytes::from_static(SUBSCRIBE), &few).unwrap_err(),
            ParseError::TooManyHeaders { limit: 3 }
        );
        let short = Limits {
            max_line: 40,
            ..Limits::default()
        };
        assert_eq!(
            parse(Bytes::from_static(SUBSCRIBE), &short).unwrap_err(),
            ParseError::LineTooLong { limit: 40 }
        );
    }

    /// 16-bit spans reach the last byte of the largest message, and one byte more
    /// is refused with the span as the limit even when `Limits` allow more.
    #[test]
    fn the_largest_message_parses_and_one_byte_more_is_refused() {
        let build = |total: usize| {
            let head = |n: usize| {
                String::from_utf8(SUBSCRIBE.to_vec())
                    .unwrap()
                    .replace("Content-Length: 0", &format!("Content-Length: {n}"))
            };
            // The head's length depends on the digits of the body length.
            let body_len = total - head(total).len();
            let mut raw = head(body_len).into_bytes();
            assert_eq!(raw.len() + body_len, total);
            raw.resize(total, b'x');
            raw
        };
        let roomy = Limits {
            max_message: usize::MAX,
            ..Limits::default()
        };
        let raw = build(MAX_MESSAGE_SPAN);
        let m = parse(Bytes::from(raw.clone()), &roomy).unwrap();
        assert_eq!(m.raw().len(), MAX_MESSAGE_SPAN);
        assert_eq!(m.body(), &raw[raw.len() - m.body().len()..]);
        assert!(m.body().iter().all(|&b| b == b'x'));
        assert_eq!(
            m.header("Content-Length"),
            Some(m.body().len().to_string().as_bytes())
        );
        assert_eq!(
            parse(Bytes::from(build(MAX_MESSAGE_SPAN + 1)), &roomy).unwrap_err(),
            ParseError::MessageTooLarge {
                size: MAX_MESSAGE_SPAN + 1,
                limit: MAX_MESSAGE_SPAN
            }
        );
        // The lenient scan behind a 400 still reads the headers of a larger one.
        let big = build(MAX_MESSAGE_SPAN + 100);
        let lenient = scan_lenient(&big).unwrap();
        assert_eq!(
            lenient.call_id(),
            Some(&b"a84b4c76e66710@pc33.example.com"[..])
        );
    }

    /// The Vias, From and To validation parsed are served as parsing them again
    /// would give them, whatever the layout: one per line, several per line,
    /// folded, bare LF.
    #[test]
    fn vias_from_and_to_served_from_validation_equal_a_fresh_parse() {
        let msgs: [&[u8]; 4] = [
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKpp1;received=10.0.0.9\r\nVia: SIP/2.0/TCP [::1]:5062;rport=5999;branch=z9hG4bKa\r\nVia: SIP/2.0/UDP h3\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 SUBSCRIBE\r\n\r\n",
            b"SIP/2.0 200 OK\r\nv: SIP/2.0/UDP a.example.com;branch=z9hG4bK1 , SIP/2.0/UDP b:5080;rport;branch=z9hG4bK2,SIP/2.0/UDP c\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 SUBSCRIBE\r\n\r\n",
            b"OPTIONS sip:x@y SIP/2.0\nVia: SIP  /  2.0 / UDP\n   192.0.2.2;branch=z9hG4bKf\nFrom: <sip:a@b>;tag=1\nTo: <sip:c@d>\nCall-ID: x\nCSeq: 1 OPTIONS\nMax-Forwards: 70\n\n",
            SUBSCRIBE,
        ];
        let mut m = Message::empty();
        for raw in msgs {
            parse_into(Bytes::copy_from_slice(raw), &Limits::default(), &mut m).unwrap();
            assert!(m.top_vias[0].is_some(), "validation kept the top Via");
            let fresh: Vec<_> = m
                .values_of_kind(HeaderKind::Via)
                .map_while(Via::parse)
                .collect();
            assert_eq!(m.vias().collect::<Vec<_>>(), fresh);
            assert_eq!(m.top_via(), fresh.first().copied());
            assert!(
                m.from_to.iter().all(Option::is_some),
                "validation kept From and To"
            );
            let parse = |k| NameAddr::parse(m.first_of_kind(k).unwrap());
            assert_eq!(m.from(), parse(HeaderKind::From));
            assert_eq!(m.to(), parse(HeaderKind::To));
        }
        // A lenient scan parses no Via ahead: the accessors parse them.
        let lenient = scan_lenient(msgs[0]).unwrap();
        assert_eq!(lenient.top_vias, [None, None]);
        assert_eq!(lenient.vias().count(), 3);
    }

    #[test]
    fn parse_into_reuses_a_message() {
        let mut m = Message::empty();
        parse_into(Bytes::from_static(SUBSCRIBE), &Limits::default(), &mut m).unwrap();
        assert_eq!(m.headers().len(), 10);
        let ok = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 SUBSCRIBE\r\n\r\n";
        parse_into(Bytes::from_static(ok), &Limits::default(), &mut m).unwrap();
        assert_eq!(m.status(), Some(200));
        assert_eq!(m.headers().len(), 5);
        assert_eq!(m.call_id(), Some(&b"x"[..]));
        assert_eq!(m.body(), b"");
    }

    #[test]
    fn malformed_inputs_are_refused_with_a_reason() {
        let cases: &[(&[u8], ParseError)] = &[
            (b"", ParseError::Empty),
            (b"\r\n\r\n", ParseError::Empty),
            (
                b"INVITE  sip:a@b SIP/2.0\r\n\r\n",
                ParseError::BadRequestLine,
            ),
            (b"INVITE sip:a@b SIP/7.0\r\n\r\n", ParseError::BadVersion),
            (
                b"SIP/2.0 4294967301 Huge\r\n\r\n",
                ParseError::BadStatusCode,
            ),
            (
                b"OPTIONS sip:a@b SIP/2.0\r\nno colon here\r\n\r\n",
                ParseError::BadHeaderLine,
            ),
            (
                b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h",
                ParseError::MissingEmptyLine,
            ),
            (b"OPTIONS sip:a@b SIP/2.0", ParseError::MissingEmptyLine),
            (
                b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n",
                ParseError::MissingHeader("From"),
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(
                &p(raw).unwrap_err(),
                want,
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        let bad_cseq = String::from_utf8(SUBSCRIBE.to_vec())
            .unwrap()
            .replace("314159 SUBSCRIBE", "314159 INVITE");
        assert_eq!(
            p(bad_cseq.as_bytes()).unwrap_err(),
            ParseError::CSeqMismatch
        );
        let bad_cl = String::from_utf8(SUBSCRIBE.to_vec())
            .unwrap()
            .replace("Length: 0", "Length: 10");
        assert_eq!(p(bad_cl.as_bytes()).unwrap_err(), ParseError::BodyTruncated);
        assert_eq!(
            ParseError::BadHeader("Via").reason(),
            "Bad Request - Malformed Via"
        );
    }
}
