//! Strips the link layer of a captured frame down to its IP packet, for the link
//! types SIP captures come in (tcpdump LINKTYPE_ values).

/// tcpdump link types (<https://www.tcpdump.org/linktypes.html>).
pub mod linktype {
    pub const NULL: u32 = 0;
    pub const ETHERNET: u32 = 1;
    /// `DLT_RAW` as OpenBSD numbers it.
    pub const RAW_OPENBSD: u32 = 12;
    pub const RAW: u32 = 101;
    pub const LOOP: u32 = 108;
    pub const LINUX_SLL: u32 = 113;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    pub const LINUX_SLL2: u32 = 276;
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86DD;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88A8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;
/// At most this many stacked VLAN tags are unwrapped (QinQ uses two).
const MAX_VLAN_TAGS: usize = 4;

/// Why a frame carries no IP packet for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkSkip {
    /// A link type this reader does not decode.
    UnsupportedLinkType(u32),
    /// Not IP (ARP, LLDP, PPPoE discovery, ...).
    NotIp,
    /// Shorter than its link header.
    Truncated,
}

/// The IP packet inside a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inner<'a> {
    pub ip: &'a [u8],
    /// The 802.1Q VLAN id of the innermost tag (kept apart in fragment keys).
    pub vlan: Option<u16>,
}

/// Unwraps the link layer of `data` according to `linktype`.
pub fn decapsulate(linktype: u32, data: &[u8]) -> Result<Inner<'_>, LinkSkip> {
    match linktype {
        linktype::ETHERNET => ethernet(data),
        linktype::RAW | linktype::RAW_OPENBSD | linktype::IPV4 | linktype::IPV6 => by_version(data),
        linktype::LINUX_SLL => {
            // Linux cooked v1: type(2) ARPHRD(2) addr len(2) addr(8) protocol(2).
            let proto = be16(data, 14).ok_or(LinkSkip::Truncated)?;
            ethertype_payload(proto, &data[16..], None, 0)
        }
        linktype::LINUX_SLL2 => {
            // Linux cooked v2: protocol(2) reserved(2) ifindex(4) ARPHRD(2) type(1) addr len(1) addr(8).
            let proto = be16(data, 0).ok_or(LinkSkip::Truncated)?;
            if data.len() < 20 {
                return Err(LinkSkip::Truncated);
            }
            ethertype_payload(proto, &data[20..], None, 0)
        }
        linktype::NULL | linktype::LOOP => null_loopback(linktype, data),
        other => Err(LinkSkip::UnsupportedLinkType(other)),
    }
}

fn ethernet(data: &[u8]) -> Result<Inner<'_>, LinkSkip> {
    let ethertype = be16(data, 12).ok_or(LinkSkip::Truncated)?;
    ethertype_payload(ethertype, &data[14..], None, 0)
}

/// Follows an EtherType through VLAN tags (IEEE 802.1Q / 802.1ad) and PPPoE
/// sessions (RFC 2516) to IPv4 or IPv6.
fn ethertype_payload(
    ethertype: u16,
    rest: &[u8],
    vlan: Option<u16>,
    depth: usize,
) -> Result<Inner<'_>, LinkSkip> {
    match ethertype {
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => Ok(Inner { ip: rest, vlan }),
        ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD if depth < MAX_VLAN_TAGS => {
            let tci = be16(rest, 0).ok_or(LinkSkip::Truncated)?;
            let inner = be16(rest, 2).ok_or(LinkSkip::Truncated)?;
            ethertype_payload(inner, &rest[4..], Some(tci & 0x0FFF), depth + 1)
        }
        ETHERTYPE_PPPOE_SESSION => {
            // ver/type(1) code(1) session(2) length(2), then the PPP protocol (2).
            let length = usize::from(be16(rest, 4).ok_or(LinkSkip::Truncated)?);
            let proto = be16(rest, 6).ok_or(LinkSkip::Truncated)?;
            let end = (6 + length).min(rest.len());
            if end < 8 {
                return Err(LinkSkip::Truncated);
            }
            match proto {
                PPP_IPV4 | PPP_IPV6 => Ok(Inner {
                    ip: &rest[8..end],
                    vlan,
                }),
                _ => Err(LinkSkip::NotIp),
            }
        }
        _ => Err(LinkSkip::NotIp),
    }
}

/// Raw IP: the version nibble says which.
fn by_version(data: &[u8]) -> Result<Inner<'_>, LinkSkip> {
    match data.first().map(|b| b >> 4) {
        Some(4) | Some(6) => Ok(Inner {
            ip: data,
            vlan: None,
        }),
        Some(_) => Err(LinkSkip::NotIp),
        None => Err(LinkSkip::Truncated),
    }
}

