//! [`SledStore`]: the embedded store. sled on disk, the [`Cache`] in front.
//!
//! Every write follows one path (DESIGN.md "The store"): validate against the
//! cache → one sled transaction across the trees it touches → `flush` → apply to
//! the cache → broadcast a [`StoreEvent`] → `Ok`. An acknowledged change therefore
//! survives `kill -9`, and a change the process died in the middle of is either
//! wholly there or wholly absent after reopening. Writers are serialized by one
//! mutex, so validation always sees the state the write will land on.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ::sled::transaction::{ConflictableTransactionError, TransactionError};
use ::sled::Transactional;
use tokio::sync::broadcast;

use super::cache::{Cache, WriteSet};
use super::codec::{self, *};
use super::{Account, Store, StoreError, StoreEvent};
use crate::policy::{
    validate, Aor, Change, Org, PendingHow, PendingRequest, PendingState, PolicyDocument,
    PolicySet, UserPolicy, ValidationError, Verdict,
};

/// sled's page cache. Its default (1 GiB) counts on-disk bytes, and real memory
/// use is a multiple of it; the DashMap cache is what serves reads anyway.
const SLED_CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// sled's own background flusher is off (`flush_every_ms(None)`), for two reasons
/// measured here:
/// - sled 0.34's flusher also runs its segment cleaner, which on a store of
///   100 000 imported users rewrote pages forever: 1.1 MB/s of disk writes from a
///   proxy with no traffic and no change, still steady after 4 minutes (the
///   behaviour reported as sled issue 1358 and mycognosist/solar issue 49).
/// - each of its runs takes up to half its 500 ms period, and on the proxy's core
///   that preempted the packet path for up to 5 ms (`sched_switch` trace,
///   BENCHMARKS.md "Latency").
///
/// Nothing depends on it: every acknowledged write flushes itself, and the one
/// write that does not (a pending request's refresh) is flushed by the driver
/// through [`Store::flush_deferred`] within its 100 ms write-behind tick. Without
/// the cleaner, sled still reuses a segment once nothing in it is live: 200 000
/// random overwrites of 20 000 records left the data directory at its first size.
const SLED_FLUSH_EVERY_MS: Option<u64> = None;

/// Users decoded per cache update while loading the cache at start-up.
const LOAD_BATCH: usize = 1024;

/// How many acknowledged-change events a slow subscriber may fall behind by.
const EVENT_CAPACITY: usize = 4096;

pub struct SledStore {
    db: sled::Db,
    org_tree: sled::Tree,
    users_tree: sled::Tree,
    pending_tree: sled::Tree,
    accounts_tree: sled::Tree,
    /// Shown in errors and logs.
    location: String,
    cache: Cache,
    /// Serializes writers: validate-then-write must not interleave.
    write_lock: Mutex<()>,
    /// A write was committed without a flush ([`Store::flush_deferred`] owes one).
    deferred: AtomicBool,
    events: broadcast::Sender<StoreEvent>,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

fn io(e: sled::Error) -> StoreError {
    StoreError::Io(e.to_string())
}

impl SledStore {
    /// Opens (creating if needed) the data directory `dir`.
    ///
    /// Refuses a directory another process holds ([`StoreError::Locked`]: a proxy
    /// is running, go through its admin API) and one written with a schema this
    /// build does not know ([`StoreError::Schema`]); it never resets data.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        let dir = dir.as_ref();
        let location = dir.display().to_string();
        let config = sled::Config::new()
            .path(dir)
            .cache_capacity(SLED_CACHE_BYTES)
            .flush_every_ms(SLED_FLUSH_EVERY_MS);
        let db = config.open().map_err(|e| match e {
            // sled 0.34.7 reports a held flock as Io(Other, "could not acquire lock on ...").
            sled::Error::Io(ref ioe) if ioe.to_string().contains("could not acquire lock") => {
                StoreError::Locked(location.clone())
            }
            other => StoreError::Io(format!("cannot open {location}: {other}")),
        })?;
        tracing::info!(path = %location, recovered = db.was_recovered(), "store opened");
        Self::from_db(db, location)
    }

