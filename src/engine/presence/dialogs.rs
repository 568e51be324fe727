//! The subscription dialogs the proxy enforces, keyed by dialog, with an expiry
//! wheel and per-owner and global caps (DESIGN.md "Dialog state lives in DashMaps
//! keyed by dialog ... bounded (per owner and global caps, oldest pending evicted
//! first, counted)").
//!
//! A dialog is keyed by Call-ID and the watcher's tag, which every NOTIFY carries
//! as its To tag (RFC 6665 §4.1.2.4), so a NOTIFY that overtakes the SUBSCRIBE's
//! 2xx still finds its dialog.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use dashmap::DashMap;

use super::coalesce::Pacer;
use super::cseq::CseqShift;
use super::identity::IdentitySource;
use super::view::View;
use super::wheel::ExpiryWheel;
use crate::engine::{ConnId, Transport};
use crate::policy::Aor;

/// A dialog's identity, Call-ID and the watcher's (subscriber's) tag, as a
/// 128-bit keyed hash: 16 bytes, no allocation and no copy of either string per
/// dialog or per lookup (the key is filed in the table, the owner index and the
/// expiry wheel). The hash keys are random per process (ahash), so nobody outside
/// can make two dialogs collide, and two independent 64-bit halves make a chance
/// collision among even millions of dialogs negligible (about n² / 2¹²⁹).
/// Two `u64`s rather than a `u128`: 8-byte alignment, so the key with a pointer or
/// a time is 24 bytes, not 32, in every table, queue and wheel slot (issue 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DialogKey([u64; 2]);

impl DialogKey {
    pub fn new(call_id: &[u8], watcher_tag: &[u8]) -> Self {
        use std::hash::{BuildHasher, Hasher};
        static KEYS: std::sync::OnceLock<[ahash::RandomState; 2]> = std::sync::OnceLock::new();
        let keys = KEYS.get_or_init(|| [ahash::RandomState::new(), ahash::RandomState::new()]);
        let half = |k: &ahash::RandomState| {
            let mut h = k.build_hasher();
            // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
            h.write_usize(call_id.len());
            h.write(call_id);
            h.write(watcher_tag);
            h.finish()
        };
        DialogKey([half(&keys[0]), half(&keys[1])])
    }
}

/// The owner index's key: a keyed 64-bit hash of the owner's AoR (8 bytes instead
/// of a copy of the string per owner). A bucket may in principle hold another
/// owner's dialogs too; [`DialogTable::keys_of`] checks each dialog's owner.
fn owner_key(owner: &Aor) -> u64 {
    static KEY: std::sync::OnceLock<ahash::RandomState> = std::sync::OnceLock::new();
    KEY.get_or_init(ahash::RandomState::new)
        .hash_one(owner.as_str())
}

/// Where and how the watcher's side of the dialog is reached: the flow its
/// SUBSCRIBE came on (RFC 5626 style: NAT-safe, and the same TCP connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub addr: SocketAddr,
    pub transport: Transport,
    pub conn: Option<ConnId>,
    /// The proxy's own address on that flow (the sent-by of Vias it originates).
    pub local: SocketAddr,
}

