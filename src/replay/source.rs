//! Reads the frames of a pcap or pcapng file one at a time in bounded memory,
//! knowing the byte offset and number of each so a corrupt file is reported where
//! it breaks.
//!
//! `pcap_file`'s own readers hide the file offset and keep an 8 MB buffer per
//! reader, so this drives its slice parsers over a buffer of our own.

use std::io::Read;

use bytes::Bytes;
use pcap_file::pcap::PcapParser;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgParser};
use pcap_file::{PcapError, TsResolution};

use super::error::CaptureError;

/// The largest record accepted. pcapng allows blocks of any size, but a frame of
/// a SIP capture is one packet (at most 256 KiB with the largest snaplen tcpdump
/// uses); anything much bigger is a corrupt length field.
pub const MAX_RECORD: usize = 16 << 20;
const INITIAL_BUFFER: usize = 256 << 10;

/// One captured frame as the file holds it.
#[derive(Debug, Clone)]
pub struct Frame {
    /// 1-based packet number, as Wireshark counts.
    pub number: u64,
    /// Byte offset of the record in the file.
    pub offset: u64,
    /// Capture time, microseconds since the Unix epoch.
    pub time_us: u64,
    /// The link type (tcpdump LINKTYPE_ value) of the interface.
    pub linktype: u32,
    /// The captured bytes, link header included.
    pub data: Bytes,
}

enum Format {
    Pcap {
        parser: PcapParser,
        nanos: bool,
        linktype: u32,
    },
    PcapNg {
        parser: Box<PcapNgParser>,
        last_time_us: u64,
    },
}

/// Streaming frame reader over any `Read`.
pub struct FrameSource<R: Read> {
    buffer: RecordBuffer<R>,
    format: Format,
    number: u64,
}

impl<R: Read> FrameSource<R> {
    /// Reads the file header and tells pcap from pcapng by the magic number.
    pub fn new(reader: R) -> Result<Self, CaptureError> {
        let mut buffer = RecordBuffer {
            reader,
            buf: vec![0; INITIAL_BUFFER],
            start: 0,
            end: 0,
            offset: 0,
            eof: false,
            consumed: 0,
        };
        buffer.fill_at_least(4)?;
        let head = buffer.pending();
        if head.len() < 4 {
            return Err(CaptureError::NotACapture {
                reason: "file shorter than a capture header".into(),
            });
        }
        let magic = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let format = match magic {
            0x0A0D_0D0A => {
                let parser = buffer.parse(0, PcapNgParser::new)?;
                Format::PcapNg {
                    parser: Box::new(parser),
                    last_time_us: 0,
                }
            }
            0xA1B2_C3D4 | 0xA1B2_3C4D | 0xD4C3_B2A1 | 0x4D3C_B2A1 => {
                let parser = buffer.parse(0, PcapParser::new)?;
                let header = parser.header();
                Format::Pcap {
                    nanos: header.ts_resolution == TsResolution::NanoSecond,
                    linktype: u32::from(header.datalink),
                    parser,
                }
            }
            _ => {
                return Err(CaptureError::NotACapture {
                    reason: format!("unknown magic number {magic:#010x} (neither pcap nor pcapng)"),
                })
            }
        };
        Ok(FrameSource {
            buffer,
            format,
            number: 0,
        })
    }

    /// Bytes of the file read so far (for progress).
    pub fn bytes_read(&self) -> u64 {
        self.buffer.consumed
    }

    /// The link type of a classic pcap file (pcapng has one per interface).
    pub fn pcap_linktype(&self) -> Option<u32> {
        match &self.format {
            Format::Pcap { linktype, .. } => Some(*linktype),
            Format::PcapNg { .. } => None,
        }
    }

    /// The next frame, `None` at a clean end of file.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, CaptureError> {
        loop {
            self.buffer.fill_at_least(1)?;
            if self.buffer.pending().is_empty() {
                return Ok(None);
            }
            let offset = self.buffer.offset;
            let number = self.number + 1;
            let found = match &mut self.format {
                Format::Pcap {
                    parser,
                    nanos,
                    linktype,
                } => {
                    let nanos = *nanos;
                    let linktype = *linktype;
                    let parser = &*parser;
                    self.buffer.parse(number, |s| {
                        parser.next_raw_packet(s).map(|(rem, p)| {
                            let frac = u64::from(p.ts_frac);
                            let us = u64::from(p.ts_sec) * 1_000_000
                                + if nanos { frac / 1000 } else { frac };
                            (rem, Some((us, linktype, Bytes::copy_from_slice(&p.data))))
                        })
                    })?
                }
                Format::PcapNg {
                    parser,
                    last_time_us,
                } => {
                    let last = *last_time_us;
                    let found = self.buffer.parse(number, |s| ng_block(parser, last, s))?;
                    if let Some((t, _, _)) = &found {
                        *last_time_us = *t;
                    }
                    found
                }
            };
            if let Some((time_us, linktype, data)) = found {
                self.number = number;
                return Ok(Some(Frame {
                    number,
                    offset,
                    time_us,
                    linktype,
                    data,
                }));
            }
        }
    }
}

type Found = Option<(u64, u32, Bytes)>;

