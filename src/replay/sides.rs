//! Which side of each captured message is the proxy's: the upstream server
//! (registrar / presence server) and the proxy's own address, from the options
//! or, failing those, from what the capture shows.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;

use super::capture::CapturedMessage;
use super::framing::StartLine;
use crate::engine::Transport;

/// Where the proxy is imagined when the capture has none and no `--proxy-addr`
/// names it: an RFC 5737 / RFC 3849 documentation address, so it can clash with
/// nothing in a capture (the proxy must not mistake the upstream's Via for its own).
pub const IMAGINED_PROXY_V4: &str = "192.0.2.1:5060";
pub const IMAGINED_PROXY_V6: &str = "[2001:db8::1]:5060";

/// How many messages the detection looks at before deciding.
pub const DETECT_WINDOW: usize = 10_000;

/// An address given on the command line: port 0 matches any port of that IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint(pub SocketAddr);

impl Endpoint {
    pub fn matches(&self, addr: SocketAddr) -> bool {
        self.0.ip() == addr.ip() && (self.0.port() == 0 || self.0.port() == addr.port())
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.port() == 0 {
            write!(f, "{} (any port)", self.0.ip())
        } else {
            write!(f, "{}", self.0)
        }
    }
}

/// Where the upstream address came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chosen {
    /// `--upstream`.
    Option,
    /// It received `requests` REGISTER/SUBSCRIBE and sent `notifies` NOTIFY.
    ServerRole { requests: u64, notifies: u64 },
    /// Nothing registered or subscribed: the destination of the first request.
    FirstRequest,
    /// No request at all: the source of the first response.
    FirstResponse,
}

/// The sides of the replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sides {
    /// The upstream server.
    pub upstream: Endpoint,
    pub upstream_from: Chosen,
    /// The proxy: messages to it are what it received.
    pub proxy: Endpoint,
    /// True when `--proxy-addr` named a proxy recorded in the capture (its own
    /// output is then in the capture and is skipped); false when the proxy is
    /// imagined in front of the upstream, at [`IMAGINED_PROXY_V4`] (or `_V6`).
    pub proxy_in_capture: bool,
    /// The transport of the first message to or from the upstream (how the
    /// proxy reaches it), UDP when unknown.
    pub upstream_transport: Transport,
}

/// What the replay does with one captured message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Received by the proxy from a phone.
    FromPhone,
    /// Received by the proxy from the upstream.
    FromUpstream,
    /// Sent by the recorded proxy (its real output, not replayed).
    FromProxy,
    /// Neither to nor from the proxy's sides.
    Unrelated,
}

impl Sides {
    /// The role of a message under these sides.
    pub fn role(&self, m: &CapturedMessage) -> Role {
        if self.proxy_in_capture {
            if self.proxy.matches(m.src) {
                Role::FromProxy
            } else if self.proxy.matches(m.dst) {
                if self.upstream.matches(m.src) {
                    Role::FromUpstream
                } else {
                    Role::FromPhone
                }
            } else {
                Role::Unrelated
            }
        } else if self.upstream.matches(m.src) {
            Role::FromUpstream
        } else {
            // The imagined proxy stands where the capture was taken: it sees
            // everything, and what does not come from the upstream comes from a phone.
            Role::FromPhone
        }
    }

    /// One sentence for the terminal: which sides were chosen and why.
    pub fn describe(&self) -> String {
        let why = match &self.upstream_from {
            Chosen::Option => "given by --upstream".to_string(),
            Chosen::ServerRole { requests, notifies } => format!(
                "detected: it received {requests} REGISTER/SUBSCRIBE and sent {notifies} NOTIFY"
            ),
            Chosen::FirstRequest => {
                "detected: no REGISTER/SUBSCRIBE/NOTIFY, so the destination of the first request"
                    .to_string()
            }
            Chosen::FirstResponse => {
                "detected: no request at all, so the source of the first response".to_string()
            }
        };
        let proxy = if self.proxy_in_capture {
            format!(
                "proxy {} (--proxy-addr; its own packets in the capture are skipped)",
                self.proxy
            )
        } else {
            format!(
                "proxy imagined in front of it at {} (a documentation address; --proxy-addr names one)",
                self.proxy
            )
        };
        format!("upstream {} ({why}); {proxy}", self.upstream)
    }
}

