//! What a dialog keeps of the notifier's last NOTIFY when the watcher was shown it
//! as it came: the headers the proxy's own NOTIFYs copy (request line, From, To,
//! Call-ID, Contact, Event, Subscription-State ...), without the body and without
//! the routes `originate` replaces anyway (Route, Record-Route), so an allowed
//! dialog holds a few hundred bytes instead of the whole message (issue 7: under
//! 1 KiB per active subscription). The Via stays: a request without one does not
//! parse (RFC 3261 §8.1.1).
//!
//! The price: a watcher blocked and then allowed again before the notifier sends
//! anything new cannot be shown the real state by the proxy. It is not invented:
//! the proxy ends the watcher's subscription with `terminated;reason=deactivated`,
//! the watcher re-subscribes at once (RFC 6665 §4.2.2) and the notifier answers the
//! new subscription with its full state (RFC 6665 §4.2.1.2); see `originate`.

use bytes::Bytes;

use crate::sip::{Header, HeaderKind, Message};

/// What stands in for the notifier's Vias: `originate` removes every Via of the
/// template and pushes its own, so their text is never sent; one short Via keeps
/// the template a request that parses (RFC 3261 §8.1.1) for tens of bytes less
/// per dialog than the upstream's own Vias.
const VIA: &[u8] = b"Via: SIP/2.0/UDP 0.0.0.0;branch=z9hG4bK-template";

/// The NOTIFY's start line and headers with an empty body: a message that parses
/// like the original (`Content-Length: 0`, no Content-Type or Content-Encoding),
/// in one allocation of exactly its size (no slack, no shared header: issue 7).
pub(super) fn header_template(msg: &Message) -> Bytes {
    let raw: &[u8] = msg.raw();
    let start_end = msg.start_line_end as usize;
    let eol = msg.eol();
    let kept = |h: &Header| {
        !matches!(
            h.kind(),
            HeaderKind::Via
                | HeaderKind::Route
                | HeaderKind::RecordRoute
                | HeaderKind::ContentType
                | HeaderKind::ContentLength
                | HeaderKind::ContentEncoding
        )
    };
    let mut via = msg.headers().iter().any(|h| h.kind() == HeaderKind::Via);
    let tail = b"Content-Length: 0".len() + 2 * eol.len();
    let len = start_end
        + msg
            .headers()
            .iter()
            .map(|h| match h.kind() {
                HeaderKind::Via if via => {
                    via = false;
                    VIA.len() + eol.len()
                }
                _ if kept(h) => h.line(msg).len(),
                _ => 0,
            })
            .sum::<usize>()
        + tail;
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&raw[..start_end]);
    let mut via = true;
    for h in msg.headers() {
        if h.kind() == HeaderKind::Via && via {
            // In the first Via's place, so the headers keep their order.
            via = false;
            out.extend_from_slice(VIA);
            out.extend_from_slice(eol);
        } else if kept(h) {
            out.extend_from_slice(h.line(msg));
        }
    }
    out.extend_from_slice(b"Content-Length: 0");
    out.extend_from_slice(eol);
    out.extend_from_slice(eol);
    debug_assert_eq!(out.len(), len);
    Bytes::from(out.into_boxed_slice())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::{parse, Limits};

    const NOTIFY: &str = "NOTIFY sip:bob@192.0.2.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKx\r\nMax-Forwards: 69\r\nRoute: <sip:192.0.2.1;lr>\r\nFrom: <sip:alice@example.com>;tag=n1\r\nTo: <sip:bob@example.com>;tag=w1\r\nCall-ID: c1\r\nCSeq: 4 NOTIFY\r\nContact: <sip:192.0.2.9>\r\nEvent: presence\r\nSubscription-State: active;expires=600\r\nContent-Type: application/pidf+xml\r\nContent-Length: 5\r\n\r\nhello";

    #[test]
    fn keeps_the_dialog_headers_and_drops_the_body() {
        let msg = parse(Bytes::from_static(NOTIFY.as_bytes()), &Limits::default()).unwrap();
        let t = parse(header_template(&msg), &Limits::default()).unwrap();
        assert_eq!(t.request_uri(), msg.request_uri());
        assert_eq!(t.from().unwrap().tag, Some(&b"n1"[..]));
        assert_eq!(t.to().unwrap().tag, Some(&b"w1"[..]));
        assert_eq!(t.call_id(), Some(&b"c1"[..]));
        assert_eq!(t.cseq().unwrap().0, 4);
        assert_eq!(t.header("Contact"), msg.header("Contact"));
        assert_eq!(t.header("Event"), Some(&b"presence"[..]));
        assert_eq!(
            t.header("Subscription-State"),
            msg.header("Subscription-State")
        );
        assert!(t.body().is_empty());
        assert!(t.content_type().is_none());
        assert!(t.routes().next().is_none());
        assert_eq!(t.vias().count(), 1);
    }

    #[test]
    fn one_short_via_stands_in_for_the_notifiers() {
        let two = NOTIFY.replace(
            "Max-Forwards: 69\r\n",
            "Via: SIP/2.0/UDP 192.0.2.8;branch=z9hG4bKy\r\nMax-Forwards: 69\r\n",
        );
        let msg = parse(Bytes::from(two.into_bytes()), &Limits::default()).unwrap();
        assert_eq!(msg.vias().count(), 2);
        let raw = header_template(&msg);
        let text = std::str::from_utf8(&raw).unwrap();
        assert!(!text.contains("z9hG4bKx") && !text.contains("z9hG4bKy"));
        assert!(
            text.starts_with("NOTIFY sip:bob@192.0.2.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 0.0.0.0;")
        );
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
        let t = parse(raw, &Limits::default()).unwrap();
        assert_eq!(t.vias().count(), 1);
        assert_eq!(t.header("Max-Forwards"), Some(&b"69"[..]));
    }
}
