//! Resource servers built with the verifier crate (`verifier/`) against a real partnergate: the orders_api
//! example (actix-web) and its axum twin (tower layer), both included from `verifier/examples/`, so that
//! these tests run the very apps the README walks through. Scopes per route, RFC 6750 refusals, tenant
//! isolation by `partner_id`, a key rotation under load with zero failed verifications, the issuer stopped,
//! and usage reports fetched with the API's own client credentials.

mod common;

#[path = "../verifier/examples/orders_api.rs"]
#[allow(dead_code)]
mod orders_api;
#[path = "../verifier/examples/orders_axum.rs"]
#[allow(dead_code)]
mod orders_axum;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use partnergate::keys::KeyPolicy;
use partnergate_verifier::{Authorizer, ReporterConfig, UsageReporter, Verifier, VerifierConfig};
use reqwest::Method;
use serde_json::{json, Value};

/// A partnergate whose issuer is its own loopback URL (so that discovery finds it), signing with a key
/// imported from a PEM file that stays in its keys directory (so that tests can forge with it).
async fn issuer_with(customize: impl FnOnce(&mut partnergate::config::ServerConfig)) -> TestServer {
    start_as_issuer(|config| {
        partnergate::keys::generate(&config.keys_dir, partnergate::keys::Algorithm::ES256, true).unwrap();
        customize(config);
    })
    .await
}

/// The orders API's settings for `server`: its default audience, no reporting.
fn settings_for(server: &TestServer) -> orders_api::Settings {
    orders_api::Settings {
        issuer: server.settings.issuer.clone(),
        audience: server.settings.default_audience.clone(),
        bind: "127.0.0.1:0".into(),
        reporting: None,
    }
}

/// The actix orders API on a loopback port: its URL and its verifier.
async fn start_orders_api(server: &TestServer, tune: impl FnOnce(&mut VerifierConfig)) -> (String, Verifier) {
    let settings = settings_for(server);
    let mut config = VerifierConfig::new(&settings.issuer, &settings.audience);
    tune(&mut config);
    let (authorizer, _) = orders_api::authorizer(&settings, config);
    let verifier = authorizer.verifier().clone();
    let (addr, api) = orders_api::serve(authorizer, &settings.bind, 2).unwrap();
    actix_web::rt::spawn(api);
    (format!("http://{addr}"), verifier)
}

struct Answer {
    status: u16,
    challenge: String,
    body: Value,
}

async fn call(method: Method, url: &str, token: Option<&str>, body: Option<Value>) -> Answer {
    let mut request = reqwest::Client::new().request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let challenge =
        response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let text = response.text().await.unwrap();
    Answer { status, challenge, body: serde_json::from_str(&text).unwrap_or(Value::Null) }
}

/// `token`'s claims changed by `edit`, signed under header `typ` with `pem` (the server's key, or another).
fn forge(
    token: &str,
    pem: &[u8],
    kid: &str,
    typ: Option<&str>,
    edit: impl FnOnce(&mut serde_json::Map<String, Value>),
) -> String {
    let mut claims = claims_of(token);
    edit(&mut claims);
    let header = Header { typ: typ.map(str::to_string), kid: Some(kid.into()), ..Header::new(Algorithm::ES256) };
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ec_pem(pem).unwrap()).unwrap()
}

fn server_pem(server: &TestServer, token: &str) -> (String, Vec<u8>) {
    let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    let pem = std::fs::read(server.keys_dir.join(format!("{kid}.pem"))).expect("the server's PEM key");
    (kid, pem)
}

/// A PEM key of nobody's: a second, throwaway partnergate keys directory.
fn stranger_pem() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let key = partnergate::keys::generate(dir.path(), partnergate::keys::Algorithm::ES256, true).unwrap();
    let file = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "pem"))
        .unwrap_or_else(|| panic!("no PEM for {key:?}"));
    std::fs::read(file).unwrap()
}

