//! What a signed-in owner may do to their own policy, as store [`Change`]s.
//!
//! The pages and the REST API both call these, so a refusal reads the same in
//! both (and names the field at fault). The owner always comes from the session,
//! never from the request: a user can change only their own data.

use crate::policy::{
    validate, Action, Aor, Change, Contact, DefaultExternal, DefaultInternal, Domain,
    PendingRequest, UserPolicy,
};

use super::error::ApiError;
use super::AppState;

/// An exception names a user (AoR) or a whole domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExceptionKind {
    User,
    Domain,
}

impl ExceptionKind {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        match s {
            "user" => Ok(ExceptionKind::User),
            "domain" => Ok(ExceptionKind::Domain),
            _ => Err(ApiError::invalid("kind", "kind must be `user` or `domain`")),
        }
    }
}

/// The owner's policy, or 404 when they have an account but no policy entry.
pub fn policy(st: &AppState, owner: &Aor) -> Result<std::sync::Arc<UserPolicy>, ApiError> {
    st.store.user(owner).ok_or_else(|| {
        ApiError::not_found(format!(
            "{owner} has no privacy policy; ask the administrator"
        ))
    })
}

pub fn parse_aor(field: &str, value: &str) -> Result<Aor, ApiError> {
    Aor::parse(value).map_err(|e| ApiError::invalid(field, format!("invalid id: {e}")))
}

pub fn parse_domain(field: &str, value: &str) -> Result<Domain, ApiError> {
    Domain::parse(value).map_err(|e| ApiError::invalid(field, format!("invalid domain: {e}")))
}

/// Cisco: the internal default is Allow or Block.
pub fn parse_internal(v: &str) -> Result<DefaultInternal, ApiError> {
    match v.to_ascii_lowercase().as_str() {
        "allow" => Ok(DefaultInternal::Allow),
        "block" => Ok(DefaultInternal::Block),
        _ => Err(ApiError::invalid(
            "internal",
            "internal default must be allow or block",
        )),
    }
}

/// Cisco: "You can set the Allow privacy policy for internal users and domains
/// only"; external is Block or Ask Me.
pub fn parse_external(v: &str) -> Result<DefaultExternal, ApiError> {
    match v.to_ascii_lowercase().as_str() {
        "block" => Ok(DefaultExternal::Block),
        "ask" | "askme" | "ask_me" | "ask-me" => Ok(DefaultExternal::Ask),
        "allow" => Err(ApiError::invalid(
            "external",
            "Allow is offered for internal users only; external users are Block or Ask Me",
        )),
        _ => Err(ApiError::invalid(
            "external",
            "external default must be block or ask",
        )),
    }
}

pub fn parse_action(field: &str, v: &str) -> Result<Action, ApiError> {
    match v.to_ascii_lowercase().as_str() {
        "allow" => Ok(Action::Allow),
        "block" => Ok(Action::Block),
        _ => Err(ApiError::invalid(field, "action must be allow or block")),
    }
}

async fn apply(st: &AppState, change: Change, field: &str) -> Result<(), ApiError> {
    st.write(move |s| s.apply(change))
        .await
        .map_err(|e| ApiError::from_store(e, Some(field)))
}

pub async fn set_defaults(
    st: &AppState,
    owner: &Aor,
    internal: Option<DefaultInternal>,
    external: Option<DefaultExternal>,
) -> Result<(), ApiError> {
    policy(st, owner)?;
    if internal.is_none() && external.is_none() {
        return Err(ApiError::invalid(
            "internal",
            "give internal, external or both",
        ));
    }
    let field = if internal.is_some() {
        "internal"
    } else {
        "external"
    };
    apply(
        st,
        Change::SetDefaults {
            owner: owner.clone(),
            internal,
            external,
        },
        field,
    )
    .await
}

/// What an exception names, parsed from the request's `value`: the parsed form is
/// what the lists hold, so a `sip:` prefix or an upper-case domain still matches.
enum Subject {
    User(Aor),
    Domain(Domain),
}

impl Subject {
    fn parse(kind: ExceptionKind, value: &str) -> Result<Self, ApiError> {
        Ok(match kind {
            ExceptionKind::User => Subject::User(parse_aor("value", value)?),
            ExceptionKind::Domain => Subject::Domain(parse_domain("value", value)?),
        })
    }

    fn is_listed(&self, p: &UserPolicy) -> bool {
        match self {
            Subject::User(watcher) => p.user_exception(watcher).is_some(),
            Subject::Domain(domain) => p.domain_exception(domain.as_str()).is_some(),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            Subject::User(watcher) => watcher.as_str(),
            Subject::Domain(domain) => domain.as_str(),
        }
    }
}

