//! IPv4 and IPv6 headers down to the transport payload, and bounded reassembly of
//! fragmented datagrams (RFC 791 §3.2, RFC 8200 §4.5): SIP over UDP fragments as
//! soon as a NOTIFY with a PIDF body outgrows the MTU.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;

/// Fragmented datagrams being reassembled at once; the oldest is dropped beyond.
const MAX_DATAGRAMS: usize = 256;
/// A datagram whose fragments do not all arrive within this capture time is
/// dropped (Linux `ipfrag_time` is 30 s).
const FRAGMENT_TIMEOUT_US: u64 = 30_000_000;
const MAX_DATAGRAM: usize = 65_535;

/// Why an IP packet yields no transport payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpSkip {
    /// Header malformed or cut short by the snap length.
    Malformed,
    /// A fragment that did not complete a datagram (yet).
    Fragment,
}

/// Where a fragment belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragmentKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u32,
    pub proto: u8,
    pub vlan: Option<u16>,
}

/// One fragment's place in its datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentInfo {
    pub id: u32,
    /// Byte offset of this fragment's payload.
    pub offset: usize,
    pub more: bool,
}

/// An IP packet's addresses and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpPacket<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub payload: &'a [u8],
    pub fragment: Option<FragmentInfo>,
}

/// Parses an IPv4 or IPv6 header (with IPv6 extension headers).
pub fn parse(ip: &[u8]) -> Result<IpPacket<'_>, IpSkip> {
    match ip.first().map(|b| b >> 4) {
        Some(4) => parse_v4(ip),
        Some(6) => parse_v6(ip),
        _ => Err(IpSkip::Malformed),
    }
}

fn parse_v4(ip: &[u8]) -> Result<IpPacket<'_>, IpSkip> {
    if ip.len() < 20 {
        return Err(IpSkip::Malformed);
    }
    let ihl = usize::from(ip[0] & 0x0F) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    // A total length beyond the captured bytes means the snap length cut it.
    if ihl < 20 || total < ihl || total > ip.len() {
        return Err(IpSkip::Malformed);
    }
    let flags_frag = u16::from_be_bytes([ip[6], ip[7]]);
    let more = flags_frag & 0x2000 != 0;
    let offset = usize::from(flags_frag & 0x1FFF) * 8;
    let fragment = (more || offset > 0).then(|| FragmentInfo {
        id: u32::from(u16::from_be_bytes([ip[4], ip[5]])),
        offset,
        more,
    });
    Ok(IpPacket {
        src: IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15])),
        dst: IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19])),
        proto: ip[9],
        payload: &ip[ihl..total],
        fragment,
    })
}

fn parse_v6(ip: &[u8]) -> Result<IpPacket<'_>, IpSkip> {
    if ip.len() < 40 {
        return Err(IpSkip::Malformed);
    }
    let payload_len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
    // Payload length 0 is a jumbogram (RFC 2675): take what was captured.
    let end = if payload_len == 0 {
        ip.len()
    } else {
        40 + payload_len
    };
    if end > ip.len() {
        return Err(IpSkip::Malformed);
    }
    let mut octets = [0u8; 16];
    octets.copy_from_slice(&ip[8..24]);
    let src = IpAddr::V6(Ipv6Addr::from(octets));
    octets.copy_from_slice(&ip[24..40]);
    let dst = IpAddr::V6(Ipv6Addr::from(octets));
    let mut next = ip[6];
    let mut at = 40;
    let mut fragment = None;
    // Hop-by-hop, routing, destination options, fragment and AH (RFC 8200 §4).
    loop {
        match next {
            0 | 43 | 60 => {
                let h = ip.get(at..at + 2).ok_or(IpSkip::Malformed)?;
                next = h[0];
                at += (usize::from(h[1]) + 1) * 8;
            }
            51 => {
                let h = ip.get(at..at + 2).ok_or(IpSkip::Malformed)?;
                next = h[0];
                at += (usize::from(h[1]) + 2) * 4;
            }
            44 => {
                let h = ip.get(at..at + 8).ok_or(IpSkip::Malformed)?;
                next = h[0];
                let off = u16::from_be_bytes([h[2], h[3]]);
                let more = off & 1 != 0;
                let offset = usize::from(off >> 3) * 8;
                if more || offset > 0 {
                    fragment = Some(FragmentInfo {
                        id: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
                        offset,
                        more,
                    });
                }
                at += 8;
                if fragment.is_some_and(|f| f.offset > 0) {
                    // Later fragments carry no further headers: the rest is payload.
                    break;
                }
            }
            _ => break,
        }
        if at > end {
            return Err(IpSkip::Malformed);
        }
    }
    Ok(IpPacket {
        src,
        dst,
        proto: next,
        payload: &ip[at..end],
        fragment,
    })
}

