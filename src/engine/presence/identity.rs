//! Who a request really comes from (DESIGN.md "Identity"): a policy is only as good
//! as the watcher's identity, and From can be forged.
//!
//! In order: P-Asserted-Identity from a trusted peer (RFC 3325 §9.1; the header is
//! stripped when anyone else sends it); the AoR the same flow registered through the
//! proxy, the upstream's 2xx to that REGISTER being the proof; the From AoR only when
//! `trust_from` is on; otherwise `anonymous@anonymous.invalid` (RFC 3323), an
//! external party.

use std::net::SocketAddr;

use bytes::Bytes;
use dashmap::DashMap;

use crate::engine::{ConnId, Transport};
use crate::policy::Aor;

/// A flow (RFC 5626 §3): the UDP source address and port, or the TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flow {
    Udp(SocketAddr),
    Tcp(ConnId),
    /// A stream message whose connection id the driver did not give.
    Stream(SocketAddr),
}

impl Flow {
    pub fn of(source: SocketAddr, transport: Transport, conn: Option<ConnId>) -> Flow {
        match (transport, conn) {
            (Transport::Udp, _) => Flow::Udp(source),
            (Transport::Tcp, Some(c)) => Flow::Tcp(c),
            (Transport::Tcp, None) => Flow::Stream(source),
        }
    }
}

/// Which source the identity came from (logged, and reported by the replay).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentitySource {
    Asserted,
    Registered,
    From,
    Anonymous,
}

impl IdentitySource {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentitySource::Asserted => "p-asserted-identity",
            IdentitySource::Registered => "registered-flow",
            IdentitySource::From => "from",
            IdentitySource::Anonymous => "anonymous",
        }
    }
}

/// Registration seen going upstream, waiting for its final response.
#[derive(Debug, Clone)]
struct PendingRegister {
    flow: Flow,
    aor: Aor,
    /// The REGISTER's Contact URI: the binding whose expiry the 2xx grants this flow.
    contact: Option<Box<[u8]>>,
    seen_ms: u64,
}

#[derive(Debug, Clone)]
struct Binding {
    aor: Aor,
    until_ms: u64,
}

/// How long a REGISTER waits for its response before it is forgotten (Timer F).
const REGISTER_WAIT_MS: u64 = 32_000;
/// RFC 3261 §10.2.1.1: the registrar's default when no expiry is given.
const DEFAULT_REGISTER_S: u64 = 3_600;

/// The identities the proxy can vouch for.
#[derive(Debug)]
pub struct Identities {
    trust_from: bool,
    bindings: DashMap<Flow, Binding, ahash::RandomState>,
    registers: DashMap<(Bytes, u32), PendingRegister, ahash::RandomState>,
}

impl Identities {
    pub fn new(trust_from: bool) -> Self {
        Identities {
            trust_from,
            bindings: DashMap::default(),
            registers: DashMap::default(),
        }
    }

    /// Notes a REGISTER from `flow` for `aor` on its way upstream.
    pub fn register_sent(&self, call_id: &[u8], cseq: u32, flow: Flow, aor: Aor, now_ms: u64) {
        self.register_sent_for(call_id, cseq, flow, aor, None, now_ms);
    }

    /// [`Identities::register_sent`] with the REGISTER's Contact URI, whose own
    /// binding in the 2xx gives the flow its expiry.
    pub fn register_sent_for(
        &self,
        call_id: &[u8],
        cseq: u32,
        flow: Flow,
        aor: Aor,
        contact: Option<&[u8]>,
        now_ms: u64,
    ) {
        if self.registers.len() > 10_000 {
            self.registers
                .retain(|_, r| now_ms.saturating_sub(r.seen_ms) < REGISTER_WAIT_MS);
        }
        self.registers.insert(
            (Bytes::copy_from_slice(call_id), cseq),
            PendingRegister {
                flow,
                aor,
                contact: contact.map(Box::from),
                seen_ms: now_ms,
            },
        );
    }

    /// The upstream's final response to a REGISTER: a 2xx binds (or, with expiry 0,
    /// unbinds) the flow. `expires_s` is what the registrar granted, if it said.
    pub fn register_answered(
        &self,
        call_id: &[u8],
        cseq: u32,
        status: u16,
        expires_s: Option<u32>,
        now_ms: u64,
    ) {
        self.register_answered_with(call_id, cseq, status, |_| expires_s, now_ms);
    }

