//! The web console in a real browser (headless Chromium through chromedriver, spoken to over the W3C
//! WebDriver protocol with reqwest), against the real server. Without chromedriver the test says it was
//! skipped and why; with `CI=true` a missing browser fails. Screenshots go to target/console-screenshots/.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use common::{form, partner_admin_token, post_form, until, TestServer};
use serde_json::{json, Value};

/// A chromedriver process and one browser session in it.
struct Browser {
    driver: Child,
    http: reqwest::Client,
    session: String,
}

impl Browser {
    async fn start() -> Option<Browser> {
        let Some(chromedriver) = which("chromedriver") else {
            let why = "chromedriver is not installed (apt-get install chromium chromium-driver)";
            assert!(std::env::var("CI").as_deref() != Ok("true"), "browser tests cannot run: {why}");
            // Straight to stderr: libtest hides what a passing test prints with eprintln!.
            let _ =
                std::io::Write::write_all(&mut std::io::stderr(), format!("browser tests skipped: {why}\n").as_bytes());
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new(chromedriver)
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
        Some(Browser { driver, http, session: format!("{base}/session/{session}") })
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let request = self.http.request(method, format!("{}{path}", self.session));
        let request = if body.is_null() { request } else { request.json(&body) };
        let reply: Value = request.send().await.expect("webdriver").json().await.expect("webdriver JSON");
        assert!(reply["value"].get("error").is_none(), "webdriver {path}: {reply}");
        reply["value"].clone()
    }

    async fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", json!({"url": url})).await;
    }

    async fn script(&self, script: &str) -> Value {
        self.call(reqwest::Method::POST, "/execute/sync", json!({"script": script, "args": []})).await
    }

