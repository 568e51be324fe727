//! Configuration: one TOML file, every key defaulted, unknown keys refused, then
//! overridden by command-line flags (`cli::run`).
//!
//! The file is checked as a whole at start: a bad value is refused with the dotted
//! key that holds it and the reason, so an operator never runs a proxy that
//! silently ignored part of its configuration.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::engine::Transport;
use crate::web::WebConfig;

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub sip: SipConfig,
    pub store: StoreConfig,
    pub web: WebConfig,
    pub log: LogConfig,
}

/// `[sip]`: where the proxy listens and where it forwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SipConfig {
    /// Addresses to bind, UDP and TCP on each (`"[::1]:5060"` for IPv6).
    pub listen: Vec<String>,
    /// The registrar / presence server every phone request goes to:
    /// `[udp:|tcp:]HOST:PORT` (UDP when no prefix).
    pub upstream: String,
    /// Other addresses the upstream sends from (other cluster nodes; a bare IP
    /// also covers TCP connections the upstream opens from any port). Messages
    /// from these travel towards the phones.
    pub upstream_peers: Vec<String>,
    /// Host (name or IP) written into our Via and Record-Route when the listen
    /// address is not reachable as is (e.g. bound to `0.0.0.0`). Empty: the
    /// listen address.
    pub advertised_host: String,
    /// Peers whose `P-Asserted-Identity` is believed (RFC 3325 §2.3 "trust
    /// domain"): IP addresses, or `IP:PORT` for one socket. The header is removed
    /// when anyone else sends it.
    pub trusted_peers: Vec<String>,
    /// Take the From AoR as the watcher's identity when nothing better is known.
    /// Anyone can forge From: for labs and benchmarks only (a warning is logged).
    pub trust_from: bool,
    /// What a blocked or pending watcher's MESSAGE is answered with: 480
    /// (Temporarily Unavailable, what an offline user gives; does not reveal the
    /// block) or 403 (Forbidden).
    pub message_block_status: u16,
    /// Record-Route dialog-creating INVITEs too (SUBSCRIBEs always are), so BYE
    /// and re-INVITE pass through the proxy.
    pub record_route_invite: bool,
    /// Microseconds the proxy keeps polling its sockets after traffic instead of
    /// sleeping (0: off). Lowers latency on virtual machines, where a sleeping
    /// vCPU wakes slowly, at the price of a spinning core while traffic flows.
    pub busy_poll_us: u64,
    /// `SCHED_FIFO` priority (1..=99) of the threads that carry SIP, so no other
    /// task on their core preempts them (0: off, the default scheduler). Needs
    /// `CAP_SYS_NICE` or an `RLIMIT_RTPRIO` at least this high; not with busy
    /// polling. See `transport::realtime`.
    pub realtime_priority: u8,
    pub limits: LimitsConfig,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            listen: vec!["127.0.0.1:5060".to_string()],
            upstream: "udp:127.0.0.1:5070".to_string(),
            upstream_peers: Vec::new(),
            advertised_host: String::new(),
            trusted_peers: Vec::new(),
            trust_from: false,
            message_block_status: 480,
            record_route_invite: false,
            busy_poll_us: 0,
            realtime_priority: 0,
            limits: LimitsConfig::default(),
        }
    }
}

