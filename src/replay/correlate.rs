//! Puts the proxy's Via back on captured responses.
//!
//! A capture taken without the proxy in the path holds responses that never
//! passed a proxy: their top Via is the requester's. Had the proxy been inline,
//! the response would carry the Via the proxy pushed when it forwarded the
//! request (RFC 3261 §16.6 step 8), and a stateless proxy drops a response whose
//! top Via is not its own (§16.11 step 1 via §16.7). So the replay remembers, for
//! each request the proxy sent, the Via it pushed, keyed by the branch of the Via
//! just below it (the original requester's), and pushes it onto the captured
//! response with that branch: the response then reads as if it had crossed the
//! proxy. A response whose request is not in the capture at all (the capture
//! began later, or holds responses only) gets a Via naming the proxy, as if it had
//! forwarded that request; a response to a request the capture holds but the
//! proxy did not forward (it answered it itself) is left alone, and the proxy
//! drops it as it would. Bounded: the oldest entries are forgotten first.

use std::collections::{HashMap, VecDeque};

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};

use super::framing::{self, StartLine};
use crate::engine::Transport;

/// At most this many transactions are remembered on each side...
const MAX_ENTRIES: usize = 16_384;
/// ...and none longer than a client transaction lives: 64*T1 = 32 s (RFC 3261
/// §17.1.1.2 Timer B, §17.1.2.2 Timer F). A response later than that finds no
/// transaction anywhere.
const TRANSACTION_LIFETIME_MS: u64 = 32_000;

/// Branches remembered with the time they were noted, oldest first.
#[derive(Debug, Default)]
struct Remembered<V> {
    map: HashMap<Vec<u8>, V>,
    order: VecDeque<(u64, Vec<u8>)>,
}

impl<V> Remembered<V> {
    fn note(&mut self, key: Vec<u8>, value: V, now_ms: u64) {
        if self.map.insert(key.clone(), value).is_none() {
            self.order.push_back((now_ms, key));
        }
        while let Some((t, _)) = self.order.front() {
            if self.order.len() <= MAX_ENTRIES && t + TRANSACTION_LIFETIME_MS >= now_ms {
                break;
            }
            if let Some((_, old)) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
    }

    fn get(&self, key: &[u8]) -> Option<&V> {
        self.map.get(key)
    }
}

/// The pushed Via of each forwarded request, by the original top branch.
#[derive(Debug, Default)]
pub struct ViaMemory {
    pushed: Remembered<Vec<u8>>,
    /// Top-Via branches of the requests the proxy received.
    requests: Remembered<()>,
    /// Responses that got the proxy's Via back.
    pub restored: u64,
    /// Responses whose request was never captured, given a Via naming the proxy.
    pub synthesized: u64,
}

impl ViaMemory {
    /// Notes a request the proxy sent at `now_ms` (its first Via is the proxy's own).
    pub fn sent(&mut self, data: &[u8], now_ms: u64) {
        if !matches!(StartLine::of(data), Some(StartLine::Request(_))) {
            return;
        }
        let vias = via_values(data, 2);
        let (Some(own), Some(below)) = (vias.first(), vias.get(1)) else {
            return;
        };
        let Some(branch) = branch(below) else { return };
        self.pushed.note(branch.to_vec(), own.to_vec(), now_ms);
    }

    /// Notes a request the proxy received at `now_ms` (by its top Via branch).
    pub fn received(&mut self, data: &[u8], now_ms: u64) {
        if !matches!(StartLine::of(data), Some(StartLine::Request(_))) {
            return;
        }
        let Some(b) = via_values(data, 1).first().and_then(|v| branch(v)) else {
            return;
        };
        self.requests.note(b.to_vec(), (), now_ms);
    }

    /// The captured response as it would reach the proxy: with the Via the
    /// proxy pushed on its request, or one naming `proxy` over `transport` when the
    /// request was never captured; unchanged otherwise (and for requests).
    pub fn restore(&mut self, data: &Bytes, proxy: SocketAddr, transport: Transport) -> Bytes {
        if !matches!(StartLine::of(data), Some(StartLine::Response(_))) {
            return data.clone();
        }
        let top = via_values(data, 1)
            .first()
            .and_then(|v| branch(v))
            .map(<[u8]>::to_vec);
        let via = match top.as_deref().and_then(|b| self.pushed.get(b)) {
            Some(own) => {
                self.restored += 1;
                own.clone()
            }
            None if top
                .as_deref()
                .map_or(true, |b| self.requests.get(b).is_none()) =>
            {
                self.synthesized += 1;
                let t = match transport {
                    Transport::Udp => "UDP",
                    Transport::Tcp => "TCP",
                };
                format!("SIP/2.0/{t} {proxy};branch=z9hG4bK-replay").into_bytes()
            }
            None => return data.clone(),
        };
        let Some(line_end) = framing::find(data, b"\r\n") else {
            return data.clone();
        };
        let mut out = BytesMut::with_capacity(data.len() + via.len() + 8);
        out.extend_from_slice(&data[..line_end + 2]);
        out.extend_from_slice(b"Via: ");
        out.extend_from_slice(&via);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&data[line_end + 2..]);
        out.freeze()
    }
}

