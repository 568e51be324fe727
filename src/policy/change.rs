//! Changes to the policy set, as data, and the validation every change passes
//! before anything is written (DESIGN.md "Validation").
//!
//! Every writer (command line, web, REST, admin API, the engine's learned contacts
//! and pending answers) expresses what it wants as a [`Change`], so validation and
//! durability have one path.

use serde::{Deserialize, Serialize};

use super::aor::{Aor, Domain};
use super::model::{Action, DefaultExternal, DefaultInternal, Org, UserPolicy};

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

// Validation and application (`Change::apply_to`, org and user validation,
// whole-document validation with JSON paths) are the privacy-model issue's work.
#[allow(dead_code)]
fn _uses(_: &Org, _: &UserPolicy) {}
