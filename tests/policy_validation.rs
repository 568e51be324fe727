//! Every validation rule of DESIGN.md "Validation": the error names the problem and
//! where it is, and the store is unchanged afterwards.

use presence_proxy::policy::{
    Action, Aor, Change, Domain, Org, PolicyDocument, UserPolicy, ValidationError,
};
use presence_proxy::store::{SledStore, Store, StoreError};
use serde_json::json;

fn aor(s: &str) -> Aor {
    Aor::parse(s).unwrap()
}

/// A store holding a small valid policy set, to check refusals leave it alone.
fn seeded() -> SledStore {
    let store = SledStore::temporary().unwrap();
    let doc = PolicyDocument::from_json(&base().to_string()).unwrap();
    store.import(doc).unwrap();
    store
}

fn base() -> serde_json::Value {
    json!({ "version": 1,
      "org": { "local_domains": ["example.com"], "federated_domains": ["partner.net"],
               "blocked_users": ["spam@evil.org"], "blocked_domains": ["evil.org"],
               "classes": { "default": { "auto_authorize": true, "contact_limit": 2 } },
               "pending_view": "hold", "pending_timeout_s": 86400 },
      "users": [ { "aor": "alice@example.com", "class": "default",
                   "default_internal": "allow", "default_external": "ask",
                   "exceptions": { "users":   [ { "aor": "bob@example.com", "action": "block" } ],
                                   "domains": [ { "domain": "partner.net", "action": "allow" } ] },
                   "contacts": [ { "aor": "carol@partner.net", "name": "Carol" } ],
                   "refresh_interval_s": 30 } ] })
}

/// Parses `doc`, expects refusal, and checks that an error at `path` says `what`.
fn refused_doc(doc: serde_json::Value, path: &str, what: &str) -> Vec<ValidationError> {
    let errors =
        PolicyDocument::from_json(&doc.to_string()).expect_err("document should be refused");
    assert!(
        errors
            .iter()
            .any(|e| e.path == path && e.message.contains(what)),
        "no error at {path} saying {what:?}; got {errors:#?}"
    );
    errors
}

fn push(list: &mut serde_json::Value, item: serde_json::Value) {
    list.as_array_mut().expect("a JSON array").push(item);
}

fn refused_change(store: &SledStore, change: Change, path: &str, what: &str) {
    let before = store.export();
    match store.apply(change) {
        Err(StoreError::Invalid(errors)) => assert!(
            errors
                .iter()
                .any(|e| e.path == path && e.message.contains(what)),
            "no error at {path} saying {what:?}; got {errors:#?}"
        ),
        other => panic!("expected refusal at {path}, got {other:?}"),
    }
    assert_eq!(store.export(), before, "a refused change altered the store");
}

#[test]
fn the_issue_example_document_is_valid() {
    let doc = PolicyDocument::from_json(&base().to_string()).unwrap();
    assert_eq!(doc.users.len(), 1);
    assert_eq!(doc.users[0].contacts[0].name.as_deref(), Some("Carol"));
}

#[test]
fn bad_aor_and_domain_syntax() {
    let mut d = base();
    d["users"][0]["exceptions"]["users"][0]["aor"] = json!("bob at example.com");
    refused_doc(d, "users[0].exceptions.users[0].aor", "has no `@`");
    let mut d = base();
    d["users"][0]["exceptions"]["domains"][0]["domain"] = json!("-bad-.net");
    refused_doc(
        d,
        "users[0].exceptions.domains[0].domain",
        "not a valid domain",
    );
    let mut d = base();
    d["users"][0]["aor"] = json!("tel:+15551234@example.com");
    refused_doc(d, "users[0].aor", "unsupported URI scheme");
    let mut d = base();
    d["org"]["blocked_users"][0] = json!("@evil.org");
    refused_doc(d, "org.blocked_users[0]", "empty user part");
    // A change can only carry parsed AoRs; the parse error names the problem.
    assert!(Aor::parse("alice@exa mple.com")
        .unwrap_err()
        .to_string()
        .contains("not a valid domain"));
    assert!(Domain::parse("a..b").is_err());
}

#[test]
fn allow_as_external_default_is_refused() {
    let mut d = base();
    d["users"][0]["default_external"] = json!("allow");
    refused_doc(
        d,
        "users[0].default_external",
        "Allow is not available as the default for external users",
    );
}

