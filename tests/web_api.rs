//! The REST and admin API against the real router on a loopback port with a
//! temporary sled store: every endpoint, every error status, sessions, CSRF,
//! sign-in limits, and that one user can never read or change another's data.

mod web_support;

use std::io::Read;
use std::time::Duration;

use presence_proxy::policy::{Action, PendingHow};
use presence_proxy::store::Store;
use presence_proxy::web::WebConfig;
use reqwest::blocking::{Client, Response};
use reqwest::StatusCode;
use serde_json::{json, Value};
use web_support::{aor, start, Server, ADMIN_TOKEN, ALICE, BOB, PASSWORD};

/// Form fields as (name, value) pairs.
type Fields<'a> = &'a [(&'a str, &'a str)];

fn client() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// A signed-in API user: its cookie jar and CSRF token.
struct User {
    c: Client,
    csrf: String,
}

/// `POST /api/v1/session` with `body` (`username` and `password`).
fn post_session(c: &Client, s: &Server, body: Value) -> Response {
    c.post(s.url("/api/v1/session")).json(&body).send().unwrap()
}

fn sign_in(s: &Server, user: &str) -> User {
    let c = client();
    let r = post_session(&c, s, json!({"username": user, "password": PASSWORD}));
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let body: Value = r.json().unwrap();
    User {
        c,
        csrf: body["csrf_token"].as_str().unwrap().to_string(),
    }
}

impl User {
    fn get(&self, s: &Server, path: &str) -> Response {
        self.c.get(s.url(path)).send().unwrap()
    }
    fn send(
        &self,
        method: reqwest::Method,
        s: &Server,
        path: &str,
        body: Option<Value>,
    ) -> Response {
        let mut rb = self
            .c
            .request(method, s.url(path))
            .header("X-CSRF-Token", &self.csrf);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        rb.send().unwrap()
    }
    fn post(&self, s: &Server, path: &str, body: Value) -> Response {
        self.send(reqwest::Method::POST, s, path, Some(body))
    }
    fn put(&self, s: &Server, path: &str, body: Value) -> Response {
        self.send(reqwest::Method::PUT, s, path, Some(body))
    }
    fn delete(&self, s: &Server, path: &str) -> Response {
        self.send(reqwest::Method::DELETE, s, path, None)
    }
    fn policy(&self, s: &Server) -> Value {
        let r = self.get(s, "/api/v1/me/policy");
        assert_eq!(r.status(), StatusCode::OK);
        r.json().unwrap()
    }
}

/// Asserts the status and the JSON error shape; returns the body.
fn expect_error(r: Response, status: StatusCode, field: Option<&str>) -> Value {
    assert_eq!(r.status(), status);
    let body: Value = r.json().expect("errors are JSON");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );
    if let Some(f) = field {
        assert_eq!(body["field"], f, "{body}");
    }
    body
}

/// The value of a page's first hidden `csrf` field.
fn csrf_field(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string()
}

/// A browser that has opened the sign-in page: its client (holding the
/// pre-sign-in cookie) and the form's token.
fn open_signin_page(s: &Server) -> (Client, String) {
    let c = client();
    let page = c.get(s.url("/signin")).send().unwrap().text().unwrap();
    let token = csrf_field(&page);
    (c, token)
}

/// Posts the sign-in form.
fn post_signin_form(c: &Client, s: &Server, csrf: &str, user: &str, password: &str) -> Response {
    c.post(s.url("/signin"))
        .form(&[("csrf", csrf), ("username", user), ("password", password)])
        .send()
        .unwrap()
}

fn admin(s: &Server) -> impl Fn(reqwest::Method, &str) -> reqwest::blocking::RequestBuilder + '_ {
    let c = client();
    move |m, path| c.request(m, s.url(path)).bearer_auth(ADMIN_TOKEN)
}

#[test]
fn sign_in_returns_csrf_and_sign_out_ends_the_session() {
    let s = start(WebConfig::default());
    let alice = sign_in(&s, ALICE);
    assert_eq!(alice.csrf.len(), 64);
    // A bare user id means the one local domain (Cisco signs in with a username).
    assert_eq!(sign_in(&s, "alice").policy(&s)["aor"], ALICE);
    assert_eq!(alice.policy(&s)["aor"], ALICE);
    let r = alice.delete(&s, "/api/v1/session");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    expect_error(
        alice.get(&s, "/api/v1/me/policy"),
        StatusCode::UNAUTHORIZED,
        None,
    );
}

#[test]
fn unknown_user_and_wrong_password_get_the_same_answer() {
    let s = start(WebConfig::default());
    let c = client();
    let wrong = post_session(
        &c,
        &s,
        json!({"username": ALICE, "password": "not the password"}),
    );
    let unknown = post_session(
        &c,
        &s,
        json!({"username": "nobody@example.com", "password": "not the password"}),
    );
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.text().unwrap(), unknown.text().unwrap());
    let missing = post_session(&c, &s, json!({"username": ALICE}));
    expect_error(missing, StatusCode::UNPROCESSABLE_ENTITY, None);
}

