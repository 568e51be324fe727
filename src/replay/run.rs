//! The offline replay: every captured message the proxy would have received goes
//! through the engine with the capture's timestamp as `now`, in capture order;
//! what the engine sends goes to the output pcap, what it decided to the report.

use std::io::{Read, Write};
use std::net::SocketAddr;

use super::capture::{CaptureReader, CaptureStats, CapturedMessage};
use super::correlate::ViaMemory;
use super::error::CaptureError;
use super::report::{ReportLine, ReportWriter, Summary};
use super::sides::{Endpoint, NoSides, Role, SideDetector, Sides};
use super::writer::{PcapOutput, WriteError};
use crate::engine::{ConnId, Outcome, Received, Transmit};

/// What the replay needs from the engine: the sans-IO engine's input and timer
/// entry points (implemented by [`crate::engine::Engine`]; tests use fakes).
pub trait Handler {
    /// One received message at `now_ms`; sends go to `out`.
    fn handle(&mut self, now_ms: u64, received: Received, out: &mut Vec<Transmit>) -> Outcome;
    /// The next instant the engine wants [`Handler::handle_timeout`] called.
    fn poll_timeout(&self) -> Option<u64> {
        None
    }
    /// Runs the timers due at `now_ms` (retransmissions, expiries).
    fn handle_timeout(&mut self, _now_ms: u64, _out: &mut Vec<Transmit>) {}
}

impl Handler for crate::engine::Engine {
    fn handle(&mut self, now_ms: u64, received: Received, out: &mut Vec<Transmit>) -> Outcome {
        let outcome = crate::engine::Engine::handle(self, now_ms, received, out);
        // Offline there is no packet path to protect: learned contacts are written
        // at once, so what follows in the capture sees them as a live proxy would.
        self.apply_learned();
        outcome
    }

    fn poll_timeout(&self) -> Option<u64> {
        crate::engine::Engine::poll_timeout(self)
    }

    fn handle_timeout(&mut self, now_ms: u64, out: &mut Vec<Transmit>) {
        crate::engine::Engine::handle_timeout(self, now_ms, out)
    }
}

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("writing the report failed: {0}")]
    Report(#[from] std::io::Error),
    #[error(transparent)]
    Sides(#[from] NoSides),
}

/// How far the replay got, for progress display.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub bytes_read: u64,
    pub messages: u64,
}

/// What an offline run did.
#[derive(Debug, Clone, Default)]
pub struct OfflineRun {
    pub summary: Summary,
    pub capture: CaptureStats,
    /// Messages the engine sent (written to the output pcap).
    pub transmits: u64,
    /// Captured responses that got the proxy's Via back, and responses whose
    /// request was never captured that got one naming the proxy ([`ViaMemory`]).
    pub vias_restored: u64,
    pub vias_synthesized: u64,
}

/// Reads up to [`super::sides::DETECT_WINDOW`] messages to find the upstream.
pub fn detect<R: Read>(
    reader: &mut CaptureReader<R>,
    proxy: Option<SocketAddr>,
) -> Result<SideDetector, CaptureError> {
    let mut d = SideDetector::new(proxy.map(Endpoint));
    while !d.is_full() {
        match reader.next_message()? {
            Some(m) => d.observe(&m),
            None => break,
        }
    }
    Ok(d)
}

/// The output pcap, opened at the first packet so it can take that packet's link
/// type (a pcapng names it per interface).
pub enum Output<W: Write> {
    None,
    Waiting(W),
    Open(PcapOutput<W>),
}

impl<W: Write> Output<W> {
    fn write(
        &mut self,
        m: &CapturedMessage,
        src: SocketAddr,
        t: &Transmit,
    ) -> Result<(), WriteError> {
        if let Output::Waiting(_) = self {
            self.open(Some(m.linktype))?;
        }
        if let Output::Open(out) = self {
            out.write(m.time_us, src, t.destination, t.transport, &t.data)?;
        }
        Ok(())
    }

    fn open(&mut self, linktype: Option<u32>) -> Result<(), WriteError> {
        if !matches!(self, Output::Waiting(_)) {
            return Ok(());
        }
        if let Output::Waiting(w) = std::mem::replace(self, Output::None) {
            *self = Output::Open(PcapOutput::new(w, linktype)?);
        }
        Ok(())
    }

