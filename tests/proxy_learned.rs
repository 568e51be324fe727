//! Learned contacts in the running binary: an owner's own SUBSCRIBE that the
//! upstream accepts teaches the contact, which the proxy writes off the packet path
//! (`engine::presence::learn`) and which is then in the store while the proxy runs.

mod common;

use std::net::UdpSocket;
use std::process::Command;
use std::time::Duration;

use common::{wait_for, Proxy, BIN};
use presence_proxy::sip::{self, Limits};

const POLICY: &str = r#"{ "version": 1,
  "org": { "local_domains": ["example.com"] },
  "users": [ { "aor": "bob@example.com" } ] }"#;

fn policy(data: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("policy")
        .arg("--data")
        .arg(data)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run presence-proxy policy")
}

#[test]
fn owners_subscribe_teaches_a_contact_written_while_the_proxy_runs() {
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("policy.json");
    std::fs::write(&file, POLICY).unwrap();
    let o = policy(data.path(), &["import", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let upstream = UdpSocket::bind("127.0.0.1:0").unwrap();
    upstream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let up = format!("udp:{}", upstream.local_addr().unwrap());
    let proxy = Proxy::start_with_data(
        data,
        &[
            "--listen",
            "127.0.0.1:22301",
            "--upstream",
            &up,
            "--trust-from",
        ],
    );

    // bob's phone subscribes to alice's presence; the upstream accepts.
    let phone = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = phone.local_addr().unwrap().port();
    let sub = format!(
        "SUBSCRIBE sip:alice@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-l1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:bob@example.com>;tag=b1\r\nTo: <sip:alice@example.com>\r\n\
         Call-ID: learn-1\r\nCSeq: 1 SUBSCRIBE\r\nContact: <sip:bob@127.0.0.1:{port}>\r\nEvent: presence\r\n\
         Expires: 600\r\nContent-Length: 0\r\n\r\n"
    );
    phone.send_to(sub.as_bytes(), "127.0.0.1:22301").unwrap();
    let mut buf = vec![0u8; 65_536];
    let (n, from) = upstream.recv_from(&mut buf).expect("SUBSCRIBE forwarded");
    let fwd = sip::parse(bytes::Bytes::copy_from_slice(&buf[..n]), &Limits::default()).unwrap();
    let mut ok = String::from("SIP/2.0 200 OK\r\n");
    for v in fwd.header_values("Via") {
        ok.push_str(&format!("Via: {}\r\n", String::from_utf8_lossy(v)));
    }
    for h in ["From", "Call-ID", "CSeq"] {
        ok.push_str(&format!(
            "{h}: {}\r\n",
            String::from_utf8_lossy(fwd.header(h).unwrap())
        ));
    }
    ok.push_str("To: <sip:alice@example.com>;tag=a1\r\nExpires: 600\r\nContact: <sip:alice@127.0.0.1:5999>\r\nContent-Length: 0\r\n\r\n");
    upstream.send_to(ok.as_bytes(), from).unwrap();
    phone
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let (n, _) = phone.recv_from(&mut buf).expect("200 back to the phone");
    assert!(buf[..n].starts_with(b"SIP/2.0 200"));

    // The running proxy answers `policy export` through its admin endpoint.
    let dir = proxy.data.path().to_path_buf();
    let learned = wait_for(Duration::from_secs(10), || {
        let o = policy(&dir, &["export"]);
        let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        doc["users"][0]["contacts"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["aor"] == "alice@example.com" && c["learned"] == true)
        })
    });
    assert!(
        learned,
        "alice not learned as bob's contact:\n{}",
        proxy.log()
    );
    assert!(proxy.log().contains("contact learned"), "{}", proxy.log());
    assert!(proxy.stop().success());
}
