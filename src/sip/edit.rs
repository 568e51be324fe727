//! The splicing editor. A proxy changes a handful of spans (RFC 3261 §16.6: Via,
//! Max-Forwards, Record-Route, Route, the Request-URI) and must forward every other
//! byte as it came; the editor records replacements of spans of the original
//! message and writes the result in one pass.

use bytes::Bytes;

use super::header::{split_commas, HeaderKind};
use super::message::Message;

/// `n` in decimal, in a fixed buffer: the digits are `buf[start..]`. Without the
/// formatter, whose machinery costs several hundred instructions per number.
pub(crate) fn decimal(n: u64) -> ([u8; 20], usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    (digits, i)
}

fn push_decimal(out: &mut Vec<u8>, n: u32) {
    let (digits, start) = decimal(u64::from(n));
    out.extend_from_slice(&digits[start..]);
}

/// What an edit is for, so setting the same thing twice replaces the first edit.
#[derive(Clone, PartialEq, Eq, Debug)]
enum Key {
    None,
    ViaPop,
    RoutePop,
    TopViaParams,
    MaxForwards,
    RequestUri,
    CSeq,
    /// Replacing or removing one existing header line (index in the header index).
    Line(usize),
    /// Appending a header that was absent (lower-cased name).
    Append(String),
}

#[derive(Clone, Debug)]
struct Edit {
    start: u32,
    end: u32,
    /// Range of the replacement in `Editor::buf`.
    ins: (u32, u32),
    /// Tie-break among insertions at the same offset (lower first).
    order: i64,
    key: Key,
}

impl Edit {
    fn is_insert(&self) -> bool {
        self.start == self.end
    }
}

/// Collects edits of one [`Message`]; [`Editor::finish`] writes the new message.
/// Edits refer to the original message: popping a Via and then setting the top
/// Via's parameters edits the Via that was on top when the message arrived.
/// Content-Length in the output always equals the body length (added when absent:
/// DESIGN.md wants it on every message the proxy writes, also `0`).
pub struct Editor<'m> {
    msg: &'m Message,
    edits: Vec<Edit>,
    buf: Vec<u8>,
    seq: i64,
    via_popped: usize,
    route_popped: usize,
    body: Option<(u32, u32)>,
}

