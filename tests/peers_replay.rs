#![cfg(feature = "peers")]
//! The output pcap of a replay opens in a real tshark, and the NOTIFYs the proxy
//! would have sent show what each watcher of alice learns (policy:
//! `pcaps/presence.policy.json`): bob (allowed) the real `open` with its note,
//! carol (blocked) `closed` and nothing else, dave (external, pending, hold view)
//! no presence at all.

use std::process::Command;

fn pcaps(name: &str) -> String {
    format!("{}/pcaps/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// (watcher, Subscription-State, basic, note) of every NOTIFY tshark finds.
fn notifies(out: &std::path::Path) -> Vec<(String, String, String, String)> {
    let o = Command::new("tshark")
        .arg("-r")
        .arg(out)
        .args([
            "-Y",
            "sip.Method == \"NOTIFY\"",
            "-T",
            "fields",
            "-E",
            "separator=|",
        ])
        .args(["-e", "sip.to.user", "-e", "sip.Subscription-State"])
        .args([
            "-e",
            "presence.tuple.status.basic",
            "-e",
            "presence.tuple.note",
        ])
        .output()
        .expect("tshark must be installed for the peers tests (Debian package tshark)");
    assert!(
        o.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            let field = |i: usize| {
                f.get(i)
                    .map(|s| s.replace("<basic>,", "").replace("<note>,", ""))
                    .unwrap_or_default()
            };
            (field(0), field(1), field(2), field(3))
        })
        .collect()
}

fn replay_and_inspect(capture: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.pcap");
    let run = Command::new(env!("CARGO_BIN_EXE_presence-proxy"))
        .args([
            "replay",
            &pcaps(capture),
            "--policy",
            &pcaps("presence.policy.json"),
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let seen = notifies(&out);
    let of = |who: &str| {
        seen.iter()
            .filter(|n| n.0 == who)
            .cloned()
            .collect::<Vec<_>>()
    };
    let bob = of("bob");
    assert!(!bob.is_empty(), "no NOTIFY to bob in {seen:?}");
    assert!(
        bob.iter()
            .all(|n| n.2 == "open" && n.3.contains("In the office")),
        "{bob:?}"
    );
    let carol = of("carol");
    assert!(!carol.is_empty(), "no NOTIFY to carol in {seen:?}");
    assert!(
        carol.iter().all(|n| n.2 == "closed" && n.3.is_empty()),
        "{carol:?}"
    );
    for n in of("dave") {
        assert!(
            n.2.is_empty() && n.3.is_empty(),
            "dave learned something: {n:?}"
        );
        assert!(
            n.1.starts_with("pending") || n.1.starts_with("terminated"),
            "{n:?}"
        );
    }
}

#[test]
fn udp_capture_rewritten_notifies_open_in_tshark() {
    replay_and_inspect("presence-udp.pcap");
}

#[test]
fn tcp_capture_rewritten_notifies_open_in_tshark() {
    replay_and_inspect("presence-tcp.pcapng");
}
