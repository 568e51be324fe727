//! TCP stream reassembly for captured SIP: segments are put in sequence-number
//! order per direction, retransmissions dropped, holes skipped when they cannot
//! fill, and the contiguous bytes framed into SIP messages by Content-Length.
//! Memory is bounded per stream and in the number of streams.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use bytes::{Buf, Bytes, BytesMut};

use super::framing::{self, Framed};

/// Out-of-order bytes kept per direction before the hole is declared lost.
const MAX_OUT_OF_ORDER: usize = 256 << 10;
/// Streams tracked at once; the least recently active is dropped beyond.
const MAX_STREAMS: usize = 4096;

/// The TCP header fields reassembly needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment<'a> {
    pub seq: u32,
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
    pub payload: &'a [u8],
}

/// Parses a TCP header (RFC 9293 §3.1).
pub fn parse_segment(data: &[u8]) -> Option<(u16, u16, Segment<'_>)> {
    if data.len() < 20 {
        return None;
    }
    let src = u16::from_be_bytes([data[0], data[1]]);
    let dst = u16::from_be_bytes([data[2], data[3]]);
    let seq = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
    let offset = usize::from(data[12] >> 4) * 4;
    if offset < 20 || offset > data.len() {
        return None;
    }
    let flags = data[13];
    Some((
        src,
        dst,
        Segment {
            seq,
            fin: flags & 0x01 != 0,
            syn: flags & 0x02 != 0,
            rst: flags & 0x04 != 0,
            ack: flags & 0x10 != 0,
            payload: &data[offset..],
        },
    ))
}

/// What reassembly saw that is worth reporting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TcpStats {
    pub segments: u64,
    pub retransmitted_segments: u64,
    pub retransmitted_bytes: u64,
    pub out_of_order_segments: u64,
    /// Holes that never filled (capture loss), and the bytes they lost.
    pub gaps: u64,
    pub gap_bytes: u64,
    /// Bytes skipped to find the start of a message (after a hole, or a stream
    /// whose beginning was not captured).
    pub resync_bytes: u64,
    /// Bytes of an incomplete message when its stream ended.
    pub unfinished_bytes: u64,
    pub keepalives: u64,
    pub streams_evicted: u64,
}

/// One message cut out of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamMessage {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub conn: u64,
    pub data: Bytes,
}

struct Direction {
    next_seq: Option<u32>,
    /// Bytes of the stream consumed so far: the position `next_seq` stands for,
    /// so out-of-order segments sort correctly across sequence-number wrap.
    next_abs: u64,
    out_of_order: BTreeMap<u64, Bytes>,
    out_of_order_bytes: usize,
    buf: BytesMut,
    /// False until a message start has been found (capture began mid-stream, or
    /// bytes were lost).
    in_sync: bool,
    last_us: u64,
    fin: bool,
}

impl Direction {
    fn new() -> Self {
        Direction {
            next_seq: None,
            next_abs: 0,
            out_of_order: BTreeMap::new(),
            out_of_order_bytes: 0,
            buf: BytesMut::new(),
            in_sync: true,
            last_us: 0,
            fin: false,
        }
    }
}

/// Reassembles every TCP stream of a capture.
#[derive(Default)]
pub struct TcpReassembler {
    streams: HashMap<(SocketAddr, SocketAddr), Direction>,
    /// Connection ids by (lower, higher) endpoint pair: both directions share one.
    conns: HashMap<(SocketAddr, SocketAddr), u64>,
    next_conn: u64,
    pub stats: TcpStats,
}

/// Signed distance from `b` to `a` in sequence space (RFC 9293 §3.4).
fn seq_diff(a: u32, b: u32) -> i64 {
    i64::from(a.wrapping_sub(b) as i32)
}

