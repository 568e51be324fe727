//! The quick pass of [`scan`](super::xml::scan): the well-formedness checks of the
//! quick-xml pass, for the shape nearly every presence document has (elements,
//! attributes, character data and references, comments, an XML declaration, a simple
//! DOCTYPE), without building an event for every tag. Only the bytes that can change
//! the verdict are visited: each 64-byte block of the document is classified at once
//! (SSE2 on x86_64, eight bytes a step elsewhere) into a bit mask of its `<`, `>`,
//! `&` and quotes, and the scan jumps from one set bit to the next, so runs of
//! character data and attribute values cost a few instructions per 64 bytes.
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

/// The bytes the scan stops at between tags and inside them: `<` and `>` delimit
/// tags, quotes delimit attribute values (a `>` inside one does not end the tag), `&`
/// starts a reference that must be checked. Everything else in character data and
/// attribute values is skipped without a look, a 64-byte block at a time.
#[cfg(test)]
const fn is_structural(c: u8) -> bool {
    matches!(c, b'<' | b'>' | b'&' | b'"' | b'\'')
}

/// A way to find the structural bytes of a 64-byte block: bit `k` of the answer is set
/// when `block[k]` is one of them. Two implementations, so the portable one is
/// tested against the vector one on the machines that have both.
pub(crate) trait Classify {
    fn structural(block: &[u8; 64]) -> u64;
    /// Bit `k` set when `chunk[k]` [`is_name_delimiter`].
    fn name_delimiters(chunk: &[u8; 16]) -> u32;
}

/// The bytes that end a tag name besides the structural ones: whitespace (quick-xml's
/// rule), and control bytes, `/` and `=`, which the caller leaves to quick-xml.
const fn is_name_delimiter(c: u8) -> bool {
    c <= 0x20 || c == b'/' || c == b'='
}

/// The classifier for targets without SSE2 (compiled everywhere, and tested against
/// the SSE2 one where both exist).
#[cfg_attr(
    all(target_arch = "x86_64", target_feature = "sse2", not(test)),
    allow(dead_code)
)]
mod portable {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;

    /// The high bit of each zero byte of `x`, exactly: no carry crosses a byte, since
    /// the sum of two 7-bit values fits in 8 bits.
    #[inline(always)]
    const fn zero_bytes(x: u64) -> u64 {
        !(((x & LOW7) + LOW7) | x) & HI
    }

    /// Eight bytes a step with integer arithmetic.
    pub(crate) struct Portable;

    /// The high bit of each byte of `x` below `n` (1 ≤ `n` ≤ 128), exactly, by the
    /// same argument.
    #[inline(always)]
    const fn below(x: u64, n: u8) -> u64 {
        !(((x & LOW7) + LO * (0x80 - n as u64)) | x) & HI
    }

    /// Gathers the high bit of each byte (bit 8j + 7) into bit j.
    #[inline(always)]
    const fn gather(hits: u64) -> u64 {
        ((hits >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
    }

    fn words<const N: usize>(chunk: &[u8; N], hits: impl Fn(u64) -> u64) -> u64 {
        let mut mask = 0u64;
        for (k, bytes) in chunk.chunks_exact(8).enumerate() {
            let mut word = [0u8; 8];
            word.copy_from_slice(bytes);
            mask |= gather(hits(u64::from_le_bytes(word))) << (8 * k);
        }
        mask
    }

    impl super::Classify for Portable {
        #[inline]
        fn structural(block: &[u8; 64]) -> u64 {
            words(block, |w| {
                // `<` 0x3C and `>` 0x3E differ in bit 1, `&` 0x26 and `'` 0x27 in bit 0.
                zero_bytes((w | (2 * LO)) ^ (LO * 0x3E))
                    | zero_bytes((w | LO) ^ (LO * 0x27))
                    | zero_bytes(w ^ (LO * u64::from(b'"')))
            })
        }

        #[inline]
        fn name_delimiters(chunk: &[u8; 16]) -> u32 {
            let mask = words(chunk, |w| {
                below(w, 0x21)
                    | zero_bytes(w ^ (LO * u64::from(b'/')))
                    | zero_bytes(w ^ (LO * u64::from(b'=')))
            });
            // Sixteen bytes, sixteen bits.
            mask as u32
        }
    }
}
#[cfg_attr(
    all(target_arch = "x86_64", target_feature = "sse2", not(test)),
    allow(unused_imports)
)]
pub(crate) use portable::Portable;

