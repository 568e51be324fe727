//! `presence-proxy replay CAPTURE`: a pcap/pcapng capture through the engine,
//! offline (report + output pcap) or live against a running proxy.
//!
//! Exit codes (`cli::exit`): 0 done (live: offline and live agree), 2 usage,
//! 3 invalid input (capture or policy; stderr says where), 4 store failure,
//! 1 live replay disagreed with the offline prediction.

use std::fs::File;
use std::io::{BufReader, BufWriter, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::exit;
use crate::config::PeerSpec;
use crate::engine::{Engine, EngineConfig};
use crate::policy::PolicyDocument;
use crate::replay::live::{run_live, LiveOptions, LiveReport, Pace};
use crate::replay::report::ReportWriter;
use crate::replay::run::{detect, Offline, OfflineRun, Output, Progress, ReplayError};
use crate::replay::sides::{choose, Sides};
use crate::replay::{CaptureError, CaptureReader};
use crate::store::{SledStore, Store};

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The capture (pcap or pcapng).
    pub capture: PathBuf,
    /// Policy document (JSON, version 1) loaded into an in-memory store; without
    /// it every watcher meets the defaults of an empty policy set.
    #[arg(long, value_name = "POLICY.json")]
    pub policy: Option<PathBuf>,
    /// Write what the proxy would have sent here (pcap).
    #[arg(long, value_name = "OUT.pcap")]
    pub out: Option<PathBuf>,
    /// Write the decision report here (JSON Lines, one object per SIP message).
    #[arg(long, value_name = "REPORT.json")]
    pub report: Option<PathBuf>,
    /// The proxy's address. When it appears in the capture, only what it received
    /// is replayed; otherwise the proxy is imagined in front of the upstream.
    #[arg(long, value_name = "ADDR")]
    pub proxy_addr: Option<SocketAddr>,
    /// The upstream registrar / presence server (port 0 = any port). Detected from
    /// the capture when absent.
    #[arg(long, value_name = "ADDR")]
    pub upstream: Option<SocketAddr>,
    /// Take the watcher's identity from From when nothing better proves it
    /// (engine `trust_from`; labs only).
    #[arg(long)]
    pub trust_from: bool,
    /// Send the capture to a running proxy at ADDR (loopback, UDP) and compare
    /// what comes back with the offline prediction.
    #[arg(long, value_name = "ADDR")]
    pub live: Option<SocketAddr>,
    /// Live: the address the running proxy forwards upstream to, where the
    /// replayer plays the upstream (default: the capture's upstream address).
    #[arg(long, value_name = "ADDR", requires = "live")]
    pub live_upstream: Option<SocketAddr>,
    /// Live: play N times faster than captured.
    #[arg(long, value_name = "N", default_value_t = 1.0, requires = "live")]
    pub speed: f64,
    /// Live: send each message as soon as the proxy answered the previous ones.
    #[arg(long, requires = "live", conflicts_with = "speed")]
    pub as_fast_as_possible: bool,
    /// Live: write the comparison as JSON here.
    #[arg(long, value_name = "FILE", requires = "live")]
    pub live_report: Option<PathBuf>,
}

enum Failure {
    Usage(String),
    Invalid(anyhow::Error),
    Store(anyhow::Error),
    Disagree,
}

pub fn main(args: ReplayArgs) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(Failure::Usage(m)) => {
            eprintln!("replay: {m}");
            ExitCode::from(exit::USAGE)
        }
        Err(Failure::Invalid(e)) => {
            eprintln!("replay: {e:#}");
            ExitCode::from(exit::INVALID)
        }
        Err(Failure::Store(e)) => {
            eprintln!("replay: {e:#}");
            ExitCode::from(exit::STORE)
        }
        Err(Failure::Disagree) => ExitCode::from(1),
    }
}

fn invalid(e: impl Into<anyhow::Error>) -> Failure {
    Failure::Invalid(e.into())
}

