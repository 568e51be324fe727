//! The stream of SIP messages in a capture: frames from [`super::source`], link
//! layers stripped, IP fragments reassembled, UDP datagrams and reassembled TCP
//! streams cut into messages. Anything else is counted, never fatal.

use std::collections::VecDeque;
use std::io::Read;
use std::net::SocketAddr;

use bytes::Bytes;

use super::error::CaptureError;
use super::framing;
use super::ip::{self, Defragmenter, FragmentKey, IpSkip, Reassembled};
use super::link::{self, LinkSkip};
use super::source::FrameSource;
use super::tcp::{self, StreamMessage, TcpReassembler, TcpStats};
use crate::engine::Transport;

/// One SIP message as it crossed the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedMessage {
    /// The packet that completed it (1-based, Wireshark's numbering).
    pub packet: u64,
    /// Capture time, microseconds since the Unix epoch.
    pub time_us: u64,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub transport: Transport,
    pub data: Bytes,
    /// The TCP connection it came on (both directions share the id).
    pub conn: Option<u64>,
    /// Link type of the frame, so the output can use the same.
    pub linktype: u32,
}

impl CapturedMessage {
    /// Capture time in unix milliseconds, the engine's clock.
    pub fn time_ms(&self) -> u64 {
        self.time_us / 1000
    }
}

/// What the reader skipped and why, for the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CaptureStats {
    pub packets: u64,
    pub sip_messages: u64,
    /// UDP datagrams that are not SIP (RTP, DNS, ...).
    pub non_sip_datagrams: u64,
    /// CRLF keep-alives over UDP (RFC 5626 §4.4.1).
    pub udp_keepalives: u64,
    /// Frames that are not IP (ARP, ...).
    pub not_ip: u64,
    /// Frames of a link type this reader does not decode.
    pub unsupported_link: u64,
    /// Frames, IP or UDP/TCP headers that are malformed or cut short.
    pub malformed: u64,
    /// IP protocols other than UDP and TCP.
    pub other_protocol: u64,
    pub fragments: u64,
    pub reassembled: u64,
    /// Fragmented datagrams that never completed, or were invalid.
    pub fragments_lost: u64,
    pub tcp: TcpStats,
}

/// Reads SIP messages out of a pcap or pcapng stream in capture order.
pub struct CaptureReader<R: Read> {
    source: FrameSource<R>,
    defrag: Defragmenter,
    tcp: TcpReassembler,
    ready: VecDeque<CapturedMessage>,
    scratch: Vec<StreamMessage>,
    stats: CaptureStats,
    finished: bool,
    first_linktype: Option<u32>,
}

impl<R: Read> CaptureReader<R> {
    pub fn new(reader: R) -> Result<Self, CaptureError> {
        let source = FrameSource::new(reader)?;
        let first_linktype = source.pcap_linktype();
        Ok(CaptureReader {
            source,
            defrag: Defragmenter::default(),
            tcp: TcpReassembler::default(),
            ready: VecDeque::new(),
            scratch: Vec::new(),
            stats: CaptureStats::default(),
            finished: false,
            first_linktype,
        })
    }

    /// Counters so far (complete once [`Self::next_message`] returned `None`).
    pub fn stats(&self) -> CaptureStats {
        let mut s = self.stats;
        s.tcp = self.tcp.stats;
        s.fragments_lost += self.defrag.dropped;
        s
    }

    /// Bytes of the file read so far.
    pub fn bytes_read(&self) -> u64 {
        self.source.bytes_read()
    }

    /// The link type of the file (pcap) or of its first packet (pcapng).
    pub fn linktype(&self) -> Option<u32> {
        self.first_linktype
    }

    /// The next SIP message, `None` at the end of the capture.
    pub fn next_message(&mut self) -> Result<Option<CapturedMessage>, CaptureError> {
        loop {
            if let Some(m) = self.ready.pop_front() {
                self.stats.sip_messages += 1;
                return Ok(Some(m));
            }
            if self.finished {
                return Ok(None);
            }
            match self.source.next_frame()? {
                Some(frame) => {
                    self.stats.packets += 1;
                    self.first_linktype.get_or_insert(frame.linktype);
                    self.frame(frame.number, frame.time_us, frame.linktype, &frame.data);
                }
                None => {
                    self.finished = true;
                    self.tcp.finish(&mut self.scratch);
                    self.take_stream_messages(
                        self.source_last(),
                        0,
                        self.first_linktype.unwrap_or(link::linktype::ETHERNET),
                    );
                    self.stats.fragments_lost += self.defrag.in_progress() as u64;
                }
            }
        }
    }

