//! The quick pass of [`scan`](super::xml::scan): the well-formedness checks of the
//! quick-xml pass, done with `memchr` over the bytes instead of building an event for
//! every tag, for the shape nearly every presence document has (elements, attributes,
//! character data and references, comments, an XML declaration, a simple DOCTYPE).
//!
//! It answers *yes* only for documents the quick-xml pass accepts too, and then hands
//! back the tags of the shallow elements, which the caller resolves and visits exactly
//! as the quick-xml pass would. Anything it is not sure of (CDATA, a DOCTYPE with an
//! internal subset, an odd name, any error at all) is a *no*, and the caller runs the
//! quick-xml pass from the start: that pass decides, and names the error. So this
//! file may be stricter than quick-xml, never more lenient; `tests::agrees_with_quick_xml`
//! holds it to that.
//!
//! The rules mirror quick-xml 0.37 (`reader/state.rs`, `parser/element.rs`,
//! `parser/pi.rs`, `BangType::parse`) with the reader configuration of the quick-xml
//! pass (`check_comments`, end names checked and trimmed, no text trimming).

use super::MAX_DEPTH;
use memchr::{memchr, memmem};
use std::ops::Range;

/// A shallow element's start or end, in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mark {
    /// A start tag or an empty-element tag: `content` is what lies between `<` and
    /// `>` (without the `/` of an empty element), as quick-xml's `BytesStart` holds it.
    Start {
        depth: usize,
        content: Range<usize>,
        name_len: usize,
        empty: bool,
        /// quick-xml's `buffer_position()` before the event, for error messages.
        position: u64,
    },
    /// The end of the shallow element at `depth` (also sent after an empty element).
    End { depth: usize },
}

/// Byte classes, one table lookup per byte: tags and text in presence documents are a
/// few bytes long, too short for a vectorised search to pay for its call.
const NAME: u8 = 1;
/// quick-xml's whitespace (`utils::is_whitespace`), which delimits names.
const SPACE: u8 = 2;
/// Where character data stops being plain: `<` and `&`.
const TEXT_STOP: u8 = 4;
/// Where a tag's attribute part needs a look: `>` and quotes.
const TAG_STOP: u8 = 8;

/// Name bytes accepted here: XML name characters in ASCII and any byte of a
/// multi-byte character. Stricter than quick-xml (which takes anything up to
/// whitespace); a name with other bytes goes to the quick-xml pass.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() || matches!(c, b'_' | b':' | b'.' | b'-') || c >= 0x80 {
            t[b] |= NAME;
        }
        if matches!(c, b' ' | b'\r' | b'\n' | b'\t') {
            t[b] |= SPACE;
        }
        if matches!(c, b'<' | b'&') {
            t[b] |= TEXT_STOP;
        }
        if matches!(c, b'>' | b'"' | b'\'') {
            t[b] |= TAG_STOP;
        }
        b += 1;
    }
    t
};

fn class(b: u8) -> u8 {
    CLASS[b as usize]
}

/// The first index at or after `from` whose byte is not in `class`.
fn skip(b: &[u8], mut from: usize, in_class: u8) -> usize {
    while from < b.len() && class(b[from]) & in_class != 0 {
        from += 1;
    }
    from
}

/// The first index at or after `from` whose byte is in `class`.
fn find(b: &[u8], mut from: usize, stop: u8) -> usize {
    while from < b.len() && class(b[from]) & stop == 0 {
        from += 1;
    }
    from
}

/// The `>` ending a tag, from `from` on, outside quoted attribute values (quick-xml's
/// `ElementParser`).
fn tag_end(b: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let i = find(b, from, TAG_STOP);
        let q = *b.get(i)?;
        if q == b'>' {
            return Some(i);
        }
        from = i + 1;
        while *b.get(from)? != q {
            from += 1;
        }
        from += 1;
    }
}

/// Character data from `from` to the next `<` (or the end): at the top level only
/// whitespace (the quick-xml pass refuses anything else outside the root); inside,
/// references must resolve. `None`: not sure.
fn text_end(text: &str, from: usize, depth: usize) -> Option<usize> {
    let b = text.as_bytes();
    let mut i = find(b, from, TEXT_STOP);
    let mut amp = false;
    while i < b.len() && b[i] == b'&' {
        amp = true;
        i = find(b, i + 1, TEXT_STOP);
    }
    if i == from {
        return Some(i);
    }
    let seg = text.get(from..i)?;
    let ok = if depth == 0 {
        seg.bytes().all(|c| c.is_ascii_whitespace())
    } else {
        !amp || quick_xml::escape::unescape(seg).is_ok()
    };
    ok.then_some(i)
}

