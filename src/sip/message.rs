//! A parsed message: the received bytes plus an inline index of spans, and the
//! typed accessors the engine reads.

use bytes::Bytes;

use super::edit::Editor;
use super::header::{split_commas, trim_lws, HeaderKind};
use super::index::HeaderIndex;
use super::method::Method;
use super::spans::{NameAddrSpans, ViaSpans};
use super::values::{self, Event, NameAddr, SubscriptionState, Via};

/// Capacity of the inline header index. [`super::Limits::max_headers`] above this
/// is treated as this value: the index never allocates.
pub const MAX_HEADERS_CAPACITY: usize = 96;

/// Largest message the parser takes, in bytes: the largest UDP payload, and the
/// ceiling the configuration allows for `sip.limits.max_message`. It lets a
/// [`Header`] hold 16-bit offsets.
pub const MAX_MESSAGE_SPAN: usize = u16::MAX as usize;

/// One header line: spans into [`Message::raw`]. A folded header is one entry whose
/// value span includes the folding CRLF + WSP.
///
/// Offsets are 16-bit (a message is at most [`MAX_MESSAGE_SPAN`] bytes): an entry
/// is 12 bytes instead of 24, so the inline index of a [`Message`] is 1.1 KB, not
/// 2.3 KB, and moving a parsed message copies half as much.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub(crate) line_start: u16,
    pub(crate) name_end: u16,
    pub(crate) value_start: u16,
    pub(crate) value_end: u16,
    /// Just past the line terminator (CRLF or bare LF) of the last physical line.
    pub(crate) line_end: u16,
    pub(crate) kind: HeaderKind,
}

impl Header {
    /// The header name as written (`v`, `Via`, `VIA`, ...).
    pub fn name<'a>(&self, msg: &'a Message) -> &'a [u8] {
        &msg.raw[self.line_start as usize..self.name_end as usize]
    }

    /// The value as written, trimmed; folding CRLFs stay inside.
    pub fn value<'a>(&self, msg: &'a Message) -> &'a [u8] {
        &msg.raw[self.value_start as usize..self.value_end as usize]
    }

    /// The whole line(s) including the terminator.
    pub fn line<'a>(&self, msg: &'a Message) -> &'a [u8] {
        &msg.raw[self.line_start as usize..self.line_end as usize]
    }

    pub fn kind(&self) -> HeaderKind {
        self.kind
    }
}

/// The start line as spans.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StartLine {
    Request {
        method: Method,
        method_end: u32,
        uri_start: u32,
        uri_end: u32,
    },
    Response {
        status: u16,
        reason_start: u32,
        reason_end: u32,
    },
}

/// A parsed SIP message. Cloning copies a [`Bytes`] handle and the inline index;
/// the message bytes are shared.
#[derive(Clone)]
pub struct Message {
    pub(crate) raw: Bytes,
    pub(crate) start: StartLine,
    /// Just past the start line's terminator.
    pub(crate) start_line_end: u32,
    pub(crate) headers: HeaderIndex,
    /// Where the empty line that ends the headers begins: new headers go here.
    pub(crate) headers_end: u32,
    pub(crate) body_start: u32,
    pub(crate) body_end: u32,
    /// The message ends its lines with bare LF (some stacks and hand-written
    /// files do); lines the editor adds follow suit.
    pub(crate) lf_only: bool,
    /// The data ended after the last header line without the empty line.
    pub(crate) blank_missing: bool,
    /// The first two Via values, parsed once by validation ([`super::parse_into`]):
    /// the engine reads the top one several times per message and a response's
    /// next one too, and a Via parse is about 1 100 instructions
    /// (`benches/instructions.sh`). `None` where not parsed (a lenient scan).
    pub(crate) top_vias: [Option<ViaSpans>; 2],
    /// From and To, parsed once by validation, for the same reason.
    pub(crate) from_to: [Option<NameAddrSpans>; 2],
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("start", &self.start)
            .field("headers", &self.headers.len())
            .field("len", &self.raw.len())
            .finish()
    }
}

impl Message {
    /// A message with no start line, headers or body, for [`super::parse_into`]
    /// to fill: a caller that keeps one in its own frame has the message built
    /// where it lives instead of copied out of a returned `Result`.
    pub fn empty() -> Message {
        Message {
            raw: Bytes::new(),
            start: StartLine::Response {
                status: 0,
                reason_start: 0,
                reason_end: 0,
            },
            start_line_end: 0,
            headers: HeaderIndex::new(),
            headers_end: 0,
            body_start: 0,
            body_end: 0,
            lf_only: false,
            blank_missing: false,
            top_vias: [None; 2],
            from_to: [None; 2],
        }
    }