/// Sixteen bytes a step with SSE2, which every x86_64 processor has.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
pub(crate) struct Sse2;

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
impl Classify for Sse2 {
    #[inline]
    fn structural(block: &[u8; 64]) -> u64 {
        // SAFETY: the only requirement of a `#[target_feature(enable = "sse2")]`
        // function is that the processor has SSE2, and this impl is compiled only when
        // the target enables SSE2 for all code (`target_feature = "sse2"`, part of the
        // x86_64 baseline).
        unsafe { structural_sse2(block) }
    }

    #[inline]
    fn name_delimiters(chunk: &[u8; 16]) -> u32 {
        // SAFETY: as for `structural`.
        unsafe { name_delimiters_sse2(chunk) }
    }
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
fn name_delimiters_sse2(chunk: &[u8; 16]) -> u32 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    // SAFETY: `chunk` is 16 readable bytes, exactly what is read; `_mm_loadu_si128`
    // has no alignment requirement.
    let v = unsafe { _mm_loadu_si128(chunk.as_ptr().cast()) };
    // `min(v, 0x20) == v` is the unsigned `v <= 0x20`.
    let hits = _mm_or_si128(
        _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x20)), v),
        _mm_or_si128(
            _mm_cmpeq_epi8(v, _mm_set1_epi8(0x2F)),
            _mm_cmpeq_epi8(v, _mm_set1_epi8(0x3D)),
        ),
    );
    // One bit per byte in the low 16 bits; the `u16` cast drops the sign.
    u32::from(_mm_movemask_epi8(hits) as u16)
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
fn structural_sse2(block: &[u8; 64]) -> u64 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    let lt_gt = _mm_set1_epi8(0x3E);
    let amp_apos = _mm_set1_epi8(0x27);
    let quot = _mm_set1_epi8(0x22);
    let bit1 = _mm_set1_epi8(2);
    let bit0 = _mm_set1_epi8(1);
    let mut mask = 0u64;
    for k in 0..4 {
        // SAFETY: `block` is 64 readable bytes and `16 * k + 16 <= 64`, so the 16
        // bytes read lie inside it; `_mm_loadu_si128` has no alignment requirement.
        let v = unsafe { _mm_loadu_si128(block.as_ptr().add(16 * k).cast()) };
        // `<` 0x3C and `>` 0x3E differ in bit 1, `&` 0x26 and `'` 0x27 in bit 0.
        let hits = _mm_or_si128(
            _mm_or_si128(
                _mm_cmpeq_epi8(_mm_or_si128(v, bit1), lt_gt),
                _mm_cmpeq_epi8(_mm_or_si128(v, bit0), amp_apos),
            ),
            _mm_cmpeq_epi8(v, quot),
        );
        // One bit per byte in the low 16 bits; the `u16` cast drops the sign.
        mask |= u64::from(_mm_movemask_epi8(hits) as u16) << (16 * k);
    }
    mask
}

/// The classifier the scan uses on this target.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
pub(crate) type Native = Sse2;
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
pub(crate) type Native = Portable;

/// The structural bytes of the 64-byte block of `b` at `base`, the last block padded
/// with NULs (not structural). A function of values, not of the cursor, so the cursor
/// stays in registers.
#[inline(never)]
fn classify_block<C: Classify>(b: &[u8], base: usize) -> u64 {
    match b.get(base..base + 64) {
        Some(block) => <&[u8; 64]>::try_from(block).map_or(0, C::structural),
        None => {
            let mut pad = [0u8; 64];
            let tail = b.get(base..).unwrap_or_default();
            pad[..tail.len()].copy_from_slice(tail);
            C::structural(&pad)
        }
    }
}

/// Hands out the structural bytes of a document in order, classifying one 64-byte
/// block at a time; a jump (past a comment, say) classifies only the block landed in.
struct Cursor<'a, C> {
    b: &'a [u8],
    /// Offset of the classified block, a multiple of 64.
    base: usize,
    /// The structural bytes of that block not handed out yet.
    mask: u64,
    classify: std::marker::PhantomData<C>,
}

impl<'a, C: Classify> Cursor<'a, C> {
    #[inline(always)]
    fn new(b: &'a [u8]) -> Self {
        let mut cur = Cursor {
            b,
            base: 0,
            mask: 0,
            classify: std::marker::PhantomData,
        };
        cur.load();
        cur
    }

    /// Classifies the block at `base`.
    #[inline(always)]
    fn load(&mut self) {
        self.mask = classify_block::<C>(self.b, self.base);
    }