    /// A store that lives only as long as the value (sled's temporary mode): for
    /// replay and tests. Same code path as [`SledStore::open`].
    pub fn temporary() -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .temporary(true)
            .cache_capacity(SLED_CACHE_BYTES)
            .flush_every_ms(SLED_FLUSH_EVERY_MS)
            .open()
            .map_err(io)?;
        Self::from_db(db, "(temporary)".to_string())
    }

    fn from_db(db: sled::Db, location: String) -> Result<Self, StoreError> {
        let meta = db.open_tree(TREE_META).map_err(io)?;
        let org_tree = db.open_tree(TREE_ORG).map_err(io)?;
        let users_tree = db.open_tree(TREE_USERS).map_err(io)?;
        let pending_tree = db.open_tree(TREE_PENDING).map_err(io)?;
        let accounts_tree = db.open_tree(TREE_ACCOUNTS).map_err(io)?;

        match meta.get(KEY_SCHEMA).map_err(io)? {
            Some(v) => {
                let found = <[u8; 4]>::try_from(v.as_ref())
                    .map(u32::from_be_bytes)
                    .unwrap_or(u32::MAX);
                if found != SCHEMA_VERSION {
                    return Err(StoreError::Schema {
                        path: location,
                        found,
                        expected: SCHEMA_VERSION,
                    });
                }
            }
            None => {
                let has_data = [&org_tree, &users_tree, &pending_tree, &accounts_tree]
                    .iter()
                    .any(|t| !t.is_empty());
                if has_data {
                    // Records without a schema marker were not written by us.
                    return Err(StoreError::Schema {
                        path: location,
                        found: 0,
                        expected: SCHEMA_VERSION,
                    });
                }
                meta.insert(KEY_SCHEMA, &SCHEMA_VERSION.to_be_bytes())
                    .map_err(io)?;
                db.flush().map_err(io)?;
            }
        }

        let cache = Cache::default();
        let mut initial = WriteSet::default();
        if let Some(v) = org_tree.get(KEY_ORG).map_err(io)? {
            initial.org = Some(codec::decode::<Org>(TREE_ORG, &v)?);
        }
        cache.apply(initial);
        // Users go into the cache as they are decoded, in batches, into a table
        // sized once: start-up never holds every decoded policy twice (peak
        // resident memory is what the proxy must be provisioned for).
        cache.reserve_users(users_tree.len());
        let mut users = 0usize;
        let mut batch = WriteSet::default();
        for item in users_tree.iter() {
            let (_, v) = item.map_err(io)?;
            batch.put_users.push(codec::decode(TREE_USERS, &v)?);
            users += 1;
            if batch.put_users.len() == LOAD_BATCH {
                cache.apply(std::mem::take(&mut batch));
            }
        }
        let mut initial = batch;
        for item in pending_tree.iter() {
            let (_, v) = item.map_err(io)?;
            initial.put_pending.push(codec::decode(TREE_PENDING, &v)?);
        }
        for item in accounts_tree.iter() {
            let (_, v) = item.map_err(io)?;
            initial.put_accounts.push(codec::decode(TREE_ACCOUNTS, &v)?);
        }
        tracing::info!(
            path = %location,
            users,
            pending = initial.put_pending.len(),
            accounts = initial.put_accounts.len(),
            "store cache loaded"
        );
        cache.apply(initial);

        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        Ok(SledStore {
            db,
            org_tree,
            users_tree,
            pending_tree,
            accounts_tree,
            location,
            cache,
            write_lock: Mutex::new(()),
            deferred: AtomicBool::new(false),
            events,
        })
    }

    /// Where the data lives (for messages).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Number of users in the cache.
    pub fn user_count(&self) -> usize {
        self.cache.user_count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.write_lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `ws` in one transaction, flushes when `durable`, then updates the
    /// cache. The caller holds the write lock.
    fn commit(&self, ws: WriteSet, durable: bool) -> Result<(), StoreError> {
        if ws.is_empty() {
            return Ok(());
        }
        // Encode outside the closure: sled may run it more than once.
        let org = ws.org.as_ref().map(codec::encode);
        let put_users: Vec<_> = ws
            .put_users
            .iter()
            .map(|u| (u.aor.as_str().as_bytes().to_vec(), codec::encode(u)))
            .collect();
        let put_pending: Vec<_> = ws
            .put_pending
            .iter()
            .map(|r| (pending_key(&r.owner, &r.watcher), codec::encode(r)))
            .collect();
        let del_pending: Vec<_> = ws
            .del_pending
            .iter()
            .map(|(o, w)| pending_key(o, w))
            .collect();
        let put_accounts: Vec<_> = ws
            .put_accounts
            .iter()
            .map(|a| (a.aor.as_str().as_bytes().to_vec(), codec::encode(a)))
            .collect();

        let result = (
            &self.org_tree,
            &self.users_tree,
            &self.pending_tree,
            &self.accounts_tree,
        )
            .transaction(|(o, u, p, a)| {
                if let Some(org) = &org {
                    o.insert(KEY_ORG, org.as_slice())?;
                }
                for aor in &ws.del_users {
                    u.remove(aor.as_str().as_bytes())?;
                }
                for (k, v) in &put_users {
                    u.insert(k.as_slice(), v.as_slice())?;
                }
                for k in &del_pending {
                    p.remove(k.as_slice())?;
                }
                for (k, v) in &put_pending {
                    p.insert(k.as_slice(), v.as_slice())?;
                }
                for aor in &ws.del_accounts {
                    a.remove(aor.as_str().as_bytes())?;
                }
                for (k, v) in &put_accounts {
                    a.insert(k.as_slice(), v.as_slice())?;
                }
                Ok::<(), ConflictableTransactionError<()>>(())
            });
        match result {
            Ok(()) => {}
            Err(TransactionError::Abort(())) => {
                return Err(StoreError::Io("transaction aborted".into()))
            }
            Err(TransactionError::Storage(e)) => return Err(io(e)),
        }
        let flushed = if durable {
            // Clear first: a flush covers every write committed before it starts.
            self.deferred.store(false, Ordering::Release);
            let r = self.db.flush().map(|_| ());
            if r.is_err() {
                self.deferred.store(true, Ordering::Release);
            }
            r
        } else {
            self.deferred.store(true, Ordering::Release);
            Ok(())
        };
        // sled holds the change now, flushed or not: the cache must show what a
        // restart may show. Only a flushed change is acknowledged.
        self.cache.apply(ws);
        flushed.map_err(|e| StoreError::Io(format!("written but not flushed to disk: {e}")))
    }

    fn announce(&self, event: StoreEvent) {
        // No subscriber is fine: nobody needs waking.
        let _ = self.events.send(event);
    }

    /// Validates `changes` against the cache as one unit and builds what to write.
    /// Returns the write set and the events to announce once it is durable.
    fn plan(&self, changes: &[Change]) -> Result<(WriteSet, Vec<StoreEvent>), StoreError> {
        let mut set = PolicySet {
            org: (*self.cache.org()).clone(),
            users: BTreeMap::new(),
        };
        // In first-touched order (for the events), with a set to keep big batches linear.
        let mut touched: Vec<Aor> = Vec::new();
        let mut seen: HashSet<&Aor> = HashSet::new();
        let mut org_changed = false;
        for change in changes {
            match change.owner() {
                Some(owner) => {
                    if seen.insert(owner) {
                        touched.push(owner.clone());
                        if let Some(u) = self.cache.user(owner) {
                            set.users.insert(owner.clone(), (*u).clone());
                        }
                    }
                }
                None => org_changed = true,
            }
        }
        let mut errors: Vec<ValidationError> = Vec::new();
        for (i, change) in changes.iter().enumerate() {
            if let Err(errs) = change.apply_to(&mut set) {
                let prefix = if changes.len() > 1 {
                    format!("[{i}].")
                } else {
                    String::new()
                };
                errors.extend(
                    errs.into_iter()
                        .map(|e| ValidationError::new(format!("{prefix}{}", e.path), e.message)),
                );
                // Later changes may depend on this one; report what this one says and stop.
                break;
            }
        }
        if errors.is_empty() && org_changed {
            // Users not loaded into `set` must still name classes the new org defines.
            let others: Vec<Arc<UserPolicy>> = self
                .cache
                .users()
                .into_iter()
                .filter(|u| !set.users.contains_key(&u.aor))
                .collect();
            errors.extend(validate::classes_in_use(
                &set.org,
                others.iter().map(|u| u.as_ref()),
            ));
        }
        if !errors.is_empty() {
            return Err(StoreError::Invalid(errors));
        }

        let mut ws = WriteSet::default();
        let mut events = Vec::new();
        if org_changed {
            ws.org = Some(set.org.clone());
            events.push(StoreEvent::Policy { owner: None });
        }
        for owner in &touched {
            match set.users.remove(owner) {
                Some(u) => {
                    if self.cache.user(owner).as_deref() != Some(&u) {
                        ws.put_users.push(u);
                    }
                }
                None => {
                    if self.cache.user(owner).is_some() {
                        ws.del_users.push(owner.clone());
                        // "Remove a user and everything they own": their pending
                        // requests and their sign-in account.
                        for r in self.cache.pending(owner) {
                            ws.del_pending.push((r.owner, r.watcher));
                        }
                        if self.cache.account(owner).is_some() {
                            ws.del_accounts.push(owner.clone());
                        }
                    }
                }
            }
            if !org_changed {
                events.push(StoreEvent::Policy {
                    owner: Some(owner.clone()),
                });
            }
        }
        for change in changes {
            // The owner's answer settles the request it answers (ShoreTel 6.4.2).
            if let Change::Answer { owner, watcher, .. } = change {
                if self.cache.pending_one(owner, watcher).is_some() {
                    ws.del_pending.push((owner.clone(), watcher.clone()));
                }
            }
        }
        Ok((ws, events))
    }
}

