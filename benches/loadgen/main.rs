//! End-to-end load harness for presence-proxy and Kamailio (issue 7).
//!
//! `cargo bench --bench loadgen -- SUBCOMMAND ...`:
//! - `gen-data --dir D --users N`: the policy document and Kamailio's htable data;
//! - `run ...`: one measured run (watcher and presence-server sides in this process,
//!   the proxy under test given by address and pid), one JSON line of results;
//! - `table FILE`: the comparison table from the JSON lines of many runs;
//! - `selftest`: parser and data checks plus a direct loopback run.
//!
//! `benches/e2e.sh` drives all of it.

mod flows;
mod gen;
mod net;
mod procstat;
mod report;
mod sip;

use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    about = "SIP presence load harness (watcher + presence server)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Write DIR/policy.json (presence-proxy) and DIR/kam/db/{blocked,version} (Kamailio).
    GenData {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 100_000)]
        users: u64,
    },
    /// One measured run; appends a JSON line to --out and prints a summary.
    Run(RunArgs),
    /// Print the comparison table from a file of JSON result lines.
    Table { file: PathBuf },
    /// Check the parser and the data mapping, then run 2000 flows direct over loopback.
    Selftest,
    /// Wait until the process tree of PID uses under 5 % of a core (start-up work such
    /// as sled's page rewriting after opening a copied data dir is over), at most MAX_S.
    Idle {
        #[arg(long)]
        pid: u32,
        #[arg(long, default_value_t = 20.0)]
        max_s: f64,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Where watchers send SUBSCRIBE (the proxy). Omit with --direct.
    #[arg(long)]
    target: Option<SocketAddrV4>,
    /// No proxy: watchers send straight to the presence server (the baseline).
    #[arg(long)]
    direct: bool,
    /// Presence server (the proxy's upstream) UDP address.
    #[arg(long, default_value = "127.0.0.1:5080")]
    server: SocketAddrV4,
    /// Watcher UDP address (UDP mode).
    #[arg(long, default_value = "127.0.0.1:5061")]
    watcher: SocketAddrV4,
    /// Watchers talk TCP to the proxy (the server side stays UDP).
    #[arg(long)]
    tcp: bool,
    /// TCP connections the watchers share.
    #[arg(long, default_value_t = 8)]
    conns: usize,
    /// Outstanding flows at most.
    #[arg(long, default_value_t = 256)]
    window: usize,
    /// Flows started per second (0: as fast as the window allows).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    #[arg(long, default_value_t = 100_000)]
    count: u64,
    #[arg(long, default_value_t = 10.0)]
    duration_s: f64,
    #[arg(long, default_value_t = 2000)]
    timeout_ms: u64,
    /// Never sleep between polls: keeps the harness's vCPU awake, so its own
    /// wake-up latency does not blur the latency it measures (latency runs).
    #[arg(long)]
    spin: bool,
    /// Do not check open/closed bodies (direct runs always skip it).
    #[arg(long)]
    no_check: bool,
    /// Policy population (as given to gen-data).
    #[arg(long, default_value_t = 100_000)]
    users: u64,
    /// Offset of the first flow's pair, so successive runs use different pairs.
    #[arg(long, default_value_t = 0)]
    first_flow: u64,
    /// The proxy's pid: CPU and memory of it and all its descendants are read.
    #[arg(long)]
    pid: Option<u32>,
    /// Labels copied into the result line.
    #[arg(long, default_value = "direct")]
    kind: String,
    #[arg(long, default_value = "run")]
    phase: String,
    #[arg(long, default_value_t = 0)]
    round: u32,
    /// Append the JSON result line here.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    // `cargo bench` appends `--bench` for harness-less targets.
    let args = std::env::args().filter(|a| a != "--bench");
    let cli = Cli::parse_from(args);
    let r = match cli.cmd {
        Cmd::GenData { dir, users } => gen::write(&dir, users).map(|_| {
            println!(
                "wrote {}/policy.json and kam/db ({users} owners, 10 % of load pairs blocked)",
                dir.display()
            )
        }),
        Cmd::Run(a) => run(a).map(|_| ()),
        Cmd::Table { file } => report::table(&file),
        Cmd::Selftest => selftest(),
        Cmd::Idle { pid, max_s } => {
            wait_idle(pid, Duration::from_secs_f64(max_s));
            Ok(())
        }
    };
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn wait_idle(pid: u32, max: Duration) {
    let start = std::time::Instant::now();
    let step = Duration::from_millis(500);
    let pids = procstat::tree(pid);
    let mut before = procstat::cpu(&pids);
    while start.elapsed() < max {
        std::thread::sleep(step);
        let now = procstat::cpu(&pids);
        let used = now.since(&before).ns;
        before = now;
        if used < step.as_nanos() as u64 / 20 {
            return;
        }
    }
    eprintln!("loadgen idle: pid {pid} still busy after {max:?}");
}

fn own_cpu_ns() -> u64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn run(a: RunArgs) -> anyhow::Result<serde_json::Value> {
    let target = match (a.direct, a.target) {
        (true, _) => a.server,
        (false, Some(t)) => t,
        (false, None) => anyhow::bail!("give --target ADDR (the proxy) or --direct"),
    };
    anyhow::ensure!(
        !(a.direct && a.tcp),
        "--direct runs are UDP only (the server side is UDP)"
    );
    anyhow::ensure!(
        target.ip().is_loopback() && a.server.ip().is_loopback(),
        "only loopback is a traffic target"
    );
    let cfg = flows::Config {
        target,
        watcher: a.watcher,
        server: a.server,
        tcp: a.tcp,
        conns: a.conns,
        window: a.window,
        rate: a.rate,
        count: a.count,
        duration: Duration::from_secs_f64(a.duration_s),
        timeout: Duration::from_millis(a.timeout_ms),
        check: !a.direct && !a.no_check,
        users: a.users,
        first_flow: a.first_flow,
        spin: a.spin,
    };
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(1);
    // Call-IDs of this run differ from every earlier run's, so proxy state left
    // over from those never matches.
    let nonce = (micros % 10_000_000_000) ^ u64::from(std::process::id());
    let runner = flows::Runner::new(cfg, nonce)?;
    let pids = a.pid.map(procstat::tree).unwrap_or_default();
    let mem0 = procstat::memory_kb(&pids);
    let cpu0 = procstat::cpu(&pids);
    let own0 = own_cpu_ns();
    let st = runner.run();
    let cpu = procstat::cpu(&pids).since(&cpu0);
    let own = own_cpu_ns() - own0;
    let mem1 = procstat::memory_kb(&pids);
    let v = report::result_json(&report::RunInfo {
        kind: &a.kind,
        phase: &a.phase,
        round: a.round,
        transport: if a.tcp { "tcp" } else { "udp" },
        window: a.window,
        rate: a.rate,
        count: a.count,
        proxied: !a.direct,
        st: &st,
        cpu,
        own_cpu_ns: own,
        mem_before: mem0,
        mem_after: mem1,
        nprocs: pids.len(),
    });
    println!("{}", report::summary_line(&v));
    if let Some(out) = &a.out {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(out)?;
        writeln!(f, "{v}")?;
    }
    Ok(v)
}

fn selftest() -> anyhow::Result<()> {
    sip::selftest().map_err(anyhow::Error::msg)?;
    gen::selftest().map_err(anyhow::Error::msg)?;
    let localhost_any = "127.0.0.1:0".parse()?;
    let a = RunArgs {
        target: None,
        direct: true,
        server: localhost_any,
        watcher: localhost_any,
        tcp: false,
        conns: 1,
        window: 64,
        rate: 0.0,
        count: 2000,
        duration_s: 10.0,
        timeout_ms: 2000,
        spin: false,
        no_check: true,
        users: 1000,
        first_flow: 0,
        pid: None,
        kind: "direct".into(),
        phase: "selftest".into(),
        round: 0,
        out: None,
    };
    let v = run(a)?;
    let completed = v["completed"].as_u64().unwrap_or(0);
    let errors = v["errors"].as_u64().unwrap_or(u64::MAX);
    anyhow::ensure!(
        completed == 2000 && errors == 0,
        "direct selftest: {completed} of 2000 flows completed, {errors} errors"
    );
    anyhow::ensure!(
        v["open_seen"].as_u64() == Some(2000),
        "direct selftest: every NOTIFY should carry <basic>open</basic>"
    );
    println!("selftest ok");
    Ok(())
}