    /// The next structural byte, or the end of the document.
    #[inline(always)]
    fn pop(&mut self) -> usize {
        while self.mask == 0 {
            if self.base + 64 >= self.b.len() {
                return self.b.len();
            }
            self.base += 64;
            self.load();
        }
        let at = self.base + self.mask.trailing_zeros() as usize;
        self.mask &= self.mask - 1;
        at
    }

    /// Forgets the structural bytes before `from`, which is past every byte handed out.
    #[inline(always)]
    fn skip_to(&mut self, from: usize) {
        if from >= self.base + 64 {
            if from >= self.b.len() {
                self.base = self.b.len() & !63;
                self.mask = 0;
                return;
            }
            self.base = from & !63;
            self.load();
        }
        if from > self.base {
            self.mask &= !0u64 << (from - self.base);
        }
    }
}

/// The end of a tag name starting at `from`: the first whitespace or control byte,
/// `/` or `=` before `stop` (the next structural byte), else `stop`. quick-xml ends a
/// name at whitespace only; a name with the other bytes is left to it by the caller.
#[inline(always)]
fn name_end<C: Classify>(b: &[u8], mut from: usize, stop: usize) -> usize {
    while from < stop {
        match b.get(from..from + 16).map(<&[u8; 16]>::try_from) {
            Some(Ok(chunk)) => {
                let m = C::name_delimiters(chunk);
                if m != 0 {
                    return stop.min(from + m.trailing_zeros() as usize);
                }
                from += 16;
            }
            _ => {
                let name = b.get(from..stop).unwrap_or_default();
                return name
                    .iter()
                    .position(|&c| is_name_delimiter(c))
                    .map_or(stop, |k| from + k);
            }
        }
    }
    stop
}

/// `a == b` for two tag names of the same length, inline: names are a few bytes
/// long, too short to repay a call to `memcmp` for every end tag.
#[inline(always)]
fn same(a: &[u8], b: &[u8]) -> bool {
    let word = |s: &[u8], at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[at..at + 8]);
        u64::from_ne_bytes(w)
    };
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 8 {
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    // Whole words, then the last eight bytes (overlapping the previous word).
    let mut at = 0;
    while at + 8 <= n {
        if word(a, at) != word(b, at) {
            return false;
        }
        at += 8;
    }
    word(a, n - 8) == word(b, n - 8)
}

/// The `>` ending a tag, from the structural byte `at` on, outside quoted attribute
/// values (quick-xml's `ElementParser`: only quotes and `>` matter in a tag).
#[inline(always)]
fn tag_end<C: Classify>(cur: &mut Cursor<'_, C>, mut at: usize) -> Option<usize> {
    let b = cur.b;
    loop {
        match *b.get(at)? {
            b'>' => return Some(at),
            q @ (b'"' | b'\'') => {
                let mut close = cur.pop();
                while *b.get(close)? != q {
                    close = cur.pop();
                }
                at = cur.pop();
            }
            _ => at = cur.pop(),
        }
    }
}

