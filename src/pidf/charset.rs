//! From the bytes of an XML body to UTF-8 text, the only encoding the rewrite reads.
//!
//! Precedence follows RFC 7303 §3: a byte order mark wins, then the
//! Content-Type `charset` parameter, then the `encoding` of the XML declaration,
//! then UTF-8 (XML 1.0 §4.3.3). UTF-8, US-ASCII, ISO-8859-1 and UTF-16 (LE/BE) are
//! read; anything else is refused with [`PidfError::UnsupportedEncoding`] rather
//! than guessed, because a misread document could hide an element from the rewrite.
//! The output is always UTF-8, so the rewritten documents declare `UTF-8`.

use super::PidfError;
use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Enc {
    Utf8,
    Ascii,
    Latin1,
    Utf16Le,
    Utf16Be,
}

fn by_name(name: &str) -> Result<Enc, PidfError> {
    let n = name.trim().to_ascii_lowercase();
    Ok(match n.as_str() {
        "utf-8" | "utf8" => Enc::Utf8,
        "us-ascii" | "ascii" | "iso646-us" | "ansi_x3.4-1968" => Enc::Ascii,
        "iso-8859-1" | "iso8859-1" | "iso_8859-1" | "latin1" | "l1" => Enc::Latin1,
        "utf-16le" => Enc::Utf16Le,
        "utf-16be" => Enc::Utf16Be,
        _ => return Err(PidfError::UnsupportedEncoding(name.trim().to_owned())),
    })
}

/// The `encoding` pseudo-attribute of an ASCII-compatible XML declaration, if any.
fn declared(body: &[u8]) -> Option<&str> {
    let head = body.strip_prefix(b"<?xml")?;
    let end = head.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(&head[..end]).ok()?;
    // Byte loops rather than `str::find`: the declaration is a few dozen bytes, less
    // than what setting up a substring search costs.
    let at = decl.as_bytes().windows(8).position(|w| w == b"encoding")?;
    let rest = decl[at + "encoding".len()..]
        .trim_start()
        .strip_prefix('=')?;
    let rest = rest.trim_start();
    let quote = *rest
        .as_bytes()
        .first()
        .filter(|c| matches!(c, b'"' | b'\''))?;
    let rest = &rest[1..];
    rest.bytes().position(|c| c == quote).map(|e| &rest[..e])
}

