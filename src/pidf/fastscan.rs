//! The quick pass of [`scan`](super::xml::scan): the well-formedness checks of the
//! quick-xml pass, done eight bytes a step over the text instead of building an event
//! for every tag, for the shape nearly every presence document has (elements, attributes,
//! character data and references, comments, an XML declaration, a simple DOCTYPE).
//!
//! It answers *yes* only for documents the quick-xml pass accepts too, and then hands
//! back the tags of the shallow elements, which the caller resolves and visits exactly
//! as the quick-xml pass would. Anything it is not sure of (CDATA, a DOCTYPE with an
//! internal subset, an odd name, any error at all) is a *no*, and the caller runs the
//! quick-xml pass from the start: that pass decides, and names the error. So this
//! file may be stricter than quick-xml, never more lenient; the tests
//! `xml::tests::fast_scan_agrees_with_quick_xml*` hold it to that.
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

/// quick-xml's whitespace (`utils::is_whitespace`), which delimits names.
const fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\r' | b'\n' | b'\t')
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `w` equal to `c`. Bytes above a match may be flagged
/// too (a borrow), never bytes below it, so the lowest flag is exact.
#[inline(always)]
const fn eq_mask(w: u64, c: u8) -> u64 {
    let x = w ^ (LO * c as u64);
    x.wrapping_sub(LO) & !x & HI
}

/// The high bit of each byte of `w` below `n` (`n` ≤ 128); the lowest flag is exact.
#[inline(always)]
const fn lt_mask(w: u64, n: u8) -> u64 {
    w.wrapping_sub(LO * n as u64) & !w & HI
}

/// The first index at or after `from` whose byte is flagged by `word` (eight bytes at
/// a time) and `byte` (the tail), or `b.len()`. Tags and text in presence documents
/// are a few bytes long: too short for a vectorised search to repay its call, long
/// enough for eight bytes a step to beat one.
#[inline(always)]
fn first(b: &[u8], mut from: usize, word: impl Fn(u64) -> u64, byte: impl Fn(u8) -> bool) -> usize {
    while let Some(Ok(chunk)) = b.get(from..from + 8).map(<[u8; 8]>::try_from) {
        let m = word(u64::from_le_bytes(chunk));
        if m != 0 {
            return from + (m.trailing_zeros() / 8) as usize;
        }
        from += 8;
    }
    while from < b.len() && !byte(b[from]) {
        from += 1;
    }
    from
}

/// The end of a tag name starting at `from`: the first whitespace or control byte,
/// `>`, `/`, quote, `<`, `=` or `&`. quick-xml ends a name at whitespace only; a name
/// with the other bytes is left to it by the caller.
fn name_end(b: &[u8], from: usize) -> usize {
    first(
        b,
        from,
        |w| {
            lt_mask(w, 0x21)
                | eq_mask(w, b'>')
                | eq_mask(w, b'/')
                | eq_mask(w, b'"')
                | eq_mask(w, b'\'')
                | eq_mask(w, b'<')
                | eq_mask(w, b'=')
                | eq_mask(w, b'&')
        },
        |c| c <= 0x20 || matches!(c, b'>' | b'/' | b'"' | b'\'' | b'<' | b'=' | b'&'),
    )
}

/// The `>` ending a tag, from `from` on, outside quoted attribute values (quick-xml's
/// `ElementParser`).
fn tag_end(b: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let i = first(
            b,
            from,
            |w| eq_mask(w, b'>') | eq_mask(w, b'"') | eq_mask(w, b'\''),
            |c| matches!(c, b'>' | b'"' | b'\''),
        );
        let q = *b.get(i)?;
        if q == b'>' {
            return Some(i);
        }
        let close = first(b, i + 1, |w| eq_mask(w, q), |c| c == q);
        b.get(close)?;
        from = close + 1;
    }
}

/// Character data from `from` to the next `<` (or the end): at the top level only
/// whitespace (the quick-xml pass refuses anything else outside the root); inside,
/// references must resolve. `None`: not sure.
fn text_end(text: &str, from: usize, depth: usize) -> Option<usize> {
    let b = text.as_bytes();
    let stop = |from| {
        first(
            b,
            from,
            |w| eq_mask(w, b'<') | eq_mask(w, b'&'),
            |c| c == b'<' || c == b'&',
        )
    };
    let mut i = stop(from);
    let mut amp = false;
    while i < b.len() && b[i] == b'&' {
        amp = true;
        i = stop(i + 1);
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
                // The open element's name, then optional whitespace and `>`.
                if depth == 0 {
                    return false;
                }
                depth -= 1;
                let (start, len) = open[depth];
                let after = lt + 2 + len;
                if b.get(lt + 2..after) != Some(&b[start..start + len]) {
                    return false;
                }
                let mut gt = after;
                while gt < b.len() && is_space(b[gt]) {
                    gt += 1;
                }
                if b.get(gt) != Some(&b'>') {
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
                let name_end = name_end(b, lt + 1);
                let name_len = name_end - (lt + 1);
                // The name ends the tag, ends an empty tag, or is followed by space.
                let gt = match b.get(name_end) {
                    Some(b'>') => name_end,
                    Some(b'/') if b.get(name_end + 1) == Some(&b'>') => name_end + 1,
                    Some(&c) if is_space(c) => match tag_end(b, name_end) {
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
