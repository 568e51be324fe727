//! The owners' table: every user's policy, laid out so that one decision reads
//! one 128-byte slot in the common case.
//!
//! DESIGN.md "Performance budget": a decision on a cache hit independent of the
//! number of users. With a million owners every lookup misses the CPU caches and
//! the TLB, so what a decision costs is the number of dependent memory reads, not
//! the logic. A general map (DashMap: shard lock, control bytes, bucket, the key's
//! heap string, the entry, the policy's lists) made it six or more. Here:
//!
//! - Owners sit in open-addressed slots keyed by a 64-bit hash of their AoR, probed
//!   linearly from the hash. A slot holds the owner's AoR inline (up to
//!   [`INLINE_AOR`] bytes; a longer one is compared through the policy), and a hash
//!   only selects candidates: the AoR is always compared in full, so a collision can
//!   never give one owner another's policy.
//! - The slot holds what [`decide_facts`] needs for a watcher the owner's policy
//!   does not name (class setting and defaults) and a Bloom filter of the names it
//!   does (user exceptions, contacts, domain exceptions). Most watchers are not
//!   named: their decision reads the slot and nothing else.
//! - A watcher the filter may name is looked up in the owner's name list: one
//!   allocation holding each name's hash, kind and text, so the exact answer costs
//!   one more read and never a string compare on a hash alone.
//! - Each shard keeps the org it was last given, read under the same read lock as
//!   the slot: no second lock and no reference-count traffic per decision.
//!
//! Shards are behind `RwLock`s: readers share, and the single writer (the store
//! serializes writes) takes one shard at a time, so a reader never sees a slot
//! half-written or a policy freed under it, without `unsafe`.

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::DecisionContext;
use crate::policy::{
    decide, decide_facts, Action, Aor, DefaultExternal, DefaultInternal, Org, OwnerFacts,
    UserPolicy, Verdict,
};

/// log2 of the number of shards. Few, so that each shard's slot array is large
/// enough for huge pages once the table is big.
const SHARD_BITS: u32 = 4;
const SHARDS: usize = 1 << SHARD_BITS;

/// Keys 0 and 1 mark free slots; real hashes are moved out of the way.
const EMPTY: u64 = 0;
const TOMBSTONE: u64 = 1;

/// Owner AoRs up to this many bytes are compared inside the slot.
pub const INLINE_AOR: usize = 40;
const BLOOM_WORDS: usize = 6;
const BLOOM_BITS: u64 = (BLOOM_WORDS * 64) as u64;

const F_AUTO: u8 = 1;
const F_BLOCK_INTERNAL: u8 = 2;
const F_ASK_EXTERNAL: u8 = 4;
/// The AoR is longer than [`INLINE_AOR`]: compare it through `policy`.
const F_LONG_AOR: u8 = 8;

/// Kinds of entries in a slot's name list.
const K_USER_ALLOW: u8 = 0;
const K_USER_BLOCK: u8 = 1;
const K_CONTACT: u8 = 2;
const K_DOMAIN_ALLOW: u8 = 3;
const K_DOMAIN_BLOCK: u8 = 4;
/// hash (8 bytes), kind (1), text length (4), then the text.
const NAME_HEADER: usize = 13;

/// Slots at most this full (numerator over 8) before the shard grows: linear
/// probing stays short.
const MAX_LOAD_EIGHTHS: usize = 6;

/// How full a shard is sized to be when it is (re)built for a known number of
/// owners (start-up): short probes, and a slot array only 1.4 times the owners.
const TARGET_LOAD_PCT: usize = 70;

/// Slot arrays at least this large ask the kernel for huge pages: one TLB entry
/// then covers 16 thousand slots instead of 32.
const HUGE_PAGE: usize = 2 << 20;

/// The hash of owner AoRs and of names. Seeded per process (owners and watchers
/// come from the network); tests can make every string collide.
pub enum KeyHash {
    Seeded(ahash::RandomState),
    #[cfg(test)]
    Constant,
}

impl KeyHash {
    fn hash(&self, s: &str) -> u64 {
        let h = match self {
            KeyHash::Seeded(state) => state.hash_one(s),
            #[cfg(test)]
            KeyHash::Constant => 0x9e37_79b9_7f4a_7c15,
        };
        if h <= TOMBSTONE {
            h + 2
        } else {
            h
        }
    }
}