impl TcpReassembler {
    /// Feeds one segment; complete messages are pushed to `out`.
    pub fn segment(
        &mut self,
        src: SocketAddr,
        dst: SocketAddr,
        seg: Segment<'_>,
        now_us: u64,
        out: &mut Vec<StreamMessage>,
    ) {
        self.stats.segments += 1;
        let pair = if src <= dst { (src, dst) } else { (dst, src) };
        if seg.rst {
            self.close(src, dst, out);
            self.close(dst, src, out);
            self.conns.remove(&pair);
            return;
        }
        if seg.syn && !seg.ack {
            // A new connection on this address pair: a new id, fresh state both ways.
            self.close(src, dst, out);
            self.close(dst, src, out);
            self.conns.remove(&pair);
        }
        let conn = match self.conns.get(&pair) {
            Some(c) => *c,
            None => {
                self.next_conn += 1;
                self.conns.insert(pair, self.next_conn);
                self.next_conn
            }
        };
        if !self.streams.contains_key(&(src, dst)) && self.streams.len() >= MAX_STREAMS {
            self.evict_oldest(out);
        }
        let stats = &mut self.stats;
        let dir = self
            .streams
            .entry((src, dst))
            .or_insert_with(Direction::new);
        dir.last_us = now_us;
        let mut seq = seg.seq;
        if seg.syn {
            seq = seq.wrapping_add(1);
            dir.next_seq = Some(seq);
            dir.in_sync = true;
        }
        let next = match dir.next_seq {
            Some(n) => n,
            None => {
                // The capture started mid-stream: begin here, at a message start.
                dir.next_seq = Some(seq);
                dir.in_sync = false;
                seq
            }
        };
        let mut payload = seg.payload;
        let diff = seq_diff(seq, next);
        if !payload.is_empty() {
            if diff + payload.len() as i64 <= 0 {
                stats.retransmitted_segments += 1;
                stats.retransmitted_bytes += payload.len() as u64;
            } else if diff > 0 {
                stats.out_of_order_segments += 1;
                let at = dir.next_abs + diff as u64;
                let keep = dir
                    .out_of_order
                    .get(&at)
                    .map_or(true, |b| b.len() < payload.len());
                if keep {
                    let old = dir
                        .out_of_order
                        .insert(at, Bytes::copy_from_slice(payload))
                        .map_or(0, |b| b.len());
                    dir.out_of_order_bytes = dir.out_of_order_bytes + payload.len() - old;
                }
                if dir.out_of_order_bytes > MAX_OUT_OF_ORDER {
                    skip_hole(dir, stats);
                }
            } else {
                if diff < 0 {
                    let overlap = (-diff) as usize;
                    stats.retransmitted_bytes += overlap as u64;
                    payload = &payload[overlap..];
                }
                dir.buf.extend_from_slice(payload);
                dir.next_seq = Some(next.wrapping_add(payload.len() as u32));
                dir.next_abs += payload.len() as u64;
                drain_in_order(dir, stats);
            }
        }
        if seg.fin {
            dir.fin = true;
        }
        frame(dir, src, dst, conn, stats, out);
        if dir.fin && dir.out_of_order.is_empty() {
            self.close(src, dst, out);
        }
    }

    /// Ends every stream (end of capture): holes are skipped, what frames is
    /// emitted, incomplete messages are counted.
    pub fn finish(&mut self, out: &mut Vec<StreamMessage>) {
        let keys: Vec<_> = self.streams.keys().copied().collect();
        for (src, dst) in keys {
            self.close(src, dst, out);
        }
    }

    /// Streams currently tracked.
    pub fn streams(&self) -> usize {
        self.streams.len()
    }

    fn close(&mut self, src: SocketAddr, dst: SocketAddr, out: &mut Vec<StreamMessage>) {
        let Some(mut dir) = self.streams.remove(&(src, dst)) else {
            return;
        };
        let pair = if src <= dst { (src, dst) } else { (dst, src) };
        let conn = self.conns.get(&pair).copied().unwrap_or(0);
        while !dir.out_of_order.is_empty() {
            skip_hole(&mut dir, &mut self.stats);
            frame(&mut dir, src, dst, conn, &mut self.stats, out);
        }
        frame(&mut dir, src, dst, conn, &mut self.stats, out);
        self.stats.unfinished_bytes += dir.buf.len() as u64;
    }

    fn evict_oldest(&mut self, out: &mut Vec<StreamMessage>) {
        if let Some((src, dst)) = self
            .streams
            .iter()
            .min_by_key(|(_, d)| d.last_us)
            .map(|(k, _)| *k)
        {
            self.stats.streams_evicted += 1;
            self.close(src, dst, out);
        }
    }
}

