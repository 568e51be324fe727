//! Real peers: sipp as UAC and UAS with the running proxy between them, for
//! SUBSCRIBE/NOTIFY and MESSAGE, over UDP and TCP, a few thousand calls each at a
//! few hundred per second. Every call must succeed and no message may be
//! unexpected (sipp's exit status and its `-trace_stat` counters).
#![cfg(feature = "peers")]

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Proxy;

const CALLS: u32 = 2000;
const RATE: u32 = 250;

fn shared(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared")
        .join(path)
}

fn ours(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(path)
}

/// sipp's `-trace_stat` file: the last line's counters by column name.
fn final_stats(file: &Path) -> HashMap<String, String> {
    let text = std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("sipp wrote no statistics to {}: {e}", file.display()));
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .expect("statistics header")
        .split(';')
        .collect();
    let last: Vec<&str> = lines
        .next_back()
        .expect("statistics line")
        .split(';')
        .collect();
    header
        .iter()
        .zip(last)
        .map(|(h, v)| (h.to_string(), v.to_string()))
        .collect()
}

fn counter(stats: &HashMap<String, String>, name: &str) -> u64 {
    stats
        .get(name)
        .unwrap_or_else(|| panic!("no column {name} in sipp statistics"))
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("column {name} is not a number: {:?}", stats[name]))
}

/// Every failure counter sipp keeps is zero and `expected` calls succeeded.
fn assert_clean(who: &str, stats: &HashMap<String, String>, expected: u64) {
    assert_eq!(
        counter(stats, "SuccessfulCall(C)"),
        expected,
        "{who}: successful calls"
    );
    assert_eq!(counter(stats, "FailedCall(C)"), 0, "{who}: failed calls");
    for (name, _) in stats
        .iter()
        .filter(|(k, _)| k.starts_with("Failed") && k.ends_with("(C)"))
    {
        assert_eq!(counter(stats, name), 0, "{who}: {name}");
    }
    if stats.contains_key("OutOfCallMsgs(C)") {
        assert_eq!(
            counter(stats, "OutOfCallMsgs(C)"),
            0,
            "{who}: unexpected out-of-call messages"
        );
    }
}

/// The start of every `-trace_err` log sipp wrote, for the failure message.
fn sipp_errors(dir: &Path) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with("_errors.log") {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            out.push_str(&format!(
                "--- {name}\n{}\n",
                text.chars().take(3000).collect::<String>()
            ));
        }
    }
    out
}

fn sipp(dir: &Path, args: &[String]) -> Child {
    Command::new("sipp")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect(
            "sipp must be installed (Debian package sip-tester); ./scripts/test-all.sh installs it",
        )
}