/// The first `n` Via values in header order, splitting comma lists (RFC 3261
/// §7.3.1); long and compact (`v`) names.
fn via_values(data: &[u8], n: usize) -> Vec<&[u8]> {
    let head_end = framing::find(data, b"\r\n\r\n").unwrap_or(data.len());
    let mut out = Vec::new();
    for line in data[..head_end].split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if !(name.eq_ignore_ascii_case(b"via") || name.eq_ignore_ascii_case(b"v")) {
            continue;
        }
        for value in line[colon + 1..].split(|&b| b == b',') {
            let value = value.trim_ascii();
            if !value.is_empty() {
                out.push(value);
                if out.len() == n {
                    return out;
                }
            }
        }
    }
    out
}

/// The `branch` parameter of a Via value.
fn branch(via: &[u8]) -> Option<&[u8]> {
    via.split(|&b| b == b';').skip(1).find_map(|p| {
        let p = p.trim_ascii();
        let eq = p.iter().position(|&b| b == b'=')?;
        p[..eq]
            .trim_ascii()
            .eq_ignore_ascii_case(b"branch")
            .then(|| p[eq + 1..].trim_ascii())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy() -> SocketAddr {
        "192.0.2.1:5060".parse().unwrap()
    }

    #[test]
    fn the_proxy_via_comes_back_on_the_matching_response() {
        let mut m = ViaMemory::default();
        m.sent(b"SUBSCRIBE sip:a@x SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKp1\r\nv: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bKphone, SIP/2.0/UDP x\r\n\r\n", 0);
        let response = Bytes::from_static(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bKphone\r\nContent-Length: 0\r\n\r\n");
        m.received(b"SUBSCRIBE sip:a@x SIP/2.0\r\nv: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bKphone\r\n\r\n", 0);
        let fixed = m.restore(&response, proxy(), Transport::Udp);
        assert_eq!(
            fixed.as_ref(),
            &b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKp1\r\nVia: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bKphone\r\nContent-Length: 0\r\n\r\n"[..]
        );
        assert_eq!(m.restored, 1);
        // Its request was captured but not forwarded: left for the proxy to drop.
        m.received(
            b"MESSAGE sip:a@x SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.5;branch=z9hG4bKother\r\n\r\n",
            0,
        );
        let other = Bytes::from_static(
            b"SIP/2.0 404 Not Found\r\nVia: SIP/2.0/UDP 10.0.0.5;branch=z9hG4bKother\r\n\r\n",
        );
        assert_eq!(m.restore(&other, proxy(), Transport::Udp), other);
        // Its request is not in the capture: a Via naming the proxy.
        let orphan = Bytes::from_static(
            b"SIP/2.0 100 Trying\r\nVia: SIP/2.0/TCP 10.0.0.5;branch=z9hG4bKx\r\n\r\n",
        );
        assert_eq!(
            m.restore(&orphan, proxy(), Transport::Tcp).as_ref(),
            &b"SIP/2.0 100 Trying\r\nVia: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK-replay\r\nVia: SIP/2.0/TCP 10.0.0.5;branch=z9hG4bKx\r\n\r\n"[..]
        );
        assert_eq!((m.restored, m.synthesized), (1, 1));
    }

    #[test]
    fn only_requests_with_two_vias_are_remembered() {
        let mut m = ViaMemory::default();
        m.sent(
            b"SIP/2.0 200 OK\r\nVia: a;branch=1\r\nVia: b;branch=2\r\n\r\n",
            0,
        );
        m.sent(b"NOTIFY sip:x SIP/2.0\r\nVia: a;branch=1\r\n\r\n", 0);
        assert!(m.pushed.map.is_empty());
        let req = Bytes::from_static(b"NOTIFY sip:x SIP/2.0\r\nVia: b;branch=2\r\n\r\n");
        assert_eq!(m.restore(&req, proxy(), Transport::Udp), req);
    }

    #[test]
    fn transactions_are_forgotten_after_timer_b_and_beyond_the_cap() {
        let mut m = ViaMemory::default();
        let req = |n: usize| {
            format!("INFO sip:x SIP/2.0\r\nVia: p;branch=z9hG4bKp{n}\r\nVia: a;branch=z9hG4bK{n}\r\n\r\n")
        };
        m.sent(req(0).as_bytes(), 1_000);
        m.sent(req(1).as_bytes(), 1_000 + TRANSACTION_LIFETIME_MS);
        assert!(m.pushed.get(b"z9hG4bK0").is_some());
        m.sent(req(2).as_bytes(), 1_001 + TRANSACTION_LIFETIME_MS);
        assert!(m.pushed.get(b"z9hG4bK0").is_none());
        for n in 3..MAX_ENTRIES + 10 {
            m.sent(req(n).as_bytes(), 40_000);
        }
        assert_eq!(m.pushed.map.len(), MAX_ENTRIES);
        assert_eq!(m.pushed.order.len(), MAX_ENTRIES);
    }
}
