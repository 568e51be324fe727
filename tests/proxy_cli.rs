//! The `run` command line: effective configuration, refusals with their exit
//! codes, `proxy.json`, and a clean exit on SIGTERM.

mod common;

use std::process::{Command, Output};

use common::{Proxy, BIN};
use presence_proxy::config::Config;

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run presence-proxy")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn print_config_shows_the_file_with_flags_on_top() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.toml");
    std::fs::write(&file, "[sip]\nmessage_block_status = 403\nlisten = [\"127.0.0.1:7000\"]\n[log]\nlevel = \"warn\"\n")
        .unwrap();
    let o = run(&[
        "--config",
        file.to_str().unwrap(),
        "--listen",
        "[::1]:5099",
        "--listen",
        "127.0.0.1:5099",
        "--upstream",
        "tcp:127.0.0.1:5071",
        "--data",
        "/tmp/somewhere",
        "--http",
        "127.0.0.1:8099",
        "--trust-from",
        "--print-config",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let printed =
        Config::from_toml(&String::from_utf8(o.stdout).unwrap()).expect("printed config parses");
    assert_eq!(
        printed.sip.listen,
        vec!["[::1]:5099", "127.0.0.1:5099"],
        "--listen replaces the file's list"
    );
    assert_eq!(printed.sip.upstream, "tcp:127.0.0.1:5071");
    assert_eq!(
        printed.sip.message_block_status, 403,
        "the file's value is kept"
    );
    assert!(printed.sip.trust_from);
    assert_eq!(printed.store.data.to_str(), Some("/tmp/somewhere"));
    assert_eq!(printed.web.listen, "127.0.0.1:8099");
    assert_eq!(printed.log.level, "warn");
}

#[test]
fn print_config_without_a_file_prints_the_defaults() {
    let o = run(&["--print-config"]);
    assert!(o.status.success());
    let printed = Config::from_toml(&String::from_utf8(o.stdout).unwrap()).unwrap();
    assert_eq!(printed, Config::default());
    let o = run(&["run", "--print-config"]);
    assert!(o.status.success(), "`run` is the same command");
}

#[test]
fn invalid_file_is_refused_with_exit_3_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (text, key) in [
        (
            "[sip]\nmessage_block_status = 404\n",
            "sip.message_block_status",
        ),
        ("[sip]\nupstream = \"ftp:127.0.0.1:1\"\n", "sip.upstream"),
        ("[sip]\nlistn = []\n", "listn"),
        ("[store]\ndata = 5\n", "data"),
        ("[sip\n", "TOML"),
    ] {
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, text).unwrap();
        let o = run(&[
            "--config",
            file.to_str().unwrap(),
            "--data",
            dir.path().join("d").to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(3), "{text}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains(key) || (key == "TOML" && err.contains("line")),
            "{text}: {err}"
        );
    }
    let o = run(&["--config", "/nonexistent/p.toml"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("/nonexistent/p.toml"));
}

#[test]
fn bad_flags_are_refused_with_exit_2_naming_the_flag() {
    for (args, flag) in [
        (&["--listen", "localhost:5060"][..], "--listen"),
        (&["--upstream", "127.0.0.1"][..], "--upstream"),
        (&["--http", "nope"][..], "--http"),
        (&["--log-level", "info,,=["][..], "log.level"),
        (&["--no-such-flag"][..], "--no-such-flag"),
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(flag), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn proxy_json_while_running_and_a_second_proxy_on_the_same_data_is_refused() {
    let proxy = Proxy::start(&[
        "--listen",
        "127.0.0.1:22100",
        "--upstream",
        "udp:127.0.0.1:22101",
    ]);
    let json_path = proxy.data.path().join("proxy.json");
    let text = std::fs::read_to_string(&json_path).expect("proxy.json written once ready");
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["pid"].as_u64(), Some(u64::from(proxy.pid())));
    assert!(doc["http"]
        .as_str()
        .unwrap()
        .parse::<std::net::SocketAddr>()
        .is_ok());
    assert_eq!(doc["admin_token"].as_str().unwrap().len(), 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&json_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "proxy.json carries the admin token");
    }

    let o = run(&[
        "--listen",
        "127.0.0.1:22102",
        "--upstream",
        "udp:127.0.0.1:22101",
        "--http",
        "127.0.0.1:0",
        "--data",
        proxy.data.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));

    let (status, data) = proxy.stop_keeping_data();
    assert!(status.success(), "exit status after SIGTERM: {status}");
    assert!(
        !data.path().join("proxy.json").exists(),
        "proxy.json removed on clean shutdown"
    );
}

#[test]
fn listen_address_in_use_fails_with_a_message() {
    let busy = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let o = run(&[
        "--listen",
        &addr,
        "--http",
        "127.0.0.1:0",
        "--data",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains(&addr), "{}", stderr(&o));
}

#[test]
fn web_side_serves_health_and_the_engines_counters() {
    let proxy = Proxy::start(&[
        "--listen",
        "127.0.0.1:22110",
        "--upstream",
        "udp:127.0.0.1:22111",
    ]);
    let doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(proxy.data.path().join("proxy.json")).unwrap(),
    )
    .unwrap();
    let http = doc["http"].as_str().unwrap().to_string();
    let phone = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = phone.local_addr().unwrap().port();
    let options = format!(
        "OPTIONS sip:alice@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-m1\r\n\
         Max-Forwards: 70\r\nFrom: <sip:bob@example.com>;tag=1\r\nTo: <sip:alice@example.com>\r\n\
         Call-ID: metrics-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    phone
        .send_to(options.as_bytes(), "127.0.0.1:22110")
        .unwrap();
    phone
        .send_to(b"SIP/2.0 99 broken\r\n\r\n", "127.0.0.1:22110")
        .unwrap();

    let client = reqwest::blocking::Client::new();
    let health = client.get(format!("http://{http}/healthz")).send().unwrap();
    assert!(health.status().is_success());
    let want = "presence_proxy_sip_requests_in_total{transport=\"udp\",method=\"OPTIONS\"} 1";
    let mut body = String::new();
    let seen = common::wait_for(std::time::Duration::from_secs(5), || {
        body = client
            .get(format!("http://{http}/metrics"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        body.contains(want)
    });
    assert!(seen, "/metrics lacks {want}:\n{body}");
    assert!(
        body.contains("presence_proxy_sip_dropped_total{reason=\"malformed_response\"} 1"),
        "{body}"
    );
    assert!(proxy.stop().success());
}

#[test]
fn sigint_is_a_clean_shutdown_too() {
    let proxy = Proxy::start(&[
        "--listen",
        "127.0.0.1:22120",
        "--upstream",
        "udp:127.0.0.1:22121",
    ]);
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(proxy.pid() as libc::pid_t, libc::SIGINT);
    }
    let (status, data) = proxy.stop_keeping_data();
    assert!(status.success(), "exit status after SIGINT: {status}");
    assert!(!data.path().join("proxy.json").exists());
}

/// `policy` (field 41 of /proc/PID/task/TID/stat) of each of the process's threads,
/// by thread name.
fn thread_policies(pid: u32) -> Vec<(String, i32)> {
    let mut out = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        // Fields after the parenthesized name start at field 3.
        let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else {
            continue;
        };
        if let Some(policy) = rest.split(' ').nth(41 - 3) {
            out.push((comm.trim().to_string(), policy.parse().unwrap()));
        }
    }
    out
}

/// `sip.realtime_priority`: the workers that carry SIP run under SCHED_FIFO (1),
/// every other thread (main, tokio's blocking pool, the log writer) keeps the
/// default policy (0), and the proxy still forwards.
#[test]
fn realtime_priority_puts_the_sip_workers_and_only_them_under_fifo() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rt.toml");
    std::fs::write(&file, "[sip]\nrealtime_priority = 3\n").unwrap();
    let upstream = std::net::UdpSocket::bind("127.0.0.1:22111").unwrap();
    upstream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let proxy = Proxy::start(&[
        "--config",
        file.to_str().unwrap(),
        "--listen",
        "127.0.0.1:22110",
        "--upstream",
        "udp:127.0.0.1:22111",
    ]);
    let phone = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = phone.local_addr().unwrap().port();
    let options = format!(
        "OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKrt1\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a\r\nTo: <sip:bob@example.com>\r\n\
         Call-ID: rt-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    phone
        .send_to(options.as_bytes(), "127.0.0.1:22110")
        .unwrap();
    let mut buf = [0u8; 4096];
    upstream
        .recv_from(&mut buf)
        .expect("the OPTIONS is forwarded");
    let policies = thread_policies(proxy.pid());
    let workers: Vec<_> = policies
        .iter()
        .filter(|(n, _)| n == "tokio-rt-worker")
        .collect();
    assert!(!workers.is_empty(), "{policies:?}");
    // A worker that never parked yet has not raised itself; one must have. Tokio
    // names its blocking threads like its workers: at most one FIFO thread per
    // worker (one per CPU) tells that no other thread got it.
    let fifo = workers.iter().filter(|(_, p)| *p == 1).count();
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert!((1..=cpus).contains(&fifo), "{policies:?}");
    assert!(
        policies
            .iter()
            .filter(|(n, _)| n != "tokio-rt-worker")
            .all(|(_, p)| *p == 0),
        "{policies:?}"
    );
    assert!(proxy.log().contains("SCHED_FIFO"), "{}", proxy.log());
    assert!(proxy.stop().success());
}

/// Without the privilege to use it, a configured real-time priority stops the
/// start (exit 3) with the reason, instead of a proxy that silently runs without
/// it. As root the binary runs as `nobody` (setpriv), which has no CAP_SYS_NICE
/// and an RLIMIT_RTPRIO of 0.
#[test]
fn realtime_priority_without_the_privilege_is_refused_with_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rt.toml");
    std::fs::write(&file, "[sip]\nrealtime_priority = 5\n").unwrap();
    let root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    let mut cmd = if root {
        // The file must be readable by nobody.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
        c
    } else {
        Command::new(BIN)
    };
    let o = cmd
        .args([
            "--config",
            file.to_str().unwrap(),
            "--data",
            "/nonexistent/rt",
        ])
        .env_remove("RUST_LOG")
        .output()
        .expect("run presence-proxy");
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("sip.realtime_priority = 5 refused"),
        "{}",
        stderr(&o)
    );
}
