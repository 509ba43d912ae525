//! The web console in a real browser (headless Chromium through chromedriver, spoken to over the W3C
//! WebDriver protocol with reqwest), against the real server. Without chromedriver the test says it was
//! skipped and why; with `CI=true` a missing browser fails. Screenshots go to target/console-screenshots/.

mod common;

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use common::{
    admin_request, create_client, ensure_catalog_scopes, form, partner_admin_token, post_form, strings, until,
    TestServer,
};
use partnergate::registry::clients::{CreatedClient, NewClient};
use partnergate::registry::partners::{self, NewPartner};
use partnergate::registry::{roles, Caller};
use serde_json::{json, Value};

/// A chromedriver process and one browser session in it.
struct Browser {
    driver: Child,
    http: reqwest::Client,
    session: String,
}

impl Browser {
    /// Chromium through its driver; the tests that call this are `#[ignore]`d unless asked for.
    async fn start() -> Browser {
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
        if !text.is_empty() {
            self.call(reqwest::Method::POST, &format!("/element/{element}/value"), json!({"text": text})).await;
        }
    }

    async fn click(&self, css: &str) {
        let element = self.element(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{element}/click"), json!({})).await;
    }

    /// Runs an asynchronous script: it calls `arguments[0]` with its result.
    async fn script_async(&self, script: &str) -> Value {
        self.call(reqwest::Method::POST, "/execute/async", json!({"script": script, "args": []})).await
    }

    /// Polls a script until it returns a truthy value, and returns that value.
    async fn wait_for(&self, what: &str, script: &str) -> Value {
        self.wait_within(Duration::from_secs(15), what, script).await
    }

    /// Clicks `css` (a refresh or search button) and checks the script after each click until it holds: for a
    /// view loaded before the requests it must now show.
    async fn click_until(&self, css: &str, what: &str, script: &str) -> Value {
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

    async fn wait_within(&self, limit: Duration, what: &str, script: &str) -> Value {
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

    /// Closes the browser session; dropping the Browser ends the rest.
    async fn stop(self) {
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

fn which(name: &str) -> Option<String> {
    let path = std::env::var("PATH").ok()?;
    path.split(':').map(|dir| format!("{dir}/{name}")).find(|candidate| std::path::Path::new(candidate).is_file())
}

const ORDERS_AUDIENCE: &str = "https://orders.partnergate.test";

/// Partner `id` (ceiling: the order scopes, the client-admin scopes and `authz.audit.read`; audience ceiling:
/// the orders API) and its admin client holding those three reserved scopes for the admin audience, with
/// `lifetime` for its tokens (`None`: the server's default).
fn audit_reading_admin(server: &TestServer, id: &str, lifetime: Option<i32>) -> CreatedClient {
    ensure_catalog_scopes(server, &["orders.read", "orders.write"]);
    let admin_scopes = ["authz.clients.read", "authz.clients.write", "authz.audit.read"];
    let mut ceiling = strings(&["orders.read", "orders.write"]);
    ceiling.extend(strings(&admin_scopes));
    let partner = NewPartner {
        id: id.into(),
        name: format!("Partner {id}"),
        scope_ceiling: ceiling,
        audience_ceiling: strings(&[ORDERS_AUDIENCE]),
        ..Default::default()
    };
    partners::create(&mut server.conn(), &Caller::cli(), &partner).expect("partner");
    create_client(
        server,
        &NewClient {
            partner_id: Some(id.into()),
            name: format!("{id} admin"),
            scopes: strings(&admin_scopes),
            audiences: vec![server.settings.admin_audience.clone()],
            token_lifetime_secs: lifetime,
            ..Default::default()
        },
    )
}

/// An admin API GET with a bearer token; the JSON body of its 200 answer.
async fn admin_get(server: &TestServer, token: &str, path: &str) -> Value {
    admin_request(server, reqwest::Method::GET, path, Some(token), None).await.expect_json(200)
}

/// A client-credentials request; whether a token was granted.
async fn grant(server: &TestServer, client_id: &str, secret: &str) -> u16 {
    let body = form(&[("grant_type", "client_credentials"), ("client_id", client_id), ("client_secret", secret)]);
    post_form(server, "/oauth2/token", &body, &[]).await.status().as_u16()
}

#[tokio::test]
#[ignore = "drives headless Chromium: apt-get install chromium chromium-driver, then cargo test -- --include-ignored (as .ci/run does)"]
async fn partner_admin_manages_clients_in_the_browser() {
    let browser = Browser::start().await;
    let server = TestServer::start().await;
    let admin_a = audit_reading_admin(&server, "browser-a", None);
    let token_a = server.token_for(&admin_a, &[], None).await;
    // Tokens issued to partner a's clients, which its usage must count.
    let mut issued_a = 1;
    let (admin_b, _) = partner_admin_token(&server, "browser-b", &["orders.read"]).await;
    roles::create(&mut server.conn(), &Caller::cli(), "orders-reader", "reads orders", &strings(&["orders.read"]))
        .expect("role");
    let console = server.url("/console");
    let mut calls = Vec::new();

    let page = reqwest::get(&console).await.unwrap();
    assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
    assert_eq!(page.headers()["x-frame-options"], "DENY");

    browser.sign_in(&console, &admin_a.client.id, admin_a.secret.secret.expose()).await;
    issued_a += 1;
    let who = browser.script("return document.getElementById('who').textContent").await;
    assert!(who.as_str().unwrap().contains("browser-a"), "{who}");
    let kept = browser.script("return document.getElementById('client-secret').value").await;
    assert_eq!(kept, json!(""), "the secret field is cleared after sign-in");
    let pages = browser
        .script("return [!document.getElementById('audit').hidden, document.getElementById('operator').hidden, !document.getElementById('own-partner').hidden]")
        .await;
    assert_eq!(
        pages,
        json!([true, true, true]),
        "a partner admin with authz.audit.read: audit and its own partner, no operator pages"
    );
    browser
        .wait_for("its own partner", "return document.getElementById('own-name').textContent.includes('browser-a')")
        .await;

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

    // The copy button puts the secret on the clipboard (something else is there before the click).
    // WebDriver's permissions extension: headless Chromium then reads the clipboard in a script.
    for permission in ["clipboard-read", "clipboard-write"] {
        let grant = json!({"descriptor": {"name": permission}, "state": "granted"});
        browser.call(reqwest::Method::POST, "/permissions", grant).await;
    }
    let before = browser
        .script_async("const done = arguments[0]; navigator.clipboard.writeText('nothing yet').then(() => navigator.clipboard.readText()).then(done, (e) => done('error: ' + e))")
        .await;
    assert_eq!(before, json!("nothing yet"), "the test can write and read the clipboard");
    browser.click("#copy-secret").await;
    browser.wait_for("copied", "return document.getElementById('copy-status').textContent.startsWith('Copied')").await;
    let copied = browser
        .script_async(
            "const done = arguments[0]; navigator.clipboard.readText().then(done, (e) => done('error: ' + e))",
        )
        .await;
    assert_eq!(copied, json!(secret), "the copy button put the secret on the clipboard");

    // Dismissed, the secret is nowhere in the page: not in the markup, any text, or any field's value.
    browser.click("#dismiss-secret").await;
    let anywhere = browser
        .script(&format!("const s = '{secret}'; return document.documentElement.outerHTML.includes(s) || document.body.innerText.includes(s) || document.documentElement.textContent.includes(s) || [...document.querySelectorAll('input, textarea')].some(i => i.value.includes(s))"))
        .await;
    assert_eq!(anywhere, json!(false), "the dismissed secret is gone from the DOM");
    let hidden = browser.script("return document.getElementById('new-secret').hidden").await;
    assert_eq!(hidden, json!(true));

    assert_eq!(grant(&server, &client_id, &secret).await, 200);
    issued_a += 1;

    // Edit the client: every field of the form, and disabling it through the checkbox.
    browser.click(&format!("tr[data-client-id='{client_id}'] button:nth-of-type(5)")).await; // Edit
    browser.wait_for("the edit form", "return !document.getElementById('edit-client').hidden").await;
    let fields = [
        ("#edit-name", "browser sync edited"),
        ("#edit-description", "nightly order sync"),
        ("#edit-roles", "orders-reader"),
        ("#edit-scopes", "orders.read, orders.write"),
        ("#edit-audiences", ORDERS_AUDIENCE),
        ("#edit-rate", "120"),
        ("#edit-lifetime", "900"),
    ];
    for (field, text) in fields {
        browser.type_into(field, text).await;
    }
    browser.click("#edit-enabled").await;
    browser.screenshot("client-edit").await;
    browser.click("#edit-save").await;
    let row = browser
        .wait_for("the edited row", &format!("const r = document.querySelector(\"tr[data-client-id='{client_id}']\"); return r && r.cells[1].textContent === 'browser sync edited' && [...r.cells].slice(0, 10).map(c => c.textContent)"))
        .await;
    let row: Vec<&str> = row.as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert_eq!(
        [row[2], row[3], row[4], row[5], row[7], row[8], row[9]],
        ["no", "orders-reader", "orders.read orders.write", ORDERS_AUDIENCE, "nightly order sync", "120", "900"],
        "the list shows the edit: {row:?}"
    );
    let edited = admin_get(&server, &token_a, &format!("/clients/{client_id}")).await;
    assert_eq!(edited["name"], "browser sync edited");
    assert_eq!(edited["description"], "nightly order sync");
    assert_eq!(edited["roles"], json!(["orders-reader"]));
    assert_eq!(edited["scopes"], json!(["orders.read", "orders.write"]));
    assert_eq!(edited["audiences"], json!([ORDERS_AUDIENCE]));
    assert_eq!(edited["rate_limit_per_minute"], 120);
    assert_eq!(edited["token_lifetime_secs"], 900);
    assert_eq!(edited["enabled"], false, "{edited}");
    assert_eq!(grant(&server, &client_id, &secret).await, 401, "disabled in the edit form");

    // Enable it again and clear the rate limit: the form's other values are kept as they are.
    browser.click(&format!("tr[data-client-id='{client_id}'] button:nth-of-type(5)")).await;
    browser.wait_for("the edit form again", "return !document.getElementById('edit-client').hidden && document.getElementById('edit-rate').value === '120'").await;
    browser.type_into("#edit-rate", "").await;
    browser.click("#edit-enabled").await;
    browser.click("#edit-save").await;
    browser
        .wait_for("enabled again", &format!("const r = document.querySelector(\"tr[data-client-id='{client_id}']\"); return r && r.cells[2].textContent === 'yes' && r.cells[8].textContent === 'default'"))
        .await;
    let edited = admin_get(&server, &token_a, &format!("/clients/{client_id}")).await;
    assert_eq!((edited["enabled"].clone(), edited["rate_limit_per_minute"].clone()), (json!(true), Value::Null));
    assert_eq!(edited["scopes"], json!(["orders.read", "orders.write"]), "kept");
    assert_eq!(grant(&server, &client_id, &secret).await, 200);
    assert_eq!(grant(&server, &client_id, &secret).await, 200);
    issued_a += 2;

    // Its own partner's usage today, after real token requests (each is counted before its token is answered).
    let expected = issued_a.to_string();
    browser
        .click_until(
            "#own-refresh",
            "the usage count",
            &format!("return document.getElementById('own-usage').textContent === '{expected}'"),
        )
        .await;
    let usage = admin_get(&server, &token_a, "/partners/browser-a/usage").await;
    assert_eq!(usage["tokens"], issued_a, "{usage}");
    let quota = browser.script("return document.getElementById('own-quota').textContent").await;
    assert_eq!(quota, json!("no quota"));
    browser.screenshot("own-partner-usage").await;

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
    assert_eq!(grant(&server, &client_id, &secret).await, 401, "the revoked secret is refused");
    assert_eq!(grant(&server, &client_id, &rotated).await, 200, "the new secret works");
    issued_a += 1;

    browser.click(&format!("tr[data-client-id='{client_id}'] button")).await; // Disable
    browser
        .wait_for("disabled", &format!("const r = document.querySelector(\"tr[data-client-id='{client_id}']\"); return r && r.cells[2].textContent === 'no'"))
        .await;
    assert_eq!(grant(&server, &client_id, &rotated).await, 401);
    browser.screenshot("clients-disabled").await;

    // The audit view as partner a: its client's granted and refused token requests, nothing of partner b
    // (whose admin client had a token before any of this), even when it names partner b.
    browser.type_into("#audit-client", &client_id).await;
    browser.type_into("#audit-type", "token.request").await;
    browser
        .click_until("#audit-search", "a's token requests", "const rows = [...document.querySelectorAll('#audit-table tbody tr')]; return rows.filter(r => r.cells[2].textContent === 'success').length === 4 && rows.filter(r => r.cells[2].textContent === 'failure').length === 3")
        .await;
    browser.type_into("#audit-client", "").await;
    browser.click("#audit-search").await;
    let partners_seen = browser
        .wait_for("the whole audit", &format!("const rows = [...document.querySelectorAll('#audit-table tbody tr')]; return rows.length > 8 && rows.some(r => r.cells[4].textContent === '{}') && [...new Set(rows.map(r => r.cells[5].textContent))]", admin_a.client.id))
        .await;
    assert_eq!(partners_seen, json!(["browser-a"]), "partner a's audit view shows only its own partner");
    let b_rows = browser
        .script(&format!("return [...document.querySelectorAll('#audit-table tbody tr')].filter(r => r.cells[4].textContent === '{}').length", admin_b.client.id))
        .await;
    assert_eq!(b_rows, json!(0), "none of partner b's token requests");
    browser.screenshot("partner-audit").await;
    browser.type_into("#audit-partner", "browser-b").await;
    browser.click("#audit-search").await;
    browser.wait_for("nothing of b", "return document.querySelectorAll('#audit-table tbody tr').length === 0").await;
    browser.type_into("#audit-partner", "").await;

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
    // Signing in loads a fresh page whose clients list arrives after the name of who signed in; the rows are
    // rendered in one go, so once there are any there are all.
    let rows = browser
        .wait_for(
            "partner b's clients",
            "const n = document.querySelectorAll('#clients-table tbody tr').length; return n > 0 && n",
        )
        .await;
    let other = browser.script(&format!("return !!document.querySelector(\"tr[data-client-id='{client_id}']\")")).await;
    assert_eq!(other, json!(false), "partner b sees none of partner a's clients");
    assert_eq!(rows, json!(1), "partner b sees only its own admin client");
    let audit_hidden = browser
        .script("return document.getElementById('audit').hidden && document.getElementById('operator').hidden")
        .await;
    assert_eq!(audit_hidden, json!(true), "a partner admin without audit or operator scopes sees neither page");
    browser.screenshot("other-partner").await;

    // The operator finds the client's token requests (granted and refused) in the audit view.
    calls.extend(browser.calls().await);
    browser.click("#sign-out").await;
    let (operator, operator_token) = server.operator().await;
    browser.sign_in(&console, &operator.client.id, operator.secret.secret.expose()).await;
    browser.wait_for("operator pages", "return !document.getElementById('operator').hidden && document.querySelectorAll('#partners-table tbody tr').length >= 2").await;
    let own = browser.script("return document.getElementById('own-partner').hidden").await;
    assert_eq!(own, json!(true), "the operator has no partner of its own to show");

    // Partner a's usage in the operator's partners table: the same count.
    let expected = issued_a.to_string();
    browser
        .wait_for("a's usage", &format!("const r = document.querySelector(\"#partners-table tr[data-partner-id='browser-a']\"); return r && r.querySelector('.usage').textContent === '{expected}'"))
        .await;
    let usage = admin_get(&server, &operator_token, "/partners/browser-a/usage").await;
    assert_eq!(usage["tokens"], issued_a, "{usage}");

    // The operator edits partner a: limits, quota and log-only mode.
    browser.click("#partners-table tr[data-partner-id='browser-a'] button:nth-of-type(2)").await; // Edit
    browser.wait_for("the partner form", "return !document.getElementById('edit-partner').hidden").await;
    for (field, text) in [("#partner-rate", "600"), ("#partner-quota", "1000")] {
        browser.type_into(field, text).await;
    }
    browser.click("#partner-log-only").await;
    browser.screenshot("partner-edit").await;
    browser.click("#partner-save").await;
    let row = browser
        .wait_for("the edited partner", "const r = document.querySelector(\"#partners-table tr[data-partner-id='browser-a']\"); return r && r.cells[5].textContent === '1000' && [...r.cells].slice(0, 9).map(c => c.textContent)")
        .await;
    let row: Vec<&str> = row.as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert_eq!([row[4], row[5], row[7], row[8]], ["600", "1000", "log only", ORDERS_AUDIENCE], "{row:?}");
    let partner = admin_get(&server, &operator_token, "/partners/browser-a").await;
    assert_eq!(
        (
            partner["rate_limit_per_minute"].clone(),
            partner["token_quota_per_day"].clone(),
            partner["quota_log_only"].clone()
        ),
        (json!(600), json!(1000), json!(true)),
        "{partner}"
    );
    assert_eq!(partner["audience_ceiling"], json!([ORDERS_AUDIENCE]), "kept");
    let quota_now = admin_get(&server, &operator_token, "/partners/browser-a/usage").await;
    assert_eq!(
        (quota_now["token_quota_per_day"].clone(), quota_now["quota_log_only"].clone()),
        (json!(1000), json!(true))
    );

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
    // Partner b's events exist: partner a's view above left them out, it did not miss them.
    browser.type_into("#audit-client", "").await;
    browser.type_into("#audit-partner", "browser-b").await;
    browser.click("#audit-search").await;
    browser
        .wait_for("b's token requests", &format!("return [...document.querySelectorAll('#audit-table tbody tr')].some(r => r.cells[4].textContent === '{}')", admin_b.client.id))
        .await;
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
    for needed in [("PATCH", "/admin/v1/clients/"), ("PATCH", "/admin/v1/partners/"), ("GET", "/usage")] {
        assert!(
            calls.iter().any(|(method, path)| method == needed.0 && path.contains(needed.1)),
            "the console called {needed:?}: {calls:?}"
        );
    }
    for (method, path) in &calls {
        assert!(
            (method == "POST" && path == "/oauth2/token") || documented(method, path),
            "the console called {method} {path}, which the OpenAPI document does not list"
        );
    }

    browser.stop().await;
    server.stop().await;
}

/// The console signs out by itself when the admin token expires: a client whose tokens live 30 seconds (the
/// shortest lifetime a client may have) is shown the signed-out screen at its token's expiry, not before.
#[tokio::test]
#[ignore = "drives headless Chromium: apt-get install chromium chromium-driver, then cargo test -- --include-ignored (as .ci/run does)"]
async fn console_signs_out_when_the_admin_token_expires() {
    let browser = Browser::start().await;
    let server = TestServer::start().await;
    let admin = audit_reading_admin(&server, "browser-expiry", Some(30));
    let console = server.url("/console");
    let started = std::time::Instant::now();
    browser.sign_in(&console, &admin.client.id, admin.secret.secret.expose()).await;
    let signed_in = browser
        .script("return !document.getElementById('app').hidden && document.getElementById('sign-in').hidden")
        .await;
    assert_eq!(signed_in, json!(true));
    let notice = browser
        .wait_within(Duration::from_secs(60), "the signed-out screen", "return !document.getElementById('sign-in').hidden && document.getElementById('app').hidden && !document.getElementById('signed-out').hidden && document.getElementById('signed-out').textContent")
        .await;
    let after = started.elapsed();
    assert!(notice.as_str().unwrap().contains("expired"), "{notice}");
    // Token times are whole seconds: the token may be up to a second older than the sign-in.
    assert!(after >= Duration::from_secs(28), "signed out after {after:?}, before the token expired");
    let who = browser
        .script("return document.getElementById('who').textContent + document.getElementById('sign-out').hidden")
        .await;
    assert_eq!(who, json!("true"), "nobody is shown signed in");
    browser.screenshot("signed-out-at-expiry").await;
    browser.stop().await;
    server.stop().await;
}

/// Gives the `nth` button (1-based) of the clients table's row for `client_id` the DOM id `mark`, so that it can
/// be clicked whatever characters the client id holds (no CSS selector quoting).
async fn mark_client_button(browser: &Browser, client_id: &str, nth: usize, mark: &str) {
    let id = serde_json::to_string(client_id).unwrap();
    let script = format!("const r = [...document.querySelectorAll('#clients-table tbody tr')].find(r => r.dataset.clientId === {id}); if (!r) return false; r.querySelectorAll('button')[{}].id = '{mark}'; return true", nth - 1);
    browser.wait_for(&format!("the row of {client_id}"), &script).await;
}

/// A script that holds once the clients table's row for `client_id` shows `text` in cell `cell`.
fn row_shows(client_id: &str, cell: usize, text: &str) -> String {
    let (id, text) = (serde_json::to_string(client_id).unwrap(), serde_json::to_string(text).unwrap());
    format!("const r = [...document.querySelectorAll('#clients-table tbody tr')].find(r => r.dataset.clientId === {id}); return !!r && r.cells[{cell}].textContent === {text}")
}

/// An imported client whose id reads as a relative path (`../partners/victimp/suspend?`): Disable in the console
/// disables that client, and does not suspend partner `victimp` (issue 17, item 7).
#[tokio::test]
#[ignore = "drives headless Chromium: apt-get install chromium chromium-driver, then cargo test -- --include-ignored (as .ci/run does)"]
async fn disable_in_the_console_does_not_follow_a_client_id_that_reads_as_a_path() {
    let browser = Browser::start().await;
    let server = TestServer::start().await;
    server.seed("victimp", &["orders.read"], &["orders.read"], &[], &[]);
    let (attacker, _) = partner_admin_token(&server, "attacker", &["orders.read"]).await;
    let crafted = "../partners/victimp/suspend?";
    let input = NewClient {
        client_id: Some(crafted.into()),
        partner_id: Some("attacker".into()),
        name: "imported".into(),
        ..Default::default()
    };
    create_client(&server, &input);
    let (operator, operator_token) = server.operator().await;
    browser.sign_in(&server.url("/console"), &operator.client.id, operator.secret.secret.expose()).await;
    mark_client_button(&browser, crafted, 1, "disable-crafted").await;
    browser.click("#disable-crafted").await;
    let client_path = format!("/clients/{}", common::form_encode(crafted));
    let (s, t, p) = (&server, &operator_token, &client_path);
    until(Duration::from_secs(15), "the click reached the server", || async move {
        let victim = admin_get(s, t, "/partners/victimp").await;
        let client = admin_get(s, t, p).await;
        victim["suspended"] == json!(true) || client["enabled"] == json!(false)
    })
    .await;
    let victim = admin_get(&server, &operator_token, "/partners/victimp").await;
    assert_eq!(victim["suspended"], false, "Disable on the crafted client suspended partner victimp");
    let client = admin_get(&server, &operator_token, &client_path).await;
    assert_eq!((client["id"].as_str(), client["enabled"].as_bool()), (Some(crafted), Some(false)), "{client}");
    let attacker_partner = admin_get(&server, &operator_token, "/partners/attacker").await;
    assert_eq!(attacker_partner["suspended"], false);
    assert_eq!(grant(&server, &attacker.client.id, attacker.secret.secret.expose()).await, 200);
    browser.stop().await;
    server.stop().await;
}

/// A client whose id holds `%`, `#`, `?` and `/` is managed in the console like any other: disabled, enabled,
/// its secrets listed and rotated, edited and deleted, each call naming exactly that client.
#[tokio::test]
#[ignore = "drives headless Chromium: apt-get install chromium chromium-driver, then cargo test -- --include-ignored (as .ci/run does)"]
async fn the_console_manages_a_client_whose_id_holds_reserved_characters() {
    let browser = Browser::start().await;
    let server = TestServer::start().await;
    let admin = audit_reading_admin(&server, "browser-odd", None);
    let odd = "a/b?c#d%e";
    let imported = create_client(
        &server,
        &NewClient {
            client_id: Some(odd.into()),
            partner_id: Some("browser-odd".into()),
            name: "imported".into(),
            scopes: strings(&["orders.read"]),
            ..Default::default()
        },
    );
    let token = server.token_for(&admin, &[], None).await;
    let path = format!("/clients/{}", common::form_encode(odd));
    let (s, t, p) = (&server, &token, &path);
    let field = move |name: &'static str| async move { admin_get(s, t, p).await[name].clone() };
    browser.sign_in(&server.url("/console"), &admin.client.id, admin.secret.secret.expose()).await;

    mark_client_button(&browser, odd, 1, "toggle-odd").await;
    browser.click("#toggle-odd").await;
    until(Duration::from_secs(15), "disabled", || async { field("enabled").await == json!(false) }).await;
    assert_eq!(grant(&server, odd, imported.secret.secret.expose()).await, 401);
    // The list is drawn again after each change: the next button is the new row's.
    browser.wait_for("the row drawn again", &row_shows(odd, 2, "no")).await;
    mark_client_button(&browser, odd, 1, "toggle-odd-again").await;
    browser.click("#toggle-odd-again").await;
    until(Duration::from_secs(15), "enabled again", || async { field("enabled").await == json!(true) }).await;
    browser.wait_for("the row drawn again", &row_shows(odd, 2, "yes")).await;

    // Its secrets: listed, then rotated.
    mark_client_button(&browser, odd, 2, "secrets-odd").await;
    browser.click("#secrets-odd").await;
    browser.wait_for("its secret", "return document.querySelectorAll('#secrets-table tbody tr').length === 1").await;
    browser.click("#rotate").await;
    browser.wait_for("two secrets", "return document.querySelectorAll('#secrets-table tbody tr').length === 2").await;
    let secrets = admin_get(&server, &token, &format!("{path}/secrets")).await;
    assert_eq!(secrets["items"].as_array().unwrap().len(), 2, "{secrets}");
    browser.click("#dismiss-secret").await;

    // Edited through the form.
    mark_client_button(&browser, odd, 5, "edit-odd").await;
    browser.click("#edit-odd").await;
    browser.wait_for("the edit form", "return !document.getElementById('edit-client').hidden").await;
    browser.type_into("#edit-name", "imported, renamed").await;
    browser.click("#edit-save").await;
    until(Duration::from_secs(15), "renamed", || async { field("name").await == json!("imported, renamed") }).await;
    browser.wait_for("the row drawn again", &row_shows(odd, 1, "imported, renamed")).await;

    // Deleted, with the confirmation accepted.
    mark_client_button(&browser, odd, 4, "delete-odd").await;
    browser.click("#delete-odd").await;
    browser.call(reqwest::Method::POST, "/alert/accept", json!({})).await;
    until(Duration::from_secs(15), "deleted", || async move {
        admin_request(s, reqwest::Method::GET, p, Some(t), None).await.status == 404
    })
    .await;
    let error = browser.script("return document.getElementById('error').hidden").await;
    assert_eq!(error, json!(true), "no API error shown");
    let calls = browser.calls().await;
    let encoded = format!("/admin/v1{path}");
    assert!(calls.iter().any(|(method, url)| method == "DELETE" && url == &encoded), "{calls:?}");
    browser.stop().await;
    server.stop().await;
}
