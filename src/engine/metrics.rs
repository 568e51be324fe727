//! The engine's counters: what came in and went out, by method and transport, and
//! every refusal and drop by reason. Plain atomics, so every driver thread counts
//! without a lock; `/metrics` renders them in the Prometheus text format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::Transport;
use crate::sip::Method;

/// Method labels, in the order of [`method_index`].
pub const METHOD_LABELS: [&str; 15] = [
    "REGISTER",
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "SUBSCRIBE",
    "NOTIFY",
    "PUBLISH",
    "MESSAGE",
    "REFER",
    "INFO",
    "UPDATE",
    "PRACK",
    "other",
];

fn method_index(m: Method) -> usize {
    match m {
        Method::Register => 0,
        Method::Invite => 1,
        Method::Ack => 2,
        Method::Bye => 3,
        Method::Cancel => 4,
        Method::Options => 5,
        Method::Subscribe => 6,
        Method::Notify => 7,
        Method::Publish => 8,
        Method::Message => 9,
        Method::Refer => 10,
        Method::Info => 11,
        Method::Update => 12,
        Method::Prack => 13,
        Method::Other => 14,
    }
}

fn transport_index(t: Transport) -> usize {
    match t {
        Transport::Udp => 0,
        Transport::Tcp => 1,
    }
}

const TRANSPORT_LABELS: [&str; 2] = ["udp", "tcp"];

/// Why the proxy answered a request with an error instead of forwarding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Unparseable or missing a mandatory header (400/505/513).
    Malformed,
    /// Max-Forwards reached zero (483, RFC 3261 §16.3 step 3).
    TooManyHops,
    /// The request came back to us unchanged (482, RFC 3261 §16.3 step 4).
    Loop,
    /// No usable destination in Route / Request-URI (404).
    Unroutable,
    /// A presence rule refused it (MESSAGE from a blocked watcher, ...).
    Policy,
}

impl Refusal {
    pub const ALL: [Refusal; 5] = [
        Refusal::Malformed,
        Refusal::TooManyHops,
        Refusal::Loop,
        Refusal::Unroutable,
        Refusal::Policy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed",
            Refusal::TooManyHops => "too_many_hops",
            Refusal::Loop => "loop",
            Refusal::Unroutable => "unroutable",
            Refusal::Policy => "policy",
        }
    }
}

/// Why a message was dropped without any answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// A request so broken no response can be addressed (no usable Via).
    MalformedRequest,
    /// A malformed response (never answered: RFC 3261 §16.7 discards them).
    MalformedResponse,
    /// An ACK that cannot be forwarded (ACKs are never answered, §17.1.1.3).
    AckNotForwardable,
    /// A response whose top Via is not ours: a stateless proxy forwards only
    /// responses to requests it forwarded (RFC 3261 §16.11).
    ResponseNotOurs,
    /// A response with no Via left after ours: it answers the proxy itself.
    ResponseForUs,
    /// A Via or URI naming a destination we never send to (broadcast,
    /// multicast, unspecified, a host name, an unsupported transport).
    BadDestination,
    /// The driver could not send (no route, connection refused).
    SendFailed,
}

impl DropReason {
    pub const ALL: [DropReason; 7] = [
        DropReason::MalformedRequest,
        DropReason::MalformedResponse,
        DropReason::AckNotForwardable,
        DropReason::ResponseNotOurs,
        DropReason::ResponseForUs,
        DropReason::BadDestination,
        DropReason::SendFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::MalformedRequest => "malformed_request",
            DropReason::MalformedResponse => "malformed_response",
            DropReason::AckNotForwardable => "ack_not_forwardable",
            DropReason::ResponseNotOurs => "response_not_ours",
            DropReason::ResponseForUs => "response_for_us",
            DropReason::BadDestination => "bad_destination",
            DropReason::SendFailed => "send_failed",
        }
    }
}

type ByMethod = [[AtomicU64; 15]; 2];
type ByClass = [[AtomicU64; 6]; 2];

/// Counters shared by every driver; read them with the getters or [`Metrics::render`].
#[derive(Debug, Default)]
pub struct Metrics {
    requests_in: ByMethod,
    requests_out: ByMethod,
    responses_in: ByClass,
    responses_out: ByClass,
    refused: [AtomicU64; Refusal::ALL.len()],
    dropped: [AtomicU64; DropReason::ALL.len()],
    keepalives: AtomicU64,
}

fn class_index(status: u16) -> usize {
    usize::from(status / 100).clamp(1, 6) - 1
}

impl Metrics {
    pub fn request_in(&self, m: Method, t: Transport) {
        self.requests_in[transport_index(t)][method_index(m)].fetch_add(1, Relaxed);
    }
    pub fn request_out(&self, m: Method, t: Transport) {
        self.requests_out[transport_index(t)][method_index(m)].fetch_add(1, Relaxed);
    }
    pub fn response_in(&self, status: u16, t: Transport) {
        self.responses_in[transport_index(t)][class_index(status)].fetch_add(1, Relaxed);
    }
    pub fn response_out(&self, status: u16, t: Transport) {
        self.responses_out[transport_index(t)][class_index(status)].fetch_add(1, Relaxed);
    }
    pub fn refused(&self, r: Refusal) {
        self.refused[r as usize].fetch_add(1, Relaxed);
    }
    pub fn dropped(&self, r: DropReason) {
        self.dropped[r as usize].fetch_add(1, Relaxed);
    }
    /// A CRLF keep-alive answered by the driver (RFC 5626 §3.5.1).
    pub fn keepalive(&self) {
        self.keepalives.fetch_add(1, Relaxed);
    }

