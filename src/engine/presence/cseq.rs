//! The per-dialog CSeq offset that lets the proxy insert NOTIFYs of its own into a
//! dialog the notifier drives (DESIGN.md "Decisions change").
//!
//! RFC 3261 §12.2.2: a UAS rejects a request whose CSeq is not above the last one
//! it saw in the dialog, and the notifier matches responses by CSeq. So every
//! NOTIFY the proxy adds takes the next number on the watcher's side, later
//! notifier NOTIFYs are renumbered above it, and the watcher's responses are
//! renumbered back before they reach the notifier.

/// How many recent notifier→watcher renumberings are remembered, so that a UDP
/// retransmission of a NOTIFY and a late response map exactly as the first copy did.
const RECENT: usize = 8;

/// CSeq bookkeeping of one subscription dialog.
#[derive(Debug, Clone, Default)]
pub struct CseqShift {
    offset: u32,
    /// Highest CSeq seen from the notifier.
    last_notifier: u32,
    /// Highest CSeq sent to the watcher.
    last_watcher: u32,
    recent: [(u32, u32); RECENT],
    /// Where the next renumbering is remembered (below `RECENT`); a byte keeps the
    /// struct 80 bytes instead of 88 (issue 7 memory).
    next: u8,
}

impl CseqShift {
    /// The number to give a notifier NOTIFY with CSeq `n` on its way to the watcher.
    pub fn forward(&mut self, n: u32) -> u32 {
        if let Some(&(_, w)) = self.recent.iter().find(|(nn, w)| *nn == n && *w != 0) {
            return w;
        }
        let w = n.wrapping_add(self.offset);
        self.last_notifier = self.last_notifier.max(n);
        self.last_watcher = self.last_watcher.max(w);
        self.recent[usize::from(self.next)] = (n, w);
        self.next = (self.next + 1) % RECENT as u8;
        w
    }

    /// The number a notifier NOTIFY with CSeq `n` was given when it was passed on
    /// recently (its UDP retransmission must be passed on the same way).
    pub fn forwarded_as(&self, n: u32) -> Option<u32> {
        self.recent
            .iter()
            .find(|(nn, w)| *nn == n && *w != 0)
            .map(|(_, w)| *w)
    }

    /// Notes a notifier NOTIFY the proxy answered itself and did not pass on.
    pub fn swallowed(&mut self, n: u32) {
        self.last_notifier = self.last_notifier.max(n);
    }

    /// The number for a NOTIFY the proxy originates; later notifier NOTIFYs are
    /// shifted above it.
    pub fn originate(&mut self) -> u32 {
        let w = self.last_watcher.wrapping_add(1);
        self.last_watcher = w;
        // The notifier's next NOTIFY is at least last_notifier + 1, which must map above w.
        self.offset = w.saturating_sub(self.last_notifier).max(self.offset);
        w
    }

    /// The number a watcher's response with CSeq `w` must carry back to the notifier.
    pub fn back(&self, w: u32) -> u32 {
        self.recent
            .iter()
            .find(|(n, ww)| *ww == w && *n != 0)
            .map_or_else(|| w.wrapping_sub(self.offset), |(n, _)| *n)
    }

    /// Whether any renumbering is in force (the dialog saw a proxy NOTIFY).
    pub fn shifted(&self) -> bool {
        self.offset != 0
    }

    /// Highest CSeq the notifier used, to recognise retransmissions of swallowed NOTIFYs.
    pub fn last_notifier(&self) -> u32 {
        self.last_notifier
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_injection_no_change() {
        let mut s = CseqShift::default();
        assert_eq!(s.forward(1), 1);
        assert_eq!(s.forward(2), 2);
        assert_eq!(s.back(2), 2);
        assert!(!s.shifted());
    }

    #[test]
    fn injection_shifts_later_notifies_and_their_responses() {
        let mut s = CseqShift::default();
        assert_eq!(s.forward(7), 7);
        assert_eq!(s.originate(), 8);
        assert_eq!(s.forward(8), 9);
        assert_eq!(s.back(9), 8);
        assert_eq!(s.originate(), 10);
        assert_eq!(s.forward(9), 11);
        assert_eq!(s.back(11), 9);
        // A late response to the NOTIFY forwarded before the injection maps back unchanged.
        assert_eq!(s.back(7), 7);
    }

    #[test]
    fn retransmission_maps_like_the_first_copy() {
        let mut s = CseqShift::default();
        assert_eq!(s.forward(3), 3);
        s.originate();
        assert_eq!(s.forward(3), 3, "a retransmitted NOTIFY keeps its number");
    }

    #[test]
    fn swallowed_notifies_still_raise_the_floor() {
        let mut s = CseqShift::default();
        s.forward(1);
        s.swallowed(2);
        s.swallowed(3);
        let w = s.originate();
        assert_eq!(w, 2);
        assert!(s.forward(4) > w);
    }
}
