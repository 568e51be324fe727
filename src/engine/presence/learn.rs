//! Learned contacts, written off the packet path.
//!
//! "Anyone in your contact list (being watched by you)" (DESIGN.md, the privacy
//! model): when an owner's own SUBSCRIBE to X passes, X joins the owner's contacts,
//! persisted. Persisting means a store transaction and a disk flush, which take
//! milliseconds; done inline they stalled every other message behind them (a
//! phone fleet's first subscriptions after deployment learn one contact each).
//! So the engine only queues the pair, and the driver calls
//! [`Presence::apply_learned`] from a thread that may block: the queue goes to the
//! store as one transaction and one flush.
//!
//! Nobody waits for a learned contact, so nothing is acknowledged early: a queued
//! pair lost to `kill -9` is learned again at the next SUBSCRIBE.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use super::{bump, Presence};
use crate::policy::{Aor, Change};

/// Pairs waiting beyond this are dropped (and counted as not learned) until the
/// store catches up, so a stalled disk cannot grow memory without bound.
const MAX_QUEUED: usize = 65_536;

/// (owner of the contact list, contact) pairs waiting to be written.
#[derive(Debug, Default)]
pub(super) struct LearnQueue(Mutex<Vec<(Aor, Aor)>>);

impl Presence {
    /// Queues `contact` for `owner`'s contact list (see the module doc).
    pub(super) fn learn_later(&self, owner: &Aor, contact: &Aor) {
        let Ok(mut q) = self.learn.0.lock() else {
            return;
        };
        if q.len() >= MAX_QUEUED {
            drop(q);
            bump(&self.counters.contacts_not_learned);
            tracing::debug!(%owner, %contact, "contact not learned: the store is behind");
            return;
        }
        q.push((owner.clone(), contact.clone()));
    }

    /// Whether learned contacts wait for [`Presence::apply_learned`].
    pub fn learned_waiting(&self) -> bool {
        self.learn.0.lock().is_ok_and(|q| !q.is_empty())
    }

    /// Writes every queued learned contact: one transaction for the lot; if the
    /// store refuses it (a contact over its class's limit, an admin-blocked
    /// contact), each change alone, so one refusal does not lose the others.
    /// Blocks on the store: call it where blocking is allowed.
    pub fn apply_learned(&self) {
        let queued = match self.learn.0.lock() {
            Ok(mut q) => std::mem::take(&mut *q),
            Err(_) => return,
        };
        let mut seen = HashSet::new();
        let changes: Vec<Change> = queued
            .into_iter()
            .filter(|pair| seen.insert(pair.clone()))
            .filter(|(owner, contact)| {
                // Learned by an earlier batch, or added by the owner meanwhile.
                self.store
                    .user(owner)
                    .is_some_and(|p| !p.has_contact(contact))
            })
            .map(|(owner, contact)| Change::AddContact {
                owner,
                contact,
                name: None,
                learned: true,
            })
            .collect();
        if changes.is_empty() {
            return;
        }
        if self.store.apply_all(changes.clone()).is_ok() {
            self.counters
                .contacts_learned
                .fetch_add(changes.len() as u64, Ordering::Relaxed);
            for c in &changes {
                if let Change::AddContact { owner, contact, .. } = c {
                    tracing::info!(%owner, %contact, "contact learned from the owner's SUBSCRIBE");
                }
            }
            return;
        }
        for c in changes {
            let Change::AddContact { owner, contact, .. } = &c else {
                continue;
            };
            let (owner, contact) = (owner.clone(), contact.clone());
            match self.store.apply(c) {
                Ok(()) => {
                    bump(&self.counters.contacts_learned);
                    tracing::info!(%owner, %contact, "contact learned from the owner's SUBSCRIBE");
                }
                Err(err) => {
                    // Over the contact limit, admin-blocked ...: the phone's SUBSCRIBE
                    // is not the place to report it.
                    bump(&self.counters.contacts_not_learned);
                    tracing::info!(%owner, %contact, %err, "contact not learned");
                }
            }
        }
    }
}
