//! Parsed values kept as offsets into the message they came from: validation
//! parses every Via, From and To anyway (RFC 4475 §3.1.2), and keeping the first
//! ones spares the engine parsing them again each time it reads them
//! ([`super::Message::vias`], [`super::Message::from`], [`super::Message::to`]).
//! Offsets rather than slices, so the message that owns its bytes can hold them.

use super::values::{NameAddr, Via};

/// `[start, end)` of a value inside a message's bytes; 16 bits, as a message is at
/// most [`super::message::MAX_MESSAGE_SPAN`] bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span(u16, u16);

impl Span {
    /// Where `s` lies in `raw`; `None` when it is not inside it. An empty slice
    /// (a parser's `b""`) is an empty span.
    fn of(raw: &[u8], s: &[u8]) -> Option<Span> {
        if s.is_empty() {
            return Some(Span(0, 0));
        }
        let start = (s.as_ptr() as usize).checked_sub(raw.as_ptr() as usize)?;
        let end = start.checked_add(s.len())?;
        (end <= raw.len()).then_some(Span(start as u16, end as u16))
    }

    /// [`Span::of`] for an optional part: `None` only when the part is outside.
    fn of_opt(raw: &[u8], s: Option<&[u8]>) -> Option<Option<Span>> {
        match s {
            Some(s) => Span::of(raw, s).map(Some),
            None => Some(None),
        }
    }

    fn get(self, raw: &[u8]) -> &[u8] {
        &raw[self.0 as usize..self.1 as usize]
    }
}

/// A parsed [`NameAddr`] kept as offsets into the message it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NameAddrSpans {
    display: Option<Span>,
    uri: Span,
    tag: Option<Span>,
    params: Span,
}

impl NameAddrSpans {
    /// `n`'s offsets in `raw`; `None` when a part of it is not inside `raw`.
    pub(crate) fn of(raw: &[u8], n: &NameAddr<'_>) -> Option<NameAddrSpans> {
        Some(NameAddrSpans {
            display: Span::of_opt(raw, n.display)?,
            uri: Span::of(raw, n.uri)?,
            tag: Span::of_opt(raw, n.tag)?,
            params: Span::of(raw, n.params)?,
        })
    }

    pub(crate) fn get<'a>(&self, raw: &'a [u8]) -> NameAddr<'a> {
        NameAddr {
            display: self.display.map(|s| s.get(raw)),
            uri: self.uri.get(raw),
            tag: self.tag.map(|s| s.get(raw)),
            params: self.params.get(raw),
        }
    }
}

/// A parsed [`Via`] kept as offsets into the message it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ViaSpans {
    transport: Span,
    host: Span,
    port: Option<u16>,
    branch: Option<Span>,
    received: Option<Span>,
    rport: Option<Option<u16>>,
    params: Span,
}

impl ViaSpans {
    /// `v`'s offsets in `raw`; `None` when a part of it is not inside `raw`.
    pub(crate) fn of(raw: &[u8], v: &Via<'_>) -> Option<ViaSpans> {
        Some(ViaSpans {
            transport: Span::of(raw, v.transport)?,
            host: Span::of(raw, v.host)?,
            port: v.port,
            branch: Span::of_opt(raw, v.branch)?,
            received: Span::of_opt(raw, v.received)?,
            rport: v.rport,
            params: Span::of(raw, v.params)?,
        })
    }

    pub(crate) fn get<'a>(&self, raw: &'a [u8]) -> Via<'a> {
        Via {
            transport: self.transport.get(raw),
            host: self.host.get(raw),
            port: self.port,
            branch: self.branch.map(|s| s.get(raw)),
            received: self.received.map(|s| s.get(raw)),
            rport: self.rport,
            params: self.params.get(raw),
        }
    }
}
