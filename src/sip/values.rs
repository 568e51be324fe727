//! Grammar of the header values the proxy reads: name-addr / addr-spec with
//! parameters (RFC 3261 §20.10, §25.1), Via (§20.42), CSeq (§20.16), Event and
//! Subscription-State (RFC 6665 §8.2). Every parser here treats folding (CR/LF
//! inside a value) as white space and returns `None` on malformed input.

use std::borrow::Cow;

use super::header::{find_byte, is_lws, trim_lws};

const fn token_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        i += 1;
    }
    t
}

pub(crate) const TOKEN: [bool; 256] = token_table();

const fn param_char_table() -> [bool; 256] {
    let mut t = token_table();
    // host / URI paramchar extras seen in Via and Contact parameter values
    let extra = b":/[]&$@?";
    let mut i = 0;
    while i < extra.len() {
        t[extra[i] as usize] = true;
        i += 1;
    }
    t
}

const PARAM_CHAR: [bool; 256] = param_char_table();

/// Bytes that may stand inside `<...>` of a name-addr: anything but white space
/// (RFC 4475 §3.1.2.14), `<`, `"` and the closing `>`.
pub(super) const IN_ANGLE: [bool; 256] = {
    let mut t = [true; 256];
    let stops = b" \t\r\n<>\"";
    let mut i = 0;
    while i < stops.len() {
        t[stops[i] as usize] = false;
        i += 1;
    }
    t
};

/// Characters of a host name or IPv4 address as Via sent-by and SIP URIs take
/// them (RFC 3261 §25.1 `hostname`, with `_` tolerated).
pub(crate) const HOST: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_');
        i += 1;
    }
    t
};

/// Length of the run at the start of `s` of bytes that `class` admits.
///
/// Names, parameter values and URIs run 5–40 bytes and are scanned at parse
/// time for every header; testing four bytes per step needs one loop branch and
/// one bounds check per four bytes instead of per byte.
#[inline]
pub(crate) fn run_len(s: &[u8], class: &[bool; 256]) -> usize {
    let mut i = 0;
    while let Some(q) = s.get(i..i + 4) {
        let all = class[usize::from(q[0])]
            & class[usize::from(q[1])]
            & class[usize::from(q[2])]
            & class[usize::from(q[3])];
        if !all {
            break;
        }
        i += 4;
    }
    while let Some(&b) = s.get(i) {
        if !class[usize::from(b)] {
            break;
        }
        i += 1;
    }
    i
}

/// RFC 3261 §25.1 `token` characters.
#[inline]
pub(crate) fn is_token(b: u8) -> bool {
    TOKEN[b as usize]
}

pub(crate) fn is_token_str(s: &[u8]) -> bool {
    !s.is_empty() && run_len(s, &TOKEN) == s.len()
}

fn skip_lws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && is_lws(s[i]) {
        i += 1;
    }
    i
}

/// Replaces each folding run (CR/LF followed by WSP) with one space.
pub(crate) fn unfold(v: &[u8]) -> Cow<'_, [u8]> {
    if !v.iter().any(|&b| b == b'\r' || b == b'\n') {
        return Cow::Borrowed(v);
    }
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'\r' || v[i] == b'\n' {
            while i < v.len() && is_lws(v[i]) {
                i += 1;
            }
            if out.last() != Some(&b' ') {
                out.push(b' ');
            }
        } else {
            out.push(v[i]);
            i += 1;
        }
    }
    Cow::Owned(out)
}

/// A decimal that fits in 32 bits; `None` for anything else (signs, overflow).
pub(crate) fn parse_u32(v: &[u8]) -> Option<u32> {
    let v = trim_lws(v);
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut n: u32 = 0;
    for &d in v {
        n = n.checked_mul(10)?.checked_add(u32::from(d - b'0'))?;
    }
    Some(n)
}