    pub fn requests_in(&self, m: Method, t: Transport) -> u64 {
        self.requests_in[transport_index(t)][method_index(m)].load(Relaxed)
    }
    pub fn requests_out(&self, m: Method, t: Transport) -> u64 {
        self.requests_out[transport_index(t)][method_index(m)].load(Relaxed)
    }
    pub fn refusals(&self, r: Refusal) -> u64 {
        self.refused[r as usize].load(Relaxed)
    }
    pub fn drops(&self, r: DropReason) -> u64 {
        self.dropped[r as usize].load(Relaxed)
    }
    /// Every refusal and drop, whatever the reason.
    pub fn total_refused_and_dropped(&self) -> u64 {
        self.refused
            .iter()
            .chain(self.dropped.iter())
            .map(|c| c.load(Relaxed))
            .sum()
    }

    /// Appends the counters in the Prometheus text exposition format.
    pub fn render(&self, out: &mut String) {
        for (name, help, table) in [
            (
                "presence_proxy_sip_requests_in_total",
                "SIP requests received",
                &self.requests_in,
            ),
            (
                "presence_proxy_sip_requests_out_total",
                "SIP requests sent",
                &self.requests_out,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}.\n# TYPE {name} counter");
            for (t, row) in table.iter().enumerate() {
                for (m, c) in row.iter().enumerate() {
                    let v = c.load(Relaxed);
                    if v > 0 {
                        let (tl, ml) = (TRANSPORT_LABELS[t], METHOD_LABELS[m]);
                        let _ = writeln!(out, "{name}{{transport=\"{tl}\",method=\"{ml}\"}} {v}");
                    }
                }
            }
        }
        for (name, help, table) in [
            (
                "presence_proxy_sip_responses_in_total",
                "SIP responses received",
                &self.responses_in,
            ),
            (
                "presence_proxy_sip_responses_out_total",
                "SIP responses sent",
                &self.responses_out,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}.\n# TYPE {name} counter");
            for (t, row) in table.iter().enumerate() {
                for (k, c) in row.iter().enumerate() {
                    let v = c.load(Relaxed);
                    if v > 0 {
                        let tl = TRANSPORT_LABELS[t];
                        let _ = writeln!(
                            out,
                            "{name}{{transport=\"{tl}\",class=\"{}xx\"}} {v}",
                            k + 1
                        );
                    }
                }
            }
        }
        let name = "presence_proxy_sip_refused_total";
        let _ = writeln!(
            out,
            "# HELP {name} Requests answered with an error by the proxy.\n# TYPE {name} counter"
        );
        for r in Refusal::ALL {
            let _ = writeln!(
                out,
                "{name}{{reason=\"{}\"}} {}",
                r.as_str(),
                self.refusals(r)
            );
        }
        let name = "presence_proxy_sip_dropped_total";
        let _ = writeln!(
            out,
            "# HELP {name} Messages dropped without an answer.\n# TYPE {name} counter"
        );
        for r in DropReason::ALL {
            let _ = writeln!(out, "{name}{{reason=\"{}\"}} {}", r.as_str(), self.drops(r));
        }
        let name = "presence_proxy_sip_keepalives_total";
        let _ = writeln!(
            out,
            "# HELP {name} CRLF keep-alive pings answered.\n# TYPE {name} counter"
        );
        let _ = writeln!(out, "{name} {}", self.keepalives.load(Relaxed));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_renders_by_label() {
        let m = Metrics::default();
        m.request_in(Method::Subscribe, Transport::Tcp);
        m.request_in(Method::Subscribe, Transport::Tcp);
        m.response_out(202, Transport::Udp);
        m.refused(Refusal::Loop);
        m.dropped(DropReason::MalformedResponse);
        assert_eq!(m.requests_in(Method::Subscribe, Transport::Tcp), 2);
        assert_eq!(m.requests_in(Method::Subscribe, Transport::Udp), 0);
        assert_eq!(m.total_refused_and_dropped(), 2);
        let mut s = String::new();
        m.render(&mut s);
        assert!(
            s.contains(
                "presence_proxy_sip_requests_in_total{transport=\"tcp\",method=\"SUBSCRIBE\"} 2"
            ),
            "{s}"
        );
        assert!(
            s.contains("presence_proxy_sip_responses_out_total{transport=\"udp\",class=\"2xx\"} 1"),
            "{s}"
        );
        assert!(
            s.contains("presence_proxy_sip_refused_total{reason=\"loop\"} 1"),
            "{s}"
        );
        assert!(
            s.contains("presence_proxy_sip_dropped_total{reason=\"malformed_response\"} 1"),
            "{s}"
        );
    }
}