struct Partial {
    data: Vec<u8>,
    /// Received byte ranges, sorted, merged.
    have: Vec<(usize, usize)>,
    total: Option<usize>,
    /// For a fragmented IPv6 datagram the first fragment names the upper protocol.
    proto: u8,
    last_us: u64,
}

/// What the reassembler did with a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reassembled {
    /// The datagram is complete: its payload and upper-layer protocol.
    Complete { proto: u8, payload: Vec<u8> },
    /// Kept; more fragments are needed.
    Pending,
    /// Refused (beyond 65535 bytes, or inconsistent lengths).
    Invalid,
}

/// Reassembles fragmented datagrams in bounded memory.
#[derive(Default)]
pub struct Defragmenter {
    partial: HashMap<FragmentKey, Partial>,
    /// Datagrams dropped incomplete (timed out or evicted).
    pub dropped: u64,
}

impl Defragmenter {
    /// Adds one fragment seen at `now_us`.
    pub fn add(
        &mut self,
        key: FragmentKey,
        frag: FragmentInfo,
        proto: u8,
        payload: &[u8],
        now_us: u64,
    ) -> Reassembled {
        self.expire(now_us);
        let end = frag.offset + payload.len();
        if end > MAX_DATAGRAM {
            self.discard(&key);
            return Reassembled::Invalid;
        }
        if !self.partial.contains_key(&key) && self.partial.len() >= MAX_DATAGRAMS {
            if let Some(oldest) = self
                .partial
                .iter()
                .min_by_key(|(_, p)| p.last_us)
                .map(|(k, _)| *k)
            {
                self.discard(&oldest);
            }
        }
        let part = self.partial.entry(key).or_insert_with(|| Partial {
            data: Vec::new(),
            have: Vec::new(),
            total: None,
            proto,
            last_us: now_us,
        });
        part.last_us = now_us;
        if frag.offset == 0 {
            part.proto = proto;
        }
        if !frag.more {
            if part.total.is_some_and(|t| t != end) || part.have.last().is_some_and(|r| r.1 > end) {
                self.discard(&key);
                return Reassembled::Invalid;
            }
            part.total = Some(end);
        } else if part.total.is_some_and(|t| end > t) {
            self.discard(&key);
            return Reassembled::Invalid;
        }
        if part.data.len() < end {
            part.data.resize(end, 0);
        }
        part.data[frag.offset..end].copy_from_slice(payload);
        insert_range(&mut part.have, (frag.offset, end));
        match part.total {
            Some(total) if part.have.as_slice() == [(0, total)] => {
                let done = self.partial.remove(&key).map(|p| (p.proto, p.data));
                match done {
                    Some((proto, payload)) => Reassembled::Complete { proto, payload },
                    None => Reassembled::Invalid,
                }
            }
            _ => Reassembled::Pending,
        }
    }

    /// Datagrams still incomplete.
    pub fn in_progress(&self) -> usize {
        self.partial.len()
    }

    fn expire(&mut self, now_us: u64) {
        let before = self.partial.len();
        self.partial
            .retain(|_, p| now_us.saturating_sub(p.last_us) <= FRAGMENT_TIMEOUT_US);
        self.dropped += (before - self.partial.len()) as u64;
    }

    fn discard(&mut self, key: &FragmentKey) {
        if self.partial.remove(key).is_some() {
            self.dropped += 1;
        }
    }
}

