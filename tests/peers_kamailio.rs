#![cfg(feature = "peers")]
//! The proxy between sipp phones and a real Kamailio presence server (the recipe in
//! `../shared/peers/`), over UDP and over TCP:
//! - alice publishes her presence through the proxy;
//! - bob (allowed) receives her real PIDF, mallory (blocked) a closed document with
//!   nothing else, eve (external, Ask Me) `pending` until alice answers with the
//!   `presence-proxy policy answer` command, then the real state at once;
//! - mallory's MESSAGE gets 480 and never reaches Kamailio;
//! - alice's own watcher-info subscription lists eve as pending.
//!
//! Every sipp run must end with zero failed calls. Needs `kamailio` (with the
//! presence modules) and `sipp`; fails loudly when they cannot be started.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_presence-proxy");
const SCENARIOS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/kamailio");

/// A child process killed (by its own pid) when the test ends, pass or fail.
struct Running {
    child: Child,
}

impl Drop for Running {
    /// SIGTERM first: Kamailio's main process stops its workers only when it is
    /// asked to (SIGKILL would orphan them); SIGKILL after 5 s.
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: signalling our own child by its pid.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < timeout,
            "{what} did not happen within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn kamailio(dir: &Path, port: u16) -> Running {
    let db = dir.join("kamailio-db");
    let status = Command::new("cp")
        .args(["-r", "/usr/share/kamailio/dbtext/kamailio"])
        .arg(&db)
        .status()
        .expect("cp runs");
    assert!(
        status.success(),
        "Kamailio's db_text schema (/usr/share/kamailio/dbtext/kamailio) is missing"
    );
    let cfg = std::fs::read_to_string(Path::new(SCENARIOS).join("presence.cfg"))
        .expect("tests/kamailio/presence.cfg")
        .replace("@PORT@", &port.to_string())
        .replace("@DB@", db.to_str().expect("utf-8 temp path"));
    let cfg_path = dir.join("kamailio.cfg");
    std::fs::write(&cfg_path, cfg).expect("write kamailio.cfg");
    let run = dir.join("kamailio-run");
    std::fs::create_dir_all(&run).expect("run dir");
    let log = std::fs::File::create(dir.join("kamailio.log")).expect("log file");
    let child = Command::new("kamailio")
        .arg("-f")
        .arg(&cfg_path)
        .args(["-DD", "-E", "-P"])
        .arg(run.join("kamailio.pid"))
        .arg("-Y")
        .arg(&run)
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("kamailio must be installed (apt-get install kamailio kamailio-presence-modules)");
    let k = Running { child };
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_until("Kamailio listening", Duration::from_secs(10), || {
        TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
    });
    k
}

fn cli(data: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("policy")
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .expect("presence-proxy runs")
}

const POLICY: &str = r#"{
  "version": 1,
  "org": { "local_domains": ["example.com"], "pending_view": "hold" },
  "users": [
    { "aor": "alice@example.com", "default_internal": "allow", "default_external": "ask",
      "exceptions": { "users": [ { "aor": "mallory@example.com", "action": "block" } ] } }
  ]
}"#;

