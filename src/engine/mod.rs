//! The protocol engine: routing (RFC 3261 §16, stateless with dialog awareness)
//! and presence enforcement. Sans-IO in the manner of `quinn-proto` and `str0m`:
//! it owns no socket, spawns no task and reads no clock. Input is a [`Received`]
//! message with its source and the time; output is [`Transmit`]s pushed into the
//! caller's buffer, plus the next deadline from [`Engine::poll_timeout`].
//!
//! The live driver, the pcap replay and the tests all run this same engine.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

use crate::config::PeerSpec;
use crate::sip::{self, Limits, Message, Method};
use crate::store::Store;

/// Transport protocol of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
}

/// Shards of the maps that grow with the number of subscriptions (dialogs, their
/// owners, phone flows). A hash table grows by rehashing everything in it at once,
/// under its shard's lock, on the packet path. DashMap's default is 4 × CPUs, so 4
/// when the proxy is pinned to one core: 72 000 dialog-sized inserts then had 23
/// inserts over 50 µs, the worst 560–680 µs; with 64 shards the worst was
/// 80–90 µs (a scratch program timing each `insert`, pinned, two runs).
pub(crate) const GROWING_MAP_SHARDS: usize = 64;

/// A driver's handle for one TCP connection, so replies and requests for a phone
/// reuse the connection it opened (RFC 3261 §18.2.2, RFC 5923 reuse).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(pub u64);

/// One whole SIP message as the driver received it (a UDP datagram, or one framed
/// message from a TCP stream).
#[derive(Debug, Clone)]
pub struct Received {
    pub data: Bytes,
    pub source: SocketAddr,
    /// The local address it arrived on.
    pub local: SocketAddr,
    pub transport: Transport,
    /// The TCP connection it came on.
    pub conn: Option<ConnId>,
}

/// One message the driver must send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub data: Bytes,
    pub destination: SocketAddr,
    pub transport: Transport,
    /// Send on this TCP connection when it is still open; otherwise (or when
    /// `None` over TCP) the driver opens or reuses one to `destination`.
    pub conn: Option<ConnId>,
}

pub mod metrics;
mod outcome;
pub mod presence;
pub mod routing;

pub use metrics::{DropReason, Metrics, Refusal};
pub use outcome::{Direction, Handled, Outcome};
pub use routing::{NextHop, Router};

/// What the engine needs to know about its place in the network and its policy
/// switches. The drivers build it from the configuration file (`cli::run`) or
/// from the replay's options.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where phone requests go.
    pub upstream: SocketAddr,
    pub upstream_transport: Transport,
    /// Other addresses the upstream sends from (cluster nodes; a bare IP covers
    /// its TCP connections from any port).
    pub upstream_peers: Vec<PeerSpec>,
    /// Our listen addresses (as bound, so port 0 is resolved): recognising our own
    /// Via and Route, and writing them.
    pub local: Vec<SocketAddr>,
    /// Host written into Via and Record-Route instead of the listen IP.
    pub advertised_host: Option<String>,
    pub record_route_invite: bool,
    /// 480 or 403: the answer to a MESSAGE the policy refuses.
    pub message_block_status: u16,
    /// Peers whose P-Asserted-Identity is believed (RFC 3325).
    pub trusted_peers: Vec<PeerSpec>,
    /// Believe the From header as the watcher's identity (labs only).
    pub trust_from: bool,
    pub limits: Limits,
}

impl EngineConfig {
    /// A configuration with the defaults of the configuration file for everything
    /// but the addresses.
    pub fn new(
        upstream: SocketAddr,
        upstream_transport: Transport,
        local: Vec<SocketAddr>,
    ) -> Self {
        EngineConfig {
            upstream,
            upstream_transport,
            upstream_peers: Vec::new(),
            local,
            advertised_host: None,
            record_route_invite: false,
            message_block_status: 480,
            trusted_peers: Vec::new(),
            trust_from: false,
            limits: Limits::default(),
        }
    }
}

