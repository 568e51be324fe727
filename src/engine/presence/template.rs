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

use crate::sip::{HeaderKind, Message, SubscriptionState};

/// What stands in for the notifier's Vias: `originate` removes every Via of the
/// template and pushes its own, so their text is never sent; one short Via (a
/// branch is optional, RFC 3261 §20.42) keeps the template a request that parses
/// (RFC 3261 §8.1.1) for tens of bytes less per dialog than the upstream's Vias.
const VIA: &[u8] = b"Via: SIP/2.0/UDP 0.0.0.0";

/// One header line as kept in the template (`None`: left out).
#[derive(Clone, Copy)]
enum Kept<'a> {
    /// The line as it came.
    Line(&'a [u8]),
    /// The placeholder Via.
    Via,
    /// The first Subscription-State cut to its name and state word: `originate`
    /// reads only the word (pending stays pending) and always sets the value anew.
    State(&'a [u8], &'a [u8]),
}

impl Kept<'_> {
    fn len(&self, eol: &[u8]) -> usize {
        match self {
            Kept::Line(l) => l.len(),
            Kept::Via => VIA.len() + eol.len(),
            Kept::State(name, word) => name.len() + word.len() + eol.len(),
        }
    }

    fn write(&self, eol: &[u8], out: &mut Vec<u8>) {
        match self {
            Kept::Line(l) => out.extend_from_slice(l),
            Kept::Via => {
                out.extend_from_slice(VIA);
                out.extend_from_slice(eol);
            }
            Kept::State(name, word) => {
                out.extend_from_slice(name);
                out.extend_from_slice(word);
                out.extend_from_slice(eol);
            }
        }
    }
}

/// The first Subscription-State as kept: cut to its name and state word, or whole
/// when it does not parse (as `subscription_state()` reads it). Worked out once
/// per template, not once per pass over the headers.
fn kept_state(msg: &Message) -> Option<Kept<'_>> {
    let h = msg
        .headers()
        .iter()
        .find(|h| h.kind() == HeaderKind::SubscriptionState)?;
    Some(match SubscriptionState::parse(h.value(msg)) {
        Some(s) => Kept::State(
            &msg.raw()[h.line_start as usize..h.value_start as usize],
            s.state,
        ),
        None => Kept::Line(h.line(msg)),
    })
}

/// The lines of the template, in the message's order; `state` is
/// [`kept_state`]'s answer, standing in for the first Subscription-State.
fn kept<'a>(msg: &'a Message, state: Option<Kept<'a>>) -> impl Iterator<Item = Kept<'a>> + 'a {
    let (mut via, mut state) = (true, state);
    msg.headers().iter().filter_map(move |h| match h.kind() {
        HeaderKind::Via if via => {
            // In the first Via's place, so the headers keep their order.
            via = false;
            Some(Kept::Via)
        }
        HeaderKind::Via
        | HeaderKind::Route
        | HeaderKind::RecordRoute
        | HeaderKind::ContentType
        | HeaderKind::ContentLength
        | HeaderKind::ContentEncoding => None,
        HeaderKind::SubscriptionState if state.is_some() => state.take(),
        _ => Some(Kept::Line(h.line(msg))),
    })
}

/// The NOTIFY's start line and headers with an empty body: a message that parses
/// like the original (`Content-Length: 0`, no Content-Type or Content-Encoding),
/// in one allocation of exactly its size (no slack, no shared header: issue 7).
pub(super) fn header_template(msg: &Message) -> Box<[u8]> {
    let raw: &[u8] = msg.raw();
    let start_end = msg.start_line_end as usize;
    let eol = msg.eol();
    const CL: &[u8] = b"Content-Length: 0";
    let state = kept_state(msg);
    let len =
        start_end + kept(msg, state).map(|k| k.len(eol)).sum::<usize>() + CL.len() + 2 * eol.len();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&raw[..start_end]);
    for k in kept(msg, state) {
        k.write(eol, &mut out);
    }
    out.extend_from_slice(CL);
    out.extend_from_slice(eol);
    out.extend_from_slice(eol);
    debug_assert_eq!(out.len(), len);
    out.into_boxed_slice()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::{parse, Limits};
    use bytes::Bytes;

    const NOTIFY: &str = "NOTIFY sip:bob@192.0.2.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKx\r\nMax-Forwards: 69\r\nRoute: <sip:192.0.2.1;lr>\r\nFrom: <sip:alice@example.com>;tag=n1\r\nTo: <sip:bob@example.com>;tag=w1\r\nCall-ID: c1\r\nCSeq: 4 NOTIFY\r\nContact: <sip:192.0.2.9>\r\nEvent: presence\r\nSubscription-State: active;expires=600\r\nContent-Type: application/pidf+xml\r\nContent-Length: 5\r\n\r\nhello";

    #[test]
    fn keeps_the_dialog_headers_and_drops_the_body() {
        let msg = parse(Bytes::from_static(NOTIFY.as_bytes()), &Limits::default()).unwrap();
        let t = parse(Bytes::from(header_template(&msg)), &Limits::default()).unwrap();
        assert_eq!(t.request_uri(), msg.request_uri());
        assert_eq!(t.from().unwrap().tag, Some(&b"n1"[..]));
        assert_eq!(t.to().unwrap().tag, Some(&b"w1"[..]));
        assert_eq!(t.call_id(), Some(&b"c1"[..]));
        assert_eq!(t.cseq().unwrap().0, 4);
        assert_eq!(t.header("Contact"), msg.header("Contact"));
        assert_eq!(t.header("Event"), Some(&b"presence"[..]));
        assert_eq!(t.header("Subscription-State"), Some(&b"active"[..]));
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
        assert!(text
            .starts_with("NOTIFY sip:bob@192.0.2.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 0.0.0.0\r\n"));
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
        let t = parse(Bytes::from(raw), &Limits::default()).unwrap();
        assert_eq!(t.vias().count(), 1);
        assert_eq!(t.header("Max-Forwards"), Some(&b"69"[..]));
    }
}