/// Appends the out-of-order segments that now continue the stream.
fn drain_in_order(dir: &mut Direction, stats: &mut TcpStats) {
    while let Some(next) = dir.next_seq {
        let Some((&at, _)) = dir.out_of_order.iter().next() else {
            break;
        };
        if at > dir.next_abs {
            break;
        }
        let Some(data) = dir.out_of_order.remove(&at) else {
            break;
        };
        dir.out_of_order_bytes -= data.len();
        let overlap = (dir.next_abs - at) as usize;
        if overlap >= data.len() {
            stats.retransmitted_segments += 1;
            stats.retransmitted_bytes += data.len() as u64;
            continue;
        }
        stats.retransmitted_bytes += overlap as u64;
        dir.buf.extend_from_slice(&data[overlap..]);
        dir.next_seq = Some(next.wrapping_add((data.len() - overlap) as u32));
        dir.next_abs += (data.len() - overlap) as u64;
    }
}

/// Declares the first hole lost: the partial message before it cannot complete,
/// so it is dropped and framing restarts at the next message start.
fn skip_hole(dir: &mut Direction, stats: &mut TcpStats) {
    let (Some(next), Some((&at, _))) = (dir.next_seq, dir.out_of_order.iter().next()) else {
        return;
    };
    let lost = at.saturating_sub(dir.next_abs);
    stats.gaps += 1;
    stats.gap_bytes += lost;
    stats.resync_bytes += dir.buf.len() as u64;
    dir.buf.clear();
    dir.in_sync = false;
    dir.next_seq = Some(next.wrapping_add(lost as u32));
    dir.next_abs = at.max(dir.next_abs);
    drain_in_order(dir, stats);
}

/// Cuts the complete messages off the front of the buffer.
fn frame(
    dir: &mut Direction,
    src: SocketAddr,
    dst: SocketAddr,
    conn: u64,
    stats: &mut TcpStats,
    out: &mut Vec<StreamMessage>,
) {
    loop {
        if dir.buf.is_empty() {
            return;
        }
        if !dir.in_sync {
            let skip = if framing::is_start_line(first_line(&dir.buf)) {
                0
            } else {
                framing::skip_to_start(&dir.buf)
            };
            let complete_line = framing::find(&dir.buf[skip..], b"\r\n").is_some();
            stats.resync_bytes += skip as u64;
            dir.buf.advance(skip);
            if !complete_line {
                return;
            }
            if !framing::is_start_line(first_line(&dir.buf)) {
                continue;
            }
            dir.in_sync = true;
        }
        match framing::next(&dir.buf) {
            Framed::Message(n) => {
                let data = dir.buf.split_to(n).freeze();
                out.push(StreamMessage {
                    src,
                    dst,
                    conn,
                    data,
                });
            }
            Framed::KeepAlive(n) => {
                stats.keepalives += 1;
                dir.buf.advance(n);
            }
            Framed::Garbage(n) => {
                stats.resync_bytes += n as u64;
                dir.buf.advance(n);
            }
            Framed::NeedMore => return,
        }
    }
}

