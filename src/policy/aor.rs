//! Identities: addresses of record compared as `user@host`, and domains.
//!
//! RFC 3261 §19.1.4: the user part compares case-sensitively, the host
//! case-insensitively; URI parameters and the port do not name a different person,
//! so they are dropped. The schemes `sip`, `sips`, `pres` (RFC 3859) and `im`
//! (RFC 3860) all name the same AoR.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a string is not an AoR or a domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AorError {
    #[error("empty address")]
    Empty,
    #[error("address `{0}` has no `@`: expected user@domain")]
    NoAt(String),
    #[error("address `{0}` has an empty user part")]
    EmptyUser(String),
    #[error("user part of `{0}` contains a character not allowed in a SIP user (RFC 3261 §25.1)")]
    BadUser(String),
    #[error("`{0}` is not a valid domain name or IP address")]
    BadDomain(String),
    #[error("unsupported URI scheme in `{0}` (expected sip, sips, pres or im)")]
    BadScheme(String),
}

/// A domain name (or IP literal), lower-cased and validated.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Domain(String);

impl Domain {
    /// Validates a domain: RFC 1035 labels (letters, digits, `-`, not starting or
    /// ending with `-`, 1..=63 bytes, 253 in all), an IPv4 literal, or a bracketed
    /// IPv6 reference (RFC 5118). Lower-cases it.
    pub fn parse(s: &str) -> Result<Self, AorError> {
        let t = s.trim();
        if domain_ok(t) {
            Ok(Domain(t.to_ascii_lowercase()))
        } else {
            Err(AorError::BadDomain(s.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Domain {
    type Error = AorError;
    fn try_from(s: String) -> Result<Self, AorError> {
        Domain::parse(&s)
    }
}

impl From<Domain> for String {
    fn from(d: Domain) -> String {
        d.0
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An address of record, `user@host`, normalized for comparison.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Aor {
    /// `user@host` with the host lower-cased.
    full: String,
    /// Byte offset of the `@`.
    at: usize,
}

/// The AoR of a watcher the proxy cannot identify (RFC 3323 §4.1.1.3).
pub const ANONYMOUS: &str = "anonymous@anonymous.invalid";

impl Aor {
    /// Parses `user@host`, optionally with a `sip:`/`sips:`/`pres:`/`im:` scheme,
    /// angle brackets, a port and URI parameters (all dropped). The user part may
    /// carry RFC 3261 escapes, which are decoded (§19.1.4: `%61lice` is `alice`).
    pub fn parse(s: &str) -> Result<Self, AorError> {
        let t = s.trim();
        let t = t
            .strip_prefix('<')
            .and_then(|r| r.strip_suffix('>'))
            .unwrap_or(t);
        if t.is_empty() {
            return Err(AorError::Empty);
        }
        let rest = match t.find(':') {
            Some(i) if !t[..i].contains('@') => {
                let scheme = &t[..i];
                if !["sip", "sips", "pres", "im"]
                    .iter()
                    .any(|k| k.eq_ignore_ascii_case(scheme))
                {
                    return Err(AorError::BadScheme(s.to_string()));
                }
                &t[i + 1..]
            }
            _ => t,
        };
        // URI parameters and headers end the AoR.
        let rest = rest.split([';', '?']).next().unwrap_or("");
        let at = rest
            .rfind('@')
            .ok_or_else(|| AorError::NoAt(s.to_string()))?;
        let (user_raw, hostport) = (&rest[..at], &rest[at + 1..]);
        // Password (`user:pw@host`) is not part of the identity.
        let user_raw = user_raw.split(':').next().unwrap_or("");
        if user_raw.is_empty() {
            return Err(AorError::EmptyUser(s.to_string()));
        }
        let host = strip_port(hostport);
        // One allocation: this runs for every presence request the proxy judges.
        let mut full = Vec::with_capacity(user_raw.len() + 1 + host.len());
        unescape_user(user_raw, &mut full).ok_or_else(|| AorError::BadUser(s.to_string()))?;
        let host = host.trim();
        if !domain_ok(host) {
            return Err(AorError::BadDomain(host.to_string()));
        }
        let at = full.len();
        full.push(b'@');
        full.extend(host.bytes().map(|b| b.to_ascii_lowercase()));
        // The user part was checked as UTF-8 and the host is ASCII.
        let full = String::from_utf8(full).map_err(|_| AorError::BadUser(s.to_string()))?;
        Ok(Aor { at, full })
    }

    /// `s` when it is already an AoR's text: `user@host`, the user as
    /// [`unescape_user`] leaves it, the host valid and lower-case.
    fn normalized(s: &str) -> Option<Aor> {
        let at = s.rfind('@')?;
        let (user, host) = (&s[..at], &s[at + 1..]);
        let user_ok = !user.is_empty() && user.chars().all(|c| !user_char_refused(c));
        let host_ok = domain_ok(host) && !host.bytes().any(|b| b.is_ascii_uppercase());
        (user_ok && host_ok).then(|| Aor {
            at,
            full: s.to_string(),
        })
    }

    /// The unknown watcher, `anonymous@anonymous.invalid`.
    pub fn anonymous() -> Self {
        Aor::parse(ANONYMOUS).expect("constant is a valid AoR")
    }

    pub fn user(&self) -> &str {
        &self.full[..self.at]
    }

    pub fn domain(&self) -> &str {
        &self.full[self.at + 1..]
    }

    pub fn as_str(&self) -> &str {
        &self.full
    }
}

/// [`Domain::parse`]'s rules, checked on the text as given (case does not matter
/// to them), so a parse allocates only for the result.
fn domain_ok(s: &str) -> bool {
    if s.is_empty() || s.len() > 253 {
        return false;
    }
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return inner.parse::<std::net::Ipv6Addr>().is_ok();
    }
    s.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

fn strip_port(hostport: &str) -> &str {
    if hostport.starts_with('[') {
        return match hostport.find(']') {
            Some(end) => &hostport[..=end],
            None => hostport,
        };
    }
    match hostport.rfind(':') {
        Some(i) if hostport[i + 1..].bytes().all(|b| b.is_ascii_digit()) => &hostport[..i],
        _ => hostport,
    }
}

/// Decodes `%HH` escapes onto `out` and checks the RFC 3261 §25.1 user
/// characters; the decoded user must be UTF-8 without controls, `@` or spaces.
///
/// Nor may it hold what [`Aor::parse`] reads as syntax around a user: `;` and `?`
/// (parameters, headers), `:` (a password) or `%` (another escape). Those can only
/// arrive escaped, and an AoR is stored as its `user@host` text and read back
/// (`TryFrom<String>`): `a%3Bb@x.org` stored as `a;b@x.org` came back as no AoR at
/// all, so one such pending request from the network stopped the store from
/// opening at the next start, and `%2541` stored as `%41` would have come back as
/// another user, `A`.
fn unescape_user(raw: &str, out: &mut Vec<u8>) -> Option<()> {
    let b = raw.as_bytes();
    let start = out.len();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = raw.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            c if c.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&c) => {
                out.push(c);
                i += 1;
            }
            _ => return None,
        }
    }
    let user = std::str::from_utf8(&out[start..]).ok()?;
    if user.chars().any(user_char_refused) {
        return None;
    }
    Some(())
}

/// What a decoded user may not hold (see [`unescape_user`]).
fn user_char_refused(c: char) -> bool {
    c.is_control() || matches!(c, '@' | ' ' | ';' | '?' | ':' | '%')
}

impl TryFrom<String> for Aor {
    type Error = AorError;
    /// An address as a person writes it ([`Aor::parse`]), or an AoR's own text as
    /// the store wrote it: a user decoded from escapes may hold characters a URI
    /// carries only escaped (`#`, `^`, UTF-8), which `Aor::parse` refuses raw.
    fn try_from(s: String) -> Result<Self, AorError> {
        Aor::parse(&s).or_else(|e| Aor::normalized(&s).ok_or(e))
    }
}

impl From<Aor> for String {
    fn from(a: Aor) -> String {
        a.full
    }
}

impl fmt::Display for Aor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl std::str::FromStr for Aor {
    type Err = AorError;
    fn from_str(s: &str) -> Result<Self, AorError> {
        Aor::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_scheme_host_case_port_and_params() {
        let a = Aor::parse("sip:Alice@Example.COM:5060;transport=tcp").unwrap();
        assert_eq!(a.as_str(), "Alice@example.com");
        assert_eq!(a.user(), "Alice");
        assert_eq!(a.domain(), "example.com");
        assert_eq!(
            Aor::parse("<pres:bob@x.org>").unwrap().as_str(),
            "bob@x.org"
        );
        assert_eq!(Aor::parse("im:bob@x.org").unwrap().as_str(), "bob@x.org");
        assert_eq!(
            Aor::parse("sip:%61lice@x.org").unwrap().as_str(),
            "alice@x.org"
        );
        assert_eq!(Aor::parse("sip:u@[::1]:5060").unwrap().domain(), "[::1]");
    }

    #[test]
    fn user_part_is_case_sensitive() {
        assert_ne!(
            Aor::parse("Alice@x.org").unwrap(),
            Aor::parse("alice@x.org").unwrap()
        );
    }

    #[test]
    fn rejects_bad_input_with_reason() {
        assert!(matches!(Aor::parse(""), Err(AorError::Empty)));
        assert!(matches!(Aor::parse("alice"), Err(AorError::NoAt(_))));
        assert!(matches!(Aor::parse("@x.org"), Err(AorError::EmptyUser(_))));
        assert!(matches!(Aor::parse("a b@x.org"), Err(AorError::BadUser(_))));
        assert!(matches!(
            Aor::parse("a@x..org"),
            Err(AorError::BadDomain(_))
        ));
        assert!(matches!(
            Aor::parse("tel:a@x.org"),
            Err(AorError::BadScheme(_))
        ));
    }

    #[test]
    fn scheme_and_host_compare_without_case_the_escaped_user_with_it() {
        let a = Aor::parse("SIPS:%41b@[::A]:5061").unwrap();
        assert_eq!(a.as_str(), "Ab@[::a]");
        assert_eq!((a.user(), a.domain()), ("Ab", "[::a]"));
        assert!(matches!(
            Aor::parse("sip:%0a@x.org"),
            Err(AorError::BadUser(_))
        ));
        assert!(matches!(
            Aor::parse("sip:%e9@x.org"),
            Err(AorError::BadUser(_))
        ));
        assert!(matches!(
            Aor::parse("a@-x.org"),
            Err(AorError::BadDomain(_))
        ));
        assert_eq!(Domain::parse(" Ex.ORG ").unwrap().as_str(), "ex.org");
    }

    proptest::proptest! {
        /// A parsed AoR reads back as itself from its text, escapes included: the
        /// store writes an AoR as its text and reads it back (`TryFrom<String>`).
        #[test]
        fn an_aor_reads_back_from_its_text(
            user in "([A-Za-z0-9._~-]|%[0-9A-Fa-f]{2}){1,12}",
            host in "[A-Za-z0-9-]{1,10}(\\.[A-Za-z]{2,4}){0,2}",
        ) {
            if let Ok(a) = Aor::parse(&format!("sip:{user}@{host}:5060;transport=tcp")) {
                let again = Aor::try_from(a.as_str().to_string()).unwrap();
                proptest::prop_assert_eq!(&again, &a);
                let json = serde_json::to_string(&a).unwrap();
                proptest::prop_assert_eq!(serde_json::from_str::<Aor>(&json).unwrap(), a.clone());
                proptest::prop_assert_eq!(a.domain(), host.to_ascii_lowercase());
            }
        }
    }
}
