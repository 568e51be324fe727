//! A hashed timing wheel: dialog expiries filed by second, so the engine finds what
//! expired at `now` without scanning every dialog (DESIGN.md "Dialog state ... with
//! an expiry wheel driven by `now`").
//!
//! Entries are never removed early: a refreshed dialog is simply filed again under
//! its new deadline, and the caller checks the dialog's real expiry when an old
//! entry fires (lazy deletion keeps refresh O(1)).

/// Expiry wheel over keys `K`; time is the engine's `now` in unix milliseconds.
#[derive(Debug)]
pub struct ExpiryWheel<K> {
    tick_ms: u64,
    slots: Vec<Vec<(K, u64)>>,
    /// The tick of the last sweep (swept again next time, as entries due later in
    /// the same tick may remain). Starts at 0: the first sweep visits every slot.
    cursor: u64,
    len: usize,
    /// The earliest deadline filed (stale entries included), recomputed after a
    /// sweep fires something.
    earliest: Option<u64>,
}

impl<K> ExpiryWheel<K> {
    /// `tick_ms` is the resolution, `slots` the number of ticks per revolution;
    /// deadlines further away than one revolution simply stay for later rounds.
    pub fn new(tick_ms: u64, slots: usize) -> Self {
        let tick_ms = tick_ms.max(1);
        let slots = slots.max(1);
        ExpiryWheel {
            tick_ms,
            slots: (0..slots).map(|_| Vec::new()).collect(),
            cursor: 0,
            len: 0,
            earliest: None,
        }
    }

    /// Number of filed entries (stale ones included until they fire).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn slot_of(&self, tick: u64) -> usize {
        (tick % self.slots.len() as u64) as usize
    }

    /// Files `key` to fire once `now >= deadline_ms`.
    pub fn insert(&mut self, key: K, deadline_ms: u64) {
        let tick = deadline_ms / self.tick_ms;
        // A deadline already behind the cursor fires at the next sweep.
        let slot = self.slot_of(tick.max(self.cursor));
        self.slots[slot].push((key, deadline_ms));
        self.len += 1;
        self.earliest = Some(self.earliest.map_or(deadline_ms, |e| e.min(deadline_ms)));
    }

    /// Moves the wheel to `now_ms` and appends every key whose deadline has passed.
    pub fn expire(&mut self, now_ms: u64, fired: &mut Vec<K>) {
        let now_tick = now_ms / self.tick_ms;
        let cursor = self.cursor;
        if now_tick < cursor || self.earliest.map_or(true, |e| e > now_ms) {
            return;
        }
        // After a long gap (a replayed capture, a suspended host) one revolution
        // visits every slot once.
        let span = (now_tick - cursor + 1).min(self.slots.len() as u64);
        for t in cursor..cursor + span {
            let slot = self.slot_of(t);
            let entries = std::mem::take(&mut self.slots[slot]);
            let mut kept = Vec::new();
            for (key, deadline) in entries {
                if deadline <= now_ms {
                    fired.push(key);
                    self.len -= 1;
                } else {
                    kept.push((key, deadline));
                }
            }
            self.slots[slot] = kept;
        }
        self.cursor = now_tick;
        self.earliest = self.earliest_after_sweep();
    }

    /// The next deadline, found without visiting every entry (a scan of all of
    /// them after each sweep stalled the engine for a millisecond per 100 000
    /// dialogs): the exact minimum of the cursor's slot, which may still hold
    /// entries due later in this tick, else the start of the first later tick
    /// whose slot holds anything. Early when that slot's entries belong to a
    /// later revolution (the sweep then fires nothing and looks again), never late.
    fn earliest_after_sweep(&self) -> Option<u64> {
        if self.len == 0 {
            return None;
        }
        let here = self.slots[self.slot_of(self.cursor)]
            .iter()
            .map(|(_, d)| *d)
            .min();
        let ahead = (1..self.slots.len() as u64)
            .map(|k| self.cursor + k)
            .find(|&t| !self.slots[self.slot_of(t)].is_empty())
            .map(|t| t * self.tick_ms);
        match (here, ahead) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A time at or before the earliest deadline (may be early, never late), so
    /// the driver knows when to call back.
    pub fn next_deadline(&self) -> Option<u64> {
        self.earliest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_only_what_is_due() {
        let mut w = ExpiryWheel::new(1000, 64);
        w.insert("a", 10_500);
        w.insert("b", 12_000);
        w.insert("c", 200_000); // beyond one revolution
        let mut fired = Vec::new();
        w.expire(10_400, &mut fired);
        assert!(fired.is_empty());
        w.expire(10_500, &mut fired);
        assert_eq!(fired, vec!["a"]);
        w.expire(100_000, &mut fired);
        assert_eq!(fired, vec!["a", "b"]);
        assert_eq!(w.len(), 1);
        w.expire(199_999, &mut fired);
        assert_eq!(fired.len(), 2);
        w.expire(200_000, &mut fired);
        assert_eq!(fired, vec!["a", "b", "c"]);
        assert!(w.is_empty());
    }

    #[test]
    fn past_deadline_fires_on_next_sweep() {
        let mut w = ExpiryWheel::new(1000, 16);
        w.expire(50_000, &mut Vec::new());
        w.insert(1u32, 1_000);
        let mut fired = Vec::new();
        w.expire(50_001, &mut fired);
        assert_eq!(fired, vec![1]);
    }

    /// Random inserts and sweeps: nothing ever fires late or early, and the
    /// next deadline is never later than the earliest entry still filed.
    #[test]
    fn next_deadline_after_sweeps_is_never_late() {
        let mut w = ExpiryWheel::new(1000, 16);
        let mut filed: Vec<(u32, u64)> = Vec::new();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut now = 0;
        for i in 0..2_000u32 {
            if rnd(3) == 0 {
                let d = now + rnd(40_000);
                w.insert(i, d);
                filed.push((i, d));
            }
            now += rnd(700);
            let mut fired = Vec::new();
            w.expire(now, &mut fired);
            for k in &fired {
                let pos = filed.iter().position(|(j, _)| j == k).expect("filed once");
                let (_, d) = filed.swap_remove(pos);
                assert!(d <= now, "fired early: {d} > {now}");
            }
            assert!(
                filed.iter().all(|&(_, d)| d > now),
                "missed a due entry at {now}"
            );
            if let Some(min) = filed.iter().map(|&(_, d)| d).min() {
                let next = w.next_deadline().expect("entries filed");
                assert!(next <= min, "next {next} later than {min}");
            }
        }
    }

    #[test]
    fn next_deadline_is_never_late() {
        let mut w = ExpiryWheel::new(1000, 16);
        assert_eq!(w.next_deadline(), None);
        w.insert(1u32, 5_300);
        w.insert(2u32, 9_000);
        let d = w.next_deadline().unwrap_or(u64::MAX);
        assert!(d <= 5_300, "{d}");
    }
}