#[test]
fn admin_blocked_user_or_domain_as_contact_or_allowed_exception() {
    let mut d = base();
    d["users"][0]["contacts"][0]["aor"] = json!("spam@evil.org");
    refused_doc(
        d,
        "users[0].contacts[0].aor",
        "blocked by the administrator",
    );
    let mut d = base();
    d["users"][0]["exceptions"]["users"][0] = json!({"aor": "x@evil.org", "action": "allow"});
    refused_doc(
        d,
        "users[0].exceptions.users[0].aor",
        "domain evil.org is blocked by the administrator",
    );
    let mut d = base();
    d["users"][0]["exceptions"]["domains"][0] = json!({"domain": "evil.org", "action": "allow"});
    refused_doc(
        d,
        "users[0].exceptions.domains[0].domain",
        "blocked by the administrator",
    );
    // Blocking them again is not an override, so it is fine.
    let mut d = base();
    d["users"][0]["exceptions"]["users"][0] = json!({"aor": "spam@evil.org", "action": "block"});
    PolicyDocument::from_json(&d.to_string()).unwrap();

    let store = seeded();
    let alice = aor("alice@example.com");
    refused_change(
        &store,
        Change::AddContact {
            owner: alice.clone(),
            contact: aor("spam@evil.org"),
            name: None,
            learned: false,
        },
        "contact",
        "blocked by the administrator",
    );
    refused_change(
        &store,
        Change::AddContact {
            owner: alice.clone(),
            contact: aor("x@evil.org"),
            name: None,
            learned: true,
        },
        "contact",
        "blocked by the administrator",
    );
    refused_change(
        &store,
        Change::AddUserException {
            owner: alice.clone(),
            watcher: aor("spam@evil.org"),
            action: Action::Allow,
        },
        "watcher",
        "blocked by the administrator",
    );
    refused_change(
        &store,
        Change::Answer {
            owner: alice.clone(),
            watcher: aor("spam@evil.org"),
            action: Action::Allow,
        },
        "watcher",
        "blocked by the administrator",
    );
    refused_change(
        &store,
        Change::AddDomainException {
            owner: alice,
            domain: Domain::parse("evil.org").unwrap(),
            action: Action::Allow,
        },
        "domain",
        "blocked by the administrator",
    );
}

#[test]
fn contact_limit_reached() {
    let mut d = base();
    d["users"][0]["contacts"] = json!([{"aor": "a@x.org"}, {"aor": "b@x.org"}, {"aor": "c@x.org"}]);
    refused_doc(
        d,
        "users[0].contacts",
        "contact limit reached: class `default` allows at most 2",
    );

    let store = seeded();
    let alice = aor("alice@example.com");
    store
        .apply(Change::AddContact {
            owner: alice.clone(),
            contact: aor("d@x.org"),
            name: None,
            learned: false,
        })
        .unwrap();
    refused_change(
        &store,
        Change::AddContact {
            owner: alice,
            contact: aor("e@x.org"),
            name: None,
            learned: true,
        },
        "contact",
        "contact limit reached",
    );
}

#[test]
fn refresh_interval_out_of_range() {
    for bad in [0, 6, 3601, 100_000] {
        let mut d = base();
        d["users"][0]["refresh_interval_s"] = json!(bad);
        refused_doc(d, "users[0].refresh_interval_s", "out of range");
        refused_change(
            &seeded(),
            Change::SetRefreshInterval {
                owner: aor("alice@example.com"),
                seconds: bad,
            },
            "seconds",
            &format!("refresh interval {bad} s is out of range"),
        );
    }
    let mut d = base();
    d["users"][0]["refresh_interval_s"] = json!(-1);
    refused_doc(d, "users[0].refresh_interval_s", "invalid value");
    for ok in [7, 3600] {
        let mut d = base();
        d["users"][0]["refresh_interval_s"] = json!(ok);
        PolicyDocument::from_json(&d.to_string()).unwrap();
    }
}