fn assert_invalid_token(answer: &Answer, what: &str) {
    assert_eq!(answer.status, 401, "{what}");
    assert_eq!(answer.challenge, r#"Bearer realm="orders", error="invalid_token""#, "{what}");
}

#[actix_web::test]
async fn the_orders_api_enforces_scopes_per_route_and_refuses_bad_tokens() {
    let server = issuer_with(|_| {}).await;
    let (api, verifier) = start_orders_api(&server, |_| {}).await;
    let scopes = ["orders.read", "orders.write"];
    let reader = server.seed("acme").ceiling(&scopes).scopes(&["orders.read"]).create();
    let writer = server.client_of("acme").scopes(&scopes).create();
    let other = server.seed("globex").ceiling(&scopes).scopes(&scopes).create();
    let reader_token = server.token_for(&reader, &[], None).await;
    let writer_token = server.token_for(&writer, &[], None).await;
    let other_token = server.token_for(&other, &[], None).await;
    let orders = format!("{api}/orders");

    // Right scope: 200; wrong scope: 403 insufficient_scope naming what the route needs.
    let listed = call(Method::GET, &orders, Some(&reader_token), None).await;
    assert_eq!((listed.status, &listed.body), (200, &json!({"partner_id": "acme", "orders": []})));
    let refused = call(Method::POST, &orders, Some(&reader_token), Some(json!({"item": "x", "quantity": 1}))).await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.challenge, r#"Bearer realm="orders", error="insufficient_scope", scope="orders.write""#);
    let created = call(Method::POST, &orders, Some(&writer_token), Some(json!({"item": "bolts", "quantity": 3}))).await;
    assert_eq!(created.status, 201, "{:?}", created.body);

    // The tenant is the token's partner: acme sees its order, globex does not.
    let acme = call(Method::GET, &orders, Some(&reader_token), None).await.body;
    assert_eq!(acme["orders"].as_array().unwrap().len(), 1, "{acme}");
    let globex = call(Method::GET, &orders, Some(&other_token), None).await.body;
    assert_eq!(globex, json!({"partner_id": "globex", "orders": []}));
    let whoami = call(Method::GET, &format!("{api}/whoami"), Some(&reader_token), None).await;
    assert_eq!(whoami.status, 200);
    assert_eq!(whoami.body, json!({"partner_id": "acme", "client_id": reader.client.id, "scopes": ["orders.read"]}));

    // No token: a bare challenge; bad tokens: invalid_token, and nothing more.
    let anonymous = call(Method::GET, &orders, None, None).await;
    assert_eq!((anonymous.status, anonymous.challenge.as_str()), (401, r#"Bearer realm="orders""#));
    let (kid, pem) = server_pem(&server, &reader_token);
    let now = chrono::Utc::now().timestamp();
    let cases = [
        ("bad signature", forge(&reader_token, &stranger_pem(), &kid, Some("at+jwt"), |_| {})),
        ("unknown kid", forge(&reader_token, &stranger_pem(), "nobody", Some("at+jwt"), |_| {})),
        (
            "wrong audience",
            forge(&reader_token, &pem, &kid, Some("at+jwt"), |c| {
                _ = c.insert("aud".into(), json!("https://other.example"))
            }),
        ),
        ("wrong typ", forge(&reader_token, &pem, &kid, Some("JWT"), |_| {})),
        ("no typ", forge(&reader_token, &pem, &kid, None, |_| {})),
        (
            "expired",
            forge(&reader_token, &pem, &kid, Some("at+jwt"), |c| {
                c.insert("iat".into(), json!(now - 900));
                c.insert("nbf".into(), json!(now - 900));
                c.insert("exp".into(), json!(now - 300));
            }),
        ),
        ("no partner", forge(&reader_token, &pem, &kid, Some("at+jwt"), |c| _ = c.remove("partner_id"))),
        ("garbage", "not.a.token".to_string()),
    ];
    for (what, token) in &cases {
        assert_invalid_token(&call(Method::GET, &orders, Some(token), None).await, what);
    }
    // The control: the same forging with the server's key and nothing changed is accepted.
    let faithful = forge(&reader_token, &pem, &kid, Some("at+jwt"), |c| _ = c.insert("jti".into(), json!("copy")));
    assert_eq!(call(Method::GET, &orders, Some(&faithful), None).await.status, 200);

    // Other paths: a valid token gets the app's 404; an anonymous caller cannot tell. A method without a rule
    // on a matched route is refused (deny by default).
    assert_eq!(call(Method::GET, &format!("{api}/nope"), Some(&reader_token), None).await.status, 404);
    assert_eq!(call(Method::GET, &format!("{api}/nope"), None, None).await.status, 401);
    let delete = call(Method::DELETE, &orders, Some(&writer_token), None).await;
    assert_eq!(
        (delete.status, delete.challenge.as_str()),
        (403, r#"Bearer realm="orders", error="insufficient_scope""#)
    );

    let stats = verifier.stats();
    assert_eq!(stats.jwks_fetches, 1, "the unknown kid came within the minimum refresh interval: {stats:?}");
    assert!(stats.cache_hits > 0 && stats.verified >= 4, "{stats:?}");
    server.stop().await;
}

/// What the load saw.
#[derive(Default)]
struct Load {
    calls: AtomicUsize,
    failures: Mutex<Vec<String>>,
    kids: Mutex<HashMap<String, usize>>,
}

/// The issue's acceptance test on the resource-server side: clients fetch tokens from two instances and call
/// the orders API with each (twice: first sight, then the cache) while a rotation runs on the issuer (publish,
/// wait, activate on the other instance). Short settings: JWKS max-age 1 s, a key published 2 s before it
/// signs. Zero failed calls.
#[actix_web::test]
async fn a_key_rotation_under_load_fails_no_verification() {
    let first = issuer_with(|config| {
        config.jwks_max_age_secs = 1;
        config.key_policy = KeyPolicy {
            publish_at_least: chrono::Duration::seconds(2),
            keep_after_retire: chrono::Duration::seconds(600),
        };
    })
    .await;
    let second = TestServer::start_beside_with(&first, |config| config.bind = "127.0.0.1:0".parse().unwrap()).await;
    let (api, verifier) = start_orders_api(&first, |config| {
        config.jwks.min_refresh_interval = Duration::from_secs(1);
    })
    .await;
    let (_, operator) = first.operator().await;
    let client = first.seed("load").scopes(&["orders.read"]).create();
    let old = first.running().keys().current().active().kid().to_string();

    let load = Arc::new(Load::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for worker in 0..4 {
        let (load, stop, api) = (load.clone(), stop.clone(), api.clone());
        let urls = [first.base_url.clone(), second.base_url.clone()];
        let authorization = basic_auth(&client.client.id, client.secret.secret.expose());
        workers.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut n = worker;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let issued = http
                    .post(format!("{}/oauth2/token", urls[n % 2]))
                    .header("authorization", &authorization)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body("grant_type=client_credentials")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(issued.status(), 200);
                let token = issued.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string();
                let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
                for _ in 0..2 {
                    let answer = http.get(format!("{api}/orders")).bearer_auth(&token).send().await.unwrap();
                    load.calls.fetch_add(1, Ordering::SeqCst);
                    if answer.status() != 200 {
                        load.failures.lock().unwrap().push(format!("{kid}: {}", answer.status()));
                    }
                }
                *load.kids.lock().unwrap().entry(kid).or_default() += 1;
            }
        }));
    }

    tokio::time::sleep(Duration::from_millis(500)).await;
    let published = admin_request(&first, Method::POST, "/keys", Some(&operator), None).await.expect_json(201);
    let new = published["kid"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    admin_request(&second, Method::POST, &format!("/keys/{new}/activate"), Some(&operator), None)
        .await
        .expect_json(200);
    until(Duration::from_secs(10), "tokens signed with the new key reach the API", || async {
        load.kids.lock().unwrap().get(&new).copied().unwrap_or(0) >= 20
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.await.unwrap();
    }

    let failures = load.failures.lock().unwrap().clone();
    assert!(failures.is_empty(), "{} failed of {}: {failures:?}", failures.len(), load.calls.load(Ordering::SeqCst));
    let kids = load.kids.lock().unwrap().clone();
    assert!(kids.get(&old).copied().unwrap_or(0) > 0 && kids[&new] > 0, "{kids:?}");
    let stats = verifier.stats();
    assert_eq!(stats.jwks_fetch_failures, 0, "{stats:?}");
    assert!(stats.cache_hits > 0, "{stats:?}");
    second.stop().await;
    first.stop().await;
}

#[actix_web::test]
async fn with_the_issuer_stopped_verification_goes_on_with_the_cached_keys() {
    let mut server = issuer_with(|config| config.jwks_max_age_secs = 1).await;
    let (api, verifier) = start_orders_api(&server, |config| {
        config.jwks.min_refresh_interval = Duration::from_secs(1);
    })
    .await;
    let client = server.seed("acme").scopes(&["orders.read"]).create();
    let seen = server.token_for(&client, &[], None).await;
    let unseen: Vec<String> = {
        let mut tokens = Vec::new();
        for _ in 0..3 {
            tokens.push(server.token_for(&client, &[], None).await);
        }
        tokens
    };
    let orders = format!("{api}/orders");
    assert_eq!(call(Method::GET, &orders, Some(&seen), None).await.status, 200);

    server.stop_keep_db().await;
    assert!(reqwest::get(server.url("/.well-known/jwks.json")).await.is_err(), "the issuer is down");
    // Past the JWKS's max-age: the keys are stale, the refresh fails, the last good keys still verify
    // tokens never seen before.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(call(Method::GET, &orders, Some(&unseen[0]), None).await.status, 200);
    until(Duration::from_secs(5), "the verifier says it serves stale keys", || async {
        verifier.stats().serving_stale_jwks
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    for token in &unseen[1..] {
        assert_eq!(call(Method::GET, &orders, Some(token), None).await.status, 200);
    }
    assert_eq!(call(Method::GET, &orders, Some(&seen), None).await.status, 200);
    let stats = verifier.stats();
    assert!(stats.jwks_fetch_failures >= 1 && stats.serving_stale_jwks, "{stats:?}");
    assert_eq!(stats.rejected, 0, "{stats:?}");
    server.stop().await;
}

#[actix_web::test]
async fn the_axum_app_with_the_tower_layer_enforces_the_same_rules() {
    let server = issuer_with(|_| {}).await;
    let settings = settings_for(&server);
    let verifier = Verifier::new(VerifierConfig::new(&settings.issuer, &settings.audience));
    let authorizer = Authorizer::new(verifier, orders_axum::policy()).with_realm("orders");
    let addr = orders_axum::serve(authorizer, "127.0.0.1:0").await.unwrap();
    let api = format!("http://{addr}");
    let reader = server.seed("acme").ceiling(&["orders.read", "orders.write"]).scopes(&["orders.read"]).create();
    let writer_only = server.client_of("acme").scopes(&["orders.write"]).create();
    let reader_token = server.token_for(&reader, &[], None).await;
    let writer_token = server.token_for(&writer_only, &[], None).await;

    let listed = call(Method::GET, &format!("{api}/orders"), Some(&reader_token), None).await;
    assert_eq!((listed.status, &listed.body["partner_id"]), (200, &json!("acme")));
    let refused = call(Method::GET, &format!("{api}/orders"), Some(&writer_token), None).await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.challenge, r#"Bearer realm="orders", error="insufficient_scope", scope="orders.read""#);
    let whoami = call(Method::GET, &format!("{api}/whoami"), Some(&writer_token), None).await;
    assert_eq!(
        whoami.body,
        json!({"partner_id": "acme", "client_id": writer_only.client.id, "scopes": ["orders.write"]})
    );
    let anonymous = call(Method::GET, &format!("{api}/orders"), None, None).await;
    assert_eq!((anonymous.status, anonymous.challenge.as_str()), (401, r#"Bearer realm="orders""#));
    let (kid, _) = server_pem(&server, &reader_token);
    let forged = forge(&reader_token, &stranger_pem(), &kid, Some("at+jwt"), |_| {});
    assert_invalid_token(&call(Method::GET, &format!("{api}/orders"), Some(&forged), None).await, "bad signature");
    assert_eq!(call(Method::GET, &format!("{api}/nope"), Some(&reader_token), None).await.status, 404);
    server.stop().await;
}

/// Usage reports: the API's own client gets an `authz.usage.report` token at the real token endpoint and
/// posts batches to the server's request log, with the route pattern (never the path's query) and the caller's
/// partner; the operator reads them at `GET /admin/v1/requests` within 5 s of the calls.
#[actix_web::test]
async fn usage_reports_reach_the_request_log_within_five_seconds() {
    let server = issuer_with(|_| {}).await;
    let (_, operator) = server.operator().await;
    let reporter_client = server
        .seed("orders-team")
        .scopes(&["authz.usage.report"])
        .audiences(&[&server.settings.admin_audience])
        .create();
    let caller = server.seed("acme").scopes(&["orders.read"]).create();

    let settings = settings_for(&server);
    let verifier = Verifier::new(VerifierConfig::new(&settings.issuer, &settings.audience));
    let config = ReporterConfig::new(&reporter_client.client.id, reporter_client.secret.secret.expose());
    let (reporter, task) = UsageReporter::start(verifier.discovery(), config);
    let authorizer =
        Authorizer::new(verifier, orders_api::policy()).with_realm("orders").with_reporter(reporter.clone());
    let (addr, api) = orders_api::serve(authorizer, "127.0.0.1:0", 1).unwrap();
    actix_web::rt::spawn(api);

    let token = server.token_for(&caller, &[], None).await;
    assert_eq!(call(Method::GET, &format!("http://{addr}/orders?secret=1"), Some(&token), None).await.status, 200);
    assert_eq!(call(Method::POST, &format!("http://{addr}/orders"), Some(&token), None).await.status, 403);
    assert_eq!(call(Method::GET, &format!("http://{addr}/orders"), None, None).await.status, 401);

    let listed = || async {
        let page = admin_request(&server, Method::GET, "/requests?partner_id=acme", Some(&operator), None).await;
        page.expect_json(200)["items"].as_array().unwrap().clone()
    };
    until(Duration::from_secs(5), "the reports in the request log", || async { listed().await.len() == 2 }).await;
    let records = listed().await;
    for (record, (method, status)) in records.iter().zip([("POST", 403), ("GET", 200)]) {
        assert_eq!(record["route"], "/orders", "{record}");
        assert_eq!((record["method"].as_str().unwrap(), record["status"].as_u64().unwrap()), (method, status));
        assert_eq!(record["partner_id"], "acme");
        assert_eq!(record["client_id"], caller.client.id.as_str());
        assert_eq!(record["reporter"], reporter_client.client.id.as_str(), "the reporting API, from its own token");
        assert!(record["time"].as_str().unwrap().ends_with('Z') && record["latency_ms"].is_u64(), "{record}");
    }
    task.shutdown().await;
    assert_eq!(reporter.stats().sent, 2, "the anonymous call has no caller to report");
    server.stop().await;
}
