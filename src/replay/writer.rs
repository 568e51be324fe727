//! Writes what the proxy would have sent as a pcap file that Wireshark and
//! tshark open: the capture's link type where it can be rebuilt, capture timing,
//! real IP and UDP/TCP headers (with checksums and consistent TCP sequence numbers
//! after a three-way handshake per connection).

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use etherparse::PacketBuilder;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, Endianness, TsResolution};

use super::link::linktype;
use crate::engine::Transport;

/// The largest TCP segment written; longer messages span several segments.
const SEGMENT: usize = 32 * 1024;
const TTL: u8 = 64;
const WINDOW: u16 = 65_535;

/// Why the output could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("writing the output capture failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("writing the output capture failed: {0}")]
    Pcap(#[from] pcap_file::PcapError),
    #[error("cannot build a packet: {0}")]
    Build(String),
}

/// A pcap file of sent messages.
pub struct PcapOutput<W: Write> {
    writer: PcapWriter<W>,
    linktype: u32,
    /// Next sequence number per TCP direction (after the handshake).
    tcp_next: HashMap<(SocketAddr, SocketAddr), u32>,
    packets: u64,
    buf: Vec<u8>,
}

impl<W: Write> PcapOutput<W> {
    /// A new output in the capture's link type when it can be rebuilt (Ethernet,
    /// Linux cooked v1/v2, raw IP, BSD loopback), Ethernet otherwise. VLAN tags
    /// and PPPoE are not reproduced: the output is what the proxy sends, on its
    /// own interface.
    pub fn new(writer: W, capture_linktype: Option<u32>) -> Result<Self, WriteError> {
        let linktype = match capture_linktype {
            Some(
                l @ (linktype::ETHERNET
                | linktype::RAW
                | linktype::LINUX_SLL
                | linktype::LINUX_SLL2
                | linktype::NULL
                | linktype::LOOP),
            ) => l,
            Some(linktype::IPV4 | linktype::IPV6 | linktype::RAW_OPENBSD) => linktype::RAW,
            _ => linktype::ETHERNET,
        };
        let header = PcapHeader {
            version_major: 2,
            version_minor: 4,
            ts_correction: 0,
            ts_accuracy: 0,
            snaplen: 262_144,
            datalink: DataLink::from(linktype),
            ts_resolution: TsResolution::MicroSecond,
            endianness: Endianness::native(),
        };
        Ok(PcapOutput {
            writer: PcapWriter::with_header(writer, header)?,
            linktype,
            tcp_next: HashMap::new(),
            packets: 0,
            buf: Vec::with_capacity(2048),
        })
    }

    /// The link type written.
    pub fn linktype(&self) -> u32 {
        self.linktype
    }

    /// Packets written so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Writes one message sent from `src` to `dst` at `time_us`.
    pub fn write(
        &mut self,
        time_us: u64,
        src: SocketAddr,
        dst: SocketAddr,
        transport: Transport,
        data: &[u8],
    ) -> Result<(), WriteError> {
        let (src, dst) = same_family(src, dst);
        match transport {
            Transport::Udp => self.packet(time_us, src, dst, Flags::Udp, data),
            Transport::Tcp => {
                let seq = match self.tcp_next.get(&(src, dst)) {
                    Some(s) => *s,
                    None => self.handshake(time_us, src, dst)?,
                };
                let mut seq = seq;
                for chunk in data.chunks(SEGMENT) {
                    let ack = self.tcp_next.get(&(dst, src)).copied().unwrap_or(0);
                    self.packet(time_us, src, dst, Flags::Data { seq, ack }, chunk)?;
                    seq = seq.wrapping_add(chunk.len() as u32);
                }
                self.tcp_next.insert((src, dst), seq);
                Ok(())
            }
        }
    }

    /// Flushes and returns the inner writer.
    pub fn finish(self) -> Result<W, WriteError> {
        let mut w = self.writer.into_writer();
        w.flush()?;
        Ok(w)
    }

