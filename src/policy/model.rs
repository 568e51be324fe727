//! The records of the privacy model: org settings, classes of service, and each
//! owner's defaults, exceptions, contacts and preferences.
//!
//! Field and value names are those of the policy document (version 1), so the same
//! types serialize to JSON for import/export and to the store.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::aor::{Aor, Domain};

/// Allow or block, the two values of an exception.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    Block,
}

/// Cisco: "Internal users (within your company/organization)": Allow or Block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultInternal {
    #[default]
    Allow,
    Block,
}

/// Cisco: "External users (all others)": Block or Ask Me. "You can set the Allow
/// privacy policy for internal users and domains only."
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultExternal {
    #[default]
    Block,
    Ask,
}

/// What a watcher whose decision is Pending sees (ShoreTel describes both server
/// behaviours; `hold` is the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PendingView {
    /// The subscription stays `pending`; the watcher learns nothing.
    #[default]
    Hold,
    /// The watcher sees the owner Offline until allowed.
    Offline,
    /// The watcher sees the presence until the owner blocks.
    Show,
}

/// A class of service: what the administrator lets a group of users do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassOfService {
    /// Cisco's automatic authorization / ShoreTel's "require users to approve
    /// privacy requests" inverted: when false, contacts and the internal Allow
    /// default become Pending; the owner's explicit exceptions still apply.
    #[serde(default = "yes")]
    pub auto_authorize: bool,
    /// Cisco: the contact list holds at most this many entries (100 there).
    #[serde(default = "default_contact_limit")]
    pub contact_limit: u32,
}

fn yes() -> bool {
    true
}

fn default_contact_limit() -> u32 {
    100
}

impl Default for ClassOfService {
    fn default() -> Self {
        ClassOfService {
            auto_authorize: true,
            contact_limit: default_contact_limit(),
        }
    }
}

/// The organization: what the administrator sets for everyone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Org {
    /// Domains whose users are internal.
    #[serde(default)]
    pub local_domains: Vec<Domain>,
    /// The domains users pick from when they add an external user or domain.
    #[serde(default)]
    pub federated_domains: Vec<Domain>,
    /// Admin block list: users cannot allow these.
    #[serde(default)]
    pub blocked_users: Vec<Aor>,
    #[serde(default)]
    pub blocked_domains: Vec<Domain>,
    /// Classes of service by name; a user names one (`default` when absent).
    #[serde(default = "default_classes")]
    pub classes: BTreeMap<String, ClassOfService>,
    #[serde(default)]
    pub pending_view: PendingView,
    /// After this long unanswered, a pending request becomes `waiting` (RFC 3857)
    /// and its subscriptions are terminated with `reason=giveup`.
    #[serde(default = "default_pending_timeout")]
    pub pending_timeout_s: u64,
}

fn default_classes() -> BTreeMap<String, ClassOfService> {
    BTreeMap::from([("default".to_string(), ClassOfService::default())])
}

fn default_pending_timeout() -> u64 {
    86_400
}

impl Default for Org {
    fn default() -> Self {
        Org {
            local_domains: Vec::new(),
            federated_domains: Vec::new(),
            blocked_users: Vec::new(),
            blocked_domains: Vec::new(),
            classes: default_classes(),
            pending_view: PendingView::default(),
            pending_timeout_s: default_pending_timeout(),
        }
    }
}

impl Org {
    /// Internal means the watcher's domain is one of the local domains.
    pub fn is_internal(&self, aor: &Aor) -> bool {
        self.local_domains
            .iter()
            .any(|d| d.as_str() == aor.domain())
    }

    /// `auto_authorize` of the class a user names, as [`Org::class`] resolves it,
    /// without copying the class (read on every decision).
    pub fn class_auto_authorize(&self, name: &str) -> bool {
        self.classes
            .get(name)
            .or_else(|| self.classes.get("default"))
            .map_or(true, |c| c.auto_authorize)
    }

    /// The class a user names, or the `default` class, or the built-in default.
    pub fn class(&self, name: &str) -> ClassOfService {
        self.classes
            .get(name)
            .or_else(|| self.classes.get("default"))
            .cloned()
            .unwrap_or_default()
    }
}

/// The owner's exception for one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserException {
    pub aor: Aor,
    pub action: Action,
}

/// The owner's exception for a whole domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainException {
    pub domain: Domain,
    pub action: Action,
}

/// A contact list entry ("anyone in your contact list (being watched by you)").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    pub aor: Aor,
    /// Cisco: "You can only have one alternate name (nickname) per contact."
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Learned from the owner's own SUBSCRIBE rather than added by hand.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub learned: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exceptions {
    #[serde(default)]
    pub users: Vec<UserException>,
    #[serde(default)]
    pub domains: Vec<DomainException>,
}

/// One presentity owner's privacy policy and preferences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPolicy {
    pub aor: Aor,
    #[serde(default = "default_class_name")]
    pub class: String,
    #[serde(default)]
    pub default_internal: DefaultInternal,
    #[serde(default)]
    pub default_external: DefaultExternal,
    #[serde(default)]
    pub exceptions: Exceptions,
    #[serde(default)]
    pub contacts: Vec<Contact>,
    /// Cisco "Phone Display Refresh Interval": 7..=3600 seconds, default 30.
    #[serde(default = "default_refresh")]
    pub refresh_interval_s: u32,
}

fn default_class_name() -> String {
    "default".to_string()
}

fn default_refresh() -> u32 {
    30
}

/// The refresh interval's allowed range (Cisco User Options, Preferences).
pub const REFRESH_RANGE: std::ops::RangeInclusive<u32> = 7..=3600;

impl UserPolicy {
    /// A new owner with the product defaults: internal Allow, external Block.
    pub fn new(aor: Aor) -> Self {
        UserPolicy {
            aor,
            class: default_class_name(),
            default_internal: DefaultInternal::default(),
            default_external: DefaultExternal::default(),
            exceptions: Exceptions::default(),
            contacts: Vec::new(),
            refresh_interval_s: default_refresh(),
        }
    }

    pub fn user_exception(&self, watcher: &Aor) -> Option<Action> {
        self.exceptions
            .users
            .iter()
            .find(|e| &e.aor == watcher)
            .map(|e| e.action)
    }

    pub fn domain_exception(&self, domain: &str) -> Option<Action> {
        self.exceptions
            .domains
            .iter()
            .find(|e| e.domain.as_str() == domain)
            .map(|e| e.action)
    }

    pub fn has_contact(&self, watcher: &Aor) -> bool {
        self.contacts.iter().any(|c| &c.aor == watcher)
    }
}

/// How a watcher asked for access (ShoreTel: adding a contact, calling and
/// messaging all ask).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PendingHow {
    Subscribe,
    Message,
    Call,
}

/// RFC 3857 §3.4 watcher states the proxy reports for requests it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PendingState {
    Pending,
    /// Nobody answered within `pending_timeout_s`.
    Waiting,
}

/// A watcher waiting for the owner's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRequest {
    pub owner: Aor,
    pub watcher: Aor,
    pub how: PendingHow,
    /// Unix milliseconds, from the engine's `now`.
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
    pub state: PendingState,
}