/// `CSeq = 1*DIGIT LWS Method`; the number must be below 2**31 (RFC 3261 §8.1.1.5).
pub(crate) fn parse_cseq(v: &[u8]) -> Option<(u32, &[u8])> {
    let v = trim_lws(v);
    let digits = v.iter().take_while(|b| b.is_ascii_digit()).count();
    let n = parse_u32(&v[..digits])?;
    if n >= 1 << 31 {
        return None;
    }
    let rest = &v[digits..];
    if !rest.first().is_some_and(|&b| is_lws(b)) {
        return None;
    }
    let method = trim_lws(rest);
    is_token_str(method).then_some((n, method))
}

/// Splits `;`-separated parameters (`params` is the text after the first `;`)
/// into `(name, value)`, trimmed, `value` `None` for a flag. No validation.
struct Params<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> Iterator for Params<'a> {
    type Item = (&'a [u8], Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        let s = self.rest?;
        // Split at the next `;` outside a quoted string.
        let mut i = 0;
        let mut in_quote = false;
        while i < s.len() {
            match s[i] {
                b'\\' if in_quote => i += 1,
                b'"' => in_quote = !in_quote,
                b';' if !in_quote => break,
                _ => {}
            }
            i += 1;
        }
        let item = if i < s.len() {
            self.rest = Some(&s[i + 1..]);
            &s[..i]
        } else {
            self.rest = None;
            s
        };
        let item = trim_lws(item);
        Some(match item.iter().position(|&b| b == b'=') {
            Some(eq) => (trim_lws(&item[..eq]), Some(trim_lws(&item[eq + 1..]))),
            None => (item, None),
        })
    }
}

fn params_iter(params: &[u8]) -> Params<'_> {
    Params { rest: Some(params) }
}

/// `Some(Some(value))`, `Some(None)` for a flag parameter, `None` when absent.
/// Names compare case-insensitively (RFC 3261 §19.1.4).
pub(crate) fn param<'a>(params: &'a [u8], name: &str) -> Option<Option<&'a [u8]>> {
    if params.is_empty() {
        return None;
    }
    params_iter(params)
        .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| v)
}

/// Given a slice starting with `"`, the index just past the closing quote.
fn quoted_end(s: &[u8]) -> Option<usize> {
    let mut i = 1;
    while i < s.len() {
        match s[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// After optional LWS, either nothing or `;params`, every parameter well-formed
/// (`token [ "=" ( token / host / quoted-string ) ]`, LWS allowed around `;` and
/// `=`); `seen` is called with each one, so one pass validates and extracts.
/// Returns the params (after the first `;`).
fn tail_params<'a>(
    rest: &'a [u8],
    mut seen: impl FnMut(&'a [u8], Option<&'a [u8]>),
) -> Option<&'a [u8]> {
    let rest = trim_lws(rest);
    if rest.is_empty() {
        return Some(b"");
    }
    let params = rest.strip_prefix(b";")?;
    let p = params;
    let mut i = 0;
    loop {
        i = skip_lws(p, i);
        let ns = i;
        i += run_len(&p[i..], &TOKEN);
        if i == ns {
            return None;
        }
        let name = &p[ns..i];
        i = skip_lws(p, i);
        let mut value = None;
        if p.get(i) == Some(&b'=') {
            i = skip_lws(p, i + 1);
            let vs = i;
            match p.get(i) {
                Some(b'"') => i += quoted_end(&p[i..])?,
                Some(b'[') => {
                    i += 1;
                    while i < p.len() && (p[i].is_ascii_hexdigit() || p[i] == b':' || p[i] == b'.')
                    {
                        i += 1;
                    }
                    if p.get(i) != Some(&b']') {
                        return None;
                    }
                    i += 1;
                }
                _ => i += run_len(&p[i..], &PARAM_CHAR),
            }
            if i == vs {
                return None;
            }
            value = Some(&p[vs..i]);
            i = skip_lws(p, i);
        }
        seen(name, value);
        match p.get(i) {
            None => return Some(params),
            Some(b';') => i += 1,
            Some(_) => return None,
        }
    }
}

/// `name-addr` or `addr-spec` with header parameters, as in From, To, Contact,
/// Route, Record-Route, P-Asserted-Identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// Display name as written: without the quotes when quoted, escapes kept.
    pub display: Option<&'a [u8]>,
    pub uri: &'a [u8],
    pub tag: Option<&'a [u8]>,
    /// Header parameters after the URI, without the leading `;`.
    pub params: &'a [u8],
}