fn replay_failure(e: ReplayError) -> Failure {
    match e {
        ReplayError::Sides(e) => Failure::Usage(e.to_string()),
        other => Failure::Invalid(other.into()),
    }
}

fn open_capture(path: &PathBuf) -> Result<CaptureReader<BufReader<File>>, Failure> {
    let file = File::open(path)
        .with_context(|| format!("cannot open {}", path.display()))
        .map_err(invalid)?;
    CaptureReader::new(BufReader::with_capacity(1 << 20, file)).map_err(|e: CaptureError| {
        invalid(anyhow::Error::new(e).context(path.display().to_string()))
    })
}

fn run(args: ReplayArgs) -> Result<(), Failure> {
    if !(args.speed > 0.0 && args.speed.is_finite()) {
        return Err(Failure::Usage(format!(
            "--speed must be a positive number, not {}",
            args.speed
        )));
    }
    let store = policy_store(args.policy.as_ref())?;

    // A first look at the capture (bounded) finds the upstream when no option
    // names it, and how it is reached in any case.
    let mut reader = open_capture(&args.capture)?;
    let detector = detect(&mut reader, args.proxy_addr).map_err(invalid)?;
    let sides = choose(args.proxy_addr, args.upstream, Some(&detector))
        .map_err(|e| Failure::Usage(e.to_string()))?;
    eprintln!("replay: {}", sides.describe());

    let mut engine = engine_for(&sides, store, args.trust_from);
    let mut reader = open_capture(&args.capture)?;
    let size = std::fs::metadata(&args.capture)
        .map(|m| m.len())
        .unwrap_or(0);
    let mut output = match &args.out {
        Some(p) => Output::Waiting(BufWriter::new(
            File::create(p)
                .with_context(|| format!("cannot create {}", p.display()))
                .map_err(invalid)?,
        )),
        None => Output::None,
    };

    if let Some(target) = args.live {
        let pace = if args.as_fast_as_possible {
            Pace::AsFastAsPossible
        } else {
            Pace::Capture { speed: args.speed }
        };
        let opts = LiveOptions {
            target,
            upstream_bind: args.live_upstream.unwrap_or(sides.upstream.0),
            pace,
        };
        let messages =
            std::iter::from_fn(|| reader.next_message().map_err(ReplayError::from).transpose());
        let live = run_live(messages, &sides, &mut engine, opts, &mut output).map_err(invalid)?;
        output.finish(reader.linktype()).map_err(invalid)?;
        return print_live(&live, args.live_report.as_ref());
    }

    let mut report = match &args.report {
        Some(p) => Some(ReportWriter::new(BufWriter::new(
            File::create(p)
                .with_context(|| format!("cannot create {}", p.display()))
                .map_err(invalid)?,
        ))),
        None => None,
    };
    let mut progress = ProgressDisplay::new(size);
    let started = Instant::now();
    let run = Offline::new(&sides, &mut engine)
        .run(
            &mut reader,
            &mut report,
            &mut output,
            &mut |p| progress.update(p),
            &mut |_, _, _| {},
        )
        .map_err(replay_failure)?;
    progress.done();
    let elapsed = started.elapsed();
    if let Some(r) = report {
        r.finish()
            .context("cannot write the report")
            .map_err(invalid)?;
    }
    output.finish(reader.linktype()).map_err(invalid)?;
    print_summary(&run, &sides, elapsed, &args);
    Ok(())
}

/// The engine as the live proxy would run it between these sides: the same
/// defaults as the configuration file, the upstream and the proxy's address
/// from the sides (a bare-IP upstream covers every port of that host).
fn engine_for(sides: &Sides, store: Arc<dyn Store>, trust_from: bool) -> Engine {
    let upstream = sides.upstream.0;
    let any_port = upstream.port() == 0;
    let target = if any_port {
        SocketAddr::new(upstream.ip(), 5060)
    } else {
        upstream
    };
    let mut config = EngineConfig::new(target, sides.upstream_transport, vec![sides.proxy.0]);
    if any_port {
        config.upstream_peers.push(PeerSpec::Host(upstream.ip()));
    }
    config.trust_from = trust_from;
    Engine::new(config, store)
}

