//! `decide()`: the one place the precedence of the privacy rules lives.

use serde::Serialize;

use super::aor::Aor;
use super::model::{Action, DefaultExternal, DefaultInternal, Org, UserPolicy};

/// What the watcher gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Allow,
    Block,
    Pending,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Block => "block",
            Decision::Pending => "pending",
        }
    }
}

/// The rule that fired, named for logs, the replay report and the UI's "why".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// Step 1: the owner watching themself.
    SelfWatch,
    /// Step 2: the administrator blocked this user.
    AdminBlockedUser,
    /// Step 2: the administrator blocked the watcher's domain.
    AdminBlockedDomain,
    /// Step 3: the owner's exception (or answer) for this user.
    UserException,
    /// Step 4: the watcher is on the owner's contact list.
    Contact,
    /// Step 5: the owner's exception for the watcher's domain.
    DomainException,
    /// Step 6: the owner's default for internal watchers.
    DefaultInternal,
    /// Step 6: the owner's default for external watchers.
    DefaultExternal,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::SelfWatch => "self",
            Rule::AdminBlockedUser => "admin-blocked-user",
            Rule::AdminBlockedDomain => "admin-blocked-domain",
            Rule::UserException => "user-exception",
            Rule::Contact => "contact",
            Rule::DomainException => "domain-exception",
            Rule::DefaultInternal => "default-internal",
            Rule::DefaultExternal => "default-external",
        }
    }
}

/// A decision and the rule that produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Verdict {
    pub decision: Decision,
    pub rule: Rule,
}

impl Verdict {
    const fn new(decision: Decision, rule: Rule) -> Self {
        Verdict { decision, rule }
    }
}

fn from_action(a: Action) -> Decision {
    match a {
        Action::Allow => Decision::Allow,
        Action::Block => Decision::Block,
    }
}

/// Decides what `watcher` may see of `owner`'s presence. First match wins:
///
/// 1. The watcher is the owner → Allow.
/// 2. Admin block list (user or domain) → Block. Cisco: "You are prevented from
///    adding users/domains that are already blocked by the administrator."
/// 3. The owner's user exception → its value. Cisco: "Setting the Block policy for
///    specific users prevents them from viewing status ... even if the general
///    policy allows them"; ShoreTel stores the owner's answer to a request here.
/// 4. On the owner's contact list → Allow. Cisco: "Users on the Contact list are
///    always allowed unless explicitly blocked on the Exception list." Pending when
///    the class has automatic authorization off (Cisco: "the user will be prompted
///    to either approve or reject the subscription request").
/// 5. The owner's domain exception → its value. Cisco: "If you block an external
///    domain, any requests ... from users in that domain are blocked, provided you
///    have not added those external users to your allowed list."
/// 6. Default: internal → `default_internal` (Allow becomes Pending without
///    automatic authorization); external → `default_external` (Ask Me = Pending,
///    Cisco: "Ask Me privacy policy prompts users (via a request)").
///
/// An owner with no policy of their own gets [`UserPolicy::new`]'s defaults.
pub fn decide(org: &Org, owner_policy: Option<&UserPolicy>, owner: &Aor, watcher: &Aor) -> Verdict {
    if let Some(v) = steps_self_and_admin(org, owner, watcher) {
        return v;
    }
    // An owner without a policy of their own has the product defaults
    // (`UserPolicy::new`): no exceptions, no contacts, the `default` class. Read
    // them without building one: this runs for every NOTIFY.
    let auto = org.class_auto_authorize(owner_policy.map_or("default", |p| p.class.as_str()));
    let facts = match owner_policy {
        None => OwnerFacts::unnamed(auto, DefaultInternal::default(), DefaultExternal::default()),
        Some(policy) => OwnerFacts {
            auto_authorize: auto,
            default_internal: policy.default_internal,
            default_external: policy.default_external,
            user_exception: policy.user_exception(watcher),
            contact: policy.has_contact(watcher),
            domain_exception: policy.domain_exception(watcher.domain()),
        },
    };
    steps_owner(org, watcher, &facts)
}