/// One owner, two cache lines. The fields a decision reads first come first.
#[repr(C, align(128))]
struct Slot {
    key: u64,
    aor_len: u16,
    flags: u8,
    aor: [u8; INLINE_AOR],
    bloom: [u64; BLOOM_WORDS],
    /// The name list: per entry [`NAME_HEADER`] bytes then the text, in the
    /// policy's order (user exceptions, contacts, domain exceptions).
    names: Box<[u8]>,
    policy: Option<Arc<UserPolicy>>,
}

impl Slot {
    fn free(key: u64) -> Self {
        Slot {
            key,
            aor_len: 0,
            flags: 0,
            aor: [0; INLINE_AOR],
            bloom: [0; BLOOM_WORDS],
            names: Box::default(),
            policy: None,
        }
    }

    fn occupied(&self) -> bool {
        self.key > TOMBSTONE
    }

    fn new(key: u64, hasher: &KeyHash, policy: Arc<UserPolicy>, org: &Org) -> Self {
        let mut slot = Slot::free(key);
        let aor = policy.aor.as_str().as_bytes();
        if aor.len() <= INLINE_AOR {
            slot.aor[..aor.len()].copy_from_slice(aor);
            slot.aor_len = aor.len() as u16;
        } else {
            slot.flags |= F_LONG_AOR;
        }
        if policy.default_internal == DefaultInternal::Block {
            slot.flags |= F_BLOCK_INTERNAL;
        }
        if policy.default_external == DefaultExternal::Ask {
            slot.flags |= F_ASK_EXTERNAL;
        }
        slot.set_auto(org.class_auto_authorize(&policy.class));

        let users = policy.exceptions.users.iter().map(|e| {
            let kind = match e.action {
                Action::Allow => K_USER_ALLOW,
                Action::Block => K_USER_BLOCK,
            };
            (kind, e.aor.as_str())
        });
        let contacts = policy.contacts.iter().map(|c| (K_CONTACT, c.aor.as_str()));
        let domains = policy.exceptions.domains.iter().map(|e| {
            let kind = match e.action {
                Action::Allow => K_DOMAIN_ALLOW,
                Action::Block => K_DOMAIN_BLOCK,
            };
            (kind, e.domain.as_str())
        });
        let mut names = Vec::new();
        for (kind, text) in users.chain(contacts).chain(domains) {
            // An AoR or a domain is far shorter than 4 GiB (it came in a SIP header
            // or a policy document).
            let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
            let h = hasher.hash(text);
            slot.bloom_insert(h);
            names.extend_from_slice(&h.to_le_bytes());
            names.push(kind);
            names.extend_from_slice(&len.to_le_bytes());
            names.extend_from_slice(text.as_bytes());
        }
        slot.names = names.into_boxed_slice();
        slot.policy = Some(policy);
        slot
    }

    fn set_auto(&mut self, auto: bool) {
        if auto {
            self.flags |= F_AUTO;
        } else {
            self.flags &= !F_AUTO;
        }
    }

    fn bloom_bits(h: u64) -> [u64; 2] {
        // Two bit positions from the two halves of the hash (multiply-shift range
        // reduction instead of a division).
        [
            ((h & 0xffff_ffff) * BLOOM_BITS) >> 32,
            ((h >> 32) * BLOOM_BITS) >> 32,
        ]
    }

    fn bloom_insert(&mut self, h: u64) {
        for b in Self::bloom_bits(h) {
            self.bloom[(b / 64) as usize] |= 1 << (b % 64);
        }
    }

    fn bloom_may_hold(&self, h: u64) -> bool {
        Self::bloom_bits(h)
            .iter()
            .all(|&b| self.bloom[(b / 64) as usize] & (1 << (b % 64)) != 0)
    }

    fn is(&self, aor: &str) -> bool {
        if self.flags & F_LONG_AOR != 0 {
            return self.policy.as_ref().is_some_and(|p| p.aor.as_str() == aor);
        }
        usize::from(self.aor_len) == aor.len() && self.aor[..aor.len()] == *aor.as_bytes()
    }

