//! MIME multipart bodies (RFC 2046 §5.1.1), read in place: each part is a byte range
//! of the original body, so a caller can rewrite one part and copy every other byte
//! (boundary lines, preamble, epilogue, untouched parts) as it was.
//!
//! Lenient where SIP practice is: a delimiter line may end in LF as well as CRLF
//! (hand-written scenarios, LF-only test material), and transport padding after the
//! boundary is skipped (RFC 2046 §5.1.1 `transport-padding`).

use super::{MediaType, PidfError};
use std::ops::Range;

/// One header line of a body part, unfolded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartHeader<'a> {
    pub name: &'a str,
    /// The value with folding undone and surrounding whitespace trimmed.
    pub value: String,
    /// The raw bytes of the header (all its lines, without the final line break).
    pub raw: Range<usize>,
}

/// One body part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part<'a> {
    /// Headers, blank line and body: everything between the line break that ends
    /// the opening delimiter line and the line break that starts the next one.
    pub range: Range<usize>,
    pub headers: Vec<PartHeader<'a>>,
    /// The part's content.
    pub body: Range<usize>,
    /// The line ending its header block uses, `\r\n` or `\n`.
    pub line_ending: &'static [u8],
}

impl Part<'_> {
    /// The first header called `name` (case-insensitive, RFC 2045 §5).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// `Content-ID` without its angle brackets (RFC 2392 §2 compares the `addr-spec`).
    pub fn content_id(&self) -> Option<&str> {
        self.header("Content-ID").map(strip_angles)
    }

    /// The part's Content-Type; `text/plain` when absent (RFC 2046 §5.1.1).
    pub fn content_type(&self) -> &str {
        self.header("Content-Type").unwrap_or("text/plain")
    }
}

/// `<id>` → `id`; anything else unchanged.
pub fn strip_angles(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(s)
}

/// Splits a `multipart/*` body by the `boundary` of its Content-Type.
pub fn split<'a>(content_type: &[u8], body: &'a [u8]) -> Result<Vec<Part<'a>>, PidfError> {
    let mt = MediaType::parse(content_type)?;
    if !mt.essence().to_ascii_lowercase().starts_with("multipart/") {
        return Err(PidfError::Multipart(format!(
            "{} is not a multipart type",
            mt.essence()
        )));
    }
    let boundary = mt
        .param("boundary")
        .ok_or_else(|| PidfError::Multipart("no boundary parameter".into()))?;
    // RFC 2046 §5.1.1: 1 to 70 characters.
    if boundary.is_empty() || boundary.len() > 70 {
        return Err(PidfError::Multipart(format!(
            "boundary of {} characters (1..=70 allowed)",
            boundary.len()
        )));
    }
    split_by(boundary.as_bytes(), body)
}

/// Where a delimiter line at `at` ends: `Some((after_line, is_close))`, or `None` if
/// the text there is not a delimiter line after all.
fn delimiter_end(body: &[u8], at: usize, dash_len: usize) -> Option<(usize, bool)> {
    let mut i = at + dash_len;
    let close = body[i..].starts_with(b"--");
    if close {
        i += 2;
    }
    while i < body.len() && (body[i] == b' ' || body[i] == b'\t') {
        i += 1;
    }
    if i == body.len() {
        return close.then_some((i, true));
    }
    if body[i..].starts_with(b"\r\n") {
        Some((i + 2, close))
    } else if body[i] == b'\n' {
        Some((i + 1, close))
    } else {
        None
    }
}

/// The next delimiter line at or after `from` (at the start of the body or of a line).
fn next_delimiter(body: &[u8], dash: &[u8], from: usize) -> Option<(usize, usize, bool)> {
    // A delimiter starts the body or a line, so only line starts are candidates:
    // a vectorised search for each line break and a comparison per line, where a
    // substring search would compare at every byte.
    let mut at = from;
    loop {
        if (at == 0 || body[at - 1] == b'\n') && body.get(at..)?.starts_with(dash) {
            if let Some((end, close)) = delimiter_end(body, at, dash.len()) {
                return Some((at, end, close));
            }
        }
        at += memchr::memchr(b'\n', body.get(at..)?)? + 1;
    }
}

