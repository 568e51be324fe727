//! Responses the proxy generates itself (RFC 3261 §8.2.6, §16.3: 400, 483, 482,
//! ...). Via, From, To, Call-ID and CSeq are copied from the request byte for byte
//! (§8.2.6.2) so the client matches the response to its transaction however it
//! spelled them.

use bytes::Bytes;

use super::error::ParseError;
use super::header::HeaderKind;
use super::message::Message;
use super::parse::scan_lenient;
use super::values::Via;

/// Appends text that must stay on one line (a reason phrase, RFC 3261 §25.1, or a
/// header name): CR and LF become spaces.
fn push_reason(out: &mut Vec<u8>, reason: &str) {
    out.extend(
        reason
            .bytes()
            .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
}

/// A response to `req`: Via, From, To, Call-ID and CSeq lines copied byte for byte
/// in their original order; `to_tag` appended to To when given and To has no tag
/// (§8.2.6.2); then `extra` headers, Content-Length (always) and `body`.
pub fn response(
    req: &Message,
    status: u16,
    reason: &str,
    to_tag: Option<&[u8]>,
    extra: &[(&str, &[u8])],
    body: &[u8],
) -> Bytes {
    let eol = req.eol();
    let mut out = Vec::with_capacity(req.headers_end as usize + 64 + body.len());
    out.extend_from_slice(b"SIP/2.0 ");
    out.extend_from_slice(status.to_string().as_bytes());
    out.push(b' ');
    push_reason(&mut out, reason);
    out.extend_from_slice(eol);
    let to_has_tag = req.to().is_some_and(|t| t.tag.is_some());
    for h in req.headers() {
        match h.kind {
            HeaderKind::Via | HeaderKind::From | HeaderKind::CallId | HeaderKind::CSeq => {
                out.extend_from_slice(h.line(req));
            }
            HeaderKind::To => match to_tag {
                Some(tag) if !to_has_tag => {
                    let raw = req.raw();
                    out.extend_from_slice(&raw[h.line_start as usize..h.value_end as usize]);
                    out.extend_from_slice(b";tag=");
                    out.extend_from_slice(tag);
                    out.extend_from_slice(&raw[h.value_end as usize..h.line_end as usize]);
                }
                _ => out.extend_from_slice(h.line(req)),
            },
            _ => {}
        }
        // A lenient scan may end without a terminator on the last line.
        if !out.ends_with(b"\n") {
            out.extend_from_slice(eol);
        }
    }
    for (name, value) in extra {
        push_reason(&mut out, name);
        out.extend_from_slice(b": ");
        out.extend(
            value
                .iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
        out.extend_from_slice(eol);
    }
    out.extend_from_slice(b"Content-Length: ");
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.extend_from_slice(eol);
    out.extend_from_slice(eol);
    out.extend_from_slice(body);
    Bytes::from(out)
}

/// A `400` with `reason` for a request that failed [`super::parse`], built from
/// whatever Via/From/To/Call-ID/CSeq could be read. `None` when no response can be
/// addressed: the data is a response, or has no usable Via (RFC 3261 §18.2.2
/// routes responses by the top Via).
pub fn bad_request(data: &[u8], reason: &str) -> Option<Bytes> {
    error_response(data, 400, reason)
}

/// Like [`bad_request`] with the status and reason phrase the error calls for
/// (505 for an unsupported version, 513 for an oversized message).
pub fn refusal(data: &[u8], err: &ParseError) -> Option<Bytes> {
    let reason = match err.status() {
        505 => "Version Not Supported",
        513 => "Message Too Large",
        _ => err.reason(),
    };
    error_response(data, err.status(), reason)
}

fn error_response(data: &[u8], status: u16, reason: &str) -> Option<Bytes> {
    let req = scan_lenient(data)?;
    if !req.is_request() {
        return None;
    }
    let top = req.values_of_kind(HeaderKind::Via).next()?;
    // Broken parameters do not stop the reply (RFC 4475 §3.1.2.1 wants a 400 for
    // `Via: SIP/2.0/UDP 192.0.2.15;;,;,,`): sent-protocol and sent-by suffice.
    let sent_by = top.split(|&b| b == b';').next().unwrap_or_default();
    if Via::parse(top).is_none() && Via::parse(sent_by).is_none() {
        return None;
    }
    let tag = local_tag(&req);
    Some(response(
        &req,
        status,
        reason,
        Some(tag.as_bytes()),
        &[],
        b"",
    ))
}

/// A To tag for a stateless error response: derived from Call-ID, From tag and
/// branch, so a retransmitted request gets the same response (RFC 3261 §8.2.6.2
/// wants the same tag for the same request; the wire layer has no randomness).
fn local_tag(req: &Message) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: &[u8]| {
        for &x in b {
            h ^= u64::from(x);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    eat(req.call_id().unwrap_or_default());
    eat(req.from().and_then(|f| f.tag).unwrap_or_default());
    eat(req.top_via().and_then(|v| v.branch).unwrap_or_default());
    format!("pp{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::{parse, Limits};

    const REQ: &[u8] = b"SUBSCRIBE sip:bob@example.com SIP/2.0\r\n\
v: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport\r\n\
Via: SIP/2.0/UDP 192.0.2.7;branch=z9hG4bK2\r\n\
Max-Forwards: 70\r\n\
t: Bob <sip:bob@example.com>\r\n\
From: Alice <sip:alice@example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.example.com\r\n\
CSeq: 314159 SUBSCRIBE\r\n\
Event: presence\r\n\
Content-Length: 0\r\n\r\n";

    #[test]
    fn response_copies_the_transaction_headers_byte_for_byte() {
        let req = parse(Bytes::from_static(REQ), &Limits::default()).unwrap();
        let out = response(
            &req,
            202,
            "Accepted",
            Some(b"xyz"),
            &[("Expires", b"600")],
            b"",
        );
        let text = std::str::from_utf8(&out).unwrap();
        assert!(text.starts_with("SIP/2.0 202 Accepted\r\n"));
        assert!(text.contains("\r\nv: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport\r\nVia: SIP/2.0/UDP 192.0.2.7;branch=z9hG4bK2\r\n"));
        assert!(text.contains("\r\nt: Bob <sip:bob@example.com>;tag=xyz\r\n"));
        assert!(text.contains("\r\nCSeq: 314159 SUBSCRIBE\r\n"));
        assert!(text.ends_with("Expires: 600\r\nContent-Length: 0\r\n\r\n"));
        assert!(!text.contains("Event"));
        let resp = parse(out, &Limits::default()).unwrap();
        assert_eq!(resp.status(), Some(202));
        assert_eq!(resp.to().unwrap().tag, Some(&b"xyz"[..]));
    }

    #[test]
    fn bad_request_is_addressed_from_a_broken_request() {
        let broken = b"INVITE  sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKa\r\n\
From: <sip:a@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n\
this line is broken\r\n\r\n";
        let out = bad_request(broken, "Bad Request - Malformed Request-Line").unwrap();
        let resp = parse(out.clone(), &Limits::default()).unwrap();
        assert_eq!(resp.status(), Some(400));
        assert_eq!(
            resp.reason_phrase(),
            Some(&b"Bad Request - Malformed Request-Line"[..])
        );
        assert_eq!(resp.call_id(), Some(&b"c1"[..]));
        assert!(resp.to().unwrap().tag.is_some());
        assert_eq!(
            bad_request(broken, "x"),
            Some(out).map(|o| {
                let s = String::from_utf8(o.to_vec())
                    .unwrap()
                    .replace("Bad Request - Malformed Request-Line", "x");
                Bytes::from(s)
            })
        );
    }

    #[test]
    fn no_response_without_a_via_or_to_a_response() {
        assert!(bad_request(b"OPTIONS sip:a@b SIP/2.0\r\nFrom: <sip:a@b>\r\n\r\n", "x").is_none());
        assert!(bad_request(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\n\r\n", "x").is_none());
        assert!(bad_request(b"\x00\x01garbage", "x").is_none());
        let e = ParseError::BadVersion;
        let out = refusal(
            b"INVITE sip:a@b SIP/7.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n",
            &e,
        )
        .unwrap();
        assert!(out.starts_with(b"SIP/2.0 505 Version Not Supported\r\n"));
    }
}
