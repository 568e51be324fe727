//! Cutting a TCP byte stream into SIP messages.
//!
//! On a stream the only message boundary is Content-Length: RFC 3261 §18.3 makes
//! it mandatory there and says a message without it, or with a bad one, ends the
//! connection (nothing after it can be framed). Between messages a peer may send
//! CRLF keep-alives (RFC 5626 §3.5.1): a double CRLF is a "ping" the proxy answers
//! with a single CRLF "pong"; single CRLFs are pongs or padding and are skipped.
//!
//! The framer does not parse the message; it finds the end of the header block and
//! the Content-Length value, and hands the whole message on as one `Bytes`.

use bytes::{Buf, Bytes, BytesMut};

/// Why a stream can no longer be framed; the connection should be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("no Content-Length on a stream transport (RFC 3261 §18.3)")]
    MissingContentLength,
    #[error("Content-Length is not a number")]
    BadContentLength,
    #[error("conflicting Content-Length values")]
    ConflictingContentLength,
    #[error("message larger than {limit} bytes")]
    MessageTooLarge { limit: usize },
}

/// Incremental framer for one connection: `push` what was read, then call `next`
/// until it returns `None`.
#[derive(Debug)]
pub struct StreamFramer {
    buf: BytesMut,
    max_message: usize,
    /// Bytes of `buf` already searched for the end of the header block.
    scanned: usize,
    /// Consecutive CRLFs seen at a message boundary (two make a ping).
    crlfs: usize,
    pings: usize,
    failed: Option<FramingError>,
}

impl Default for StreamFramer {
    fn default() -> Self {
        StreamFramer::new(65_535)
    }
}

impl StreamFramer {
    /// A framer refusing messages (headers + body) longer than `max_message`.
    pub fn new(max_message: usize) -> Self {
        StreamFramer {
            buf: BytesMut::with_capacity(4096),
            max_message,
            scanned: 0,
            crlfs: 0,
            pings: 0,
            failed: None,
        }
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(data);
        }
    }

    /// The buffer to read the stream into, with room for `at_least` more bytes:
    /// a driver reads straight into it (`read_buf`) instead of copying each read
    /// through [`push`](Self::push). After an error the buffer is dropped at once.
    pub fn spare(&mut self, at_least: usize) -> &mut BytesMut {
        if self.failed.is_some() {
            self.buf = BytesMut::new();
        }
        self.buf.reserve(at_least);
        &mut self.buf
    }

    /// Bytes waiting for the rest of a message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// How many keep-alive pings arrived since the last call; the driver answers
    /// each with `"\r\n"` (RFC 5626 §4.4.1).
    pub fn take_pings(&mut self) -> usize {
        std::mem::take(&mut self.pings)
    }

    /// The next whole message, `None` when more bytes are needed. After an error
    /// every call returns the same error: the stream cannot be resynchronised.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Result<Bytes, FramingError>> {
        if let Some(e) = &self.failed {
            return Some(Err(e.clone()));
        }
        match self.try_next() {
            Ok(m) => m.map(Ok),
            Err(e) => {
                self.failed = Some(e.clone());
                self.buf.clear();
                Some(Err(e))
            }
        }
    }

    fn try_next(&mut self) -> Result<Option<Bytes>, FramingError> {
        self.skip_keepalives();
        if self.buf.is_empty() {
            return Ok(None);
        }
        let Some(head_len) = self.find_header_end() else {
            if self.buf.len() > self.max_message {
                return Err(FramingError::MessageTooLarge {
                    limit: self.max_message,
                });
            }
            return Ok(None);
        };
        let body_len = content_length(&self.buf[..head_len])?;
        let total = head_len.saturating_add(body_len);
        if total > self.max_message {
            return Err(FramingError::MessageTooLarge {
                limit: self.max_message,
            });
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        self.scanned = 0;
        Ok(Some(self.buf.split_to(total).freeze()))
    }

    /// Consumes CR/LF between messages, counting double-CRLF pings. A lone CR or
    /// LF is tolerated as padding.
    fn skip_keepalives(&mut self) {
        while let Some(&b) = self.buf.first() {
            match b {
                b'\r' => {
                    if self.buf.len() < 2 {
                        return; // wait: CR alone may be half of a CRLF
                    }
                    if self.buf[1] == b'\n' {
                        self.buf.advance(2);
                        self.crlf_seen();
                    } else {
                        self.buf.advance(1);
                    }
                }
                b'\n' => {
                    self.buf.advance(1);
                    self.crlf_seen();
                }
                _ => {
                    self.crlfs = 0;
                    return;
                }
            }
        }
    }

    fn crlf_seen(&mut self) {
        self.crlfs += 1;
        if self.crlfs == 2 {
            self.pings += 1;
            self.crlfs = 0;
        }
    }

    /// Length of the header block including the empty line, resuming the search
    /// where the previous call stopped. Two SIMD searches over the block instead
    /// of a stop at every line: the empty line is `\n\r\n`, or `\n\n` from a
    /// peer that ends lines with a bare LF (RFC 3261 §7.5), whichever comes first.
    fn find_header_end(&mut self) -> Option<usize> {
        let b = &self.buf[..];
        let start = self.scanned.saturating_sub(3);
        let crlf = finders().crlf.find(&b[start..]).map(|i| start + i + 3);
        // A bare-LF end can only come before the CRLF one; search up to it.
        let lf_upto = crlf.map_or(b.len(), |e| e - 1);
        let lf = finders().lf.find(&b[start..lf_upto]).map(|i| start + i + 2);
        match lf.or(crlf) {
            Some(end) => Some(end),
            None => {
                self.scanned = b.len();
                None
            }
        }
    }
}