/// One watcher→owner presence subscription.
#[derive(Debug, Clone)]
pub struct Dialog {
    pub watcher: Aor,
    pub owner: Aor,
    pub identity: IdentitySource,
    pub created_ms: u64,
    pub expires_ms: u64,
    /// The upstream answered the SUBSCRIBE with a 2xx.
    pub confirmed: bool,
    pub watcher_peer: Peer,
    /// Record-Route entries the SUBSCRIBE carried when it reached the proxy: the
    /// proxies between it and the watcher, the route set of NOTIFYs it originates
    /// (RFC 3261 §12.1.1), kept as the one `Route` value they make (`<a>, <b>`);
    /// `None` when there were none.
    pub route_set: Option<Box<[u8]>>,
    /// The last NOTIFY the notifier sent: the headers of NOTIFYs the proxy
    /// originates are copied from it. Its body, the last real state, is kept only
    /// while the watcher is not shown it (blocked, held, or a paced NOTIFY waiting),
    /// so that a watcher allowed again gets it at once; for a watcher shown the
    /// real state it is dropped ([`header_template`]): 90 % of the memory of a
    /// dialog (issue 7: under 1 KiB per subscription), and a change to Offline or
    /// Held does not need it (both are built from the owner alone).
    ///
    /// A boxed slice, not `Bytes`: 16 bytes in the dialog instead of 32, and no
    /// separate reference count (issue 7); injecting a NOTIFY copies it once.
    pub template: Option<Box<[u8]>>,
    /// `template` is the header template of a NOTIFY that had a body: the proxy
    /// holds no real state for this dialog. Allowed again before the notifier
    /// NOTIFYs anew, the watcher cannot be shown the real state by the proxy, so
    /// the proxy ends its subscription with `terminated;reason=deactivated` and
    /// the watcher re-subscribes at once (RFC 6665 §4.2.2), getting the notifier's
    /// full state in the new subscription's first NOTIFY (RFC 6665 §4.2.1.2).
    pub body_dropped: bool,
    /// What the watcher was last shown.
    pub shown: Option<View>,
    pub cseq: CseqShift,
    pub pacer: Pacer,
    /// A paced NOTIFY is waiting for the interval to elapse.
    pub held: bool,
    /// The proxy ended the subscription towards the watcher (giveup, or deactivated
    /// on re-allow); notifier NOTIFYs still reaching it are answered 481 so the
    /// notifier ends it too (RFC 6665 §4.1.3).
    pub terminated: bool,
}

impl Dialog {
    /// Held back by the policy: not yet accepted upstream, or shown as pending.
    fn is_pending(&self) -> bool {
        !self.confirmed || self.shown == Some(View::Held)
    }
}

/// Caps on tracked dialogs.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    pub per_owner: usize,
    pub global: usize,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            per_owner: 1_000,
            global: 200_000,
        }
    }
}

/// Every tracked dialog.
#[derive(Debug)]
pub struct DialogTable {
    /// Boxed: the table's slack slots (a hash table runs up to 1/8 empty, and
    /// doubles) then cost a pointer each, not a whole dialog.
    dialogs: DashMap<DialogKey, Box<Dialog>, ahash::RandomState>,
    /// Owner → their dialogs (most owners have one or two: an exact-size slice).
    by_owner: DashMap<u64, Box<[DialogKey]>, ahash::RandomState>,
    wheel: Mutex<ExpiryWheel<DialogKey>>,
    /// Dialogs in the order they were created, for the global cap: the oldest is
    /// found at the front instead of by scanning the whole table, which made every
    /// new SUBSCRIBE cost O(dialogs) once the cap was reached. Entries whose dialog
    /// is gone or was replaced are skipped when met and swept when they outnumber
    /// the live ones.
    age: Mutex<AgeQueue>,
    /// The same for dialogs created pending, which the cap evicts first. Nearly
    /// every dialog is created pending and confirmed a moment later, so this queue
    /// is mostly stale entries: the sweep keeps it near the number still pending.
    pending_age: Mutex<AgeQueue>,
    caps: Caps,
    evicted: AtomicU64,
    /// When the last eviction warning was logged (ms; 0: never), and the total then.
    warned_ms: AtomicU64,
    warned_total: AtomicU64,
    /// `dialogs.len()`, kept here: DashMap counts by locking every shard, and the
    /// global cap asks on every new dialog.
    count: AtomicUsize,
}

/// (dialog, its `created_ms`) in creation order: the creation time tells a queued
/// dialog from a newer one that reused its key.
#[derive(Debug, Default)]
struct AgeQueue {
    queue: VecDeque<(DialogKey, u64)>,
    /// Entries found live at the last sweep: the next sweep starts once as many
    /// again (plus a floor) were pushed, so sweeping stays amortised O(1) per push
    /// while a queue of stale entries (the pending one) shrinks back to its live
    /// ones instead of growing with every dialog ever created.
    live_at_sweep: usize,
    sweep: Option<Sweep>,
}

