//! A small issuer for the crate's tests, served by axum on a loopback port: RFC 8414 metadata, a JWKS whose
//! keys, `max-age`, delay and availability the test controls, a token endpoint, and a request-log endpoint
//! that records what it receives and answers with the statuses the test scripts.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};

/// An ES256 key pair with its JWK.
pub struct TestKey {
    pub kid: String,
    pub encoding: EncodingKey,
    pub jwk: Value,
}

impl TestKey {
    pub fn generate(kid: &str) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let point = pair.public_key().as_ref();
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        TestKey { kid: kid.into(), encoding: EncodingKey::from_ec_der(pkcs8.as_ref()), jwk }
    }

    /// `claims` signed with this key, header `{"alg": "ES256", "typ", "kid"}`.
    pub fn sign(&self, claims: &Value, typ: Option<&str>) -> String {
        let header = Header { typ: typ.map(String::from), kid: Some(self.kid.clone()), ..Header::new(Algorithm::ES256) };
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

#[derive(Default)]
pub struct IssuerState {
    pub url: Mutex<String>,
    pub keys: Mutex<Vec<Value>>,
    pub max_age: AtomicUsize,
    pub jwks_delay_ms: AtomicUsize,
    pub down: AtomicBool,
    pub jwks_hits: AtomicUsize,
    pub token_hits: AtomicUsize,
    /// Statuses the request log answers, in order; 202 once they run out.
    pub report_statuses: Mutex<VecDeque<u16>>,
    /// (Authorization header, body) of each batch received.
    pub reports: Mutex<Vec<(String, Value)>>,
}

pub struct FakeIssuer {
    pub url: String,
    pub state: Arc<IssuerState>,
    pub key: TestKey,
}

impl FakeIssuer {
    pub async fn start() -> Self {
        let state = Arc::new(IssuerState::default());
        state.max_age.store(300, Ordering::SeqCst);
        let key = TestKey::generate("k1");
        state.keys.lock().unwrap().push(key.jwk.clone());
        let app = Router::new()
            .route("/.well-known/oauth-authorization-server", get(metadata))
            .route("/jwks", get(jwks))
            .route("/token", post(token))
            .route("/admin/v1/requests", post(requests))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        *state.url.lock().unwrap() = url.clone();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeIssuer { url, state, key }
    }

    pub fn publish(&self, key: &TestKey) {
        self.state.keys.lock().unwrap().push(key.jwk.clone());
    }

    /// Claims of a good token for audience `api` and partner `acme`, expiring `ttl` seconds after `now`.
    pub fn claims(&self, now: u64, ttl: u64) -> Value {
        json!({
            "iss": self.url, "aud": "api", "sub": "pgc_1", "client_id": "pgc_1", "partner_id": "acme",
            "scope": "orders.read orders.write", "jti": format!("jti-{now}-{ttl}"),
            "iat": now, "nbf": now, "exp": now + ttl,
        })
    }

    pub fn token(&self, now: u64) -> String {
        self.key.sign(&self.claims(now, 600), Some("at+jwt"))
    }
}

async fn metadata(State(state): State<Arc<IssuerState>>) -> Json<Value> {
    let url = state.url.lock().unwrap().clone();
    Json(json!({"issuer": url, "jwks_uri": format!("{url}/jwks"), "token_endpoint": format!("{url}/token")}))
}

async fn jwks(State(state): State<Arc<IssuerState>>) -> Response {
    let delay = state.jwks_delay_ms.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(delay as u64)).await;
    state.jwks_hits.fetch_add(1, Ordering::SeqCst);
    if state.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let keys = state.keys.lock().unwrap().clone();
    let cache_control = format!("public, max-age={}", state.max_age.load(Ordering::SeqCst));
    ([("cache-control", cache_control)], Json(json!({ "keys": keys }))).into_response()
}

async fn token(State(state): State<Arc<IssuerState>>, body: String) -> Response {
    let n = state.token_hits.fetch_add(1, Ordering::SeqCst);
    assert!(body.contains("scope=authz.usage.report") && body.contains("grant_type=client_credentials"), "{body}");
    Json(json!({"access_token": format!("report-token-{n}"), "token_type": "Bearer", "expires_in": 600}))
        .into_response()
}

async fn requests(State(state): State<Arc<IssuerState>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let authorization = headers.get("authorization").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    state.reports.lock().unwrap().push((authorization, body.clone()));
    let status = state.report_statuses.lock().unwrap().pop_front().unwrap_or(202);
    let accepted = body["records"].as_array().map_or(0, Vec::len);
    (StatusCode::from_u16(status).unwrap(), Json(json!({"accepted": accepted}))).into_response()
}

/// Waits until `probe` holds, at most `limit`.
pub async fn until(limit: Duration, what: &str, mut probe: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !probe() {
        assert!(start.elapsed() < limit, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
