//! MESSAGE transactions already judged on their way from the sender, so the leg
//! back down from the upstream is not judged again (`message.rs`).
//!
//! A key must be remembered while its transaction may live (RFC 3261 Timer F,
//! 64*T1). Two generations swapped every such period do that without visiting
//! entries: a key lives one to two periods, and forgetting is one `clear` of the
//! older generation (a `retain` over every key on each timer call stalled the
//! engine in proportion to the MESSAGE rate).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use dashmap::DashMap;

type Key = (Bytes, u32);

#[derive(Debug, Default)]
pub(super) struct Judged {
    gens: [DashMap<Key, (), ahash::RandomState>; 2],
    current: AtomicUsize,
    rotate_at: AtomicU64,
}

impl Judged {
    pub(super) fn insert(&self, key: Key) {
        self.gens[self.current.load(Ordering::Relaxed) & 1].insert(key, ());
    }

    pub(super) fn contains(&self, key: &Key) -> bool {
        self.gens.iter().any(|g| g.contains_key(key))
    }

    /// Forgets the older generation once `lifetime_ms` has passed since the last
    /// swap (called from the engine's timer).
    pub(super) fn expire(&self, now_ms: u64, lifetime_ms: u64) {
        let due = self.rotate_at.load(Ordering::Relaxed);
        if now_ms < due {
            return;
        }
        if due == 0 {
            // First call: start the clock.
            self.rotate_at
                .store(now_ms + lifetime_ms, Ordering::Relaxed);
            return;
        }
        let older = (self.current.load(Ordering::Relaxed) + 1) & 1;
        self.gens[older].clear();
        self.current.store(older, Ordering::Relaxed);
        self.rotate_at
            .store(now_ms + lifetime_ms, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> Key {
        (Bytes::from_static(b"call-1"), n)
    }

    #[test]
    fn kept_for_at_least_one_lifetime_and_forgotten_within_two() {
        let j = Judged::default();
        j.expire(0, 100);
        j.insert(key(1));
        j.expire(99, 100);
        assert!(j.contains(&key(1)));
        j.expire(100, 100); // swap: key 1 now in the older generation
        assert!(j.contains(&key(1)), "kept one full lifetime");
        j.insert(key(2));
        j.expire(199, 100);
        assert!(j.contains(&key(1)) && j.contains(&key(2)));
        j.expire(200, 100);
        assert!(!j.contains(&key(1)), "forgotten after two lifetimes");
        assert!(j.contains(&key(2)));
        j.expire(300, 100);
        assert!(!j.contains(&key(2)));
    }
}