/// A sweep in progress. It checks [`SWEEP_STEP`] entries per push instead of the
/// whole queue at once: each check is a dialog-map lookup, mostly a cache miss,
/// and a whole sweep over 64 000 entries held the packet path for milliseconds
/// (it showed in the p99 at half load). Entries before `read` were checked and
/// the live ones among them moved down to `..write`; `read..end` wait; entries
/// from `end` on were pushed after the sweep started.
#[derive(Debug, Clone, Copy)]
struct Sweep {
    write: usize,
    read: usize,
    end: usize,
}

/// Entries a push checks while a sweep runs: a sweep over n entries ends within
/// n / 8 pushes, well before the next one is due (n pushes later).
const SWEEP_STEP: usize = 8;

/// The most age-queue entries reserved at start (24 MB of address space, untouched
/// until used): a larger `Caps::global` would ask for more than a machine may map,
/// or overflow the reservation.
const AGE_RESERVE_MAX: usize = 1 << 20;

/// The shortest interval between two eviction warnings.
const EVICTION_WARN_EVERY_MS: u64 = 10_000;

impl AgeQueue {
    /// A queue with room reserved for `n` entries. Growing by doubling copies the
    /// whole queue and faults in all of the new block at once: at 64 000 dialogs a
    /// 1.5 MB copy and 3 MB of fresh pages inside one SUBSCRIBE, hundreds of µs on
    /// the packet path. Reserved but untouched pages cost no memory; they fault in
    /// one at a time as the queue reaches them.
    fn with_capacity(n: usize) -> Self {
        AgeQueue {
            queue: VecDeque::with_capacity(n),
            ..AgeQueue::default()
        }
    }

    fn push(&mut self, entry: (DialogKey, u64), is_live: impl FnMut(&(DialogKey, u64)) -> bool) {
        self.queue.push_back(entry);
        if self.sweep.is_none() && self.queue.len() > 2 * self.live_at_sweep + 1_024 {
            self.sweep = Some(Sweep {
                write: 0,
                read: 0,
                end: self.queue.len(),
            });
        }
        self.step(is_live);
    }

    /// Checks the next [`SWEEP_STEP`] entries of a running sweep; at its end,
    /// drops the checked dead entries in one move of the few pushed meanwhile.
    fn step(&mut self, mut is_live: impl FnMut(&(DialogKey, u64)) -> bool) {
        let Some(mut s) = self.sweep else { return };
        let stop = (s.read + SWEEP_STEP).min(s.end);
        while s.read < stop {
            let e = self.queue[s.read];
            if is_live(&e) {
                self.queue[s.write] = e;
                s.write += 1;
            }
            s.read += 1;
        }
        if s.read < s.end {
            self.sweep = Some(s);
            return;
        }
        self.sweep = None;
        self.queue.drain(s.write..s.end);
        self.live_at_sweep = self.queue.len();
        // Give back what a burst left: keep room for the pushes until the next sweep.
        let room = 2 * self.live_at_sweep + 1_024;
        if self.queue.capacity() > 2 * room {
            self.queue.shrink_to(room);
        }
    }

    /// The oldest entry. A running sweep's positions move down with the front.
    fn pop_front(&mut self) -> Option<(DialogKey, u64)> {
        let e = self.queue.pop_front()?;
        if let Some(s) = &mut self.sweep {
            s.write = s.write.saturating_sub(1);
            s.read = s.read.saturating_sub(1);
            s.end = s.end.saturating_sub(1);
        }
        Some(e)
    }
}

impl DialogTable {
    pub fn new(caps: Caps) -> Self {
        DialogTable {
            dialogs: DashMap::with_hasher_and_shard_amount(
                ahash::RandomState::default(),
                crate::engine::GROWING_MAP_SHARDS,
            ),
            by_owner: DashMap::with_hasher_and_shard_amount(
                ahash::RandomState::default(),
                crate::engine::GROWING_MAP_SHARDS,
            ),
            wheel: Mutex::new(ExpiryWheel::new(1_000, 4_096)),
            // Live entries never outnumber the cap by more than a sweep's slack; an
            // embedder's cap in the millions reserves no more than AGE_RESERVE_MAX
            // (beyond it the queue grows as before).
            age: Mutex::new(AgeQueue::with_capacity(
                caps.global.saturating_add(1_024).min(AGE_RESERVE_MAX),
            )),
            pending_age: Mutex::new(AgeQueue::default()),
            caps,
            evicted: AtomicU64::new(0),
            warned_ms: AtomicU64::new(0),
            warned_total: AtomicU64::new(0),
            count: AtomicUsize::new(0),
        }
    }

    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Dialogs dropped to stay within the caps since start.
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    fn file(&self, key: DialogKey, deadline: u64) {
        if let Ok(mut w) = self.wheel.lock() {
            w.insert(key, deadline);
        }
    }