    /// The message bytes, from the start line to the end of the body. Bytes past
    /// Content-Length in a datagram (RFC 3261 §18.3, RFC 4475 §3.1.1.8) are not part
    /// of it.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    pub fn method(&self) -> Option<Method> {
        match self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    pub fn method_bytes(&self) -> Option<&[u8]> {
        match self.start {
            StartLine::Request { method_end, .. } => Some(&self.raw[..method_end as usize]),
            StartLine::Response { .. } => None,
        }
    }

    pub fn request_uri(&self) -> Option<&[u8]> {
        match self.start {
            StartLine::Request {
                uri_start, uri_end, ..
            } => Some(&self.raw[uri_start as usize..uri_end as usize]),
            StartLine::Response { .. } => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { status, .. } => Some(status),
            StartLine::Request { .. } => None,
        }
    }

    pub fn reason_phrase(&self) -> Option<&[u8]> {
        match self.start {
            StartLine::Response {
                reason_start,
                reason_end,
                ..
            } => Some(&self.raw[reason_start as usize..reason_end as usize]),
            StartLine::Request { .. } => None,
        }
    }

    /// Every header line in order.
    pub fn headers(&self) -> &[Header] {
        self.headers.as_slice()
    }

    /// The lines of one header, compact and long forms alike.
    pub(crate) fn lines_of<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a Header> + 'a {
        let key = NameKey::new(name);
        self.headers().iter().filter(move |h| key.matches(h, self))
    }

    pub(crate) fn lines_of_kind(&self, kind: HeaderKind) -> impl Iterator<Item = &Header> + '_ {
        self.headers().iter().filter(move |h| h.kind == kind)
    }

    pub(crate) fn first_of_kind(&self, kind: HeaderKind) -> Option<&[u8]> {
        self.lines_of_kind(kind).next().map(|h| h.value(self))
    }

    /// The value of the first line of a header (names case-insensitive; compact
    /// forms `i f t v m l c k s o u e r x` equal their long names), trimmed. The
    /// whole line's value is returned, commas included; use [`Message::header_values`]
    /// for list elements. A folded value keeps its CRLF + WSP inside the slice; every
    /// accessor here treats them as a space (RFC 3261 §7.3.1), and
    /// [`Message::header_unfolded`] gives a copy with them replaced.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.lines_of(name).next().map(|h| h.value(self))
    }

    /// Like [`Message::header`] with each folding run (CRLF/LF + WSP) replaced by a
    /// single space; borrows when there was no folding.
    pub fn header_unfolded(&self, name: &str) -> Option<std::borrow::Cow<'_, [u8]>> {
        self.header(name).map(values::unfold)
    }

    /// All values of a header across lines, split on top-level commas (respecting
    /// quoted strings and `<...>`) for list-valued headers (RFC 3261 §7.3.1); empty
    /// elements are skipped.
    pub fn header_values<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a [u8]> + 'a {
        let kind = HeaderKind::classify(name.as_bytes());
        self.lines_of(name)
            .flat_map(move |h| split_values(h.value(self), kind.is_list()))
    }

    pub(crate) fn values_of_kind(&self, kind: HeaderKind) -> impl Iterator<Item = &[u8]> + '_ {
        self.lines_of_kind(kind)
            .flat_map(move |h| split_values(h.value(self), kind.is_list()))
    }

    /// The body: exactly Content-Length bytes after the empty line, or the rest of
    /// the datagram when Content-Length is absent (RFC 3261 §18.3).
    pub fn body(&self) -> &[u8] {
        &self.raw[self.body_start as usize..self.body_end as usize]
    }

    pub fn call_id(&self) -> Option<&[u8]> {
        self.first_of_kind(HeaderKind::CallId)
    }

    /// CSeq number and method token (RFC 3261 §20.16).
    pub fn cseq(&self) -> Option<(u32, &[u8])> {
        values::parse_cseq(self.first_of_kind(HeaderKind::CSeq)?)
    }

    pub fn from(&self) -> Option<NameAddr<'_>> {
        match self.from_to[0] {
            Some(n) => Some(n.get(&self.raw)),
            None => NameAddr::parse(self.first_of_kind(HeaderKind::From)?),
        }
    }

    pub fn to(&self) -> Option<NameAddr<'_>> {
        match self.from_to[1] {
            Some(n) => Some(n.get(&self.raw)),
            None => NameAddr::parse(self.first_of_kind(HeaderKind::To)?),
        }
    }

    /// The topmost Via value (the first element of the first Via line).
    pub fn top_via(&self) -> Option<Via<'_>> {
        self.vias().next()
    }

    /// Every Via value, topmost first; a malformed value ends the iteration.
    pub fn vias(&self) -> impl Iterator<Item = Via<'_>> {
        let parsed = self.top_vias.iter().map_while(|v| *v);
        let skip = parsed.clone().count();
        parsed.map(|v| v.get(&self.raw)).chain(
            self.values_of_kind(HeaderKind::Via)
                .skip(skip)
                .map_while(Via::parse),
        )
    }

    /// Max-Forwards (RFC 3261 §20.22); `None` when absent or not a number.
    pub fn max_forwards(&self) -> Option<u32> {
        values::parse_u32(self.first_of_kind(HeaderKind::MaxForwards)?)
    }

    /// Each Route URI (the part inside `<>`), topmost first.
    pub fn routes(&self) -> impl Iterator<Item = &[u8]> {
        self.values_of_kind(HeaderKind::Route)
            .filter_map(|v| NameAddr::parse(v).map(|n| n.uri))
    }

    /// Each Record-Route URI, topmost first.
    pub fn record_routes(&self) -> impl Iterator<Item = &[u8]> {
        self.values_of_kind(HeaderKind::RecordRoute)
            .filter_map(|v| NameAddr::parse(v).map(|n| n.uri))
    }

    /// The URI of the first Contact; `None` for `Contact: *` or when absent.
    pub fn contact_uri(&self) -> Option<&[u8]> {
        let v = self.values_of_kind(HeaderKind::Contact).next()?;
        if v == b"*" {
            return None;
        }
        NameAddr::parse(v).map(|n| n.uri)
    }

    /// Event package and id (RFC 6665 §8.2.1; compact `o`).
    pub fn event(&self) -> Option<Event<'_>> {
        Event::parse(self.first_of_kind(HeaderKind::Event)?)
    }

    /// Expires in seconds; `None` when absent or not a delta-seconds that fits in
    /// 32 bits.
    pub fn expires(&self) -> Option<u32> {
        values::parse_u32(self.first_of_kind(HeaderKind::Expires)?)
    }

    pub fn subscription_state(&self) -> Option<SubscriptionState<'_>> {
        SubscriptionState::parse(self.first_of_kind(HeaderKind::SubscriptionState)?)
    }

    /// The media type (`type/subtype`) without parameters, trimmed; compare it
    /// case-insensitively (RFC 3261 §7.3.1). [`Message::header`]`("Content-Type")`
    /// gives the whole value.
    pub fn content_type(&self) -> Option<&[u8]> {
        let v = self.first_of_kind(HeaderKind::ContentType)?;
        let end = v.iter().position(|&b| b == b';').unwrap_or(v.len());
        let t = trim_lws(&v[..end]);
        (!t.is_empty()).then_some(t)
    }

    /// The URI of the first P-Asserted-Identity (RFC 3325 §9.1).
    pub fn p_asserted_identity(&self) -> Option<&[u8]> {
        let v = self.values_of_kind(HeaderKind::PAssertedIdentity).next()?;
        NameAddr::parse(v).map(|n| n.uri)
    }

    /// Starts a splicing edit of this message.
    pub fn edit(&self) -> Editor<'_> {
        Editor::new(self)
    }

    /// The line terminator the message uses, for lines the editor adds.
    pub(crate) fn eol(&self) -> &'static [u8] {
        if self.lf_only {
            b"\n"
        } else {
            b"\r\n"
        }
    }
}