    /// [`Identities::register_answered`] where the expiry depends on the REGISTER's
    /// Contact: `expires_s` gets it (when one was noted) and reads the 2xx.
    pub fn register_answered_with(
        &self,
        call_id: &[u8],
        cseq: u32,
        status: u16,
        expires_s: impl FnOnce(Option<&[u8]>) -> Option<u32>,
        now_ms: u64,
    ) {
        let Some((_, reg)) = self
            .registers
            .remove(&(Bytes::copy_from_slice(call_id), cseq))
        else {
            return;
        };
        if !(200..300).contains(&status) {
            return;
        }
        let secs = expires_s(reg.contact.as_deref()).map_or(DEFAULT_REGISTER_S, u64::from);
        if secs == 0 {
            self.bindings.remove_if(&reg.flow, |_, b| b.aor == reg.aor);
            tracing::debug!(aor = %reg.aor, "flow unregistered");
        } else {
            tracing::debug!(aor = %reg.aor, flow = ?reg.flow, secs, "flow registered");
            self.bindings.insert(
                reg.flow,
                Binding {
                    aor: reg.aor,
                    until_ms: now_ms + secs * 1000,
                },
            );
        }
    }

    /// A TCP connection closed: its registration proves nothing any more.
    pub fn flow_closed(&self, flow: Flow) {
        self.bindings.remove(&flow);
    }

    /// The AoR registered from `flow`, if the registration is still current.
    pub fn registered(&self, flow: Flow, now_ms: u64) -> Option<Aor> {
        let b = self.bindings.get(&flow)?;
        (b.until_ms > now_ms).then(|| b.aor.clone())
    }

    /// The requester's identity. `asserted` is the P-Asserted-Identity AoR, believed
    /// only when `trusted_source` (RFC 3325 §5: the sender is in the trust domain);
    /// `from` is the From AoR.
    pub fn resolve(
        &self,
        trusted_source: bool,
        flow: Flow,
        asserted: Option<Aor>,
        from: Option<Aor>,
        now_ms: u64,
    ) -> (Aor, IdentitySource) {
        if let Some(a) = asserted.filter(|_| trusted_source) {
            return (a, IdentitySource::Asserted);
        }
        if let Some(a) = self.registered(flow, now_ms) {
            return (a, IdentitySource::Registered);
        }
        match from {
            Some(f) if self.trust_from => (f, IdentitySource::From),
            _ => (Aor::anonymous(), IdentitySource::Anonymous),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aor(s: &str) -> Aor {
        Aor::parse(s).unwrap()
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn order_of_sources() {
        let ids = Identities::new(false);
        let phone = addr("127.0.0.1:5062");
        let flow = Flow::Udp(phone);
        // Nothing known: anonymous, whatever From says.
        let (w, s) = ids.resolve(false, flow, None, Some(aor("boss@example.com")), 0);
        assert_eq!(
            (w.as_str(), s),
            ("anonymous@anonymous.invalid", IdentitySource::Anonymous)
        );
        // A PAI from an untrusted phone is ignored.
        let (_, s) = ids.resolve(false, flow, Some(aor("boss@example.com")), None, 0);
        assert_eq!(s, IdentitySource::Anonymous);
        // Registered flow.
        ids.register_sent(b"reg-1", 1, flow, aor("bob@example.com"), 0);
        ids.register_answered(b"reg-1", 1, 200, Some(60), 10);
        let (w, s) = ids.resolve(false, flow, None, Some(aor("boss@example.com")), 20);
        assert_eq!(
            (w.as_str(), s),
            ("bob@example.com", IdentitySource::Registered)
        );
        // Expired registration proves nothing.
        let (_, s) = ids.resolve(false, flow, None, None, 60_011);
        assert_eq!(s, IdentitySource::Anonymous);
        // Trusted peer's PAI wins.
        let (w, s) = ids.resolve(
            true,
            Flow::Udp(addr("127.0.0.9:5070")),
            Some(aor("carol@example.com")),
            None,
            0,
        );
        assert_eq!(
            (w.as_str(), s),
            ("carol@example.com", IdentitySource::Asserted)
        );
    }

    #[test]
    fn failed_register_binds_nothing_and_zero_expiry_unbinds() {
        let ids = Identities::new(false);
        let flow = Flow::Tcp(ConnId(4));
        ids.register_sent(b"r", 1, flow, aor("bob@example.com"), 0);
        ids.register_answered(b"r", 1, 401, None, 1);
        assert_eq!(ids.registered(flow, 2), None);
        ids.register_sent(b"r", 2, flow, aor("bob@example.com"), 0);
        ids.register_answered(b"r", 2, 200, None, 1);
        assert_eq!(
            ids.registered(flow, 2).map(|a| a.to_string()),
            Some("bob@example.com".into())
        );
        ids.register_sent(b"r", 3, flow, aor("bob@example.com"), 5);
        ids.register_answered(b"r", 3, 200, Some(0), 6);
        assert_eq!(ids.registered(flow, 7), None);
    }

    #[test]
    fn trust_from_only_when_configured() {
        let ids = Identities::new(true);
        let p = addr("127.0.0.1:1");
        let (w, s) = ids.resolve(false, Flow::Udp(p), None, Some(aor("x@example.com")), 0);
        assert_eq!((w.as_str(), s), ("x@example.com", IdentitySource::From));
    }
}