impl<'a> NameAddr<'a> {
    /// Parses one value. Refuses what RFC 4475 §3.1.2 calls invalid: an unterminated
    /// quoted display name (§3.1.2.6), an unquoted display name with non-token
    /// characters (§3.1.2.15), white space inside `<...>` (§3.1.2.14), an addr-spec
    /// with `,` `;` or `?` in its URI outside `<>` (§3.1.2.13, RFC 3261 §20),
    /// empty parameters (§3.1.2.1).
    pub fn parse(v: &'a [u8]) -> Option<NameAddr<'a>> {
        let v = trim_lws(v);
        if v.is_empty() {
            return None;
        }
        let (display, after_display) = if v[0] == b'"' {
            let end = quoted_end(v)?;
            let rest = &v[end..];
            let lt = skip_lws(rest, 0);
            if rest.get(lt) != Some(&b'<') {
                return None;
            }
            (Some(&v[1..end - 1]), Some(&rest[lt..]))
        } else if let Some(lt) = v.iter().position(|&b| b == b'<') {
            let d = trim_lws(&v[..lt]);
            if !d
                .split(|&b| is_lws(b))
                .all(|w| w.is_empty() || is_token_str(w))
            {
                return None;
            }
            ((!d.is_empty()).then_some(d), Some(&v[lt..]))
        } else {
            (None, None)
        };
        let mut tag = None;
        let mut see_tag = |n: &'a [u8], v: Option<&'a [u8]>| {
            if tag.is_none() && n.eq_ignore_ascii_case(b"tag") {
                tag = v;
            }
        };
        let (uri, params) = match after_display {
            Some(angle) => {
                // One pass to the closing `>`, refusing on the way what may not
                // stand inside `<...>`: white space (§3.1.2.14), `<` and `"`.
                let gt = 1 + run_len(angle.get(1..)?, &IN_ANGLE);
                if angle.get(gt)? != &b'>' {
                    return None;
                }
                let uri = &angle[1..gt];
                (uri, tail_params(&angle[gt + 1..], &mut see_tag)?)
            }
            None => {
                let semi = v.iter().position(|&b| b == b';').unwrap_or(v.len());
                let uri = trim_lws(&v[..semi]);
                if uri
                    .iter()
                    .any(|&b| matches!(b, b',' | b'?' | b'<' | b'"') || is_lws(b))
                {
                    return None;
                }
                (uri, tail_params(&v[semi..], &mut see_tag)?)
            }
        };
        if uri.is_empty() || find_byte(uri, 0, b':').is_none() {
            return None;
        }
        Some(NameAddr {
            display,
            uri,
            tag,
            params,
        })
    }

    pub fn param(&self, name: &str) -> Option<Option<&'a [u8]>> {
        param(self.params, name)
    }
}

/// One Via value (RFC 3261 §20.42).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Via<'a> {
    /// `UDP`, `TCP`, `TLS`, `SCTP`, `WS`, or an extension token, as written.
    pub transport: &'a [u8],
    /// Host of sent-by; an IPv6 reference keeps its brackets (RFC 5118 §4.5).
    pub host: &'a [u8],
    pub port: Option<u16>,
    pub branch: Option<&'a [u8]>,
    pub received: Option<&'a [u8]>,
    /// `Some(None)`: bare `rport` (RFC 3581 §3 asks for it); `Some(Some(p))`: filled.
    pub rport: Option<Option<u16>>,
    /// Parameters after sent-by, without the leading `;`.
    pub params: &'a [u8],
}

