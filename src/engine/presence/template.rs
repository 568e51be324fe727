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

use crate::sip::{HeaderKind, Message};

/// The NOTIFY's start line and headers with an empty body: a message that parses
/// like the original (`Content-Length: 0`, no Content-Type or Content-Encoding).
pub(super) fn header_template(msg: &Message) -> Bytes {
    let raw: &[u8] = msg.raw();
    let start_end = msg.start_line_end as usize;
    let eol = msg.eol();
    let mut out = Vec::with_capacity(msg.headers_end as usize + 24);
    out.extend_from_slice(&raw[..start_end]);
    for h in msg.headers() {
        if matches!(
            h.kind(),
            HeaderKind::Route
                | HeaderKind::RecordRoute
                | HeaderKind::ContentType
                | HeaderKind::ContentLength
                | HeaderKind::ContentEncoding
        ) {
            continue;
        }
        out.extend_from_slice(h.line(msg));
    }
    out.extend_from_slice(b"Content-Length: 0");
    out.extend_from_slice(eol);
    out.extend_from_slice(eol);
    Bytes::from(out)
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
}
