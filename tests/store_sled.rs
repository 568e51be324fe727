//! The sled store: what is acknowledged is on disk, what is refused changes nothing,
//! and a data directory it does not understand or cannot lock is refused clearly.

use presence_proxy::policy::{
    Action, Aor, Change, Decision, DefaultExternal, Domain, Org, PendingHow, PendingState,
    PolicyDocument, Rule, UserPolicy,
};
use presence_proxy::store::{Account, SledStore, Store, StoreError, StoreEvent};
use std::path::Path;
use std::time::Duration;

fn aor(s: &str) -> Aor {
    Aor::parse(s).unwrap()
}

/// sled lets go of its file lock from a background flusher thread a moment after the
/// last handle drops (spacejam/sled#1234), so a reopen in the same process waits out a
/// lock refusal, for two seconds at most: a lock still held then is a real failure.
fn reopen(dir: &Path) -> Result<SledStore, StoreError> {
    for _ in 0..40 {
        match SledStore::open(dir) {
            Err(StoreError::Locked(_)) => std::thread::sleep(Duration::from_millis(50)),
            other => return other,
        }
    }
    SledStore::open(dir)
}

/// The same wait for a raw sled handle, used to edit the files behind the store's back.
fn reopen_raw(dir: &Path) -> sled::Db {
    for _ in 0..40 {
        match sled::open(dir) {
            // sled 0.34.7 reports a held flock as Io(Other, "could not acquire lock on ...").
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                std::thread::sleep(Duration::from_millis(50))
            }
            other => return other.unwrap(),
        }
    }
    sled::open(dir).unwrap()
}

fn org() -> Org {
    Org {
        local_domains: vec![Domain::parse("example.com").unwrap()],
        blocked_users: vec![aor("spam@evil.org")],
        blocked_domains: vec![Domain::parse("bad.net").unwrap()],
        ..Org::default()
    }
}

#[test]
fn acknowledged_changes_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        store.apply(Change::SetOrg { org: org() }).unwrap();
        store
            .apply(Change::AddUserException {
                owner: aor("alice@example.com"),
                watcher: aor("bob@example.com"),
                action: Action::Block,
            })
            .unwrap();
        store
            .apply(Change::AddContact {
                owner: aor("alice@example.com"),
                contact: aor("carol@partner.net"),
                name: Some("Carol".into()),
                learned: false,
            })
            .unwrap();
        store
            .put_account(Account {
                aor: aor("alice@example.com"),
                password_hash: "$argon2id$x".into(),
            })
            .unwrap();
    }
    let store = reopen(dir.path()).unwrap();
    assert_eq!(*store.org(), org());
    let alice = store
        .user(&aor("alice@example.com"))
        .expect("alice persisted");
    assert_eq!(
        alice.user_exception(&aor("bob@example.com")),
        Some(Action::Block)
    );
    assert!(alice.has_contact(&aor("carol@partner.net")));
    assert_eq!(store.accounts(), vec![aor("alice@example.com")]);
    let v = store.decide(&aor("alice@example.com"), &aor("carol@partner.net"));
    assert_eq!((v.decision, v.rule), (Decision::Allow, Rule::Contact));
}

#[test]
fn second_open_of_same_dir_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let _first = SledStore::open(dir.path()).unwrap();
    match SledStore::open(dir.path()) {
        Err(StoreError::Locked(p)) => assert!(p.contains(&dir.path().display().to_string())),
        other => panic!("expected Locked, got {other:?}"),
    }
}