impl<'a> Via<'a> {
    /// Parses `SIP / 2.0 / transport LWS sent-by *( ; via-params )`, LWS allowed
    /// around the slashes and the colon (RFC 4475 §3.1.1.1).
    pub fn parse(v: &'a [u8]) -> Option<Via<'a>> {
        let v = trim_lws(v);
        let tok = |i: usize| {
            let s = skip_lws(v, i);
            let e = s + run_len(&v[s..], &TOKEN);
            (s < e).then_some((s, e))
        };
        let slash = |i: usize| {
            let s = skip_lws(v, i);
            (v.get(s) == Some(&b'/')).then_some(s + 1)
        };
        let (_, e) = tok(0)?;
        let i = slash(e)?;
        let (_, e) = tok(i)?;
        let i = slash(e)?;
        let (ts, te) = tok(i)?;
        let transport = &v[ts..te];
        if !v.get(te).is_some_and(|&b| is_lws(b)) {
            return None;
        }
        let hs = skip_lws(v, te);
        let he = if v.get(hs) == Some(&b'[') {
            hs + v[hs..].iter().position(|&b| b == b']')? + 1
        } else {
            hs + run_len(&v[hs..], &HOST)
        };
        if he == hs {
            return None;
        }
        let host = &v[hs..he];
        let mut i = skip_lws(v, he);
        let mut port = None;
        if v.get(i) == Some(&b':') {
            let ps = skip_lws(v, i + 1);
            let pe = ps + v[ps..].iter().take_while(|b| b.is_ascii_digit()).count();
            let p = parse_u32(&v[ps..pe])?;
            port = Some(u16::try_from(p).ok()?);
            i = pe;
        }
        let (mut branch, mut received, mut rport_raw) = (None, None, None);
        let params = tail_params(&v[i..], |n, val| {
            if n.eq_ignore_ascii_case(b"branch") {
                branch = branch.or(Some(val));
            } else if n.eq_ignore_ascii_case(b"received") {
                received = received.or(Some(val));
            } else if n.eq_ignore_ascii_case(b"rport") {
                rport_raw = rport_raw.or(Some(val));
            }
        })?;
        let rport = match rport_raw {
            None => None,
            Some(None) => Some(None),
            Some(Some(p)) => Some(Some(u16::try_from(parse_u32(p)?).ok()?)),
        };
        Some(Via {
            transport,
            host,
            port,
            branch: branch.flatten(),
            received: received.flatten(),
            rport,
            params,
        })
    }

    pub fn param(&self, name: &str) -> Option<Option<&'a [u8]>> {
        param(self.params, name)
    }
}

/// Event (RFC 6665 §8.2.1): package and the `id` parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event<'a> {
    /// `presence`, `presence.winfo`, `message-summary`, ... (token, template dotted).
    pub package: &'a [u8],
    pub id: Option<&'a [u8]>,
    pub params: &'a [u8],
}

impl<'a> Event<'a> {
    pub fn parse(v: &'a [u8]) -> Option<Event<'a>> {
        let v = trim_lws(v);
        let semi = v.iter().position(|&b| b == b';').unwrap_or(v.len());
        let package = trim_lws(&v[..semi]);
        if !is_token_str(package) {
            return None;
        }
        let mut id = None;
        let params = tail_params(&v[semi..], |n, val| {
            if id.is_none() && n.eq_ignore_ascii_case(b"id") {
                id = val;
            }
        })?;
        Some(Event {
            package,
            id,
            params,
        })
    }
}

/// Subscription-State (RFC 6665 §8.2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubscriptionState<'a> {
    /// `active`, `pending`, `terminated` or an extension token.
    pub state: &'a [u8],
    pub reason: Option<&'a [u8]>,
    pub expires: Option<u32>,
}

