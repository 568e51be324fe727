//! The web side inside the real `presence-proxy run`: it listens where
//! `proxy.json` says, with the admin token written there; `/metrics` carries both
//! the engine's SIP counters and the web's own; a SIP request sent to the proxy
//! shows up in them; pages and the API work against the proxy's store.

use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_presence-proxy");

struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap()
}

#[test]
fn running_proxy_serves_the_web_with_engine_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let mut add = Command::new(BIN)
        .args([
            "user",
            "add",
            "alice@example.com",
            "--password-stdin",
            "--data",
            d,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        add.stdin
            .take()
            .unwrap()
            .write_all(b"a good password\n")
            .unwrap();
    }
    assert!(add.wait().unwrap().success());

    let sip = free_udp_port();
    // The upstream is a bound socket that never answers: nothing leaves loopback.
    let upstream = UdpSocket::bind("127.0.0.1:0").unwrap();
    let up = upstream.local_addr().unwrap();
    let _proxy = Reaped(
        Command::new(BIN)
            .args([
                "run",
                "--listen",
                &format!("127.0.0.1:{sip}"),
                "--upstream",
                &format!("udp:{up}"),
            ])
            .args(["--data", d, "--http", "127.0.0.1:0", "--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let info: serde_json::Value = loop {
        if let Ok(text) = std::fs::read_to_string(data.join("proxy.json")) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
                break v;
            }
        }
        assert!(Instant::now() < deadline, "the proxy wrote no proxy.json");
        std::thread::sleep(Duration::from_millis(50));
    };
    let base = format!("http://{}", info["http"].as_str().unwrap());
    let token = info["admin_token"].as_str().unwrap();
    let c = reqwest::blocking::Client::builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    assert_eq!(
        c.get(format!("{base}/healthz")).send().unwrap().status(),
        200
    );

    // One OPTIONS through the proxy, so the engine has something to count.
    let phone = UdpSocket::bind("127.0.0.1:0").unwrap();
    let me = phone.local_addr().unwrap();
    let options = format!(
        "OPTIONS sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKweb1\r\nMax-Forwards: 70\r\n\
         From: <sip:alice@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: web-metrics-1\r\n\
         CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    phone
        .send_to(options.as_bytes(), ("127.0.0.1", sip))
        .unwrap();
    upstream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = upstream
        .recv_from(&mut buf)
        .expect("the proxy forwards the OPTIONS upstream");
    assert!(buf[..n].starts_with(b"OPTIONS "));

    let metrics = c
        .get(format!("{base}/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("presence_proxy_sip_requests_in_total"),
        "engine counters: {metrics}"
    );
    assert!(
        metrics.contains("presence_proxy_store_write_seconds"),
        "web counters: {metrics}"
    );
    assert!(metrics.contains("presence_proxy_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 1"), "{metrics}");

    // The account made on the command line signs in; the admin token works.
    let r = c
        .post(format!("{base}/api/v1/session"))
        .json(&serde_json::json!({"username": "alice@example.com", "password": "a good password"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let me: serde_json::Value = c
        .get(format!("{base}/api/v1/me/policy"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(me["aor"], "alice@example.com");
    let users: serde_json::Value = c
        .get(format!("{base}/api/v1/admin/users"))
        .bearer_auth(token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(users["users"][0]["aor"], "alice@example.com");
}