/// Why no sides could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot tell the upstream server from the capture (no SIP message in the first {DETECT_WINDOW}); pass --upstream")]
pub struct NoSides;

/// Collects the evidence for the upstream's address.
#[derive(Debug, Default)]
pub struct SideDetector {
    /// Per address: REGISTER/SUBSCRIBE received, NOTIFY sent, first seen.
    score: HashMap<SocketAddr, (u64, u64, usize)>,
    first_request_dst: Option<SocketAddr>,
    first_response_src: Option<SocketAddr>,
    /// (source, destination, transport) of the first messages, to learn how the
    /// upstream is reached once it is known.
    transports: Vec<(SocketAddr, SocketAddr, Transport)>,
    seen: usize,
    exclude: Option<Endpoint>,
}

impl SideDetector {
    /// A detector that never picks `exclude` (the proxy named by the options).
    pub fn new(exclude: Option<Endpoint>) -> Self {
        SideDetector {
            exclude,
            ..Default::default()
        }
    }

    /// True once enough messages were seen.
    pub fn is_full(&self) -> bool {
        self.seen >= DETECT_WINDOW
    }

    pub fn observe(&mut self, m: &CapturedMessage) {
        self.seen += 1;
        if self.transports.len() < 64 {
            self.transports.push((m.src, m.dst, m.transport));
        }
        let method = match StartLine::of(&m.data) {
            Some(StartLine::Request(method)) => method,
            Some(StartLine::Response(_)) => {
                self.first_response_src.get_or_insert(m.src);
                return;
            }
            None => return,
        };
        let excluded = |a: SocketAddr| self.exclude.is_some_and(|e| e.matches(a));
        let order = self.seen;
        if !excluded(m.dst) {
            self.first_request_dst.get_or_insert(m.dst);
        }
        if (method == "REGISTER" || method == "SUBSCRIBE") && !excluded(m.dst) {
            let e = self.score.entry(m.dst).or_insert((0, 0, order));
            e.0 += 1;
        } else if method == "NOTIFY" && !excluded(m.src) {
            let e = self.score.entry(m.src).or_insert((0, 0, order));
            e.1 += 1;
        }
    }

    /// The upstream with the most evidence (earliest seen on a tie).
    pub fn decide(&self) -> Result<(SocketAddr, Chosen), NoSides> {
        let best = self.score.iter().max_by(|a, b| {
            (a.1 .0 + a.1 .1)
                .cmp(&(b.1 .0 + b.1 .1))
                .then(b.1 .2.cmp(&a.1 .2))
        });
        match best {
            Some((addr, (requests, notifies, _))) => Ok((
                *addr,
                Chosen::ServerRole {
                    requests: *requests,
                    notifies: *notifies,
                },
            )),
            None => self
                .first_request_dst
                .map(|a| (a, Chosen::FirstRequest))
                .or_else(|| self.first_response_src.map(|a| (a, Chosen::FirstResponse)))
                .ok_or(NoSides),
        }
    }
}

/// The transport used to or from `upstream` among the first messages seen.
fn transport_of(detector: Option<&SideDetector>, upstream: Endpoint) -> Transport {
    detector
        .and_then(|d| {
            d.transports
                .iter()
                .find(|(s, d, _)| upstream.matches(*s) || upstream.matches(*d))
        })
        .map_or(Transport::Udp, |t| t.2)
}

