//! The in-memory copy of everything in the store, which every read is served from.
//!
//! DESIGN.md "The store": reads on the SIP hot path never touch sled. Values are
//! `Arc`s cloned out, and no map guard or table shard lock is ever held while
//! another one is taken, so readers and the single writer cannot deadlock.

use std::sync::{Arc, RwLock};

use dashmap::DashMap;

use super::table::Table;
use super::Account;
use crate::policy::{Aor, Org, PendingRequest, UserPolicy, Verdict};

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

#[derive(Default)]
pub struct Cache {
    org: RwLock<Arc<Org>>,
    /// Every user's policy, laid out for [`Cache::decide`]. Boxed: the store
    /// value stays small for the enums that hold one.
    users: Box<Table>,
    /// Pending requests by owner.
    pending: DashMap<Aor, Vec<PendingRequest>>,
    accounts: DashMap<Aor, Account>,
}

impl Cache {
    pub fn org(&self) -> Arc<Org> {
        self.org.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn user(&self, aor: &Aor) -> Option<Arc<UserPolicy>> {
        self.users.get(aor)
    }

    /// The decision from the cache: [`crate::policy::decide`] on the org and the
    /// owner's policy as they are now, read without touching the owner's lists
    /// unless they may name the watcher (see [`Table`]).
    pub fn decide(&self, owner: &Aor, watcher: &Aor) -> Verdict {
        self.users.decide(owner, watcher)
    }

    /// [`Cache::decide`] with the owner's context, from the same slot read.
    pub fn decide_in_context(&self, owner: &Aor, watcher: &Aor) -> super::DecisionContext {
        self.users.decide_in_context(owner, watcher)
    }

    pub fn users(&self) -> Vec<Arc<UserPolicy>> {
        let mut all = self.users.all();
        all.sort_by(|a, b| a.aor.cmp(&b.aor));
        all
    }

    pub fn user_keys(&self) -> Vec<Aor> {
        self.users.all().iter().map(|u| u.aor.clone()).collect()
    }

    /// Sizes the user table for `users` before a bulk load.
    pub fn reserve_users(&self, users: usize) {
        self.users.reserve(users);
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
            // Each shard of the table switches org and recomputes its owners'
            // class settings at once; `org()` readers follow.
            self.users.set_org(&org);
            *self.org.write().unwrap_or_else(|e| e.into_inner()) = org;
        }
        if ws.put_users.len() > 1024 {
            // A bulk write (an import): size the table once instead of doubling.
            self.users.reserve(self.users.len() + ws.put_users.len());
        }
        for u in ws.put_users {
            self.users.insert(Arc::new(u));
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