#[test]
fn duplicate_entries() {
    let mut d = base();
    let first = d["users"][0].clone();
    push(&mut d["users"], first);
    refused_doc(d, "users[1].aor", "duplicate user alice@example.com");
    let mut d = base();
    push(
        &mut d["users"][0]["contacts"],
        json!({"aor": "sip:carol@PARTNER.net:5061"}),
    );
    refused_doc(
        d,
        "users[0].contacts[1].aor",
        "duplicate contact carol@partner.net",
    );
    let mut d = base();
    push(
        &mut d["users"][0]["exceptions"]["users"],
        json!({"aor": "bob@example.com", "action": "allow"}),
    );
    refused_doc(
        d,
        "users[0].exceptions.users[1].aor",
        "duplicate user exception",
    );
    let mut d = base();
    push(
        &mut d["users"][0]["exceptions"]["domains"],
        json!({"domain": "Partner.NET", "action": "block"}),
    );
    refused_doc(
        d,
        "users[0].exceptions.domains[1].domain",
        "duplicate domain exception",
    );
    let mut d = base();
    push(&mut d["org"]["local_domains"], json!("EXAMPLE.com"));
    refused_doc(d, "org.local_domains[1]", "duplicate domain example.com");

    let store = seeded();
    let alice = aor("alice@example.com");
    refused_change(
        &store,
        Change::AddContact {
            owner: alice.clone(),
            contact: aor("carol@partner.net"),
            name: None,
            learned: false,
        },
        "contact",
        "already a contact",
    );
    refused_change(
        &store,
        Change::AddUserException {
            owner: alice,
            watcher: aor("bob@example.com"),
            action: Action::Block,
        },
        "watcher",
        "already on the blocked list",
    );
}

#[test]
fn unknown_class_and_other_fields() {
    let mut d = base();
    d["users"][0]["class"] = json!("gold");
    refused_doc(d, "users[0].class", "unknown class of service `gold`");
    let mut d = base();
    d["users"][0]["colour"] = json!("red");
    refused_doc(d, "users[0].colour", "unknown field `colour`");
    let mut d = base();
    d["version"] = json!(2);
    refused_doc(d, "version", "unsupported policy document version 2");
    let mut d = base();
    d["org"]["pending_view"] = json!("maybe");
    refused_doc(d, "org.pending_view", "unknown variant `maybe`");
    let mut d = base();
    d["users"][0]["exceptions"]["users"][0]["action"] = json!("ask");
    refused_doc(
        d,
        "users[0].exceptions.users[0].action",
        "unknown variant `ask`",
    );
    let errors = PolicyDocument::from_json("{ not json").unwrap_err();
    assert!(
        errors[0].message.contains("not valid JSON (line 1"),
        "{errors:?}"
    );
    refused_change(
        &seeded(),
        Change::PutUser {
            user: UserPolicy {
                class: "gold".into(),
                ..UserPolicy::new(aor("zed@example.com"))
            },
        },
        "user.class",
        "unknown class",
    );
}

#[test]
fn a_document_reports_every_error_with_its_path_and_import_changes_nothing() {
    let mut d = base();
    let mut users = vec![d["users"][0].clone()];
    for i in 1..4 {
        users.push(json!({"aor": format!("u{i}@example.com")}));
    }
    users[3]["exceptions"] = json!({"users": [{"aor": "nobody", "action": "block"}]});
    users[1]["refresh_interval_s"] = json!(6);
    users[2]["default_external"] = json!("allow");
    d["users"] = json!(users);
    d["org"]["blocked_domains"] = json!(["evil.org", "bad_domain!"]);
    let errors = PolicyDocument::from_json(&d.to_string()).unwrap_err();
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    for p in [
        "users[3].exceptions.users[0].aor",
        "users[1].refresh_interval_s",
        "users[2].default_external",
        "org.blocked_domains[1]",
    ] {
        assert!(paths.contains(&p), "missing error at {p}: {errors:#?}");
    }
    assert_eq!(errors.len(), 4, "{errors:#?}");

    // A typed document that fails validation is refused by the store as a whole.
    let store = seeded();
    let before = store.export();
    let mut doc = before.clone();
    doc.users.push(UserPolicy {
        refresh_interval_s: 3601,
        ..UserPolicy::new(aor("new@example.com"))
    });
    doc.org = Org {
        blocked_users: vec![aor("spam@evil.org"), aor("spam@evil.org")],
        ..doc.org
    };
    match store.import(doc) {
        Err(StoreError::Invalid(errors)) => {
            let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
            assert!(
                paths.contains(&"users[1].refresh_interval_s"),
                "{errors:#?}"
            );
            assert!(paths.contains(&"org.blocked_users[1]"), "{errors:#?}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert_eq!(store.export(), before);
}
