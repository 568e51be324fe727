//! The third-party captures in `../shared/pcaps/` replay without error through
//! the real engine, and what the proxy would send is what it received, apart
//! from the routing headers (RFC 3261 §16.6: Via, Max-Forwards, Route,
//! Record-Route).

use std::process::Command;

use presence_proxy::replay::{CaptureReader, CapturedMessage};

fn shared(name: &str) -> String {
    format!("{}/../shared/pcaps/{name}", env!("CARGO_MANIFEST_DIR"))
}

struct Replayed {
    report: Vec<serde_json::Value>,
    sent: Vec<CapturedMessage>,
    stdout: String,
}

fn replay(capture: &str, dir: &tempfile::TempDir) -> Replayed {
    let report = dir.path().join("report.json");
    let out = dir.path().join("out.pcap");
    let run = Command::new(env!("CARGO_BIN_EXE_presence-proxy"))
        .args(["replay", capture, "--report"])
        .arg(&report)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report = std::fs::read_to_string(&report)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let bytes = std::fs::read(&out).unwrap();
    let mut reader = CaptureReader::new(bytes.as_slice()).unwrap();
    let mut sent = Vec::new();
    while let Some(m) = reader.next_message().unwrap() {
        sent.push(m);
    }
    Replayed {
        report,
        sent,
        stdout: String::from_utf8_lossy(&run.stdout).into_owned(),
    }
}

fn input(capture: &str) -> Vec<CapturedMessage> {
    let bytes = std::fs::read(capture).unwrap();
    let mut reader = CaptureReader::new(bytes.as_slice()).unwrap();
    let mut v = Vec::new();
    while let Some(m) = reader.next_message().unwrap() {
        v.push(m);
    }
    v
}

/// The message without the headers a proxy may change: its header lines other
/// than Via, Max-Forwards, Route, Record-Route and Content-Length (which the proxy
/// adds where UDP let the sender leave it out), and its body. A datagram that
/// ends without the blank line gets one from the proxy; that is not a change.
fn without_routing(data: &[u8]) -> (Vec<Vec<u8>>, Vec<u8>) {
    let (head, body) = match data.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(at) => (&data[..at], data[at + 4..].to_vec()),
        None => (data, Vec::new()),
    };
    let lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|line| {
            let l = line.to_ascii_lowercase();
            !(l.is_empty()
                || l.starts_with(b"via:")
                || l.starts_with(b"v:")
                || l.starts_with(b"max-forwards:")
                || l.starts_with(b"route:")
                || l.starts_with(b"record-route:")
                || l.starts_with(b"content-length:"))
        })
        .map(<[u8]>::to_vec)
        .collect();
    (lines, body)
}

#[test]
fn responses_capture_is_forwarded_untouched() {
    let capture = shared("pcapplusplus_sip_resp_control.pcap");
    let dir = tempfile::tempdir().unwrap();
    let r = replay(&capture, &dir);
    assert_eq!(r.report.len(), 7);
    for line in &r.report {
        assert_eq!(line["action"], "forwarded", "{line}");
        assert_eq!(line["decision"], serde_json::Value::Null);
    }
    let statuses: Vec<u64> = r
        .report
        .iter()
        .map(|l| l["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [100, 180, 200, 401, 401, 504, 503]);
    let inputs = input(&capture);
    assert_eq!(r.sent.len(), 7);
    for (sent, got) in r.sent.iter().zip(&inputs) {
        assert_eq!(without_routing(&sent.data), without_routing(&got.data));
        assert_eq!(sent.time_us, got.time_us);
    }
    assert!(r.stdout.contains("forwarded"));
}

#[test]
fn requests_capture_forwards_all_but_the_bye_cut_short_on_the_wire() {
    let capture = shared("pcapplusplus_sip_reqs_control.pcap");
    let dir = tempfile::tempdir().unwrap();
    let r = replay(&capture, &dir);
    let methods: Vec<&str> = r
        .report
        .iter()
        .map(|l| l["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["INVITE", "CANCEL", "ACK", "BYE"]);
    for line in &r.report[..3] {
        assert_eq!(line["action"], "forwarded", "{line}");
    }
    // The BYE datagram itself ends in the middle of "Content-Length" (the
    // capture's IP and UDP lengths cover exactly that): a malformed request the
    // proxy refuses with 400 rather than forwards.
    assert_eq!(r.report[3]["action"], "refused");
    assert!(r.report[3]["reason"]
        .as_str()
        .unwrap()
        .contains("Not Terminated"));
    let inputs = input(&capture);
    for (sent, got) in r.sent.iter().zip(&inputs).take(3) {
        assert_eq!(without_routing(&sent.data), without_routing(&got.data));
    }
    assert!(String::from_utf8_lossy(&r.sent[3].data).starts_with("SIP/2.0 400"));
}
