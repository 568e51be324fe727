//! `presence-proxy policy`: exit codes (0 done, 2 usage, 3 invalid, 4 store), what
//! stderr says, and the way through the admin API while a proxy holds the data dir.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::mpsc;

use presence_proxy::store::SledStore;

const ALICE: &str = "alice@example.com";

const DOC: &str = r#"{ "version": 1,
  "org": { "local_domains": ["example.com"], "federated_domains": ["partner.net"],
           "blocked_users": ["spam@evil.org"], "blocked_domains": ["evil.org"],
           "classes": { "default": { "auto_authorize": true, "contact_limit": 100 } },
           "pending_view": "hold", "pending_timeout_s": 86400 },
  "users": [ { "aor": "alice@example.com", "class": "default",
               "default_internal": "allow", "default_external": "ask",
               "exceptions": { "users":   [ { "aor": "bob@example.com", "action": "block" } ],
                               "domains": [ { "domain": "partner.net", "action": "allow" } ] },
               "contacts": [ { "aor": "carol@partner.net", "name": "Carol" } ],
               "refresh_interval_s": 30 } ] }"#;

fn policy(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_presence-proxy"))
        .arg("policy")
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited, not killed")
}

/// Asserts the exit code, showing what the command said when it is wrong.
fn expect_exit(o: &Output, expected: i32) {
    assert_eq!(code(o), expected, "{}", stderr(o));
}

/// Asserts that stderr contains `says`.
fn expect_stderr(o: &Output, says: &str) {
    assert!(
        stderr(o).contains(says),
        "stderr {:?} lacks {says:?}",
        stderr(o)
    );
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn imported() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let doc = dir.path().join("doc.json");
    std::fs::write(&doc, DOC).unwrap();
    let o = policy(&data, &["import", doc.to_str().unwrap()]);
    expect_exit(&o, 0);
    (dir, data)
}

fn explain(data: &Path, owner: &str, watcher: &str) -> String {
    let o = policy(data, &["explain", owner, watcher, "--json"]);
    expect_exit(&o, 0);
    stdout(&o).trim().to_string()
}

