//! `presence-proxy [run]`: load the configuration, open the store, start the
//! engine, the SIP transport and the web side, and run until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use super::exit;
use crate::config::{parse_listen, Config, UpstreamSpec};
use crate::engine::{Engine, EngineConfig};
use crate::sip::Limits;
use crate::store::{SledStore, Store, StoreError};
use crate::transport::{self, Driver, DriverConfig};

#[derive(Debug, Default, clap::Args)]
pub struct RunArgs {
    /// The configuration file (TOML). Without it every key takes its default.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Bind UDP and TCP on this address; repeatable (replaces `sip.listen`).
    #[arg(long, value_name = "ADDR")]
    pub listen: Vec<String>,
    /// Where phone requests go: `[udp:|tcp:]HOST:PORT` (`sip.upstream`).
    #[arg(long, value_name = "[udp:|tcp:]HOST:PORT")]
    pub upstream: Option<String>,
    /// The data directory (`store.data`).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Where the User Options pages and the APIs listen (`web.listen`).
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    /// `error`, `warn`, `info`, `debug`, `trace` or a filter directive (`log.level`).
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Take From as the watcher's identity (`sip.trust_from`; labs only: From can be forged).
    #[arg(long)]
    pub trust_from: bool,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
}

/// A failure that carries its exit code.
struct Fail(u8, anyhow::Error);

impl<E: Into<anyhow::Error>> From<E> for Fail {
    fn from(e: E) -> Self {
        Fail(1, e.into())
    }
}

pub fn main(args: RunArgs) -> ExitCode {
    let config = match effective_config(&args) {
        Ok(c) => c,
        Err(Fail(code, e)) => {
            eprintln!("presence-proxy: {e:#}");
            return ExitCode::from(code);
        }
    };
    if args.print_config {
        print!("{}", config.to_toml());
        return ExitCode::from(exit::OK);
    }
    init_logging(&config.log.level);
    if config.sip.trust_from {
        tracing::warn!("sip.trust_from is on: watchers are identified by their From header, which anyone can forge");
    }
    let priority = config.sip.realtime_priority;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if priority > 0 {
        if let Err(e) = transport::realtime::check(priority) {
            eprintln!(
                "presence-proxy: sip.realtime_priority = {priority} refused by the kernel: {e} \
                 (needs CAP_SYS_NICE or an RLIMIT_RTPRIO of at least {priority})"
            );
            return ExitCode::from(exit::INVALID);
        }
        builder.on_thread_park(move || transport::realtime::on_worker_park(priority));
        tracing::info!(priority, "SIP worker threads run under SCHED_FIFO");
    }
    let runtime = match builder.build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("presence-proxy: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(Fail(code, e)) => {
            tracing::error!("{e:#}");
            eprintln!("presence-proxy: {e:#}");
            ExitCode::from(code)
        }
    }
}

