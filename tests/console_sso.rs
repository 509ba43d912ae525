//! Console sign-in for people: sessions, CSRF, invitations and role mapping against the real server (SQLite
//! by default), and the whole OpenID Connect flow end to end against a real provider (node-oidc-provider,
//! tests/peers/oidc) driven by headless Chromium.

mod common;

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::Duration as Span;
use common::browser::Browser;
use common::{admin_request, audit_rows, free_port, partnergate, run_cli, until, TestServer};
use partnergate::clock::{Clock, ManualClock};
use partnergate::console_auth::{
    map_person, open_session, ConsoleSettings, Grant, OperatorRule, Person, ProviderSettings, SessionPolicy,
    SignInError,
};
use partnergate::registry::invitations::{self, NewInvitation};
use partnergate::registry::Caller;
use serde_json::{json, Value};

const IDP: &str = "https://idp.partnergate.test";

fn person(subject: &str, email: &str, verified: bool) -> Person {
    Person {
        issuer: IDP.into(),
        subject: subject.into(),
        email: Some(email.into()),
        email_verified: verified,
        groups: vec!["staff".into()],
    }
}

fn policy(lifetime: Span, idle: Span) -> SessionPolicy {
    SessionPolicy { lifetime, idle_timeout: idle, secure_cookie: false }
}

/// A server (its console sessions included) that runs on `clock`, with `lifetime` and `idle` timeout.
async fn server_on(clock: &ManualClock, lifetime: Span, idle: Span) -> TestServer {
    let clock = clock.clone();
    TestServer::start_with(move |config| {
        config.console = ConsoleSettings { sessions: policy(lifetime, idle), ..Default::default() };
        config.clock = std::sync::Arc::new(clock);
    })
    .await
}

/// A session opened for `person` with `grant`, as the callback opens it; its cookie value.
fn session_for(server: &TestServer, person: &Person, grant: &Grant, at: chrono::NaiveDateTime) -> String {
    let policy = server.config.console.sessions.clone();
    open_session(&mut server.conn(), person, grant, &policy, at).expect("session opens").cookie_value
}