#[test]
fn import_explain_export_round_trip() {
    let (dir, data) = imported();
    assert_eq!(
        explain(&data, ALICE, "bob@example.com"),
        r#"{"decision":"block","rule":"user-exception"}"#
    );
    assert_eq!(
        explain(&data, "sip:alice@EXAMPLE.com", "x@other.org"),
        r#"{"decision":"pending","rule":"default-external"}"#
    );
    let o = policy(&data, &["explain", ALICE, "carol@partner.net"]);
    assert!(stdout(&o).starts_with("allow (contact)"), "{}", stdout(&o));

    let out = dir.path().join("out.json");
    let o = policy(&data, &["export", out.to_str().unwrap()]);
    expect_exit(&o, 0);
    let exported: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let original: serde_json::Value = serde_json::from_str(DOC).unwrap();
    assert_eq!(exported, original);
    let o = policy(&data, &["export"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap(),
        original
    );
}

#[test]
fn each_command_changes_what_it_says() {
    let (_dir, data) = imported();
    let ok = |args: &[&str]| {
        let o = policy(&data, args);
        assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
    };
    let alice_decides = |watcher: &str, decision: &str, rule: &str| {
        let verdict = format!(r#"{{"decision":"{decision}","rule":"{rule}"}}"#);
        assert_eq!(explain(&data, ALICE, watcher), verdict, "for {watcher}");
    };
    ok(&["set-default", ALICE, "internal", "block"]);
    alice_decides("dan@example.com", "block", "default-internal");
    ok(&["except", ALICE, "user", "dan@example.com", "allow"]);
    alice_decides("dan@example.com", "allow", "user-exception");
    ok(&["unexcept", ALICE, "user", "dan@example.com"]);
    alice_decides("dan@example.com", "block", "default-internal");
    ok(&["except", ALICE, "domain", "other.org", "block"]);
    alice_decides("x@other.org", "block", "domain-exception");
    ok(&["unexcept", ALICE, "domain", "other.org"]);
    ok(&["set-default", ALICE, "external", "block"]);
    alice_decides("x@other.org", "block", "default-external");
    ok(&["contact", "add", ALICE, "x@other.org", "--name", "Xavier"]);
    alice_decides("x@other.org", "allow", "contact");
    ok(&["contact", "remove", ALICE, "x@other.org"]);
    ok(&["answer", ALICE, "x@other.org", "allow"]);
    alice_decides("x@other.org", "allow", "user-exception");
    ok(&["answer", ALICE, "x@other.org", "block"]);
    alice_decides("x@other.org", "block", "user-exception");
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["frobnicate"][..],
        &["set-default", ALICE, "sideways", "allow"],
        &["except", ALICE, "user", "bob@example.com", "maybe"],
        &["explain", ALICE],
    ] {
        let o = policy(dir.path(), args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn invalid_input_exits_3_saying_what_and_where_and_changes_nothing() {
    let (dir, data) = imported();
    let before = stdout(&policy(&data, &["export"]));
    let cases: &[(&[&str], &str)] = &[
        (
            &["explain", "alice", "bob@example.com"],
            "OWNER: address `alice` has no `@`",
        ),
        (
            &["set-default", ALICE, "external", "allow"],
            "VALUE: Allow is not available",
        ),
        (
            &["except", ALICE, "user", "spam@evil.org", "allow"],
            "watcher: spam@evil.org is blocked by the administrator",
        ),
        (
            &["except", ALICE, "domain", "bad..org", "block"],
            "VALUE: `bad..org` is not a valid domain",
        ),
        (
            &["contact", "add", ALICE, "carol@partner.net"],
            "contact: duplicate",
        ),
        (
            &["unexcept", ALICE, "user", "nobody@example.com"],
            "has no exception for nobody@example.com",
        ),
    ];
    for (args, says) in cases {
        let o = policy(&data, args);
        assert_eq!(code(&o), 3, "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(says),
            "{args:?}: stderr {:?} lacks {says:?}",
            stderr(&o)
        );
    }
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"version":1,"users":[{"aor":"a@x.org","refresh_interval_s":6},
            {"aor":"b@x.org","exceptions":{"users":[{"aor":"nope","action":"block"}]}}]}"#,
    )
    .unwrap();
    let o = policy(&data, &["import", bad.to_str().unwrap()]);
    expect_exit(&o, 3);
    expect_stderr(&o, "users[0].refresh_interval_s");
    expect_stderr(&o, "users[1].exceptions.users[0].aor");
    assert_eq!(
        stdout(&policy(&data, &["export"])),
        before,
        "a refused command changed the store"
    );
}

#[test]
fn store_failures_exit_4() {
    let dir = tempfile::tempdir().unwrap();
    // A data dir with a newer schema is refused, never reset.
    let data = dir.path().join("newer");
    {
        let db = sled::open(&data).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("schema", &7u32.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    let o = policy(&data, &["export"]);
    expect_exit(&o, 4);
    expect_stderr(&o, "schema version 7");
    // A data dir that is a file.
    let file = dir.path().join("plain-file");
    std::fs::write(&file, "x").unwrap();
    let o = policy(&file, &["export"]);
    expect_exit(&o, 4);
}

#[test]
fn locked_data_dir_without_a_proxy_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _held = SledStore::open(&data).unwrap();
    let o = policy(&data, &["explain", ALICE, "bob@example.com"]);
    expect_exit(&o, 4);
    expect_stderr(&o, "is in use by another process");

    // proxy.json names an address where nobody listens.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        data.join("proxy.json"),
        format!(r#"{{"pid": 1, "http": "127.0.0.1:{port}", "admin_token": "t"}}"#),
    )
    .unwrap();
    let o = policy(&data, &["set-default", ALICE, "internal", "block"]);
    expect_exit(&o, 4);
    expect_stderr(
        &o,
        &format!("locked (a proxy holds it) and no proxy answers at http://127.0.0.1:{port}"),
    );
}

/// A one-request admin API stand-in: answers `status` with `body` and hands back
/// the request it got (request line, headers, body).
fn fake_admin(status: &'static str, body: &'static str) -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut head = String::new();
        let mut len = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
            head.push_str(&line);
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        let mut req_body = vec![0; len];
        reader.read_exact(&mut req_body).unwrap();
        let mut stream = stream;
        write!(
            stream,
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        tx.send(head + &String::from_utf8_lossy(&req_body)).unwrap();
    });
    (port, rx)
}

#[test]
fn locked_data_dir_goes_through_the_admin_api() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _held = SledStore::open(&data).unwrap();
    let write_proxy_json = |port: u16| {
        std::fs::write(
            data.join("proxy.json"),
            format!(r#"{{"pid": 1, "http": "127.0.0.1:{port}", "admin_token": "sekret"}}"#),
        )
        .unwrap()
    };

    let (port, got) = fake_admin("200 OK", r#"{"applied":1}"#);
    write_proxy_json(port);
    let o = policy(
        &data,
        &[
            "contact",
            "add",
            ALICE,
            "carol@partner.net",
            "--name",
            "Carol",
        ],
    );
    expect_exit(&o, 0);
    let req = got.recv().unwrap();
    assert!(req.starts_with("POST /api/v1/admin/changes "), "{req}");
    assert!(
        req.to_ascii_lowercase()
            .contains("authorization: bearer sekret"),
        "{req}"
    );
    let body: serde_json::Value = serde_json::from_str(req.rsplit("\r\n").next().unwrap()).unwrap();
    assert_eq!(
        body,
        serde_json::json!([{"op": "add_contact", "owner": "alice@example.com", "contact": "carol@partner.net",
                            "name": "Carol", "learned": false}])
    );

    let (port, got) = fake_admin(
        "200 OK",
        r#"{"decision":"pending","rule":"default-external"}"#,
    );
    write_proxy_json(port);
    let o = policy(&data, &["explain", ALICE, "x@other.org", "--json"]);
    expect_exit(&o, 0);
    assert_eq!(
        stdout(&o).trim(),
        r#"{"decision":"pending","rule":"default-external"}"#
    );
    let req = got.recv().unwrap();
    assert!(
        req.starts_with(
            "GET /api/v1/admin/explain?owner=alice%40example.com&watcher=x%40other.org "
        ),
        "{req}"
    );

    let (port, _got) = fake_admin(
        "422 Unprocessable Entity",
        r#"{"error":"invalid","field":"contact","errors":[{"path":"contact","message":"contact limit reached"}]}"#,
    );
    write_proxy_json(port);
    let o = policy(&data, &["contact", "add", ALICE, "dan@partner.net"]);
    expect_exit(&o, 3);
    expect_stderr(&o, "contact: contact limit reached");
}

#[test]
fn config_file_names_the_data_dir() {
    let (dir, data) = imported();
    let cfg = dir.path().join("proxy.toml");
    std::fs::write(
        &cfg,
        format!("[store]\ndata = {:?}\n", data.to_str().unwrap()),
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_presence-proxy"))
        .args([
            "policy",
            "--config",
            cfg.to_str().unwrap(),
            "explain",
            ALICE,
            "bob@example.com",
            "--json",
        ])
        .output()
        .unwrap();
    expect_exit(&o, 0);
    assert_eq!(
        stdout(&o).trim(),
        r#"{"decision":"block","rule":"user-exception"}"#
    );
}
