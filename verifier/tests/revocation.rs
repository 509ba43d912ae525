//! The revocation follower against a small local issuer whose poll endpoint the test scripts: what a good
//! SET says is applied on every request (cached tokens included); unsigned, forged, foreign-key, other-issuer
//! and wrongly typed SETs are ignored, counted and never acknowledged; a gap in the sequence is counted; the
//! start-up and staleness policies.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use partnergate_verifier::*;
use serde_json::{json, Value};
use support::{until, TestKey};

const RECEIVER: &str = "pgc_rs";
const DISABLED: &str = "https://schemas.openid.net/secevent/risc/event-type/account-disabled";
const ENABLED: &str = "https://schemas.openid.net/secevent/risc/event-type/account-enabled";

#[derive(Default)]
struct Stream {
    url: Mutex<String>,
    keys: Mutex<Vec<Value>>,
    /// The SETs not acknowledged yet, by `jti`.
    pending: Mutex<BTreeMap<String, String>>,
    acked: Mutex<HashSet<String>>,
    down: AtomicBool,
    polls: AtomicUsize,
    token_scopes: Mutex<Vec<String>>,
}

struct Issuer {
    url: String,
    key: TestKey,
    stream: Arc<Stream>,
}

impl Issuer {
    async fn start() -> Self {
        let stream = Arc::new(Stream::default());
        let key = TestKey::generate("k1");
        stream.keys.lock().unwrap().push(key.jwk.clone());
        let app = Router::new()
            .route("/.well-known/oauth-authorization-server", get(metadata))
            .route("/.well-known/ssf-configuration", get(ssf_configuration))
            .route("/jwks", get(jwks))
            .route("/token", post(token))
            .route("/ssf/poll", post(poll))
            .with_state(stream.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        *stream.url.lock().unwrap() = url.clone();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Issuer { url, key, stream }
    }

    /// The claims of a SET for `receiver` numbered `seq`, disabling or enabling `client`.
    fn set_claims(&self, seq: i64, event_type: &str, client: &str) -> Value {
        json!({
            "iss": self.url, "aud": RECEIVER, "iat": now(), "toe": now(), "jti": format!("{seq}.{RECEIVER}"),
            "sub_id": {"format": "complex", "application": {"format": "opaque", "id": client},
                       "tenant": {"format": "opaque", "id": "acme"}},
            "events": {event_type: {}}, "partnergate_seq": seq,
        })
    }

    fn offer(&self, seq: i64, set: String) {
        self.stream.pending.lock().unwrap().insert(format!("{seq}.{RECEIVER}"), set);
    }

    fn access_token(&self, client: &str) -> String {
        let now = now();
        let claims = json!({
            "iss": self.url, "aud": "api", "sub": client, "client_id": client, "partner_id": "acme",
            "scope": "orders.read", "jti": format!("jti-{client}"), "iat": now, "nbf": now, "exp": now + 600,
        });
        self.key.sign(&claims, Some("at+jwt"))
    }

    fn authorizer(&self, tune: impl FnOnce(&mut RevocationConfig)) -> (Authorizer, FollowerTask) {
        let verifier = Verifier::new(VerifierConfig::new(&self.url, "api"));
        let policy = RoutePolicy::new().route("GET", "/orders", ["orders.read"]);
        let mut config = RevocationConfig::new(RECEIVER, "pgs_secret");
        tune(&mut config);
        let (follower, task) = RevocationFollower::start(&verifier, config);
        (Authorizer::new(verifier, policy).with_revocation(follower), task)
    }
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

async fn metadata(State(stream): State<Arc<Stream>>) -> Json<Value> {
    let url = stream.url.lock().unwrap().clone();
    Json(json!({"issuer": url, "jwks_uri": format!("{url}/jwks"), "token_endpoint": format!("{url}/token")}))
}

async fn ssf_configuration(State(stream): State<Arc<Stream>>) -> Json<Value> {
    let url = stream.url.lock().unwrap().clone();
    Json(
        json!({"issuer": url, "partnergate_poll_endpoint": format!("{url}/ssf/poll"), "partnergate_token_audience": url}),
    )
}

async fn jwks(State(stream): State<Arc<Stream>>) -> Json<Value> {
    Json(json!({"keys": stream.keys.lock().unwrap().clone()}))
}

async fn token(State(stream): State<Arc<Stream>>, body: String) -> Json<Value> {
    stream.token_scopes.lock().unwrap().push(body);
    Json(json!({"access_token": "events-token", "token_type": "Bearer", "expires_in": 600}))
}

/// RFC 8936 as the server does it, simplified: acknowledged SETs go, the others are sent again; a short
/// long poll.
async fn poll(State(stream): State<Arc<Stream>>, Json(body): Json<Value>) -> Response {
    stream.polls.fetch_add(1, Ordering::SeqCst);
    if stream.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    for ack in body["ack"].as_array().into_iter().flatten() {
        let ack = ack.as_str().unwrap().to_string();
        stream.pending.lock().unwrap().remove(&ack);
        stream.acked.lock().unwrap().insert(ack);
    }
    if stream.pending.lock().unwrap().is_empty() && body["returnImmediately"] != json!(true) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sets = stream.pending.lock().unwrap().clone();
    Json(json!({"sets": sets, "moreAvailable": false})).into_response()
}

async fn allowed(authorizer: &Authorizer, token: &str) -> Result<(), Rejection> {
    authorizer.authorize("GET", Some("/orders"), Ok(token)).await.map(|_| ()).map_err(|refusal| refusal.rejection)
}

/// `claims` under a header of `alg: none`, without a signature.
fn unsigned(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "secevent+jwt"}).to_string());
    format!("{header}.{}.", URL_SAFE_NO_PAD.encode(claims.to_string()))
}