impl<'a> SubscriptionState<'a> {
    pub fn parse(v: &'a [u8]) -> Option<SubscriptionState<'a>> {
        let v = trim_lws(v);
        let semi = v.iter().position(|&b| b == b';').unwrap_or(v.len());
        let state = trim_lws(&v[..semi]);
        if !is_token_str(state) {
            return None;
        }
        let (mut reason, mut expires) = (None, None);
        tail_params(&v[semi..], |n, val| {
            if n.eq_ignore_ascii_case(b"reason") {
                reason = reason.or(val);
            } else if n.eq_ignore_ascii_case(b"expires") {
                expires = expires.or(val);
            }
        })?;
        Some(SubscriptionState {
            state,
            reason,
            expires: expires.and_then(parse_u32),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse(
            br#""J Rosenberg \\\""       <sip:jdrosen@example.com>  ;  tag = 98asjd8"#,
        )
        .unwrap();
        assert_eq!(n.uri, b"sip:jdrosen@example.com");
        assert_eq!(n.tag, Some(&b"98asjd8"[..]));
        let n = NameAddr::parse(b"sip:caller@example.net;tag=134161461246").unwrap();
        assert_eq!(n.uri, b"sip:caller@example.net");
        assert_eq!(n.tag, Some(&b"134161461246"[..]));
        let n = NameAddr::parse(b"Alice <sips:alice@[2001:db8::10]:5061>").unwrap();
        assert_eq!(n.display, Some(&b"Alice"[..]));
        assert_eq!(n.uri, b"sips:alice@[2001:db8::10]:5061");
        let n = NameAddr::parse(b"\"caller\"<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(n.display, Some(&b"caller"[..]));
    }

    #[test]
    fn name_addr_refuses_rfc4475_invalid_forms() {
        assert!(NameAddr::parse(b"\"Mr. J. User <sip:j.user@example.com>").is_none());
        assert!(NameAddr::parse(b"Bell, Alexander <sip:a.g.bell@example.com>;tag=43").is_none());
        assert!(NameAddr::parse(b"\"Watson, Thomas\" < sip:t.watson@example.org >").is_none());
        assert!(NameAddr::parse(b"sip:user@example.com?Route=%3Csip:sip.example.com%3E").is_none());
        assert!(NameAddr::parse(b"\"Joe\" <sip:joe@example.org>;;;;").is_none());
    }

    #[test]
    fn via_with_lws_and_params() {
        let v = Via::parse(b"SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(v.transport, b"UDP");
        assert_eq!(v.host, b"192.0.2.2");
        assert_eq!(v.branch, Some(&b"390skdjuw"[..]));
        let v = Via::parse(
            b"SIP/2.0/TCP [2001:db8::9:1]:5070;branch=z9hG4bKas;rport;received=[2001:db8::9:255]",
        )
        .unwrap();
        assert_eq!(v.host, b"[2001:db8::9:1]");
        assert_eq!(v.port, Some(5070));
        assert_eq!(v.rport, Some(None));
        assert_eq!(v.received, Some(&b"[2001:db8::9:255]"[..]));
        let v = Via::parse(b"SIP/2.0/UDP 10.0.0.1:5060;rport=5061").unwrap();
        assert_eq!(v.rport, Some(Some(5061)));
        assert!(Via::parse(b"SIP/2.0/UDP 192.0.2.15;;").is_none());
        assert!(Via::parse(b"SIP/2.0/UDP").is_none());
        assert!(Via::parse(b"SIP/2.0/UDP host:99999").is_none());
    }

    #[test]
    fn cseq_event_and_state() {
        assert_eq!(parse_cseq(b"0009\r\n  INVITE"), Some((9, &b"INVITE"[..])));
        assert_eq!(parse_cseq(b"36893488147419103232 REGISTER"), None);
        assert_eq!(parse_cseq(b"2147483648 INVITE"), None);
        let e = Event::parse(b"presence;id=7").unwrap();
        assert_eq!((e.package, e.id), (&b"presence"[..], Some(&b"7"[..])));
        let s = SubscriptionState::parse(b"terminated;reason=rejected").unwrap();
        assert_eq!(s.state, b"terminated");
        assert_eq!(s.reason, Some(&b"rejected"[..]));
        let s = SubscriptionState::parse(b"active;expires=600").unwrap();
        assert_eq!(s.expires, Some(600));
        assert_eq!(unfold(b"a\r\n  b").as_ref(), b"a b");
    }

    #[test]
    fn run_len_agrees_with_a_plain_scan() {
        let text = b"branch=z9hG4bK.x;lr <sip:a@b> \"q\" [::1]:5060\r\n\t";
        for class in [&TOKEN, &PARAM_CHAR, &IN_ANGLE, &HOST] {
            for start in 0..text.len() {
                for end in start..=text.len() {
                    let s = &text[start..end];
                    let want = s.iter().take_while(|&&b| class[b as usize]).count();
                    assert_eq!(run_len(s, class), want, "{:?}", String::from_utf8_lossy(s));
                }
            }
        }
    }
}