#[test]
fn newer_schema_is_refused_and_not_reset() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        store
            .apply(Change::SetRefreshInterval {
                owner: aor("alice@example.com"),
                seconds: 60,
            })
            .unwrap();
    }
    {
        let db = reopen_raw(dir.path());
        db.open_tree("meta")
            .unwrap()
            .insert("schema", &99u32.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    match reopen(dir.path()) {
        Err(StoreError::Schema {
            found: 99,
            expected: 1,
            ..
        }) => {}
        other => panic!("expected Schema error, got {other:?}"),
    }
    // The data is still there for a build that understands it.
    let db = reopen_raw(dir.path());
    assert!(db
        .open_tree("users")
        .unwrap()
        .get("alice@example.com")
        .unwrap()
        .is_some());
}

#[test]
fn refused_change_leaves_store_unchanged() {
    let store = SledStore::temporary().unwrap();
    store.apply(Change::SetOrg { org: org() }).unwrap();
    let before = store.export();
    let err = store
        .apply(Change::AddContact {
            owner: aor("alice@example.com"),
            contact: aor("spam@evil.org"),
            name: None,
            learned: false,
        })
        .unwrap_err();
    match err {
        StoreError::Invalid(errs) => {
            assert_eq!(errs[0].path, "contact");
            assert!(
                errs[0].message.contains("blocked by the administrator"),
                "{}",
                errs[0].message
            );
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    // A batch with one bad change applies none of them.
    let err = store.apply_all(vec![
        Change::SetRefreshInterval {
            owner: aor("alice@example.com"),
            seconds: 60,
        },
        Change::SetRefreshInterval {
            owner: aor("bob@example.com"),
            seconds: 6,
        },
    ]);
    assert!(
        matches!(err, Err(StoreError::Invalid(ref e)) if e[0].path == "[1].seconds"),
        "{err:?}"
    );
    assert_eq!(store.export(), before);
}

#[test]
fn import_replaces_everything_and_export_round_trips() {
    let store = SledStore::temporary().unwrap();
    store
        .apply(Change::SetRefreshInterval {
            owner: aor("old@example.com"),
            seconds: 60,
        })
        .unwrap();
    let mut bob = UserPolicy::new(aor("bob@example.com"));
    bob.default_external = DefaultExternal::Ask;
    let doc = PolicyDocument {
        version: 1,
        org: org(),
        users: vec![bob.clone()],
    };
    store.import(doc.clone()).unwrap();
    assert_eq!(store.export(), doc);
    assert!(store.user(&aor("old@example.com")).is_none());

    let mut bad = doc.clone();
    bad.users[0].refresh_interval_s = 3601;
    match store.import(bad) {
        Err(StoreError::Invalid(errs)) => assert_eq!(errs[0].path, "users[0].refresh_interval_s"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert_eq!(store.export(), doc);
}

/// A watcher's user may arrive escaped with characters a URI carries only escaped
/// (`%23` is `#`, `%5E` is `^`): the pending request it leaves must not stop the
/// store from opening again (its text read back failed, and with it the start).
#[test]
fn a_pending_request_from_an_escaped_user_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, odd) = (
        aor("alice@example.com"),
        aor("sip:%2A21%23%5Ex@partner.net"),
    );
    assert_eq!(odd.user(), "*21#^x");
    {
        let store = SledStore::open(dir.path()).unwrap();
        store.apply(Change::SetOrg { org: org() }).unwrap();
        assert!(store
            .record_pending(&alice, &odd, PendingHow::Subscribe, 1_000)
            .unwrap());
    }
    let store = reopen(dir.path()).expect("the store opens again");
    let p = store.pending(&alice);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].watcher, odd);
}

#[test]
fn pending_requests_are_recorded_expired_and_settled_by_answer() {
    let store = SledStore::temporary().unwrap();
    let mut org = org();
    org.pending_timeout_s = 10;
    store.apply(Change::SetOrg { org }).unwrap();
    let mut events = store.subscribe();
    let (alice, eve) = (aor("alice@example.com"), aor("eve@partner.net"));
    assert!(store
        .record_pending(&alice, &eve, PendingHow::Subscribe, 1_000)
        .unwrap());
    assert!(!store
        .record_pending(&alice, &eve, PendingHow::Message, 2_000)
        .unwrap());
    let p = store.pending(&alice);
    assert_eq!(p.len(), 1);
    assert_eq!(
        (p[0].first_seen_ms, p[0].last_seen_ms, p[0].how),
        (1_000, 2_000, PendingHow::Message)
    );
    assert!(matches!(events.try_recv(), Ok(StoreEvent::Pending(r)) if r.watcher == eve));

    assert!(store.expire_pending(5_000).unwrap().is_empty());
    let expired = store.expire_pending(11_000).unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(store.pending(&alice)[0].state, PendingState::Waiting);

    store
        .apply(Change::Answer {
            owner: alice.clone(),
            watcher: eve.clone(),
            action: Action::Allow,
        })
        .unwrap();
    assert!(store.pending(&alice).is_empty());
    assert_eq!(store.decide(&alice, &eve).decision, Decision::Allow);
    assert!(matches!(events.try_recv(), Ok(StoreEvent::Policy { owner: Some(o) }) if o == alice));
}

#[test]
fn remove_user_removes_what_they_own() {
    let store = SledStore::temporary().unwrap();
    let alice = aor("alice@example.com");
    store
        .apply(Change::SetRefreshInterval {
            owner: alice.clone(),
            seconds: 60,
        })
        .unwrap();
    store
        .put_account(Account {
            aor: alice.clone(),
            password_hash: "h".into(),
        })
        .unwrap();
    store
        .record_pending(&alice, &aor("x@y.org"), PendingHow::Call, 1)
        .unwrap();
    store
        .apply(Change::RemoveUser { aor: alice.clone() })
        .unwrap();
    assert!(store.user(&alice).is_none());
    assert!(store.account(&alice).is_none());
    assert!(store.pending(&alice).is_empty());
    assert!(matches!(
        store.apply(Change::RemoveUser { aor: alice }),
        Err(StoreError::Invalid(_))
    ));
}

#[test]
fn org_change_cannot_drop_a_class_in_use() {
    let store = SledStore::temporary().unwrap();
    let mut o = org();
    o.classes.insert("gold".into(), Default::default());
    store.apply(Change::SetOrg { org: o }).unwrap();
    let mut u = UserPolicy::new(aor("alice@example.com"));
    u.class = "gold".into();
    store.apply(Change::PutUser { user: u }).unwrap();
    match store.apply(Change::SetOrg { org: org() }) {
        Err(StoreError::Invalid(errs)) => assert!(errs[0].message.contains("gold"), "{errs:?}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert!(store.org().classes.contains_key("gold"));
}

/// A pending request's refresh is written without a flush (it happens on every
/// re-SUBSCRIBE); the store says a flush is owed until `flush_deferred` pays it, and
/// what it flushed is there after reopening.
#[test]
fn a_pending_refresh_is_owed_a_flush_until_flush_deferred() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, eve) = (aor("alice@example.com"), aor("eve@partner.net"));
    {
        let store = SledStore::open(dir.path()).unwrap();
        store.apply(Change::SetOrg { org: org() }).unwrap();
        assert!(store
            .record_pending(&alice, &eve, PendingHow::Subscribe, 1_000)
            .unwrap());
        assert!(
            !store.deferred_waiting(),
            "a new request is flushed at once"
        );
        assert!(!store
            .record_pending(&alice, &eve, PendingHow::Subscribe, 7_000)
            .unwrap());
        assert!(store.deferred_waiting(), "a refresh waits for a flush");
        store.flush_deferred().unwrap();
        assert!(!store.deferred_waiting());
        store.flush_deferred().unwrap();
    }
    let store = reopen(dir.path()).unwrap();
    assert_eq!(store.pending(&alice)[0].last_seen_ms, 7_000);
}
