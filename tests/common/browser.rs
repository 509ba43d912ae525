//! Headless Chromium through chromedriver, spoken to over the W3C WebDriver protocol with reqwest: the
//! browser of the console tests (tests/console.rs, tests/console_sso.rs).

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

use super::until;

/// A chromedriver process and one browser session in it.
pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    session: String,
}

impl Browser {
    /// Chromium through its driver; the tests that call this are `#[ignore]`d unless asked for.
    pub async fn start() -> Browser {
        let chromedriver = which("chromedriver")
            .expect("chromedriver is not installed: apt-get install chromium chromium-driver (.ci/run does)");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // Its own process group, so that dropping the Browser ends chromedriver and the browser it started.
        let driver = Command::new(chromedriver)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        until(Duration::from_secs(20), "chromedriver ready", || {
            let http = http.clone();
            let url = format!("{base}/status");
            async move { http.get(url).send().await.is_ok() }
        })
        .await;
        let mut args = vec!["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"];
        args.push("--disable-dev-shm-usage");
        let mut options = json!({"args": args});
        if let Some(binary) = which("chromium") {
            options["binary"] = json!(binary);
        }
        let capabilities =
            json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}});
        let created: Value =
            http.post(format!("{base}/session")).json(&capabilities).send().await.unwrap().json().await.unwrap();
        let session = created["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {created}"));
        Browser { driver, http, session: format!("{base}/session/{session}") }
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let request = self.http.request(method, format!("{}{path}", self.session));
        let request = if body.is_null() { request } else { request.json(&body) };
        let reply: Value = request.send().await.expect("webdriver").json().await.expect("webdriver JSON");
        assert!(reply["value"].get("error").is_none(), "webdriver {path}: {reply}");
        reply["value"].clone()
    }

    pub async fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", json!({"url": url})).await;
    }

    pub async fn script(&self, script: &str) -> Value {
        self.call(reqwest::Method::POST, "/execute/sync", json!({"script": script, "args": []})).await
    }

    /// The element `css` selects, waited for up to 15 s (views draw after their data arrives).
    pub async fn element(&self, css: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        let url = format!("{}/element", self.session);
        loop {
            let request = json!({"using": "css selector", "value": css});
            let reply: Value = self.http.post(&url).json(&request).send().await.unwrap().json().await.unwrap();
            match reply["value"].get("error").and_then(Value::as_str) {
                None => {
                    return reply["value"].as_object().unwrap().values().next().unwrap().as_str().unwrap().to_string()
                }
                Some("no such element") if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Some(_) => panic!("webdriver element {css}: {reply}"),
            }
        }
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let element = self.element(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{element}/clear"), json!({})).await;
        if !text.is_empty() {
            self.call(reqwest::Method::POST, &format!("/element/{element}/value"), json!({"text": text})).await;
        }
    }

    /// Clicks `css`; found again if the view was drawn again between finding and clicking it.
    pub async fn click(&self, css: &str) {
        for _ in 0..20 {
            let element = self.element(css).await;
            let url = format!("{}/element/{element}/click", self.session);
            let reply: Value = self.http.post(url).json(&json!({})).send().await.unwrap().json().await.unwrap();
            match reply["value"].get("error").and_then(Value::as_str) {
                None => return,
                Some("stale element reference") => tokio::time::sleep(Duration::from_millis(100)).await,
                Some(_) => panic!("webdriver click {css}: {reply}"),
            }
        }
        panic!("{css} kept being drawn again");
    }

    /// Runs an asynchronous script: it calls `arguments[0]` with its result.
    pub async fn script_async(&self, script: &str) -> Value {
        self.call(reqwest::Method::POST, "/execute/async", json!({"script": script, "args": []})).await
    }

    /// Polls a script until it returns a truthy value, and returns that value.
    pub async fn wait_for(&self, what: &str, script: &str) -> Value {
        self.wait_within(Duration::from_secs(15), what, script).await
    }

    /// Clicks `css` (a refresh or search button) and checks the script after each click until it holds: for a
    /// view loaded before the requests it must now show.
    pub async fn click_until(&self, css: &str, what: &str, script: &str) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            self.click(css).await;
            tokio::time::sleep(Duration::from_millis(150)).await;
            let value = self.script(script).await;
            if !(value.is_null() || value == json!(false) || value == json!("")) {
                return value;
            }
            assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        }
    }

    pub async fn wait_within(&self, limit: Duration, what: &str, script: &str) -> Value {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let value = self.script(script).await;
            if !(value.is_null() || value == json!(false) || value == json!("")) {
                return value;
            }
            assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The whole page at the current width, as `<name>.png` (Chromium's own capture beyond the viewport).
    pub async fn screenshot(&self, name: &str) {
        let size = self.script("return [window.innerWidth, document.documentElement.scrollHeight]").await;
        let clip = json!({"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1});
        let params = json!({"format": "png", "captureBeyondViewport": true, "clip": clip});
        let shot = self
            .call(
                reqwest::Method::POST,
                "/goog/cdp/execute",
                json!({"cmd": "Page.captureScreenshot", "params": params}),
            )
            .await;
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let bytes = base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().unwrap()).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), bytes).unwrap();
    }

    /// The page at 1400 px and at 390 px (a phone), as `<name>-1400.png` and `<name>-390.png`; at none of
    /// them, nor at 360 px, does the page scroll sideways.
    pub async fn screenshots(&self, name: &str) {
        let (width, height) = self.size().await;
        // 360 px, the narrowest phone the console supports, is checked for sideways scrolling but not saved.
        for shown in [1400, 390, 360] {
            self.resize(shown, 1000).await;
            tokio::time::sleep(Duration::from_millis(150)).await;
            let overflow = self
                .script("return document.documentElement.scrollWidth > document.documentElement.clientWidth + 1")
                .await;
            assert_eq!(overflow, json!(false), "{name} at {shown} px scrolls sideways");
            if shown != 360 {
                self.screenshot(&format!("{name}-{shown}")).await;
            }
        }
        self.resize(width, height).await;
    }

    pub async fn size(&self) -> (u64, u64) {
        let rect = self.call(reqwest::Method::GET, "/window/rect", Value::Null).await;
        (rect["width"].as_u64().unwrap(), rect["height"].as_u64().unwrap())
    }

    pub async fn resize(&self, width: u64, height: u64) {
        self.call(reqwest::Method::POST, "/window/rect", json!({"width": width, "height": height})).await;
    }

    /// Waits for the confirmation dialog, checks that it states `consequence`, and answers it.
    pub async fn confirm(&self, consequence: &str, accept: bool) -> String {
        let text = self
            .wait_for("the confirmation", "const d = document.getElementById('confirm'); return d.open && document.getElementById('confirm-text').textContent")
            .await;
        let text = text.as_str().unwrap().to_string();
        assert!(text.contains(consequence), "the confirmation states {consequence:?}: {text:?}");
        self.click(if accept { "#confirm-ok" } else { "#confirm-cancel" }).await;
        self.wait_for("the dialog closed", "return !document.getElementById('confirm').open").await;
        text
    }

    /// The notice that shows an action's result, once it contains `text`.
    pub async fn notice(&self, text: &str) -> String {
        let script = format!(
            "const n = document.getElementById('notice'); return !n.hidden && n.textContent.includes({}) && n.textContent",
            serde_json::to_string(text).unwrap()
        );
        self.wait_for(&format!("the notice {text:?}"), &script).await.as_str().unwrap().to_string()
    }

    /// Clicks the button `action` (its `data-action`) in the row of `table` whose `data-<key>` is `value`.
    pub async fn click_in_row(&self, table: &str, key: &str, value: &str, action: &str) {
        let script = format!(
            "const r = [...document.querySelectorAll('#{table} tbody tr')].find(r => r.dataset.{key} === {}); const b = r && r.querySelector('button[data-action=\"{action}\"]'); if (!b) return false; document.querySelectorAll('[data-marked]').forEach(e => e.removeAttribute('data-marked')); b.setAttribute('data-marked', '1'); return true",
            serde_json::to_string(value).unwrap()
        );
        self.wait_for(&format!("{action} in the row {value} of {table}"), &script).await;
        self.click("[data-marked]").await;
    }

    /// Clicks an action of the detail page's action bar (`client-actions` or `partner-actions`).
    pub async fn act(&self, bar: &str, action: &str) {
        self.wait_for(
            &format!("{action} in {bar}"),
            &format!("return !!document.querySelector('#{bar} button[data-action=\"{action}\"]')"),
        )
        .await;
        self.click(&format!("#{bar} button[data-action=\"{action}\"]")).await;
    }

    /// Opens a section through the navigation, and waits until its view is shown.
    pub async fn section(&self, name: &str) {
        self.click(&format!("#nav a[data-view='{name}']")).await;
        self.wait_for(&format!("the {name} view"), &format!("const v = document.querySelector(\"a[data-view='{name}']\"); return v.getAttribute('aria-current') === 'page'")).await;
    }

    pub async fn sign_in(&self, console: &str, client_id: &str, secret: &str) {
        self.go(console).await;
        // Every call the console makes is recorded, to be checked against the OpenAPI document.
        self.script("window.calls = []; const f = window.fetch; window.fetch = (url, options) => { window.calls.push([(options && options.method) || 'GET', url]); return f(url, options); }; return true").await;
        self.type_into("#client-id", client_id).await;
        self.type_into("#client-secret", secret).await;
        self.click("#sign-in-button").await;
        self.wait_for("signed in", "return document.getElementById('who').textContent").await;
        self.wait_for("the first view", "return [...document.querySelectorAll('.view')].some(v => !v.hidden)").await;
    }

    /// The calls recorded since the last sign-in: (method, path without the query).
    pub async fn calls(&self) -> Vec<(String, String)> {
        let calls = self.script("return window.calls").await;
        calls
            .as_array()
            .unwrap()
            .iter()
            .map(|call| {
                let url = call[1].as_str().unwrap();
                (call[0].as_str().unwrap().to_string(), url.split('?').next().unwrap().to_string())
            })
            .collect()
    }

    /// Closes the browser session; dropping the Browser ends the rest.
    pub async fn stop(self) {
        let _ = self.http.delete(&self.session).send().await;
    }
}

impl Drop for Browser {
    /// Also when a failed assertion unwinds past `stop`: otherwise chromedriver and Chromium outlive the test.
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.driver.wait();
    }
}

/// `<target dir>/console-screenshots`: the test binary runs from `<target dir>/<profile>/deps/`.
pub fn screenshot_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.ancestors().nth(3).expect("the target dir").join("console-screenshots")
}

pub fn which(name: &str) -> Option<String> {
    let path = std::env::var("PATH").ok()?;
    path.split(':').map(|dir| format!("{dir}/{name}")).find(|candidate| std::path::Path::new(candidate).is_file())
}