    /// SYN, SYN-ACK, ACK: Wireshark then follows the stream from its start.
    fn handshake(
        &mut self,
        time_us: u64,
        src: SocketAddr,
        dst: SocketAddr,
    ) -> Result<u32, WriteError> {
        let isn_a = initial_seq(src, dst);
        let isn_b = self
            .tcp_next
            .get(&(dst, src))
            .map(|s| s.wrapping_sub(1))
            .unwrap_or_else(|| initial_seq(dst, src));
        self.packet(time_us, src, dst, Flags::Syn { seq: isn_a }, &[])?;
        self.packet(
            time_us,
            dst,
            src,
            Flags::SynAck {
                seq: isn_b,
                ack: isn_a.wrapping_add(1),
            },
            &[],
        )?;
        let seq = isn_a.wrapping_add(1);
        let ack = isn_b.wrapping_add(1);
        self.packet(time_us, src, dst, Flags::Data { seq, ack }, &[])?;
        self.tcp_next.insert((src, dst), seq);
        self.tcp_next.entry((dst, src)).or_insert(ack);
        Ok(seq)
    }

    fn packet(
        &mut self,
        time_us: u64,
        src: SocketAddr,
        dst: SocketAddr,
        flags: Flags,
        payload: &[u8],
    ) -> Result<(), WriteError> {
        self.buf.clear();
        self.link_header(src.ip(), dst.ip());
        let ip = match (src.ip(), dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), TTL),
            (IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s.octets(), d.octets(), TTL),
            _ => {
                return Err(WriteError::Build(format!(
                    "{src} and {dst} are of different IP families"
                )))
            }
        };
        let built = match flags {
            Flags::Udp => ip.udp(src.port(), dst.port()).write(&mut self.buf, payload),
            Flags::Syn { seq } => ip
                .tcp(src.port(), dst.port(), seq, WINDOW)
                .syn()
                .write(&mut self.buf, payload),
            Flags::SynAck { seq, ack } => ip
                .tcp(src.port(), dst.port(), seq, WINDOW)
                .syn()
                .ack(ack)
                .write(&mut self.buf, payload),
            Flags::Data { seq, ack } => {
                let t = ip.tcp(src.port(), dst.port(), seq, WINDOW).ack(ack);
                if payload.is_empty() {
                    t.write(&mut self.buf, payload)
                } else {
                    t.psh().write(&mut self.buf, payload)
                }
            }
        };
        built.map_err(|e| WriteError::Build(e.to_string()))?;
        let len = u32::try_from(self.buf.len())
            .map_err(|_| WriteError::Build("packet too large".into()))?;
        let packet = PcapPacket::new(Duration::from_micros(time_us), len, &self.buf);
        self.writer.write_packet(&packet)?;
        self.packets += 1;
        Ok(())
    }

    fn link_header(&mut self, src: IpAddr, dst: IpAddr) {
        let v6 = src.is_ipv6();
        let ethertype: [u8; 2] = if v6 { [0x86, 0xDD] } else { [0x08, 0x00] };
        match self.linktype {
            linktype::ETHERNET => {
                self.buf.extend_from_slice(&mac(dst));
                self.buf.extend_from_slice(&mac(src));
                self.buf.extend_from_slice(&ethertype);
            }
            linktype::LINUX_SLL => {
                // Packet type 4 = "sent by us" (the proxy's point of view).
                self.buf.extend_from_slice(&[0, 4, 0, 1, 0, 6]);
                self.buf.extend_from_slice(&mac(src));
                self.buf.extend_from_slice(&[0, 0]);
                self.buf.extend_from_slice(&ethertype);
            }
            linktype::LINUX_SLL2 => {
                self.buf.extend_from_slice(&ethertype);
                self.buf.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 1, 4, 6]);
                self.buf.extend_from_slice(&mac(src));
                self.buf.extend_from_slice(&[0, 0]);
            }
            linktype::NULL => {
                let family: u32 = if v6 { 30 } else { 2 };
                self.buf.extend_from_slice(&family.to_ne_bytes());
            }
            linktype::LOOP => {
                let family: u32 = if v6 { 30 } else { 2 };
                self.buf.extend_from_slice(&family.to_be_bytes());
            }
            _ => {}
        }
    }
}