    /// Tracks a new dialog (or replaces one with the same key), evicting the oldest
    /// pending dialog, or failing that the oldest, of the owner and then globally
    /// when a cap is reached.
    pub fn insert(&self, key: DialogKey, dialog: Dialog) {
        let owner = owner_key(&dialog.owner);
        let deadline = dialog.expires_ms;
        if !self.dialogs.contains_key(&key) {
            let bucket = self.by_owner.get(&owner).map_or(0, |v| v.len());
            if bucket >= self.caps.per_owner {
                let keys = self.keys_of(&dialog.owner);
                if keys.len() >= self.caps.per_owner {
                    self.evict_oldest(keys.into_iter(), dialog.created_ms);
                }
            }
            if self.dialogs.len() >= self.caps.global {
                self.evict_oldest_globally(dialog.created_ms);
            }
        }
        let (created, pending) = (dialog.created_ms, dialog.is_pending());
        let old = self.dialogs.insert(key, Box::new(dialog));
        if old.is_none() {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(old) = &old {
            self.unindex(&old.owner, &key);
        }
        if old.map_or(true, |o| o.created_ms != created) {
            self.enqueue(&self.age, key, created, false);
            if pending {
                self.enqueue(&self.pending_age, key, created, true);
            }
        }
        let mut keys = self.by_owner.entry(owner).or_default();
        let mut grown = Vec::with_capacity(keys.len() + 1);
        grown.extend_from_slice(&keys);
        grown.push(key);
        *keys = grown.into_boxed_slice();
        drop(keys);
        self.file(key, deadline);
    }

    /// Whether `key` still names the dialog queued with `created` (and, for the
    /// pending queue, whether it is still pending).
    fn queued_is_live(&self, key: &DialogKey, created: u64, pending_only: bool) -> bool {
        self.dialogs
            .get(key)
            .is_some_and(|d| d.created_ms == created && (!pending_only || d.is_pending()))
    }

    fn enqueue(&self, queue: &Mutex<AgeQueue>, key: DialogKey, created: u64, pending_only: bool) {
        let Ok(mut q) = queue.lock() else { return };
        q.push((key, created), |(k, c)| {
            self.queued_is_live(k, *c, pending_only)
        });
    }

    /// The global cap: the oldest pending dialog, or failing that the oldest.
    fn evict_oldest_globally(&self, now_ms: u64) {
        for (queue, pending_only) in [(&self.pending_age, true), (&self.age, false)] {
            let victim = {
                let Ok(mut q) = queue.lock() else { continue };
                let mut victim = None;
                while let Some((k, created)) = q.pop_front() {
                    if self.queued_is_live(&k, created, pending_only) {
                        victim = Some(k);
                        break;
                    }
                }
                victim
            };
            if let Some(k) = victim {
                if let Some(d) = self.remove(&k) {
                    self.note_eviction(&d, now_ms, "global");
                    return;
                }
            }
        }
    }

    /// The per-owner cap: scans that owner's dialogs (at most `per_owner` of them).
    fn evict_oldest(&self, keys: impl Iterator<Item = DialogKey>, now_ms: u64) {
        let mut best: Option<(bool, u64, DialogKey)> = None;
        for k in keys {
            let Some(d) = self.dialogs.get(&k) else {
                continue;
            };
            // Pending dialogs sort first (false < true), then the oldest.
            let rank = (!d.is_pending(), d.created_ms);
            drop(d);
            if best.as_ref().map_or(true, |(p, c, _)| rank < (*p, *c)) {
                best = Some((rank.0, rank.1, k));
            }
        }
        if let Some((_, _, k)) = best {
            if let Some(d) = self.remove(&k) {
                self.note_eviction(&d, now_ms, "per owner");
            }
        }
    }

    /// Counts an eviction and warns about it, at most once per
    /// [`EVICTION_WARN_EVERY_MS`]: a proxy held at its cap evicts on every new
    /// SUBSCRIBE, and a line each (45 233 in one 6 s benchmark run) floods the log
    /// and costs a write per SUBSCRIBE. The counter
    /// (`presence_proxy_dialogs_evicted_total`) has every one.
    fn note_eviction(&self, d: &Dialog, now_ms: u64, cap: &'static str) {
        let total = self.evicted.fetch_add(1, Ordering::Relaxed) + 1;
        let last = self.warned_ms.load(Ordering::Relaxed);
        let due = last == 0 || now_ms.saturating_sub(last) >= EVICTION_WARN_EVERY_MS;
        if due
            && self
                .warned_ms
                .compare_exchange(last, now_ms.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let since = total - self.warned_total.swap(total, Ordering::Relaxed);
            tracing::warn!(
                cap, owner = %d.owner, watcher = %d.watcher, evicted = since, evicted_total = total,
                "dialog cap reached: oldest dialogs evicted (one line per 10 s at most)"
            );
        }
    }

    fn unindex(&self, owner: &Aor, key: &DialogKey) {
        let owner = owner_key(owner);
        let mut empty = false;
        if let Some(mut v) = self.by_owner.get_mut(&owner) {
            if v.contains(key) {
                *v = v.iter().filter(|k| *k != key).copied().collect();
            }
            empty = v.is_empty();
        }
        if empty {
            self.by_owner.remove_if(&owner, |_, v| v.is_empty());
        }
    }

    pub fn remove(&self, key: &DialogKey) -> Option<Dialog> {
        let (_, d) = self.dialogs.remove(key)?;
        self.count.fetch_sub(1, Ordering::Relaxed);
        self.unindex(&d.owner, key);
        Some(*d)
    }

    /// Runs `f` on the dialog, if tracked. `f` must not touch the table.
    pub fn with<R>(&self, key: &DialogKey, f: impl FnOnce(&mut Dialog) -> R) -> Option<R> {
        self.dialogs.get_mut(key).map(|mut d| f(&mut d))
    }

    /// Moves a dialog's expiry (a refresh or the notifier's `expires`). Only an
    /// earlier expiry is filed in the wheel: the dialog's entry at its old, earlier
    /// deadline still fires first and files it again under the new one
    /// ([`DialogTable::expire`]), so a refresh (every SUBSCRIBE's 2xx is one) does
    /// not add a second wheel entry per dialog (issue 7 memory).
    pub fn set_expiry(&self, key: &DialogKey, expires_ms: u64) {
        let earlier = self.with(key, |d| {
            let earlier = expires_ms < d.expires_ms;
            d.expires_ms = expires_ms;
            earlier
        });
        if earlier == Some(true) {
            self.file(*key, expires_ms);
        }
    }

    pub fn keys_of(&self, owner: &Aor) -> Vec<DialogKey> {
        let bucket = self
            .by_owner
            .get(&owner_key(owner))
            .map(|v| v.to_vec())
            .unwrap_or_default();
        bucket
            .into_iter()
            .filter(|k| self.dialogs.get(k).is_some_and(|d| d.owner == *owner))
            .collect()
    }

    pub fn keys(&self) -> Vec<DialogKey> {
        self.dialogs.iter().map(|e| *e.key()).collect()
    }

    /// Removes and returns the dialogs whose expiry passed. A dialog whose entry
    /// fired but whose expiry moved later is filed again under its new expiry.
    pub fn expire(&self, now_ms: u64) -> Vec<(DialogKey, Dialog)> {
        let mut fired = Vec::new();
        if let Ok(mut w) = self.wheel.lock() {
            w.expire(now_ms, &mut fired);
        }
        let mut out = Vec::new();
        for k in fired {
            // Bound first: the map's read guard must be gone before `remove`.
            let expires = self.dialogs.get(&k).map(|d| d.expires_ms);
            match expires {
                Some(expires) if expires <= now_ms => {
                    if let Some(d) = self.remove(&k) {
                        out.push((k, d));
                    }
                }
                Some(later) => self.file(k, later),
                None => {}
            }
        }
        out
    }

    /// When the next expiry may be due.
    pub fn next_deadline(&self) -> Option<u64> {
        self.wheel.lock().ok()?.next_deadline()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dialog(owner: &str, created: u64, confirmed: bool) -> Dialog {
        let addr: SocketAddr = "127.0.0.1:5062".parse().unwrap();
        Dialog {
            watcher: Aor::parse("w@example.com").unwrap(),
            owner: Aor::parse(owner).unwrap(),
            identity: IdentitySource::Registered,
            created_ms: created,
            expires_ms: created + 3_600_000,
            confirmed,
            watcher_peer: Peer {
                addr,
                transport: Transport::Udp,
                conn: None,
                local: addr,
            },
            route_set: None,
            template: None,
            body_dropped: false,
            shown: None,
            cseq: CseqShift::default(),
            pacer: Pacer::default(),
            held: false,
            terminated: false,
        }
    }

    fn key(n: u32) -> DialogKey {
        DialogKey::new(format!("call-{n}").as_bytes(), b"t")
    }

    mod age_queue {
        use super::super::{AgeQueue, DialogKey, SWEEP_STEP};
        use proptest::prelude::*;
        use std::collections::HashSet;

        fn entry(n: u64) -> (DialogKey, u64) {
            (DialogKey::new(&n.to_le_bytes(), b"t"), n)
        }

        #[derive(Debug, Clone)]
        enum Op {
            /// Push a new entry, live or already dead (a dialog that ended).
            Push(bool),
            /// Let the entry pushed this many pushes ago die.
            Kill(usize),
            /// The cap takes the oldest entry.
            Pop,
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                6 => any::<bool>().prop_map(Op::Push),
                3 => (0usize..5_000).prop_map(Op::Kill),
                1 => Just(Op::Pop),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(48))]

            /// Against a model: the queue keeps every live entry, in push order,
            /// whatever the sweeps and pops in between; it holds at most twice the
            /// live entries of the last sweep plus the floor and the pushes of a
            /// running sweep; and no push checks more than `SWEEP_STEP` entries.
            #[test]
            fn sweeps_keep_live_entries_in_order_and_bound_the_queue(
                ops in proptest::collection::vec(op(), 1..12_000)
            ) {
                let mut q = AgeQueue::default();
                let mut live: HashSet<u64> = HashSet::new();
                let mut popped: HashSet<u64> = HashSet::new();
                let mut next = 0u64;
                for op in ops {
                    match op {
                        Op::Push(alive) => {
                            if alive {
                                live.insert(next);
                            }
                            let mut checks = 0;
                            q.push(entry(next), |(_, n)| {
                                checks += 1;
                                live.contains(n)
                            });
                            prop_assert!(checks <= SWEEP_STEP);
                            next += 1;
                        }
                        Op::Kill(back) => {
                            if let Some(n) = next.checked_sub(back as u64 + 1) {
                                live.remove(&n);
                            }
                        }
                        Op::Pop => {
                            if let Some((_, n)) = q.pop_front() {
                                live.remove(&n);
                                popped.insert(n);
                            }
                        }
                    }
                    let bound = match q.sweep {
                        // A sweep starts at most 2 * live + 1 025 long and ends within
                        // that / SWEEP_STEP pushes; pops shorten `end` and the queue alike.
                        Some(s) => s.end + (2 * q.live_at_sweep + 1_025).div_ceil(SWEEP_STEP) + 1,
                        None => 2 * q.live_at_sweep + 1_024 + 1,
                    };
                    prop_assert!(q.queue.len() <= bound, "{} > {}", q.queue.len(), bound);
                }
                // Mid-sweep, checked slots still hold what was moved out of them.
                while q.sweep.is_some() {
                    q.step(|(_, n)| live.contains(n));
                }
                let queued: Vec<u64> = q.queue.iter().map(|(_, n)| *n).collect();
                let live_queued: Vec<u64> = queued.iter().copied().filter(|n| live.contains(n)).collect();
                let mut expected: Vec<u64> = live.iter().copied().collect();
                expected.sort_unstable();
                prop_assert_eq!(live_queued, expected, "every live entry queued once, in order");
            }
        }

        /// A sweep is spread over pushes: with 10 000 dead entries queued, no push
        /// checks more than `SWEEP_STEP`, and the dead ones are gone within
        /// 10 000 / `SWEEP_STEP` pushes of live ones.
        #[test]
        fn a_large_sweep_is_spread_over_pushes() {
            let mut q = AgeQueue::default();
            for n in 0..10_000 {
                q.push(entry(n), |_| true);
            }
            let dead = |(_, n): &(DialogKey, u64)| *n >= 10_000;
            let mut pushes = 0;
            let mut n = 10_000;
            // Until a sweep has run to its end with no old entry left.
            while q.sweep.is_some() || q.queue.iter().any(|e| !dead(e)) {
                let mut checks = 0;
                q.push(entry(n), |e| {
                    checks += 1;
                    dead(e)
                });
                assert!(checks <= SWEEP_STEP);
                n += 1;
                pushes += 1;
                assert!(pushes <= 2 * 10_000, "the sweep never ended");
            }
            assert_eq!(q.queue.len(), pushes, "only the new entries, once each");
        }
    }