    /// Flushes (an empty but valid pcap when nothing was sent).
    pub fn finish(mut self, linktype: Option<u32>) -> Result<Option<W>, WriteError> {
        self.open(linktype)?;
        match self {
            Output::Open(out) => Ok(Some(out.finish()?)),
            _ => Ok(None),
        }
    }
}

/// Per message: what was captured, its report line and what the engine sent.
pub type Observer<'a> = dyn FnMut(&CapturedMessage, &ReportLine, &[Transmit]) + 'a;

/// The offline replay loop.
pub struct Offline<'a, H: Handler> {
    pub sides: &'a Sides,
    pub handler: &'a mut H,
    vias: ViaMemory,
    out: Vec<Transmit>,
    run: OfflineRun,
}

impl<'a, H: Handler> Offline<'a, H> {
    pub fn new(sides: &'a Sides, handler: &'a mut H) -> Self {
        Offline {
            sides,
            handler,
            vias: ViaMemory::default(),
            out: Vec::new(),
            run: OfflineRun::default(),
        }
    }

    /// Replays the whole capture.
    pub fn run<R: Read, WR: Write, WP: Write>(
        mut self,
        reader: &mut CaptureReader<R>,
        report: &mut Option<ReportWriter<WR>>,
        output: &mut Output<WP>,
        progress: &mut dyn FnMut(Progress),
        observer: &mut Observer<'_>,
    ) -> Result<OfflineRun, ReplayError> {
        let mut messages = 0u64;
        while let Some(m) = reader.next_message()? {
            messages += 1;
            if messages % 4096 == 0 {
                progress(Progress {
                    bytes_read: reader.bytes_read(),
                    messages,
                });
            }
            if let Some(line) = self.step(&m, output)? {
                if let Some(r) = report.as_mut() {
                    r.write(&line)?;
                }
                observer(&m, &line, &self.out);
            }
        }
        progress(Progress {
            bytes_read: reader.bytes_read(),
            messages,
        });
        Ok(self.finish(reader.stats()))
    }

    /// Feeds one captured message to the engine when the proxy would have
    /// received it: its report line (`None` when it is not the proxy's business);
    /// what the engine sent is then in [`Offline::sent`].
    pub fn step<W: Write>(
        &mut self,
        m: &CapturedMessage,
        output: &mut Output<W>,
    ) -> Result<Option<ReportLine>, ReplayError> {
        self.timers(m.time_ms(), m, output)?;
        self.out.clear();
        match self.sides.role(m) {
            Role::FromProxy => {
                self.run.summary.skip("sent by the recorded proxy");
                return Ok(None);
            }
            Role::Unrelated => {
                self.run.summary.skip("not to or from the upstream");
                return Ok(None);
            }
            Role::FromPhone | Role::FromUpstream => {}
        }
        let local = self.local_for(m);
        self.vias.received(&m.data, m.time_ms());
        let received = Received {
            data: self.vias.restore(&m.data, local, m.transport),
            source: m.src,
            local,
            transport: m.transport,
            conn: m.conn.map(ConnId),
        };
        let outcome = self.handler.handle(m.time_ms(), received, &mut self.out);
        let line = ReportLine::new(m, &outcome);
        for t in &self.out {
            self.vias.sent(&t.data, m.time_ms());
            output.write(m, local, t)?;
            self.run.transmits += 1;
        }
        self.run.summary.add(&line);
        Ok(Some(line))
    }

    /// What the engine sent for the last message given to [`Offline::step`].
    pub fn sent(&self) -> &[Transmit] {
        &self.out
    }

    /// The totals, with the capture reader's counters.
    pub fn finish(mut self, capture: CaptureStats) -> OfflineRun {
        self.run.capture = capture;
        self.run.vias_restored = self.vias.restored;
        self.run.vias_synthesized = self.vias.synthesized;
        self.run
    }

    /// Runs the engine's timers due before `now_ms` (their sends carry the time of
    /// the message that moved the clock on).
    fn timers<W: Write>(
        &mut self,
        now_ms: u64,
        m: &CapturedMessage,
        output: &mut Output<W>,
    ) -> Result<(), ReplayError> {
        let mut rounds = 0;
        while let Some(due) = self.handler.poll_timeout() {
            if due > now_ms || rounds >= 1024 {
                break;
            }
            rounds += 1;
            self.out.clear();
            self.handler.handle_timeout(due, &mut self.out);
            let local = self.local_for(m);
            for t in &self.out {
                self.vias.sent(&t.data, due);
                output.write(m, local, t)?;
                self.run.transmits += 1;
            }
        }
        Ok(())
    }