#[test]
fn ten_wrong_passwords_lock_sign_in_then_it_unlocks() {
    let s = start(WebConfig {
        signin_lockout_s: 2,
        ..WebConfig::default()
    });
    let c = client();
    for i in 0..10 {
        let r = post_session(
            &c,
            &s,
            json!({"username": ALICE, "password": format!("guess {i}")}),
        );
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    // Even the right password is refused while locked, with Retry-After.
    let r = post_session(&c, &s, json!({"username": ALICE, "password": PASSWORD}));
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().get("retry-after").is_some());
    // The address is locked too: another account from here is refused.
    let r = post_session(&c, &s, json!({"username": BOB, "password": PASSWORD}));
    expect_error(r, StatusCode::TOO_MANY_REQUESTS, Some("username"));
    let metrics = c.get(s.url("/metrics")).send().unwrap().text().unwrap();
    assert!(
        metrics.contains("presence_proxy_signins_total{result=\"failed\"} 10"),
        "{metrics}"
    );
    assert!(
        metrics.contains("presence_proxy_signins_total{result=\"locked\"} 2"),
        "{metrics}"
    );
    std::thread::sleep(Duration::from_millis(2100));
    sign_in(&s, ALICE);
}

#[test]
fn every_state_changing_call_without_csrf_is_403_and_changes_nothing() {
    let s = start(WebConfig::default());
    let alice = sign_in(&s, ALICE);
    s.store
        .apply(presence_proxy::policy::Change::AddContact {
            owner: aor(ALICE),
            contact: aor("carol@partner.net"),
            name: None,
            learned: false,
        })
        .unwrap();
    let before = alice.policy(&s);
    let calls: Vec<(reqwest::Method, &str, Value)> = vec![
        (
            reqwest::Method::PUT,
            "/api/v1/me/defaults",
            json!({"internal": "block"}),
        ),
        (
            reqwest::Method::POST,
            "/api/v1/me/exceptions",
            json!({"kind": "user", "value": "x@example.com", "action": "block"}),
        ),
        (
            reqwest::Method::DELETE,
            "/api/v1/me/exceptions/user/x@example.com",
            Value::Null,
        ),
        (
            reqwest::Method::POST,
            "/api/v1/me/contacts",
            json!({"aor": "dan@example.com"}),
        ),
        (
            reqwest::Method::DELETE,
            "/api/v1/me/contacts/carol@partner.net",
            Value::Null,
        ),
        (
            reqwest::Method::PUT,
            "/api/v1/me/preferences",
            json!({"refresh_interval_s": 60}),
        ),
        (
            reqwest::Method::POST,
            "/api/v1/me/pending/answers",
            json!({"allow": ["x@example.com"]}),
        ),
        (reqwest::Method::DELETE, "/api/v1/session", Value::Null),
    ];
    for (m, path, body) in &calls {
        for token in [None, Some("0".repeat(64))] {
            let mut rb = alice.c.request(m.clone(), s.url(path));
            if let Some(t) = &token {
                rb = rb.header("X-CSRF-Token", t);
            }
            if !body.is_null() {
                rb = rb.json(body);
            }
            let r = rb.send().unwrap();
            expect_error(r, StatusCode::FORBIDDEN, Some("X-CSRF-Token"));
        }
    }
    assert_eq!(alice.policy(&s), before, "nothing changed");
    // The session survived (DELETE /session was refused too).
    assert_eq!(
        alice.get(&s, "/api/v1/me/contacts").status(),
        StatusCode::OK
    );
}

#[test]
fn without_a_session_every_user_endpoint_is_401() {
    let s = start(WebConfig::default());
    let c = client();
    for (m, path) in [
        (reqwest::Method::GET, "/api/v1/me/policy"),
        (reqwest::Method::PUT, "/api/v1/me/defaults"),
        (reqwest::Method::POST, "/api/v1/me/exceptions"),
        (
            reqwest::Method::DELETE,
            "/api/v1/me/exceptions/user/a@example.com",
        ),
        (reqwest::Method::GET, "/api/v1/me/contacts"),
        (reqwest::Method::POST, "/api/v1/me/contacts"),
        (reqwest::Method::DELETE, "/api/v1/me/contacts/a@example.com"),
        (reqwest::Method::PUT, "/api/v1/me/preferences"),
        (reqwest::Method::GET, "/api/v1/me/pending"),
        (reqwest::Method::POST, "/api/v1/me/pending/answers"),
        (reqwest::Method::GET, "/api/v1/me/pending/events"),
        (reqwest::Method::DELETE, "/api/v1/session"),
    ] {
        let r = c
            .request(m.clone(), s.url(path))
            .header("X-CSRF-Token", "x")
            .header("Cookie", "pp_session=forged")
            .send()
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{m} {path}");
    }
}