fn wait(child: &mut Child, who: &str, timeout: Duration) -> i32 {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait sipp") {
            return status.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{who} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A data directory whose policy lets the scenarios' watcher (bob, identified by
/// From: `--trust-from`) see and message the owner (alice), so every flow passes
/// the privacy enforcement untouched and sipp can count it a success.
fn allowing_policy() -> tempfile::TempDir {
    let data = tempfile::tempdir().expect("temp dir");
    let doc = data.path().join("policy.json");
    std::fs::write(
        &doc,
        r#"{"version": 1, "org": {"local_domains": ["example.com"]},
            "users": [{"aor": "alice@example.com", "default_internal": "allow", "default_external": "ask",
                       "exceptions": {"users": [{"aor": "bob@example.com", "action": "allow"}]}}]}"#,
    )
    .unwrap();
    let out = Command::new(common::BIN)
        .args(["policy", "--data"])
        .arg(data.path())
        .arg("import")
        .arg(&doc)
        .output()
        .expect("run presence-proxy policy import");
    assert!(
        out.status.success(),
        "policy import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    data
}

/// One load at a time: the runs measure correctness, and several at once on a
/// small machine only add UDP loss and timeouts that say nothing about the proxy.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `calls` flows of `uac` → proxy → `uas` and checks both sipp ends.
fn run(transport: &str, uas: PathBuf, uac: PathBuf, base_port: u16) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().expect("temp dir");
    let (uas_port, proxy_port, uac_port) = (base_port, base_port + 1, base_port + 2);
    let t = if transport == "tcp" { "t1" } else { "u1" };
    let s = |x: &str| x.to_string();

    let mut uas_proc = sipp(
        dir.path(),
        &[
            s("-sf"),
            uas.display().to_string(),
            s("-i"),
            s("127.0.0.1"),
            s("-p"),
            uas_port.to_string(),
            s("-t"),
            s(t),
            s("-m"),
            CALLS.to_string(),
            s("-nostdin"),
            s("-trace_stat"),
            s("-stf"),
            s("uas.csv"),
            s("-fd"),
            s("1"),
            s("-timeout"),
            s("60s"),
            s("-timeout_error"),
        ],
    );
    std::thread::sleep(Duration::from_millis(300));
    let proxy = Proxy::start_with_data(
        allowing_policy(),
        &[
            "--listen",
            &format!("127.0.0.1:{proxy_port}"),
            "--upstream",
            &format!("{transport}:127.0.0.1:{uas_port}"),
            "--trust-from",
        ],
    );
    let mut uac_proc = sipp(
        dir.path(),
        &[
            format!("127.0.0.1:{proxy_port}"),
            s("-sf"),
            uac.display().to_string(),
            s("-s"),
            s("alice"),
            s("-i"),
            s("127.0.0.1"),
            s("-p"),
            uac_port.to_string(),
            s("-t"),
            s(t),
            s("-r"),
            RATE.to_string(),
            s("-m"),
            CALLS.to_string(),
            s("-l"),
            s("1000"),
            s("-nostdin"),
            s("-trace_stat"),
            s("-stf"),
            s("uac.csv"),
            s("-fd"),
            s("1"),
            s("-timeout"),
            s("60s"),
            s("-timeout_error"),
        ],
    );
    let uac_rc = wait(&mut uac_proc, "sipp UAC", Duration::from_secs(90));
    let uas_rc = wait(&mut uas_proc, "sipp UAS", Duration::from_secs(30));
    let uac_stats = final_stats(&dir.path().join("uac.csv"));
    let uas_stats = final_stats(&dir.path().join("uas.csv"));
    let mut proxy = proxy;
    assert!(proxy.is_running(), "the proxy died:\n{}", proxy.log());
    let errors = sipp_errors(dir.path());
    let failures = |stats: &HashMap<String, String>| {
        let mut v: Vec<String> = stats
            .iter()
            .filter(|(k, v)| {
                (k.starts_with("Failed") || k.starts_with("OutOfCall"))
                    && k.ends_with("(C)")
                    && v.trim() != "0"
            })
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        v.sort();
        v.join(" ")
    };
    let diagnosis = format!(
        "UAC: {} | UAS: {}\nsipp errors:\n{errors}",
        failures(&uac_stats),
        failures(&uas_stats)
    );
    assert_eq!(
        uac_rc, 0,
        "sipp UAC exit status (0: every call succeeded); {diagnosis}"
    );
    assert_eq!(
        uas_rc, 0,
        "sipp UAS exit status (0: every call succeeded); {diagnosis}"
    );
    assert_clean("UAC", &uac_stats, u64::from(CALLS));
    assert_clean("UAS", &uas_stats, u64::from(CALLS));
    let status = proxy.stop();
    assert!(
        status.success(),
        "proxy exit status after SIGTERM: {status}"
    );
}

#[test]
fn subscribe_notify_over_udp() {
    run(
        "udp",
        ours("presence_uas_rr.xml"),
        shared("peers/sipp/subscribe_uac.xml"),
        21_000,
    );
}

#[test]
fn subscribe_notify_over_tcp() {
    run(
        "tcp",
        ours("presence_uas_rr.xml"),
        shared("peers/sipp/subscribe_uac.xml"),
        21_010,
    );
}

#[test]
fn message_over_udp() {
    run(
        "udp",
        ours("message_uas.xml"),
        ours("message_uac.xml"),
        21_020,
    );
}

#[test]
fn message_over_tcp() {
    run(
        "tcp",
        ours("message_uas.xml"),
        ours("message_uac.xml"),
        21_030,
    );
}