/// `[sip.limits]`: what a single peer may cost us.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest message accepted, bytes (a UDP datagram cannot exceed 65 535).
    pub max_message: usize,
    /// Most header lines in one message.
    pub max_headers: usize,
    /// Longest header line, bytes.
    pub max_line: usize,
    /// Most TCP connections open at once (in and out); new ones beyond are refused.
    pub max_connections: usize,
    /// A TCP connection with no traffic for this long is closed (seconds).
    pub tcp_idle_timeout_s: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_message: 65_535,
            max_headers: 96,
            max_line: 8_192,
            max_connections: 4_096,
            tcp_idle_timeout_s: 600,
        }
    }
}

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// The data directory: the sled database and `proxy.json`.
    pub data: PathBuf,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            data: PathBuf::from("./presence-data"),
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug`, `trace`, or a `tracing` filter directive
    /// such as `info,presence_proxy::engine=debug`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_string(),
        }
    }
}

/// Why a configuration was refused: the dotted key and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    /// TOML syntax, an unknown key or a value of the wrong type; `toml` names the
    /// line, column and key.
    #[error("{path}: {reason}")]
    Syntax { path: String, reason: String },
    #[error("invalid value for `{key}`: {reason}")]
    Invalid { key: String, reason: String },
}

impl ConfigError {
    fn invalid(key: &str, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.to_string(),
            reason: reason.into(),
        }
    }
}

/// Where the upstream is and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamSpec {
    pub transport: Transport,
    /// `HOST:PORT` as written (the host may be a name; resolved at start).
    pub host: String,
    pub port: u16,
}

impl UpstreamSpec {
    /// Resolves the host (once, at start: the forwarding path never does DNS).
    pub fn resolve(&self) -> std::io::Result<SocketAddr> {
        use std::net::ToSocketAddrs;
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        (host, self.port).to_socket_addrs()?.next().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} has no address", self.host),
            )
        })
    }
}

impl fmt::Display for UpstreamSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = match self.transport {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        };
        write!(f, "{t}:{}:{}", self.host, self.port)
    }
}

impl FromStr for UpstreamSpec {
    type Err = String;

    /// `[udp:|tcp:]HOST:PORT`; an IPv6 host is bracketed (`tcp:[::1]:5070`).
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (transport, rest) = match s.split_once(':') {
            Some((p, rest)) if p.eq_ignore_ascii_case("udp") => (Transport::Udp, rest),
            Some((p, rest)) if p.eq_ignore_ascii_case("tcp") => (Transport::Tcp, rest),
            Some((p, _)) if p.eq_ignore_ascii_case("tls") || p.eq_ignore_ascii_case("sctp") => {
                return Err(format!("transport `{p}` is not supported (udp or tcp)"))
            }
            _ => (Transport::Udp, s),
        };
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| format!("`{s}` is not [udp:|tcp:]HOST:PORT (the port is required)"))?;
        if host.is_empty() {
            return Err(format!("`{s}` has no host"));
        }
        if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
            return Err(format!(
                "`{s}`: an IPv6 host must be in brackets, e.g. udp:[::1]:5070"
            ));
        }
        if host.starts_with('[') {
            let inner = &host[1..host.len() - 1];
            inner
                .parse::<std::net::Ipv6Addr>()
                .map_err(|_| format!("`{inner}` is not an IPv6 address"))?;
        }
        let port: u16 = port
            .parse()
            .map_err(|_| format!("`{port}` is not a port number"))?;
        if port == 0 {
            return Err("the upstream port cannot be 0".to_string());
        }
        Ok(UpstreamSpec {
            transport,
            host: host.to_string(),
            port,
        })
    }
}

/// A trusted peer: a whole host, or one socket of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerSpec {
    Host(IpAddr),
    Socket(SocketAddr),
}

impl PeerSpec {
    pub fn matches(&self, addr: SocketAddr) -> bool {
        match *self {
            PeerSpec::Host(ip) => canonical_ip(addr.ip()) == canonical_ip(ip),
            PeerSpec::Socket(s) => {
                canonical_ip(addr.ip()) == canonical_ip(s.ip()) && addr.port() == s.port()
            }
        }
    }
}

impl FromStr for PeerSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(sa) = s.parse::<SocketAddr>() {
            return Ok(PeerSpec::Socket(sa));
        }
        let bare = s.trim_start_matches('[').trim_end_matches(']');
        bare.parse::<IpAddr>()
            .map(PeerSpec::Host)
            .map_err(|_| format!("`{s}` is not an IP address or IP:PORT"))
    }
}

/// IPv4-mapped IPv6 addresses (a dual-stack socket's view of an IPv4 peer) compare
/// equal to the IPv4 address.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Parses a listen address: `IP:PORT`, IPv6 bracketed (`[::1]:5060`).
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    s.trim()
        .parse::<SocketAddr>()
        .map_err(|_| format!("`{s}` is not IP:PORT (IPv6 in brackets, e.g. [::1]:5060)"))
}

/// What `tracing_subscriber::EnvFilter` accepts, checked without installing it.
fn check_log_level(level: &str) -> Result<(), String> {
    if level.trim().is_empty() {
        return Err("empty; use error, warn, info, debug or trace".to_string());
    }
    tracing_subscriber::EnvFilter::builder()
        .parse(level)
        .map(|_| ())
        .map_err(|e| format!("`{level}`: {e}; use error, warn, info, debug or trace"))
}

impl Config {
    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let config = Config::from_toml(&text).map_err(|e| match e {
            ConfigError::Syntax { reason, .. } => ConfigError::Syntax {
                path: path.display().to_string(),
                reason,
            },
            other => other,
        })?;
        Ok(config)
    }

    /// Parses and validates TOML text.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: "<config>".to_string(),
            reason: e.to_string().trim_end().to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// The effective configuration as TOML (`--print-config`).
    pub fn to_toml(&self) -> String {
        // Serializing plain structs of strings, numbers and lists cannot fail;
        // should it ever, say so instead of printing half a file.
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot render configuration: {e}\n"))
    }

    /// Checks every value that the types alone do not; the first error wins and
    /// names its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let sip = &self.sip;
        if sip.listen.is_empty() {
            return Err(ConfigError::invalid(
                "sip.listen",
                "at least one address is needed",
            ));
        }
        for (i, l) in sip.listen.iter().enumerate() {
            parse_listen(l).map_err(|r| ConfigError::invalid(&format!("sip.listen[{i}]"), r))?;
        }
        sip.upstream
            .parse::<UpstreamSpec>()
            .map_err(|r| ConfigError::invalid("sip.upstream", r))?;
        if sip
            .advertised_host
            .contains(|c: char| c.is_whitespace() || c == ';' || c == ',')
        {
            return Err(ConfigError::invalid(
                "sip.advertised_host",
                "must be a host name or IP address",
            ));
        }
        for (i, p) in sip.upstream_peers.iter().enumerate() {
            p.parse::<PeerSpec>()
                .map_err(|r| ConfigError::invalid(&format!("sip.upstream_peers[{i}]"), r))?;
        }
        for (i, p) in sip.trusted_peers.iter().enumerate() {
            p.parse::<PeerSpec>()
                .map_err(|r| ConfigError::invalid(&format!("sip.trusted_peers[{i}]"), r))?;
        }
        if !matches!(sip.message_block_status, 403 | 480) {
            return Err(ConfigError::invalid(
                "sip.message_block_status",
                format!(
                    "{} is not allowed: 480 (looks offline) or 403 (forbidden)",
                    sip.message_block_status
                ),
            ));
        }
        if sip.busy_poll_us > 1_000_000 {
            return Err(ConfigError::invalid(
                "sip.busy_poll_us",
                "must be 0 (off) ..= 1000000 microseconds",
            ));
        }
        if sip.realtime_priority > crate::transport::realtime::MAX_PRIORITY {
            return Err(ConfigError::invalid(
                "sip.realtime_priority",
                "must be 0 (off) ..= 99",
            ));
        }
        if sip.realtime_priority > 0 && sip.busy_poll_us > 0 {
            return Err(ConfigError::invalid(
                "sip.realtime_priority",
                "cannot be combined with sip.busy_poll_us: a spinning real-time thread \
                 exhausts the kernel's real-time share and is then stopped for the rest \
                 of each period; choose one",
            ));
        }
        let l = &sip.limits;
        if !(512..=65_535).contains(&l.max_message) {
            return Err(ConfigError::invalid(
                "sip.limits.max_message",
                "must be 512..=65535 bytes",
            ));
        }
        if !(8..=1024).contains(&l.max_headers) {
            return Err(ConfigError::invalid(
                "sip.limits.max_headers",
                "must be 8..=1024",
            ));
        }
        if !(128..=65_535).contains(&l.max_line) {
            return Err(ConfigError::invalid(
                "sip.limits.max_line",
                "must be 128..=65535 bytes",
            ));
        }
        if l.max_connections == 0 {
            return Err(ConfigError::invalid(
                "sip.limits.max_connections",
                "must be at least 1",
            ));
        }
        if l.tcp_idle_timeout_s == 0 {
            return Err(ConfigError::invalid(
                "sip.limits.tcp_idle_timeout_s",
                "must be at least 1 second",
            ));
        }
        if self.store.data.as_os_str().is_empty() {
            return Err(ConfigError::invalid("store.data", "must name a directory"));
        }
        if self.web.listen.parse::<SocketAddr>().is_err() {
            return Err(ConfigError::invalid(
                "web.listen",
                format!("`{}` is not IP:PORT", self.web.listen),
            ));
        }
        if self.web.idle_timeout_s == 0 {
            return Err(ConfigError::invalid(
                "web.idle_timeout_s",
                "must be at least 1 second",
            ));
        }
        if let Some(t) = &self.web.admin_token {
            if t.len() < 16 {
                return Err(ConfigError::invalid(
                    "web.admin_token",
                    "must be at least 16 characters",
                ));
            }
        }
        check_log_level(&self.log.level).map_err(|r| ConfigError::invalid("log.level", r))?;
        Ok(())
    }

    /// The validated listen addresses.
    pub fn listen_addrs(&self) -> Result<Vec<SocketAddr>, ConfigError> {
        self.sip
            .listen
            .iter()
            .enumerate()
            .map(|(i, l)| {
                parse_listen(l).map_err(|r| ConfigError::invalid(&format!("sip.listen[{i}]"), r))
            })
            .collect()
    }

    pub fn upstream(&self) -> Result<UpstreamSpec, ConfigError> {
        self.sip
            .upstream
            .parse()
            .map_err(|r| ConfigError::invalid("sip.upstream", r))
    }

    pub fn upstream_peers(&self) -> Result<Vec<PeerSpec>, ConfigError> {
        self.sip
            .upstream_peers
            .iter()
            .enumerate()
            .map(|(i, p)| {
                p.parse()
                    .map_err(|r| ConfigError::invalid(&format!("sip.upstream_peers[{i}]"), r))
            })
            .collect()
    }

    pub fn trusted_peers(&self) -> Result<Vec<PeerSpec>, ConfigError> {
        self.sip
            .trusted_peers
            .iter()
            .enumerate()
            .map(|(i, p)| {
                p.parse()
                    .map_err(|r| ConfigError::invalid(&format!("sip.trusted_peers[{i}]"), r))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_the_documented_defaults() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.sip.listen, vec!["127.0.0.1:5060"]);
        assert_eq!(c.store.data, PathBuf::from("./presence-data"));
        assert_eq!(c.sip.message_block_status, 480);
        assert_eq!(
            c.upstream().unwrap(),
            UpstreamSpec {
                transport: Transport::Udp,
                host: "127.0.0.1".into(),
                port: 5070
            }
        );
    }

    #[test]
    fn example_file_is_the_defaults() {
        let text = include_str!("../presence-proxy.example.toml");
        assert_eq!(Config::from_toml(text).unwrap(), Config::default());
    }

    #[test]
    fn printed_config_reads_back_identical() {
        let mut c = Config::default();
        c.sip.listen = vec!["[::1]:5062".into(), "127.0.0.1:5062".into()];
        c.sip.trusted_peers = vec!["127.0.0.1".into()];
        c.web.admin_token = Some("0123456789abcdef0123".into());
        let text = c.to_toml();
        assert_eq!(Config::from_toml(&text).unwrap(), c);
    }

    #[test]
    fn unknown_key_is_refused_by_name() {
        let e = Config::from_toml("[sip]\nlisen = [\"127.0.0.1:5060\"]\n").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("lisen"), "{msg}");
        let e = Config::from_toml("[nope]\n").unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let e = Config::from_toml("[sip.limits]\nmax_headers = \"many\"\n").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("max_headers"), "{msg}");
    }

    #[test]
    fn bad_values_name_key_and_reason() {
        let cases = [
            ("[sip]\nlisten = [\"localhost\"]\n", "sip.listen[0]"),
            ("[sip]\nlisten = []\n", "sip.listen"),
            ("[sip]\nupstream = \"tls:127.0.0.1:5061\"\n", "sip.upstream"),
            ("[sip]\nupstream = \"127.0.0.1\"\n", "sip.upstream"),
            ("[sip]\nupstream = \"udp:::1:5070\"\n", "sip.upstream"),
            (
                "[sip]\nmessage_block_status = 404\n",
                "sip.message_block_status",
            ),
            ("[sip]\ntrusted_peers = [\"pbx\"]\n", "sip.trusted_peers[0]"),
            ("[sip]\nbusy_poll_us = 2000000\n", "sip.busy_poll_us"),
            ("[sip]\nrealtime_priority = 100\n", "sip.realtime_priority"),
            (
                "[sip]\nrealtime_priority = 10\nbusy_poll_us = 300\n",
                "sip.realtime_priority",
            ),
            (
                "[sip.limits]\nmax_message = 100000\n",
                "sip.limits.max_message",
            ),
            ("[web]\nlisten = \"x\"\n", "web.listen"),
            ("[log]\nlevel = \"info,,=[\"\n", "log.level"),
        ];
        for (text, key) in cases {
            match Config::from_toml(text) {
                Err(ConfigError::Invalid { key: k, reason }) => {
                    assert_eq!(k, key, "{text}");
                    assert!(!reason.is_empty());
                }
                other => panic!("{text}: expected invalid {key}, got {other:?}"),
            }
        }
    }

    #[test]
    fn upstream_forms() {
        let u: UpstreamSpec = "tcp:[::1]:5070".parse().unwrap();
        assert_eq!(u.transport, Transport::Tcp);
        assert_eq!(u.resolve().unwrap(), "[::1]:5070".parse().unwrap());
        let u: UpstreamSpec = "127.0.0.1:5080".parse().unwrap();
        assert_eq!(u.transport, Transport::Udp);
        assert_eq!(u.to_string(), "udp:127.0.0.1:5080");
        assert!("udp:127.0.0.1:0".parse::<UpstreamSpec>().is_err());
    }

    #[test]
    fn trusted_peer_matches_host_or_socket() {
        let host: PeerSpec = "127.0.0.1".parse().unwrap();
        let sock: PeerSpec = "127.0.0.1:5070".parse().unwrap();
        let a: SocketAddr = "127.0.0.1:5070".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:5071".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5070".parse().unwrap();
        assert!(host.matches(a) && host.matches(b) && host.matches(mapped));
        assert!(sock.matches(a) && !sock.matches(b) && sock.matches(mapped));
    }
}
