//! A tiny W3C WebDriver client (blocking reqwest + JSON) for chromedriver on
//! loopback: just the commands the browser tests use.
#![allow(dead_code)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process; killed on drop.
pub struct Driver {
    child: Child,
    base: String,
    http: reqwest::blocking::Client,
}

/// An element found on the page.
#[derive(Clone, Debug)]
pub struct Element(String);

/// One browser session (a fresh Chromium with its own profile directory).
pub struct Browser {
    driver: Driver,
    session: String,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Driver {
    /// Starts `/usr/bin/chromedriver` on a free loopback port; panics (the test
    /// fails loudly) when it cannot.
    pub fn start() -> Driver {
        let port = free_port();
        let child = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "chromedriver must be installed at /usr/bin/chromedriver (Debian chromium-driver)",
            );
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = http.get(format!("{base}/status")).send() {
                if r.json::<Value>()
                    .ok()
                    .and_then(|v| v["value"]["ready"].as_bool())
                    == Some(true)
                {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Driver { child, base, http }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    /// Debian Chromium, headless, with the flags that keep it off the network.
    pub fn start(width: u32, height: u32) -> Browser {
        let driver = Driver::start();
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--hide-scrollbars",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        }}});
        let r: Value = driver
            .http
            .post(format!("{}/session", driver.base))
            .json(&caps)
            .send()
            .expect("new WebDriver session")
            .json()
            .unwrap();
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromium did not start: {r}"))
            .to_string();
        Browser {
            driver,
            session,
            _profile: profile,
        }
    }

    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{}", self.driver.base, self.session, path);
        let mut req = self.driver.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req
            .send()
            .unwrap_or_else(|e| panic!("WebDriver {path}: {e}"))
            .json()
            .unwrap();
        if let Some(err) = v["value"]["error"].as_str() {
            panic!("WebDriver {path}: {err}: {}", v["value"]["message"]);
        }
        v["value"].clone()
    }

    fn try_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let url = format!("{}/session/{}{}", self.driver.base, self.session, path);
        let mut req = self.driver.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req
            .send()
            .map_err(|e| e.to_string())?
            .json()
            .map_err(|e| e.to_string())?;
        match v["value"]["error"].as_str() {
            Some(e) => Err(e.to_string()),
            None => Ok(v["value"].clone()),
        }
    }

    pub fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })));
    }

    pub fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    pub fn find(&self, css: &str) -> Element {
        self.try_find(css).unwrap_or_else(|| {
            let text = self.script("return document.body ? document.body.innerText : '';");
            panic!(
                "no element matches `{css}` on {}; the page reads:\n{}",
                self.url(),
                text.as_str().unwrap_or("")
            )
        })
    }

    pub fn try_find(&self, css: &str) -> Option<Element> {
        let v = self
            .try_call(
                reqwest::Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .ok()?;
        v[ELEMENT].as_str().map(|s| Element(s.to_string()))
    }

    pub fn find_all(&self, css: &str) -> Vec<Element> {
        let v = self.call(
            reqwest::Method::POST,
            "/elements",
            Some(json!({ "using": "css selector", "value": css })),
        );
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e[ELEMENT].as_str().map(|s| Element(s.to_string())))
            .collect()
    }

    /// Waits up to `secs` for `css` to match.
    pub fn wait_for(&self, css: &str, secs: u64) -> Element {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(e) = self.try_find(css) {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "`{css}` did not appear within {secs} s on {}",
                self.url()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn click(&self, e: &Element) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{}/click", e.0),
            Some(json!({})),
        );
    }

    /// Clicks a control that submits a form or follows a link, and waits until the
    /// next page has replaced this one and finished loading.
    pub fn click_and_load(&self, css: &str) {
        self.script("window.__ppOldPage = true;");
        let e = self.find(css);
        self.click(&e);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let loaded = self
                .try_call(
                    reqwest::Method::POST,
                    "/execute/sync",
                    Some(json!({ "script": "return window.__ppOldPage === undefined && document.readyState === 'complete';", "args": [] })),
                )
                .ok()
                .and_then(|v| v.as_bool())
                == Some(true);
            if loaded {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "clicking `{css}` loaded no new page"
            );
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    pub fn clear(&self, e: &Element) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{}/clear", e.0),
            Some(json!({})),
        );
    }

    pub fn type_into(&self, e: &Element, text: &str) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{}/value", e.0),
            Some(json!({ "text": text })),
        );
    }

    /// Clears a field and types `text`.
    pub fn fill(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.clear(&e);
        self.type_into(&e, text);
    }

    pub fn text(&self, e: &Element) -> String {
        self.call(
            reqwest::Method::GET,
            &format!("/element/{}/text", e.0),
            None,
        )
        .as_str()
        .unwrap_or("")
        .to_string()
    }

    /// The text of `css` once it appears (after a form submission the new page may
    /// still be loading when the click returns).
    pub fn wait_text(&self, css: &str, secs: u64) -> String {
        let e = self.wait_for(css, secs);
        self.text(&e)
    }

    pub fn text_of(&self, css: &str) -> String {
        let e = self.find(css);
        self.text(&e)
    }

    pub fn property(&self, e: &Element, name: &str) -> Value {
        self.call(
            reqwest::Method::GET,
            &format!("/element/{}/property/{name}", e.0),
            None,
        )
    }

    pub fn script(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
    }

    /// Presses keys as a user would: `keys` is a sequence of W3C key values, each
    /// pressed and released; `alt` holds Alt around the first one.
    pub fn press(&self, keys: &[&str], alt: bool) {
        let mut actions = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            let with_alt = alt && i == 0;
            if with_alt {
                actions.push(json!({ "type": "keyDown", "value": "\u{E00A}" }));
            }
            actions.push(json!({ "type": "keyDown", "value": k }));
            actions.push(json!({ "type": "keyUp", "value": k }));
            if with_alt {
                actions.push(json!({ "type": "keyUp", "value": "\u{E00A}" }));
            }
        }
        self.call(
            reqwest::Method::POST,
            "/actions",
            Some(json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": actions }] })),
        );
        let _ = self.try_call(reqwest::Method::DELETE, "/actions", None);
    }

    pub fn set_window(&self, width: u32, height: u32) {
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        );
    }

    /// Saves a PNG of the viewport to `path`.
    pub fn screenshot(&self, path: &std::path::Path) {
        let b64 = self.call(reqwest::Method::GET, "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or(""))
            .expect("PNG base64");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.try_call(reqwest::Method::DELETE, "", None);
    }
}