/// Adds an exception; returns the user or domain as stored (canonical form).
pub async fn add_exception(
    st: &AppState,
    owner: &Aor,
    kind: ExceptionKind,
    value: &str,
    action: Action,
) -> Result<String, ApiError> {
    let p = policy(st, owner)?;
    let subject = Subject::parse(kind, value)?;
    let stored = subject.as_str().to_string();
    if subject.is_listed(&p) {
        return Err(
            ApiError::conflict(format!("{stored} is already on your exception list"))
                .field("value"),
        );
    }
    let owner = owner.clone();
    let change = match subject {
        Subject::User(watcher) => Change::AddUserException {
            owner,
            watcher,
            action,
        },
        Subject::Domain(domain) => Change::AddDomainException {
            owner,
            domain,
            action,
        },
    };
    apply(st, change, "value").await?;
    Ok(stored)
}

pub async fn remove_exception(
    st: &AppState,
    owner: &Aor,
    kind: ExceptionKind,
    value: &str,
) -> Result<(), ApiError> {
    let p = policy(st, owner)?;
    let subject = Subject::parse(kind, value)?;
    if !subject.is_listed(&p) {
        return Err(ApiError::not_found(format!(
            "{} is not on your exception list",
            subject.as_str()
        ))
        .field("value"));
    }
    let owner = owner.clone();
    let change = match subject {
        Subject::User(watcher) => Change::RemoveUserException { owner, watcher },
        Subject::Domain(domain) => Change::RemoveDomainException { owner, domain },
    };
    apply(st, change, "value").await
}

/// Cisco "Add New" contact; the store refuses admin-blocked users and a full list.
/// Returns the entry as stored.
pub async fn add_contact(
    st: &AppState,
    owner: &Aor,
    aor: &str,
    name: Option<String>,
) -> Result<Contact, ApiError> {
    let p = policy(st, owner)?;
    let contact = parse_aor("aor", aor)?;
    if p.has_contact(&contact) {
        return Err(ApiError::conflict(format!("{contact} is already a contact")).field("aor"));
    }
    let name = name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    // The store would refuse it too, but against the contact's field; checked
    // here so the refusal names `name`.
    if validate::contact_name(name.as_deref(), "name").is_some() {
        return Err(ApiError::invalid(
            "name",
            "alternate name: at most 128 printable characters",
        ));
    }
    let entry = Contact {
        aor: contact,
        name,
        learned: false,
    };
    apply(
        st,
        Change::AddContact {
            owner: owner.clone(),
            contact: entry.aor.clone(),
            name: entry.name.clone(),
            learned: entry.learned,
        },
        "aor",
    )
    .await?;
    Ok(entry)
}

pub async fn remove_contact(st: &AppState, owner: &Aor, aor: &str) -> Result<(), ApiError> {
    let p = policy(st, owner)?;
    let contact = parse_aor("aor", aor)?;
    if !p.has_contact(&contact) {
        return Err(ApiError::not_found(format!("{contact} is not a contact")).field("aor"));
    }
    apply(
        st,
        Change::RemoveContact {
            owner: owner.clone(),
            contact,
        },
        "aor",
    )
    .await
}

/// Cisco Preferences: Phone Display Refresh Interval, 7–3600 s (the store checks
/// the range).
pub async fn set_refresh(st: &AppState, owner: &Aor, seconds: u32) -> Result<(), ApiError> {
    policy(st, owner)?;
    apply(
        st,
        Change::SetRefreshInterval {
            owner: owner.clone(),
            seconds,
        },
        "refresh_interval_s",
    )
    .await
}

/// The owner's pending requests.
pub fn pending(st: &AppState, owner: &Aor) -> Vec<PendingRequest> {
    st.store.pending(owner)
}

/// ShoreTel's OK: the checked watchers are allowed, the rest denied. Every watcher
/// named must be waiting for this owner's answer; all answers are applied as one
/// transaction.
pub async fn answer(
    st: &AppState,
    owner: &Aor,
    allow: &[String],
    block: &[String],
) -> Result<usize, ApiError> {
    let waiting = pending(st, owner);
    let mut changes = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (field, list, action) in [
        ("allow", allow, Action::Allow),
        ("block", block, Action::Block),
    ] {
        for raw in list {
            let watcher = parse_aor(field, raw)?;
            if !waiting.iter().any(|r| r.watcher == watcher) {
                return Err(
                    ApiError::not_found(format!("no pending request from {watcher}")).field(field),
                );
            }
            if !seen.insert(watcher.clone()) {
                return Err(ApiError::invalid(
                    field,
                    format!("{watcher} is answered twice"),
                ));
            }
            changes.push(Change::Answer {
                owner: owner.clone(),
                watcher,
                action,
            });
        }
    }
    if changes.is_empty() {
        return Err(ApiError::invalid("allow", "answer at least one request"));
    }
    let n = changes.len();
    st.write(move |s| s.apply_all(changes))
        .await
        .map_err(|e| ApiError::from_store(e, Some("allow")))?;
    Ok(n)
}