async fn with_cookie(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    cookie: &str,
    csrf: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, server.url(path))
        .header("cookie", format!("partnergate_session={cookie}"));
    if let Some(csrf) = csrf {
        request = request.header("x-csrf-token", csrf);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn csrf_of(server: &TestServer, cookie: &str) -> String {
    let (status, session) = with_cookie(server, reqwest::Method::GET, "/console/session", cookie, None, None).await;
    assert_eq!(status, 200, "{session}");
    session["csrf_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_console_session_acts_in_the_admin_api_and_every_change_needs_its_csrf_token() {
    let clock = ManualClock::at(partnergate::store::now());
    let server = server_on(&clock, Span::hours(8), Span::minutes(30)).await;
    let olivia = person("olivia-1", "olivia@ops.example", true);
    let cookie = session_for(&server, &olivia, &Grant::Operator, clock.now());
    let get = |path: &'static str| with_cookie(&server, reqwest::Method::GET, path, &cookie, None, None);

    let (status, session) = get("/console/session").await;
    assert_eq!(status, 200, "{session}");
    assert_eq!((session["role"].as_str(), session["email"].as_str()), (Some("operator"), Some("olivia@ops.example")));
    assert_eq!(get("/admin/v1/partners").await.0, 200, "reading needs no CSRF token");

    let partner = json!({"id": "shopco", "name": "ShopCo"});
    let post = |csrf: Option<&'static str>| {
        with_cookie(&server, reqwest::Method::POST, "/admin/v1/partners", &cookie, csrf, Some(partner.clone()))
    };
    let (status, problem) = post(None).await;
    assert_eq!((status, problem["error"].as_str()), (403, Some("csrf")), "{problem}");
    let (status, problem) = post(Some("not-the-token")).await;
    assert_eq!((status, problem["error"].as_str()), (403, Some("csrf")), "{problem}");
    assert!(audit_rows(&server).iter().all(|row| row.event_type != "partner.create"), "a refused change did nothing");

    let csrf = csrf_of(&server, &cookie).await;
    let (status, created) =
        with_cookie(&server, reqwest::Method::POST, "/admin/v1/partners", &cookie, Some(&csrf), Some(partner.clone()))
            .await;
    assert_eq!(status, 201, "{created}");
    let event = audit_rows(&server).into_iter().find(|row| row.event_type == "partner.create").expect("audited");
    let actor = event.actor.unwrap();
    assert!(
        actor.contains("olivia@ops.example") && actor.contains("olivia-1") && actor.contains(IDP),
        "the person is the actor: {actor}"
    );

    // Sign-out needs the token too, and ends the session server-side.
    let (status, _) = with_cookie(&server, reqwest::Method::POST, "/console/sign-out", &cookie, None, None).await;
    assert_eq!(status, 403);
    let (status, _) =
        with_cookie(&server, reqwest::Method::POST, "/console/sign-out", &cookie, Some(&csrf), None).await;
    assert_eq!(status, 204);
    assert_eq!(get("/console/session").await.0, 401);
    let (status, problem) = get("/admin/v1/partners").await;
    assert_eq!((status, problem["error"].as_str()), (401, Some("invalid_token")), "{problem}");
    server.stop().await;
}

#[tokio::test]
async fn a_console_session_ends_when_idle_and_at_its_lifetime() {
    let clock = ManualClock::at(partnergate::store::now());
    let server = server_on(&clock, Span::hours(1), Span::minutes(30)).await;
    let olivia = person("olivia-1", "olivia@ops.example", true);
    let status = |cookie: String| {
        let server = &server;
        async move { with_cookie(server, reqwest::Method::GET, "/console/session", &cookie, None, None).await.0 }
    };

    // Used every 20 minutes, it lives until its lifetime ends.
    let busy = session_for(&server, &olivia, &Grant::Operator, clock.now());
    for _ in 0..2 {
        clock.advance(Span::minutes(20));
        assert_eq!(status(busy.clone()).await, 200);
    }
    clock.advance(Span::minutes(20));
    assert_eq!(status(busy.clone()).await, 401, "past its lifetime");

    // Left alone past the idle timeout, it ends.
    let idle = session_for(&server, &olivia, &Grant::Operator, clock.now());
    clock.advance(Span::minutes(29));
    assert_eq!(status(idle.clone()).await, 200);
    clock.advance(Span::minutes(31));
    assert_eq!(status(idle.clone()).await, 401, "idle too long");
    assert_eq!(status(idle).await, 401, "and it stays ended");
    server.stop().await;
}

#[tokio::test]
async fn a_callback_is_refused_without_the_sign_in_this_browser_started() {
    let server = TestServer::start().await;
    // No provider here: the browser check comes first, so that no other browser's `state` is ever completed.
    let response = reqwest::get(server.url("/console/oidc/callback?code=stolen&state=someone-elses")).await.unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
    assert!(response.text().await.unwrap().contains("unknown or has expired"));
    let options: Value = reqwest::get(server.url("/console/sign-in-options")).await.unwrap().json().await.unwrap();
    assert_eq!(options, json!({"identity_provider": false, "client_sign_in": true}));
    let login = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    assert_eq!(login.get(server.url("/console/oidc/login")).send().await.unwrap().status(), 404, "no provider");
    server.stop().await;
}

#[tokio::test]
async fn invitations_are_given_by_the_operator_and_by_a_partner_admin_within_its_own_scopes() {
    let server = TestServer::start().await;
    let (_, operator) = server.operator().await;
    let (_, shopco_admin) = server.partner_admin("shopco").create().await;
    server.partner_admin("agency").holding(&["authz.clients.read"]).create().await;
    let invite = |token: &str, partner: &str, body: Value| {
        let (token, path) = (token.to_string(), format!("/partners/{partner}/invitations"));
        let server = &server;
        async move {
            admin_request(
                server,
                reqwest::Method::POST,
                &path,
                Some(&token),
                Some(("application/json", body.to_string())),
            )
            .await
        }
    };

    let reply =
        invite(&operator, "shopco", json!({"email": "Pat@ShopCo.example", "scopes": ["authz.clients.read"]})).await;
    let created = reply.expect_json(201);
    assert_eq!(created["email"], "pat@shopco.example");
    assert!(created["bound"].is_null());
    invite(&operator, "shopco", json!({"email": "pat@shopco.example", "scopes": ["authz.clients.read"]}))
        .await
        .expect_status(409);
    invite(&operator, "shopco", json!({"email": "x@shopco.example", "scopes": ["authz.admin"]}))
        .await
        .expect_status(400);
    invite(&operator, "shopco", json!({"email": "not an address", "scopes": ["authz.clients.read"]}))
        .await
        .expect_status(400);
    invite(&operator, "nowhere", json!({"email": "x@shopco.example", "scopes": ["authz.clients.read"]}))
        .await
        .expect_status(404);

    // A partner admin: its own partner, its own scopes at most.
    invite(&shopco_admin, "shopco", json!({"email": "sam@shopco.example", "scopes": ["authz.clients.write"]}))
        .await
        .expect_status(201);
    invite(&shopco_admin, "shopco", json!({"email": "eve@shopco.example", "scopes": ["authz.audit.read"]}))
        .await
        .expect_status(403);
    invite(&shopco_admin, "agency", json!({"email": "eve@agency.example", "scopes": ["authz.clients.read"]}))
        .await
        .expect_status(404);

    let listed =
        admin_request(&server, reqwest::Method::GET, "/partners/shopco/invitations", Some(&shopco_admin), None)
            .await
            .expect_json(200);
    let emails: Vec<&str> = listed["items"].as_array().unwrap().iter().map(|i| i["email"].as_str().unwrap()).collect();
    assert_eq!(emails, ["pat@shopco.example", "sam@shopco.example"]);
    let id = created["id"].as_str().unwrap();
    admin_request(
        &server,
        reqwest::Method::DELETE,
        &format!("/partners/agency/invitations/{id}"),
        Some(&operator),
        None,
    )
    .await
    .expect_status(404);
    admin_request(
        &server,
        reqwest::Method::DELETE,
        &format!("/partners/shopco/invitations/{id}"),
        Some(&operator),
        None,
    )
    .await
    .expect_status(200);
    let events: Vec<String> = audit_rows(&server).into_iter().map(|row| row.event_type).collect();
    assert_eq!(events.iter().filter(|e| *e == "invitation.create").count(), 2);
    assert!(events.iter().any(|e| e == "invitation.delete"));
    server.stop().await;
}

#[tokio::test]
async fn the_operator_invites_lists_and_withdraws_at_the_command_line() {
    let server = TestServer::start().await;
    server.partner_admin("shopco").holding(&["authz.clients.read"]).create().await;
    let args = ["partner", "invite", "shopco", "pat@shopco.example", "--scope", "authz.clients.read"];
    let invitation = partnergate(&server, &args);
    assert_eq!(
        (invitation["email"].as_str(), invitation["invited_by"].as_str()),
        (Some("pat@shopco.example"), Some("cli"))
    );
    let listed = partnergate(&server, &["partner", "invitations", "shopco"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let refused = run_cli(&server, &["partner", "invite", "shopco", "eve@shopco.example", "--scope", "authz.admin"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("cannot be given by invitation"));
    let id = invitation["id"].as_str().unwrap();
    partnergate(&server, &["partner", "uninvite", "shopco", id]);
    assert_eq!(partnergate(&server, &["partner", "invitations", "shopco"]), json!([]));
    server.stop().await;
}

#[tokio::test]
async fn the_first_verified_sign_in_takes_an_invitation_and_later_ones_match_the_person() {
    let server = TestServer::start().await;
    server.partner_admin("shopco").holding(&["authz.clients.read"]).create().await;
    let invitation = NewInvitation { email: "pat@shopco.example".into(), scopes: vec!["authz.clients.read".into()] };
    invitations::create(&mut server.conn(), &Caller::cli(), "shopco", &invitation).unwrap();
    let rule = OperatorRule { groups: vec!["platform-ops".into()], email_domains: vec!["ops.example".into()] };
    let now = partnergate::store::now();
    let map = |person: &Person| map_person(&mut server.conn(), &rule, person, now);

    assert!(matches!(map(&person("pat-0", "pat@shopco.example", false)), Err(SignInError::NoRole(_))), "unverified");
    let Ok(Grant::PartnerAdmin { partner_id, scopes, .. }) = map(&person("pat-1", "PAT@shopco.example", true)) else {
        panic!("the invited person is a partner admin")
    };
    assert_eq!((partner_id.as_str(), scopes), ("shopco", vec!["authz.clients.read".to_string()]));
    assert!(
        matches!(map(&person("pat-2", "pat@shopco.example", true)), Err(SignInError::NoRole(_))),
        "the invitation is taken: another subject with the same address is refused"
    );
    assert!(
        matches!(map(&person("pat-1", "pat@new-address.example", true)), Ok(Grant::PartnerAdmin { .. })),
        "later sign-ins match by issuer and subject"
    );
    assert_eq!(map(&person("olivia", "olivia@ops.example", true)).unwrap(), Grant::Operator);
    let mut in_group = person("otto", "otto@elsewhere.example", false);
    in_group.groups = vec!["platform-ops".into()];
    assert_eq!(map(&in_group).unwrap(), Grant::Operator);
    assert!(audit_rows(&server).iter().any(|row| row.event_type == "invitation.accept"
        && row.actor.as_deref().is_some_and(|actor| actor.contains("pat-1"))));
    server.stop().await;
}

#[tokio::test]
async fn a_suspended_partner_or_a_withdrawn_invitation_stops_its_people() {
    let server = TestServer::start().await;
    let (_, operator) = server.operator().await;
    server.partner_admin("shopco").holding(&["authz.clients.read"]).create().await;
    let invitation = NewInvitation { email: "pat@shopco.example".into(), scopes: vec!["authz.clients.read".into()] };
    let created = invitations::create(&mut server.conn(), &Caller::cli(), "shopco", &invitation).unwrap();
    let pat = person("pat-1", "pat@shopco.example", true);
    let grant = map_person(&mut server.conn(), &OperatorRule::default(), &pat, partnergate::store::now()).unwrap();
    let cookie = session_for(&server, &pat, &grant, partnergate::store::now());
    let (status, page) = with_cookie(&server, reqwest::Method::GET, "/admin/v1/partners", &cookie, None, None).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = page["items"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["shopco"], "a partner admin sees its own partner only");
    partnergate::registry::partners::set_suspended(&mut server.conn(), &Caller::cli(), "shopco", true).unwrap();
    let (status, _) = with_cookie(&server, reqwest::Method::GET, "/admin/v1/partners", &cookie, None, None).await;
    assert_eq!(status, 401, "a suspended partner's people act no more than its clients");
    partnergate::registry::partners::set_suspended(&mut server.conn(), &Caller::cli(), "shopco", false).unwrap();
    assert_eq!(with_cookie(&server, reqwest::Method::GET, "/admin/v1/partners", &cookie, None, None).await.0, 200);
    let path = format!("/partners/shopco/invitations/{}", created.id);
    admin_request(&server, reqwest::Method::DELETE, &path, Some(&operator), None).await.expect_status(200);
    assert_eq!(with_cookie(&server, reqwest::Method::GET, "/admin/v1/partners", &cookie, None, None).await.0, 401);
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------------------
// End to end: node-oidc-provider and Chromium
// ---------------------------------------------------------------------------------------------------------

const CLIENT_ID: &str = "partnergate-console";
/// The test provider's client secret: made up for this test's throwaway provider.
const CLIENT_SECRET: &str = "console-test-client-secret";

/// node-oidc-provider on a loopback port (tests/peers/oidc/provider.mjs), its npm packages installed with
/// `npm ci` when missing.
struct OidcProvider {
    process: Child,
    issuer: String,
}

impl OidcProvider {
    async fn start(redirect_uri: &str) -> OidcProvider {
        OidcProvider::start_on(free_port(), redirect_uri).await
    }

    /// The provider on `port`; each start signs with a new key (provider.mjs makes one per process).
    async fn start_on(port: u16, redirect_uri: &str) -> OidcProvider {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/oidc");
        if !dir.join("node_modules").is_dir() {
            let installed = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir)
                .status()
                .expect("npm is installed");
            assert!(installed.success(), "npm ci in tests/peers/oidc");
        }
        let process = Command::new("node")
            .process_group(0)
            .arg("provider.mjs")
            .current_dir(&dir)
            .env("OIDC_PORT", port.to_string())
            .env("OIDC_CLIENT_ID", CLIENT_ID)
            .env("OIDC_CLIENT_SECRET", CLIENT_SECRET)
            .env("OIDC_REDIRECT_URI", redirect_uri)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("node starts");
        let issuer = format!("http://127.0.0.1:{port}");
        let discovery = format!("{issuer}/.well-known/openid-configuration");
        until(Duration::from_secs(30), "the OpenID provider ready", || {
            let discovery = discovery.clone();
            async move { reqwest::get(discovery).await.is_ok_and(|r| r.status().is_success()) }
        })
        .await;
        OidcProvider { process, issuer }
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Signs in at the console through the provider's development login form as `login` (an email address).
async fn sso_sign_in(browser: &Browser, server: &TestServer, login: &str) {
    // A fresh start: no session at the provider or here.
    browser.go(&server.url("/console")).await;
    browser.call(reqwest::Method::DELETE, "/cookie", Value::Null).await;
    browser.go(&server.url("/console")).await;
    browser.wait_for("the identity provider offered", "return !document.getElementById('sso-sign-in').hidden").await;
    browser.click("#sso-sign-in-link").await;
    browser.type_into("input[name=login]", login).await;
    browser.type_into("input[name=password]", "any").await;
    browser.click("button[type=submit]").await;
}

async fn signed_in_as(browser: &Browser) -> String {
    // Null-safe: the browser may still be on the provider's pages when the first poll runs.
    let who =
        browser.wait_for("signed in", "const w = document.getElementById('who'); return w && w.textContent").await;
    browser.wait_for("the first view", "return [...document.querySelectorAll('.view')].some(v => !v.hidden)").await;
    who.as_str().unwrap().to_string()
}

async fn session_cookie(browser: &Browser) -> String {
    let cookies = browser.call(reqwest::Method::GET, "/cookie", Value::Null).await;
    let cookie = cookies.as_array().unwrap().iter().find(|c| c["name"] == "partnergate_session").expect("the cookie");
    assert_eq!(cookie["httpOnly"], true, "{cookie}");
    assert_eq!(cookie["sameSite"], "Lax", "{cookie}");
    cookie["value"].as_str().unwrap().to_string()
}

#[tokio::test]
#[ignore = "needs Chromium and Node"]
async fn people_sign_in_to_the_console_through_an_openid_provider() {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let redirect_uri = format!("{base}/console/oidc/callback");
    let provider = OidcProvider::start(&redirect_uri).await;
    let clock = ManualClock::at(partnergate::store::now());
    let (issuer, session_clock, callback) = (provider.issuer.clone(), clock.clone(), redirect_uri.clone());
    let server = TestServer::start_with(move |config| {
        config.bind = format!("127.0.0.1:{port}").parse().unwrap();
        config.console = ConsoleSettings {
            provider: Some(ProviderSettings {
                issuer,
                client_id: CLIENT_ID.into(),
                client_secret: CLIENT_SECRET.into(),
                redirect_uri: callback,
                operator_groups: vec!["platform-ops".into()],
                operator_email_domains: vec![],
            }),
            client_sign_in: false,
            sessions: policy(Span::hours(8), Span::minutes(30)),
        };
        config.clock = std::sync::Arc::new(session_clock);
    })
    .await;
    server.partner_admin("shopco").create().await;
    server.partner_admin("agency").holding(&["authz.clients.read"]).create().await;
    let browser = Browser::start().await;

    // The operator, by the group claim. Client sign-in is off: the form is not offered.
    sso_sign_in(&browser, &server, "ops-olivia@ops.example").await;
    assert_eq!(signed_in_as(&browser).await, "ops-olivia@ops.example (operator)");
    assert_eq!(browser.script("return document.getElementById('client-sign-in').hidden").await, json!(true));

    // ... invites ShopCo's admin from the partner's page.
    browser.go(&server.url("/console#partner/shopco")).await;
    browser.wait_for("the invitations", "return !document.getElementById('invitations').hidden").await;
    browser.type_into("#invite-email", "pat@shopco.example").await;
    browser.click("input[name=invite-scope][value='authz.clients.write']").await;
    browser.click("#invite-button").await;
    browser.notice("Invited pat@shopco.example").await;
    browser.screenshots("sso-invitations").await;
    let invited = audit_rows(&server).into_iter().find(|row| row.event_type == "invitation.create").expect("audited");
    let actor = invited.actor.unwrap();
    assert!(
        actor.contains("ops-olivia@ops.example") && actor.contains(&provider.issuer),
        "the audit names the person, their subject and issuer: {actor}"
    );

    // CSRF: the session's cookie alone changes nothing.
    let cookie = session_cookie(&browser).await;
    let body = Some(json!({"id": "forged", "name": "Forged"}));
    let (status, _) =
        with_cookie(&server, reqwest::Method::POST, "/admin/v1/partners", &cookie, None, body.clone()).await;
    assert_eq!(status, 403);
    let (status, _) =
        with_cookie(&server, reqwest::Method::POST, "/admin/v1/partners", &cookie, Some("forged"), body).await;
    assert_eq!(status, 403);
    assert_eq!(with_cookie(&server, reqwest::Method::GET, "/admin/v1/partners", &cookie, None, None).await.0, 200);

    // Sign-out ends the session server-side: the old cookie opens nothing.
    browser.click("#sign-out").await;
    browser.wait_for("signed out", "return !document.getElementById('sign-in').hidden").await;
    let (status, _) = with_cookie(&server, reqwest::Method::GET, "/admin/v1/partners", &cookie, None, None).await;
    assert_eq!(status, 401, "the signed-out cookie is refused");

    // The provider restarts with a new signing key (as at a key rotation): the server, which discovered the
    // old key at the first sign-in, fetches the provider's keys again when an ID token does not verify.
    let port: u16 = provider.issuer.rsplit(':').next().unwrap().parse().unwrap();
    drop(provider);
    let _provider = OidcProvider::start_on(port, &redirect_uri).await;

    // The invited partner admin: signs in, sees only its partner.
    sso_sign_in(&browser, &server, "pat@shopco.example").await;
    assert_eq!(signed_in_as(&browser).await, "pat@shopco.example (partner admin of shopco)");
    assert_eq!(
        browser.script("return document.querySelector(\"#nav a[data-view='partners']\").hidden").await,
        json!(true)
    );
    browser.wait_for("its partner", "return document.getElementById('partner-title').textContent").await;
    // Its own invitation, now taken; it may invite others with at most its own scopes.
    browser
        .wait_for(
            "the taken invitation",
            "const r = document.querySelector('#invitations-table tr[data-email=\"pat@shopco.example\"]'); \
             return !document.getElementById('invitations').hidden && r && r.textContent.includes('signed in since')",
        )
        .await;
    let audit_box = "return document.querySelector(\"input[name=invite-scope][value='authz.audit.read']\").disabled";
    assert_eq!(browser.script(audit_box).await, json!(true), "a scope it does not hold is not offered");
    let cookie = session_cookie(&browser).await;
    let (_, partners) = with_cookie(&server, reqwest::Method::GET, "/admin/v1/partners", &cookie, None, None).await;
    assert_eq!(partners["items"].as_array().unwrap().len(), 1, "{partners}");
    assert_eq!(partners["items"][0]["id"], "shopco");
    browser.screenshots("sso-partner-admin").await;

    // Idle past the timeout, the session ends.
    clock.advance(Span::minutes(31));
    assert_eq!(with_cookie(&server, reqwest::Method::GET, "/console/session", &cookie, None, None).await.0, 401);
    browser.go(&server.url("/console")).await;
    browser.wait_for("the sign-in page", "return !document.getElementById('sign-in').hidden").await;

    // Somebody nobody invited is refused with a page that says so.
    sso_sign_in(&browser, &server, "nobody@nowhere.example").await;
    let refusal = browser
        .wait_for("the refusal", "const r = document.getElementById('refusal'); return r && r.textContent")
        .await;
    assert!(refusal.as_str().unwrap().contains("nobody@nowhere.example has no role"), "{refusal}");
    browser.screenshot("sso-refused-1400").await;
    browser.stop().await;
    server.stop().await;
}