fn split_by<'a>(boundary: &[u8], body: &'a [u8]) -> Result<Vec<Part<'a>>, PidfError> {
    let mut dash = Vec::with_capacity(boundary.len() + 2);
    dash.extend_from_slice(b"--");
    dash.extend_from_slice(boundary);
    let (_, mut cursor, mut closed) = next_delimiter(body, &dash, 0)
        .ok_or_else(|| PidfError::Multipart("no boundary delimiter line".into()))?;
    let mut parts = Vec::new();
    while !closed {
        let (at, end, close) = next_delimiter(body, &dash, cursor)
            .ok_or_else(|| PidfError::Multipart("no closing boundary delimiter".into()))?;
        // The line break before the delimiter belongs to the delimiter (RFC 2046 §5.1.1).
        let mut part_end = at;
        if part_end > cursor && body[part_end - 1] == b'\n' {
            part_end -= 1;
            if part_end > cursor && body[part_end - 1] == b'\r' {
                part_end -= 1;
            }
        }
        parts.push(parse_part(body, cursor..part_end)?);
        cursor = end;
        closed = close;
        if parts.len() > 10_000 {
            return Err(PidfError::Multipart("more than 10000 parts".into()));
        }
    }
    Ok(parts)
}

fn parse_part(body: &[u8], range: Range<usize>) -> Result<Part<'_>, PidfError> {
    let bytes = &body[range.clone()];
    let mut headers: Vec<PartHeader<'_>> = Vec::new();
    let mut pos = 0;
    let mut line_ending: &'static [u8] = b"\r\n";
    let body_start;
    loop {
        let (line_end, next) = match bytes[pos..].iter().position(|b| *b == b'\n') {
            Some(i) => {
                let nl = pos + i;
                if nl > pos && bytes[nl - 1] == b'\r' {
                    (nl - 1, nl + 1)
                } else {
                    line_ending = b"\n";
                    (nl, nl + 1)
                }
            }
            // Headers run to the end of the part: a part with no body at all.
            None => (bytes.len(), bytes.len()),
        };
        let line = &bytes[pos..line_end];
        if line.is_empty() {
            body_start = next;
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            let last = headers.last_mut().ok_or_else(|| {
                PidfError::Multipart("part starts with a continuation line".into())
            })?;
            last.value.push(' ');
            last.value.push_str(utf8(line)?.trim());
            last.raw.end = range.start + line_end;
        } else {
            let text = utf8(line)?;
            let (name, value) = text.split_once(':').ok_or_else(|| {
                PidfError::Multipart(format!("part header line without ':': {text:?}"))
            })?;
            headers.push(PartHeader {
                name: name.trim(),
                value: value.trim().to_owned(),
                raw: range.start + pos..range.start + line_end,
            });
        }
        if next >= bytes.len() {
            body_start = bytes.len();
            break;
        }
        pos = next;
    }
    Ok(Part {
        body: range.start + body_start..range.end,
        range,
        headers,
        line_ending,
    })
}

fn utf8(line: &[u8]) -> Result<&str, PidfError> {
    std::str::from_utf8(line).map_err(|_| PidfError::Multipart("part header is not UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_crlf_parts_with_preamble_and_epilogue() {
        let body = b"preamble\r\n--b1\r\nContent-Type: text/plain\r\nContent-ID: <x@y>\r\n\r\nhello\r\n--b1\r\n\r\nno headers\r\n--b1--\r\nepilogue";
        let parts = split(b"multipart/mixed; boundary=b1", body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(&body[parts[0].body.clone()], b"hello");
        assert_eq!(parts[0].content_id(), Some("x@y"));
        assert_eq!(parts[0].line_ending, b"\r\n");
        assert_eq!(&body[parts[1].body.clone()], b"no headers");
        assert_eq!(parts[1].content_type(), "text/plain");
    }

    #[test]
    fn lf_only_and_folded_headers() {
        let body = b"--b\nContent-Type: application/pidf+xml;\n  charset=UTF-8\n\n<a/>\n--b--\n";
        let parts = split(b"multipart/related;boundary=\"b\"", body).unwrap();
        assert_eq!(
            parts[0].content_type(),
            "application/pidf+xml; charset=UTF-8"
        );
        assert_eq!(parts[0].line_ending, b"\n");
        assert_eq!(&body[parts[0].body.clone()], b"<a/>");
    }

    #[test]
    fn boundary_look_alikes_inside_lines_are_content() {
        let body = b"--b\r\n\r\nx --b y\r\n--bb not a delimiter\r\n--b--";
        let parts = split(b"multipart/mixed;boundary=b", body).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(
            &body[parts[0].body.clone()],
            b"x --b y\r\n--bb not a delimiter"
        );
    }

    #[test]
    fn broken_bodies_are_refused() {
        assert!(split(b"multipart/mixed", b"--b\r\n\r\nx\r\n--b--").is_err());
        assert!(split(b"text/plain;boundary=b", b"--b\r\n\r\nx\r\n--b--").is_err());
        assert!(split(b"multipart/mixed;boundary=b", b"no delimiter").is_err());
        assert!(split(b"multipart/mixed;boundary=b", b"--b\r\n\r\nunterminated").is_err());
        assert!(split(
            b"multipart/mixed;boundary=b",
            b"--b\r\nbad header\r\n\r\nx\r\n--b--"
        )
        .is_err());
    }
}
