//! Properties of the precedence (DESIGN.md "The privacy model") over random org
//! settings, random owner policies and random sequences of owner changes.

use presence_proxy::policy::{
    decide, Action, Aor, Change, ClassOfService, Decision, DefaultExternal, DefaultInternal,
    Domain, Org, PolicySet, Rule, UserPolicy,
};
use presence_proxy::store::{SledStore, Store};
use proptest::prelude::*;

const PEOPLE: &[&str] = &[
    "alice@example.com",
    "bob@example.com",
    "Bob@example.com",
    "carol@partner.net",
    "dave@other.org",
    "eve@evil.org",
    "mal@blocked.net",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "partner.net",
    "other.org",
    "evil.org",
    "blocked.net",
];

fn person() -> impl Strategy<Value = Aor> {
    prop::sample::select(PEOPLE).prop_map(|s| Aor::parse(s).unwrap())
}

fn domain() -> impl Strategy<Value = Domain> {
    prop::sample::select(DOMAINS).prop_map(|s| Domain::parse(s).unwrap())
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![Just(Action::Allow), Just(Action::Block)]
}

fn org() -> impl Strategy<Value = Org> {
    // Local and admin-blocked domains are disjoint (validation refuses a domain
    // that is both).
    let local = prop::sample::select(&DOMAINS[..3]).prop_map(|s| Domain::parse(s).unwrap());
    let blocked = prop::sample::select(&DOMAINS[3..]).prop_map(|s| Domain::parse(s).unwrap());
    (
        prop::collection::btree_set(local, 0..3),
        prop::collection::btree_set(person(), 1..3),
        prop::collection::btree_set(blocked, 0..2),
        any::<bool>(),
        1u32..4,
    )
        .prop_map(|(local, blocked_users, blocked_domains, auto, limit)| {
            let mut org = Org {
                local_domains: local.into_iter().collect(),
                blocked_users: blocked_users.into_iter().collect(),
                blocked_domains: blocked_domains.into_iter().collect(),
                ..Org::default()
            };
            org.classes.insert(
                "default".into(),
                ClassOfService {
                    auto_authorize: auto,
                    contact_limit: limit,
                },
            );
            org
        })
}

/// Anything an owner can do to their own policy.
fn owner_change(owner: Aor) -> impl Strategy<Value = Change> {
    let o = owner;
    prop_oneof![
        (
            prop::option::of(any::<bool>()),
            prop::option::of(any::<bool>())
        )
            .prop_map({
                let o = o.clone();
                move |(i, e)| Change::SetDefaults {
                    owner: o.clone(),
                    internal: i.map(|b| {
                        if b {
                            DefaultInternal::Allow
                        } else {
                            DefaultInternal::Block
                        }
                    }),
                    external: e.map(|b| {
                        if b {
                            DefaultExternal::Ask
                        } else {
                            DefaultExternal::Block
                        }
                    }),
                }
            }),
        (person(), action()).prop_map({
            let o = o.clone();
            move |(w, a)| Change::AddUserException {
                owner: o.clone(),
                watcher: w,
                action: a,
            }
        }),
        person().prop_map({
            let o = o.clone();
            move |w| Change::RemoveUserException {
                owner: o.clone(),
                watcher: w,
            }
        }),
        (domain(), action()).prop_map({
            let o = o.clone();
            move |(d, a)| Change::AddDomainException {
                owner: o.clone(),
                domain: d,
                action: a,
            }
        }),
        domain().prop_map({
            let o = o.clone();
            move |d| Change::RemoveDomainException {
                owner: o.clone(),
                domain: d,
            }
        }),
        (person(), any::<bool>()).prop_map({
            let o = o.clone();
            move |(c, learned)| Change::AddContact {
                owner: o.clone(),
                contact: c,
                name: None,
                learned,
            }
        }),
        person().prop_map({
            let o = o.clone();
            move |c| Change::RemoveContact {
                owner: o.clone(),
                contact: c,
            }
        }),
        (person(), action()).prop_map({
            let o = o.clone();
            move |(w, a)| Change::Answer {
                owner: o.clone(),
                watcher: w,
                action: a,
            }
        }),
        (0u32..4000).prop_map(move |s| Change::SetRefreshInterval {
            owner: o.clone(),
            seconds: s
        }),
    ]
}

/// An org, an owner, and the owner's policy after a random sequence of changes
/// (those validation refuses are dropped, as the store would refuse them).
fn scenario() -> impl Strategy<Value = (PolicySet, Aor)> {
    (org(), person()).prop_flat_map(|(org, owner)| {
        prop::collection::vec(owner_change(owner.clone()), 0..12).prop_map(move |changes| {
            let mut set = PolicySet {
                org: org.clone(),
                users: Default::default(),
            };
            for c in changes {
                let _ = c.apply_to(&mut set);
            }
            (set, owner.clone())
        })
    })
}