    /// The proxy's address that received `m` (port from the capture when the
    /// option gave none).
    fn local_for(&self, m: &CapturedMessage) -> SocketAddr {
        let p = self.sides.proxy.0;
        if p.port() == 0 {
            SocketAddr::new(p.ip(), m.dst.port())
        } else {
            p
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Direction, Handled};
    use crate::replay::sides::choose;

    /// Forwards requests (from phones to the upstream, from the upstream to one
    /// phone) with a Via of its own and
    /// drops responses whose top Via is not its own, as a stateless proxy does.
    struct Forwarder {
        upstream: SocketAddr,
        phone: SocketAddr,
        seen_from_upstream: u64,
    }

    impl Handler for Forwarder {
        fn handle(&mut self, _now: u64, r: Received, out: &mut Vec<Transmit>) -> Outcome {
            let from_upstream = r.source == self.upstream;
            let dir = if from_upstream {
                Direction::Upstream
            } else {
                Direction::Downstream
            };
            if from_upstream {
                self.seen_from_upstream += 1;
            }
            let text = String::from_utf8_lossy(&r.data).into_owned();
            if text.starts_with("SIP/2.0") {
                return if text.contains("branch=z9hG4bKproxy") {
                    Outcome::new(dir, Handled::Forwarded)
                } else {
                    Outcome::new(dir, Handled::Dropped).because("top Via is not ours")
                };
            }
            {
                let at = text.find("\r\n").unwrap_or(0) + 2;
                let data = format!(
                    "{}Via: SIP/2.0/UDP proxy;branch=z9hG4bKproxy{}\r\n{}",
                    &text[..at],
                    out.len(),
                    &text[at..]
                );
                out.push(Transmit {
                    data: data.into(),
                    destination: if from_upstream {
                        self.phone
                    } else {
                        self.upstream
                    },
                    transport: r.transport,
                    conn: None,
                });
            }
            Outcome::new(dir, Handled::Forwarded)
        }
    }

    #[test]
    fn recorded_udp_flow_replays_with_responses_matched_to_forwarded_requests() {
        let path = format!("{}/pcaps/presence-udp.pcap", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(path).unwrap();
        let mut reader = CaptureReader::new(bytes.as_slice()).unwrap();
        let detector = detect(&mut reader, None).unwrap();
        let sides = choose(None, None, Some(&detector)).unwrap();
        assert_eq!(sides.upstream.0, "127.0.0.1:5170".parse().unwrap());
        let mut handler = Forwarder {
            upstream: sides.upstream.0,
            phone: "127.0.0.1:5171".parse().unwrap(),
            seen_from_upstream: 0,
        };
        let mut reader = CaptureReader::new(bytes.as_slice()).unwrap();
        let mut report = Some(ReportWriter::new(Vec::new()));
        let mut output = Output::Waiting(Vec::new());
        let mut lines = Vec::new();
        let run = Offline::new(&sides, &mut handler)
            .run(
                &mut reader,
                &mut report,
                &mut output,
                &mut |_| {},
                &mut |_, line, _| lines.push(line.clone()),
            )
            .unwrap();
        assert_eq!(run.summary.messages, 38);
        // Every response from Kamailio answers a request the fake forwarded.
        assert_eq!(run.summary.by_action.get("dropped"), None, "{lines:?}");
        assert_eq!(run.vias_restored, 19);
        let text = String::from_utf8(report.unwrap().finish().unwrap()).unwrap();
        assert_eq!(text.lines().count(), 38);
        assert!(text
            .lines()
            .next()
            .unwrap()
            .contains(r#""method":"PUBLISH""#));
        let pcap = output.finish(None).unwrap().unwrap();
        let mut back = CaptureReader::new(pcap.as_slice()).unwrap();
        let mut n = 0;
        while let Some(m) = back.next_message().unwrap() {
            assert_eq!(m.src, sides.proxy.0);
            n += 1;
        }
        assert_eq!(n, run.transmits);
        assert_eq!(handler.seen_from_upstream, 19);
    }
}