fn split_values(value: &[u8], list: bool) -> impl Iterator<Item = &[u8]> {
    let whole = (!list).then_some(value).filter(|v| !v.is_empty());
    let parts = list.then(|| split_commas(value)).into_iter().flatten();
    whole.into_iter().chain(
        parts
            .map(move |(s, e)| &value[s..e])
            .filter(|v| !v.is_empty()),
    )
}

/// A header name to look up, owned without allocating for names of usual length so
/// the lookup iterators need not borrow the caller's `&str`.
enum NameKey {
    Kind(HeaderKind),
    Short([u8; 48], usize),
    Long(Vec<u8>),
}

impl NameKey {
    fn new(name: &str) -> NameKey {
        let kind = HeaderKind::classify(name.as_bytes());
        if kind != HeaderKind::Other {
            return NameKey::Kind(kind);
        }
        let b = name.as_bytes();
        if b.len() <= 48 {
            let mut buf = [0u8; 48];
            buf[..b.len()].copy_from_slice(b);
            NameKey::Short(buf, b.len())
        } else {
            NameKey::Long(b.to_vec())
        }
    }

    fn matches(&self, h: &Header, msg: &Message) -> bool {
        match self {
            NameKey::Kind(k) => h.kind == *k,
            NameKey::Short(buf, len) => {
                h.kind == HeaderKind::Other && h.name(msg).eq_ignore_ascii_case(&buf[..*len])
            }
            NameKey::Long(v) => h.kind == HeaderKind::Other && h.name(msg).eq_ignore_ascii_case(v),
        }
    }
}
