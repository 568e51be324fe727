//! An idle store writes nothing: with no change and no traffic, the data directory
//! is left alone. sled 0.34's background flusher rewrote pages of an imported
//! store forever (1.1 MB/s with 100 000 users, `SledStore`'s `SLED_FLUSH_EVERY_MS`);
//! this is the regression test for turning it off. Its own test binary, so that no
//! other test's writes land in this process's I/O counters.

use presence_proxy::policy::{Aor, Domain, Org, PolicyDocument, UserPolicy};
use presence_proxy::store::{SledStore, Store, StoreError};
use std::path::Path;
use std::time::Duration;

/// Bytes this process has passed to write(2)-like calls (`wchar` of /proc/self/io).
fn written() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap();
    io.lines()
        .find_map(|l| l.strip_prefix("wchar: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn open(dir: &Path) -> SledStore {
    // sled drops its file lock a moment after the last handle (see store_sled.rs).
    for _ in 0..40 {
        match SledStore::open(dir) {
            Err(StoreError::Locked(_)) => std::thread::sleep(Duration::from_millis(50)),
            other => return other.unwrap(),
        }
    }
    SledStore::open(dir).unwrap()
}

#[test]
fn a_reopened_store_with_many_users_writes_nothing_while_idle() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        let mut org = Org::default();
        org.local_domains
            .push(Domain::parse("example.com").unwrap());
        let users = (0..30_000)
            .map(|i| UserPolicy::new(Aor::parse(&format!("user{i}@example.com")).unwrap()))
            .collect();
        store
            .import(PolicyDocument {
                version: PolicyDocument::VERSION,
                org,
                users,
            })
            .unwrap();
    }
    let store = open(dir.path());
    std::thread::sleep(Duration::from_millis(300));
    let before = written();
    std::thread::sleep(Duration::from_millis(2_500));
    let idle = written() - before;
    assert_eq!(idle, 0, "an idle store wrote {idle} bytes in 2.5 s");
    assert_eq!(store.users().len(), 30_000);
}