/// The file (or the defaults), then the flags on top, validated as a whole.
fn effective_config(args: &RunArgs) -> Result<Config, Fail> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)
            .map_err(|e| Fail(exit::INVALID, anyhow::anyhow!("configuration refused: {e}")))?,
        None => Config::default(),
    };
    let usage = |flag: &str, reason: String| Fail(exit::USAGE, anyhow::anyhow!("{flag}: {reason}"));
    if !args.listen.is_empty() {
        for l in &args.listen {
            parse_listen(l).map_err(|r| usage("--listen", r))?;
        }
        config.sip.listen = args.listen.clone();
    }
    if let Some(u) = &args.upstream {
        u.parse::<UpstreamSpec>()
            .map_err(|r| usage("--upstream", r))?;
        config.sip.upstream = u.clone();
    }
    if let Some(d) = &args.data {
        config.store.data = d.clone();
    }
    if let Some(h) = &args.http {
        h.parse::<SocketAddr>()
            .map_err(|_| usage("--http", format!("`{h}` is not IP:PORT")))?;
        config.web.listen = h.clone();
    }
    if let Some(l) = &args.log_level {
        config.log.level = l.clone();
    }
    if args.trust_from {
        config.sip.trust_from = true;
    }
    config
        .validate()
        .map_err(|e| Fail(exit::USAGE, anyhow::anyhow!("{e}")))?;
    Ok(config)
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::builder()
        .parse(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal as _;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

async fn run(config: Config) -> Result<(), Fail> {
    // Before anything can say "ready": a SIGTERM right after the ready line must
    // find the handler installed, not the default action.
    let shutdown = Shutdown::install()?;
    let data_dir = config.store.data.clone();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    let store: Arc<dyn Store> = match SledStore::open(&data_dir) {
        Ok(s) => Arc::new(s),
        Err(e @ StoreError::Locked(_)) => return Err(Fail(exit::STORE, e.into())),
        Err(e) => {
            return Err(Fail(
                exit::STORE,
                anyhow::anyhow!("cannot open the store: {e}"),
            ))
        }
    };

    let upstream_spec = config
        .upstream()
        .map_err(|e| Fail(exit::INVALID, e.into()))?;
    let upstream = upstream_spec
        .resolve()
        .with_context(|| format!("cannot resolve the upstream {upstream_spec}"))?;
    let mut listeners = Vec::new();
    for addr in config
        .listen_addrs()
        .map_err(|e| Fail(exit::INVALID, e.into()))?
    {
        listeners.push(transport::bind(addr).with_context(|| format!("cannot listen on {addr}"))?);
    }
    let local: Vec<SocketAddr> = listeners.iter().map(|l| l.local).collect();
    if local.iter().any(|l| l.ip().is_unspecified()) && config.sip.advertised_host.is_empty() {
        tracing::warn!("listening on an unspecified address without sip.advertised_host: Via and Record-Route will name the loopback address");
    }

    let engine = Arc::new(Engine::new(
        engine_config(&config, upstream, upstream_spec.transport, local.clone())?,
        store.clone(),
    ));
    let limits = &config.sip.limits;
    let driver = Driver::start(
        engine.clone(),
        listeners,
        DriverConfig {
            max_message: limits.max_message,
            max_connections: limits.max_connections,
            tcp_idle_timeout: Duration::from_secs(limits.tcp_idle_timeout_s),
            busy_poll: Duration::from_micros(config.sip.busy_poll_us),
        },
    );

    let web = web::start(&config, store.clone(), engine.clone()).await?;
    let proxy_json = data_dir.join("proxy.json");
    write_proxy_json(&proxy_json, &web)
        .with_context(|| format!("cannot write {}", proxy_json.display()))?;

    let listening: Vec<String> = local
        .iter()
        .flat_map(|l| [format!("udp:{l}"), format!("tcp:{l}")])
        .collect();
    tracing::info!(
        upstream = %upstream_spec,
        http = %web.addr,
        data = %data_dir.display(),
        "presence-proxy listening on {}",
        listening.join(" ")
    );

    shutdown.wait().await;
    tracing::info!("shutting down");
    driver.shutdown().await;
    web.stop().await;
    let _ = std::fs::remove_file(&proxy_json);
    drop(engine);
    drop(store);
    Ok(())
}

fn engine_config(
    config: &Config,
    upstream: SocketAddr,
    transport: crate::engine::Transport,
    local: Vec<SocketAddr>,
) -> Result<EngineConfig, Fail> {
    let sip = &config.sip;
    let mut ec = EngineConfig::new(upstream, transport, local);
    ec.advertised_host = (!sip.advertised_host.is_empty()).then(|| sip.advertised_host.clone());
    ec.record_route_invite = sip.record_route_invite;
    ec.message_block_status = sip.message_block_status;
    ec.trusted_peers = config
        .trusted_peers()
        .map_err(|e| Fail(exit::INVALID, e.into()))?;
    ec.upstream_peers = config
        .upstream_peers()
        .map_err(|e| Fail(exit::INVALID, e.into()))?;
    ec.trust_from = sip.trust_from;
    ec.limits = Limits {
        max_message: sip.limits.max_message,
        max_headers: sip.limits.max_headers,
        max_line: sip.limits.max_line,
    };
    Ok(ec)
}

/// `proxy.json` (ADMIN_API.md): how the command line reaches this proxy while it
/// holds the data directory. Mode 0600: it carries the admin token.
fn write_proxy_json(path: &Path, web: &web::Running) -> std::io::Result<()> {
    use std::io::Write as _;
    let doc = serde_json::json!({
        "pid": std::process::id(),
        "http": web.addr.to_string(),
        "admin_token": web.admin_token,
    });
    let tmp = path.with_extension("json.tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp)?;
    f.write_all(
        serde_json::to_string_pretty(&doc)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// SIGINT and SIGTERM, both meaning "shut down cleanly, exit 0".
struct Shutdown {
    #[cfg(unix)]
    signals: [tokio::signal::unix::Signal; 2],
}

impl Shutdown {
    fn install() -> Result<Shutdown, Fail> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let term =
                signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
            let int =
                signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
            Ok(Shutdown {
                signals: [term, int],
            })
        }
        #[cfg(not(unix))]
        Ok(Shutdown {})
    }

    async fn wait(mut self) {
        #[cfg(unix)]
        {
            let [term, int] = &mut self.signals;
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The seam to the HTTP side (`crate::web`).
mod web {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use anyhow::Context as _;

    use super::Fail;
    use crate::config::Config;
    use crate::engine::Engine;
    use crate::store::Store;

    pub struct Running {
        pub addr: SocketAddr,
        pub admin_token: String,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        task: Option<tokio::task::JoinHandle<()>>,
    }

    impl Running {
        pub async fn stop(mut self) {
            if let Some(s) = self.stop.take() {
                let _ = s.send(());
            }
            if let Some(t) = self.task.take() {
                let _ = tokio::time::timeout(std::time::Duration::from_secs(2), t).await;
            }
        }
    }

    /// Binds the HTTP listener and serves the User Options pages, the REST and
    /// admin APIs, `/metrics` (with the engine's counters) and `/healthz` on it.
    pub async fn start(
        config: &Config,
        store: Arc<dyn Store>,
        engine: Arc<Engine>,
    ) -> Result<Running, Fail> {
        let listener = tokio::net::TcpListener::bind(&config.web.listen)
            .await
            .with_context(|| format!("cannot listen on {} (web.listen)", config.web.listen))?;
        let addr = listener.local_addr()?;
        let state = crate::web::AppState::new(store, config.web.clone()).with_metrics(Arc::new(
            move |out: &mut String| {
                engine.metrics().render(out);
                engine.presence().render_metrics(out);
            },
        ));
        let admin_token = state.admin_token().to_string();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let stopped = async move {
                let _ = stop_rx.await;
            };
            if let Err(e) = crate::web::serve(listener, state, stopped).await {
                tracing::error!(error = %e, "the web server stopped");
            }
        });
        Ok(Running {
            addr,
            admin_token,
            stop: Some(stop_tx),
            task: Some(task),
        })
    }
}