    /// A cap too large to reserve for is still a table, not a crash.
    #[test]
    fn an_unbounded_cap_reserves_a_bounded_age_queue() {
        let t = DialogTable::new(Caps {
            per_owner: 10,
            global: usize::MAX,
        });
        assert_eq!(t.age.lock().unwrap().queue.capacity(), AGE_RESERVE_MAX);
        t.insert(key(1), dialog("a@example.com", 1, true));
        assert_eq!(t.len(), 1);
    }

    /// The age queue never doubles (a copy of every entry) on the way to the cap.
    #[test]
    fn the_age_queue_has_room_for_the_cap_from_the_start() {
        let t = DialogTable::new(Caps {
            per_owner: 10,
            global: 5_000,
        });
        let before = t.age.lock().unwrap().queue.as_slices().0.as_ptr();
        for i in 0..5_000 {
            t.insert(
                key(i),
                dialog(&format!("u{i}@example.com"), u64::from(i), false),
            );
        }
        let age = t.age.lock().unwrap();
        assert_eq!(age.queue.len(), 5_000);
        assert_eq!(
            age.queue.as_slices().0.as_ptr(),
            before,
            "the queue was moved"
        );
    }

    /// The kept count follows every way a dialog comes and goes.
    #[test]
    fn len_is_the_number_of_dialogs() {
        let t = DialogTable::new(Caps {
            per_owner: 10,
            global: 3,
        });
        t.insert(key(1), dialog("a@example.com", 1, true));
        t.insert(key(1), dialog("a@example.com", 2, true));
        t.insert(key(2), dialog("b@example.com", 3, true));
        assert_eq!((t.len(), t.dialogs.len()), (2, 2));
        t.insert(key(3), dialog("c@example.com", 4, true));
        t.insert(key(4), dialog("d@example.com", 5, true));
        assert_eq!((t.len(), t.dialogs.len()), (3, 3), "one evicted at the cap");
        assert!(t.remove(&key(4)).is_some());
        assert!(t.remove(&key(4)).is_none());
        assert_eq!((t.len(), t.dialogs.len()), (2, 2));
        t.set_expiry(&key(2), 10);
        t.set_expiry(&key(3), 10);
        assert_eq!(t.expire(10).len(), 2);
        assert_eq!((t.len(), t.dialogs.len()), (0, 0));
        assert!(t.is_empty());
    }

