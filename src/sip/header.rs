//! Header names: the well-known headers the proxy reads or edits, their compact
//! forms (RFC 3261 §7.3.3, RFC 3265 §7.2 `o`/`u`, RFC 3515 `r`, RFC 4028 `x`), and
//! the top-level comma split of list-valued headers (RFC 3261 §7.3.1).

/// The headers the wire layer knows by name. Classified once while parsing so
/// lookups compare a byte, and so compact and long forms are the same header.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum HeaderKind {
    Other,
    Via,
    From,
    To,
    CallId,
    CSeq,
    MaxForwards,
    ContentLength,
    ContentType,
    ContentEncoding,
    Contact,
    Route,
    RecordRoute,
    Event,
    AllowEvents,
    Expires,
    SubscriptionState,
    PAssertedIdentity,
    Supported,
    Subject,
    ReferTo,
    ReferredBy,
    SessionExpires,
    Date,
    Require,
    ProxyRequire,
    Authorization,
    ProxyAuthorization,
    WwwAuthenticate,
    ProxyAuthenticate,
    AcceptContact,
    RejectContact,
    RequestDisposition,
    Identity,
    IdentityInfo,
}

const LONG_NAMES: &[(&str, HeaderKind)] = &[
    ("Via", HeaderKind::Via),
    ("From", HeaderKind::From),
    ("To", HeaderKind::To),
    ("Call-ID", HeaderKind::CallId),
    ("CSeq", HeaderKind::CSeq),
    ("Max-Forwards", HeaderKind::MaxForwards),
    ("Content-Length", HeaderKind::ContentLength),
    ("Content-Type", HeaderKind::ContentType),
    ("Content-Encoding", HeaderKind::ContentEncoding),
    ("Contact", HeaderKind::Contact),
    ("Route", HeaderKind::Route),
    ("Record-Route", HeaderKind::RecordRoute),
    ("Event", HeaderKind::Event),
    ("Allow-Events", HeaderKind::AllowEvents),
    ("Expires", HeaderKind::Expires),
    ("Subscription-State", HeaderKind::SubscriptionState),
    ("P-Asserted-Identity", HeaderKind::PAssertedIdentity),
    ("Supported", HeaderKind::Supported),
    ("Subject", HeaderKind::Subject),
    ("Refer-To", HeaderKind::ReferTo),
    ("Referred-By", HeaderKind::ReferredBy),
    ("Session-Expires", HeaderKind::SessionExpires),
    ("Date", HeaderKind::Date),
    ("Require", HeaderKind::Require),
    ("Proxy-Require", HeaderKind::ProxyRequire),
    ("Authorization", HeaderKind::Authorization),
    ("Proxy-Authorization", HeaderKind::ProxyAuthorization),
    ("WWW-Authenticate", HeaderKind::WwwAuthenticate),
    ("Proxy-Authenticate", HeaderKind::ProxyAuthenticate),
    ("Accept-Contact", HeaderKind::AcceptContact),
    ("Reject-Contact", HeaderKind::RejectContact),
    ("Request-Disposition", HeaderKind::RequestDisposition),
    ("Identity", HeaderKind::Identity),
    ("Identity-Info", HeaderKind::IdentityInfo),
];

impl HeaderKind {
    /// Number of kinds, for per-kind tables.
    pub const COUNT: usize = HeaderKind::IdentityInfo as usize + 1;