    fn unnamed_facts(&self) -> OwnerFacts {
        OwnerFacts::unnamed(
            self.flags & F_AUTO != 0,
            if self.flags & F_BLOCK_INTERNAL != 0 {
                DefaultInternal::Block
            } else {
                DefaultInternal::Allow
            },
            if self.flags & F_ASK_EXTERNAL != 0 {
                DefaultExternal::Ask
            } else {
                DefaultExternal::Block
            },
        )
    }

    /// How the owner's lists name `watcher`, exactly as [`UserPolicy::user_exception`],
    /// [`UserPolicy::has_contact`] and [`UserPolicy::domain_exception`] would say:
    /// the first entry of each kind whose text equals the watcher's (a hash only
    /// skips entries that cannot be equal).
    fn named_facts(&self, watcher: &Aor, wh: u64, dh: u64) -> OwnerFacts {
        let mut facts = self.unnamed_facts();
        let (w, d) = (watcher.as_str().as_bytes(), watcher.domain().as_bytes());
        let mut rest: &[u8] = &self.names;
        while let Some((head, tail)) = rest.split_first_chunk::<NAME_HEADER>() {
            let h = u64::from_le_bytes([
                head[0], head[1], head[2], head[3], head[4], head[5], head[6], head[7],
            ]);
            let kind = head[8];
            let len = u32::from_le_bytes([head[9], head[10], head[11], head[12]]) as usize;
            let Some((text, tail)) = tail.split_at_checked(len) else {
                break;
            };
            rest = tail;
            match kind {
                K_USER_ALLOW | K_USER_BLOCK
                    if facts.user_exception.is_none() && h == wh && text == w =>
                {
                    facts.user_exception = Some(if kind == K_USER_ALLOW {
                        Action::Allow
                    } else {
                        Action::Block
                    });
                }
                K_CONTACT if h == wh && text == w => facts.contact = true,
                K_DOMAIN_ALLOW | K_DOMAIN_BLOCK
                    if facts.domain_exception.is_none() && h == dh && text == d =>
                {
                    facts.domain_exception = Some(if kind == K_DOMAIN_ALLOW {
                        Action::Allow
                    } else {
                        Action::Block
                    });
                }
                _ => {}
            }
        }
        facts
    }
}

const _: () = assert!(std::mem::size_of::<Slot>() == 128);

struct Shard {
    /// Never full (at most [`MAX_LOAD_EIGHTHS`] eighths
    /// occupied or tombstoned), so every probe ends at an empty slot.
    slots: Box<[Slot]>,
    len: usize,
    /// Occupied plus tombstones.
    used: usize,
    org: Arc<Org>,
}

fn slot_array(len: usize) -> Box<[Slot]> {
    let mut v: Vec<Slot> = Vec::with_capacity(len);
    let bytes = len * std::mem::size_of::<Slot>();
    if bytes >= HUGE_PAGE {
        advise_huge_pages(v.as_mut_ptr().cast(), bytes);
    }
    v.extend((0..len).map(|_| Slot::free(EMPTY)));
    v.into_boxed_slice()
}