/// Checks `text` and pushes the starts and ends of elements shallower than
/// `resolve_depth` onto `marks`. `false`: not sure, run the quick-xml pass.
pub(crate) fn shallow_marks(text: &str, resolve_depth: usize, marks: &mut Vec<Mark>) -> bool {
    let b = text.as_bytes();
    // quick-xml skips a byte order mark without counting it in positions.
    if b.starts_with(b"\xEF\xBB\xBF") {
        return false;
    }
    // Open elements: where each name starts and its length.
    let mut open = [(0usize, 0usize); MAX_DEPTH];
    let mut depth = 0usize;
    let mut root_seen = false;
    let mut i = 0usize;
    loop {
        let Some(lt) = text_end(text, i, depth) else {
            return false;
        };
        if lt == b.len() {
            return depth == 0 && root_seen;
        }
        match b.get(lt + 1) {
            Some(b'/') => {
                let name_end = skip(b, lt + 2, NAME);
                let gt = skip(b, name_end, SPACE);
                if depth == 0 || b.get(gt) != Some(&b'>') {
                    return false;
                }
                depth -= 1;
                let (start, len) = open[depth];
                if b[start..start + len] != b[lt + 2..name_end] {
                    return false;
                }
                if depth < resolve_depth {
                    marks.push(Mark::End { depth });
                }
                i = gt + 1;
            }
            Some(b'!') => {
                if b[lt..].starts_with(b"<!--") {
                    // The first `--` must end the comment (check_comments).
                    let Some(dd) = memmem::find(&b[lt + 4..], b"--").map(|k| lt + 4 + k) else {
                        return false;
                    };
                    if b.get(dd + 2) != Some(&b'>') {
                        return false;
                    }
                    i = dd + 3;
                } else if b[lt..].starts_with(b"<!DOCTYPE") && !root_seen {
                    let Some(gt) = memchr(b'>', &b[lt..]).map(|k| lt + k) else {
                        return false;
                    };
                    let after_keyword = &b[lt + 9..gt];
                    if memchr::memchr2(b'<', b'[', after_keyword).is_some()
                        || after_keyword.iter().all(|&c| class(c) & SPACE != 0)
                    {
                        return false;
                    }
                    i = gt + 1;
                } else {
                    return false;
                }
            }
            Some(b'?') => {
                // The first `>` after a `?` (quick-xml's `PiParser`); `<?>` is an error.
                let mut from = lt + 2;
                let gt = loop {
                    let Some(gt) = b.get(from..).and_then(|s| memchr(b'>', s)) else {
                        return false;
                    };
                    let gt = from + gt;
                    if b[gt - 1] == b'?' {
                        break gt;
                    }
                    from = gt + 1;
                };
                if gt == lt + 2 {
                    return false;
                }
                i = gt + 1;
            }
            Some(_) => {
                let name_end = skip(b, lt + 1, NAME);
                let name_len = name_end - (lt + 1);
                // The name ends the tag, ends an empty tag, or is followed by space.
                let gt = match b.get(name_end) {
                    Some(b'>') => name_end,
                    Some(b'/') if b.get(name_end + 1) == Some(&b'>') => name_end + 1,
                    Some(&c) if class(c) & SPACE != 0 => match tag_end(b, name_end) {
                        Some(gt) => gt,
                        None => return false,
                    },
                    _ => return false,
                };
                if name_len == 0 || (depth == 0 && root_seen) || depth >= MAX_DEPTH {
                    return false;
                }
                root_seen = true;
                let empty = b[gt - 1] == b'/';
                let content = lt + 1..gt - usize::from(empty);
                if depth < resolve_depth {
                    marks.push(Mark::Start {
                        depth,
                        content,
                        name_len,
                        empty,
                        position: lt as u64,
                    });
                    if empty {
                        marks.push(Mark::End { depth });
                    }
                }
                if !empty {
                    open[depth] = (lt + 1, name_len);
                    depth += 1;
                }
                i = gt + 1;
            }
            None => return false,
        }
    }
}