/// The policy document in a temporary store (never the proxy's data directory).
fn policy_store(path: Option<&PathBuf>) -> Result<Arc<dyn Store>, Failure> {
    let store = SledStore::temporary()
        .context("cannot create the in-memory store")
        .map_err(Failure::Store)?;
    if let Some(p) = path {
        let text = std::fs::read_to_string(p)
            .with_context(|| format!("cannot read {}", p.display()))
            .map_err(invalid)?;
        let doc = PolicyDocument::from_json(&text).map_err(|errors| {
            let all: Vec<String> = errors
                .iter()
                .map(|e| format!("{}: {}", e.path, e.message))
                .collect();
            invalid(anyhow::anyhow!(
                "{} is not a valid policy document: {}",
                p.display(),
                all.join("; ")
            ))
        })?;
        store
            .import(doc)
            .map_err(|e| invalid(anyhow::Error::new(e).context(p.display().to_string())))?;
    }
    Ok(Arc::new(store))
}

fn print_summary(run: &OfflineRun, sides: &Sides, elapsed: Duration, args: &ReplayArgs) {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", run.summary.render(&run.capture));
    let _ = writeln!(
        out,
        "{} messages in {:.2} s ({:.0} messages/s); {} sent by the proxy; upstream {}",
        run.summary.messages,
        secs,
        run.summary.messages as f64 / secs,
        run.transmits,
        sides.upstream
    );
    if let Some(p) = &args.report {
        let _ = writeln!(out, "report: {}", p.display());
    }
    if let Some(p) = &args.out {
        let _ = writeln!(out, "output capture: {}", p.display());
    }
}

fn print_live(live: &LiveReport, path: Option<&PathBuf>) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "live: {} messages sent; of {} sends predicted offline {} agreed, {} missing; {} unexpected, {} retransmissions",
        live.sent,
        live.predicted,
        live.agreed,
        live.missing.len(),
        live.unexpected.len(),
        live.retransmissions
    );
    for (packet, key) in &live.missing {
        let _ = writeln!(
            out,
            "  missing (packet {packet}): {:?} {} {} [{}] {}",
            key.side, key.first, key.cseq, key.view, key.call_id
        );
    }
    for key in &live.unexpected {
        let _ = writeln!(
            out,
            "  unexpected: {:?} {} {} [{}] {}",
            key.side, key.first, key.cseq, key.view, key.call_id
        );
    }
    if let Some(p) = path {
        let json = serde_json::to_string_pretty(live).unwrap_or_default();
        std::fs::write(p, json)
            .with_context(|| format!("cannot write {}", p.display()))
            .map_err(invalid)?;
    }
    if live.agrees() {
        Ok(())
    } else {
        Err(Failure::Disagree)
    }
}

/// A progress bar on a terminal; plain lines every few seconds otherwise.
struct ProgressDisplay {
    bar: Option<indicatif::ProgressBar>,
    size: u64,
    last_line: Instant,
}

impl ProgressDisplay {
    fn new(size: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(size);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {msg} ({eta})",
            ) {
                bar.set_style(style);
            }
            bar
        });
        ProgressDisplay {
            bar,
            size,
            last_line: Instant::now(),
        }
    }

    fn update(&mut self, p: Progress) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(p.bytes_read);
                bar.set_message(format!("{} messages", p.messages));
            }
            None if self.last_line.elapsed() >= Duration::from_secs(5) => {
                self.last_line = Instant::now();
                let pct = if self.size > 0 {
                    p.bytes_read as f64 * 100.0 / self.size as f64
                } else {
                    0.0
                };
                eprintln!(
                    "replay: {pct:.0}% ({} of {} bytes, {} messages)",
                    p.bytes_read, self.size, p.messages
                );
            }
            None => {}
        }
    }

    fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