/// Asks the kernel to back `[ptr, ptr + len)` with transparent huge pages (when
/// enabled in `madvise` mode, as on this project's servers): a random slot then
/// costs a cache miss but rarely a page walk. Called before the memory is first
/// touched, so the pages are huge from their first fault.
fn advise_huge_pages(ptr: *mut u8, len: usize) {
    let page = 4096usize;
    let start = (ptr as usize).next_multiple_of(page);
    let end = (ptr as usize + len) & !(page - 1);
    if end > start {
        // SAFETY: madvise only changes how the kernel backs pages of a range this
        // process owns (the Vec's fresh allocation, rounded inward to whole pages);
        // MADV_HUGEPAGE never changes their contents or validity, and a failure
        // (THP disabled) leaves them as they were.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
}

impl Shard {
    fn new(org: Arc<Org>) -> Self {
        Shard {
            slots: slot_array(16),
            len: 0,
            used: 0,
            org,
        }
    }

    /// Where the probe for hash `h` starts in an array of `len` slots: the low
    /// 32 bits scaled to the length (multiply-shift, so the length need not be a
    /// power of two and the table can be sized to its load). The shard was picked
    /// by the top bits, so these are independent of it.
    fn start(h: u64, len: usize) -> usize {
        (((h & 0xffff_ffff) * len as u64) >> 32) as usize
    }

    fn next(i: usize, len: usize) -> usize {
        if i + 1 == len {
            0
        } else {
            i + 1
        }
    }

    fn find(&self, h: u64, aor: &str) -> Option<&Slot> {
        let len = self.slots.len();
        let mut i = Self::start(h, len);
        loop {
            let slot = &self.slots[i];
            if slot.key == EMPTY {
                return None;
            }
            if slot.key == h && slot.is(aor) {
                return Some(slot);
            }
            i = Self::next(i, len);
        }
    }

    /// The index of `aor`'s slot, or where it would go (the first free slot on
    /// its probe path).
    fn locate(&self, h: u64, aor: &str) -> Result<usize, usize> {
        let len = self.slots.len();
        let mut i = Self::start(h, len);
        let mut first_free = None;
        loop {
            let slot = &self.slots[i];
            if slot.key == EMPTY {
                return Err(first_free.unwrap_or(i));
            }
            if slot.key == TOMBSTONE {
                first_free.get_or_insert(i);
            } else if slot.key == h && slot.is(aor) {
                return Ok(i);
            }
            i = Self::next(i, len);
        }
    }

    /// Rebuilds the slot array with room for `owners` at most [`TARGET_LOAD_PCT`]
    /// percent full, dropping tombstones.
    fn rehash(&mut self, owners: usize) {
        let want = (owners.max(self.len + 1) * 100 / TARGET_LOAD_PCT).max(16);
        let mut slots = slot_array(want);
        for old in self.slots.iter_mut().filter(|s| s.occupied()) {
            let mut i = Self::start(old.key, want);
            while slots[i].key != EMPTY {
                i = Self::next(i, want);
            }
            slots[i] = std::mem::replace(old, Slot::free(EMPTY));
        }
        self.slots = slots;
        self.used = self.len;
    }

    fn insert(&mut self, h: u64, hasher: &KeyHash, policy: Arc<UserPolicy>) {
        if (self.used + 1) * 8 > self.slots.len() * MAX_LOAD_EIGHTHS {
            // Room for twice the owners: growth stays amortized O(1).
            self.rehash((self.len + 1) * 2 * TARGET_LOAD_PCT / 100);
        }
        let slot = Slot::new(h, hasher, policy, &self.org);
        match self.locate(h, slot_aor(&slot)) {
            Ok(i) => self.slots[i] = slot,
            Err(i) => {
                if self.slots[i].key == EMPTY {
                    self.used += 1;
                }
                self.len += 1;
                self.slots[i] = slot;
            }
        }
    }

    fn remove(&mut self, h: u64, aor: &str) {
        if let Ok(i) = self.locate(h, aor) {
            // A tombstone, not an empty slot: probes for owners placed after this
            // one must keep going.
            self.slots[i] = Slot::free(TOMBSTONE);
            self.len -= 1;
        }
    }
}

fn slot_aor(slot: &Slot) -> &str {
    slot.policy.as_ref().map_or("", |p| p.aor.as_str())
}

/// Every user's policy, with the decision read path described in the module doc.
pub struct Table {
    hasher: KeyHash,
    shards: Box<[RwLock<Shard>]>,
}

impl Default for Table {
    fn default() -> Self {
        Table::with_hasher(KeyHash::Seeded(ahash::RandomState::new()))
    }
}

impl Table {
    pub fn with_hasher(hasher: KeyHash) -> Self {
        let org = Arc::new(Org::default());
        Table {
            hasher,
            shards: (0..SHARDS)
                .map(|_| RwLock::new(Shard::new(org.clone())))
                .collect(),
        }
    }

    fn shard_index(h: u64) -> usize {
        (h >> (64 - SHARD_BITS)) as usize
    }

    fn read(&self, h: u64) -> RwLockReadGuard<'_, Shard> {
        self.shards[Self::shard_index(h)]
            .read()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self, i: usize) -> RwLockWriteGuard<'_, Shard> {
        self.shards[i].write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, aor: &Aor) -> Option<Arc<UserPolicy>> {
        let h = self.hasher.hash(aor.as_str());
        self.read(h)
            .find(h, aor.as_str())
            .and_then(|s| s.policy.clone())
    }

    /// The decision for (owner, watcher): [`decide`] on the owner's policy, read
    /// as the module doc describes.
    pub fn decide(&self, owner: &Aor, watcher: &Aor) -> Verdict {
        self.decide_in_context(owner, watcher).verdict
    }

    /// [`Table::decide`], with whether the owner is ours and the pending view
    /// read from the same slot and the shard's org.
    pub fn decide_in_context(&self, owner: &Aor, watcher: &Aor) -> DecisionContext {
        let h = self.hasher.hash(owner.as_str());
        let shard = self.read(h);
        let org = &shard.org;
        let Some(slot) = shard.find(h, owner.as_str()) else {
            return DecisionContext {
                verdict: decide(org, None, owner, watcher),
                owner_is_ours: org.is_internal(owner),
                pending_view: org.pending_view,
            };
        };
        let wh = self.hasher.hash(watcher.as_str());
        let dh = self.hasher.hash(watcher.domain());
        let facts = if slot.bloom_may_hold(wh) || slot.bloom_may_hold(dh) {
            slot.named_facts(watcher, wh, dh)
        } else {
            slot.unnamed_facts()
        };
        DecisionContext {
            verdict: decide_facts(org, owner, watcher, &facts),
            owner_is_ours: true,
            pending_view: org.pending_view,
        }
    }

    /// Adds or replaces the policy of `policy.aor`.
    pub fn insert(&self, policy: Arc<UserPolicy>) {
        let h = self.hasher.hash(policy.aor.as_str());
        self.write(Self::shard_index(h))
            .insert(h, &self.hasher, policy);
    }

    pub fn remove(&self, aor: &Aor) {
        let h = self.hasher.hash(aor.as_str());
        self.write(Self::shard_index(h)).remove(h, aor.as_str());
    }

    /// Installs a new org: each shard switches to it and recomputes its owners'
    /// class setting under one write lock, so a decision sees the old org with
    /// the old settings or the new with the new.
    pub fn set_org(&self, org: &Arc<Org>) {
        for i in 0..SHARDS {
            let mut shard = self.write(i);
            shard.org = org.clone();
            for slot in shard.slots.iter_mut() {
                if let Some(p) = &slot.policy {
                    let auto = org.class_auto_authorize(&p.class);
                    slot.set_auto(auto);
                }
            }
        }
    }

    /// Sizes every shard for `owners` owners in all, before a bulk load (start-up),
    /// so the load neither rehashes nor holds two slot arrays at once.
    pub fn reserve(&self, owners: usize) {
        let per_shard = owners.div_ceil(SHARDS) + owners.div_ceil(SHARDS) / 16;
        for i in 0..SHARDS {
            let mut shard = self.write(i);
            if shard.slots.len() * TARGET_LOAD_PCT / 100 < per_shard {
                shard.rehash(per_shard);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|e| e.into_inner()).len)
            .sum()
    }

    /// Every policy, in no particular order.
    pub fn all(&self) -> Vec<Arc<UserPolicy>> {
        let mut out = Vec::with_capacity(self.len());
        for shard in self.shards.iter() {
            let shard = shard.read().unwrap_or_else(|e| e.into_inner());
            out.extend(shard.slots.iter().filter_map(|s| s.policy.clone()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Contact, Domain, DomainException, UserException};

    fn aor(s: &str) -> Aor {
        Aor::parse(s).unwrap()
    }

    fn org() -> Arc<Org> {
        Arc::new(Org {
            local_domains: vec![Domain::parse("example.com").unwrap()],
            ..Org::default()
        })
    }

    /// An owner whose policy names `n` people and one domain, with defaults
    /// chosen from `i` so neighbours differ.
    fn policy(owner: &str, i: usize) -> UserPolicy {
        let mut p = UserPolicy::new(aor(owner));
        p.default_internal = if i % 2 == 0 {
            DefaultInternal::Allow
        } else {
            DefaultInternal::Block
        };
        p.default_external = if i % 3 == 0 {
            DefaultExternal::Ask
        } else {
            DefaultExternal::Block
        };
        p.exceptions.users.push(UserException {
            aor: aor(&format!("blocked{i}@example.com")),
            action: Action::Block,
        });
        p.contacts.push(Contact {
            aor: aor(&format!("friend{i}@partner.net")),
            name: None,
            learned: false,
        });
        p.exceptions.domains.push(DomainException {
            domain: Domain::parse(&format!("d{i}.org")).unwrap(),
            action: if i % 2 == 0 {
                Action::Block
            } else {
                Action::Allow
            },
        });
        p
    }

    fn watchers(n: usize) -> Vec<Aor> {
        let mut w = Vec::new();
        for i in 0..n {
            for s in [
                format!("blocked{i}@example.com"),
                format!("friend{i}@partner.net"),
                format!("x@d{i}.org"),
                format!("owner{i}@example.com"),
                format!("stranger{i}@example.com"),
                format!("stranger{i}@partner.net"),
            ] {
                w.push(aor(&s));
            }
        }
        w
    }

    fn owners(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| {
                if i % 4 == 3 {
                    // Longer than INLINE_AOR: compared through the policy.
                    format!("owner{i}-with-a-rather-long-user-part@example.com")
                } else {
                    format!("owner{i}@example.com")
                }
            })
            .collect()
    }

    /// Every (owner, watcher) pair decides as the pure function on that owner's
    /// policy, whatever the hash says.
    fn check(table: &Table, org: &Org, policies: &[Option<UserPolicy>], n: usize) {
        let names = owners(n);
        for (i, o) in names.iter().enumerate() {
            let o = aor(o);
            for w in watchers(n).iter().chain([&o]) {
                assert_eq!(
                    table.decide(&o, w),
                    decide(org, policies[i].as_ref(), &o, w),
                    "owner {o} watcher {w}"
                );
                let ctx = table.decide_in_context(&o, w);
                assert_eq!(ctx.verdict, table.decide(&o, w));
                assert_eq!(
                    ctx.owner_is_ours,
                    policies[i].is_some() || org.is_internal(&o),
                    "owner {o}"
                );
                assert_eq!(ctx.pending_view, org.pending_view);
            }
            assert_eq!(table.get(&o).as_deref(), policies[i].as_ref());
        }
    }

    fn run(hasher: KeyHash) {
        let n = 24;
        let table = Table::with_hasher(hasher);
        let org = org();
        table.set_org(&org);
        let mut policies: Vec<Option<UserPolicy>> = owners(n)
            .iter()
            .enumerate()
            .map(|(i, o)| Some(policy(o, i)))
            .collect();
        for p in policies.iter().flatten() {
            table.insert(Arc::new(p.clone()));
        }
        assert_eq!(table.len(), n);
        check(&table, &org, &policies, n);

        // Remove every third owner, replace every fifth: no one inherits a
        // neighbour's policy through a shared hash or a tombstone.
        let names = owners(n);
        for i in (0..n).step_by(3) {
            table.remove(&aor(&names[i]));
            policies[i] = None;
        }
        for i in (1..n).step_by(5) {
            let mut p = policy(&names[i], i + 1);
            p.exceptions.users.clear();
            table.insert(Arc::new(p.clone()));
            policies[i] = Some(p);
        }
        assert_eq!(table.len(), policies.iter().flatten().count());
        check(&table, &org, &policies, n);

        let mut org2 = (*org).clone();
        org2.classes
            .values_mut()
            .for_each(|c| c.auto_authorize = false);
        let org2 = Arc::new(org2);
        table.set_org(&org2);
        check(&table, &org2, &policies, n);
    }

    #[test]
    fn decides_like_the_pure_function() {
        run(KeyHash::Seeded(ahash::RandomState::new()));
    }

    /// Every owner AoR and every name hashes to the same value: the table must still
    /// give each owner exactly their own policy, and a watcher the policy does not
    /// name must not match a name that merely shares its hash.
    #[test]
    fn hash_collisions_never_mix_owners_or_names() {
        run(KeyHash::Constant);
    }

    #[test]
    fn grows_and_reuses_tombstones() {
        let table = Table::default();
        let org = org();
        table.set_org(&org);
        table.reserve(500);
        for round in 0..3 {
            for i in 0..2000 {
                table.insert(Arc::new(policy(&format!("u{i}@example.com"), i + round)));
            }
            assert_eq!(table.len(), 2000);
            for i in (0..2000).step_by(2) {
                table.remove(&aor(&format!("u{i}@example.com")));
            }
            assert_eq!(table.len(), 1000);
            for i in 0..2000 {
                let o = aor(&format!("u{i}@example.com"));
                assert_eq!(table.get(&o).is_some(), i % 2 == 1, "{o}");
            }
        }
        assert_eq!(table.all().len(), 1000);
    }
}