/// Checks `text` and pushes the starts and ends of elements shallower than
/// `resolve_depth` onto `marks`. `false`: not sure, run the quick-xml pass.
/// `C` classifies the bytes ([`Native`] outside tests).
pub(crate) fn shallow_marks_with<C: Classify>(
    text: &str,
    resolve_depth: usize,
    marks: &mut Vec<Mark>,
) -> bool {
    let b = text.as_bytes();
    // quick-xml skips a byte order mark without counting it in positions.
    if b.starts_with(b"\xEF\xBB\xBF") {
        return false;
    }
    let mut cur = Cursor::<C>::new(b);
    // Open elements: where each name starts and its length.
    let mut open = [(0usize, 0usize); MAX_DEPTH];
    let mut depth = 0usize;
    let mut root_seen = false;
    // Where the character data before the next tag starts.
    let mut i = 0usize;
    loop {
        // Character data up to the next `<`: at the top level only whitespace (the
        // quick-xml pass refuses anything else outside the root); inside, references
        // must resolve.
        let mut lt = cur.pop();
        let mut amp = false;
        while lt < b.len() && b[lt] != b'<' {
            amp |= b[lt] == b'&';
            lt = cur.pop();
        }
        if lt > i && (depth == 0 || amp) {
            let ok = match text.get(i..lt) {
                Some(seg) if depth == 0 => seg.bytes().all(|c| c.is_ascii_whitespace()),
                Some(seg) => quick_xml::escape::unescape(seg).is_ok(),
                None => false,
            };
            if !ok {
                return false;
            }
        }
        if lt == b.len() {
            return depth == 0 && root_seen;
        }
        match b.get(lt + 1) {
            Some(b'/') => {
                // The open element's name, then optional whitespace and `>`: none of
                // them structural, so the `>` is the next structural byte.
                if depth == 0 {
                    return false;
                }
                depth -= 1;
                let (start, len) = open[depth];
                let gt = cur.pop();
                let after = lt + 2 + len;
                if b.get(gt) != Some(&b'>')
                    || after > gt
                    || !same(&b[lt + 2..after], &b[start..start + len])
                    || !b[after..gt].iter().all(|&c| is_space(c))
                {
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
                cur.skip_to(i);
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
                cur.skip_to(i);
            }
            Some(_) => {
                let stop = cur.pop();
                let name_end = name_end::<C>(b, lt + 1, stop);
                let name_len = name_end - (lt + 1);
                // The name ends the tag, ends an empty tag, or is followed by space.
                // In the first two cases the `>` is `stop`, the structural byte popped.
                let gt = match b.get(name_end) {
                    Some(b'>') => name_end,
                    Some(b'/') if b.get(name_end + 1) == Some(&b'>') => name_end + 1,
                    Some(&c) if is_space(c) => match tag_end(&mut cur, stop) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(block: &[u8; 64]) -> u64 {
        block
            .iter()
            .enumerate()
            .filter(|(_, &c)| is_structural(c))
            .fold(0, |m, (k, _)| m | 1 << k)
    }

    fn reference_delimiters(chunk: &[u8; 16]) -> u32 {
        chunk
            .iter()
            .enumerate()
            .filter(|(_, &c)| is_name_delimiter(c))
            .fold(0, |m, (k, _)| m | 1 << k)
    }

    /// Every byte value at every position, over backgrounds of every structural or
    /// delimiting byte and of their neighbours (a carry or a sign would show there),
    /// and pseudo-random blocks: both classifiers give the byte-by-byte answer.
    #[test]
    fn classifiers_agree_with_the_byte_rule() {
        let mut blocks = Vec::new();
        let backgrounds = [
            0u8, b'a', b'<', b'=', b'>', b'&', b'\'', b'"', b'!', b'/', b' ', 0x20, 0x21, 0x1F,
            0x7F, 0x80, 0xA0, 0xFF,
        ];
        for background in backgrounds {
            for pos in 0..64 {
                for c in 0..=255u8 {
                    let mut block = [background; 64];
                    block[pos] = c;
                    blocks.push(block);
                }
            }
        }
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            let mut block = [0u8; 64];
            for c in &mut block {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Mostly markup and its neighbours, some of anything.
                *c = if x & 3 == 0 {
                    (x >> 8) as u8
                } else {
                    b"<>&'\"=;%()! a/\t"[(x >> 8) as usize % 15]
                };
            }
            blocks.push(block);
        }
        for block in &blocks {
            let want = reference(block);
            assert_eq!(Portable::structural(block), want, "{block:?}");
            assert_eq!(Native::structural(block), want, "{block:?}");
            for chunk in block.chunks_exact(16) {
                let chunk: &[u8; 16] = chunk.try_into().unwrap();
                let want = reference_delimiters(chunk);
                assert_eq!(Portable::name_delimiters(chunk), want, "{chunk:?}");
                assert_eq!(Native::name_delimiters(chunk), want, "{chunk:?}");
            }
        }
    }

    /// The cursor hands out every structural byte in order, after any jump, over
    /// lengths around the block size (the last block is padded).
    #[test]
    fn cursor_walks_every_structural_byte() {
        let unit = b"ab<c d='e'>f&g;\"h\"</c>xyz";
        for len in [0, 1, 63, 64, 65, 127, 128, 129, 200] {
            let doc: Vec<u8> = unit.iter().cycle().take(len).copied().collect();
            for from in 0..=len + 1 {
                let want: Vec<usize> = (from.min(len)..len)
                    .filter(|&i| is_structural(doc[i]))
                    .collect();
                let mut got = Vec::new();
                let mut cur = Cursor::<Native>::new(&doc);
                cur.skip_to(from);
                let mut at = cur.pop();
                while at < len {
                    got.push(at);
                    at = cur.pop();
                }
                assert_eq!(at, len);
                assert_eq!(cur.pop(), len, "the end stays the end");
                assert_eq!(got, want, "len {len} from {from}");
            }
        }
    }
}
