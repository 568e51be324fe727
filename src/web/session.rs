//! Signed-in sessions: kept in memory only (a restart signs everyone out), each
//! with its own CSRF token, ended after `web.idle_timeout_s` without activity
//! (Cisco User Options: "automatically signed out ... after thirty minutes of
//! inactivity").

use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use dashmap::DashMap;
use rand::RngCore;

use crate::policy::Aor;

/// Name of the session cookie.
pub const COOKIE: &str = "pp_session";
/// Name of the pre-sign-in cookie that carries the sign-in form's CSRF token
/// (double submit: a cross-site form cannot read or set it).
pub const SIGNIN_COOKIE: &str = "pp_signin";

/// 32 random bytes from the OS, hex: session ids and CSRF tokens.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[derive(Debug, Clone)]
struct Entry {
    aor: Aor,
    csrf: String,
    last_active: Instant,
}

/// A valid session, as a request sees it.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub id: String,
    pub aor: Aor,
    pub csrf: String,
}

/// Why a cookie does not open a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoSession {
    /// No cookie, or an id this process never issued.
    Missing,
    /// The session was idle too long and has been ended.
    Expired,
}

/// Every live session.
pub struct Sessions {
    map: DashMap<String, Entry>,
    idle: Duration,
}

impl Sessions {
    pub fn new(idle: Duration) -> Self {
        Sessions {
            map: DashMap::new(),
            idle,
        }
    }

    /// Starts a session for `aor`; returns it with its fresh CSRF token.
    pub fn create(&self, aor: Aor) -> SessionInfo {
        self.prune();
        let id = random_token();
        let csrf = random_token();
        self.map.insert(
            id.clone(),
            Entry {
                aor: aor.clone(),
                csrf: csrf.clone(),
                last_active: Instant::now(),
            },
        );
        SessionInfo { id, aor, csrf }
    }

    /// Looks a session up. `touch` counts the request as activity; the live event
    /// stream does not, so an open page still signs out when idle.
    pub fn get(&self, id: &str, touch: bool) -> Result<SessionInfo, NoSession> {
        let now = Instant::now();
        // The entry holds its shard's lock: it must be dropped before `remove`,
        // which takes the same lock.
        {
            let Some(mut e) = self.map.get_mut(id) else {
                return Err(NoSession::Missing);
            };
            if now.duration_since(e.last_active) < self.idle {
                if touch {
                    e.last_active = now;
                }
                return Ok(SessionInfo {
                    id: id.to_string(),
                    aor: e.aor.clone(),
                    csrf: e.csrf.clone(),
                });
            }
        }
        self.map.remove(id);
        tracing::info!("session ended after the idle timeout");
        Err(NoSession::Expired)
    }

    pub fn remove(&self, id: &str) {
        self.map.remove(id);
    }

    /// Ends every session of `aor` (account removed or password changed).
    pub fn remove_user(&self, aor: &Aor) {
        self.map.retain(|_, e| &e.aor != aor);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Drops idle sessions so abandoned ones do not accumulate.
    fn prune(&self) {
        let now = Instant::now();
        self.map
            .retain(|_, e| now.duration_since(e.last_active) < self.idle);
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// `Set-Cookie` value: HttpOnly so no script (an injected one included) reads the
/// id, SameSite=Strict so another site's form does not carry it (CSRF defence
/// beside the token), and Secure when served over TLS.
pub fn set_cookie(name: &str, value: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict{secure}")
}

/// `Set-Cookie` value that deletes the cookie.
pub fn clear_cookie(name: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_session_expires_and_activity_extends_it() {
        let s = Sessions::new(Duration::from_millis(80));
        let info = s.create(Aor::parse("alice@example.com").unwrap());
        std::thread::sleep(Duration::from_millis(50));
        assert!(s.get(&info.id, true).is_ok());
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            s.get(&info.id, false).is_ok(),
            "the touch 50 ms ago kept it alive"
        );
        std::thread::sleep(Duration::from_millis(90));
        assert_eq!(s.get(&info.id, true).unwrap_err(), NoSession::Expired);
        assert_eq!(s.get(&info.id, true).unwrap_err(), NoSession::Missing);
    }

    #[test]
    fn cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::COOKIE,
            "a=1; pp_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&h, COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }
}