    /// Classifies a header name, case-insensitively (RFC 3261 §7.3.1), compact
    /// forms included.
    pub fn classify(name: &[u8]) -> HeaderKind {
        if name.len() == 1 {
            return match name[0].to_ascii_lowercase() {
                b'i' => HeaderKind::CallId,
                b'f' => HeaderKind::From,
                b't' => HeaderKind::To,
                b'v' => HeaderKind::Via,
                b'm' => HeaderKind::Contact,
                b'l' => HeaderKind::ContentLength,
                b'c' => HeaderKind::ContentType,
                b'e' => HeaderKind::ContentEncoding,
                b'k' => HeaderKind::Supported,
                b's' => HeaderKind::Subject,
                b'o' => HeaderKind::Event,
                b'u' => HeaderKind::AllowEvents,
                b'r' => HeaderKind::ReferTo,
                b'b' => HeaderKind::ReferredBy,
                b'x' => HeaderKind::SessionExpires,
                b'a' => HeaderKind::AcceptContact,
                b'j' => HeaderKind::RejectContact,
                b'd' => HeaderKind::RequestDisposition,
                b'y' => HeaderKind::Identity,
                b'n' => HeaderKind::IdentityInfo,
                _ => HeaderKind::Other,
            };
        }
        use HeaderKind as K;
        // The length and the first letter leave at most one candidate, so an
        // unknown name costs one compare at most.
        let Some(&first) = name.first() else {
            return HeaderKind::Other;
        };
        let (long, kind): (&[u8], HeaderKind) = match (name.len(), first | 0x20) {
            (2, b't') => (b"To", K::To),
            (3, b'v') => (b"Via", K::Via),
            (4, b'f') => (b"From", K::From),
            (4, b'c') => (b"CSeq", K::CSeq),
            (4, b'd') => (b"Date", K::Date),
            (5, b'r') => (b"Route", K::Route),
            (5, b'e') => (b"Event", K::Event),
            (7, b'c') => match name[1] | 0x20 {
                b'a' => (b"Call-ID", K::CallId),
                _ => (b"Contact", K::Contact),
            },
            (7, b'e') => (b"Expires", K::Expires),
            (7, b'r') => (b"Require", K::Require),
            (7, b's') => (b"Subject", K::Subject),
            (8, b'r') => (b"Refer-To", K::ReferTo),
            (8, b'i') => (b"Identity", K::Identity),
            (9, b's') => (b"Supported", K::Supported),
            (11, b'r') => (b"Referred-By", K::ReferredBy),
            (12, b'm') => (b"Max-Forwards", K::MaxForwards),
            (12, b'c') => (b"Content-Type", K::ContentType),
            (12, b'r') => (b"Record-Route", K::RecordRoute),
            (12, b'a') => (b"Allow-Events", K::AllowEvents),
            (13, b'a') => (b"Authorization", K::Authorization),
            (13, b'i') => (b"Identity-Info", K::IdentityInfo),
            (13, b'p') => (b"Proxy-Require", K::ProxyRequire),
            (14, b'c') => (b"Content-Length", K::ContentLength),
            (14, b'a') => (b"Accept-Contact", K::AcceptContact),
            (14, b'r') => (b"Reject-Contact", K::RejectContact),
            (15, b's') => (b"Session-Expires", K::SessionExpires),
            (16, b'c') => (b"Content-Encoding", K::ContentEncoding),
            (16, b'w') => (b"WWW-Authenticate", K::WwwAuthenticate),
            (18, b's') => (b"Subscription-State", K::SubscriptionState),
            (18, b'p') => (b"Proxy-Authenticate", K::ProxyAuthenticate),
            (19, b'p') => match name[1] {
                b'-' => (b"P-Asserted-Identity", K::PAssertedIdentity),
                _ => (b"Proxy-Authorization", K::ProxyAuthorization),
            },
            (19, b'r') => (b"Request-Disposition", K::RequestDisposition),
            _ => return HeaderKind::Other,
        };
        if same_name(long, name) {
            kind
        } else {
            HeaderKind::Other
        }
    }