    /// A table held at its cap warns once per 10 s, not once per eviction; the
    /// counter has them all.
    #[test]
    fn evictions_at_the_cap_warn_at_most_every_ten_seconds() {
        let t = DialogTable::new(Caps {
            per_owner: 10,
            global: 1,
        });
        for n in 0..50u32 {
            t.insert(
                key(n),
                dialog(&format!("u{n}@example.com"), 1_000 + u64::from(n), true),
            );
        }
        assert_eq!(t.evicted(), 49);
        assert_eq!(
            t.warned_ms.load(Ordering::Relaxed),
            1_001,
            "the first eviction warned"
        );
        assert_eq!(t.warned_total.load(Ordering::Relaxed), 1);
        t.insert(key(100), dialog("late@example.com", 11_001, true));
        assert_eq!(
            t.warned_ms.load(Ordering::Relaxed),
            11_001,
            "10 s later, one more"
        );
        assert_eq!(t.warned_total.load(Ordering::Relaxed), 50);
    }

    #[test]
    fn per_owner_cap_evicts_oldest_pending_first() {
        let t = DialogTable::new(Caps {
            per_owner: 3,
            global: 100,
        });
        t.insert(key(1), dialog("p@example.com", 1, true));
        t.insert(key(2), dialog("p@example.com", 2, false));
        t.insert(key(3), dialog("p@example.com", 3, false));
        t.insert(key(4), dialog("p@example.com", 4, true));
        assert_eq!(t.len(), 3);
        assert_eq!(t.evicted(), 1);
        assert!(
            t.with(&key(2), |_| ()).is_none(),
            "the oldest pending dialog goes first"
        );
        assert!(
            t.with(&key(1), |_| ()).is_some(),
            "an older confirmed dialog stays"
        );
        t.insert(key(5), dialog("q@example.com", 5, true));
        assert_eq!(t.len(), 4, "another owner is not capped by p's dialogs");
    }