/// Puts the options and the detector's evidence together.
pub fn choose(
    proxy_opt: Option<SocketAddr>,
    upstream_opt: Option<SocketAddr>,
    detector: Option<&SideDetector>,
) -> Result<Sides, NoSides> {
    let (upstream, upstream_from) = match upstream_opt {
        Some(u) => (u, Chosen::Option),
        None => detector.ok_or(NoSides)?.decide()?,
    };
    let upstream = Endpoint(upstream);
    let upstream_transport = transport_of(detector, upstream);
    let imagined = if upstream.0.is_ipv4() {
        IMAGINED_PROXY_V4
    } else {
        IMAGINED_PROXY_V6
    };
    Ok(Sides {
        upstream,
        upstream_from,
        proxy: Endpoint(proxy_opt.unwrap_or_else(|| imagined.parse().unwrap_or(upstream.0))),
        proxy_in_capture: proxy_opt.is_some(),
        upstream_transport,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn msg(src: &str, dst: &str, first: &str) -> CapturedMessage {
        CapturedMessage {
            packet: 1,
            time_us: 0,
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            transport: Transport::Udp,
            data: Bytes::from(format!("{first}\r\nContent-Length: 0\r\n\r\n")),
            conn: None,
            linktype: 1,
        }
    }

    const PHONE: &str = "10.0.0.5:5062";
    const PBX: &str = "10.0.0.1:5060";

    #[test]
    fn the_server_is_who_receives_subscribes_and_sends_notifies() {
        let mut d = SideDetector::new(None);
        d.observe(&msg(PBX, PHONE, "OPTIONS sip:x@10.0.0.5 SIP/2.0"));
        d.observe(&msg(PHONE, PBX, "SUBSCRIBE sip:alice@pbx SIP/2.0"));
        d.observe(&msg(PBX, PHONE, "SIP/2.0 200 OK"));
        d.observe(&msg(PBX, PHONE, "NOTIFY sip:bob@10.0.0.5 SIP/2.0"));
        let (addr, chosen) = d.decide().unwrap();
        assert_eq!(addr, PBX.parse().unwrap());
        assert_eq!(
            chosen,
            Chosen::ServerRole {
                requests: 1,
                notifies: 1
            }
        );
        let sides = choose(None, None, Some(&d)).unwrap();
        assert_eq!(
            sides.role(&msg(PHONE, PBX, "SUBSCRIBE sip:a@b SIP/2.0")),
            Role::FromPhone
        );
        assert_eq!(
            sides.role(&msg(PBX, PHONE, "NOTIFY sip:a@b SIP/2.0")),
            Role::FromUpstream
        );
        assert_eq!(
            sides.role(&msg(PHONE, "10.0.0.9:5060", "INFO sip:a@b SIP/2.0")),
            Role::FromPhone
        );
        assert!(sides.describe().contains("detected"));
        assert_eq!(sides.proxy.0, IMAGINED_PROXY_V4.parse().unwrap());
        assert_eq!(sides.upstream_transport, Transport::Udp);
    }

    #[test]
    fn without_presence_traffic_the_first_request_decides() {
        let mut d = SideDetector::new(None);
        d.observe(&msg(PBX, PHONE, "SIP/2.0 100 Trying"));
        d.observe(&msg(PHONE, PBX, "INVITE sip:alice@pbx SIP/2.0"));
        assert_eq!(
            d.decide().unwrap(),
            (PBX.parse().unwrap(), Chosen::FirstRequest)
        );
        assert_eq!(SideDetector::new(None).decide(), Err(NoSides));
        let mut responses_only = SideDetector::new(None);
        responses_only.observe(&msg(PBX, PHONE, "SIP/2.0 180 Ringing"));
        assert_eq!(
            responses_only.decide().unwrap(),
            (PBX.parse().unwrap(), Chosen::FirstResponse)
        );
    }

    #[test]
    fn a_recorded_proxy_splits_received_from_sent() {
        let proxy: SocketAddr = "10.0.0.2:5060".parse().unwrap();
        let mut d = SideDetector::new(Some(Endpoint(proxy)));
        d.observe(&msg(
            PHONE,
            "10.0.0.2:5060",
            "SUBSCRIBE sip:alice@pbx SIP/2.0",
        ));
        d.observe(&msg(
            "10.0.0.2:5060",
            PBX,
            "SUBSCRIBE sip:alice@pbx SIP/2.0",
        ));
        let sides = choose(Some(proxy), None, Some(&d)).unwrap();
        assert_eq!(sides.upstream, Endpoint(PBX.parse().unwrap()));
        assert_eq!(
            sides.role(&msg(PHONE, "10.0.0.2:5060", "SUBSCRIBE sip:a@b SIP/2.0")),
            Role::FromPhone
        );
        assert_eq!(
            sides.role(&msg("10.0.0.2:5060", PBX, "SUBSCRIBE sip:a@b SIP/2.0")),
            Role::FromProxy
        );
        assert_eq!(
            sides.role(&msg(PBX, "10.0.0.2:5060", "NOTIFY sip:a@b SIP/2.0")),
            Role::FromUpstream
        );
    }

    #[test]
    fn port_zero_matches_any_port() {
        let e = Endpoint("10.0.0.1:0".parse().unwrap());
        assert!(e.matches("10.0.0.1:5070".parse().unwrap()));
        assert!(!e.matches("10.0.0.2:5070".parse().unwrap()));
    }
}