#[test]
fn defaults_follow_the_manual_and_refuse_allow_for_external() {
    let s = start(WebConfig::default());
    let alice = sign_in(&s, ALICE);
    let r = alice.put(
        &s,
        "/api/v1/me/defaults",
        json!({"internal": "block", "external": "ask"}),
    );
    assert_eq!(r.status(), StatusCode::OK);
    let p = alice.policy(&s);
    assert_eq!(
        (
            p["default_internal"].as_str(),
            p["default_external"].as_str()
        ),
        (Some("block"), Some("ask"))
    );
    expect_error(
        alice.put(&s, "/api/v1/me/defaults", json!({"external": "allow"})),
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("external"),
    );
    expect_error(
        alice.put(&s, "/api/v1/me/defaults", json!({"internal": "maybe"})),
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("internal"),
    );
    expect_error(
        alice.put(&s, "/api/v1/me/defaults", json!({})),
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("internal"),
    );
    expect_error(
        alice.put(&s, "/api/v1/me/defaults", json!({"colour": "red"})),
        StatusCode::UNPROCESSABLE_ENTITY,
        None,
    );
    assert_eq!(alice.policy(&s), p, "refusals changed nothing");
}

#[test]
fn exceptions_add_delete_and_every_refusal() {
    let s = start(WebConfig::default());
    let alice = sign_in(&s, ALICE);
    let r = alice.post(
        &s,
        "/api/v1/me/exceptions",
        json!({"kind": "user", "value": "sip:Carol@Partner.NET", "action": "allow"}),
    );
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.json::<Value>().unwrap()["value"], "Carol@partner.net");
    let r = alice.post(
        &s,
        "/api/v1/me/exceptions",
        json!({"kind": "domain", "value": "other.org", "action": "block"}),
    );
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        s.store
            .user(&aor(ALICE))
            .unwrap()
            .user_exception(&aor("Carol@partner.net")),
        Some(Action::Allow)
    );
    assert_eq!(
        s.store
            .decide(&aor(ALICE), &aor("x@other.org"))
            .decision
            .as_str(),
        "block"
    );

    let before = alice.policy(&s);
    expect_error(
        alice.post(
            &s,
            "/api/v1/me/exceptions",
            json!({"kind": "user", "value": "Carol@partner.net", "action": "block"}),
        ),
        StatusCode::CONFLICT,
        Some("value"),
    );
    expect_error(
        alice.post(
            &s,
            "/api/v1/me/exceptions",
            json!({"kind": "user", "value": "not an id", "action": "block"}),
        ),
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("value"),
    );
    let body = expect_error(
        alice.post(
            &s,
            "/api/v1/me/exceptions",
            json!({"kind": "user", "value": "mallory@evil.org", "action": "allow"}),
        ),
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("value"),
    );
    assert!(
        body["error"].as_str().unwrap().contains("block"),
        "names the admin block: {body}"
    );
    expect_error(
        alice.post(
            &s,
            "/api/v1/me/exceptions",
            json!({"kind": "domain", "value": "spam.example", "action": "allow"}),
        ),
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("value"),
    );
    expect_error(
        alice.post(
            &s,
            "/api/v1/me/exceptions",
            json!({"kind": "group", "value": "x", "action": "allow"}),
        ),
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("kind"),
    );
    expect_error(
        alice.post(
            &s,
            "/api/v1/me/exceptions",
            json!({"kind": "user", "value": "a@example.com", "action": "ask"}),
        ),
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("action"),
    );
    assert_eq!(alice.policy(&s), before, "refusals changed nothing");

    assert_eq!(
        alice
            .delete(&s, "/api/v1/me/exceptions/user/Carol@partner.net")
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        alice
            .delete(&s, "/api/v1/me/exceptions/domain/other.org")
            .status(),
        StatusCode::NO_CONTENT
    );
    expect_error(
        alice.delete(&s, "/api/v1/me/exceptions/domain/other.org"),
        StatusCode::NOT_FOUND,
        Some("value"),
    );
    expect_error(
        alice.delete(&s, "/api/v1/me/exceptions/thing/other.org"),
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("kind"),
    );
    let p = alice.policy(&s);
    assert_eq!(p["exceptions"]["users"], json!([]));
    assert_eq!(p["exceptions"]["domains"], json!([]));
}

#[test]
fn contacts_up_to_the_class_limit_then_refused() {
    let s = start(WebConfig::default());
    let alice = sign_in(&s, ALICE);
    let r = alice.post(
        &s,
        "/api/v1/me/contacts",
        json!({"aor": "carol@partner.net", "name": "Carol"}),
    );
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        r.json::<Value>().unwrap(),
        json!({"aor": "carol@partner.net", "name": "Carol"})
    );
    assert_eq!(
        alice
            .post(&s, "/api/v1/me/contacts", json!({"aor": "dan@example.com"}))
            .status(),
        StatusCode::CREATED
    );
    let list: Value = alice.get(&s, "/api/v1/me/contacts").json().unwrap();
    assert_eq!(
        (list["used"].as_u64(), list["limit"].as_u64()),
        (Some(2), Some(2))
    );
    let body = expect_error(
        alice.post(
            &s,
            "/api/v1/me/contacts",
            json!({"aor": "erin@example.com"}),
        ),
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("aor"),
    );
    assert!(body["error"].as_str().unwrap().contains("limit"), "{body}");
    expect_error(
        alice.post(&s, "/api/v1/me/contacts", json!({"aor": "dan@example.com"})),
        StatusCode::CONFLICT,
        Some("aor"),
    );
    expect_error(
        alice.post(&s, "/api/v1/me/contacts", json!({"aor": "dan"})),
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("aor"),
    );
    expect_error(
        alice.post(
            &s,
            "/api/v1/me/contacts",
            json!({"aor": "x@y.org", "name": "a\u{7}b"}),
        ),
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("name"),
    );
    assert_eq!(s.store.user(&aor(ALICE)).unwrap().contacts.len(), 2);

    assert_eq!(
        alice
            .delete(&s, "/api/v1/me/contacts/dan@example.com")
            .status(),
        StatusCode::NO_CONTENT
    );
    expect_error(
        alice.delete(&s, "/api/v1/me/contacts/dan@example.com"),
        StatusCode::NOT_FOUND,
        Some("aor"),
    );
    // Room again; an admin-blocked user is still refused.
    let body = expect_error(
        alice.post(
            &s,
            "/api/v1/me/contacts",
            json!({"aor": "mallory@evil.org"}),
        ),
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("aor"),
    );
    assert!(body["error"].as_str().unwrap().contains("block"), "{body}");
}