fn first_line(buf: &[u8]) -> &[u8] {
    match framing::find(buf, b"\r\n") {
        Some(end) => &buf[..end],
        None => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &[u8] = b"NOTIFY sip:bob@10.0.0.2 SIP/2.0\r\nContent-Length: 4\r\n\r\nbody";
    const B: &[u8] = b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n";

    fn addrs() -> (SocketAddr, SocketAddr) {
        (
            "10.0.0.1:5060".parse().unwrap(),
            "10.0.0.2:40000".parse().unwrap(),
        )
    }

    fn seg(seq: u32, payload: &[u8]) -> Segment<'_> {
        Segment {
            seq,
            syn: false,
            ack: true,
            fin: false,
            rst: false,
            payload,
        }
    }

    fn syn(seq: u32) -> Segment<'static> {
        Segment {
            seq,
            syn: true,
            ack: false,
            fin: false,
            rst: false,
            payload: &[],
        }
    }

    fn stream() -> Vec<u8> {
        [A, b"\r\n\r\n", B, A].concat()
    }

    #[test]
    fn in_order_segments_split_anywhere_frame_into_messages() {
        let (s, d) = addrs();
        let data = stream();
        let mut r = TcpReassembler::default();
        let mut out = Vec::new();
        r.segment(s, d, syn(999), 0, &mut out);
        for (i, chunk) in data.chunks(7).enumerate() {
            r.segment(s, d, seg(1000 + 7 * i as u32, chunk), 1, &mut out);
        }
        let got: Vec<_> = out.iter().map(|m| m.data.as_ref()).collect();
        assert_eq!(got, vec![A, B, A]);
        assert_eq!(r.stats.keepalives, 1);
        assert!(out.iter().all(|m| m.conn == out[0].conn));
    }

    #[test]
    fn reordered_and_retransmitted_segments_are_put_right() {
        let (s, d) = addrs();
        let data = stream();
        let chunks: Vec<_> = data.chunks(20).collect();
        let mut r = TcpReassembler::default();
        let mut out = Vec::new();
        r.segment(s, d, syn(u32::MAX - 30), 0, &mut out); // sequence numbers wrap
        let base = (u32::MAX - 30).wrapping_add(1);
        let mut order: Vec<usize> = (0..chunks.len()).rev().collect();
        order.push(2);
        order.push(0);
        for i in order {
            r.segment(
                s,
                d,
                seg(base.wrapping_add(20 * i as u32), chunks[i]),
                1,
                &mut out,
            );
        }
        let got: Vec<_> = out.iter().map(|m| m.data.as_ref()).collect();
        assert_eq!(got, vec![A, B, A]);
        assert_eq!(r.stats.retransmitted_segments, 2);
        assert!(r.stats.out_of_order_segments > 0);
        assert_eq!(r.stats.gaps, 0);
    }

    #[test]
    fn a_hole_loses_only_the_message_it_cuts() {
        let (s, d) = addrs();
        let data = stream();
        let mut r = TcpReassembler::default();
        let mut out = Vec::new();
        r.segment(s, d, syn(0), 0, &mut out);
        // The first 10 bytes are never captured.
        r.segment(s, d, seg(11, &data[10..]), 1, &mut out);
        r.finish(&mut out);
        let got: Vec<_> = out.iter().map(|m| m.data.as_ref()).collect();
        assert_eq!(got, vec![B, A]);
        assert_eq!(r.stats.gaps, 1);
        assert_eq!(r.stats.gap_bytes, 10);
    }

    #[test]
    fn a_stream_caught_mid_way_starts_at_the_next_message() {
        let (s, d) = addrs();
        let data = stream();
        let mut r = TcpReassembler::default();
        let mut out = Vec::new();
        r.segment(s, d, seg(5000, &data[30..]), 1, &mut out);
        let got: Vec<_> = out.iter().map(|m| m.data.as_ref()).collect();
        assert_eq!(got, vec![B, A]);
        assert!(r.stats.resync_bytes > 0);
    }

    #[test]
    fn an_unfinished_message_at_the_end_is_counted() {
        let (s, d) = addrs();
        let mut r = TcpReassembler::default();
        let mut out = Vec::new();
        r.segment(s, d, syn(0), 0, &mut out);
        r.segment(s, d, seg(1, &A[..40]), 1, &mut out);
        r.finish(&mut out);
        assert!(out.is_empty());
        assert_eq!(r.stats.unfinished_bytes, 40);
        assert_eq!(r.streams(), 0);
    }

    #[test]
    fn a_new_syn_on_the_same_ports_is_a_new_connection() {
        let (s, d) = addrs();
        let mut r = TcpReassembler::default();
        let mut out = Vec::new();
        r.segment(s, d, syn(0), 0, &mut out);
        r.segment(s, d, seg(1, B), 1, &mut out);
        r.segment(d, s, seg(77, B), 1, &mut out);
        r.segment(s, d, syn(500), 2, &mut out);
        r.segment(s, d, seg(501, B), 3, &mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].conn, out[1].conn);
        assert_ne!(out[0].conn, out[2].conn);
    }

    #[test]
    fn header_parse() {
        let mut h = vec![
            0x13, 0xC4, 0x9C, 0x40, 0, 0, 0, 9, 0, 0, 0, 0, 0x50, 0x18, 0, 0, 0, 0, 0, 0,
        ];
        h.extend_from_slice(b"x");
        let (sp, dp, s) = parse_segment(&h).unwrap();
        assert_eq!(
            (sp, dp, s.seq, s.ack, s.syn, s.payload),
            (5060, 40000, 9, true, false, &b"x"[..])
        );
        assert!(parse_segment(&h[..19]).is_none());
    }
}
