//! Changes to the policy set, as data, and the validation every change passes
//! before anything is written (DESIGN.md "Validation").
//!
//! Every writer (command line, web, REST, admin API, the engine's learned contacts
//! and pending answers) expresses what it wants as a [`Change`], so validation and
//! durability have one path.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::aor::{Aor, Domain};
use super::model::{
    Action, Contact, DefaultExternal, DefaultInternal, DomainException, Org, UserException,
    UserPolicy,
};
use super::validate;
use super::PolicyDocument;

/// One acknowledged-or-refused change to the policy set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Change {
    /// Replace the org settings.
    SetOrg {
        org: Org,
    },
    /// Create or replace a whole user policy.
    PutUser {
        user: UserPolicy,
    },
    /// Remove a user and everything they own.
    RemoveUser {
        aor: Aor,
    },
    SetDefaults {
        owner: Aor,
        internal: Option<DefaultInternal>,
        external: Option<DefaultExternal>,
    },
    AddUserException {
        owner: Aor,
        watcher: Aor,
        action: Action,
    },
    RemoveUserException {
        owner: Aor,
        watcher: Aor,
    },
    AddDomainException {
        owner: Aor,
        domain: Domain,
        action: Action,
    },
    RemoveDomainException {
        owner: Aor,
        domain: Domain,
    },
    AddContact {
        owner: Aor,
        contact: Aor,
        name: Option<String>,
        learned: bool,
    },
    RemoveContact {
        owner: Aor,
        contact: Aor,
    },
    SetRefreshInterval {
        owner: Aor,
        seconds: u32,
    },
    /// The owner's answer to a pending request: stored as a user exception
    /// (ShoreTel: checked = allow, unchecked = deny) and the request removed.
    Answer {
        owner: Aor,
        watcher: Aor,
        action: Action,
    },
}

/// Why a change was refused; `path` says where (a JSON path for documents, a field
/// name for forms and API calls).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ValidationError {
    pub path: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl Change {
    /// The owner whose decisions this change can alter, or `None` when it can
    /// alter anyone's (org settings).
    pub fn owner(&self) -> Option<&Aor> {
        match self {
            Change::SetOrg { .. } => None,
            Change::PutUser { user } => Some(&user.aor),
            Change::RemoveUser { aor } => Some(aor),
            Change::SetDefaults { owner, .. }
            | Change::AddUserException { owner, .. }
            | Change::RemoveUserException { owner, .. }
            | Change::AddDomainException { owner, .. }
            | Change::RemoveDomainException { owner, .. }
            | Change::AddContact { owner, .. }
            | Change::RemoveContact { owner, .. }
            | Change::SetRefreshInterval { owner, .. }
            | Change::Answer { owner, .. } => Some(owner),
        }
    }
}

/// The policy set a change applies to: the org settings and the users it touches
/// (the store builds one holding just those; a document holds every user).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PolicySet {
    pub org: Org,
    pub users: BTreeMap<Aor, UserPolicy>,
}

impl PolicySet {
    /// The set a document describes (validate the document first).
    pub fn from_document(doc: PolicyDocument) -> Self {
        let users = doc.users.into_iter().map(|u| (u.aor.clone(), u)).collect();
        PolicySet {
            org: doc.org,
            users,
        }
    }

    /// The document form, users sorted by AoR.
    pub fn to_document(&self) -> PolicyDocument {
        PolicyDocument {
            version: PolicyDocument::VERSION,
            org: self.org.clone(),
            users: self.users.values().cloned().collect(),
        }
    }
}

fn one(path: &str, message: impl Into<String>) -> Vec<ValidationError> {
    vec![ValidationError::new(path, message)]
}