struct Finders {
    crlf: memchr::memmem::Finder<'static>,
    lf: memchr::memmem::Finder<'static>,
}

/// Built once: a `Finder`'s set-up costs more than a search of one header block.
fn finders() -> &'static Finders {
    static FINDERS: std::sync::OnceLock<Finders> = std::sync::OnceLock::new();
    FINDERS.get_or_init(|| Finders {
        crlf: memchr::memmem::Finder::new(b"\n\r\n"),
        lf: memchr::memmem::Finder::new(b"\n\n"),
    })
}

/// The Content-Length of a header block (long form or compact `l`, RFC 3261
/// §7.3.3), every occurrence agreeing. A line that starts with white space
/// continues the header above it (RFC 3261 §7.3.1) and names none.
fn content_length(head: &[u8]) -> Result<usize, FramingError> {
    let mut found: Option<usize> = None;
    // Skip the start line; header lines begin after a line feed.
    let mut lines = memchr::memchr_iter(b'\n', head);
    let Some(mut start) = lines.next().map(|lf| lf + 1) else {
        return Err(FramingError::MissingContentLength);
    };
    while start < head.len() {
        let end = lines.next().unwrap_or(head.len());
        let line = &head[start..end];
        start = end + 1;
        // Only `Content-Length` and `l` can match: most lines stop at their first byte.
        if !matches!(line.first(), Some(b'C' | b'c' | b'L' | b'l')) {
            continue;
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let name = trim(&line[..colon]);
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let value = trim(&line[colon + 1..]);
        if value.is_empty() || value.len() > 10 || !value.iter().all(u8::is_ascii_digit) {
            return Err(FramingError::BadContentLength);
        }
        // At most ten digits: the sum fits a u64, not always a usize.
        let n = value.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        let n = usize::try_from(n).map_err(|_| FramingError::BadContentLength)?;
        match found {
            Some(prev) if prev != n => return Err(FramingError::ConflictingContentLength),
            _ => found = Some(n),
        }
    }
    found.ok_or(FramingError::MissingContentLength)
}

fn trim(b: &[u8]) -> &[u8] {
    let is_ws = |c: &u8| matches!(c, b' ' | b'\t' | b'\r');
    let start = b.iter().position(|c| !is_ws(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !is_ws(c)).map_or(start, |e| e + 1);
    &b[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTIFY: &[u8] = b"NOTIFY sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bK1\r\nContent-Length: 5\r\n\r\nhello";

    fn all(f: &mut StreamFramer) -> Vec<Result<Bytes, FramingError>> {
        let mut v = Vec::new();
        while let Some(m) = f.next() {
            let stop = m.is_err();
            v.push(m);
            if stop {
                break;
            }
        }
        v
    }

    #[test]
    fn two_messages_in_one_read() {
        let mut f = StreamFramer::default();
        let mut data = NOTIFY.to_vec();
        data.extend_from_slice(NOTIFY);
        f.push(&data);
        let got = all(&mut f);
        assert_eq!(
            got,
            vec![
                Ok(Bytes::from_static(NOTIFY)),
                Ok(Bytes::from_static(NOTIFY))
            ]
        );
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn message_split_at_every_byte() {
        for cut in 0..NOTIFY.len() {
            let mut f = StreamFramer::default();
            f.push(&NOTIFY[..cut]);
            assert_eq!(f.next(), None, "cut at {cut}");
            f.push(&NOTIFY[cut..]);
            assert_eq!(
                f.next(),
                Some(Ok(Bytes::from_static(NOTIFY))),
                "cut at {cut}"
            );
            assert_eq!(f.next(), None);
        }
    }

    proptest::proptest! {
        /// The header block ends at the first LF followed by CRLF or LF, however
        /// the bytes arrive: the searches agree with a walk over every LF.
        #[test]
        fn the_header_end_is_the_first_empty_line(
            text in "[a\r\n]{0,40}",
            cut in 0usize..41,
        ) {
            let b = text.as_bytes();
            let want = (0..b.len()).find_map(|i| {
                let rest = &b[i..];
                if rest.starts_with(b"\n\r\n") {
                    Some(i + 3)
                } else if rest.starts_with(b"\n\n") {
                    Some(i + 2)
                } else {
                    None
                }
            });
            let mut f = StreamFramer::default();
            let cut = cut.min(b.len());
            f.buf.extend_from_slice(&b[..cut]);
            let early = f.find_header_end();
            f.buf.extend_from_slice(&b[cut..]);
            let got = early.or_else(|| f.find_header_end());
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn compact_content_length() {
        let msg = b"MESSAGE sip:a@h SIP/2.0\r\nl:  3\r\n\r\nabc";
        let mut f = StreamFramer::default();
        f.push(msg);
        assert_eq!(f.next(), Some(Ok(Bytes::from_static(msg))));
    }

    #[test]
    fn keepalive_pings_are_counted_and_pongs_skipped() {
        let mut f = StreamFramer::default();
        f.push(b"\r\n\r\n");
        assert_eq!(f.next(), None);
        assert_eq!(f.take_pings(), 1);
        f.push(b"\r\n"); // a pong
        f.push(NOTIFY);
        assert_eq!(f.next(), Some(Ok(Bytes::from_static(NOTIFY))));
        assert_eq!(f.take_pings(), 0);
        f.push(b"\r\n");
        assert_eq!(f.next(), None);
        f.push(b"\r\n");
        assert_eq!(f.next(), None);
        assert_eq!(f.take_pings(), 1, "a ping split over two reads");
    }

    #[test]
    fn missing_content_length_fails_the_stream() {
        let mut f = StreamFramer::default();
        f.push(b"OPTIONS sip:a@h SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n\r\n");
        assert_eq!(f.next(), Some(Err(FramingError::MissingContentLength)));
        f.push(NOTIFY);
        assert_eq!(
            f.next(),
            Some(Err(FramingError::MissingContentLength)),
            "stays failed"
        );
    }

    #[test]
    fn bad_and_conflicting_content_length() {
        for (msg, err) in [
            (
                &b"A sip:a SIP/2.0\r\nContent-Length: -1\r\n\r\n"[..],
                FramingError::BadContentLength,
            ),
            (
                &b"A sip:a SIP/2.0\r\nContent-Length: 99999999999\r\n\r\n"[..],
                FramingError::BadContentLength,
            ),
            (
                &b"A sip:a SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\nab"[..],
                FramingError::ConflictingContentLength,
            ),
        ] {
            let mut f = StreamFramer::default();
            f.push(msg);
            assert_eq!(f.next(), Some(Err(err)));
        }
    }

    /// A folded line belongs to the header above it (RFC 3261 §7.3.1): text that
    /// looks like a Content-Length there sets no length, and the full parser,
    /// which reads the same message, agrees.
    #[test]
    fn a_folded_line_is_not_a_content_length() {
        let msg = b"MESSAGE sip:a@h SIP/2.0\r\nSubject: x\r\n Content-Length: 3\r\n\r\nabc";
        let mut f = StreamFramer::default();
        f.push(msg);
        assert_eq!(f.next(), Some(Err(FramingError::MissingContentLength)));
        let msg = b"MESSAGE sip:a@h SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nFrom: <sip:b@h>;tag=1\r\nTo: <sip:a@h>\r\nCall-ID: c\r\nCSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\nSubject: x\r\n l: 9\r\nContent-Length : 3\r\n\r\nabc";
        let mut f = StreamFramer::default();
        f.push(msg);
        assert_eq!(f.next(), Some(Ok(Bytes::copy_from_slice(msg))));
        let parsed = crate::sip::parse(Bytes::copy_from_slice(msg), &crate::sip::Limits::default())
            .expect("parses");
        assert_eq!(parsed.body(), b"abc");
    }

    #[test]
    fn oversize_header_block_and_body_are_refused() {
        let mut f = StreamFramer::new(1024);
        f.push(&[b'a'; 2000]);
        assert_eq!(
            f.next(),
            Some(Err(FramingError::MessageTooLarge { limit: 1024 }))
        );
        let mut f = StreamFramer::new(1024);
        f.push(b"A sip:a SIP/2.0\r\nContent-Length: 5000\r\n\r\n");
        assert_eq!(
            f.next(),
            Some(Err(FramingError::MessageTooLarge { limit: 1024 }))
        );
    }
}