/// The protocol engine. All methods take `&self` (interior maps), so the drivers
/// of every socket share one `Arc<Engine>`.
pub struct Engine {
    router: Router,
    presence: presence::Presence,
    store: Arc<dyn Store>,
    metrics: Metrics,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("router", &self.router)
            .finish_non_exhaustive()
    }
}

impl Engine {
    pub fn new(config: EngineConfig, store: Arc<dyn Store>) -> Self {
        let trusted = config.trusted_peers.clone();
        let presence = presence::Presence::new(
            presence::PresenceConfig {
                message_block_status: config.message_block_status,
                trust_from: config.trust_from,
                trusted_peer: Arc::new(move |a| trusted.iter().any(|p| p.matches(a))),
                limits: config.limits,
                ..presence::PresenceConfig::default()
            },
            store.clone(),
        );
        Engine {
            router: Router::new(config),
            presence,
            store,
            metrics: Metrics::default(),
        }
    }

    pub fn config(&self) -> &EngineConfig {
        self.router.config()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Handles one received message, pushing what must be sent into `out`, and
    /// says what it did.
    pub fn handle(&self, now_ms: u64, mut rx: Received, out: &mut Vec<Transmit>) -> Outcome {
        let direction = self.router.direction_of(&rx);
        // Parsed in place: a returned `Result<Message, _>` would be copied here.
        // The bytes move into the message (a clone of a Vec-backed `Bytes`
        // allocates); from here on they are `msg.raw()`, even when parsing fails.
        let mut msg = sip::Message::empty();
        let data = std::mem::take(&mut rx.data);
        if let Err(e) = sip::parse_into(data, &self.config().limits, &mut msg) {
            return self.malformed(&rx, msg.raw(), direction, &e, out);
        }
        // Every message is classified here, once, before routing: the place where
        // presence enforcement looks at SUBSCRIBE / NOTIFY / MESSAGE and their
        // responses and may answer, rewrite or swallow them.
        if msg.is_request() {
            self.request(now_ms, &rx, &msg, direction, out)
        } else {
            self.response(now_ms, &rx, &msg, direction, out)
        }
    }

    /// The next time [`Engine::handle_timeout`] wants to run (unix ms); `None`:
    /// nothing scheduled. Routing is stateless; the timers are presence
    /// enforcement's (retransmissions, pacing, expiry, pending timeouts).
    pub fn poll_timeout(&self) -> Option<u64> {
        self.presence.poll_timeout()
    }

    /// Runs what is due at `now_ms` (retransmissions, expiries).
    pub fn handle_timeout(&self, now_ms: u64, out: &mut Vec<Transmit>) {
        self.presence.handle_timeout(now_ms, out);
    }

    /// Writes the contacts learned since the last call (one store transaction and
    /// flush); blocks on the store, so drivers call it off the packet path.
    pub fn apply_learned(&self) {
        self.presence.apply_learned();
    }

    /// Whether [`Engine::write_behind`] has work.
    pub fn write_behind_waiting(&self) -> bool {
        self.presence.learned_waiting() || self.store.deferred_waiting()
    }

    /// The store work a live driver does after the answers: the learned contacts
    /// ([`Engine::apply_learned`]), then a flush of the writes committed without
    /// one ([`Store::flush_deferred`]). Blocks on the disk: drivers call it off the
    /// packet path, on a short period.
    pub fn write_behind(&self) -> Result<(), crate::store::StoreError> {
        self.apply_learned();
        self.store.flush_deferred()
    }

    /// A decision may have changed for `owner` (everyone when `None`): the driver
    /// calls this for each store event, and live dialogs get NOTIFYs at once.
    pub fn policy_changed(
        &self,
        now_ms: u64,
        owner: Option<&crate::policy::Aor>,
        out: &mut Vec<Transmit>,
    ) {
        self.presence.policy_changed(now_ms, owner, out);
    }

    /// Presence enforcement's state and counters.
    pub fn presence(&self) -> &presence::Presence {
        &self.presence
    }

    /// A TCP connection closed: forget the flows it carried.
    pub fn connection_closed(&self, conn: ConnId) {
        self.router.connection_closed(conn);
        self.presence.connection_closed(conn);
    }

    fn request(
        &self,
        now_ms: u64,
        rx: &Received,
        msg: &Message,
        direction: Direction,
        out: &mut Vec<Transmit>,
    ) -> Outcome {
        let method = msg.method().unwrap_or(Method::Other);
        self.metrics.request_in(method, rx.transport);
        if method == Method::Options && self.router.addressed_to_us(msg) {
            // RFC 3261 §11.2: the proxy answers an OPTIONS meant for itself (a
            // phone's or the upstream's keep-alive) instead of sending it on.
            let data = sip::response(
                msg,
                200,
                "OK",
                Some(to_tag(msg).as_bytes()),
                &[("Allow", ALLOW)],
                b"",
            );
            self.reply(rx, data, 200, out);
            return Outcome::new(direction, Handled::Answered);
        }
        let mut ed = msg.edit();
        let enforced = self
            .presence
            .request(now_ms, rx, msg, direction, &mut ed, out);
        if let presence::Step::Done(action) = enforced.step {
            return enforced_outcome(direction, action, enforced);
        }
        match self.router.request(rx, msg, direction, &mut ed) {
            Ok(hop) => {
                self.metrics.request_out(method, hop.transport);
                out.push(Transmit {
                    data: ed.finish(),
                    destination: hop.destination,
                    transport: hop.transport,
                    conn: hop.conn,
                });
                enforced_outcome(direction, forwarded(&enforced), enforced)
            }
            Err(refuse) if method == Method::Ack => {
                // ACKs are never answered (RFC 3261 §17.1.1.3).
                self.metrics.dropped(DropReason::AckNotForwardable);
                tracing::debug!(source = %rx.source, status = refuse.status, "ACK dropped: {}", refuse.reason);
                Outcome::new(direction, Handled::Dropped).because(refuse.reason)
            }
            Err(refuse) => {
                self.metrics.refused(refuse.why);
                tracing::debug!(source = %rx.source, status = refuse.status, "request refused: {}", refuse.reason);
                let tag = to_tag(msg);
                let data = sip::response(
                    msg,
                    refuse.status,
                    refuse.reason,
                    Some(tag.as_bytes()),
                    &[],
                    b"",
                );
                self.reply(rx, data, refuse.status, out);
                Outcome::new(direction, Handled::Refused).because(refuse.reason)
            }
        }
    }

    fn response(
        &self,
        now_ms: u64,
        rx: &Received,
        msg: &Message,
        direction: Direction,
        out: &mut Vec<Transmit>,
    ) -> Outcome {
        let status = msg.status().unwrap_or(0);
        self.metrics.response_in(status, rx.transport);
        let mut ed = msg.edit();
        let enforced = self
            .presence
            .response(now_ms, rx, msg, direction, &mut ed, out);
        if let presence::Step::Done(action) = enforced.step {
            return enforced_outcome(direction, action, enforced);
        }
        match self.router.response(msg, &mut ed) {
            Ok(hop) => {
                self.metrics.response_out(status, hop.transport);
                out.push(Transmit {
                    data: ed.finish(),
                    destination: hop.destination,
                    transport: hop.transport,
                    conn: hop.conn,
                });
                enforced_outcome(direction, forwarded(&enforced), enforced)
            }
            Err(routing::Drop(reason)) => {
                self.metrics.dropped(reason);
                tracing::debug!(source = %rx.source, status, reason = reason.as_str(), "response dropped");
                Outcome::new(direction, Handled::Dropped).because(reason.as_str())
            }
        }
    }

    /// An unparseable message: a request gets 400 (or 505/513) with the reason
    /// when its Via, From, To, Call-ID and CSeq can still be read; anything else
    /// is dropped and counted (responses are never answered, RFC 3261 §16.7).
    fn malformed(
        &self,
        rx: &Received,
        data: &[u8],
        direction: Direction,
        e: &sip::ParseError,
        out: &mut Vec<Transmit>,
    ) -> Outcome {
        let reason = e.reason();
        if data.starts_with(b"SIP/") {
            self.metrics.dropped(DropReason::MalformedResponse);
            tracing::debug!(source = %rx.source, error = %e, "malformed response dropped");
            return Outcome::new(direction, Handled::Dropped).because(reason);
        }
        if data.starts_with(b"ACK ") {
            self.metrics.dropped(DropReason::AckNotForwardable);
            tracing::debug!(source = %rx.source, error = %e, "malformed ACK dropped");
            return Outcome::new(direction, Handled::Dropped).because(reason);
        }
        match sip::bad_request(data, reason) {
            Some(data) => {
                self.metrics.refused(Refusal::Malformed);
                tracing::debug!(source = %rx.source, error = %e, "malformed request refused");
                let data = with_status(data, e.status());
                self.reply(rx, data, e.status(), out);
                Outcome::new(direction, Handled::Refused).because(reason)
            }
            None => {
                self.metrics.dropped(DropReason::MalformedRequest);
                tracing::debug!(source = %rx.source, error = %e, "malformed request dropped: no response possible");
                Outcome::new(direction, Handled::Dropped).because(reason)
            }
        }
    }

    /// Sends a locally generated response back where the request came from: the
    /// same connection over TCP (RFC 3261 §18.2.2), the source address and port
    /// over UDP (what RFC 3581 asks for, and right behind NAT).
    fn reply(&self, rx: &Received, data: Bytes, status: u16, out: &mut Vec<Transmit>) {
        self.metrics.response_out(status, rx.transport);
        out.push(Transmit {
            data,
            destination: rx.source,
            transport: rx.transport,
            conn: rx.conn,
        });
    }
}

/// The methods a request through the proxy may carry (RFC 3261 §20.5).
const ALLOW: &[u8] =
    b"INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, SUBSCRIBE, NOTIFY, PUBLISH, MESSAGE, REFER, INFO, UPDATE, PRACK";

/// `sip::bad_request` answers 400; an unknown SIP version gets 505 (RFC 3261
/// §21.5.7, RFC 4475 §3.1.2.16) and an oversized message 513 (§21.5.11), so the
/// status line is replaced for those.
fn with_status(response: Bytes, status: u16) -> Bytes {
    let phrase = match status {
        505 => "Version Not Supported",
        513 => "Message Too Large",
        _ => return response,
    };
    let Some(eol) = response.iter().position(|&b| b == b'\r' || b == b'\n') else {
        return response;
    };
    let mut v = Vec::with_capacity(response.len() + 8);
    v.extend_from_slice(format!("SIP/2.0 {status} {phrase}").as_bytes());
    v.extend_from_slice(&response[eol..]);
    Bytes::from(v)
}

/// A To tag for the proxy's own responses, the same for every retransmission of
/// the request (a stateless proxy remembers nothing, RFC 3261 §16.11).
fn to_tag(msg: &Message) -> String {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    msg.call_id().hash(&mut h);
    msg.from().and_then(|f| f.tag).hash(&mut h);
    msg.cseq().map(|c| c.0).hash(&mut h);
    format!("pp{:012x}", h.finish() & 0xffff_ffff_ffff)
}

#[cfg(test)]
mod tests;

/// Forwarded, or Rewritten when presence enforcement changed more than routing does.
fn forwarded(e: &presence::Enforced) -> Handled {
    match e.step {
        presence::Step::Rewritten => Handled::Rewritten,
        _ => Handled::Forwarded,
    }
}

/// The outcome of a message presence enforcement looked at: who, what decision, why.
fn enforced_outcome(direction: Direction, action: Handled, e: presence::Enforced) -> Outcome {
    let mut o = Outcome::new(direction, action);
    o.watcher = e.watcher;
    o.owner = e.owner;
    o.decision = e.verdict.map(|v| v.decision);
    o.rule = e.verdict.map(|v| v.rule);
    o.reason = e.reason.map(str::to_string);
    o
}