impl<'m> Editor<'m> {
    pub(crate) fn new(msg: &'m Message) -> Editor<'m> {
        Editor {
            msg,
            edits: Vec::with_capacity(8),
            buf: Vec::with_capacity(256),
            seq: 0,
            via_popped: 0,
            route_popped: 0,
            body: None,
        }
    }

    /// Appends `n` in decimal to the replacement buffer; returns its range.
    fn stash_number(&mut self, prefix: &[u8], n: u32, suffix: &[u8]) -> (u32, u32) {
        let s = self.buf.len();
        self.buf.extend_from_slice(prefix);
        push_decimal(&mut self.buf, n);
        self.buf.extend_from_slice(suffix);
        (s as u32, self.buf.len() as u32)
    }

    /// Appends `prefix value suffix` for a header line or start-line element: a CR
    /// or LF inside `value` becomes a space, so no caller can split a line and
    /// inject a header.
    fn stash_line(&mut self, prefix: &[u8], value: &[u8], suffix: &[u8]) -> (u32, u32) {
        self.stash_line_parts(prefix, &[value], suffix)
    }

    /// [`stash_line`](Self::stash_line) of a value given in pieces, each copied
    /// once, without joining them first.
    fn stash_line_parts(&mut self, prefix: &[u8], value: &[&[u8]], suffix: &[u8]) -> (u32, u32) {
        let s = self.buf.len();
        self.buf.extend_from_slice(prefix);
        for part in value {
            self.buf.extend(
                part.iter()
                    .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
            );
        }
        self.buf.extend_from_slice(suffix);
        (s as u32, self.buf.len() as u32)
    }

    fn stash(&mut self, parts: &[&[u8]]) -> (u32, u32) {
        let s = self.buf.len();
        for p in parts {
            self.buf.extend_from_slice(p);
        }
        (s as u32, self.buf.len() as u32)
    }

    /// Records an edit, replacing earlier edits with the same key.
    fn add(&mut self, start: u32, end: u32, ins: (u32, u32), key: Key, reverse: bool) {
        if key != Key::None {
            self.drop_key(&key);
        }
        self.insert_edit(start, end, ins, key, reverse);
    }

    /// A new edit replaces any earlier edit lying inside the span it replaces; an
    /// edit inside a span an earlier edit already replaces is moot and dropped.
    fn insert_edit(&mut self, start: u32, end: u32, ins: (u32, u32), key: Key, reverse: bool) {
        self.seq += 1;
        let order = if reverse { -self.seq } else { self.seq };
        let inside_existing = |e: &Edit| {
            e.end > e.start
                && e.start <= start
                && end <= e.end
                && (e.start, e.end) != (start, end)
                && !(start == end && (start == e.start || start == e.end))
        };
        if self.edits.iter().any(inside_existing) {
            return;
        }
        if end > start {
            self.edits.retain(|e| {
                let inside = start <= e.start && e.end <= end;
                let at_edge = e.is_insert() && (e.start == start || e.start == end);
                !inside || at_edge
            });
        }
        self.edits.push(Edit {
            start,
            end,
            ins,
            order,
            key,
        });
    }

    fn drop_key(&mut self, key: &Key) {
        self.edits.retain(|e| &e.key != key);
    }

    fn first_line_start(&self, kind: HeaderKind) -> Option<u32> {
        self.msg
            .lines_of_kind(kind)
            .next()
            .map(|h| u32::from(h.line_start))
    }

    /// Inserts a new topmost `Via: <value>` line (RFC 3261 §16.6 step 8). Pushing
    /// twice puts the second on top.
    pub fn push_via(&mut self, value: &[u8]) -> &mut Self {
        self.push_via_parts(&[value])
    }

    /// [`push_via`](Self::push_via) of a value given in pieces (a proxy's own Via
    /// is its sent-by, branch and parameters): written straight into the edit
    /// buffer, with no string built for it per message.
    pub fn push_via_parts(&mut self, value: &[&[u8]]) -> &mut Self {
        let at = self
            .first_line_start(HeaderKind::Via)
            .unwrap_or(self.msg.start_line_end);
        let eol = self.msg.eol();
        let ins = self.stash_line_parts(b"Via: ", value, eol);
        self.add(at, at, ins, Key::None, true);
        self
    }

    /// Sets `received` and fills `rport` on the topmost Via (RFC 3261 §18.2.1,
    /// RFC 3581 §4), keeping every other parameter as written. A parameter that is
    /// absent is appended.
    pub fn set_top_via_params(&mut self, received: Option<&[u8]>, rport: Option<u16>) -> &mut Self {
        if received.is_none() && rport.is_none() {
            return self;
        }
        let Some(h) = self.msg.lines_of_kind(HeaderKind::Via).next() else {
            return self;
        };
        let value = h.value(self.msg);
        let Some((s, e)) = split_commas(value).find(|(s, e)| e > s) else {
            return self;
        };
        let elem = &value[s..e];
        let port = rport.map(|p| decimal(u64::from(p)));
        let rport_text = port.as_ref().map(|(digits, start)| &digits[*start..]);
        let mut out = Vec::with_capacity(elem.len() + 48);
        let mut pieces = elem.split(|&b| b == b';');
        out.extend_from_slice(pieces.next().unwrap_or_default());
        let (mut saw_received, mut saw_rport) = (false, false);
        for piece in pieces {
            out.push(b';');
            let name_end = piece.iter().position(|&b| b == b'=').unwrap_or(piece.len());
            let name = super::header::trim_lws(&piece[..name_end]);
            if name.eq_ignore_ascii_case(b"received") && received.is_some() {
                saw_received = true;
                out.extend_from_slice(b"received=");
                out.extend_from_slice(received.unwrap_or_default());
            } else if name.eq_ignore_ascii_case(b"rport") && rport_text.is_some() {
                saw_rport = true;
                out.extend_from_slice(b"rport=");
                out.extend_from_slice(rport_text.unwrap_or_default());
            } else {
                out.extend_from_slice(piece);
            }
        }
        if let (Some(r), false) = (received, saw_received) {
            out.extend_from_slice(b";received=");
            out.extend_from_slice(r);
        }
        if let (Some(p), false) = (rport_text, saw_rport) {
            out.extend_from_slice(b";rport=");
            out.extend_from_slice(p);
        }
        let base = u32::from(h.value_start);
        let ins = self.stash_line(b"", &out, b"");
        self.add(
            base + s as u32,
            base + e as u32,
            ins,
            Key::TopViaParams,
            false,
        );
        self
    }

    /// Removes the topmost values of a list header: whole lines when every value
    /// on them goes, otherwise the popped values and the comma after them.
    fn pop_values(&mut self, kind: HeaderKind, n: usize, key: Key) {
        self.drop_key(&key);
        let msg = self.msg;
        let mut left = n;
        for h in msg.lines_of_kind(kind) {
            if left == 0 {
                break;
            }
            let value = h.value(msg);
            let elems = || split_commas(value).filter(|(s, e)| e > s);
            let count = elems().count();
            if count == 0 {
                continue;
            }
            if count <= left {
                left -= count;
                self.insert_edit(
                    u32::from(h.line_start),
                    u32::from(h.line_end),
                    (0, 0),
                    key.clone(),
                    false,
                );
            } else {
                let next_start = elems().nth(left).map_or(0, |(s, _)| s);
                let end = u32::from(h.value_start) + next_start as u32;
                self.insert_edit(u32::from(h.value_start), end, (0, 0), key.clone(), false);
                left = 0;
            }
        }
    }

    /// Removes the topmost Via value (RFC 3261 §16.7 step 3: a response loses the
    /// proxy's own Via). Calling it again removes the next one.
    pub fn pop_via(&mut self) -> &mut Self {
        self.via_popped += 1;
        self.pop_values(HeaderKind::Via, self.via_popped, Key::ViaPop);
        self
    }

    /// Removes the topmost Route value (RFC 3261 §16.4: a Route naming the proxy).
    pub fn pop_route(&mut self) -> &mut Self {
        self.route_popped += 1;
        self.pop_values(HeaderKind::Route, self.route_popped, Key::RoutePop);
        self
    }

    /// Inserts a new topmost `Record-Route: <value>` line (RFC 3261 §16.6 step 4).
    pub fn push_record_route(&mut self, value: &[u8]) -> &mut Self {
        let at = self
            .first_line_start(HeaderKind::RecordRoute)
            .unwrap_or(self.msg.headers_end);
        let eol = self.msg.eol();
        let ins = self.stash_line(b"Record-Route: ", value, eol);
        self.add(at, at, ins, Key::None, true);
        self
    }

    /// Replaces the Max-Forwards value, or adds the header (RFC 3261 §16.6 step 3).
    pub fn set_max_forwards(&mut self, n: u32) -> &mut Self {
        match self.msg.lines_of_kind(HeaderKind::MaxForwards).next() {
            Some(h) => {
                let (s, e) = (u32::from(h.value_start), u32::from(h.value_end));
                let ins = self.stash_number(b"", n, b"");
                self.add(s, e, ins, Key::MaxForwards, false);
            }
            None => {
                let at = self.msg.headers_end;
                let eol = self.msg.eol();
                let ins = self.stash_number(b"Max-Forwards: ", n, eol);
                self.add(at, at, ins, Key::MaxForwards, false);
            }
        }
        self
    }

    /// Replaces the Request-URI (requests only; a response is left as it is).
    pub fn set_request_uri(&mut self, uri: &[u8]) -> &mut Self {
        if let super::message::StartLine::Request {
            uri_start, uri_end, ..
        } = self.msg.start
        {
            let ins = self.stash_line(b"", uri, b"");
            self.add(uri_start, uri_end, ins, Key::RequestUri, false);
        }
        self
    }

    /// Replaces the value of the header's first line, or appends the header at the
    /// end of the header section. Content-Length is managed by [`Editor::finish`].
    pub fn set_header(&mut self, name: &str, value: &[u8]) -> &mut Self {
        let first = self.msg.lines_of(name).next().map(|h| {
            (
                u32::from(h.value_start),
                u32::from(h.value_end),
                u32::from(h.line_start),
            )
        });
        match first {
            Some((s, e, line_start)) => {
                let idx = self.line_index(line_start);
                let ins = self.stash_line(b"", value, b"");
                self.add(s, e, ins, Key::Line(idx), false);
            }
            None => {
                let at = self.msg.headers_end;
                let eol = self.msg.eol();
                let start = self.buf.len();
                self.stash_line(b"", name.as_bytes(), b"");
                let (_, end) = self.stash_line(b": ", value, eol);
                let ins = (start as u32, end);
                self.add(at, at, ins, Key::Append(name.to_ascii_lowercase()), false);
            }
        }
        self
    }

    fn line_index(&self, line_start: u32) -> usize {
        self.msg
            .headers()
            .iter()
            .position(|h| u32::from(h.line_start) == line_start)
            .unwrap_or(usize::MAX)
    }

    /// Removes every line of the header (long and compact forms alike), and any
    /// line of that name this editor appended.
    pub fn remove_header(&mut self, name: &str) -> &mut Self {
        let lines: Vec<(u32, u32)> = self
            .msg
            .lines_of(name)
            .map(|h| (u32::from(h.line_start), u32::from(h.line_end)))
            .collect();
        for (s, e) in lines {
            let idx = self.line_index(s);
            self.add(s, e, (0, 0), Key::Line(idx), false);
        }
        self.drop_key(&Key::Append(name.to_ascii_lowercase()));
        if let Some(long) = HeaderKind::classify(name.as_bytes()).long_name() {
            self.drop_key(&Key::Append(long.to_ascii_lowercase()));
        }
        self
    }

    /// Replaces the CSeq number, keeping the method and spacing.
    pub fn set_cseq_number(&mut self, n: u32) -> &mut Self {
        if let Some(h) = self.msg.lines_of_kind(HeaderKind::CSeq).next() {
            let v = h.value(self.msg);
            let digits = v.iter().take_while(|b| b.is_ascii_digit()).count();
            let ins = self.stash_number(b"", n, b"");
            self.add(
                u32::from(h.value_start),
                u32::from(h.value_start) + digits as u32,
                ins,
                Key::CSeq,
                false,
            );
        }
        self
    }

    /// Replaces the body; `Some(type)` sets Content-Type, `None` removes it.
    pub fn set_body(&mut self, content_type: Option<&[u8]>, body: &[u8]) -> &mut Self {
        match content_type {
            Some(ct) => self.set_header("Content-Type", ct),
            None => self.remove_header("Content-Type"),
        };
        self.body = Some(self.stash(&[body]));
        self
    }

    /// Writes the edited message: every byte not covered by an edit is copied from
    /// the original, and Content-Length is made to equal the body length.
    pub fn finish(&self) -> Bytes {
        let msg = self.msg;
        let raw: &[u8] = msg.raw();
        let body: &[u8] = match self.body {
            Some((s, e)) => &self.buf[s as usize..e as usize],
            None => msg.body(),
        };
        let (len_digits, len_start) = decimal(body.len() as u64);
        let len_text: &[u8] = &len_digits[len_start..];
        let mut extra = Vec::<u8>::new();
        // (start, end, order, replacement)
        let mut plan: Vec<(u32, u32, i64, &[u8])> = Vec::with_capacity(self.edits.len() + 2);
        let cl = msg.lines_of_kind(HeaderKind::ContentLength).next();
        let cl_removed = cl.is_some_and(|h| {
            self.edits.iter().any(|e| {
                e.start <= u32::from(h.line_start)
                    && u32::from(h.line_end) <= e.end
                    && !e.is_insert()
            })
        });
        for e in &self.edits {
            // Edits of the Content-Length value are superseded by the computed one.
            if let (Some(h), false) = (cl, cl_removed) {
                if !e.is_insert()
                    && u32::from(h.value_start) <= e.start
                    && e.end <= u32::from(h.value_end)
                {
                    continue;
                }
            }
            plan.push((
                e.start,
                e.end,
                e.order,
                &self.buf[e.ins.0 as usize..e.ins.1 as usize],
            ));
        }
        match cl {
            Some(h) if !cl_removed => {
                if h.value(msg) != len_text {
                    plan.push((
                        u32::from(h.value_start),
                        u32::from(h.value_end),
                        0,
                        len_text,
                    ));
                }
            }
            _ => {
                extra.extend_from_slice(b"Content-Length: ");
                extra.extend_from_slice(len_text);
                extra.extend_from_slice(msg.eol());
                plan.push((msg.headers_end, msg.headers_end, i64::MAX, &extra));
            }
        }
        if self.body.is_some() {
            plan.push((msg.body_start, msg.body_end, 0, body));
        }
        plan.sort_by_key(|&(s, e, order, _)| (s, e > s, order));
        // Exact output size, so the Vec converts into Bytes without a second
        // allocation (a Vec with spare capacity needs a shared header).
        let mut size = raw.len()
            + if msg.blank_missing {
                msg.eol().len()
            } else {
                0
            };
        let mut cursor = 0usize;
        for &(s, e, _, ins) in &plan {
            let (s, e) = (s as usize, e as usize);
            if s >= cursor {
                size = size + ins.len() - (e - s);
                cursor = e;
            }
        }
        let mut out = Vec::with_capacity(size);
        let mut cursor = 0usize;
        for (s, e, _, ins) in plan {
            let (s, e) = (s as usize, e as usize);
            if s < cursor {
                continue;
            }
            out.extend_from_slice(&raw[cursor..s]);
            out.extend_from_slice(ins);
            cursor = e;
        }
        out.extend_from_slice(&raw[cursor..]);
        if msg.blank_missing {
            out.extend_from_slice(msg.eol());
        }
        Bytes::from(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::sip::{parse, Limits, Message};
    use bytes::Bytes;

    fn p(b: &[u8]) -> Message {
        parse(Bytes::copy_from_slice(b), &Limits::default()).unwrap()
    }

    fn text(b: &Bytes) -> &str {
        std::str::from_utf8(b).unwrap()
    }

    const REQ: &[u8] = b"SUBSCRIBE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776;rport\r\n\
Route: <sip:proxy.example.com;lr>, <sip:next.example.com;lr>\r\n\
Max-Forwards: 70\r\n\
To:   Bob <sip:bob@example.com>\r\n\
From: Alice <sip:alice@example.com>;tag=19\r\n\
Call-ID: a84b@pc33\r\n\
CSeq: 314159 SUBSCRIBE\r\n\
X-Odd :  keep   this\r\n\
Event: presence\r\n\
Content-Length: 0\r\n\r\n";

    #[test]
    fn no_edits_reproduce_the_message() {
        let m = p(REQ);
        assert_eq!(m.edit().finish(), Bytes::from_static(REQ));
    }

    #[test]
    fn forwarding_edits_splice_only_their_spans() {
        let m = p(REQ);
        let out = m
            .edit()
            .push_via(b"SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKproxy")
            .set_top_via_params(Some(b"10.0.0.9"), Some(5071))
            .set_max_forwards(69)
            .push_record_route(b"<sip:127.0.0.1:5060;lr>")
            .pop_route()
            .finish();
        let want = "SUBSCRIBE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKproxy\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776;rport=5071;received=10.0.0.9\r\n\
Route: <sip:next.example.com;lr>\r\n\
Max-Forwards: 69\r\n\
To:   Bob <sip:bob@example.com>\r\n\
From: Alice <sip:alice@example.com>;tag=19\r\n\
Call-ID: a84b@pc33\r\n\
CSeq: 314159 SUBSCRIBE\r\n\
X-Odd :  keep   this\r\n\
Event: presence\r\n\
Content-Length: 0\r\n\
Record-Route: <sip:127.0.0.1:5060;lr>\r\n\r\n";
        assert_eq!(text(&out), want);
        let again = p(&out);
        assert_eq!(again.top_via().unwrap().branch, Some(&b"z9hG4bKproxy"[..]));
        assert_eq!(again.max_forwards(), Some(69));
    }

    #[test]
    fn popping_twice_removes_the_whole_line() {
        let m = p(REQ);
        let out = m.edit().pop_route().pop_route().finish();
        assert!(!text(&out).contains("Route"));
        let out = m.edit().pop_via().finish();
        assert!(!text(&out).contains("Via"));
    }

    #[test]
    fn pushes_stack_newest_on_top() {
        let m = p(REQ);
        let out = m.edit().push_via(b"A").push_via(b"B").finish();
        assert!(text(&out).contains("\r\nVia: B\r\nVia: A\r\nVia: SIP/2.0/UDP 192.0.2.1"));
    }

    #[test]
    fn body_and_content_length_stay_consistent() {
        let m = p(REQ);
        let out = m
            .edit()
            .set_body(Some(b"application/pidf+xml"), b"<presence/>")
            .finish();
        let e = p(&out);
        assert_eq!(e.body(), b"<presence/>");
        assert_eq!(e.header("Content-Length"), Some(&b"11"[..]));
        assert_eq!(e.content_type(), Some(&b"application/pidf+xml"[..]));
        let out = e.edit().set_body(None, b"").finish();
        let e = p(&out);
        assert_eq!(e.body(), b"");
        assert_eq!(e.header("Content-Type"), None);
        assert_eq!(e.header("Content-Length"), Some(&b"0"[..]));
    }

    #[test]
    fn content_length_is_added_when_absent() {
        let m = p(b"MESSAGE sip:b@x SIP/2.0\nv: SIP/2.0/UDP h;branch=z9hG4bK1\nf: <sip:a@x>;tag=1\nt: <sip:b@x>\ni: c\nCSeq: 1 MESSAGE\n\nhi");
        let out = m.edit().finish();
        assert!(text(&out).ends_with("CSeq: 1 MESSAGE\nContent-Length: 2\n\nhi"));
    }

    #[test]
    fn a_missing_empty_line_is_restored() {
        let m = p(b"OPTIONS sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nl: 0\r\n");
        let out = m.edit().set_max_forwards(70).finish();
        assert!(text(&out).ends_with("l: 0\r\nMax-Forwards: 70\r\n\r\n"));
        assert_eq!(p(&out).max_forwards(), Some(70));
    }

    #[test]
    fn values_cannot_inject_lines() {
        let m = p(REQ);
        let out = m.edit().set_header("X-New", b"a\r\nEvil: 1").finish();
        let e = p(&out);
        assert_eq!(e.header("Evil"), None);
        assert_eq!(e.header("X-New"), Some(&b"a  Evil: 1"[..]));
        let out = m.edit().push_via(b"SIP/2.0/UDP h\r\nEvil: 2").finish();
        assert!(!text(&out).contains("\nEvil"));
        // In pieces, a line break inside any piece is neutralised the same way.
        let out = m
            .edit()
            .push_via_parts(&[b"SIP/2.0/UDP h", b"\r\nEvil: 3", b";branch=z9hG4bKx"])
            .finish();
        assert!(!text(&out).contains("\nEvil"));
        assert!(text(&out).contains("\r\nVia: SIP/2.0/UDP h  Evil: 3;branch=z9hG4bKx\r\n"));
    }

    #[test]
    fn a_via_in_pieces_is_the_via_joined() {
        let m = p(REQ);
        let joined = m
            .edit()
            .push_via(b"SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKpp1;alias")
            .finish();
        let pieces = m
            .edit()
            .push_via_parts(&[
                b"SIP/2.0/TCP ",
                b"127.0.0.1:5060",
                b";branch=",
                b"z9hG4bKpp1",
                b";alias",
                b"",
            ])
            .finish();
        assert_eq!(joined, pieces);
    }

    #[test]
    fn header_edits() {
        let m = p(REQ);
        let out = m
            .edit()
            .set_header("event", b"presence;id=2")
            .set_header("Expires", b"600")
            .remove_header("x-odd")
            .set_cseq_number(7)
            .set_request_uri(b"sip:bob@192.0.2.44:5062")
            .finish();
        let e = p(&out);
        assert_eq!(e.event().unwrap().id, Some(&b"2"[..]));
        assert_eq!(e.expires(), Some(600));
        assert_eq!(e.header("X-Odd"), None);
        assert_eq!(e.cseq(), Some((7, &b"SUBSCRIBE"[..])));
        assert_eq!(e.request_uri(), Some(&b"sip:bob@192.0.2.44:5062"[..]));
        let out = m.edit().set_max_forwards(1).set_max_forwards(2).finish();
        assert_eq!(p(&out).max_forwards(), Some(2));
        let out = m
            .edit()
            .remove_header("Max-Forwards")
            .set_max_forwards(9)
            .finish();
        // The line is gone, so a later replacement of its value is moot.
        assert_eq!(p(&out).max_forwards(), None);
    }
}
