//! The validation rules of DESIGN.md "Validation": each one a function that says
//! what is wrong and where, so changes, forms and whole documents share them.
//!
//! Rules about syntax (a bad AoR or domain, an unknown value) are enforced by the
//! types and, for documents, by [`super::document::parse_document`], which reports
//! them with their JSON path. The rules here are about meaning.

use std::collections::HashSet;
use std::hash::Hash;

use super::aor::{Aor, Domain};
use super::change::ValidationError;
use super::model::{Action, Org, UserPolicy, REFRESH_RANGE};
use super::PolicyDocument;

/// Cisco, Adding Contacts: "You are prevented from adding users/domains that are
/// already blocked by the administrator." Applies to contacts and to Allow
/// exceptions (an Allow would be a user overriding the administrator).
pub fn user_not_admin_blocked(org: &Org, aor: &Aor, path: &str) -> Option<ValidationError> {
    if org.blocked_users.iter().any(|b| b == aor) {
        return Some(ValidationError::new(
            path,
            format!("{aor} is blocked by the administrator and cannot be added"),
        ));
    }
    domain_not_admin_blocked(org, aor.domain(), path)
}

/// Cisco, Adding Contacts: "You are prevented from adding users/domains that are
/// already blocked by the administrator." (the domain half).
pub fn domain_not_admin_blocked(org: &Org, domain: &str, path: &str) -> Option<ValidationError> {
    if org.blocked_domains.iter().any(|d| d.as_str() == domain) {
        return Some(ValidationError::new(
            path,
            format!("domain {domain} is blocked by the administrator and cannot be added"),
        ));
    }
    None
}

/// Cisco, Adding Contacts: "Your system administrator sets the number of contacts
/// you can have on your list, with a maximum of 100." `count` is the size the list
/// would have after the change.
pub fn contact_limit(org: &Org, class: &str, count: usize, path: &str) -> Option<ValidationError> {
    let limit = org.class(class).contact_limit as usize;
    (count > limit).then(|| {
        ValidationError::new(
            path,
            format!("contact limit reached: class `{class}` allows at most {limit} contacts"),
        )
    })
}

/// Cisco, Configuring the Contact List Refresh Timer: "Enter a value (in seconds)
/// from 7-3600 in the Phone Display Refresh Interval field."
pub fn refresh_interval(seconds: u32, path: &str) -> Option<ValidationError> {
    (!REFRESH_RANGE.contains(&seconds)).then(|| {
        ValidationError::new(
            path,
            format!(
                "refresh interval {seconds} s is out of range: it must be from {} to {} seconds",
                REFRESH_RANGE.start(),
                REFRESH_RANGE.end()
            ),
        )
    })
}

/// A user names a class of service the administrator defined ("Administrators can
/// configure Class of Service options", ShoreTel 6.4.2). `default` always exists:
/// it is the built-in class when the org does not define it.
pub fn known_class(org: &Org, class: &str, path: &str) -> Option<ValidationError> {
    (class != "default" && !org.classes.contains_key(class))
        .then(|| ValidationError::new(path, format!("unknown class of service `{class}`")))
}

/// Cisco, Setting Your Default Privacy Policy: "You can set the Allow privacy
/// policy for internal users and domains only. This option is *not* available for
/// external (federated) users/domains." The type cannot hold it; documents and
/// forms that say `allow` get this error.
pub fn external_default_allow(path: &str) -> ValidationError {
    ValidationError::new(
        path,
        "Allow is not available as the default for external users: use `block` or `ask`",
    )
}

/// One entry per key: the same user, domain or contact twice is ambiguous
/// ("Once you Add a user to your Allowed/Blocked list, the details display in the
/// table"; a second row for the same user would contradict the first).
pub fn duplicates<'a, K: Eq + Hash + std::fmt::Display + 'a>(
    keys: impl IntoIterator<Item = &'a K>,
    path: impl Fn(usize) -> String,
    what: &str,
) -> Vec<ValidationError> {
    let mut seen = HashSet::new();
    let mut errors = Vec::new();
    for (i, k) in keys.into_iter().enumerate() {
        if !seen.insert(k) {
            errors.push(ValidationError::new(
                path(i),
                format!("duplicate {what} {k}"),
            ));
        }
    }
    errors
}

/// Every rule that applies to the org settings alone.
pub fn validate_org(org: &Org, path: &str) -> Vec<ValidationError> {
    let p = |field: &str| {
        if path.is_empty() {
            field.to_string()
        } else {
            format!("{path}.{field}")
        }
    };
    let mut errors = Vec::new();
    errors.extend(duplicates(
        &org.local_domains,
        |i| format!("{}[{i}]", p("local_domains")),
        "domain",
    ));
    errors.extend(duplicates(
        &org.federated_domains,
        |i| format!("{}[{i}]", p("federated_domains")),
        "domain",
    ));
    errors.extend(duplicates(
        &org.blocked_users,
        |i| format!("{}[{i}]", p("blocked_users")),
        "user",
    ));
    errors.extend(duplicates(
        &org.blocked_domains,
        |i| format!("{}[{i}]", p("blocked_domains")),
        "domain",
    ));
    for (i, d) in org.blocked_domains.iter().enumerate() {
        if org.local_domains.contains(d) {
            errors.push(ValidationError::new(
                format!("{}[{i}]", p("blocked_domains")),
                format!("domain {d} is both local and blocked"),
            ));
        }
    }
    for name in org.classes.keys() {
        if name.trim().is_empty() {
            errors.push(ValidationError::new(
                p("classes"),
                "a class of service needs a name",
            ));
        }
    }
    if org.pending_timeout_s == 0 {
        errors.push(ValidationError::new(
            p("pending_timeout_s"),
            "pending timeout must be at least 1 second",
        ));
    }
    errors
}

