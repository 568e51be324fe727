//! `presence-proxy user`: directly on the data directory, and through the running
//! proxy's admin API when the directory is locked.

mod web_support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;

use presence_proxy::store::{SledStore, Store};
use web_support::{aor, serve_data_dir};

fn user_cmd(data: &std::path::Path, args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_presence-proxy"))
        .arg("user")
        .args(args)
        .arg("--data")
        .arg(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run presence-proxy");
    // A command refused before it reads its input (a bad AoR) may exit before
    // this write: a closed pipe then is not a failure, the exit code tells.
    match child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        r => r.unwrap(),
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn add_list_passwd_remove_on_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (code, out, err) = user_cmd(
        d,
        &["add", "alice@example.com", "--password-stdin"],
        "a good password\n",
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = user_cmd(
        d,
        &["add", "alice@example.com", "--password-stdin"],
        "a good password\n",
    );
    assert_eq!(code, 3, "duplicate refused: {err}");
    assert!(err.contains("already exists"), "{err}");
    let (code, _, err) = user_cmd(d, &["add", "bob", "--password-stdin"], "a good password\n");
    assert_eq!(code, 3, "{err}");
    let (code, _, err) = user_cmd(
        d,
        &["add", "bob@example.com", "--password-stdin"],
        "short\n",
    );
    assert_eq!(code, 3, "{err}");
    let (code, _, err) = user_cmd(
        d,
        &[
            "add",
            "bob@example.com",
            "--class",
            "gold",
            "--password-stdin",
        ],
        "long enough pw\n",
    );
    assert_eq!(code, 3, "{err}");
    let (code, out, _) = user_cmd(d, &["list"], "");
    assert_eq!(code, 0);
    assert_eq!(out, "alice@example.com\tclass=default\taccount=yes\n");
    let (code, _, err) = user_cmd(
        d,
        &["passwd", "alice@example.com", "--password-stdin"],
        "another password\n",
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = user_cmd(
        d,
        &["passwd", "zed@example.com", "--password-stdin"],
        "another password\n",
    );
    assert_eq!(code, 3, "{err}");
    {
        let store = SledStore::open(d).unwrap();
        let acct = store.account(&aor("alice@example.com")).unwrap();
        assert!(presence_proxy::web::accounts::verify_password(
            Some(&acct),
            "another password"
        ));
        assert!(!presence_proxy::web::accounts::verify_password(
            Some(&acct),
            "a good password"
        ));
    }
    let (code, _, err) = user_cmd(d, &["remove", "alice@example.com"], "");
    assert_eq!(code, 0, "{err}");
    let (code, _, _) = user_cmd(d, &["remove", "alice@example.com"], "");
    assert_eq!(code, 3);
    let (_, out, _) = user_cmd(d, &["list"], "");
    assert_eq!(out, "");
}

#[test]
fn goes_through_the_admin_api_when_a_proxy_holds_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = Arc::new(SledStore::open(d).expect("this process holds the lock"));
    let _web = serve_data_dir(d, store.clone());

    let (code, out, err) = user_cmd(
        d,
        &["add", "carol@example.com", "--password-stdin"],
        "carol's password\n",
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("through the running proxy"), "{out}");
    assert!(
        store.account(&aor("carol@example.com")).is_some(),
        "the live store has the account"
    );
    let (code, _, err) = user_cmd(
        d,
        &["add", "carol@example.com", "--password-stdin"],
        "carol's password\n",
    );
    assert_eq!(code, 3, "{err}");
    let (code, out, _) = user_cmd(d, &["list"], "");
    assert_eq!(
        (code, out.as_str()),
        (0, "carol@example.com\tclass=default\taccount=yes\n")
    );
    let (code, _, err) = user_cmd(
        d,
        &["passwd", "carol@example.com", "--password-stdin"],
        "new password!\n",
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = user_cmd(d, &["remove", "carol@example.com"], "");
    assert_eq!(code, 0, "{err}");
    assert!(store.account(&aor("carol@example.com")).is_none());

    // No proxy answering at the address in proxy.json: exit 4.
    std::fs::write(
        d.join("proxy.json"),
        r#"{"pid": 1, "http": "127.0.0.1:9", "admin_token": "x"}"#,
    )
    .unwrap();
    let (code, _, err) = user_cmd(d, &["list"], "");
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("no proxy answers"), "{err}");
}