    fn source_last(&self) -> u64 {
        self.stats.packets
    }

    fn frame(&mut self, number: u64, time_us: u64, linktype: u32, data: &[u8]) {
        let inner = match link::decapsulate(linktype, data) {
            Ok(i) => i,
            Err(LinkSkip::NotIp) => {
                self.stats.not_ip += 1;
                return;
            }
            Err(LinkSkip::UnsupportedLinkType(_)) => {
                self.stats.unsupported_link += 1;
                return;
            }
            Err(LinkSkip::Truncated) => {
                self.stats.malformed += 1;
                return;
            }
        };
        let packet = match ip::parse(inner.ip) {
            Ok(p) => p,
            Err(IpSkip::Malformed) | Err(IpSkip::Fragment) => {
                self.stats.malformed += 1;
                return;
            }
        };
        if let Some(frag) = packet.fragment {
            self.stats.fragments += 1;
            let key = FragmentKey {
                src: packet.src,
                dst: packet.dst,
                id: frag.id,
                proto: packet.proto,
                vlan: inner.vlan,
            };
            match self
                .defrag
                .add(key, frag, packet.proto, packet.payload, time_us)
            {
                Reassembled::Complete { proto, payload } => {
                    self.stats.reassembled += 1;
                    self.transport(
                        number, time_us, linktype, packet.src, packet.dst, proto, &payload,
                    );
                }
                Reassembled::Pending => {}
                Reassembled::Invalid => {}
            }
            return;
        }
        self.transport(
            number,
            time_us,
            linktype,
            packet.src,
            packet.dst,
            packet.proto,
            packet.payload,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn transport(
        &mut self,
        number: u64,
        time_us: u64,
        linktype: u32,
        src_ip: std::net::IpAddr,
        dst_ip: std::net::IpAddr,
        proto: u8,
        payload: &[u8],
    ) {
        match proto {
            ip::PROTO_UDP => {
                if payload.len() < 8 {
                    self.stats.malformed += 1;
                    return;
                }
                let sp = u16::from_be_bytes([payload[0], payload[1]]);
                let dp = u16::from_be_bytes([payload[2], payload[3]]);
                let len = usize::from(u16::from_be_bytes([payload[4], payload[5]]));
                // UDP length 0 is allowed for jumbograms (RFC 2675); otherwise trust it.
                let end = if len == 0 { payload.len() } else { len };
                if end < 8 || end > payload.len() {
                    self.stats.malformed += 1;
                    return;
                }
                let data = &payload[8..end];
                if !data.is_empty() && data.iter().all(|&b| b == b'\r' || b == b'\n') {
                    self.stats.udp_keepalives += 1;
                } else if framing::looks_like_sip(data) {
                    self.ready.push_back(CapturedMessage {
                        packet: number,
                        time_us,
                        src: SocketAddr::new(src_ip, sp),
                        dst: SocketAddr::new(dst_ip, dp),
                        transport: Transport::Udp,
                        data: Bytes::copy_from_slice(data),
                        conn: None,
                        linktype,
                    });
                } else {
                    self.stats.non_sip_datagrams += 1;
                }
            }
            ip::PROTO_TCP => {
                let Some((sp, dp, seg)) = tcp::parse_segment(payload) else {
                    self.stats.malformed += 1;
                    return;
                };
                self.tcp.segment(
                    SocketAddr::new(src_ip, sp),
                    SocketAddr::new(dst_ip, dp),
                    seg,
                    time_us,
                    &mut self.scratch,
                );
                self.take_stream_messages(number, time_us, linktype);
            }
            _ => self.stats.other_protocol += 1,
        }
    }

    fn take_stream_messages(&mut self, number: u64, time_us: u64, linktype: u32) {
        for m in self.scratch.drain(..) {
            self.ready.push_back(CapturedMessage {
                packet: number,
                time_us,
                src: m.src,
                dst: m.dst,
                transport: Transport::Tcp,
                data: m.data,
                conn: Some(m.conn),
                linktype,
            });
        }
    }
}
