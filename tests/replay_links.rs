//! End to end through the capture reader: files whose frames use each link
//! type, 802.1Q VLAN tags, PPPoE sessions, fragmented UDP and out-of-order TCP.

use etherparse::PacketBuilder;
use presence_proxy::engine::Transport;
use presence_proxy::replay::{CaptureReader, CapturedMessage};

const NOTIFY: &[u8] =
    b"NOTIFY sip:bob@10.0.0.2:5062 SIP/2.0\r\nCall-ID: n1\r\nContent-Length: 4\r\n\r\nbody";

fn pcap(linktype: u32, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut f = Vec::new();
    for v in [
        0xA1B2_C3D4u32.to_le_bytes().to_vec(),
        2u16.to_le_bytes().to_vec(),
        4u16.to_le_bytes().to_vec(),
    ] {
        f.extend_from_slice(&v);
    }
    f.extend_from_slice(&[0u8; 8]);
    f.extend_from_slice(&65535u32.to_le_bytes());
    f.extend_from_slice(&linktype.to_le_bytes());
    for (i, fr) in frames.iter().enumerate() {
        f.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        f.extend_from_slice(&(i as u32 * 1000).to_le_bytes());
        f.extend_from_slice(&(fr.len() as u32).to_le_bytes());
        f.extend_from_slice(&(fr.len() as u32).to_le_bytes());
        f.extend_from_slice(fr);
    }
    f
}

fn udp_ip(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(5060, 5062)
        .write(&mut v, payload)
        .unwrap();
    v
}

fn eth(ethertype: u16, inner: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(inner);
    f
}

fn read(bytes: &[u8]) -> (Vec<CapturedMessage>, presence_proxy::replay::CaptureStats) {
    let mut r = CaptureReader::new(bytes).unwrap();
    let mut v = Vec::new();
    while let Some(m) = r.next_message().unwrap() {
        v.push(m);
    }
    (v, r.stats())
}

fn assert_one_notify(bytes: &[u8]) {
    let (msgs, _) = read(bytes);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].data.as_ref(), NOTIFY);
    assert_eq!(msgs[0].src, "10.0.0.1:5060".parse().unwrap());
    assert_eq!(msgs[0].dst, "10.0.0.2:5062".parse().unwrap());
}

#[test]
fn ethernet_with_vlan_and_qinq() {
    assert_one_notify(&pcap(1, &[eth(0x0800, &udp_ip(NOTIFY))]));
    let mut tagged = vec![0x00, 0x0A, 0x08, 0x00];
    tagged.extend_from_slice(&udp_ip(NOTIFY));
    assert_one_notify(&pcap(1, &[eth(0x8100, &tagged)]));
    let mut qinq = vec![0x00, 0x64, 0x81, 0x00, 0x00, 0x0A, 0x08, 0x00];
    qinq.extend_from_slice(&udp_ip(NOTIFY));
    assert_one_notify(&pcap(1, &[eth(0x88A8, &qinq)]));
}

#[test]
fn pppoe_session() {
    let ip = udp_ip(NOTIFY);
    let mut p = vec![0x11, 0x00, 0x00, 0x01];
    p.extend_from_slice(&((ip.len() + 2) as u16).to_be_bytes());
    p.extend_from_slice(&[0x00, 0x21]);
    p.extend_from_slice(&ip);
    assert_one_notify(&pcap(1, &[eth(0x8864, &p)]));
}

#[test]
fn linux_cooked_v1_v2_raw_and_loopback() {
    let ip = udp_ip(NOTIFY);
    let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(&ip);
    assert_one_notify(&pcap(113, &[sll]));
    let mut sll2 = vec![
        0x08, 0x00, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0,
    ];
    sll2.extend_from_slice(&ip);
    assert_one_notify(&pcap(276, &[sll2]));
    assert_one_notify(&pcap(101, std::slice::from_ref(&ip)));
    assert_one_notify(&pcap(228, std::slice::from_ref(&ip)));
    let mut null = 2u32.to_le_bytes().to_vec();
    null.extend_from_slice(&ip);
    assert_one_notify(&pcap(0, &[null]));
    let mut lo = 2u32.to_be_bytes().to_vec();
    lo.extend_from_slice(&ip);
    assert_one_notify(&pcap(108, &[lo]));
}

#[test]
fn fragmented_udp_reassembles_and_non_sip_is_counted() {
    // A 3000-byte NOTIFY split into three IPv4 fragments, sent last-first.
    let body = "x".repeat(2900);
    let big = format!(
        "NOTIFY sip:bob@10.0.0.2 SIP/2.0\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let whole = udp_ip(big.as_bytes());
    let payload = &whole[20..];
    let frag = |off: usize, len: usize, more: bool| {
        let chunk = &payload[off..(off + len).min(payload.len())];
        let mut h = whole[..20].to_vec();
        h[2..4].copy_from_slice(&((20 + chunk.len()) as u16).to_be_bytes());
        h[4..6].copy_from_slice(&7u16.to_be_bytes());
        let word = ((off / 8) as u16) | if more { 0x2000 } else { 0 };
        h[6..8].copy_from_slice(&word.to_be_bytes());
        h[10..12].copy_from_slice(&[0, 0]);
        h.extend_from_slice(chunk);
        eth(0x0800, &h)
    };
    let rtp = eth(0x0800, &udp_ip(&[0x80, 0x00, 0x12, 0x34]));
    let arp = eth(0x0806, &[0u8; 28]);
    let bytes = pcap(
        1,
        &[
            frag(2400, 1000, false),
            rtp,
            frag(1200, 1200, true),
            arp,
            frag(0, 1200, true),
        ],
    );
    let (msgs, stats) = read(&bytes);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].data.as_ref(), big.as_bytes());
    assert_eq!(
        (stats.fragments, stats.reassembled, stats.fragments_lost),
        (3, 1, 0)
    );
    assert_eq!((stats.non_sip_datagrams, stats.not_ip), (1, 1));
}

#[test]
fn tcp_out_of_order_retransmitted_and_lost_segments() {
    let stream = [
        NOTIFY,
        b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
        NOTIFY,
    ]
    .concat();
    let seg = |seq: u32, data: &[u8], syn: bool| {
        let mut v = Vec::new();
        let b = PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64).tcp(5060, 5062, seq, 1000);
        let b = if syn { b.syn() } else { b.ack(1) };
        b.write(&mut v, data).unwrap();
        eth(0x0800, &v)
    };
    let (a, rest) = stream.split_at(30);
    let (b, c) = rest.split_at(40);
    let frames = [
        seg(99, &[], true),
        seg(100 + 30, b, false),
        seg(100, a, false),
        seg(100, a, false),
        seg(100 + 70, c, false),
    ];
    let (msgs, stats) = read(&pcap(1, &frames));
    assert_eq!(msgs.len(), 3);
    assert!(msgs.iter().all(|m| m.transport == Transport::Tcp));
    assert_eq!(stats.tcp.retransmitted_segments, 1);
    assert_eq!(stats.tcp.out_of_order_segments, 1);
    // Now lose the middle segment: the message it cuts is lost, the next survives.
    let frames = [
        seg(99, &[], true),
        seg(100, a, false),
        seg(100 + 70, c, false),
    ];
    let (msgs, stats) = read(&pcap(1, &frames));
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].data.as_ref(), NOTIFY);
    assert_eq!((stats.tcp.gaps, stats.tcp.gap_bytes), (1, 40));
}
