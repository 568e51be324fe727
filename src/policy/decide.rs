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
    let Some(policy) = owner_policy else {
        return step_default(
            org,
            watcher,
            auto,
            DefaultInternal::default(),
            DefaultExternal::default(),
        );
    };
    if let Some(a) = policy.user_exception(watcher) {
        return Verdict::new(from_action(a), Rule::UserException);
    }
    if policy.has_contact(watcher) {
        let d = if auto {
            Decision::Allow
        } else {
            Decision::Pending
        };
        return Verdict::new(d, Rule::Contact);
    }
    if let Some(a) = policy.domain_exception(watcher.domain()) {
        return Verdict::new(from_action(a), Rule::DomainException);
    }
    step_default(
        org,
        watcher,
        auto,
        policy.default_internal,
        policy.default_external,
    )
}

/// [`decide`] for a watcher the owner's policy does not name: no user exception,
/// no contact entry and no domain exception for the watcher or their domain. Then
/// steps 3 to 5 cannot fire, and only the owner's defaults and their class's
/// `auto_authorize` matter. The store's cache uses this to answer most decisions
/// without reading the owner's lists; the result is the same as [`decide`]'s.
pub fn decide_unnamed(
    org: &Org,
    owner: &Aor,
    watcher: &Aor,
    auto_authorize: bool,
    default_internal: DefaultInternal,
    default_external: DefaultExternal,
) -> Verdict {
    if let Some(v) = steps_self_and_admin(org, owner, watcher) {
        return v;
    }
    step_default(
        org,
        watcher,
        auto_authorize,
        default_internal,
        default_external,
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