    /// The long name as RFC 3261 spells it; `None` for [`HeaderKind::Other`].
    pub fn long_name(self) -> Option<&'static str> {
        LONG_NAMES
            .iter()
            .find(|(_, k)| *k == self)
            .map(|(name, _)| *name)
    }

    /// Whether several values may share one line separated by commas (RFC 3261
    /// §7.3.1). Headers whose grammar has a free comma (Date, the auth headers,
    /// Subject, name-addrs of From/To) are never split.
    pub fn is_list(self) -> bool {
        !matches!(
            self,
            HeaderKind::From
                | HeaderKind::To
                | HeaderKind::CallId
                | HeaderKind::CSeq
                | HeaderKind::MaxForwards
                | HeaderKind::ContentLength
                | HeaderKind::ContentType
                | HeaderKind::Expires
                | HeaderKind::SubscriptionState
                | HeaderKind::Subject
                | HeaderKind::Date
                | HeaderKind::Authorization
                | HeaderKind::ProxyAuthorization
                | HeaderKind::WwwAuthenticate
                | HeaderKind::ProxyAuthenticate
                | HeaderKind::ReferTo
                | HeaderKind::ReferredBy
                | HeaderKind::SessionExpires
                | HeaderKind::Identity
                | HeaderKind::IdentityInfo
        )
    }
}

/// Case-insensitive equality of a known name (letters and `-`) with an equally
/// long token: OR-ing 0x20 folds case, and no token character other than the
/// letters' own other case maps onto a letter or `-` that way. Compared a word at
/// a time (overlapping words cover lengths that are not a multiple of the width):
/// it runs once per header line.
#[inline]
fn same_name(known: &[u8], name: &[u8]) -> bool {
    let n = name.len();
    if known.len() != n {
        return false;
    }
    let eq = |at: usize, width: usize| folded(known, at, width) == folded(name, at, width);
    match n {
        0 => true,
        1 => known[0] | 0x20 == name[0] | 0x20,
        2..=3 => eq(0, 2) && eq(n - 2, 2),
        4..=7 => eq(0, 4) && eq(n - 4, 4),
        _ => {
            let mut at = 0;
            while at + 8 < n {
                if !eq(at, 8) {
                    return false;
                }
                at += 8;
            }
            eq(n - 8, 8)
        }
    }
}

/// `width` (2, 4 or 8) bytes of `s` from `at`, little-endian, each OR 0x20.
#[inline]
fn folded(s: &[u8], at: usize, width: usize) -> u64 {
    let mut word = [0u8; 8];
    word[..width].copy_from_slice(&s[at..at + width]);
    u64::from_le_bytes(word) | 0x2020_2020_2020_2020
}

