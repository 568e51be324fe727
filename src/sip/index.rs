//! The header index of a parsed message: a fixed-capacity inline array of spans
//! of which only the used prefix is ever written or read.
//!
//! Parsing must not allocate for the index (issue 2), so it lives inline in the
//! [`super::Message`]. Zero-filling all [`MAX_HEADERS_CAPACITY`] entries on every
//! parse cost more than scanning a typical 15-header message (cachegrind: ~2.3k of
//! ~16k instructions), so the entries past [`HeaderIndex::len`] stay uninitialised.

use std::mem::MaybeUninit;

use super::message::{Header, MAX_HEADERS_CAPACITY};

/// Spans of the header lines in message order.
///
/// Invariant: `len <= MAX_HEADERS_CAPACITY` and `entries[..len]` are initialised.
/// Only [`HeaderIndex::push`] raises `len`, and it writes the entry first.
#[derive(Clone, Copy)]
pub(crate) struct HeaderIndex {
    entries: [MaybeUninit<Header>; MAX_HEADERS_CAPACITY],
    len: u16,
}

impl HeaderIndex {
    pub(crate) fn new() -> HeaderIndex {
        HeaderIndex {
            // An inline-const repeat: `[MaybeUninit::uninit(); N]` was still
            // compiled to a 2.3 KB memset.
            entries: [const { MaybeUninit::uninit() }; MAX_HEADERS_CAPACITY],
            len: 0,
        }
    }

    /// Forgets every entry, so a [`super::Message`] can be parsed into again.
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    pub(crate) fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Appends one entry; `false` (and nothing stored) when the index is full.
    pub(crate) fn push(&mut self, h: Header) -> bool {
        let Some(slot) = self.entries.get_mut(usize::from(self.len)) else {
            return false;
        };
        slot.write(h);
        self.len += 1;
        true
    }

    /// The entries written so far.
    pub(crate) fn as_slice(&self) -> &[Header] {
        let init = &self.entries[..usize::from(self.len)];
        // SAFETY: by the type's invariant every entry of `entries[..len]` was written
        // by `push`; `MaybeUninit<Header>` has the same layout as `Header`, so a
        // slice of initialised ones may be read as a slice of `Header`.
        unsafe { &*(init as *const [MaybeUninit<Header>] as *const [Header]) }
    }

    /// The last entry written, to extend it over a folded continuation line.
    pub(crate) fn last_mut(&mut self) -> Option<&mut Header> {
        let last = usize::from(self.len).checked_sub(1)?;
        // SAFETY: `last < len`, so by the invariant this entry was written by `push`.
        Some(unsafe { self.entries[last].assume_init_mut() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::HeaderKind;

    fn header(n: u16) -> Header {
        Header {
            line_start: n,
            name_end: n + 1,
            value_start: n + 2,
            value_end: n + 3,
            line_end: n + 4,
            kind: HeaderKind::Other,
        }
    }

    #[test]
    fn holds_exactly_what_was_pushed_up_to_capacity() {
        let mut idx = HeaderIndex::new();
        assert!(idx.as_slice().is_empty());
        assert!(idx.last_mut().is_none());
        for n in 0..MAX_HEADERS_CAPACITY as u16 {
            assert!(idx.push(header(n)));
        }
        assert!(!idx.push(header(999)), "a full index refuses more");
        assert_eq!(idx.len(), MAX_HEADERS_CAPACITY);
        let all = idx.as_slice();
        assert!(all.iter().enumerate().all(|(i, h)| *h == header(i as u16)));
        idx.last_mut().unwrap().line_end = 7;
        assert_eq!(idx.as_slice()[MAX_HEADERS_CAPACITY - 1].line_end, 7);
        let copy = idx;
        assert_eq!(copy.as_slice(), idx.as_slice());
        idx.clear();
        assert!(idx.as_slice().is_empty());
        assert!(idx.push(header(3)));
        assert_eq!(idx.as_slice(), &[header(3)]);
    }
}
