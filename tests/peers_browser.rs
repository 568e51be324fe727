//! User Options in a real browser: Debian Chromium driven over WebDriver
//! (chromedriver on loopback). Signs in, sets defaults, adds and deletes user and
//! domain exceptions, fills the contact list to its limit and sees the refusal,
//! sees 6 s refused as refresh interval, answers a pending request that arrived
//! while the page was open, uses the Alt+1 / Alt+2 bars, checks labels and the
//! phone-width / 200 % layouts, signs out, and is signed out when idle.
//! Screenshots of each page go to `target/artifacts/`.
#![cfg(feature = "peers")]

mod web_support;
mod webdriver;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use presence_proxy::policy::{Action, DefaultExternal, DefaultInternal, PendingHow};
use presence_proxy::store::Store;
use presence_proxy::web::WebConfig;
use web_support::{aor, start, Server, ALICE, PASSWORD};
use webdriver::Browser;

fn artifact(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/artifacts"))
        .join(format!("{name}.png"))
}

fn sign_in(b: &Browser, s: &Server) {
    b.goto(&s.url("/signin"));
    b.fill("#username", ALICE);
    b.fill("#password", PASSWORD);
    b.click_and_load("#signin");
    b.wait_for("#signout", 5);
    assert!(b.url().ends_with("/privacy"), "{}", b.url());
}

/// Every visible form control has a label or an accessible name.
fn assert_every_control_labelled(b: &Browser) {
    let unlabelled = b.script(
        "return Array.from(document.querySelectorAll('input:not([type=hidden]), select, button, textarea'))
           .filter(e => !((e.labels && e.labels.length) || e.getAttribute('aria-label') || e.textContent.trim()))
           .map(e => e.outerHTML);",
    );
    assert_eq!(
        unlabelled,
        serde_json::json!([]),
        "controls without a label on {}",
        b.url()
    );
}

/// Nothing needs sideways scrolling at this width.
fn assert_no_horizontal_scroll(b: &Browser) {
    let v = b.script("return [document.documentElement.scrollWidth, window.innerWidth];");
    let (sw, w) = (v[0].as_u64().unwrap(), v[1].as_u64().unwrap());
    assert!(
        sw <= w,
        "page is {sw}px wide in a {w}px window on {}",
        b.url()
    );
}