/// BSD loopback: a 4-byte address family, in host byte order of the capturing
/// machine for NULL and in network byte order for LOOP. IPv6 is 10, 24, 28 or
/// 30 depending on the OS.
fn null_loopback(linktype: u32, data: &[u8]) -> Result<Inner<'_>, LinkSkip> {
    if data.len() < 4 {
        return Err(LinkSkip::Truncated);
    }
    let word = [data[0], data[1], data[2], data[3]];
    let families = if linktype == linktype::LOOP {
        [u32::from_be_bytes(word), u32::from_be_bytes(word)]
    } else {
        [u32::from_le_bytes(word), u32::from_be_bytes(word)]
    };
    if families.iter().any(|f| matches!(f, 2 | 10 | 24 | 28 | 30)) {
        by_version(&data[4..])
    } else {
        Err(LinkSkip::NotIp)
    }
}

fn be16(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*data.get(at)?, *data.get(at + 1)?]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: &[u8] = &[0x45, 0, 0, 20];

    fn eth(ethertype: u16, rest: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(rest);
        f
    }

    #[test]
    fn ethernet_ipv4_and_ipv6() {
        assert_eq!(
            decapsulate(linktype::ETHERNET, &eth(0x0800, IP))
                .unwrap()
                .ip,
            IP
        );
        assert_eq!(
            decapsulate(linktype::ETHERNET, &eth(0x86DD, &[0x60]))
                .unwrap()
                .ip,
            &[0x60]
        );
        assert_eq!(
            decapsulate(linktype::ETHERNET, &eth(0x0806, IP)),
            Err(LinkSkip::NotIp)
        );
        assert_eq!(
            decapsulate(linktype::ETHERNET, &[0u8; 13]),
            Err(LinkSkip::Truncated)
        );
    }

    #[test]
    fn vlan_tags_stack_and_keep_the_inner_id() {
        let mut tags = vec![0x00, 0x64, 0x81, 0x00, 0x20, 0x07, 0x08, 0x00];
        tags.extend_from_slice(IP);
        let frame = eth(0x88A8, &tags);
        let inner = decapsulate(linktype::ETHERNET, &frame).unwrap();
        assert_eq!(inner.ip, IP);
        assert_eq!(inner.vlan, Some(7));
    }

    #[test]
    fn pppoe_session_ipv4_respects_its_length() {
        let mut p = vec![0x11, 0x00, 0x12, 0x34, 0x00, 6, 0x00, 0x21];
        p.extend_from_slice(IP);
        p.extend_from_slice(&[0xEE; 6]); // Ethernet padding after the PPPoE payload
        let frame = eth(0x8864, &p);
        assert_eq!(decapsulate(linktype::ETHERNET, &frame).unwrap().ip, IP);
        let mut lcp = vec![0x11, 0x00, 0x12, 0x34, 0x00, 2, 0xC0, 0x21];
        lcp.extend_from_slice(IP);
        assert_eq!(
            decapsulate(linktype::ETHERNET, &eth(0x8864, &lcp)),
            Err(LinkSkip::NotIp)
        );
    }

    #[test]
    fn linux_cooked_v1_and_v2() {
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&[0x08, 0x00]);
        sll.extend_from_slice(IP);
        assert_eq!(decapsulate(linktype::LINUX_SLL, &sll).unwrap().ip, IP);
        let mut sll2 = vec![0x86, 0xDD];
        sll2.extend_from_slice(&[0u8; 18]);
        sll2.push(0x60);
        assert_eq!(
            decapsulate(linktype::LINUX_SLL2, &sll2).unwrap().ip,
            &[0x60]
        );
        assert_eq!(
            decapsulate(linktype::LINUX_SLL2, &sll2[..19]),
            Err(LinkSkip::Truncated)
        );
    }

    #[test]
    fn raw_ip_by_version_nibble() {
        assert_eq!(decapsulate(linktype::RAW, IP).unwrap().ip, IP);
        assert_eq!(
            decapsulate(linktype::IPV6, &[0x60, 0]).unwrap().ip,
            &[0x60, 0]
        );
        assert_eq!(decapsulate(linktype::RAW, &[0x50]), Err(LinkSkip::NotIp));
    }

    #[test]
    fn null_in_either_byte_order_and_loop_in_network_order() {
        let mut le = 2u32.to_le_bytes().to_vec();
        le.extend_from_slice(IP);
        assert_eq!(decapsulate(linktype::NULL, &le).unwrap().ip, IP);
        let mut be6 = 30u32.to_be_bytes().to_vec();
        be6.push(0x60);
        assert_eq!(decapsulate(linktype::NULL, &be6).unwrap().ip, &[0x60]);
        let mut lo = 24u32.to_be_bytes().to_vec();
        lo.push(0x60);
        assert_eq!(decapsulate(linktype::LOOP, &lo).unwrap().ip, &[0x60]);
        assert_eq!(
            decapsulate(linktype::NULL, &[7, 0, 0, 0, 0x45]),
            Err(LinkSkip::NotIp)
        );
    }

    #[test]
    fn unknown_link_type_is_reported_not_guessed() {
        assert_eq!(
            decapsulate(147, IP),
            Err(LinkSkip::UnsupportedLinkType(147))
        );
    }
}