#[test]
fn refresh_interval_7_to_3600() {
    let s = start(WebConfig::default());
    let alice = sign_in(&s, ALICE);
    assert_eq!(alice.policy(&s)["refresh_interval_s"], 30);
    for bad in [
        json!(6),
        json!(3601),
        json!(0),
        json!(-5),
        json!("60"),
        json!(7.5),
    ] {
        expect_error(
            alice.put(
                &s,
                "/api/v1/me/preferences",
                json!({ "refresh_interval_s": bad }),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("refresh_interval_s"),
        );
    }
    assert_eq!(alice.policy(&s)["refresh_interval_s"], 30);
    for good in [7, 3600, 45] {
        let r = alice.put(
            &s,
            "/api/v1/me/preferences",
            json!({ "refresh_interval_s": good }),
        );
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(alice.policy(&s)["refresh_interval_s"], good);
    }
}

#[test]
fn pending_requests_listed_and_answered() {
    let s = start(WebConfig::default());
    let alice = sign_in(&s, ALICE);
    s.store
        .record_pending(
            &aor(ALICE),
            &aor("carol@partner.net"),
            PendingHow::Subscribe,
            1_000,
        )
        .unwrap();
    s.store
        .record_pending(
            &aor(ALICE),
            &aor("dave@other.org"),
            PendingHow::Message,
            2_000,
        )
        .unwrap();
    let list: Value = alice.get(&s, "/api/v1/me/pending").json().unwrap();
    let watchers: Vec<_> = list["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["watcher"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(watchers, ["carol@partner.net", "dave@other.org"]);
    assert_eq!(list["pending"][1]["how"], "message");

    let before = alice.policy(&s);
    expect_error(
        alice.post(
            &s,
            "/api/v1/me/pending/answers",
            json!({"allow": ["zed@x.org"]}),
        ),
        StatusCode::NOT_FOUND,
        Some("allow"),
    );
    expect_error(
        alice.post(&s, "/api/v1/me/pending/answers", json!({})),
        StatusCode::UNPROCESSABLE_ENTITY,
        None,
    );
    expect_error(
        alice.post(
            &s,
            "/api/v1/me/pending/answers",
            json!({"allow": ["carol@partner.net"], "block": ["carol@partner.net"]}),
        ),
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("block"),
    );
    assert_eq!(alice.policy(&s), before);
    assert_eq!(
        alice.get(&s, "/api/v1/me/pending").json::<Value>().unwrap()["pending"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let r = alice.post(
        &s,
        "/api/v1/me/pending/answers",
        json!({"allow": ["carol@partner.net"], "block": ["dave@other.org"]}),
    );
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().unwrap()["answered"], 2);
    let p = s.store.user(&aor(ALICE)).unwrap();
    assert_eq!(
        p.user_exception(&aor("carol@partner.net")),
        Some(Action::Allow)
    );
    assert_eq!(
        p.user_exception(&aor("dave@other.org")),
        Some(Action::Block)
    );
    assert_eq!(
        alice.get(&s, "/api/v1/me/pending").json::<Value>().unwrap()["pending"],
        json!([])
    );
}

#[test]
fn pending_events_stream_only_the_owners_requests() {
    let s = start(WebConfig::default());
    let alice = sign_in(&s, ALICE);
    let mut stream = alice.get(&s, "/api/v1/me/pending/events");
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(stream.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    s.store
        .record_pending(&aor(BOB), &aor("eve@partner.net"), PendingHow::Call, 5_000)
        .unwrap();
    s.store
        .record_pending(
            &aor(ALICE),
            &aor("carol@partner.net"),
            PendingHow::Subscribe,
            6_000,
        )
        .unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 1024];
    while !seen.contains("carol@partner.net") {
        let n = stream
            .read(&mut buf)
            .expect("event arrives before the client timeout");
        assert!(n > 0, "stream ended early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.contains("event: pending"), "{seen}");
    assert!(
        !seen.contains("eve@partner.net"),
        "Bob's request leaked to Alice: {seen}"
    );
}

#[test]
fn user_a_cannot_read_or_change_user_b() {
    let s = start(WebConfig::default());
    let alice = sign_in(&s, ALICE);
    let bob = sign_in(&s, BOB);
    assert_eq!(
        alice
            .post(
                &s,
                "/api/v1/me/contacts",
                json!({"aor": "carol@partner.net"})
            )
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        alice
            .post(
                &s,
                "/api/v1/me/exceptions",
                json!({"kind": "user", "value": "dan@example.com", "action": "block"})
            )
            .status(),
        StatusCode::CREATED
    );
    s.store
        .record_pending(
            &aor(ALICE),
            &aor("eve@partner.net"),
            PendingHow::Subscribe,
            1,
        )
        .unwrap();
    let alice_before = alice.policy(&s);

    // Bob sees only his own data.
    let bp = bob.policy(&s);
    assert_eq!(bp["aor"], BOB);
    assert_eq!(
        bob.get(&s, "/api/v1/me/contacts").json::<Value>().unwrap()["contacts"],
        json!([])
    );
    assert_eq!(
        bob.get(&s, "/api/v1/me/pending").json::<Value>().unwrap()["pending"],
        json!([])
    );
    // Bob's deletes and answers cannot reach Alice's entries.
    expect_error(
        bob.delete(&s, "/api/v1/me/contacts/carol@partner.net"),
        StatusCode::NOT_FOUND,
        Some("aor"),
    );
    expect_error(
        bob.delete(&s, "/api/v1/me/exceptions/user/dan@example.com"),
        StatusCode::NOT_FOUND,
        Some("value"),
    );
    expect_error(
        bob.post(
            &s,
            "/api/v1/me/pending/answers",
            json!({"allow": ["eve@partner.net"]}),
        ),
        StatusCode::NOT_FOUND,
        Some("allow"),
    );
    // Bob's CSRF token does not work with Alice's session.
    let r = alice
        .c
        .put(s.url("/api/v1/me/defaults"))
        .header("X-CSRF-Token", &bob.csrf)
        .json(&json!({"internal": "block"}))
        .send()
        .unwrap();
    expect_error(r, StatusCode::FORBIDDEN, None);
    // A session is no admin token.
    assert_eq!(
        bob.get(&s, "/api/v1/admin/policy").status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(alice.policy(&s), alice_before);
    assert_eq!(s.store.pending(&aor(ALICE)).len(), 1);
}

#[test]
fn idle_session_is_signed_out() {
    let s = start(WebConfig {
        idle_timeout_s: 1,
        ..WebConfig::default()
    });
    let alice = sign_in(&s, ALICE);
    assert_eq!(alice.get(&s, "/api/v1/me/policy").status(), StatusCode::OK);
    std::thread::sleep(Duration::from_millis(1200));
    let body = expect_error(
        alice.get(&s, "/api/v1/me/policy"),
        StatusCode::UNAUTHORIZED,
        None,
    );
    assert!(body["error"].as_str().unwrap().contains("idle"), "{body}");
}

#[test]
fn malformed_bodies_get_json_errors() {
    let s = start(WebConfig::default());
    let alice = sign_in(&s, ALICE);
    let r = alice
        .c
        .post(s.url("/api/v1/me/contacts"))
        .header("X-CSRF-Token", &alice.csrf)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .unwrap();
    expect_error(r, StatusCode::BAD_REQUEST, None);
    let r = alice
        .c
        .post(s.url("/api/v1/me/contacts"))
        .header("X-CSRF-Token", &alice.csrf)
        .body("aor=x")
        .send()
        .unwrap();
    expect_error(r, StatusCode::UNSUPPORTED_MEDIA_TYPE, None);
    // A path segment that is not UTF-8 once decoded.
    expect_error(
        alice.delete(&s, "/api/v1/me/contacts/%FF%FE"),
        StatusCode::BAD_REQUEST,
        None,
    );
    expect_error(
        client().get(s.url("/api/v1/nothing")).send().unwrap(),
        StatusCode::NOT_FOUND,
        None,
    );
}

#[test]
fn admin_api_needs_the_bearer_token() {
    let s = start(WebConfig::default());
    let c = client();
    for path in [
        "/api/v1/admin/org",
        "/api/v1/admin/policy",
        "/api/v1/admin/users",
        "/api/v1/admin/explain?owner=a@b.c&watcher=d@e.f",
    ] {
        expect_error(
            c.get(s.url(path)).send().unwrap(),
            StatusCode::UNAUTHORIZED,
            None,
        );
        expect_error(
            c.get(s.url(path)).bearer_auth("wrong").send().unwrap(),
            StatusCode::FORBIDDEN,
            None,
        );
    }
    expect_error(
        c.post(s.url("/api/v1/admin/changes"))
            .bearer_auth("wrong")
            .json(&json!([]))
            .send()
            .unwrap(),
        StatusCode::FORBIDDEN,
        None,
    );
}

#[test]
fn admin_org_policy_changes_and_explain() {
    let s = start(WebConfig::default());
    let a = admin(&s);
    let org: Value = a(reqwest::Method::GET, "/api/v1/admin/org")
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(org["local_domains"], json!(["example.com"]));
    let mut new_org = org.clone();
    new_org["blocked_users"] = json!(["mallory@evil.org", "trudy@example.com"]);
    let r = a(reqwest::Method::PUT, "/api/v1/admin/org")
        .json(&new_org)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mut bad_org = org.clone();
    bad_org["classes"]["default"]["contact_limit"] = json!("many");
    expect_error(
        a(reqwest::Method::PUT, "/api/v1/admin/org")
            .json(&bad_org)
            .send()
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        None,
    );
    assert_eq!(s.store.org().blocked_users.len(), 2);

    let explain = |o: &str, w: &str| -> Value {
        a(
            reqwest::Method::GET,
            &format!("/api/v1/admin/explain?owner={o}&watcher={w}"),
        )
        .send()
        .unwrap()
        .json()
        .unwrap()
    };
    assert_eq!(
        explain(ALICE, "trudy@example.com"),
        json!({"decision": "block", "rule": "admin-blocked-user"})
    );
    assert_eq!(
        explain(ALICE, "dan@example.com"),
        json!({"decision": "allow", "rule": "default-internal"})
    );
    expect_error(
        a(reqwest::Method::GET, "/api/v1/admin/explain?owner=alice")
            .send()
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("owner"),
    );
    expect_error(
        a(
            reqwest::Method::GET,
            &format!("/api/v1/admin/explain?owner={ALICE}"),
        )
        .send()
        .unwrap(),
        StatusCode::BAD_REQUEST,
        Some("watcher"),
    );

    let changes = json!([
        {"op": "add_user_exception", "owner": ALICE, "watcher": "dan@example.com", "action": "block"},
        {"op": "set_refresh_interval", "owner": ALICE, "seconds": 90}
    ]);
    let r = a(reqwest::Method::POST, "/api/v1/admin/changes")
        .json(&changes)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().unwrap(), json!({"applied": 2}));
    assert_eq!(
        explain(ALICE, "dan@example.com"),
        json!({"decision": "block", "rule": "user-exception"})
    );
    // All or nothing: the valid first change is not applied when the second is refused.
    let changes = json!([
        {"op": "set_refresh_interval", "owner": ALICE, "seconds": 120},
        {"op": "set_refresh_interval", "owner": ALICE, "seconds": 6}
    ]);
    let body = expect_error(
        a(reqwest::Method::POST, "/api/v1/admin/changes")
            .json(&changes)
            .send()
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        None,
    );
    assert!(!body["errors"].as_array().unwrap().is_empty(), "{body}");
    assert_eq!(s.store.user(&aor(ALICE)).unwrap().refresh_interval_s, 90);

    let doc: Value = a(reqwest::Method::GET, "/api/v1/admin/policy")
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["users"].as_array().unwrap().len(), 2);
    let mut bad = doc.clone();
    bad["users"][0]["refresh_interval_s"] = json!(6);
    bad["users"][1]["default_external"] = json!("allow");
    let body = expect_error(
        a(reqwest::Method::PUT, "/api/v1/admin/policy")
            .json(&bad)
            .send()
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        None,
    );
    let paths: Vec<_> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect();
    assert!(
        paths.iter().any(|p| p.contains("users[0]"))
            && paths.iter().any(|p| p.contains("users[1]")),
        "every error with its path: {paths:?}"
    );
    assert_eq!(
        s.store.user(&aor(ALICE)).unwrap().refresh_interval_s,
        90,
        "nothing imported"
    );
    let mut good = doc.clone();
    good["users"][0]["refresh_interval_s"] = json!(300);
    let r = a(reqwest::Method::PUT, "/api/v1/admin/policy")
        .json(&good)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(s.store.users()[0].refresh_interval_s, 300);
}

#[test]
fn admin_accounts_add_passwd_list_remove() {
    let s = start(WebConfig::default());
    let a = admin(&s);
    let new = json!({"aor": "carol@example.com", "password": "carol's password", "class": "small"});
    assert_eq!(
        a(reqwest::Method::POST, "/api/v1/admin/users")
            .json(&new)
            .send()
            .unwrap()
            .status(),
        StatusCode::CREATED
    );
    expect_error(
        a(reqwest::Method::POST, "/api/v1/admin/users")
            .json(&new)
            .send()
            .unwrap(),
        StatusCode::CONFLICT,
        Some("aor"),
    );
    expect_error(
        a(reqwest::Method::POST, "/api/v1/admin/users")
            .json(&json!({"aor": "d@example.com", "password": "short"}))
            .send()
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("password"),
    );
    expect_error(
        a(reqwest::Method::POST, "/api/v1/admin/users")
            .json(&json!({"aor": "d@example.com", "password": "long enough", "class": "gold"}))
            .send()
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("class"),
    );
    expect_error(
        a(reqwest::Method::POST, "/api/v1/admin/users")
            .json(&json!({"aor": "nobody", "password": "long enough"}))
            .send()
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("aor"),
    );
    assert!(s.store.account(&aor("d@example.com")).is_none());
    assert_eq!(
        s.store.user(&aor("carol@example.com")).unwrap().class,
        "small"
    );

    let c = client();
    let r = post_session(
        &c,
        &s,
        json!({"username": "carol@example.com", "password": "carol's password"}),
    );
    assert_eq!(r.status(), StatusCode::OK);
    let list: Value = a(reqwest::Method::GET, "/api/v1/admin/users")
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(list["users"].as_array().unwrap().len(), 3);

    // A new password ends the old sessions.
    let r = a(
        reqwest::Method::PUT,
        "/api/v1/admin/users/carol@example.com",
    )
    .json(&json!({"password": "a new password"}))
    .send()
    .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        c.get(s.url("/api/v1/me/policy")).send().unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    expect_error(
        a(reqwest::Method::PUT, "/api/v1/admin/users/zed@example.com")
            .json(&json!({"password": "a new password"}))
            .send()
            .unwrap(),
        StatusCode::NOT_FOUND,
        Some("aor"),
    );

    assert_eq!(
        a(
            reqwest::Method::DELETE,
            "/api/v1/admin/users/carol@example.com"
        )
        .send()
        .unwrap()
        .status(),
        StatusCode::NO_CONTENT
    );
    expect_error(
        a(
            reqwest::Method::DELETE,
            "/api/v1/admin/users/carol@example.com",
        )
        .send()
        .unwrap(),
        StatusCode::NOT_FOUND,
        Some("aor"),
    );
    assert!(s.store.user(&aor("carol@example.com")).is_none());
    let r = post_session(
        &c,
        &s,
        json!({"username": "carol@example.com", "password": "a new password"}),
    );
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[test]
fn metrics_and_healthz() {
    let s = start(WebConfig::default());
    let c = client();
    let r = c.get(s.url("/healthz")).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let alice = sign_in(&s, ALICE);
    alice.put(
        &s,
        "/api/v1/me/preferences",
        json!({"refresh_interval_s": 60}),
    );
    let r = c.get(s.url("/metrics")).send().unwrap();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = r.text().unwrap();
    assert!(text.contains("presence_proxy_http_requests_total{route=\"/api/v1/me/preferences\",method=\"PUT\",status=\"200\"} 1"), "{text}");
    assert!(text.contains("presence_proxy_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 1"), "{text}");
    assert!(
        text.contains("presence_proxy_store_write_seconds_count 1"),
        "{text}"
    );
    assert!(text.contains("presence_proxy_web_sessions 1"), "{text}");
    assert!(
        text.contains("test_engine_messages_total 42"),
        "the engine's metrics are included: {text}"
    );
}

#[test]
fn pages_need_a_session_and_forms_need_the_csrf_token() {
    let s = start(WebConfig::default());
    let (c, token) = open_signin_page(&s);
    for path in ["/", "/privacy", "/contacts", "/preferences", "/pending"] {
        let r = c.get(s.url(path)).send().unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(r.headers()["location"], "/signin");
    }
    // Sign in through the form (double-submit token from the sign-in page).
    let r = post_signin_form(&c, &s, "forged", ALICE, PASSWORD);
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = post_signin_form(&c, &s, &token, ALICE, PASSWORD);
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let privacy = c.get(s.url("/privacy")).send().unwrap().text().unwrap();
    assert!(privacy.contains("Internal users (within your company/organization):"));
    // A form without the session's token is refused and changes nothing.
    let r = c
        .post(s.url("/preferences"))
        .form(&[("refresh_interval_s", "99")])
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(s.store.user(&aor(ALICE)).unwrap().refresh_interval_s, 30);
    // With it, a refusal is shown next to the field.
    let csrf = csrf_field(&privacy);
    let r = c
        .post(s.url("/preferences"))
        .form(&[("csrf", csrf.as_str()), ("refresh_interval_s", "6")])
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().unwrap();
    assert!(html.contains("id=\"err-refresh_interval_s\""), "{html}");
    assert!(html.contains("out of range"), "{html}");
    assert_eq!(s.store.user(&aor(ALICE)).unwrap().refresh_interval_s, 30);
}

#[test]
fn answers_carry_security_headers() {
    let s = start(WebConfig::default());
    let c = client();
    for path in ["/signin", "/api/v1/me/policy", "/healthz"] {
        let r = c.get(s.url(path)).send().unwrap();
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'self'"),
            "{path}"
        );
    }
    let css = c.get(s.url("/assets/app.css")).send().unwrap();
    assert!(css.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    assert!(css.text().unwrap().contains("@media"));
    let js = c.get(s.url("/assets/app.js")).send().unwrap();
    assert!(js.text().unwrap().contains("EventSource"));
}

#[test]
fn every_page_form_without_the_csrf_token_is_403_and_changes_nothing() {
    let s = start(WebConfig::default());
    let (c, token) = open_signin_page(&s);
    let r = post_signin_form(&c, &s, &token, ALICE, PASSWORD);
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    s.store
        .record_pending(&aor(ALICE), &aor("gina@other.org"), PendingHow::Message, 1)
        .unwrap();
    let before = s.store.user(&aor(ALICE)).unwrap();
    let forms: [(&str, Fields); 8] = [
        (
            "/privacy/defaults",
            &[("internal", "block"), ("external", "ask")],
        ),
        (
            "/privacy/users",
            &[("user_action", "block"), ("userid", "x@example.com")],
        ),
        (
            "/privacy/domains",
            &[
                ("domain_action", "block"),
                ("domain_kind", "custom"),
                ("domain_custom", "x.org"),
            ],
        ),
        ("/privacy/delete", &[("selected", "user:x@example.com")]),
        ("/contacts/add", &[("contact", "x@example.com")]),
        ("/contacts/delete", &[("selected", "x@example.com")]),
        ("/preferences", &[("refresh_interval_s", "99")]),
        (
            "/pending",
            &[("allow", "gina@other.org"), ("listed", "gina@other.org")],
        ),
    ];
    for (path, fields) in forms {
        for csrf in ["", "forged"] {
            let mut f: Vec<(&str, &str)> = fields.to_vec();
            if !csrf.is_empty() {
                f.push(("csrf", csrf));
            }
            let r = c.post(s.url(path)).form(&f).send().unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
        }
    }
    let r = c
        .post(s.url("/signout"))
        .form(&[("csrf", "forged")])
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        s.store.user(&aor(ALICE)).unwrap(),
        before,
        "nothing changed"
    );
    assert_eq!(s.store.pending(&aor(ALICE)).len(), 1);
}

#[test]
fn page_forms_show_refusals_next_to_the_field() {
    let s = start(WebConfig::default());
    let (c, token) = open_signin_page(&s);
    // Wrong password: the same message as an unknown user, next to the password.
    let r = post_signin_form(&c, &s, &token, "nobody@example.com", "x");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r
        .text()
        .unwrap()
        .contains("id=\"err-password\" role=\"alert\">Wrong username or password."));
    post_signin_form(&c, &s, &token, ALICE, PASSWORD);
    let html = c.get(s.url("/privacy")).send().unwrap().text().unwrap();
    let csrf = csrf_field(&html);
    let post = |path: &str, fields: &[(&str, &str)]| {
        let mut f = fields.to_vec();
        f.push(("csrf", csrf.as_str()));
        c.post(s.url(path)).form(&f).send().unwrap()
    };
    let cases: [(&str, Fields, &str); 5] = [
        (
            "/privacy/users",
            &[("user_action", "allow"), ("userid", "")],
            "err-userid",
        ),
        (
            "/privacy/users",
            &[
                ("user_action", "allow"),
                ("userid", "eve"),
                ("user_domain_kind", "federated"),
                ("user_federated_domain", "not-federated.org"),
            ],
            "err-user_custom_domain",
        ),
        (
            "/privacy/domains",
            &[
                ("domain_action", "allow"),
                ("domain_kind", "custom"),
                ("domain_custom", "spam.example"),
            ],
            "err-domain_custom",
        ),
        (
            "/contacts/add",
            &[
                ("contact", "x"),
                ("domain_kind", "custom"),
                ("domain_custom", ""),
            ],
            "err-domain_custom",
        ),
        (
            "/preferences",
            &[("refresh_interval_s", "soon")],
            "err-refresh_interval_s",
        ),
    ];
    let before = s.store.user(&aor(ALICE)).unwrap();
    for (path, fields, id) in cases {
        let r = post(path, fields);
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        let html = r.text().unwrap();
        assert!(
            html.contains(&format!("id=\"{id}\"")),
            "{path}: {id} missing in {html}"
        );
    }
    assert_eq!(
        s.store.user(&aor(ALICE)).unwrap(),
        before,
        "nothing changed"
    );
    // And a good one goes through with a notice.
    let r = post(
        "/privacy/domains",
        &[
            ("domain_action", "block"),
            ("domain_kind", "federated"),
            ("domain_federated", "partner.net"),
        ],
    );
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        s.store
            .user(&aor(ALICE))
            .unwrap()
            .domain_exception("partner.net"),
        Some(Action::Block)
    );
}

#[test]
fn shutdown_ends_open_event_streams() {
    let s = start(WebConfig::default());
    // No client timeout: only the server can end this stream.
    let c = Client::builder().cookie_store(true).build().unwrap();
    let r = post_session(&c, &s, json!({"username": ALICE, "password": PASSWORD}));
    assert_eq!(r.status(), StatusCode::OK);
    let mut stream = c.get(s.url("/api/v1/me/pending/events")).send().unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let reader = std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink);
    });
    assert!(
        s.stop_within(Duration::from_secs(5)),
        "serve did not return while a page listened to events"
    );
    reader.join().unwrap();
}

#[test]
fn cookies_are_secure_when_served_over_tls() {
    let s = start(WebConfig {
        cookie_secure: true,
        ..WebConfig::default()
    });
    let r = post_session(
        &client(),
        &s,
        json!({"username": ALICE, "password": PASSWORD}),
    );
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("; Secure"), "{cookie}");
    let plain = start(WebConfig::default());
    let r = post_session(
        &client(),
        &plain,
        json!({"username": ALICE, "password": PASSWORD}),
    );
    assert!(!r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Secure"));
}
