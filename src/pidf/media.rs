//! Content-Type values (RFC 2045 §5.1): `type/subtype *(";" parameter)`, where a
//! parameter value is a token or a quoted string. Needed for `charset` and for the
//! `boundary`/`start`/`type` of `multipart/related` (RFC 2387 §3).

use super::PidfError;
use std::borrow::Cow;

/// A parsed Content-Type: the `type/subtype` essence and its parameters, with
/// quoted-string values unquoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType<'a> {
    essence: &'a str,
    params: Vec<(&'a str, Cow<'a, str>)>,
}

impl<'a> MediaType<'a> {
    /// Parses a Content-Type header value. Names compare case-insensitively
    /// (RFC 2045 §5.1); values keep their case (a boundary is case-sensitive).
    pub fn parse(value: &'a [u8]) -> Result<Self, PidfError> {
        let bad = |why: &str| {
            PidfError::UnsupportedContentType(format!("{} ({why})", String::from_utf8_lossy(value)))
        };
        let text = std::str::from_utf8(value).map_err(|_| bad("not ASCII"))?;
        let (essence, mut rest) = match text.find(';') {
            Some(i) => (&text[..i], &text[i..]),
            None => (text, ""),
        };
        let essence = essence.trim();
        match essence.split_once('/') {
            Some((t, s)) if is_token(t) && is_token(s) => {}
            _ => return Err(bad("no type/subtype")),
        }
        let mut params = Vec::new();
        loop {
            rest = rest.trim_start_matches([' ', '\t', '\r', '\n']);
            if rest.is_empty() {
                break;
            }
            rest = rest
                .strip_prefix(';')
                .ok_or_else(|| bad("junk between parameters"))?
                .trim_start_matches([' ', '\t', '\r', '\n']);
            if rest.is_empty() {
                break; // a trailing ';' is common and harmless
            }
            let eq = rest.find('=').ok_or_else(|| bad("parameter without '='"))?;
            let name = rest[..eq].trim();
            if !is_token(name) {
                return Err(bad("bad parameter name"));
            }
            rest = rest[eq + 1..].trim_start_matches([' ', '\t']);
            let value;
            if let Some(q) = rest.strip_prefix('"') {
                let mut unq = String::new();
                let mut escaped = false;
                let mut end = None;
                for (i, c) in q.char_indices() {
                    if escaped {
                        unq.push(c);
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        end = Some(i);
                        break;
                    } else {
                        unq.push(c);
                    }
                }
                let end = end.ok_or_else(|| bad("unterminated quoted string"))?;
                value = if unq.len() == end {
                    Cow::Borrowed(&q[..end])
                } else {
                    Cow::Owned(unq)
                };
                rest = &q[end + 1..];
            } else {
                let end = rest.find([';', ' ', '\t']).unwrap_or(rest.len());
                value = Cow::Borrowed(&rest[..end]);
                rest = &rest[end..];
            }
            params.push((name, value));
        }
        Ok(MediaType { essence, params })
    }

    /// `type/subtype` as sent.
    pub fn essence(&self) -> &'a str {
        self.essence
    }

    /// The first parameter called `name` (case-insensitive), unquoted.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

/// RFC 2045 §5.1 `token`.
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && !is_tspecial(b))
}

/// RFC 2045 §5.1 `tspecials`; a `match` because a slice search per byte cost more
/// than the rest of the parse.
const fn is_tspecial(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')'
            | b'<'
            | b'>'
            | b'@'
            | b','
            | b';'
            | b':'
            | b'\\'
            | b'"'
            | b'/'
            | b'['
            | b']'
            | b'?'
            | b'='
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn essence_and_params_with_quotes_and_case() {
        let mt = MediaType::parse(
            b"multipart/related;type=\"application/rlmi+xml\"; Start=\"<a@b>\";boundary=50UB",
        )
        .unwrap();
        assert_eq!(mt.essence(), "multipart/related");
        assert_eq!(mt.param("type"), Some("application/rlmi+xml"));
        assert_eq!(mt.param("start"), Some("<a@b>"));
        assert_eq!(mt.param("BOUNDARY"), Some("50UB"));
        assert_eq!(mt.param("charset"), None);
    }

    #[test]
    fn quoted_pair_is_unescaped() {
        let mt = MediaType::parse(br#"text/plain; x="a\"b""#).unwrap();
        assert_eq!(mt.param("x"), Some("a\"b"));
    }

    #[test]
    fn trailing_semicolon_is_accepted() {
        let mt = MediaType::parse(b"application/pidf+xml;").unwrap();
        assert_eq!(mt.essence(), "application/pidf+xml");
    }

    #[test]
    fn garbage_is_refused() {
        assert!(MediaType::parse(b"pidf").is_err());
        assert!(MediaType::parse(b"a/b; x=\"open").is_err());
        assert!(MediaType::parse(b"a/b x").is_err());
        assert!(MediaType::parse(b"a/b; =1").is_err());
        assert!(MediaType::parse(&[0xff, b'/', b'a']).is_err());
    }
}