/// Decodes `body` to UTF-8 text; borrows when it already is UTF-8 (the common case).
pub(crate) fn to_utf8<'a>(
    body: &'a [u8],
    charset_param: Option<&str>,
) -> Result<Cow<'a, str>, PidfError> {
    let (enc, bytes) = if let Some(rest) = body.strip_prefix(b"\xEF\xBB\xBF") {
        (Enc::Utf8, rest)
    } else if let Some(rest) = body.strip_prefix(b"\xFF\xFE") {
        (Enc::Utf16Le, rest)
    } else if let Some(rest) = body.strip_prefix(b"\xFE\xFF") {
        (Enc::Utf16Be, rest)
    } else if body.starts_with(b"<\0?\0") {
        (Enc::Utf16Le, body)
    } else if body.starts_with(b"\0<\0?") {
        (Enc::Utf16Be, body)
    } else {
        let enc = match (charset_param, declared(body)) {
            (Some(cs), _) => by_name(cs)?,
            (None, Some(decl)) => by_name(decl)?,
            (None, None) => Enc::Utf8,
        };
        // "UTF-16" by name without a BOM or a recognisable '<?' is not readable.
        (enc, body)
    };
    match enc {
        Enc::Utf8 if bytes.is_ascii() => {
            // SAFETY: every byte is below 0x80, and a sequence of such bytes is valid
            // UTF-8 (each is a one-byte character, RFC 3629 §3). `is_ascii` checks
            // a word at a time, several times faster than the general validation,
            // and nearly every presence document is ASCII.
            Ok(Cow::Borrowed(unsafe {
                std::str::from_utf8_unchecked(bytes)
            }))
        }
        Enc::Utf8 => {
            std::str::from_utf8(bytes)
                .map(Cow::Borrowed)
                .map_err(|e| PidfError::BadEncoding {
                    encoding: "UTF-8",
                    message: e.to_string(),
                })
        }
        Enc::Ascii => {
            if let Some(p) = bytes.iter().position(|b| !b.is_ascii()) {
                return Err(PidfError::BadEncoding {
                    encoding: "US-ASCII",
                    message: format!("byte {:#04x} at offset {p}", bytes[p]),
                });
            }
            // ASCII is UTF-8; the check above makes this infallible.
            std::str::from_utf8(bytes)
                .map(Cow::Borrowed)
                .map_err(|e| PidfError::BadEncoding {
                    encoding: "US-ASCII",
                    message: e.to_string(),
                })
        }
        // ISO-8859-1 maps each byte to the code point of the same value.
        Enc::Latin1 => Ok(Cow::Owned(bytes.iter().map(|&b| b as char).collect())),
        Enc::Utf16Le | Enc::Utf16Be => {
            if bytes.len() % 2 != 0 {
                return Err(PidfError::BadEncoding {
                    encoding: "UTF-16",
                    message: "odd number of bytes".into(),
                });
            }
            let units = bytes.chunks_exact(2).map(|c| {
                if enc == Enc::Utf16Le {
                    u16::from_le_bytes([c[0], c[1]])
                } else {
                    u16::from_be_bytes([c[0], c[1]])
                }
            });
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .map(Cow::Owned)
                .map_err(|e| PidfError::BadEncoding {
                    encoding: "UTF-16",
                    message: e.to_string(),
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_borrows_and_strips_bom() {
        assert!(matches!(
            to_utf8(b"<a/>", None).unwrap(),
            Cow::Borrowed("<a/>")
        ));
        assert_eq!(to_utf8(b"\xEF\xBB\xBF<a/>", None).unwrap(), "<a/>");
    }

    /// The ASCII shortcut and the general validation give the same text, and bytes
    /// above 0x7F still go through the validation.
    #[test]
    fn ascii_and_other_utf8_read_alike() {
        for doc in ["<a>x</a>", "<a>caf\u{e9} \u{1F600}</a>", ""] {
            assert!(matches!(to_utf8(doc.as_bytes(), None), Ok(Cow::Borrowed(s)) if s == doc));
        }
        assert!(to_utf8(b"<a>\x80</a>", None).is_err());
        assert!(to_utf8(b"<a>\xC3</a>", Some("utf-8")).is_err());
    }

    #[test]
    fn latin1_declared_in_xml_is_transcoded() {
        let doc = b"<?xml version='1.0' encoding='ISO-8859-1'?><a>caf\xe9</a>";
        assert_eq!(
            to_utf8(doc, None).unwrap(),
            "<?xml version='1.0' encoding='ISO-8859-1'?><a>caf\u{e9}</a>"
        );
    }

    #[test]
    fn charset_parameter_beats_declaration() {
        let doc = b"<?xml version='1.0' encoding='UTF-8'?><a>\xe9</a>";
        assert!(to_utf8(doc, None).is_err());
        assert_eq!(
            to_utf8(doc, Some("latin1")).unwrap().chars().last(),
            Some('>')
        );
    }

    #[test]
    fn utf16_with_and_without_bom() {
        let le: Vec<u8> = "<?xml version='1.0'?><a/>"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        assert_eq!(to_utf8(&le, None).unwrap(), "<?xml version='1.0'?><a/>");
        let mut be = vec![0xFE, 0xFF];
        be.extend("<a/>".encode_utf16().flat_map(|u| u.to_be_bytes()));
        assert_eq!(to_utf8(&be, None).unwrap(), "<a/>");
        assert!(to_utf8(&le[..le.len() - 1], None).is_err());
    }

    #[test]
    fn unknown_or_lying_encodings_are_refused() {
        let doc = b"<?xml version='1.0' encoding='Shift_JIS'?><a/>";
        assert_eq!(
            to_utf8(doc, None),
            Err(PidfError::UnsupportedEncoding("Shift_JIS".into()))
        );
        assert!(to_utf8(b"<a>\xff</a>", None).is_err());
        assert!(to_utf8(b"<a>\xe9</a>", Some("us-ascii")).is_err());
        // Declared UTF-16 with single-byte content: not readable, not guessed.
        assert!(to_utf8(b"<?xml version='1.0' encoding='UTF-16'?><a/>", None).is_err());
    }
}