    async fn element(&self, css: &str) -> String {
        let found = self.call(reqwest::Method::POST, "/element", json!({"using": "css selector", "value": css})).await;
        found.as_object().unwrap().values().next().unwrap().as_str().unwrap().to_string()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.element(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{element}/clear"), json!({})).await;
        self.call(reqwest::Method::POST, &format!("/element/{element}/value"), json!({"text": text})).await;
    }

    async fn click(&self, css: &str) {
        let element = self.element(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{element}/click"), json!({})).await;
    }

    /// Polls a script until it returns a truthy value, and returns that value.
    async fn wait_for(&self, what: &str, script: &str) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let value = self.script(script).await;
            if !(value.is_null() || value == json!(false) || value == json!("")) {
                return value;
            }
            assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn screenshot(&self, name: &str) {
        let png = self.call(reqwest::Method::GET, "/screenshot", Value::Null).await;
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap()).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), bytes).unwrap();
    }

    async fn sign_in(&self, console: &str, client_id: &str, secret: &str) {
        self.go(console).await;
        // Every call the console makes is recorded, to be checked against the OpenAPI document.
        self.script("window.calls = []; const f = window.fetch; window.fetch = (url, options) => { window.calls.push([(options && options.method) || 'GET', url]); return f(url, options); }; return true").await;
        self.type_into("#client-id", client_id).await;
        self.type_into("#client-secret", secret).await;
        self.click("#sign-in-button").await;
        self.wait_for("signed in", "return document.getElementById('who').textContent").await;
    }

    /// The calls recorded since the last sign-in: (method, path without the query).
    async fn calls(&self) -> Vec<(String, String)> {
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

    async fn stop(mut self) {
        let _ = self.http.delete(&self.session).send().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn which(name: &str) -> Option<String> {
    let path = std::env::var("PATH").ok()?;
    path.split(':').map(|dir| format!("{dir}/{name}")).find(|candidate| std::path::Path::new(candidate).is_file())
}

#[tokio::test]
async fn partner_admin_manages_clients_in_the_browser() {
    let Some(browser) = Browser::start().await else { return };
    let server = TestServer::start().await;
    let (admin_a, _) = partner_admin_token(&server, "browser-a", &["orders.read"]).await;
    let (admin_b, _) = partner_admin_token(&server, "browser-b", &["orders.read"]).await;
    let console = server.url("/console");
    let mut calls = Vec::new();

    let page = reqwest::get(&console).await.unwrap();
    assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
    assert_eq!(page.headers()["x-frame-options"], "DENY");

    browser.sign_in(&console, &admin_a.client.id, admin_a.secret.secret.expose()).await;
    let who = browser.script("return document.getElementById('who').textContent").await;
    assert!(who.as_str().unwrap().contains("browser-a"), "{who}");
    let kept = browser.script("return document.getElementById('client-secret').value").await;
    assert_eq!(kept, json!(""), "the secret field is cleared after sign-in");

    browser.type_into("#new-name", "browser sync").await;
    browser.type_into("#new-scopes", "orders.read").await;
    browser.click("#create-button").await;
    let secret =
        browser.wait_for("the new secret", "return document.getElementById('new-secret-value').textContent").await;
    let secret = secret.as_str().unwrap().to_string();
    assert!(secret.starts_with("pgs_"), "{secret}");
    let client_id = browser
        .wait_for("the new client's row", "const r = [...document.querySelectorAll('#clients-table tbody tr')].find(r => r.cells[1].textContent === 'browser sync'); return r && r.dataset.clientId")
        .await;
    let client_id = client_id.as_str().unwrap().to_string();
    browser.screenshot("clients-with-new-secret").await;
    browser.click("#dismiss-secret").await;
    let shown = browser.script("return document.getElementById('new-secret-value').textContent").await;
    assert_eq!(shown, json!(""), "the secret is not shown again");

    let grant = form(&[("grant_type", "client_credentials"), ("client_id", &client_id), ("client_secret", &secret)]);
    assert_eq!(post_form(&server, "/oauth2/token", &grant, &[]).await.status(), 200);

    // Rotate with no grace period, then revoke the first secret: only the new one works.
    browser.click(&format!("tr[data-client-id='{client_id}'] button:nth-of-type(2)")).await; // Secrets
    browser.wait_for("the secrets", "return document.querySelectorAll('#secrets-table tbody tr').length === 1").await;
    browser.click("#rotate").await;
    let rotated = browser
        .wait_for(
            "the rotated secret",
            &format!("const s = document.getElementById('new-secret-value').textContent; return s !== '{secret}' && s"),
        )
        .await;
    let rotated = rotated.as_str().unwrap().to_string();
    browser.wait_for("two secrets", "return document.querySelectorAll('#secrets-table tbody tr').length === 2").await;
    browser.screenshot("secrets-rotated").await;
    let marked = browser
        .script(&format!("const r = [...document.querySelectorAll('#secrets-table tbody tr')].find(r => '{secret}'.startsWith(r.cells[2].textContent)); if (!r) return false; r.querySelector('button').id = 'revoke-first'; return true"))
        .await;
    assert_eq!(marked, json!(true), "the first secret's row is found by its prefix");
    browser.click("#revoke-first").await;
    browser.wait_for("one revoked", "return [...document.querySelectorAll('#secrets-table tbody tr')].filter(r => r.cells[5].textContent).length === 1").await;
    assert_eq!(post_form(&server, "/oauth2/token", &grant, &[]).await.status(), 401, "the revoked secret is refused");
    let grant = form(&[("grant_type", "client_credentials"), ("client_id", &client_id), ("client_secret", &rotated)]);
    assert_eq!(post_form(&server, "/oauth2/token", &grant, &[]).await.status(), 200, "the new secret works");
    let audit_hidden = browser
        .script("return document.getElementById('audit').hidden && document.getElementById('operator').hidden")
        .await;
    assert_eq!(audit_hidden, json!(true), "a partner admin without audit or operator scopes sees neither page");

    browser.click(&format!("tr[data-client-id='{client_id}'] button")).await; // Disable
    browser
        .wait_for("disabled", &format!("const r = document.querySelector(\"tr[data-client-id='{client_id}']\"); return r && r.cells[2].textContent === 'no'"))
        .await;
    assert_eq!(post_form(&server, "/oauth2/token", &grant, &[]).await.status(), 401);
    browser.screenshot("clients-disabled").await;

    // Revoke all tokens, then delete a second client with the confirmation accepted.
    browser.click(&format!("tr[data-client-id='{client_id}'] button:nth-of-type(3)")).await; // Revoke tokens
    browser.type_into("#new-name", "to delete").await;
    browser.click("#create-button").await;
    let doomed = browser
        .wait_for("the second client", "const r = [...document.querySelectorAll('#clients-table tbody tr')].find(r => r.cells[1].textContent === 'to delete'); return r && r.dataset.clientId")
        .await;
    let doomed = doomed.as_str().unwrap().to_string();
    browser.click("#dismiss-secret").await;
    browser.click(&format!("tr[data-client-id='{doomed}'] button:nth-of-type(4)")).await; // Delete
    browser.call(reqwest::Method::POST, "/alert/accept", json!({})).await;
    browser
        .wait_for("the deleted row gone", &format!("return !document.querySelector(\"tr[data-client-id='{doomed}']\")"))
        .await;
    let error = browser.script("return document.getElementById('error').hidden").await;
    assert_eq!(error, json!(true), "no API error shown");

    calls.extend(browser.calls().await);
    browser.click("#sign-out").await;
    browser.sign_in(&console, &admin_b.client.id, admin_b.secret.secret.expose()).await;
    let rows = browser.script("return document.querySelectorAll('#clients-table tbody tr').length").await;
    let other = browser.script(&format!("return !!document.querySelector(\"tr[data-client-id='{client_id}']\")")).await;
    assert_eq!(other, json!(false), "partner b sees none of partner a's clients");
    assert_eq!(rows, json!(1), "partner b sees only its own admin client");
    browser.screenshot("other-partner").await;

    // The operator finds the client's token requests (granted and refused) in the audit view.
    calls.extend(browser.calls().await);
    browser.click("#sign-out").await;
    let (operator, _) = server.operator().await;
    browser.sign_in(&console, &operator.client.id, operator.secret.secret.expose()).await;
    browser.wait_for("operator pages", "return !document.getElementById('operator').hidden && document.querySelectorAll('#partners-table tbody tr').length >= 2").await;
    browser.type_into("#audit-client", &client_id).await;
    browser.type_into("#audit-type", "token.request").await;
    browser.click("#audit-search").await;
    browser
        .wait_for("the token requests", "const rows = [...document.querySelectorAll('#audit-table tbody tr')]; return rows.some(r => r.cells[2].textContent === 'success') && rows.some(r => r.cells[2].textContent === 'failure')")
        .await;
    let bars = browser
        .wait_for("the usage chart", &format!("const c = document.querySelector(\"#usage-chart svg[data-client-id='{client_id}']\"); return c && c.querySelectorAll('rect.granted').length > 0 && c.querySelectorAll('rect.denied').length > 0"))
        .await;
    assert_eq!(bars, json!(true));
    let last_used = browser
        .wait_for("last used", &format!("const r = document.querySelector(\"tr[data-client-id='{client_id}']\"); return r && r.cells[6].textContent"))
        .await;
    assert_ne!(last_used, json!("never"), "the client's secrets were used");
    browser.screenshot("audit").await;
    browser.screenshot("operator").await;
    let keys = browser.script("return document.querySelectorAll('#keys-table tbody tr').length").await;
    assert!(keys.as_u64().unwrap() >= 1, "the operator sees the signing keys");
    calls.extend(browser.calls().await);

    // The console uses only the token endpoint and documented admin calls.
    let document: Value = reqwest::get(server.url("/admin/v1/openapi.json")).await.unwrap().json().await.unwrap();
    let documented = |method: &str, path: &str| {
        document["paths"].as_object().unwrap().iter().any(|(template, item)| {
            let (template, path): (Vec<_>, Vec<_>) = (template.split('/').collect(), path.split('/').collect());
            item.get(method.to_lowercase()).is_some()
                && template.len() == path.len()
                && template.iter().zip(&path).all(|(t, p)| t == p || (t.starts_with('{') && !p.is_empty()))
        })
    };
    assert!(calls.len() > 10, "{calls:?}");
    for (method, path) in &calls {
        assert!(
            (method == "POST" && path == "/oauth2/token") || documented(method, path),
            "the console called {method} {path}, which the OpenAPI document does not list"
        );
    }

    browser.stop().await;
    server.stop().await;
}
