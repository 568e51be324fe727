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
use memchr::{memchr, memchr3, memmem};
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

/// quick-xml's whitespace (`utils::is_whitespace`), which delimits names.
const fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\r' | b'\n' | b'\t')
}

/// Bytes accepted in a tag name here: XML name characters in ASCII, and any byte of a
/// multi-byte character. Stricter than quick-xml (which takes anything up to
/// whitespace); a name with other bytes goes to the quick-xml pass.
const fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'.' | b'-') || b >= 0x80
}

/// The `>` ending a tag whose content starts at `from`, outside quoted attribute
/// values (quick-xml's `ElementParser`).
fn tag_end(b: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    loop {
        let i = at + memchr3(b'>', b'"', b'\'', b.get(at..)?)?;
        if b[i] == b'>' {
            return Some(i);
        }
        at = i + 1 + memchr(b[i], b.get(i + 1..)?)? + 1;
    }
}

/// Character data between tags: at the top level only whitespace (the quick-xml pass
/// refuses anything else outside the root); inside, references must resolve.
fn text_ok(text: &str, range: Range<usize>, depth: usize) -> bool {
    let Some(seg) = text.get(range) else {
        return false;
    };
    if depth == 0 {
        seg.bytes().all(|b| b.is_ascii_whitespace())
    } else {
        memchr(b'&', seg.as_bytes()).is_none() || quick_xml::escape::unescape(seg).is_ok()
    }
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
        let Some(lt) = memchr(b'<', &b[i..]).map(|k| i + k) else {
            return depth == 0 && root_seen && text_ok(text, i..b.len(), 0);
        };
        if lt > i && !text_ok(text, i..lt, depth) {
            return false;
        }
        let position = lt as u64;
        match b.get(lt + 1) {
            Some(b'/') => {
                let Some(gt) = memchr(b'>', &b[lt + 2..]).map(|k| lt + 2 + k) else {
                    return false;
                };
                let content = &b[lt + 2..gt];
                if depth == 0 || memchr::memchr2(b'"', b'\'', content).is_some() {
                    return false;
                }
                let name_end = content
                    .iter()
                    .rposition(|&c| !is_space(c))
                    .map_or(0, |p| p + 1);
                depth -= 1;
                let (start, len) = open[depth];
                if b[start..start + len] != content[..name_end] {
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
                        || after_keyword.iter().all(|&c| is_space(c))
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
                let Some(gt) = tag_end(b, lt + 1) else {
                    return false;
                };
                let mut content = lt + 1..gt;
                let empty = gt > lt + 1 && b[gt - 1] == b'/';
                if empty {
                    content.end -= 1;
                }
                let c = &b[content.clone()];
                let name_len = c.iter().position(|&x| is_space(x)).unwrap_or(c.len());
                if name_len == 0 || !c[..name_len].iter().all(|&x| is_name_byte(x)) {
                    return false;
                }
                if (depth == 0 && root_seen) || depth >= MAX_DEPTH {
                    return false;
                }
                root_seen = true;
                if depth < resolve_depth {
                    marks.push(Mark::Start {
                        depth,
                        content: content.clone(),
                        name_len,
                        empty,
                        position,
                    });
                    if empty {
                        marks.push(Mark::End { depth });
                    }
                }
                if !empty {
                    open[depth] = (content.start, name_len);
                    depth += 1;
                }
                i = gt + 1;
            }
            None => return false,
        }
    }
}
