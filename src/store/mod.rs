//! Where policies, pending requests and accounts live: sled on disk behind a
//! DashMap cache that the SIP path reads without ever touching sled.
//!
//! The [`Store`] trait keeps sled out of the engine and the web, so a shared backend
//! (Redis, for clusters) can be added later without touching either.

use std::sync::Arc;

mod cache;
mod codec;
mod sled;
mod table;

pub use self::sled::SledStore;
pub use codec::SCHEMA_VERSION;

use crate::policy::{
    decide, Aor, Change, Org, PendingHow, PendingRequest, PendingView, PolicyDocument, UserPolicy,
    ValidationError, Verdict,
};

/// Why the store refused or failed a request.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The change is invalid; nothing was written.
    #[error("invalid: {}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<ValidationError>),
    /// The thing named does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// Another process (a running proxy) holds the data directory.
    #[error("the data directory {0} is in use by another process (is a proxy running? use its admin API)")]
    Locked(String),
    /// The data directory was written by a newer or unknown schema; refused, never reset.
    #[error(
        "the data directory {path} has schema version {found}, this build understands {expected}"
    )]
    Schema {
        path: String,
        found: u32,
        expected: u32,
    },
    /// sled or the file system failed.
    #[error("storage failure: {0}")]
    Io(String),
    /// A stored record could not be decoded.
    #[error("corrupt record in tree {tree}: {reason}")]
    Corrupt { tree: String, reason: String },
}

/// A web/API account (the owner signs in with it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Account {
    pub aor: Aor,
    /// PHC string (argon2id).
    pub password_hash: String,
}

/// What the store announces after it acknowledged a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreEvent {
    /// Something changed that may alter decisions: the engine re-evaluates the live
    /// dialogs of `owner` (every owner when `None`).
    Policy { owner: Option<Aor> },
    /// A new pending request (the web pushes it to the owner's page).
    Pending(PendingRequest),
}

/// A decision with the facts about its owner the engine reads next
/// ([`Store::decide_in_context`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecisionContext {
    pub verdict: Verdict,
    /// The owner is a user here or in a local domain: the proxy enforces for them.
    pub owner_is_ours: bool,
    pub pending_view: PendingView,
}

/// What the engine, the web and the command line need from storage.
///
/// Reads are served from memory; every write is validated, written and flushed to
/// disk, then applied to the cache, then announced on [`Store::subscribe`], and
/// only then returns `Ok` (an acknowledged change survives `kill -9`).
pub trait Store: Send + Sync + 'static {
    /// The org settings (cache read).
    fn org(&self) -> Arc<Org>;
    /// An owner's policy, if the owner is a user here (cache read).
    fn user(&self, owner: &Aor) -> Option<Arc<UserPolicy>>;
    /// Every user, sorted by AoR.
    fn users(&self) -> Vec<Arc<UserPolicy>>;

    /// The decision for (owner, watcher) from the cache.
    fn decide(&self, owner: &Aor, watcher: &Aor) -> Verdict {
        let org = self.org();
        let policy = self.user(owner);
        decide(&org, policy.as_deref(), owner, watcher)
    }

    /// [`Store::decide`] with what the engine reads next about the same owner, in
    /// one lookup: whether the owner is ours to protect (a user here, or in one of
    /// the org's local domains) and the org's pending view. A NOTIFY needs all
    /// three; reading them one by one cost two more lookups and a reference count.
    fn decide_in_context(&self, owner: &Aor, watcher: &Aor) -> DecisionContext {
        let org = self.org();
        let policy = self.user(owner);
        DecisionContext {
            verdict: decide(&org, policy.as_deref(), owner, watcher),
            owner_is_ours: policy.is_some() || org.is_internal(owner),
            pending_view: org.pending_view,
        }
    }

    /// Validates and durably applies one change.
    fn apply(&self, change: Change) -> Result<(), StoreError>;
    /// Validates and durably applies several changes as one transaction: all or none.
    fn apply_all(&self, changes: Vec<Change>) -> Result<(), StoreError>;

    /// The whole policy set.
    fn export(&self) -> PolicyDocument;
    /// Replaces the whole policy set after validating every entry (errors carry JSON
    /// paths); on any error nothing is written.
    fn import(&self, doc: PolicyDocument) -> Result<(), StoreError>;

    /// Records (or refreshes `last_seen_ms` of) a pending request. Returns true when
    /// it is new. A new request is flushed before this returns; a refresh is only
    /// written, and waits for [`Store::flush_deferred`].
    fn record_pending(
        &self,
        owner: &Aor,
        watcher: &Aor,
        how: PendingHow,
        now_ms: u64,
    ) -> Result<bool, StoreError>;
    /// Marks requests older than the org's `pending_timeout_s` as waiting; returns
    /// the ones that changed.
    fn expire_pending(&self, now_ms: u64) -> Result<Vec<PendingRequest>, StoreError>;
    /// The requests waiting for `owner`'s answer, oldest first.
    fn pending(&self, owner: &Aor) -> Vec<PendingRequest>;

    fn account(&self, aor: &Aor) -> Option<Account>;
    fn put_account(&self, account: Account) -> Result<(), StoreError>;
    fn remove_account(&self, aor: &Aor) -> Result<(), StoreError>;
    fn accounts(&self) -> Vec<Aor>;

    /// A receiver of every acknowledged change.
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<StoreEvent>;

    /// Whether a write waits for [`Store::flush_deferred`].
    fn deferred_waiting(&self) -> bool {
        false
    }
    /// Flushes the writes committed without a flush (pending refreshes). Blocks on
    /// the disk, so drivers call it off the packet path, on a short period: that
    /// period bounds what a crash can lose of such writes.
    fn flush_deferred(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