/// What steps 3 to 6 read of the owner's policy for one watcher: the owner's
/// class setting, defaults, and how the policy names this watcher. The store's
/// cache keeps these in a compact form and answers through [`decide_facts`]
/// without reading the [`UserPolicy`]; [`decide`] gathers the same facts from
/// the policy, so both take the one precedence below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnerFacts {
    /// The owner's class's `auto_authorize` ([`Org::class_auto_authorize`]).
    pub auto_authorize: bool,
    pub default_internal: DefaultInternal,
    pub default_external: DefaultExternal,
    /// The first user exception for the watcher ([`UserPolicy::user_exception`]).
    pub user_exception: Option<Action>,
    /// The watcher is on the contact list ([`UserPolicy::has_contact`]).
    pub contact: bool,
    /// The first exception for the watcher's domain ([`UserPolicy::domain_exception`]).
    pub domain_exception: Option<Action>,
}

impl OwnerFacts {
    /// Facts for a watcher the owner's policy does not name.
    pub fn unnamed(
        auto_authorize: bool,
        default_internal: DefaultInternal,
        default_external: DefaultExternal,
    ) -> Self {
        OwnerFacts {
            auto_authorize,
            default_internal,
            default_external,
            user_exception: None,
            contact: false,
            domain_exception: None,
        }
    }
}

/// [`decide`] for an owner who has a policy, from the [`OwnerFacts`] of that
/// policy for this watcher instead of the policy itself. Same result as
/// [`decide`] given the policy the facts were taken from.
pub fn decide_facts(org: &Org, owner: &Aor, watcher: &Aor, facts: &OwnerFacts) -> Verdict {
    if let Some(v) = steps_self_and_admin(org, owner, watcher) {
        return v;
    }
    steps_owner(org, watcher, facts)
}

/// [`decide`] for a watcher the owner's policy does not name: no user exception,
/// no contact entry and no domain exception for the watcher or their domain. Then
/// steps 3 to 5 cannot fire, and only the owner's defaults and their class's
/// `auto_authorize` matter.
pub fn decide_unnamed(
    org: &Org,
    owner: &Aor,
    watcher: &Aor,
    auto_authorize: bool,
    default_internal: DefaultInternal,
    default_external: DefaultExternal,
) -> Verdict {
    decide_facts(
        org,
        owner,
        watcher,
        &OwnerFacts::unnamed(auto_authorize, default_internal, default_external),
    )
}

/// Steps 3 to 6.
fn steps_owner(org: &Org, watcher: &Aor, facts: &OwnerFacts) -> Verdict {
    if let Some(a) = facts.user_exception {
        return Verdict::new(from_action(a), Rule::UserException);
    }
    if facts.contact {
        let d = if facts.auto_authorize {
            Decision::Allow
        } else {
            Decision::Pending
        };
        return Verdict::new(d, Rule::Contact);
    }
    if let Some(a) = facts.domain_exception {
        return Verdict::new(from_action(a), Rule::DomainException);
    }
    step_default(
        org,
        watcher,
        facts.auto_authorize,
        facts.default_internal,
        facts.default_external,
    )
}

/// Steps 1 and 2.
fn steps_self_and_admin(org: &Org, owner: &Aor, watcher: &Aor) -> Option<Verdict> {
    if owner == watcher {
        return Some(Verdict::new(Decision::Allow, Rule::SelfWatch));
    }
    if org.blocked_users.iter().any(|b| b == watcher) {
        return Some(Verdict::new(Decision::Block, Rule::AdminBlockedUser));
    }
    if org
        .blocked_domains
        .iter()
        .any(|d| d.as_str() == watcher.domain())
    {
        return Some(Verdict::new(Decision::Block, Rule::AdminBlockedDomain));
    }
    None
}

/// Step 6.
fn step_default(
    org: &Org,
    watcher: &Aor,
    auto: bool,
    default_internal: DefaultInternal,
    default_external: DefaultExternal,
) -> Verdict {
    if org.is_internal(watcher) {
        let d = match (default_internal, auto) {
            (DefaultInternal::Allow, true) => Decision::Allow,
            (DefaultInternal::Allow, false) => Decision::Pending,
            (DefaultInternal::Block, _) => Decision::Block,
        };
        Verdict::new(d, Rule::DefaultInternal)
    } else {
        let d = match default_external {
            DefaultExternal::Block => Decision::Block,
            DefaultExternal::Ask => Decision::Pending,
        };
        Verdict::new(d, Rule::DefaultExternal)
    }
}
