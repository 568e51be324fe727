//! `presence-proxy policy` against this admin API (the real router, not a
//! stand-in): while a proxy holds the data directory, the command line's changes,
//! explain, export and import go through `/api/v1/admin/...` and reach the live
//! store.

mod web_support;

use std::process::Command;
use std::sync::Arc;

use presence_proxy::policy::{Action, Change};
use presence_proxy::store::{SledStore, Store};
use web_support::{aor, org, serve_data_dir, ALICE};

fn policy(data: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_presence-proxy"))
        .arg("policy")
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .expect("run presence-proxy");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn policy_commands_reach_the_live_store_through_the_admin_api() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = Arc::new(SledStore::open(d).expect("this process holds the lock"));
    store.apply(Change::SetOrg { org: org() }).unwrap();
    let _web = serve_data_dir(d, store.clone());

    let (code, out, err) = policy(d, &["except", ALICE, "user", "bob@example.com", "block"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        store
            .user(&aor(ALICE))
            .unwrap()
            .user_exception(&aor("bob@example.com")),
        Some(Action::Block)
    );

    let (code, out, err) = policy(d, &["explain", ALICE, "bob@example.com", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"decision": "block", "rule": "user-exception"})
    );

    // Refused by validation through the API: exit 3, the store unchanged.
    let (code, _, err) = policy(d, &["except", ALICE, "user", "mallory@evil.org", "allow"]);
    assert_eq!(code, 3, "{err}");
    assert!(store
        .user(&aor(ALICE))
        .unwrap()
        .user_exception(&aor("mallory@evil.org"))
        .is_none());

    let (code, exported, err) = policy(d, &["export"]);
    assert_eq!(code, 0, "{err}");
    let mut doc: serde_json::Value = serde_json::from_str(&exported).unwrap();
    doc["users"][0]["refresh_interval_s"] = serde_json::json!(120);
    let file = d.join("doc.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let (code, _, err) = policy(d, &["import", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(store.user(&aor(ALICE)).unwrap().refresh_interval_s, 120);
}