/// Every rule that applies to one user policy under `org`. `path` is the JSON path
/// of the user (`users[3]`, or `user` for a single change).
pub fn validate_user(org: &Org, user: &UserPolicy, path: &str) -> Vec<ValidationError> {
    let mut errors = Vec::new();
    errors.extend(known_class(org, &user.class, &format!("{path}.class")));
    errors.extend(refresh_interval(
        user.refresh_interval_s,
        &format!("{path}.refresh_interval_s"),
    ));

    let ex_users = &user.exceptions.users;
    errors.extend(duplicates(
        ex_users.iter().map(|e| &e.aor),
        |i| format!("{path}.exceptions.users[{i}].aor"),
        "user exception for",
    ));
    for (i, e) in ex_users.iter().enumerate() {
        if e.action == Action::Allow {
            errors.extend(user_not_admin_blocked(
                org,
                &e.aor,
                &format!("{path}.exceptions.users[{i}].aor"),
            ));
        }
    }
    let ex_domains = &user.exceptions.domains;
    errors.extend(duplicates(
        ex_domains.iter().map(|e| &e.domain),
        |i| format!("{path}.exceptions.domains[{i}].domain"),
        "domain exception for",
    ));
    for (i, e) in ex_domains.iter().enumerate() {
        if e.action == Action::Allow {
            errors.extend(domain_not_admin_blocked(
                org,
                e.domain.as_str(),
                &format!("{path}.exceptions.domains[{i}].domain"),
            ));
        }
    }
    errors.extend(duplicates(
        user.contacts.iter().map(|c| &c.aor),
        |i| format!("{path}.contacts[{i}].aor"),
        "contact",
    ));
    for (i, c) in user.contacts.iter().enumerate() {
        errors.extend(user_not_admin_blocked(
            org,
            &c.aor,
            &format!("{path}.contacts[{i}].aor"),
        ));
        errors.extend(contact_name(
            c.name.as_deref(),
            &format!("{path}.contacts[{i}].name"),
        ));
    }
    errors.extend(contact_limit(
        org,
        &user.class,
        user.contacts.len(),
        &format!("{path}.contacts"),
    ));
    errors
}

/// Cisco: "You can only have one alternate name (nickname) per contact." It is
/// shown on clients, so it is one printable line of reasonable length.
pub fn contact_name(name: Option<&str>, path: &str) -> Option<ValidationError> {
    let name = name?;
    if name.trim().is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
        return Some(ValidationError::new(
            path,
            "alternate name must be 1 to 128 printable characters on one line",
        ));
    }
    None
}

/// Every rule for a whole document: the org, every user, and no user twice.
/// Returns every error, each with its JSON path.
pub fn validate_document(doc: &PolicyDocument) -> Vec<ValidationError> {
    let mut errors = Vec::new();
    if doc.version != PolicyDocument::VERSION {
        errors.push(ValidationError::new(
            "version",
            format!(
                "unsupported policy document version {} (this build reads {})",
                doc.version,
                PolicyDocument::VERSION
            ),
        ));
    }
    errors.extend(validate_org(&doc.org, "org"));
    errors.extend(validate_users(&doc.org, doc.users.iter().enumerate()));
    errors
}

/// The per-user half of [`validate_document`], for users known by their index in
/// the document (some entries may have been dropped by a syntax error already).
pub fn validate_users<'a>(
    org: &Org,
    users: impl IntoIterator<Item = (usize, &'a UserPolicy)>,
) -> Vec<ValidationError> {
    let mut errors = Vec::new();
    let mut seen: HashSet<&Aor> = HashSet::new();
    for (i, u) in users {
        if !seen.insert(&u.aor) {
            errors.push(ValidationError::new(
                format!("users[{i}].aor"),
                format!("duplicate user {}", u.aor),
            ));
        }
        errors.extend(validate_user(org, u, &format!("users[{i}]")));
    }
    errors
}

/// Users whose class the new org settings no longer define.
pub fn classes_in_use<'a>(
    org: &Org,
    users: impl IntoIterator<Item = &'a UserPolicy>,
) -> Vec<ValidationError> {
    let mut missing: Vec<(String, &Aor)> = Vec::new();
    for u in users {
        if known_class(org, &u.class, "").is_some() && !missing.iter().any(|(c, _)| c == &u.class) {
            missing.push((u.class.clone(), &u.aor));
        }
    }
    missing
        .into_iter()
        .map(|(class, aor)| {
            ValidationError::new(
                "org.classes",
                format!("class of service `{class}` is still used (by {aor} and maybe others)"),
            )
        })
        .collect()
}

/// Domain syntax check for strings from forms (`Domain::parse` with a path).
pub fn parse_domain(s: &str, path: &str) -> Result<Domain, ValidationError> {
    Domain::parse(s).map_err(|e| ValidationError::new(path, e.to_string()))
}

/// AoR syntax check for strings from forms (`Aor::parse` with a path).
pub fn parse_aor(s: &str, path: &str) -> Result<Aor, ValidationError> {
    Aor::parse(s).map_err(|e| ValidationError::new(path, e.to_string()))
}
