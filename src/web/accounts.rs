//! User Options accounts: argon2id password hashes stored with
//! [`Store::put_account`], and the add / passwd / remove operations shared by the
//! admin API and `presence-proxy user`.

use std::sync::OnceLock;

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;

use crate::policy::{Aor, Change, UserPolicy};
use crate::store::{Account, Store, StoreError};

/// Shortest password accepted (NIST SP 800-63B: at least 8 characters).
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest accepted, so hashing cost stays bounded.
pub const MAX_PASSWORD_CHARS: usize = 256;

/// Why an account operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("an account for {0} already exists")]
    Exists(Aor),
    #[error("no account for {0}")]
    NotFound(Aor),
    #[error("the password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters")]
    BadPassword,
    #[error("no class of service named `{0}` in the org settings")]
    UnknownClass(String),
    #[error("could not hash the password: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Hashes a password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    Argon2::default()
        .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

/// Checks `password` against `account` — or, when there is no account, against a
/// throw-away hash, so an unknown user costs the same time as a wrong password and
/// the answer cannot tell them apart.
pub fn verify_password(account: Option<&Account>, password: &str) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let stored = match account {
        Some(a) => a.password_hash.as_str(),
        None => DUMMY.get_or_init(|| {
            hash_password(&crate::web::session::random_token()).unwrap_or_default()
        }),
    };
    let ok = match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    };
    ok && account.is_some()
}

fn check_password(password: &str) -> Result<(), AccountError> {
    let n = password.chars().count();
    if (MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n) {
        Ok(())
    } else {
        Err(AccountError::BadPassword)
    }
}

/// Creates the account and, when the owner has no policy yet, their policy with
/// the product defaults (internal Allow, external Block) in `class`.
pub fn add_user(
    store: &dyn Store,
    aor: &Aor,
    password: &str,
    class: Option<&str>,
) -> Result<(), AccountError> {
    if store.account(aor).is_some() {
        return Err(AccountError::Exists(aor.clone()));
    }
    check_password(password)?;
    if let Some(c) = class {
        if !store.org().classes.contains_key(c) {
            return Err(AccountError::UnknownClass(c.to_string()));
        }
    }
    let password_hash = hash_password(password)?;
    match (store.user(aor), class) {
        (None, _) => {
            let mut user = UserPolicy::new(aor.clone());
            if let Some(c) = class {
                user.class = c.to_string();
            }
            store.apply(Change::PutUser { user })?;
        }
        (Some(existing), Some(c)) if existing.class != c => {
            let mut user = (*existing).clone();
            user.class = c.to_string();
            store.apply(Change::PutUser { user })?;
        }
        (Some(_), _) => {}
    }
    store.put_account(Account {
        aor: aor.clone(),
        password_hash,
    })?;
    Ok(())
}

/// Replaces an account's password.
pub fn set_password(store: &dyn Store, aor: &Aor, password: &str) -> Result<(), AccountError> {
    if store.account(aor).is_none() {
        return Err(AccountError::NotFound(aor.clone()));
    }
    check_password(password)?;
    let password_hash = hash_password(password)?;
    store.put_account(Account {
        aor: aor.clone(),
        password_hash,
    })?;
    Ok(())
}

/// Removes the account and the owner's policy (exceptions, contacts, pending
/// requests).
pub fn remove_user(store: &dyn Store, aor: &Aor) -> Result<(), AccountError> {
    let had_account = store.account(aor).is_some();
    let had_policy = store.user(aor).is_some();
    if !had_account && !had_policy {
        return Err(AccountError::NotFound(aor.clone()));
    }
    if had_account {
        store.remove_account(aor)?;
    }
    if had_policy {
        store.apply(Change::RemoveUser { aor: aor.clone() })?;
    }
    Ok(())
}
