//! Sign-in rate limiting, per account and per client address: after
//! `signin_max_failures` wrong passwords, none more than `signin_lockout_s` after
//! the previous one, sign-in is refused (429) for `signin_lockout_s`, even with
//! the right password, so guessing cannot go faster than the limit.

use std::time::{Duration, Instant};

use dashmap::DashMap;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    locked_until: Option<Instant>,
}

/// Failure counters keyed by `account:<name>` and `addr:<ip>`.
pub struct SignInLimiter {
    max_failures: u32,
    window: Duration,
    entries: DashMap<String, Entry>,
}

/// Bound on remembered keys; beyond it expired entries are dropped.
const PRUNE_AT: usize = 10_000;

impl SignInLimiter {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        SignInLimiter {
            max_failures: max_failures.max(1),
            window,
            entries: DashMap::new(),
        }
    }

    /// How long `key` stays locked, if it is.
    pub fn locked(&self, key: &str) -> Option<Duration> {
        let now = Instant::now();
        let until = self.entries.get(key).and_then(|e| e.locked_until)?;
        until.checked_duration_since(now).filter(|d| !d.is_zero())
    }

    /// Counts a failed attempt; returns true when this one locked the key.
    pub fn fail(&self, key: &str) -> bool {
        let now = Instant::now();
        if self.entries.len() > PRUNE_AT {
            self.entries.retain(|_, e| {
                now.duration_since(e.last_failure) < self.window
                    || e.locked_until.is_some_and(|u| u > now)
            });
        }
        let mut e = self.entries.entry(key.to_string()).or_insert(Entry {
            failures: 0,
            last_failure: now,
            locked_until: None,
        });
        if e.locked_until.is_some_and(|u| u <= now)
            || now.duration_since(e.last_failure) >= self.window
        {
            *e = Entry {
                failures: 0,
                last_failure: now,
                locked_until: None,
            };
        }
        e.failures += 1;
        e.last_failure = now;
        if e.failures >= self.max_failures && e.locked_until.is_none() {
            e.locked_until = Some(now + self.window);
            return true;
        }
        false
    }

    /// Forgets the failures of `key` (a successful sign-in to that account).
    pub fn succeed(&self, key: &str) {
        self.entries.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_max_failures_and_unlocks_after_window() {
        let l = SignInLimiter::new(3, Duration::from_millis(100));
        assert!(!l.fail("k"));
        assert!(!l.fail("k"));
        assert!(l.locked("k").is_none());
        assert!(l.fail("k"));
        assert!(l.locked("k").is_some());
        assert!(l.locked("other").is_none());
        std::thread::sleep(Duration::from_millis(120));
        assert!(l.locked("k").is_none());
        assert!(!l.fail("k"), "a fresh window starts after the lock");
    }

    #[test]
    fn slow_guessing_still_counts() {
        let l = SignInLimiter::new(3, Duration::from_millis(100));
        for _ in 0..2 {
            assert!(!l.fail("k"));
            std::thread::sleep(Duration::from_millis(60));
        }
        assert!(
            l.fail("k"),
            "failures 60 ms apart accumulate past the 100 ms window"
        );
    }

    #[test]
    fn success_clears_the_count() {
        let l = SignInLimiter::new(2, Duration::from_secs(60));
        l.fail("k");
        l.succeed("k");
        assert!(!l.fail("k"));
    }
}
