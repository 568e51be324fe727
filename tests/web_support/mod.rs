//! Shared by the web tests: the web side on an ephemeral loopback port over a
//! temporary sled store, with an org and two accounts.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use presence_proxy::policy::{Aor, Change, ClassOfService, Domain, Org};
use presence_proxy::store::{SledStore, Store};
use presence_proxy::web::{self, accounts, AppState, WebConfig};

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
pub const ALICE: &str = "alice@example.com";
pub const BOB: &str = "bob@example.com";
pub const PASSWORD: &str = "correct horse battery";

pub fn aor(s: &str) -> Aor {
    Aor::parse(s).expect("test AoR")
}

/// example.com is local, partner.net federated, mallory@evil.org admin-blocked;
/// class `small` allows two contacts.
pub fn org() -> Org {
    let mut org = Org {
        local_domains: vec![Domain::parse("example.com").unwrap()],
        federated_domains: vec![
            Domain::parse("partner.net").unwrap(),
            Domain::parse("other.org").unwrap(),
        ],
        blocked_users: vec![aor("mallory@evil.org")],
        blocked_domains: vec![Domain::parse("spam.example").unwrap()],
        ..Org::default()
    };
    org.classes.insert(
        "small".to_string(),
        ClassOfService {
            auto_authorize: true,
            contact_limit: 2,
        },
    );
    org
}

pub struct Server {
    pub base: String,
    pub store: Arc<SledStore>,
    pub state: AppState,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Asks the server to stop and waits (at most `limit`) for `serve` to return.
    pub fn stop_within(mut self, limit: std::time::Duration) -> bool {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let deadline = std::time::Instant::now() + limit;
        let t = self.thread.take().expect("server thread");
        while !t.is_finished() {
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        t.join().is_ok()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // Not joined: an open event stream (a browser tab) would hold graceful
        // shutdown; the thread ends with the test process.
        self.thread.take();
    }
}

/// Starts the web side with `config` (listen and admin token are overridden).
/// Alice is in class `small`, Bob in `default`; both use [`PASSWORD`].
pub fn start(mut config: WebConfig) -> Server {
    config.admin_token = Some(ADMIN_TOKEN.to_string());
    let store = Arc::new(SledStore::temporary().expect("temporary store"));
    store.apply(Change::SetOrg { org: org() }).expect("org");
    accounts::add_user(store.as_ref(), &aor(ALICE), PASSWORD, Some("small")).expect("alice");
    accounts::add_user(store.as_ref(), &aor(BOB), PASSWORD, None).expect("bob");
    start_with(store, config)
}

/// The web side of a proxy holding the data directory `dir` (`store` is opened
/// on it), with the `proxy.json` a running proxy writes there, so the command line
/// goes through the admin API.
pub fn serve_data_dir(dir: &Path, store: Arc<SledStore>) -> Server {
    let s = start_with(
        store,
        WebConfig {
            admin_token: Some(ADMIN_TOKEN.into()),
            ..WebConfig::default()
        },
    );
    let http = s.base.trim_start_matches("http://");
    std::fs::write(
        dir.join("proxy.json"),
        format!(r#"{{"pid": 1, "http": "{http}", "admin_token": "{ADMIN_TOKEN}"}}"#),
    )
    .expect("write proxy.json");
    s
}

pub fn start_with(store: Arc<SledStore>, config: WebConfig) -> Server {
    let extra = |out: &mut String| {
        out.push_str("# TYPE test_engine_messages_total counter\ntest_engine_messages_total 42\n")
    };
    let state = AppState::new(store.clone(), config).with_metrics(Arc::new(extra));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    listener.set_nonblocking(true).expect("nonblocking");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let st = state.clone();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            web::serve(listener, st, async move {
                let _ = rx.await;
            })
            .await
            .expect("serve");
        });
    });
    Server {
        base,
        store,
        state,
        shutdown: Some(tx),
        thread: Some(thread),
    }
}