#[derive(Clone, Copy)]
enum Flags {
    Udp,
    Syn { seq: u32 },
    SynAck { seq: u32, ack: u32 },
    Data { seq: u32, ack: u32 },
}

/// A locally administered MAC address derived from the IP, so each host keeps
/// one address across the file.
fn mac(ip: IpAddr) -> [u8; 6] {
    let o = match ip {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(a) => {
            let s = a.octets();
            [s[12], s[13], s[14], s[15]]
        }
    };
    [0x02, 0x00, o[0], o[1], o[2], o[3]]
}

/// A deterministic initial sequence number per direction, so the output of two
/// runs is byte-identical.
fn initial_seq(src: SocketAddr, dst: SocketAddr) -> u32 {
    let mut h: u32 = 0x811C_9DC5;
    for b in format!("{src}>{dst}").bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    h
}

/// IPv4 peers of an IPv6 proxy (or the reverse) are written as IPv4-mapped IPv6.
fn same_family(src: SocketAddr, dst: SocketAddr) -> (SocketAddr, SocketAddr) {
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V6(_)) => (
            SocketAddr::new(IpAddr::V6(s.to_ipv6_mapped()), src.port()),
            dst,
        ),
        (IpAddr::V6(_), IpAddr::V4(d)) => (
            src,
            SocketAddr::new(IpAddr::V6(d.to_ipv6_mapped()), dst.port()),
        ),
        _ => (src, dst),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::CaptureReader;

    const MSG: &[u8] = b"NOTIFY sip:bob@10.0.0.2 SIP/2.0\r\nContent-Length: 4\r\n\r\nbody";

    fn roundtrip(
        linktype: Option<u32>,
        transport: Transport,
        a: &str,
        b: &str,
    ) -> Vec<crate::replay::CapturedMessage> {
        let (a, b): (SocketAddr, SocketAddr) = (a.parse().unwrap(), b.parse().unwrap());
        let mut out = PcapOutput::new(Vec::new(), linktype).unwrap();
        out.write(1_700_000_000_123_456, a, b, transport, MSG)
            .unwrap();
        out.write(1_700_000_001_000_000, b, a, transport, MSG)
            .unwrap();
        out.write(1_700_000_002_000_000, a, b, transport, &[MSG, MSG].concat())
            .unwrap();
        let bytes = out.finish().unwrap();
        let mut r = CaptureReader::new(bytes.as_slice()).unwrap();
        let mut got = Vec::new();
        while let Some(m) = r.next_message().unwrap() {
            got.push(m);
        }
        assert_eq!(r.stats().tcp.gaps, 0);
        assert_eq!(r.stats().tcp.retransmitted_segments, 0);
        got
    }

    #[test]
    fn every_link_type_reads_back_what_was_written() {
        for lt in [
            linktype::ETHERNET,
            linktype::RAW,
            linktype::LINUX_SLL,
            linktype::LINUX_SLL2,
            linktype::NULL,
            linktype::LOOP,
        ] {
            for t in [Transport::Udp, Transport::Tcp] {
                let got = roundtrip(Some(lt), t, "10.0.0.1:5060", "10.0.0.2:40000");
                assert_eq!(
                    got.len(),
                    if t == Transport::Udp { 3 } else { 4 },
                    "link {lt} {t:?}"
                );
                assert_eq!(got[0].data.as_ref(), MSG);
                assert_eq!(got[0].time_us, 1_700_000_000_123_456);
                assert_eq!(got[0].src, "10.0.0.1:5060".parse().unwrap());
                assert_eq!(got[0].linktype, lt);
                assert_eq!(got[1].dst, "10.0.0.1:5060".parse().unwrap());
            }
        }
    }

    #[test]
    fn ipv6_and_unsupported_link_types() {
        let got = roundtrip(Some(147), Transport::Tcp, "[::1]:5060", "[::1]:40000");
        assert_eq!(got[0].linktype, linktype::ETHERNET);
        assert_eq!(got.len(), 4);
        let mapped = roundtrip(None, Transport::Udp, "127.0.0.1:5060", "[::1]:5070");
        assert_eq!(mapped[0].src, "[::ffff:127.0.0.1]:5060".parse().unwrap());
    }
}
