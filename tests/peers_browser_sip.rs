//! A change saved on the User Options page reaches a live SIP subscription: a sipp
//! watcher (bob) subscribes to alice's presence through the running proxy and sees
//! her Open; alice blocks bob on the Privacy Policies page in Chromium; the proxy
//! injects a NOTIFY with the Offline document into the live dialog, and sipp
//! receives it. The time from the click to sipp's receipt is printed (speed is
//! not asserted here; the NOTIFY must arrive, within sipp's 20 s timeout).
#![cfg(feature = "peers")]

mod web_support;
mod webdriver;

use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use webdriver::Browser;

const BIN: &str = env!("CARGO_BIN_EXE_presence-proxy");

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free UDP port")
}

/// Kills the child when the test ends, however it ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// bob: SUBSCRIBE to alice, 200 the first NOTIFY (logged), then wait for the
/// NOTIFY that carries `<basic>closed</basic>` and 200 it.
const WATCHER: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="watcher blocked from the web page">
  <send retrans="500">
    <![CDATA[

      SUBSCRIBE sip:alice@example.com SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      Max-Forwards: 70
      From: <sip:bob@example.com>;tag=[pid]SIPpTag[call_number]
      To: <sip:alice@example.com>
      Call-ID: [call_id]
      CSeq: 1 SUBSCRIBE
      Contact: <sip:bob@[local_ip]:[local_port];transport=[transport]>
      Event: presence
      Accept: application/pidf+xml
      Expires: 3600
      Content-Length: 0

    ]]>
  </send>
  <recv response="202" optional="true" next="ok"/>
  <recv response="200"/>
  <label id="ok"/>
  <recv request="NOTIFY" crlf="true">
    <action>
      <ereg regexp="&lt;basic&gt;([a-z]*)&lt;/basic&gt;" search_in="body" check_it="true" assign_to="d1,first"/>
      <log message="first NOTIFY basic=[$first]"/>
    </action>
  </recv>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <recv request="NOTIFY" timeout="20000">
    <action>
      <ereg regexp="&lt;basic&gt;(closed)&lt;/basic&gt;" search_in="body" check_it="true" assign_to="d2,second"/>
      <log message="update NOTIFY basic=[$second]"/>
    </action>
  </recv>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <Reference variables="d1,d2"/>
</scenario>
"#;

fn run_ok(args: &[&str], stdin: Option<&str>) {
    use std::io::Write as _;
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run presence-proxy");
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn wait_for_file_containing(path: &Path, needle: &str, secs: u64, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: `{needle}` not in {} after {secs} s:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn block_saved_on_the_page_reaches_a_live_sipp_watcher() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let d = data.to_str().unwrap();

    // The org (example.com local) and alice's account, straight into the data dir.
    let doc = serde_json::json!({ "version": 1, "org": { "local_domains": ["example.com"] }, "users": [] });
    let doc_file = work.path().join("policy.json");
    std::fs::write(&doc_file, doc.to_string()).unwrap();
    run_ok(
        &["policy", "--data", d, "import", doc_file.to_str().unwrap()],
        None,
    );
    run_ok(
        &[
            "user",
            "add",
            "alice@example.com",
            "--password-stdin",
            "--data",
            d,
        ],
        Some(&format!("{}\n", web_support::PASSWORD)),
    );

    // Upstream presence server: sipp answers the SUBSCRIBE and NOTIFYs alice Open
    // (the route-set-following variant of ../shared/peers/sipp/presence_uas.xml).
    let up = free_udp_port();
    let uas = Reaped(
        Command::new("sipp")
            .current_dir(work.path())
            .arg("-sf")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sipp/presence_uas_rr.xml"))
            .args([
                "-i",
                "127.0.0.1",
                "-p",
                &up.to_string(),
                "-m",
                "1",
                "-nostdin",
                "-timeout",
                "60s",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sipp must be installed (Debian sip-tester)"),
    );

    // The proxy, with its web side on an ephemeral port (read from proxy.json).
    let sip = free_udp_port();
    let proxy_log = std::fs::File::create(work.path().join("proxy.log")).unwrap();
    let _proxy = Reaped(
        Command::new(BIN)
            .args([
                "run",
                "--listen",
                &format!("127.0.0.1:{sip}"),
                "--upstream",
                &format!("udp:127.0.0.1:{up}"),
            ])
            .args([
                "--data",
                d,
                "--http",
                "127.0.0.1:0",
                "--trust-from",
                "--log-level",
                "info",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(proxy_log)
            .spawn()
            .expect("start presence-proxy"),
    );
    let info = wait_for_file_containing(&data.join("proxy.json"), "admin_token", 30, "proxy start");
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    let http = format!("http://{}", info["http"].as_str().unwrap());

    // bob subscribes through the proxy and first sees alice Open.
    let scenario = work.path().join("watcher.xml");
    std::fs::write(&scenario, WATCHER).unwrap();
    let log = work.path().join("watcher_logs.log");
    let mut watcher = Reaped(
        Command::new("sipp")
            .current_dir(work.path())
            .arg(format!("127.0.0.1:{sip}"))
            .arg("-sf")
            .arg(&scenario)
            .args([
                "-i",
                "127.0.0.1",
                "-p",
                &free_udp_port().to_string(),
                "-m",
                "1",
                "-nostdin",
                "-timeout",
                "60s",
            ])
            .arg("-trace_logs")
            .arg("-log_file")
            .arg(&log)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sipp must be installed"),
    );
    wait_for_file_containing(&log, "first NOTIFY basic=open", 20, "bob's first NOTIFY");

    // alice blocks bob on the page.
    let b = Browser::start(1280, 1200);
    b.goto(&format!("{http}/signin"));
    b.fill("#username", "alice@example.com");
    b.fill("#password", web_support::PASSWORD);
    b.click_and_load("#signin");
    b.wait_for("#signout", 10);
    b.fill("#userid", "bob@example.com");
    let block = b.find("input[name=user_action][value=block]");
    b.click(&block);
    // From the click on Add: the POST, the store's flushed write, the engine's
    // re-evaluation and the injected NOTIFY (an upper bound: the page load is in it).
    let clicked = Instant::now();
    b.click_and_load("#add-user-button");
    wait_for_file_containing(&log, "update NOTIFY basic=closed", 20, "the Offline NOTIFY");
    let latency = clicked.elapsed();
    eprintln!("Add (Block bob) clicked -> Offline NOTIFY logged by the sipp watcher: {latency:?}");
    b.wait_for("#sel-user-bob\\@example\\.com", 10);
    let status = loop {
        if let Ok(Some(s)) = watcher.0.try_wait() {
            break s;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "sipp watcher failed: {status}");
    let p: serde_json::Value = reqwest::blocking::Client::new()
        .get(format!(
            "{http}/api/v1/admin/explain?owner=alice@example.com&watcher=bob@example.com"
        ))
        .bearer_auth(info["admin_token"].as_str().unwrap())
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(p["decision"], "block");
    drop(uas);
}
