//! The in-memory copy of everything in the store, which every read is served from.
//!
//! DESIGN.md "The store": reads on the SIP hot path never touch sled. Values are
//! `Arc`s cloned out, and no map guard is ever held while another map (or the same
//! one) is touched, so readers and the single writer cannot deadlock.

use std::sync::{Arc, RwLock};

use dashmap::DashMap;

use super::Account;
use crate::policy::{
    decide, decide_unnamed, Aor, DefaultExternal, DefaultInternal, Org, PendingRequest, UserPolicy,
    Verdict,
};

/// Everything a write changes, decided before anything is written: the same set is
/// written to sled in one transaction and then applied here.
#[derive(Debug, Default)]
pub struct WriteSet {
    pub org: Option<Org>,
    pub put_users: Vec<UserPolicy>,
    pub del_users: Vec<Aor>,
    pub put_pending: Vec<PendingRequest>,
    pub del_pending: Vec<(Aor, Aor)>,
    pub put_accounts: Vec<Account>,
    pub del_accounts: Vec<Aor>,
}

impl WriteSet {
    pub fn is_empty(&self) -> bool {
        self.org.is_none()
            && self.put_users.is_empty()
            && self.del_users.is_empty()
            && self.put_pending.is_empty()
            && self.del_pending.is_empty()
            && self.put_accounts.is_empty()
            && self.del_accounts.is_empty()
    }
}

/// An owner's policy as the hot path reads it. Most watchers are not named in the
/// owner's lists; for them the decision needs only what is inline here, so one map
/// lookup answers without touching the policy's lists (DESIGN.md: a decision on a
/// cache hit independent of the number of users).
#[derive(Debug)]
struct Entry {
    policy: Arc<UserPolicy>,
    /// The owner's class's `auto_authorize` under the current org (recomputed
    /// when the org changes).
    auto: bool,
    default_internal: DefaultInternal,
    default_external: DefaultExternal,
    /// [`name_hash`] of every AoR in the user exceptions and contacts and every
    /// domain in the domain exceptions. A watcher whose AoR and domain hash to
    /// none of these is certainly not named; a match sends the decision to the
    /// full [`decide`], so a hash collision costs time, never correctness.
    names: Box<[u64]>,
}

impl Entry {
    fn new(policy: Arc<UserPolicy>, org: &Org) -> Self {
        let names = policy
            .exceptions
            .users
            .iter()
            .map(|e| e.aor.as_str())
            .chain(policy.contacts.iter().map(|c| c.aor.as_str()))
            .chain(policy.exceptions.domains.iter().map(|d| d.domain.as_str()))
            .map(name_hash)
            .collect();
        Entry {
            auto: org.class_auto_authorize(&policy.class),
            default_internal: policy.default_internal,
            default_external: policy.default_external,
            names,
            policy,
        }
    }
}

/// FNV-1a, 64 bits: fast on short strings. Only ever used to prove two names
/// differ, so its weakness against chosen collisions is harmless.
fn name_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[derive(Debug, Default)]
pub struct Cache {
    org: RwLock<Arc<Org>>,
    users: DashMap<Aor, Entry>,
    /// Pending requests by owner.
    pending: DashMap<Aor, Vec<PendingRequest>>,
    accounts: DashMap<Aor, Account>,
}

impl Cache {
    pub fn org(&self) -> Arc<Org> {
        self.org.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn user(&self, aor: &Aor) -> Option<Arc<UserPolicy>> {
        self.users.get(aor).map(|u| u.policy.clone())
    }

    /// The decision from the cache. The user's shard is read-locked only while the
    /// pure [`decide`] runs; no other map is touched meanwhile.
    pub fn decide(&self, owner: &Aor, watcher: &Aor) -> Verdict {
        let org = self.org();
        let Some(e) = self.users.get(owner) else {
            return decide(&org, None, owner, watcher);
        };
        let (w, d) = (name_hash(watcher.as_str()), name_hash(watcher.domain()));
        if e.names.iter().any(|&h| h == w || h == d) {
            decide(&org, Some(&e.policy), owner, watcher)
        } else {
            decide_unnamed(
                &org,
                owner,
                watcher,
                e.auto,
                e.default_internal,
                e.default_external,
            )
        }
    }

    pub fn users(&self) -> Vec<Arc<UserPolicy>> {
        let mut all: Vec<_> = self.users.iter().map(|e| e.policy.clone()).collect();
        all.sort_by(|a, b| a.aor.cmp(&b.aor));
        all
    }

    pub fn user_keys(&self) -> Vec<Aor> {
        self.users.iter().map(|e| e.key().clone()).collect()
    }

    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    pub fn pending(&self, owner: &Aor) -> Vec<PendingRequest> {
        let mut list = self
            .pending
            .get(owner)
            .map(|l| l.value().clone())
            .unwrap_or_default();
        list.sort_by_key(|r| (r.first_seen_ms, r.watcher.clone()));
        list
    }

    pub fn pending_one(&self, owner: &Aor, watcher: &Aor) -> Option<PendingRequest> {
        self.pending
            .get(owner)
            .and_then(|l| l.iter().find(|r| &r.watcher == watcher).cloned())
    }

    pub fn all_pending(&self) -> Vec<PendingRequest> {
        self.pending
            .iter()
            .flat_map(|e| e.value().clone())
            .collect()
    }

    pub fn account(&self, aor: &Aor) -> Option<Account> {
        self.accounts.get(aor).map(|a| a.value().clone())
    }

    pub fn accounts(&self) -> Vec<Aor> {
        let mut all: Vec<_> = self.accounts.iter().map(|e| e.key().clone()).collect();
        all.sort();
        all
    }

    /// Applies an acknowledged write set. Puts go in before deletes so a reader
    /// during an import never sees a user missing who is in both old and new sets.
    pub fn apply(&self, ws: WriteSet) {
        if let Some(org) = ws.org {
            let org = Arc::new(org);
            *self.org.write().unwrap_or_else(|e| e.into_inner()) = org.clone();
            // Classes may have changed. Until this loop passes an owner, their
            // decisions use the old class setting: an org change lands owner by
            // owner, each one consistent.
            for mut e in self.users.iter_mut() {
                e.auto = org.class_auto_authorize(&e.policy.class);
            }
        }
        let org = self.org();
        for u in ws.put_users {
            self.users
                .insert(u.aor.clone(), Entry::new(Arc::new(u), &org));
        }
        for aor in &ws.del_users {
            self.users.remove(aor);
        }
        for r in ws.put_pending {
            let mut list = self.pending.entry(r.owner.clone()).or_default();
            match list.iter_mut().find(|x| x.watcher == r.watcher) {
                Some(x) => *x = r,
                None => list.push(r),
            }
        }
        for (owner, watcher) in &ws.del_pending {
            let now_empty = match self.pending.get_mut(owner) {
                Some(mut list) => {
                    list.retain(|r| &r.watcher != watcher);
                    list.is_empty()
                }
                None => false,
            };
            if now_empty {
                self.pending.remove_if(owner, |_, l| l.is_empty());
            }
        }
        for a in ws.put_accounts {
            self.accounts.insert(a.aor.clone(), a);
        }
        for aor in &ws.del_accounts {
            self.accounts.remove(aor);
        }
    }
}