fn active_element_name(b: &Browser) -> String {
    b.script("const e = document.activeElement; return e.getAttribute('aria-label') || e.textContent.trim();")
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[test]
fn user_options_in_chromium() {
    let s = start(WebConfig::default());
    let b = Browser::start(1280, 1500);

    // Sign in.
    b.goto(&s.url("/signin"));
    assert_every_control_labelled(&b);
    b.screenshot(&artifact("01-signin"));
    b.fill("#username", ALICE);
    b.fill("#password", "wrong password");
    b.click_and_load("#signin");
    assert!(b
        .wait_text("#err-password", 5)
        .contains("Wrong username or password"));
    sign_in(&b, &s);
    assert_every_control_labelled(&b);

    // Defaults.
    let o = b.find("#internal option[value=block]");
    b.click(&o);
    let o = b.find("#external option[value=ask]");
    b.click(&o);
    b.click_and_load("#save-defaults");
    let notice = b.wait_for(".notice", 5);
    assert!(b.text(&notice).contains("saved"));
    let p = s.store.user(&aor(ALICE)).unwrap();
    assert_eq!(
        (p.default_internal, p.default_external),
        (DefaultInternal::Block, DefaultExternal::Ask)
    );

    // Add a user exception with a federated domain, and a custom-domain exception.
    b.fill("#userid", "carol");
    let r = b.find("input[name=user_domain_kind][value=federated]");
    b.click(&r);
    let o = b.find("#user_federated_domain option[value='partner.net']");
    b.click(&o);
    b.click_and_load("#add-user-button");
    b.wait_for("#sel-user-carol\\@partner\\.net", 5);
    b.fill("#domain_custom", "other.org");
    let r = b.find("input[name=domain_kind][value=custom]");
    b.click(&r);
    let block = b.find("input[name=domain_action][value=block]");
    b.click(&block);
    b.click_and_load("#add-domain-button");
    b.wait_for("#sel-domain-other\\.org", 5);
    let p = s.store.user(&aor(ALICE)).unwrap();
    assert_eq!(
        p.user_exception(&aor("carol@partner.net")),
        Some(Action::Allow)
    );
    assert_eq!(p.domain_exception("other.org"), Some(Action::Block));

    // An admin-blocked user cannot be allowed: the reason is next to the field.
    b.fill("#userid", "mallory@evil.org");
    b.click_and_load("#add-user-button");
    let err = b.wait_text("#err-userid", 5);
    assert!(err.contains("block"), "{err}");
    assert_eq!(
        b.property(&b.find("#userid"), "value"),
        "mallory@evil.org",
        "typed value kept"
    );
    assert!(s
        .store
        .user(&aor(ALICE))
        .unwrap()
        .user_exception(&aor("mallory@evil.org"))
        .is_none());
    b.screenshot(&artifact("02-privacy-refusal"));

    // Alt+1 then Tab: the first icon; Alt+2 then Tab: the first button.
    b.press(&["1", "\u{E004}"], true);
    assert_eq!(active_element_name(&b), "Save Defaults");
    b.press(&["\u{E004}"], false);
    assert_eq!(active_element_name(&b), "Add User");
    // Enter on the Add User icon puts the cursor in the User ID field.
    b.press(&["\u{E007}"], false);
    assert_eq!(b.script("return document.activeElement.id;"), "userid");
    b.press(&["2", "\u{E004}"], true);
    assert_eq!(active_element_name(&b), "Save Defaults");
    assert_eq!(
        b.script("return document.activeElement.id;"),
        "save-defaults"
    );

    // Delete Selected removes both exceptions.
    b.goto(&s.url("/privacy"));
    b.screenshot(&artifact("03-privacy"));
    for css in ["#sel-user-carol\\@partner\\.net", "#sel-domain-other\\.org"] {
        let c = b.find(css);
        b.click(&c);
    }
    b.click_and_load("#delete-selected");
    b.wait_for(".notice", 5);
    assert!(b.try_find("#sel-domain-other\\.org").is_none());
    let p = s.store.user(&aor(ALICE)).unwrap();
    assert!(p.exceptions.users.is_empty() && p.exceptions.domains.is_empty());

    // Contacts up to the class limit (2), then the refusal.
    b.goto(&s.url("/contacts"));
    assert_every_control_labelled(&b);
    for (id, name) in [("dan", "Dan"), ("erin", "")] {
        b.fill("#contact", id);
        let r = b.find("input[name=domain_kind][value=list]");
        b.click(&r);
        let o = b.find("#domain_list option[value='example.com']");
        b.click(&o);
        if !name.is_empty() {
            b.fill("#alt_name", name);
        }
        b.click_and_load("#save-contact");
        b.wait_for(".notice", 5);
    }
    assert_eq!(b.text_of("#contact-usage"), "Contacts used: 2 of 2");
    b.fill("#contact", "frank");
    let r = b.find("input[name=domain_kind][value=custom]");
    b.click(&r);
    b.fill("#domain_custom", "partner.net");
    b.click_and_load("#save-contact");
    let err = b.wait_text("#err-contact", 5);
    assert!(err.contains("limit"), "{err}");
    assert_eq!(s.store.user(&aor(ALICE)).unwrap().contacts.len(), 2);
    b.screenshot(&artifact("04-contacts-limit"));
    // Find, Select All, Delete Selected.
    b.goto(&s.url("/contacts?find=dan"));
    assert_eq!(b.find_all("#contacts tbody input[type=checkbox]").len(), 1);
    b.click_and_load("#select-all");
    b.wait_for("#contacts tbody input[type=checkbox]:checked", 5);
    b.click_and_load("#delete-selected");
    b.wait_for(".notice", 5);
    assert!(s.store.user(&aor(ALICE)).unwrap().contacts.is_empty());

    // Preferences: 6 is refused next to the field, 45 is saved.
    b.goto(&s.url("/preferences"));
    assert_every_control_labelled(&b);
    b.fill("#refresh_interval_s", "6");
    b.click_and_load("#save-preferences");
    let err = b.wait_text("#err-refresh_interval_s", 5);
    assert!(err.contains("7") && err.contains("3600"), "{err}");
    assert_eq!(s.store.user(&aor(ALICE)).unwrap().refresh_interval_s, 30);
    b.screenshot(&artifact("05-preferences-refused"));
    b.fill("#refresh_interval_s", "45");
    b.click_and_load("#save-preferences");
    b.wait_for(".notice", 5);
    assert_eq!(s.store.user(&aor(ALICE)).unwrap().refresh_interval_s, 45);

    // Pending: one request before the page opened, one while it is open.
    s.store
        .record_pending(
            &aor(ALICE),
            &aor("gina@other.org"),
            PendingHow::Message,
            1_700_000_000_000,
        )
        .unwrap();
    b.goto(&s.url("/pending"));
    assert_every_control_labelled(&b);
    b.wait_for("#pending-form[data-live]", 5);
    s.store
        .record_pending(
            &aor(ALICE),
            &aor("henry@partner.net"),
            PendingHow::Subscribe,
            1_700_000_100_000,
        )
        .unwrap();
    let t0 = Instant::now();
    let box_ = b.wait_for("input[name=allow][value='henry@partner.net']", 5);
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(b.text_of("#live-status").contains("henry@partner.net"));
    b.screenshot(&artifact("06-pending"));
    b.click(&box_);
    b.click_and_load("#pending-ok");
    b.wait_for(".notice", 5);
    let p = s.store.user(&aor(ALICE)).unwrap();
    assert_eq!(
        p.user_exception(&aor("henry@partner.net")),
        Some(Action::Allow),
        "checked is allowed"
    );
    assert_eq!(
        p.user_exception(&aor("gina@other.org")),
        Some(Action::Block),
        "unchecked is denied"
    );
    assert!(s.store.pending(&aor(ALICE)).is_empty());

    // Phone width and 200 % zoom (a 1280 px window at 200 % lays out as 640 px).
    for (w, name) in [(390, "07-phone-privacy"), (640, "08-zoom200-contacts")] {
        b.set_window(w, 1400);
        b.goto(&s.url(if w == 390 { "/privacy" } else { "/contacts" }));
        assert_no_horizontal_scroll(&b);
        b.screenshot(&artifact(name));
    }
    b.set_window(1280, 1500);

    // Sign out.
    b.goto(&s.url("/privacy"));
    b.click_and_load("#signout");
    let notice = b.wait_for("#notice", 5);
    assert!(b.text(&notice).contains("signed out"));
    b.goto(&s.url("/privacy"));
    assert!(b.url().contains("/signin"), "{}", b.url());
}

#[test]
fn idle_page_signs_itself_out() {
    let s = start(WebConfig {
        idle_timeout_s: 2,
        ..WebConfig::default()
    });
    let b = Browser::start(1280, 900);
    sign_in(&b, &s);
    b.goto(&s.url("/pending"));
    // No activity: the page goes to the sign-in form on its own.
    let notice = b.wait_for("#notice", 8);
    assert!(
        b.text(&notice).contains("signed out after 2 seconds"),
        "{}",
        b.text(&notice)
    );
    assert!(b.url().contains("/signin?expired=1"), "{}", b.url());
    b.screenshot(&artifact("09-idle-signed-out"));
    b.goto(&s.url("/privacy"));
    assert!(b.url().contains("/signin"));
}
