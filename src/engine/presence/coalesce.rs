//! Refresh-interval pacing: at most one NOTIFY per interval reaches a watcher who is
//! a user here (Cisco User Options, "Phone Display Refresh Interval"); NOTIFYs that
//! arrive inside the interval are answered by the proxy and only the newest is
//! delivered when the interval has passed.

/// Pacing state of one dialog: two times with [`NONE`] for "not set", 16 bytes per
/// dialog instead of the 32 of two `Option<u64>` (issue 7 memory).
#[derive(Debug, Clone)]
pub struct Pacer {
    last_sent_ms: u64,
    due_ms: u64,
}

/// No time set. A due time is clamped below it (`u64::MAX` ms is never reached).
const NONE: u64 = u64::MAX;

fn some(t: u64) -> Option<u64> {
    (t != NONE).then_some(t)
}

impl Default for Pacer {
    fn default() -> Self {
        Pacer {
            last_sent_ms: NONE,
            due_ms: NONE,
        }
    }
}

/// What to do with a NOTIFY now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// Deliver it now.
    Now,
    /// Keep it (replacing any older one held) and deliver it at this time.
    HoldUntil(u64),
}

impl Pacer {
    /// Decides for a NOTIFY arriving at `now`; `interval_ms` is the watcher's
    /// preference, `None` when the watcher is not a user here (no pacing).
    pub fn offer(&mut self, now_ms: u64, interval_ms: Option<u64>) -> Pace {
        let (Some(interval), Some(last)) = (interval_ms, some(self.last_sent_ms)) else {
            return Pace::Now;
        };
        let due = last.saturating_add(interval).min(NONE - 1);
        if now_ms >= due {
            Pace::Now
        } else {
            self.due_ms = due;
            Pace::HoldUntil(due)
        }
    }

    /// Notes that a NOTIFY reached the watcher at `now` (forwarded, delivered or
    /// injected); any held one is superseded.
    pub fn sent(&mut self, now_ms: u64) {
        self.last_sent_ms = now_ms.min(NONE - 1);
        self.due_ms = NONE;
    }

    /// When a held NOTIFY must go out.
    pub fn due(&self) -> Option<u64> {
        some(self.due_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_users_are_never_paced() {
        let mut p = Pacer::default();
        p.sent(0);
        assert_eq!(p.offer(1, None), Pace::Now);
    }

    #[test]
    fn inside_the_interval_held_until_it_elapses() {
        let mut p = Pacer::default();
        assert_eq!(
            p.offer(0, Some(30_000)),
            Pace::Now,
            "the first NOTIFY is never held"
        );
        p.sent(0);
        assert_eq!(p.offer(1_000, Some(30_000)), Pace::HoldUntil(30_000));
        assert_eq!(p.offer(2_000, Some(30_000)), Pace::HoldUntil(30_000));
        assert_eq!(p.due(), Some(30_000));
        p.sent(30_000);
        assert_eq!(p.due(), None);
        assert_eq!(p.offer(60_000, Some(30_000)), Pace::Now);
    }
}