#[tokio::test]
async fn only_sets_signed_by_the_issuer_for_this_receiver_are_applied() {
    let issuer = Issuer::start().await;
    let stranger = TestKey::generate("k1");
    let unpublished = TestKey::generate("k9");
    // Tokens of six clients, verified (and cached) before anything happens.
    let (authorizer, _task) = issuer.authorizer(|config| config.startup = StartupPolicy::ServeAtOnce);
    let tokens: Vec<String> = (1..=6).map(|n| issuer.access_token(&format!("pgc_{n}"))).collect();
    for token in &tokens {
        assert_eq!(allowed(&authorizer, token).await, Ok(()));
    }

    let typ = Some("secevent+jwt");
    issuer.offer(1, issuer.key.sign(&issuer.set_claims(1, DISABLED, "pgc_1"), typ));
    // Forged: the issuer's kid, another key.
    issuer.offer(2, stranger.sign(&issuer.set_claims(2, DISABLED, "pgc_2"), typ));
    issuer.offer(3, unsigned(&issuer.set_claims(3, DISABLED, "pgc_3")));
    issuer.offer(4, unpublished.sign(&issuer.set_claims(4, DISABLED, "pgc_4"), typ));
    let mut elsewhere = issuer.set_claims(5, DISABLED, "pgc_5");
    elsewhere["iss"] = json!("https://elsewhere.example");
    issuer.offer(5, issuer.key.sign(&elsewhere, typ));
    // The issuer's key, but an access token's type.
    issuer.offer(6, issuer.key.sign(&issuer.set_claims(6, DISABLED, "pgc_6"), Some("at+jwt")));

    let follower = authorizer.revocation().unwrap().clone();
    until(Duration::from_secs(5), "the first event applied", || follower.stats().events_applied >= 1).await;
    until(Duration::from_secs(5), "five SETs refused", || follower.stats().sets_refused >= 5).await;
    assert_eq!(allowed(&authorizer, &tokens[0]).await, Err(Rejection::InvalidToken), "a cached token, refused");
    for token in &tokens[1..] {
        assert_eq!(allowed(&authorizer, token).await, Ok(()), "a bad SET changes nothing");
    }
    let stats = follower.stats();
    assert_eq!((stats.events_applied, stats.last_seq, stats.disabled_clients), (1, 1, 1), "{stats:?}");
    assert!(stats.requests_refused >= 1);
    let acked_first = || issuer.stream.acked.lock().unwrap().contains(&format!("1.{RECEIVER}"));
    until(Duration::from_secs(5), "the good SET acknowledged", acked_first).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let acked = issuer.stream.acked.lock().unwrap().clone();
    assert_eq!(acked, HashSet::from([format!("1.{RECEIVER}")]), "only the good SET is acknowledged");
    let scopes = issuer.stream.token_scopes.lock().unwrap().clone();
    assert!(scopes.iter().all(|body| body.contains("scope=authz.events.read")), "{scopes:?}");

    // A good event after a hole: applied, and the gap counted.
    issuer.stream.pending.lock().unwrap().clear();
    issuer.offer(8, issuer.key.sign(&issuer.set_claims(8, ENABLED, "pgc_1"), typ));
    until(Duration::from_secs(5), "the enable applied", || follower.stats().last_seq == 8).await;
    assert_eq!(allowed(&authorizer, &tokens[0]).await, Ok(()));
    assert_eq!(follower.stats().sequence_gaps, 1);
}

#[tokio::test]
async fn catching_up_holds_requests_within_its_bound_then_the_stale_policy_decides() {
    let issuer = Issuer::start().await;
    issuer.stream.down.store(true, Ordering::SeqCst);
    let token = issuer.access_token("pgc_1");
    let (authorizer, _task) = issuer.authorizer(|config| {
        config.startup = StartupPolicy::CatchUp { bound: Duration::from_millis(600) };
        config.stale_after = Duration::from_secs(60);
        config.max_backoff = Duration::from_millis(50);
    });
    let follower = authorizer.revocation().unwrap().clone();
    assert!(!follower.wait_ready(Duration::from_millis(100)).await);
    assert_eq!(allowed(&authorizer, &token).await, Err(Rejection::Unavailable), "not caught up yet");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(allowed(&authorizer, &token).await, Ok(()), "past the bound, not yet stale: served");
    assert!(follower.stats().poll_failures > 0);
    issuer.stream.down.store(false, Ordering::SeqCst);
    assert!(follower.wait_ready(Duration::from_secs(5)).await);

    // Refusing when stale: the stream answers, then stops.
    let (strict, _task) = issuer.authorizer(|config| {
        config.stale_after = Duration::from_millis(300);
        config.when_stale = StalePolicy::Refuse;
        config.max_backoff = Duration::from_millis(50);
    });
    let follower = strict.revocation().unwrap().clone();
    assert!(follower.wait_ready(Duration::from_secs(5)).await);
    assert_eq!(allowed(&strict, &token).await, Ok(()));
    issuer.stream.down.store(true, Ordering::SeqCst);
    until(Duration::from_secs(5), "stale", || follower.stats().stale).await;
    assert_eq!(allowed(&strict, &token).await, Err(Rejection::Unavailable));
    issuer.stream.down.store(false, Ordering::SeqCst);
    until(Duration::from_secs(5), "fresh again", || !follower.stats().stale).await;
    assert_eq!(allowed(&strict, &token).await, Ok(()));
}
