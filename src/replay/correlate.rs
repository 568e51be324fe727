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
//! proxy. Bounded: the oldest entries are forgotten first.

use std::collections::{HashMap, VecDeque};

use bytes::{Bytes, BytesMut};

use super::framing::{self, StartLine};

const MAX_ENTRIES: usize = 65_536;

/// The pushed Via of each forwarded request, by the original top branch.
#[derive(Debug, Default)]
pub struct ViaMemory {
    pushed: HashMap<Vec<u8>, Vec<u8>>,
    order: VecDeque<Vec<u8>>,
    /// Responses that got a Via back.
    pub restored: u64,
}

impl ViaMemory {
    /// Notes a request the proxy sent (its first Via is the proxy's own).
    pub fn sent(&mut self, data: &[u8]) {
        if !matches!(StartLine::of(data), Some(StartLine::Request(_))) {
            return;
        }
        let vias = via_values(data, 2);
        let (Some(own), Some(below)) = (vias.first(), vias.get(1)) else {
            return;
        };
        let Some(branch) = branch(below) else { return };
        let key = branch.to_vec();
        if self.pushed.insert(key.clone(), own.to_vec()).is_none() {
            self.order.push_back(key);
            if self.order.len() > MAX_ENTRIES {
                if let Some(old) = self.order.pop_front() {
                    self.pushed.remove(&old);
                }
            }
        }
    }

    /// The captured response with the proxy's Via pushed back on top, when it
    /// answers a request the proxy forwarded; otherwise unchanged.
    pub fn restore(&mut self, data: &Bytes) -> Bytes {
        if !matches!(StartLine::of(data), Some(StartLine::Response(_))) {
            return data.clone();
        }
        let vias = via_values(data, 1);
        let Some(own) = vias
            .first()
            .and_then(|top| branch(top))
            .and_then(|b| self.pushed.get(b))
        else {
            return data.clone();
        };
        let Some(line_end) = framing::find(data, b"\r\n") else {
            return data.clone();
        };
        let mut out = BytesMut::with_capacity(data.len() + own.len() + 8);
        out.extend_from_slice(&data[..line_end + 2]);
        out.extend_from_slice(b"Via: ");
        out.extend_from_slice(own);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&data[line_end + 2..]);
        self.restored += 1;
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

    #[test]
    fn the_proxy_via_comes_back_on_the_matching_response() {
        let mut m = ViaMemory::default();
        m.sent(b"SUBSCRIBE sip:a@x SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKp1\r\nv: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bKphone, SIP/2.0/UDP x\r\n\r\n");
        let response = Bytes::from_static(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bKphone\r\nContent-Length: 0\r\n\r\n");
        let fixed = m.restore(&response);
        assert_eq!(
            fixed.as_ref(),
            &b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKp1\r\nVia: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bKphone\r\nContent-Length: 0\r\n\r\n"[..]
        );
        assert_eq!(m.restored, 1);
        let other = Bytes::from_static(
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.5;branch=z9hG4bKother\r\n\r\n",
        );
        assert_eq!(m.restore(&other), other);
    }

    #[test]
    fn only_requests_with_two_vias_are_remembered() {
        let mut m = ViaMemory::default();
        m.sent(b"SIP/2.0 200 OK\r\nVia: a;branch=1\r\nVia: b;branch=2\r\n\r\n");
        m.sent(b"NOTIFY sip:x SIP/2.0\r\nVia: a;branch=1\r\n\r\n");
        assert!(m.pushed.is_empty());
        let req = Bytes::from_static(b"NOTIFY sip:x SIP/2.0\r\nVia: b;branch=2\r\n\r\n");
        assert_eq!(m.restore(&req), req);
    }
}