fn proxy(dir: &Path, port: u16, upstream: &str, http: u16) -> (Running, PathBuf) {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let policy = dir.join("policy.json");
    std::fs::write(&policy, POLICY).unwrap();
    let out = cli(&data, &["import", policy.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "policy import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = std::fs::File::create(dir.join("proxy.log")).expect("log file");
    let child = Command::new(BIN)
        .arg("run")
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--upstream", upstream])
        .arg("--data")
        .arg(&data)
        .args(["--http", &format!("127.0.0.1:{http}")])
        .args(["--log-level", "presence_proxy=debug,info"])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("the presence-proxy binary starts");
    let p = Running { child };
    let json = data.join("proxy.json");
    wait_until(
        "the proxy writing proxy.json",
        Duration::from_secs(15),
        || json.exists(),
    );
    (p, data)
}

/// Runs one sipp scenario to completion: exactly one call, which must succeed.
fn sipp(
    dir: &Path,
    scenario: &str,
    user: &str,
    domain: &str,
    transport: &str,
    port: u16,
    proxy: u16,
) -> Child {
    Command::new("sipp")
        .arg(format!("127.0.0.1:{proxy}"))
        .args(["-sf", &format!("{SCENARIOS}/{scenario}")])
        .args(["-s", user, "-key", "domain", domain])
        .args(["-t", transport, "-i", "127.0.0.1", "-p", &port.to_string()])
        .args(["-m", "1", "-timeout", "30", "-nostdin", "-trace_err"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sipp must be installed (apt-get install sip-tester)")
}

fn finish(dir: &Path, what: &str, child: Child) {
    let out = child.wait_with_output().expect("sipp ends");
    if !out.status.success() {
        let mut errors = String::new();
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            if e.file_name().to_string_lossy().ends_with("_errors.log") {
                errors.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
        let proxy_log = std::fs::read_to_string(dir.join("proxy.log")).unwrap_or_default();
        let tail: String = proxy_log
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        panic!(
            "{what}: sipp failed ({}): {}\n{errors}\n--- proxy log (tail) ---\n{tail}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn run(transport: &str, base: u16) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (kport, pport, http) = (base, base + 1, base + 2);
    let scheme = if transport == "t1" { "tcp" } else { "udp" };
    let _kamailio = kamailio(dir, kport);
    let (_proxy, data) = proxy(dir, pport, &format!("{scheme}:127.0.0.1:{kport}"), http);
    let sp = |n: u16| base + 10 + n;

    finish(
        dir,
        "alice publishes",
        sipp(
            dir,
            "publish.xml",
            "alice",
            "example.com",
            transport,
            sp(0),
            pport,
        ),
    );
    finish(
        dir,
        "bob (allowed) watches",
        sipp(
            dir,
            "watch_allowed.xml",
            "bob",
            "example.com",
            transport,
            sp(1),
            pport,
        ),
    );
    finish(
        dir,
        "mallory (blocked) watches",
        sipp(
            dir,
            "watch_blocked.xml",
            "mallory",
            "example.com",
            transport,
            sp(2),
            pport,
        ),
    );
    finish(
        dir,
        "mallory's MESSAGE",
        sipp(
            dir,
            "message_blocked.xml",
            "mallory",
            "example.com",
            transport,
            sp(3),
            pport,
        ),
    );
    let klog = std::fs::read_to_string(dir.join("kamailio.log")).unwrap_or_default();
    assert!(
        !klog.contains("RELAY MESSAGE"),
        "a gated MESSAGE reached Kamailio:\n{klog}"
    );

    // eve waits in `pending` ...
    let eve = sipp(
        dir,
        "watch_pending.xml",
        "eve",
        "other.org",
        transport,
        sp(4),
        pport,
    );
    let explain = || {
        let out = cli(
            &data,
            &["explain", "alice@example.com", "eve@other.org", "--json"],
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(
        explain().contains("pending"),
        "eve should be pending: {}",
        explain()
    );
    std::thread::sleep(Duration::from_millis(1_500));
    // ... alice's watcher-info lists her ...
    finish(
        dir,
        "alice's watcher-info",
        sipp(
            dir,
            "winfo.xml",
            "alice",
            "example.com",
            transport,
            sp(5),
            pport,
        ),
    );
    // ... alice answers through the running proxy's admin API, and eve sees her at once.
    let out = cli(
        &data,
        &["answer", "alice@example.com", "eve@other.org", "allow"],
    );
    assert!(
        out.status.success(),
        "policy answer: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    finish(dir, "eve (pending, then allowed) watches", eve);
}

#[test]
fn enforcement_with_kamailio_over_udp() {
    run("u1", 25_370);
}

#[test]
fn enforcement_with_kamailio_over_tcp() {
    run("t1", 25_470);
}