    #[test]
    fn global_cap_evicts_oldest_when_none_pending() {
        let t = DialogTable::new(Caps {
            per_owner: 10,
            global: 2,
        });
        t.insert(key(1), dialog("a@example.com", 1, true));
        t.insert(key(2), dialog("b@example.com", 2, true));
        t.insert(key(3), dialog("c@example.com", 3, true));
        assert_eq!(t.len(), 2);
        assert!(t.with(&key(1), |_| ()).is_none());
        assert_eq!(t.keys_of(&Aor::parse("a@example.com").unwrap()), vec![]);
        assert_eq!(t.evicted(), 1);
    }

    #[test]
    fn global_cap_skips_a_removed_dialog_and_a_reused_key() {
        let t = DialogTable::new(Caps {
            per_owner: 10,
            global: 3,
        });
        t.insert(key(1), dialog("a@example.com", 1, true));
        t.insert(key(2), dialog("b@example.com", 2, true));
        t.insert(key(3), dialog("c@example.com", 3, true));
        // Key 1 ends and is reused by a newer dialog; key 2 ends for good.
        t.remove(&key(1));
        t.insert(key(1), dialog("a@example.com", 4, true));
        t.remove(&key(2));
        t.insert(key(5), dialog("e@example.com", 5, true));
        t.insert(key(6), dialog("f@example.com", 6, true));
        // The oldest live dialog was 3, not the first-queued entries of 1 or 2.
        assert!(t.with(&key(3), |_| ()).is_none());
        for k in [1, 5, 6] {
            assert!(t.with(&key(k), |_| ()).is_some(), "dialog {k} kept");
        }
        assert_eq!(t.evicted(), 1);
    }

