//! Offline and live replay of the same capture agree message for message: the
//! replayer plays the phones and the upstream on loopback against a running
//! `presence-proxy run`, and compares what the proxy sends with what the
//! offline run of the same engine predicts.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_presence-proxy");

fn pcaps(name: &str) -> String {
    format!("{}/pcaps/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn free_udp() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .unwrap()
}

fn free_tcp() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .unwrap()
}

struct Proxy(Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A proxy with the capture's policy, forwarding upstream to `upstream`.
fn start_proxy(dir: &std::path::Path, listen: SocketAddr, upstream: SocketAddr) -> Proxy {
    let data = dir.join("data");
    let import = Command::new(BIN)
        .args(["policy", "--data"])
        .arg(&data)
        .args(["import", &pcaps("presence.policy.json")])
        .output()
        .unwrap();
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    let child = Command::new(BIN)
        .args([
            "run",
            "--listen",
            &listen.to_string(),
            "--upstream",
            &format!("udp:{upstream}"),
        ])
        .arg("--data")
        .arg(&data)
        .args(["--http", &free_tcp().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let proxy = Proxy(child);
    // Ready once it holds its UDP port (binding it here then fails).
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if UdpSocket::bind(listen).is_err() {
            return proxy;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the proxy did not bind {listen}");
}

#[test]
fn live_replay_against_a_running_proxy_agrees_with_offline() {
    let dir = tempfile::tempdir().unwrap();
    let listen = free_udp();
    let upstream = free_udp();
    let _proxy = start_proxy(dir.path(), listen, upstream);
    let live_report = dir.path().join("live.json");
    let o = Command::new(BIN)
        .args([
            "replay",
            &pcaps("presence-udp.pcap"),
            "--policy",
            &pcaps("presence.policy.json"),
        ])
        .args([
            "--live",
            &listen.to_string(),
            "--live-upstream",
            &upstream.to_string(),
        ])
        .arg("--live-report")
        .arg(&live_report)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(live_report).unwrap()).unwrap();
    assert_eq!(report["sent"], 38);
    assert_eq!(report["missing"].as_array().unwrap().len(), 0);
    assert_eq!(report["unexpected"].as_array().unwrap().len(), 0);
    assert!(report["predicted"].as_u64().unwrap() >= 30, "{report}");
    assert_eq!(report["agreed"], report["predicted"]);
}
