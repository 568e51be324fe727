//! SIP and other URIs as spans (RFC 3261 §19.1, RFC 5118 for IPv6 references).

use super::error::ParseError;
use super::values::{param as find_param, run_len, HOST};

/// A URI split into spans. For `sip:`/`sips:` every field is filled in; for other
/// schemes (`tel:`, `im:`, unknown ones, RFC 4475 §3.3.2–3.3.3) `host` is the
/// scheme-specific part up to the first `;`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uri<'a> {
    pub scheme: &'a [u8],
    /// User part without the password; escapes kept (`%40`) and `;` allowed in it
    /// (RFC 4475 §3.1.1.9).
    pub user: Option<&'a [u8]>,
    /// Host; an IPv6 reference keeps its brackets (RFC 5118 §4.1).
    pub host: &'a [u8],
    pub port: Option<u16>,
    /// URI parameters without the leading `;` (empty when none).
    pub params: &'a [u8],
    /// The `?` headers part without the `?` (empty when none).
    pub headers: &'a [u8],
}

fn is_scheme(s: &[u8]) -> bool {
    s.first().is_some_and(u8::is_ascii_alphabetic)
        && s.iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

fn split_headers(s: &[u8]) -> (&[u8], &[u8]) {
    match s.iter().position(|&c| c == b'?') {
        Some(q) => (&s[..q], &s[q + 1..]),
        None => (s, b""),
    }
}

// Bytes a URI may hold as the parser checks it: the same as inside a
// name-addr's `<...>` (anything but white space, `<`, `>` and `"`, which would
// mean a name-addr or a broken line).
use super::values::IN_ANGLE as URI_CHAR;

impl<'a> Uri<'a> {
    pub fn parse(b: &'a [u8]) -> Result<Uri<'a>, ParseError> {
        let colon = b
            .iter()
            .position(|&c| c == b':')
            .ok_or(ParseError::BadUri)?;
        let scheme = &b[..colon];
        if !is_scheme(scheme) || run_len(b, &URI_CHAR) != b.len() {
            return Err(ParseError::BadUri);
        }
        let rest = &b[colon + 1..];
        if rest.is_empty() {
            return Err(ParseError::BadUri);
        }
        let is_sip = scheme.eq_ignore_ascii_case(b"sip") || scheme.eq_ignore_ascii_case(b"sips");
        if !is_sip {
            let (rest, headers) = split_headers(rest);
            let semi = rest.iter().position(|&c| c == b';').unwrap_or(rest.len());
            return Ok(Uri {
                scheme,
                user: None,
                host: &rest[..semi],
                port: None,
                params: rest.get(semi + 1..).unwrap_or(b""),
                headers,
            });
        }
        // The user part may hold `?`, `;`, `/`, ... (RFC 3261 §25.1 user-unreserved,
        // RFC 4475 §3.1.1.2), but `@` appears neither in parameters nor in headers,
        // so the last `@` ends the userinfo.
        let (user, hostpart) = match rest.iter().rposition(|&c| c == b'@') {
            Some(at) => {
                let userinfo = &rest[..at];
                let user = match userinfo.iter().position(|&c| c == b':') {
                    Some(c) => &userinfo[..c],
                    None => userinfo,
                };
                if user.is_empty() {
                    return Err(ParseError::BadUri);
                }
                (Some(user), &rest[at + 1..])
            }
            None => (None, rest),
        };
        let (hostpart, headers) = split_headers(hostpart);
        let host_end = if hostpart.first() == Some(&b'[') {
            hostpart
                .iter()
                .position(|&c| c == b']')
                .ok_or(ParseError::BadUri)?
                + 1
        } else {
            hostpart
                .iter()
                .position(|&c| c == b':' || c == b';')
                .unwrap_or(hostpart.len())
        };
        let host = &hostpart[..host_end];
        let host_ok = if host.first() == Some(&b'[') {
            host.len() > 2
                && host[1..host.len() - 1]
                    .iter()
                    .all(|&c| c.is_ascii_hexdigit() || c == b':' || c == b'.')
        } else {
            !host.is_empty() && run_len(host, &HOST) == host.len()
        };
        if !host_ok {
            return Err(ParseError::BadUri);
        }
        let mut after = &hostpart[host_end..];
        let mut port = None;
        if let Some(p) = after.strip_prefix(b":") {
            let end = p.iter().position(|&c| c == b';').unwrap_or(p.len());
            let digits = &p[..end];
            if digits.is_empty() || digits.len() > 5 || !digits.iter().all(u8::is_ascii_digit) {
                return Err(ParseError::BadUri);
            }
            let n: u32 = digits.iter().fold(0, |n, &d| n * 10 + u32::from(d - b'0'));
            port = Some(u16::try_from(n).map_err(|_| ParseError::BadUri)?);
            after = &p[end..];
        }
        let params = match after.first() {
            None => b"".as_slice(),
            Some(b';') => &after[1..],
            Some(_) => return Err(ParseError::BadUri),
        };
        Ok(Uri {
            scheme,
            user,
            host,
            port,
            params,
            headers,
        })
    }

    /// `Some(Some(v))` for `;name=v`, `Some(None)` for a flag (`;lr`), `None` when
    /// absent; names compare case-insensitively (RFC 3261 §19.1.4).
    pub fn param(&self, name: &str) -> Option<Option<&'a [u8]>> {
        find_param(self.params, name)
    }

    /// Whether the scheme is `sip` or `sips`.
    pub fn is_sip(&self) -> bool {
        self.scheme.eq_ignore_ascii_case(b"sip") || self.scheme.eq_ignore_ascii_case(b"sips")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_uri_parts() {
        let u = Uri::parse(b"sip:alice:pw@Example.COM:5070;transport=tcp;lr").unwrap();
        assert_eq!(u.user, Some(&b"alice"[..]));
        assert_eq!(u.host, b"Example.COM");
        assert_eq!(u.port, Some(5070));
        assert_eq!(u.param("transport"), Some(Some(&b"tcp"[..])));
        assert_eq!(u.param("LR"), Some(None));
        assert_eq!(u.param("maddr"), None);
    }

    #[test]
    fn ipv6_reference_keeps_brackets() {
        let u = Uri::parse(b"sip:[2001:db8::10]:5070").unwrap();
        assert_eq!(u.host, b"[2001:db8::10]");
        assert_eq!(u.port, Some(5070));
        let u = Uri::parse(b"sip:user@[2001:db8::10]").unwrap();
        assert_eq!(u.port, None);
        assert!(Uri::parse(b"sip:user@[2001:db8::10").is_err());
    }

    #[test]
    fn user_with_semicolons_and_escapes() {
        let u = Uri::parse(b"sip:user;par=u%40example.net@example.com").unwrap();
        assert_eq!(u.user, Some(&b"user;par=u%40example.net"[..]));
        assert_eq!(u.host, b"example.com");
        let u = Uri::parse(b"sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com").unwrap();
        assert_eq!(
            u.user,
            Some(&b"1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"[..])
        );
        assert_eq!(u.headers, b"");
    }

    #[test]
    fn other_schemes_and_headers() {
        let u = Uri::parse(b"tel:+1-212-555-1212;phone-context=x").unwrap();
        assert_eq!(u.host, b"+1-212-555-1212");
        let u = Uri::parse(b"sip:user@example.com?Route=%3Csip:example.com%3E").unwrap();
        assert_eq!(u.headers, b"Route=%3Csip:example.com%3E");
        assert!(Uri::parse(b"<sip:user@example.com>").is_err());
        assert!(Uri::parse(b"sip:user@example.com; lr").is_err());
    }
}