    #[test]
    fn global_cap_evicts_a_pending_dialog_before_older_confirmed_ones() {
        let t = DialogTable::new(Caps {
            per_owner: 10,
            global: 2,
        });
        t.insert(key(1), dialog("a@example.com", 1, true));
        t.insert(key(2), dialog("b@example.com", 2, false));
        t.insert(key(3), dialog("c@example.com", 3, true));
        assert!(t.with(&key(2), |_| ()).is_none());
        assert!(t.with(&key(1), |_| ()).is_some());
    }

    #[test]
    fn expiry_follows_refreshes() {
        let t = DialogTable::new(Caps::default());
        t.insert(key(1), dialog("a@example.com", 0, true));
        t.set_expiry(&key(1), 10_000);
        assert!(t.expire(9_999).is_empty());
        let gone = t.expire(10_000);
        assert_eq!(gone.len(), 1);
        assert!(t.is_empty());
        // The stale original entry (3_600_000) fires later and finds nothing.
        assert!(t.expire(4_000_000).is_empty());
    }

    #[test]
    fn refresh_to_later_keeps_the_dialog() {
        let t = DialogTable::new(Caps::default());
        t.insert(key(1), dialog("a@example.com", 0, true));
        t.set_expiry(&key(1), 7_200_000);
        assert!(t.expire(3_600_000).is_empty());
        assert_eq!(t.len(), 1);
    }
}
