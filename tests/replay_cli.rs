//! `presence-proxy replay` on bad input: each failure says what and where, with
//! the documented exit code, and writes nothing half-done.

use std::process::{Command, Output};

fn replay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_presence-proxy"))
        .arg("replay")
        .args(args)
        .output()
        .unwrap()
}

fn pcaps(name: &str) -> String {
    format!("{}/pcaps/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_truncated_capture_fails_with_the_byte_offset_and_packet() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(pcaps("presence-udp.pcap")).unwrap();
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    let o = replay(&[cut.to_str().unwrap(), "--upstream", "127.0.0.1:5170"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("truncated at byte") && e.contains("packet 38"),
        "{e}"
    );
}

#[test]
fn not_a_capture_and_a_missing_file_are_invalid_input() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "SIP/2.0 200 OK\r\n\r\n").unwrap();
    let o = replay(&[text.to_str().unwrap(), "--upstream", "127.0.0.1:5060"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("not a pcap or pcapng file"),
        "{}",
        stderr(&o)
    );
    let o = replay(&["/nonexistent/x.pcap", "--upstream", "127.0.0.1:5060"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("cannot open /nonexistent/x.pcap"));
}

#[test]
fn an_invalid_policy_names_the_json_path() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.json");
    std::fs::write(&policy, r#"{"version":1,"users":[{"aor":"not an aor"}]}"#).unwrap();
    let o = replay(&[
        &pcaps("presence-udp.pcap"),
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("users[0]"), "{}", stderr(&o));
}

#[test]
fn a_capture_without_sip_cannot_choose_sides() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pcap");
    let mut header = 0xA1B2_C3D4u32.to_le_bytes().to_vec();
    header.extend_from_slice(&[
        2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0, 1, 0, 0, 0,
    ]);
    std::fs::write(&empty, header).unwrap();
    let o = replay(&[empty.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--upstream"), "{}", stderr(&o));
    // Naming the upstream is enough: an empty capture replays to an empty report.
    let report = dir.path().join("r.json");
    let o = replay(&[
        empty.to_str().unwrap(),
        "--upstream",
        "10.0.0.1:5060",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(report).unwrap(), "");
}

#[test]
fn live_refuses_a_target_outside_loopback() {
    let o = replay(&[&pcaps("presence-udp.pcap"), "--live", "192.0.2.7:5060"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("only to loopback"), "{}", stderr(&o));
}
