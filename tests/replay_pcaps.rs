//! Each capture in `pcaps/` replays to its expected report exactly, and the
//! report says what the policy (`pcaps/presence.policy.json`) means for alice's
//! watchers: bob allowed, carol blocked, dave held pending.

use std::process::Command;

fn pcaps(name: &str) -> String {
    format!("{}/pcaps/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn replay(capture: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.jsonl");
    let o = Command::new(env!("CARGO_BIN_EXE_presence-proxy"))
        .args([
            "replay",
            &pcaps(capture),
            "--policy",
            &pcaps("presence.policy.json"),
            "--report",
        ])
        .arg(&report)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::read_to_string(report).unwrap()
}

fn lines(report: &str) -> Vec<serde_json::Value> {
    report
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The report lines about `watcher` watching alice with this method.
fn about<'a>(
    r: &'a [serde_json::Value],
    watcher: &str,
    method: &str,
) -> Vec<&'a serde_json::Value> {
    r.iter()
        .filter(|l| {
            l["method"] == method && l["watcher"] == watcher && l["owner"] == "alice@example.com"
        })
        .collect()
}

fn check_meaning(report: &str) {
    let r = lines(report);
    assert_eq!(r.len(), 38);
    let bob = about(&r, "bob@example.com", "NOTIFY");
    assert_eq!(bob.len(), 2, "{r:#?}");
    assert!(bob.iter().all(|l| l["decision"] == "allow"
        && l["action"] == "forwarded"
        && l["rule"] == "user-exception"));
    let carol = about(&r, "carol@example.com", "NOTIFY");
    assert_eq!(carol.len(), 2, "{r:#?}");
    assert!(carol.iter().all(|l| l["decision"] == "block"
        && l["action"] == "rewritten"
        && l["rule"] == "user-exception"));
    let dave = about(&r, "dave@other.org", "NOTIFY");
    assert_eq!(dave.len(), 2, "{r:#?}");
    assert!(dave
        .iter()
        .all(|l| l["decision"] == "pending" && l["rule"] == "default-external"));
    let carol_message = about(&r, "carol@example.com", "MESSAGE");
    assert_eq!(carol_message.len(), 1);
    assert_eq!(carol_message[0]["action"], "answered");
    let bob_message = about(&r, "bob@example.com", "MESSAGE");
    assert_eq!(bob_message.len(), 1);
    assert_eq!(bob_message[0]["action"], "forwarded");
    let dave_message = about(&r, "dave@other.org", "MESSAGE");
    assert_eq!(dave_message.len(), 1);
    assert_eq!(dave_message[0]["action"], "answered");
    // Kamailio's 404s to the MESSAGEs the proxy answered itself never reach a phone.
    let dropped: Vec<_> = r.iter().filter(|l| l["action"] == "dropped").collect();
    assert_eq!(dropped.len(), 2);
    assert!(dropped.iter().all(|l| l["status"] == 404));
}

#[test]
fn udp_capture_reproduces_its_expected_report() {
    let got = replay("presence-udp.pcap");
    check_meaning(&got);
    assert_eq!(
        got,
        std::fs::read_to_string(pcaps("presence-udp.report.jsonl")).unwrap()
    );
}

#[test]
fn tcp_capture_reproduces_its_expected_report() {
    let got = replay("presence-tcp.pcapng");
    check_meaning(&got);
    assert_eq!(
        got,
        std::fs::read_to_string(pcaps("presence-tcp.report.jsonl")).unwrap()
    );
}