fn admin_blocked(org: &Org, w: &Aor) -> bool {
    org.blocked_users.contains(w) || org.blocked_domains.iter().any(|d| d.as_str() == w.domain())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// Every (owner, watcher) pair gets exactly one decision: the same every time,
    /// and from a rule that can produce it.
    #[test]
    fn every_pair_gets_exactly_one_decision((set, owner) in scenario(), watcher in person()) {
        let policy = set.users.get(&owner);
        let v = decide(&set.org, policy, &owner, &watcher);
        prop_assert_eq!(v, decide(&set.org, policy, &owner, &watcher));
        prop_assert_eq!(v.rule == Rule::SelfWatch, owner == watcher);
        match v.rule {
            Rule::SelfWatch => prop_assert_eq!(v.decision, Decision::Allow),
            Rule::AdminBlockedUser | Rule::AdminBlockedDomain => prop_assert_eq!(v.decision, Decision::Block),
            Rule::UserException | Rule::DomainException => prop_assert_ne!(v.decision, Decision::Pending),
            Rule::Contact => prop_assert_ne!(v.decision, Decision::Block),
            Rule::DefaultInternal => prop_assert!(set.org.is_internal(&watcher)),
            Rule::DefaultExternal => {
                prop_assert!(!set.org.is_internal(&watcher));
                prop_assert_ne!(v.decision, Decision::Allow, "Allow is not offered for external users");
            }
        }
    }

    /// An explicit user block beats everything but self.
    #[test]
    fn explicit_user_block_beats_everything_but_self((set, owner) in scenario(), watcher in person()) {
        let policy = set.users.get(&owner);
        if policy.and_then(|p| p.user_exception(&watcher)) == Some(Action::Block) {
            let v = decide(&set.org, policy, &owner, &watcher);
            if owner == watcher {
                prop_assert_eq!(v.decision, Decision::Allow);
            } else {
                prop_assert_eq!(v.decision, Decision::Block);
            }
        }
    }

    /// Nothing a user does turns an admin block into Allow.
    #[test]
    fn nothing_a_user_does_lifts_an_admin_block((set, owner) in scenario(), pick in any::<prop::sample::Index>()) {
        let blocked: Vec<Aor> = PEOPLE
            .iter()
            .map(|p| Aor::parse(p).unwrap())
            .filter(|w| w != &owner && admin_blocked(&set.org, w))
            .collect();
        prop_assume!(!blocked.is_empty());
        let watcher = pick.get(&blocked).clone();
        let v = decide(&set.org, set.users.get(&owner), &owner, &watcher);
        prop_assert_eq!(v.decision, Decision::Block);
        prop_assert!(matches!(v.rule, Rule::AdminBlockedUser | Rule::AdminBlockedDomain));
        // And nothing the owner could add afterwards is accepted as an Allow.
        let mut set2 = set.clone();
        let refused = Change::AddUserException { owner: owner.clone(), watcher: watcher.clone(), action: Action::Allow }
            .apply_to(&mut set2);
        prop_assert!(refused.is_err());
        prop_assert_eq!(set2, set);
    }

    /// Validation keeps every policy it accepts within the rules: refresh interval in
    /// range, contact count within the class limit, no duplicate entries.
    #[test]
    fn accepted_policies_stay_valid((set, owner) in scenario()) {
        if let Some(p) = set.users.get(&owner) {
            prop_assert!((7..=3600).contains(&p.refresh_interval_s));
            prop_assert!(p.contacts.len() <= set.org.class(&p.class).contact_limit as usize);
            let mut seen = std::collections::HashSet::new();
            prop_assert!(p.contacts.iter().all(|c| seen.insert(c.aor.clone())));
            let mut seen = std::collections::HashSet::new();
            prop_assert!(p.exceptions.users.iter().all(|e| seen.insert(e.aor.clone())));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    /// The store's cached decision is the pure decision on the data it holds.
    #[test]
    fn store_decides_like_the_pure_function((set, owner) in scenario()) {
        let store = SledStore::temporary().unwrap();
        // Load the user under the opposite `auto_authorize`, then switch the org: the
        // cache must follow class changes for users it already holds.
        let mut flipped = set.org.clone();
        for c in flipped.classes.values_mut() {
            c.auto_authorize = !c.auto_authorize;
        }
        store.apply(Change::SetOrg { org: flipped }).unwrap();
        let policy: Option<UserPolicy> = set.users.get(&owner).cloned();
        if let Some(p) = &policy {
            store.apply(Change::PutUser { user: p.clone() }).unwrap();
        }
        store.apply(Change::SetOrg { org: set.org.clone() }).unwrap();
        for w in PEOPLE.iter().chain(&["zed@partner.net", "x@other.org", "y@example.com"]) {
            let w = Aor::parse(w).unwrap();
            prop_assert_eq!(store.decide(&owner, &w), decide(&set.org, policy.as_ref(), &owner, &w));
        }
    }
}
