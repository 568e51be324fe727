//! Signing in: a username and password checked under the per-account and
//! per-address limits. Unknown user and wrong password get the same answer in the
//! same time, so the answer does not tell which accounts exist.

use axum::http::StatusCode;

use crate::policy::Aor;

use super::accounts::{verify_password, MAX_PASSWORD_CHARS};
use super::error::ApiError;
use super::metrics::SignInResult;
use super::session::SessionInfo;
use super::AppState;

/// The one message for an unknown user or a wrong password.
pub const BAD_CREDENTIALS: &str = "Wrong username or password.";

/// The account a username names: an AoR, or (Cisco's "username") a bare user id
/// in the one local domain.
fn account_aor(st: &AppState, username: &str) -> Option<Aor> {
    let username = username.trim();
    if username.contains('@') || username.contains(':') {
        return Aor::parse(username).ok();
    }
    match st.store.org().local_domains.as_slice() {
        [only] => Aor::parse(&format!("{username}@{only}")).ok(),
        _ => None,
    }
}

/// Checks the credentials; on success starts a session. A locked account or
/// address is refused before the password is looked at, so guessing right during
/// the lockout does not get in.
pub async fn sign_in(
    st: &AppState,
    username: &str,
    password: &str,
    addr: &str,
) -> Result<SessionInfo, ApiError> {
    let aor = account_aor(st, username);
    let account_key = format!(
        "account:{}",
        aor.as_ref()
            .map(|a| a.to_string())
            .unwrap_or_else(|| username.trim().to_string())
    );
    let addr_key = format!("addr:{addr}");
    if let Some(wait) = st
        .limiter
        .locked(&account_key)
        .or_else(|| st.limiter.locked(&addr_key))
    {
        st.metrics.signin(SignInResult::Locked);
        tracing::warn!(addr, "sign-in refused: too many wrong passwords");
        let mut err = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many failed sign-ins; try again in {} s.",
                wait.as_secs().max(1)
            ),
        )
        .field("username");
        err.retry_after = Some(wait.as_secs().max(1));
        return Err(err);
    }
    let account = aor.as_ref().and_then(|a| st.store.account(a));
    let password = password.to_string();
    // No account has a longer password; not hashing one bounds what a caller can
    // make argon2 chew on.
    let ok = tokio::task::spawn_blocking(move || {
        password.chars().count() <= MAX_PASSWORD_CHARS
            && verify_password(account.as_ref(), &password)
    })
    .await
    .unwrap_or(false);
    match (ok, aor) {
        (true, Some(aor)) => {
            st.limiter.succeed(&account_key);
            st.metrics.signin(SignInResult::Ok);
            tracing::info!(user = %aor, "signed in");
            Ok(st.sessions.create(aor))
        }
        _ => {
            st.limiter.fail(&account_key);
            st.limiter.fail(&addr_key);
            st.metrics.signin(SignInResult::Failed);
            tracing::info!(addr, "sign-in failed");
            Err(ApiError::new(StatusCode::UNAUTHORIZED, BAD_CREDENTIALS).field("password"))
        }
    }
}