fn insert_range(have: &mut Vec<(usize, usize)>, new: (usize, usize)) {
    have.push(new);
    have.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(have.len());
    for r in have.drain(..) {
        match merged.last_mut() {
            Some(last) if r.0 <= last.1 => last.1 = last.1.max(r.1),
            _ => merged.push(r),
        }
    }
    *have = merged;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(id: u16, frag_word: u16, payload: &[u8]) -> Vec<u8> {
        let total = (20 + payload.len()) as u16;
        let mut p = vec![0x45, 0];
        p.extend_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&frag_word.to_be_bytes());
        p.extend_from_slice(&[64, PROTO_UDP, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        p.extend_from_slice(payload);
        p
    }

    fn key(p: &IpPacket<'_>) -> FragmentKey {
        FragmentKey {
            src: p.src,
            dst: p.dst,
            id: p.fragment.map_or(0, |f| f.id),
            proto: p.proto,
            vlan: None,
        }
    }

    #[test]
    fn ipv4_header_and_trailing_padding() {
        let mut pkt = v4(1, 0, b"hello");
        pkt.extend_from_slice(&[0; 4]);
        let p = parse(&pkt).unwrap();
        assert_eq!(p.payload, b"hello");
        assert_eq!(p.proto, PROTO_UDP);
        assert_eq!(p.fragment, None);
        assert_eq!(parse(&pkt[..22]), Err(IpSkip::Malformed));
    }

    #[test]
    fn ipv4_fragments_reassemble_in_any_order() {
        let a = v4(9, 0x2000, &[1u8; 16]);
        let b = v4(9, 0x2000 | 2, &[2u8; 16]);
        let c = v4(9, 4, &[3u8; 5]);
        let mut d = Defragmenter::default();
        for (i, pkt) in [&c, &a].into_iter().enumerate() {
            let p = parse(pkt).unwrap();
            assert_eq!(
                d.add(key(&p), p.fragment.unwrap(), p.proto, p.payload, i as u64),
                Reassembled::Pending
            );
        }
        let p = parse(&b).unwrap();
        match d.add(key(&p), p.fragment.unwrap(), p.proto, p.payload, 3) {
            Reassembled::Complete { proto, payload } => {
                assert_eq!(proto, PROTO_UDP);
                assert_eq!(payload.len(), 37);
                assert_eq!(&payload[16..32], &[2u8; 16]);
                assert_eq!(payload[36], 3);
            }
            other => panic!("expected a complete datagram, got {other:?}"),
        }
        assert_eq!(d.in_progress(), 0);
    }

    #[test]
    fn incomplete_fragments_expire_and_are_counted() {
        let a = v4(5, 0x2000, &[1u8; 8]);
        let mut d = Defragmenter::default();
        let p = parse(&a).unwrap();
        d.add(key(&p), p.fragment.unwrap(), p.proto, p.payload, 0);
        let other = v4(6, 0x2000, &[1u8; 8]);
        let q = parse(&other).unwrap();
        d.add(
            key(&q),
            q.fragment.unwrap(),
            q.proto,
            q.payload,
            FRAGMENT_TIMEOUT_US + 1,
        );
        assert_eq!(d.dropped, 1);
        assert_eq!(d.in_progress(), 1);
    }

    #[test]
    fn the_table_is_bounded() {
        let mut d = Defragmenter::default();
        for id in 0..(MAX_DATAGRAMS as u16 + 10) {
            let pkt = v4(id, 0x2000, &[0u8; 8]);
            let p = parse(&pkt).unwrap();
            d.add(
                key(&p),
                p.fragment.unwrap(),
                p.proto,
                p.payload,
                u64::from(id),
            );
        }
        assert_eq!(d.in_progress(), MAX_DATAGRAMS);
        assert_eq!(d.dropped, 10);
    }

    #[test]
    fn oversized_datagram_is_refused() {
        let pkt = v4(1, 0x2000 | 8190, &[0u8; 64]);
        let p = parse(&pkt).unwrap();
        let mut d = Defragmenter::default();
        assert_eq!(
            d.add(key(&p), p.fragment.unwrap(), p.proto, p.payload, 0),
            Reassembled::Invalid
        );
    }

    #[test]
    fn ipv6_with_extension_and_fragment_headers() {
        let mut pkt = vec![0x60, 0, 0, 0];
        let body = b"sip!";
        let payload_len = (8 + 8 + body.len()) as u16;
        pkt.extend_from_slice(&payload_len.to_be_bytes());
        pkt.extend_from_slice(&[0, 64]); // next: hop-by-hop
        pkt.extend_from_slice(&[0u8; 15]);
        pkt.push(1);
        pkt.extend_from_slice(&[0u8; 15]);
        pkt.push(2);
        pkt.extend_from_slice(&[44, 0, 1, 4, 0, 0, 0, 0]); // hop-by-hop, next: fragment
        pkt.extend_from_slice(&[PROTO_UDP, 0, 0, 1, 0, 0, 0, 42]); // first fragment, more
        pkt.extend_from_slice(body);
        let p = parse(&pkt).unwrap();
        assert_eq!(p.proto, PROTO_UDP);
        assert_eq!(p.payload, body);
        assert_eq!(
            p.fragment,
            Some(FragmentInfo {
                id: 42,
                offset: 0,
                more: true
            })
        );
        assert_eq!(p.dst, "::2".parse::<IpAddr>().unwrap());
    }
}