fn check(errors: impl IntoIterator<Item = ValidationError>) -> Result<(), Vec<ValidationError>> {
    let errors: Vec<_> = errors.into_iter().collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

impl Change {
    /// Validates this change against `set` and applies it. On error `set` is
    /// unchanged and every problem is returned, its `path` naming the field of the
    /// change (`watcher`, `contact`, `seconds`, ... or `user.contacts[2].aor`).
    ///
    /// A change to an owner who has no policy yet starts from the product defaults
    /// ([`UserPolicy::new`]); removals of things that are not there are errors, so
    /// a typo does not pass silently.
    pub fn apply_to(&self, set: &mut PolicySet) -> Result<(), Vec<ValidationError>> {
        let org = &set.org;
        let current = |owner: &Aor| {
            set.users
                .get(owner)
                .cloned()
                .unwrap_or_else(|| UserPolicy::new(owner.clone()))
        };
        let existing = |owner: &Aor| {
            set.users
                .get(owner)
                .cloned()
                .ok_or_else(|| one("owner", format!("{owner} has no privacy policy here")))
        };
        let updated: UserPolicy = match self {
            Change::SetOrg { org } => {
                check(validate::validate_org(org, "org"))?;
                check(validate::classes_in_use(org, set.users.values()))?;
                set.org = org.clone();
                return Ok(());
            }
            Change::PutUser { user } => {
                check(validate::validate_user(org, user, "user"))?;
                user.clone()
            }
            Change::RemoveUser { aor } => {
                if set.users.remove(aor).is_none() {
                    return Err(one("aor", format!("no such user {aor}")));
                }
                return Ok(());
            }
            Change::SetDefaults {
                owner,
                internal,
                external,
            } => {
                if internal.is_none() && external.is_none() {
                    return Err(one(
                        "internal",
                        "nothing to change: give internal or external",
                    ));
                }
                let mut u = current(owner);
                if let Some(i) = internal {
                    u.default_internal = *i;
                }
                if let Some(e) = external {
                    u.default_external = *e;
                }
                u
            }
            Change::AddUserException {
                owner,
                watcher,
                action,
            } => {
                if *action == Action::Allow {
                    check(validate::user_not_admin_blocked(org, watcher, "watcher"))?;
                }
                let mut u = current(owner);
                if !put_exception(&mut u.exceptions.users, watcher, *action) {
                    return Err(one(
                        "watcher",
                        format!(
                            "duplicate: {watcher} is already on the {} list",
                            action_list(*action)
                        ),
                    ));
                }
                u
            }
            Change::RemoveUserException { owner, watcher } => {
                let mut u = existing(owner)?;
                if !remove_exception(&mut u.exceptions.users, watcher) {
                    return Err(one(
                        "watcher",
                        format!("{owner} has no exception for {watcher}"),
                    ));
                }
                u
            }
            Change::AddDomainException {
                owner,
                domain,
                action,
            } => {
                if *action == Action::Allow {
                    check(validate::domain_not_admin_blocked(
                        org,
                        domain.as_str(),
                        "domain",
                    ))?;
                }
                let mut u = current(owner);
                if !put_exception(&mut u.exceptions.domains, domain, *action) {
                    return Err(one(
                        "domain",
                        format!(
                            "duplicate: domain {domain} is already on the {} list",
                            action_list(*action)
                        ),
                    ));
                }
                u
            }
            Change::RemoveDomainException { owner, domain } => {
                let mut u = existing(owner)?;
                if !remove_exception(&mut u.exceptions.domains, domain) {
                    return Err(one(
                        "domain",
                        format!("{owner} has no exception for domain {domain}"),
                    ));
                }
                u
            }
            Change::AddContact {
                owner,
                contact,
                name,
                learned,
            } => {
                let mut u = current(owner);
                if u.has_contact(contact) {
                    if *learned {
                        // Learned again from another SUBSCRIBE: already known, nothing to do.
                        return Ok(());
                    }
                    return Err(one(
                        "contact",
                        format!("duplicate: {contact} is already a contact of {owner}"),
                    ));
                }
                check(
                    validate::user_not_admin_blocked(org, contact, "contact")
                        .into_iter()
                        .chain(validate::contact_name(name.as_deref(), "name"))
                        .chain(validate::contact_limit(
                            org,
                            &u.class,
                            u.contacts.len() + 1,
                            "contact",
                        )),
                )?;
                u.contacts.push(Contact {
                    aor: contact.clone(),
                    name: name.clone(),
                    learned: *learned,
                });
                u
            }
            Change::RemoveContact { owner, contact } => {
                let mut u = existing(owner)?;
                let before = u.contacts.len();
                u.contacts.retain(|c| &c.aor != contact);
                if u.contacts.len() == before {
                    return Err(one(
                        "contact",
                        format!("{contact} is not a contact of {owner}"),
                    ));
                }
                u
            }
            Change::SetRefreshInterval { owner, seconds } => {
                check(validate::refresh_interval(*seconds, "seconds"))?;
                let mut u = current(owner);
                u.refresh_interval_s = *seconds;
                u
            }
            Change::Answer {
                owner,
                watcher,
                action,
            } => {
                if *action == Action::Allow {
                    check(validate::user_not_admin_blocked(org, watcher, "watcher"))?;
                }
                let mut u = current(owner);
                // Answering again with the same action is not a duplicate: the
                // request is gone either way.
                put_exception(&mut u.exceptions.users, watcher, *action);
                u
            }
        };
        set.users.insert(updated.aor.clone(), updated);
        Ok(())
    }
}

fn action_list(a: Action) -> &'static str {
    match a {
        Action::Allow => "allowed",
        Action::Block => "blocked",
    }
}

/// A user or a domain exception, so that both lists are added to and removed
/// from by the same code.
trait ExceptionEntry {
    type Key: PartialEq + Clone;
    fn new(key: Self::Key, action: Action) -> Self;
    fn key(&self) -> &Self::Key;
    fn action_mut(&mut self) -> &mut Action;
}

impl ExceptionEntry for UserException {
    type Key = Aor;
    fn new(aor: Aor, action: Action) -> Self {
        UserException { aor, action }
    }
    fn key(&self) -> &Aor {
        &self.aor
    }
    fn action_mut(&mut self) -> &mut Action {
        &mut self.action
    }
}

impl ExceptionEntry for DomainException {
    type Key = Domain;
    fn new(domain: Domain, action: Action) -> Self {
        DomainException { domain, action }
    }
    fn key(&self) -> &Domain {
        &self.domain
    }
    fn action_mut(&mut self) -> &mut Action {
        &mut self.action
    }
}

/// Lists `key` with `action`: a new entry, or the existing one switched to
/// `action` (one user or domain is on one list at a time). False, with nothing
/// changed, when it is already listed with `action`.
fn put_exception<E: ExceptionEntry>(list: &mut Vec<E>, key: &E::Key, action: Action) -> bool {
    let Some(e) = list.iter_mut().find(|e| e.key() == key) else {
        list.push(E::new(key.clone(), action));
        return true;
    };
    let listed = e.action_mut();
    let changed = *listed != action;
    *listed = action;
    changed
}

/// Takes `key` off the list; false when it was not on it.
fn remove_exception<E: ExceptionEntry>(list: &mut Vec<E>, key: &E::Key) -> bool {
    let before = list.len();
    list.retain(|e| e.key() != key);
    list.len() != before
}
