//! A property test: whatever the `Authorization` header holds, a protected route answers `401` with an RFC
//! 6750 challenge, through the actix middleware and through the tower layer, and nothing panics.

mod support;

use actix_web::http::header::HeaderValue;
use actix_web::{test, web, App, HttpResponse};
use axum::routing::get;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use partnergate_verifier::actix::RequireToken;
use partnergate_verifier::tower::AuthorizeLayer;
use partnergate_verifier::*;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use support::*;
use tower_service::Service;

fn b64(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

/// Header values: random bytes, random `Bearer` tokens, three random base64url segments, and JWS-shaped
/// tokens with hostile headers (`alg: none`, unknown `kid`, HMAC) around the issuer's real claims.
fn authorization(issuer: &FakeIssuer) -> BoxedStrategy<Vec<u8>> {
    let claims = issuer.claims(1, 4_000_000_000);
    let signed = issuer.token(1);
    let signature = signed.rsplit('.').next().unwrap().to_string();
    let claims_b64 = b64(&claims.to_string());
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        "[ -~]{0,200}".prop_map(|s| format!("Bearer {s}").into_bytes()),
        "(?i)(bearer|basic|token|)( |\t){0,3}[A-Za-z0-9._~+/=-]{0,120}".prop_map(String::into_bytes),
        ("[A-Za-z0-9_-]{0,60}", "[A-Za-z0-9_-]{0,200}", "[A-Za-z0-9_-]{0,90}")
            .prop_map(|(a, b, c)| format!("Bearer {a}.{b}.{c}").into_bytes()),
        (
            prop_oneof![Just("none"), Just("HS256"), Just("ES256"), Just("RS256"), Just("ES384"), Just("EdDSA")],
            prop_oneof![Just(None), Just(Some("at+jwt")), Just(Some("JWT"))],
            prop_oneof![Just(None), Just(Some("k1")), Just(Some("k9")), Just(Some(""))],
            prop_oneof![Just(String::new()), Just(signature.clone()), "[A-Za-z0-9_-]{0,90}"],
        )
            .prop_map(move |(alg, typ, kid, signature)| {
                let header = serde_json::json!({"alg": alg, "typ": typ, "kid": kid});
                format!("Bearer {}.{}.{}", b64(&header.to_string()), claims_b64, signature).into_bytes()
            }),
    ]
    .boxed()
}

fn authorizer(issuer: &FakeIssuer) -> Authorizer {
    let policy = RoutePolicy::new().route("GET", "/orders", ["orders.read"]).deny_by_default(true);
    Authorizer::new(Verifier::new(VerifierConfig::new(&issuer.url, "api")), policy)
}

fn samples(strategy: &BoxedStrategy<Vec<u8>>, cases: usize) -> Vec<Vec<u8>> {
    let mut runner = TestRunner::new(Config { cases: cases as u32, ..Config::default() });
    let mut values: Vec<Vec<u8>> =
        (0..cases).map(|_| strategy.new_tree(&mut runner).unwrap().current()).collect();
    // Values a header can carry at all (no control characters but tab).
    values.retain(|value| HeaderValue::from_bytes(value).is_ok());
    values
}

#[actix_web::test]
async fn malformed_tokens_and_headers_get_401_from_the_actix_middleware() {
    let issuer = FakeIssuer::start().await;
    let app = test::init_service(
        App::new()
            .wrap(RequireToken::new(authorizer(&issuer)))
            .route("/orders", web::get().to(|_: Principal| async { HttpResponse::Ok().finish() })),
    )
    .await;
    let good = issuer.token(support_now());
    let ok = test::TestRequest::get().uri("/orders").insert_header(("authorization", format!("Bearer {good}")));
    assert_eq!(test::call_service(&app, ok.to_request()).await.status(), 200, "the good token passes");

    let values = samples(&authorization(&issuer), 1_500);
    assert!(values.len() > 1_000, "{} usable values", values.len());
    for value in values {
        let request = test::TestRequest::get()
            .uri("/orders")
            .insert_header(("authorization", HeaderValue::from_bytes(&value).unwrap()))
            .to_request();
        let response = test::call_service(&app, request).await;
        assert_eq!(response.status(), 401, "{:?}", String::from_utf8_lossy(&value));
        let challenge = response.headers().get("www-authenticate").unwrap().to_str().unwrap();
        assert!(challenge.starts_with("Bearer realm=\"api\""), "{challenge}");
        assert!(!challenge.contains("error_description"), "{challenge}");
    }
}

#[tokio::test]
async fn malformed_tokens_and_headers_get_401_from_the_tower_layer() {
    let issuer = FakeIssuer::start().await;
    fn matched_path(extensions: &http::Extensions) -> Option<&str> {
        extensions.get::<axum::extract::MatchedPath>().map(|path| path.as_str())
    }
    let mut app = axum::Router::new()
        .route("/orders", get(|| async { "ok" }))
        .layer(AuthorizeLayer::new(authorizer(&issuer), matched_path));
    for value in samples(&authorization(&issuer), 1_500) {
        let request = http::Request::get("/orders")
            .header("authorization", HeaderValue::from_bytes(&value).unwrap().as_bytes())
            .body(axum::body::Body::empty())
            .unwrap();
        let response = app.call(request).await.unwrap();
        assert_eq!(response.status(), 401, "{:?}", String::from_utf8_lossy(&value));
        assert!(response.headers().contains_key("www-authenticate"));
    }
}

fn support_now() -> u64 {
    use partnergate_verifier::clock::{Clock, SystemClock};
    SystemClock.now().as_secs()
}