impl Store for SledStore {
    fn org(&self) -> Arc<Org> {
        self.cache.org()
    }

    fn user(&self, owner: &Aor) -> Option<Arc<UserPolicy>> {
        self.cache.user(owner)
    }

    fn users(&self) -> Vec<Arc<UserPolicy>> {
        self.cache.users()
    }

    fn decide(&self, owner: &Aor, watcher: &Aor) -> Verdict {
        self.cache.decide(owner, watcher)
    }

    fn decide_in_context(&self, owner: &Aor, watcher: &Aor) -> super::DecisionContext {
        self.cache.decide_in_context(owner, watcher)
    }

    fn apply(&self, change: Change) -> Result<(), StoreError> {
        self.apply_all(vec![change])
    }

    fn apply_all(&self, changes: Vec<Change>) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let _guard = self.lock();
        let (ws, events) = self.plan(&changes)?;
        self.commit(ws, true)?;
        for e in events {
            self.announce(e);
        }
        Ok(())
    }

    fn export(&self) -> PolicyDocument {
        let _guard = self.lock();
        PolicyDocument {
            version: PolicyDocument::VERSION,
            org: (*self.cache.org()).clone(),
            users: self.cache.users().iter().map(|u| (**u).clone()).collect(),
        }
    }

    fn import(&self, doc: PolicyDocument) -> Result<(), StoreError> {
        let errors = validate::validate_document(&doc);
        if !errors.is_empty() {
            return Err(StoreError::Invalid(errors));
        }
        let _guard = self.lock();
        let keep: HashSet<&Aor> = doc.users.iter().map(|u| &u.aor).collect();
        let del_users: Vec<Aor> = self
            .cache
            .user_keys()
            .into_iter()
            .filter(|a| !keep.contains(a))
            .collect();
        drop(keep);
        let users = doc.users.len();
        // The document's users move into the write set: a large import holds one
        // copy of them, not two.
        let ws = WriteSet {
            org: Some(doc.org),
            put_users: doc.users,
            del_users,
            ..WriteSet::default()
        };
        self.commit(ws, true)?;
        tracing::info!(users, "policy document imported");
        self.announce(StoreEvent::Policy { owner: None });
        Ok(())
    }

    fn record_pending(
        &self,
        owner: &Aor,
        watcher: &Aor,
        how: PendingHow,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let _guard = self.lock();
        match self.cache.pending_one(owner, watcher) {
            Some(mut r) => {
                r.last_seen_ms = r.last_seen_ms.max(now_ms);
                r.how = how;
                // A refresh only moves `last_seen_ms`: not worth a disk flush.
                self.commit(
                    WriteSet {
                        put_pending: vec![r],
                        ..WriteSet::default()
                    },
                    false,
                )?;
                Ok(false)
            }
            None => {
                let r = PendingRequest {
                    owner: owner.clone(),
                    watcher: watcher.clone(),
                    how,
                    first_seen_ms: now_ms,
                    last_seen_ms: now_ms,
                    state: PendingState::Pending,
                };
                self.commit(
                    WriteSet {
                        put_pending: vec![r.clone()],
                        ..WriteSet::default()
                    },
                    true,
                )?;
                self.announce(StoreEvent::Pending(r));
                Ok(true)
            }
        }
    }

    fn expire_pending(&self, now_ms: u64) -> Result<Vec<PendingRequest>, StoreError> {
        let _guard = self.lock();
        let timeout_ms = self.cache.org().pending_timeout_s.saturating_mul(1000);
        let expired: Vec<PendingRequest> = self
            .cache
            .all_pending()
            .into_iter()
            .filter(|r| {
                r.state == PendingState::Pending
                    && now_ms.saturating_sub(r.first_seen_ms) >= timeout_ms
            })
            .map(|mut r| {
                r.state = PendingState::Waiting;
                r
            })
            .collect();
        if !expired.is_empty() {
            self.commit(
                WriteSet {
                    put_pending: expired.clone(),
                    ..WriteSet::default()
                },
                true,
            )?;
        }
        Ok(expired)
    }

    fn pending(&self, owner: &Aor) -> Vec<PendingRequest> {
        self.cache.pending(owner)
    }

    fn account(&self, aor: &Aor) -> Option<Account> {
        self.cache.account(aor)
    }

    fn put_account(&self, account: Account) -> Result<(), StoreError> {
        if account.password_hash.trim().is_empty() {
            return Err(StoreError::Invalid(vec![ValidationError::new(
                "password",
                "an account needs a password",
            )]));
        }
        let _guard = self.lock();
        self.commit(
            WriteSet {
                put_accounts: vec![account],
                ..WriteSet::default()
            },
            true,
        )
    }

    fn remove_account(&self, aor: &Aor) -> Result<(), StoreError> {
        let _guard = self.lock();
        if self.cache.account(aor).is_none() {
            return Err(StoreError::NotFound(format!("account {aor}")));
        }
        self.commit(
            WriteSet {
                del_accounts: vec![aor.clone()],
                ..WriteSet::default()
            },
            true,
        )
    }

    fn accounts(&self) -> Vec<Aor> {
        self.cache.accounts()
    }

    fn subscribe(&self) -> broadcast::Receiver<StoreEvent> {
        self.events.subscribe()
    }

    fn deferred_waiting(&self) -> bool {
        self.deferred.load(Ordering::Acquire)
    }

    fn flush_deferred(&self) -> Result<(), StoreError> {
        if !self.deferred.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        self.db.flush().map(|_| ()).map_err(|e| {
            self.deferred.store(true, Ordering::Release);
            io(e)
        })
    }
}