/// Index of the first `byte` at or after `from`. Header lines and values are
/// short (~40 bytes), too short for `memchr` to pay its set-up and its byte-wise
/// head and tail per call, so this tests eight bytes per step (SWAR: a byte of
/// `x ^ pattern` is zero exactly where `x` holds `byte`).
#[inline]
pub(crate) fn find_byte(data: &[u8], from: usize, byte: u8) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let pattern = ONES * u64::from(byte);
    let mut i = from;
    while let Some(chunk) = data.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word) ^ pattern;
        // Borrows can set bits only above the lowest zero byte, so the lowest
        // flagged byte is the first match.
        let found = x.wrapping_sub(ONES) & !x & HIGHS;
        if found != 0 {
            return Some(i + (found.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    data.get(i..)?
        .iter()
        .position(|&b| b == byte)
        .map(|p| i + p)
}

/// Linear white space as the parser sees it inside a header value: folding has
/// left CR and LF inside the span, and they count as a space (RFC 3261 §7.3.1).
#[inline]
pub(crate) fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Trims LWS (folding included) from both ends.
pub(crate) fn trim_lws(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if is_lws(*first) {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if is_lws(*last) {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// Offsets `(start, end)` of each top-level comma-separated element of `value`,
/// trimmed; commas inside a quoted string or `<...>` do not split. Empty elements
/// (`a,,b`) are reported as empty ranges so validators can refuse them.
pub(crate) fn split_commas(value: &[u8]) -> CommaSplit<'_> {
    CommaSplit {
        value,
        pos: 0,
        done: false,
    }
}

pub(crate) struct CommaSplit<'a> {
    value: &'a [u8],
    pos: usize,
    done: bool,
}

impl Iterator for CommaSplit<'_> {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        if self.done {
            return None;
        }
        let v = self.value;
        let start = self.pos;
        // Most values hold no comma at all: one memchr instead of the state machine.
        if start == 0 && find_byte(v, 0, b',').is_none() {
            self.done = true;
            let t = trim_lws(v);
            let s = if t.is_empty() {
                v.len()
            } else {
                t.as_ptr() as usize - v.as_ptr() as usize
            };
            return Some((s, s + t.len()));
        }
        let mut i = start;
        let mut in_quote = false;
        let mut in_angle = false;
        while i < v.len() {
            let b = v[i];
            if in_quote {
                if b == b'\\' {
                    i += 1;
                } else if b == b'"' {
                    in_quote = false;
                }
            } else if in_angle {
                if b == b'>' {
                    in_angle = false;
                }
            } else if b == b'"' {
                in_quote = true;
            } else if b == b'<' {
                in_angle = true;
            } else if b == b',' {
                break;
            }
            i += 1;
        }
        let end = i.min(v.len());
        if end >= v.len() {
            self.done = true;
        } else {
            self.pos = end + 1;
        }
        let (mut s, mut e) = (start, end);
        while s < e && is_lws(v[s]) {
            s += 1;
        }
        while e > s && is_lws(v[e - 1]) {
            e -= 1;
        }
        Some((s, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_long_name_classifies_to_its_kind() {
        for &(long, kind) in LONG_NAMES {
            assert_eq!(HeaderKind::classify(long.as_bytes()), kind, "{long}");
            assert!(
                (kind as usize) < HeaderKind::COUNT,
                "{long}: COUNT is stale"
            );
            assert_eq!(
                HeaderKind::classify(long.to_ascii_lowercase().as_bytes()),
                kind,
                "{long}"
            );
        }
    }

    #[test]
    fn names_differing_in_one_byte_are_other_headers() {
        for &(long, _) in LONG_NAMES {
            let mut near = long.as_bytes().to_vec();
            for i in 0..near.len() {
                let keep = near[i];
                near[i] = if keep == b'-' { b'_' } else { b'x' };
                if near[..] != long.as_bytes()[..] {
                    assert_ne!(
                        HeaderKind::classify(&near),
                        HeaderKind::classify(long.as_bytes()),
                        "{}",
                        String::from_utf8_lossy(&near)
                    );
                }
                near[i] = keep;
            }
        }
    }

    #[test]
    fn compact_and_long_forms_are_the_same_header() {
        assert_eq!(HeaderKind::classify(b"v"), HeaderKind::Via);
        assert_eq!(HeaderKind::classify(b"VIA"), HeaderKind::Via);
        assert_eq!(HeaderKind::classify(b"call-id"), HeaderKind::CallId);
        assert_eq!(HeaderKind::classify(b"I"), HeaderKind::CallId);
        assert_eq!(HeaderKind::classify(b"o"), HeaderKind::Event);
        assert_eq!(HeaderKind::classify(b"X-Foo"), HeaderKind::Other);
        assert_eq!(HeaderKind::CallId.long_name(), Some("Call-ID"));
    }

    #[test]
    fn find_byte_agrees_with_a_plain_search() {
        // Neighbours of each searched byte (and the high-bit twin) must not match.
        let data = b"SIP/2.0/UDP a.b:5060;x=\xac\x2b\x2d,\x3b\x3d<\xbc\xba:\x3a\xff,<";
        for byte in [b',', b'<', b':', b'\n', b';', 0xac, 0xff] {
            for from in 0..=data.len() + 1 {
                let want = data
                    .get(from..)
                    .and_then(|s| s.iter().position(|&b| b == byte))
                    .map(|p| from + p);
                assert_eq!(find_byte(data, from, byte), want, "{byte} from {from}");
            }
        }
    }

    #[test]
    fn comma_split_respects_quotes_and_angles() {
        let v = br#""a, b" <sip:x@y;p=1,2>, <sip:z>,,last "#;
        let parts: Vec<&[u8]> = split_commas(v).map(|(s, e)| &v[s..e]).collect();
        assert_eq!(
            parts,
            vec![
                &br#""a, b" <sip:x@y;p=1,2>"#[..],
                &b"<sip:z>"[..],
                &b""[..],
                &b"last"[..]
            ]
        );
    }
}