/// One pcapng block: a packet becomes a frame; section, interface, statistics and
/// name-resolution blocks only update the parser's state.
fn ng_block<'a>(
    parser: &mut PcapNgParser,
    last_time_us: u64,
    s: &'a [u8],
) -> Result<(&'a [u8], Found), PcapError> {
    let (rem, block) = parser.next_block(s)?;
    let found = match block {
        Block::EnhancedPacket(epb) => {
            let iface = parser
                .interfaces()
                .get(epb.interface_id as usize)
                .ok_or(PcapError::InvalidInterfaceId(epb.interface_id))?;
            let raw = u64::try_from(epb.timestamp.as_nanos()).unwrap_or(u64::MAX);
            Some((
                ng_time_us(raw, &iface.options),
                u32::from(iface.linktype),
                Bytes::copy_from_slice(&epb.data),
            ))
        }
        Block::SimplePacket(spb) => {
            // No timestamp in a simple packet block (pcapng §4.4): keep the last one.
            let iface = parser
                .interfaces()
                .first()
                .ok_or(PcapError::InvalidInterfaceId(0))?;
            Some((
                last_time_us,
                u32::from(iface.linktype),
                Bytes::copy_from_slice(&spb.data),
            ))
        }
        Block::Packet(pb) => {
            let id = u32::from(pb.interface_id);
            let iface = parser
                .interfaces()
                .get(id as usize)
                .ok_or(PcapError::InvalidInterfaceId(id))?;
            Some((
                ng_time_us(pb.timestamp, &iface.options),
                u32::from(iface.linktype),
                Bytes::copy_from_slice(&pb.data),
            ))
        }
        _ => None,
    };
    Ok((rem, found))
}

/// pcapng timestamps count units of `if_tsresol` (default 10^-6 s) plus
/// `if_tsoffset` seconds (pcapng §4.2). `pcap_file` hands the raw count over as
/// if it were nanoseconds.
fn ng_time_us(raw: u64, options: &[InterfaceDescriptionOption<'_>]) -> u64 {
    let mut resol = 6u8;
    let mut offset_s = 0u64;
    for o in options {
        match o {
            InterfaceDescriptionOption::IfTsResol(r) => resol = *r,
            InterfaceDescriptionOption::IfTsOffset(s) => offset_s = *s,
            _ => {}
        }
    }
    let raw = u128::from(raw);
    let us = if resol & 0x80 == 0 {
        let exp = u32::from(resol.min(38));
        if exp >= 6 {
            raw / 10u128.pow(exp - 6)
        } else {
            raw * 10u128.pow(6 - exp)
        }
    } else {
        let exp = u32::from(resol & 0x7f);
        if exp >= 100 {
            0
        } else {
            (raw * 1_000_000) >> exp
        }
    };
    u64::try_from(us)
        .unwrap_or(u64::MAX)
        .saturating_add(offset_s.saturating_mul(1_000_000))
}

/// The file's unconsumed bytes, refilled on demand, never larger than
/// [`MAX_RECORD`] plus a little.
struct RecordBuffer<R: Read> {
    reader: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// File offset of `buf[start]`.
    offset: u64,
    eof: bool,
    consumed: u64,
}

impl<R: Read> RecordBuffer<R> {
    fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Runs a slice parser, reading more of the file while it asks for more bytes.
    fn parse<T>(
        &mut self,
        number: u64,
        mut f: impl FnMut(&[u8]) -> Result<(&[u8], T), PcapError>,
    ) -> Result<T, CaptureError> {
        loop {
            let slice = &self.buf[self.start..self.end];
            match f(slice) {
                Ok((rem, value)) => {
                    let used = slice.len() - rem.len();
                    self.start += used;
                    self.offset += used as u64;
                    return Ok(value);
                }
                Err(PcapError::IncompleteBuffer) => {
                    let have = self.end - self.start;
                    if self.eof {
                        return Err(CaptureError::Truncated {
                            offset: self.offset,
                            packet: number,
                            have,
                        });
                    }
                    if have >= MAX_RECORD {
                        return Err(CaptureError::Corrupt {
                            offset: self.offset,
                            packet: number,
                            reason: format!(
                                "record longer than {MAX_RECORD} bytes (corrupt length field?)"
                            ),
                        });
                    }
                    self.fill_at_least(have + 1)?;
                }
                Err(PcapError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    let have = self.end - self.start;
                    return Err(CaptureError::Truncated {
                        offset: self.offset,
                        packet: number,
                        have,
                    });
                }
                Err(e) => {
                    return Err(CaptureError::Corrupt {
                        offset: self.offset,
                        packet: number,
                        reason: e.to_string(),
                    });
                }
            }
        }
    }

    /// Reads until `want` unconsumed bytes are buffered or the file ends.
    fn fill_at_least(&mut self, want: usize) -> Result<(), CaptureError> {
        while self.end - self.start < want && !self.eof {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.buf.len() {
                let grown = (self.buf.len() * 2).min(MAX_RECORD + 64);
                if grown == self.buf.len() {
                    return Ok(());
                }
                self.buf.resize(grown, 0);
            }
            let n = loop {
                match self.reader.read(&mut self.buf[self.end..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(CaptureError::Io {
                            offset: self.offset,
                            source: e,
                        })
                    }
                }
            };
            if n == 0 {
                self.eof = true;
            }
            self.end += n;
            self.consumed += n as u64;
        }
        Ok(())
    }
}
