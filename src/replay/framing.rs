//! Tells SIP from other payloads and cuts a byte stream into SIP messages by
//! Content-Length (RFC 3261 §18.3), skipping CRLF keep-alives (RFC 5626 §3.5.1).

/// A message whose header section is longer than this is not SIP we accept.
pub const MAX_HEADER: usize = 64 << 10;
/// A body longer than this is treated as a corrupt Content-Length.
pub const MAX_BODY: usize = 1 << 20;

/// What the front of a stream buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framed {
    /// One whole message of this many bytes.
    Message(usize),
    /// This many bytes of CRLF keep-alive.
    KeepAlive(usize),
    /// Not a SIP message start, or an impossible header: skip this many bytes to
    /// the next line that starts a message (or all but a trailing partial line).
    Garbage(usize),
    /// A message has started but is not complete.
    NeedMore,
}

/// What a message's start line says (RFC 3261 §7.1, §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartLine<'a> {
    Request(&'a str),
    Response(u16),
}

impl<'a> StartLine<'a> {
    /// The method or status code of a message, `None` when it does not start
    /// like SIP.
    pub fn of(data: &'a [u8]) -> Option<StartLine<'a>> {
        let end = find(&data[..data.len().min(8192)], b"\r\n")?;
        let line = &data[..end];
        if !is_start_line(line) {
            return None;
        }
        if let Some(rest) = line.strip_prefix(b"SIP/2.0 ") {
            let code = std::str::from_utf8(&rest[..3]).ok()?.parse().ok()?;
            return Some(StartLine::Response(code));
        }
        let sp = line.iter().position(|&b| b == b' ')?;
        std::str::from_utf8(&line[..sp])
            .ok()
            .map(StartLine::Request)
    }
}

/// The first value of a header, by its long or compact name (any case), with
/// surrounding white space trimmed.
pub fn header<'a>(data: &'a [u8], long: &str, compact: Option<&str>) -> Option<&'a [u8]> {
    let head_end = find(&data[..data.len().min(MAX_HEADER)], b"\r\n\r\n")
        .unwrap_or(data.len().min(MAX_HEADER));
    for line in data[..head_end].split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = trim(&line[..colon]);
        if name.eq_ignore_ascii_case(long.as_bytes())
            || compact.is_some_and(|c| name.eq_ignore_ascii_case(c.as_bytes()))
        {
            return Some(trim(&line[colon + 1..]));
        }
    }
    None
}

/// True when `line` (without its CRLF) is a SIP request line or status line.
pub fn is_start_line(line: &[u8]) -> bool {
    if let Some(rest) = line.strip_prefix(b"SIP/2.0 ") {
        return rest.len() >= 3 && rest[..3].iter().all(u8::is_ascii_digit);
    }
    // Method SP Request-URI SP SIP-Version (RFC 3261 §7.1); the method is a token.
    let Some(sp) = line.iter().position(|&b| b == b' ') else {
        return false;
    };
    sp > 0
        && line[..sp]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
        && line.ends_with(b" SIP/2.0")
        && line.len() > sp + 1 + 8
}

/// True when a datagram starts with a SIP start line.
pub fn looks_like_sip(data: &[u8]) -> bool {
    let end = find(data, b"\r\n").unwrap_or(data.len()).min(8192);
    is_start_line(&data[..end])
}

/// Frames the message at the front of `buf`.
pub fn next(buf: &[u8]) -> Framed {
    let crlfs = buf
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    if crlfs > 0 {
        return Framed::KeepAlive(crlfs);
    }
    let Some(line_end) = find(&buf[..buf.len().min(MAX_HEADER)], b"\r\n") else {
        return if buf.len() >= MAX_HEADER {
            Framed::Garbage(skip_to_start(buf))
        } else {
            Framed::NeedMore
        };
    };
    if !is_start_line(&buf[..line_end]) {
        return Framed::Garbage(skip_to_start(buf));
    }
    let Some(head_end) = find(&buf[..buf.len().min(MAX_HEADER)], b"\r\n\r\n") else {
        return if buf.len() >= MAX_HEADER {
            Framed::Garbage(skip_to_start(buf))
        } else {
            Framed::NeedMore
        };
    };
    let body = match content_length(&buf[line_end + 2..head_end + 2]) {
        Some(Some(n)) if n <= MAX_BODY => n,
        // No Content-Length on a stream: RFC 3261 §18.3 requires it; read as empty.
        Some(None) => 0,
        _ => return Framed::Garbage(skip_to_start(buf)),
    };
    let total = head_end + 4 + body;
    if buf.len() >= total {
        Framed::Message(total)
    } else {
        Framed::NeedMore
    }
}

/// How many bytes to skip to reach the next line that starts a SIP message; when
/// none is buffered, everything up to the last partial line (which may become one).
pub fn skip_to_start(buf: &[u8]) -> usize {
    let mut at = 0;
    while let Some(nl) = buf[at..].iter().position(|&b| b == b'\n') {
        let line_start = at + nl + 1;
        match find(&buf[line_start..], b"\r\n") {
            Some(len) if is_start_line(&buf[line_start..line_start + len]) => return line_start,
            Some(_) => at = line_start,
            None => return line_start,
        }
    }
    // No line break at all: only reached for a line longer than MAX_HEADER.
    buf.len().max(1)
}

/// The Content-Length of a header section: `Some(Some(n))`, `Some(None)` when
/// absent, `None` when present but not a number. Long form or compact `l`
/// (RFC 3261 §7.3.3), any case.
fn content_length(headers: &[u8]) -> Option<Option<usize>> {
    for line in headers.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = trim(&line[..colon]);
        if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l") {
            let value = trim(&line[colon + 1..]);
            if value.is_empty() || value.len() > 9 || !value.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let n = value
                .iter()
                .fold(0usize, |n, d| n * 10 + usize::from(d - b'0'));
            return Some(Some(n));
        }
    }
    Some(None)
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &s[start..end]
}

pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTIFY: &[u8] = b"NOTIFY sip:bob@10.0.0.2 SIP/2.0\r\nl: 5\r\n\r\nhello";

    #[test]
    fn start_line_and_header_lookup() {
        assert_eq!(StartLine::of(NOTIFY), Some(StartLine::Request("NOTIFY")));
        assert_eq!(
            StartLine::of(b"SIP/2.0 486 Busy Here\r\n"),
            Some(StartLine::Response(486))
        );
        assert_eq!(StartLine::of(b"HTTP/1.1 200 OK\r\n"), None);
        let m = b"SIP/2.0 200 OK\r\ni:  abc@host \r\nCall-ID: no\r\n\r\nCall-ID: body";
        assert_eq!(header(m, "call-id", Some("i")), Some(&b"abc@host"[..]));
        assert_eq!(header(m, "cseq", None), None);
    }

    #[test]
    fn start_lines() {
        assert!(is_start_line(b"SIP/2.0 200 OK"));
        assert!(is_start_line(b"SUBSCRIBE sip:alice@example.com SIP/2.0"));
        assert!(!is_start_line(b"GET / HTTP/1.1"));
        assert!(!is_start_line(b"SIP/2.0 OK"));
        assert!(looks_like_sip(NOTIFY));
        assert!(!looks_like_sip(b"\x80\x00RTP"));
    }

    #[test]
    fn frames_by_content_length_with_compact_form() {
        let mut two = NOTIFY.to_vec();
        two.extend_from_slice(b"SIP/2.0 200 OK\r\nContent-Length:0\r\n\r\n");
        assert_eq!(next(&two), Framed::Message(NOTIFY.len()));
        assert_eq!(
            next(&two[NOTIFY.len()..]),
            Framed::Message(two.len() - NOTIFY.len())
        );
        assert_eq!(next(&NOTIFY[..NOTIFY.len() - 1]), Framed::NeedMore);
        assert_eq!(next(b"SIP/2.0 200 OK\r\nVia: x"), Framed::NeedMore);
    }

    #[test]
    fn keepalives_and_garbage_are_skipped_to_the_next_message() {
        assert_eq!(next(b"\r\n\r\nSIP"), Framed::KeepAlive(4));
        let mut junk = b"tail of a lost message\r\nmore\r\n".to_vec();
        let at = junk.len();
        junk.extend_from_slice(NOTIFY);
        assert_eq!(next(&junk), Framed::Garbage(at));
        let bad = b"INVITE sip:a@b SIP/2.0\r\nContent-Length: x\r\n\r\n";
        assert_eq!(next(bad), Framed::Garbage(bad.len()));
    }

    #[test]
    fn missing_content_length_on_a_stream_reads_as_empty_body() {
        assert_eq!(
            next(b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\nXYZ"),
            Framed::Message(35)
        );
    }
}
