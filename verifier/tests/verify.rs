//! The verifier against a small local issuer: RFC 9068's checks, the JWKS cache (single flight, minimum
//! interval, last good keys while the issuer is down), the cache of verified tokens, and the route policy.

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use partnergate_verifier::clock::{Clock, ManualClock, SystemClock};
use partnergate_verifier::*;
use serde_json::{json, Value};
use support::*;

struct Setup {
    issuer: FakeIssuer,
    clock: Arc<ManualClock>,
    verifier: Verifier,
}

impl Setup {
    async fn new() -> Self {
        let issuer = FakeIssuer::start().await;
        let clock = Arc::new(ManualClock::at(SystemClock.now()));
        let mut config = VerifierConfig::new(&issuer.url, "api");
        config.clock = clock.clone();
        config.leeway = Duration::from_secs(5);
        let verifier = Verifier::new(config);
        Setup { issuer, clock, verifier }
    }

    fn now(&self) -> u64 {
        self.clock.now().as_secs()
    }

    async fn verify(&self, token: &str) -> Result<Arc<Principal>, VerifyError> {
        self.verifier.verify(token).await
    }

    /// A good token's claims changed by `edit`, signed with the issuer's key.
    fn token_with(&self, edit: impl FnOnce(&mut Value)) -> String {
        let mut claims = self.issuer.claims(self.now(), 600);
        edit(&mut claims);
        self.issuer.key.sign(&claims, Some("at+jwt"))
    }
}

#[tokio::test]
async fn a_good_token_yields_its_principal_and_is_verified_once() {
    let setup = Setup::new().await;
    let token = setup.issuer.token(setup.now());
    let principal = setup.verify(&token).await.unwrap();
    assert_eq!(principal.partner_id, "acme");
    assert_eq!(principal.client_id, "pgc_1");
    assert_eq!(principal.scopes, vec!["orders.read", "orders.write"]);
    assert_eq!(principal.exp, setup.now() + 600);
    assert!(principal.jti.starts_with("jti-"));
    assert_eq!(setup.verify(&token).await.unwrap(), principal);
    let stats = setup.verifier.stats();
    assert_eq!((stats.verified, stats.cache_hits, stats.jwks_fetches, stats.tokens_cached), (1, 1, 1, 1));
}

#[tokio::test]
async fn only_access_token_types_are_accepted() {
    let setup = Setup::new().await;
    let claims = setup.issuer.claims(setup.now(), 600);
    for typ in ["at+jwt", "AT+JWT", "application/at+jwt", "Application/At+Jwt"] {
        assert!(setup.verify(&setup.issuer.key.sign(&claims, Some(typ))).await.is_ok(), "{typ}");
    }
    for typ in [None, Some("JWT"), Some(""), Some("at+jwt+x"), Some("application/jwt"), Some("application/")] {
        assert_eq!(setup.verify(&setup.issuer.key.sign(&claims, typ)).await, Err(VerifyError::WrongType), "{typ:?}");
    }
}

#[tokio::test]
async fn issuer_audience_and_required_claims_are_checked() {
    let setup = Setup::new().await;
    let ok = setup.token_with(|c| c["aud"] = json!(["other", "api"]));
    assert!(setup.verify(&ok).await.is_ok(), "aud as an array containing ours");
    for (what, edit) in [
        ("another issuer", Box::new(|c: &mut Value| c["iss"] = json!("https://evil.example")) as Box<dyn FnOnce(&mut Value)>),
        ("another audience", Box::new(|c: &mut Value| c["aud"] = json!("other"))),
        ("no audience", Box::new(|c: &mut Value| _ = c.as_object_mut().unwrap().remove("aud"))),
        ("no exp", Box::new(|c: &mut Value| _ = c.as_object_mut().unwrap().remove("exp"))),
        ("no client_id", Box::new(|c: &mut Value| _ = c.as_object_mut().unwrap().remove("client_id"))),
        ("no partner_id", Box::new(|c: &mut Value| _ = c.as_object_mut().unwrap().remove("partner_id"))),
        ("no scope", Box::new(|c: &mut Value| _ = c.as_object_mut().unwrap().remove("scope"))),
        ("no jti", Box::new(|c: &mut Value| _ = c.as_object_mut().unwrap().remove("jti"))),
        ("empty partner_id", Box::new(|c: &mut Value| c["partner_id"] = json!(""))),
        ("scope as a number", Box::new(|c: &mut Value| c["scope"] = json!(7))),
    ] {
        let token = setup.token_with(edit);
        assert!(setup.verify(&token).await.is_err(), "{what} was accepted");
    }
    assert_eq!(setup.verifier.stats().verified, 1);
}

#[tokio::test]
async fn expiry_and_not_before_follow_the_clock_with_leeway() {
    let setup = Setup::new().await;
    let now = setup.now();
    let token = setup.token_with(|c| c["exp"] = json!(now + 60));
    assert!(setup.verify(&token).await.is_ok());
    setup.clock.advance(Duration::from_secs(64));
    assert!(setup.verify(&token).await.is_ok(), "within the leeway (cached)");
    setup.clock.advance(Duration::from_secs(1));
    assert_eq!(setup.verify(&token).await, Err(VerifyError::Expired), "a cached token expires too");
    assert_eq!(setup.verify(&token).await, Err(VerifyError::Expired), "and on first sight");

    let now = setup.now();
    let early = setup.token_with(|c| c["nbf"] = json!(now + 10));
    assert_eq!(setup.verify(&early).await, Err(VerifyError::NotYetValid));
    setup.clock.advance(Duration::from_secs(5));
    assert!(setup.verify(&early).await.is_ok(), "nbf within the leeway");
}

#[tokio::test]
async fn the_algorithm_comes_from_the_key_not_the_token() {
    let setup = Setup::new().await;
    let claims = setup.issuer.claims(setup.now(), 600);
    // HS256 keyed with the public JWK's text: the classic confusion attack.
    let secret = serde_json::to_vec(&setup.issuer.key.jwk).unwrap();
    let header = Header { typ: Some("at+jwt".into()), kid: Some("k1".into()), ..Header::new(Algorithm::HS256) };
    let forged = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&secret)).unwrap();
    assert_eq!(setup.verify(&forged).await, Err(VerifyError::AlgorithmMismatch));
    // Another key under the issuer's kid: a bad signature.
    let impostor = TestKey::generate("k1");
    assert!(matches!(setup.verify(&impostor.sign(&claims, Some("at+jwt"))).await, Err(VerifyError::Rejected(_))));
    // No kid, garbage.
    let header = Header { typ: Some("at+jwt".into()), ..Header::new(Algorithm::ES256) };
    let no_kid = jsonwebtoken::encode(&header, &claims, &setup.issuer.key.encoding).unwrap();
    assert_eq!(setup.verify(&no_kid).await, Err(VerifyError::NoKeyId));
    assert_eq!(setup.verify("a.b.c").await, Err(VerifyError::Malformed));
}

#[tokio::test]
async fn an_unknown_kid_refreshes_once_for_all_waiters_and_then_not_before_the_interval() {
    let setup = Setup::new().await;
    assert!(setup.verify(&setup.issuer.token(setup.now())).await.is_ok());
    assert_eq!(setup.issuer.state.jwks_hits.load(Ordering::SeqCst), 1);

    let rotated = TestKey::generate("k2");
    setup.issuer.publish(&rotated);
    setup.issuer.state.jwks_delay_ms.store(300, Ordering::SeqCst);
    setup.clock.advance(Duration::from_secs(6));
    let waiters: Vec<_> = (0..20)
        .map(|n| {
            let verifier = setup.verifier.clone();
            let mut claims = setup.issuer.claims(setup.now(), 600);
            claims["jti"] = json!(format!("rotated-{n}"));
            let token = rotated.sign(&claims, Some("at+jwt"));
            tokio::spawn(async move { verifier.verify(&token).await })
        })
        .collect();
    // While the fetch is under way, known keys still verify at once: no lock is held across it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    let mut claims = setup.issuer.claims(setup.now(), 600);
    claims["jti"] = json!("during-the-fetch");
    assert!(setup.verify(&setup.issuer.key.sign(&claims, Some("at+jwt"))).await.is_ok());
    assert!(started.elapsed() < Duration::from_millis(150), "waited {:?}", started.elapsed());
    for waiter in waiters {
        assert!(waiter.await.unwrap().is_ok());
    }
    assert_eq!(setup.issuer.state.jwks_hits.load(Ordering::SeqCst), 2, "one fetch for twenty waiters");

    // A kid that is nowhere: refused, and the next unknown kid within the interval fetches nothing.
    setup.issuer.state.jwks_delay_ms.store(0, Ordering::SeqCst);
    setup.clock.advance(Duration::from_secs(6));
    let stranger = TestKey::generate("k3");
    let claims = setup.issuer.claims(setup.now(), 600);
    assert_eq!(setup.verify(&stranger.sign(&claims, Some("at+jwt"))).await, Err(VerifyError::UnknownKey));
    assert_eq!(setup.issuer.state.jwks_hits.load(Ordering::SeqCst), 3);
    setup.issuer.publish(&stranger);
    assert_eq!(setup.verify(&stranger.sign(&claims, Some("at+jwt"))).await, Err(VerifyError::UnknownKey));
    assert_eq!(setup.issuer.state.jwks_hits.load(Ordering::SeqCst), 3, "within the minimum interval");
    setup.clock.advance(Duration::from_secs(5));
    assert!(setup.verify(&stranger.sign(&claims, Some("at+jwt"))).await.is_ok());
    assert_eq!(setup.issuer.state.jwks_hits.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn the_last_good_keys_serve_while_the_issuer_is_down_and_stale_keys_refresh_in_the_background() {
    let setup = Setup::new().await;
    setup.issuer.state.max_age.store(60, Ordering::SeqCst);
    assert!(setup.verify(&setup.issuer.token(setup.now())).await.is_ok());
    setup.issuer.state.down.store(true, Ordering::SeqCst);
    setup.clock.advance(Duration::from_secs(61));
    assert!(setup.verify(&setup.issuer.token(setup.now())).await.is_ok(), "stale keys still verify");
    until(Duration::from_secs(5), "the background refresh failed", || setup.verifier.stats().serving_stale_jwks).await;
    assert_eq!(setup.verifier.stats().jwks_fetch_failures, 1);
    setup.clock.advance(Duration::from_secs(1));
    assert!(setup.verify(&setup.issuer.token(setup.now())).await.is_ok(), "and again, without a new fetch");
    assert_eq!(setup.issuer.state.jwks_hits.load(Ordering::SeqCst), 2, "not before the minimum interval");

    setup.issuer.state.down.store(false, Ordering::SeqCst);
    setup.clock.advance(Duration::from_secs(5));
    assert!(setup.verify(&setup.issuer.token(setup.now())).await.is_ok());
    until(Duration::from_secs(5), "the issuer is back", || !setup.verifier.stats().serving_stale_jwks).await;
    assert_eq!(setup.issuer.state.jwks_hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn with_no_keys_and_no_issuer_requests_are_unavailable_not_unauthorized() {
    let setup = Setup::new().await;
    setup.issuer.state.down.store(true, Ordering::SeqCst);
    let authorizer = Authorizer::new(setup.verifier.clone(), RoutePolicy::new());
    let token = setup.issuer.token(setup.now());
    let refused = authorizer.authorize("GET", Some("/x"), Ok(&token)).await.unwrap_err();
    assert_eq!(refused.rejection, Rejection::Unavailable);
    assert_eq!(refused.rejection.status(), 503);
}

#[tokio::test]
async fn the_route_policy_decides_after_the_token() {
    let setup = Setup::new().await;
    let policy = RoutePolicy::new()
        .route("GET", "/orders", ["orders.read"])
        .route("DELETE", "/orders/{id}", ["orders.admin", "orders.write"])
        .route("GET", "/whoami", Vec::<String>::new())
        .public("GET", "/health")
        .deny_by_default(true);
    let authorizer = Authorizer::new(setup.verifier.clone(), policy);
    let token = setup.issuer.token(setup.now());
    let check = |method: &'static str, route: Option<&'static str>, token: Result<&'static str, Rejection>| {
        let authorizer = authorizer.clone();
        async move { authorizer.authorize(method, route, token).await.map(|p| p.map(|p| p.partner_id.clone())) }
    };
    let token: &'static str = Box::leak(token.into_boxed_str());
    assert_eq!(check("GET", Some("/orders"), Ok(token)).await.unwrap().as_deref(), Some("acme"));
    assert_eq!(check("GET", Some("/whoami"), Ok(token)).await.unwrap().as_deref(), Some("acme"));
    assert_eq!(check("GET", Some("/health"), Err(Rejection::Missing)).await.unwrap(), None);
    assert_eq!(check("GET", None, Ok(token)).await.unwrap().as_deref(), Some("acme"), "unmatched: the app's 404");
    let refused = check("DELETE", Some("/orders/{id}"), Ok(token)).await.unwrap_err();
    assert_eq!(refused.rejection, Rejection::InsufficientScope { scope: "orders.admin orders.write".into() });
    assert_eq!(refused.principal.unwrap().partner_id, "acme", "the caller is known for the usage record");
    let refused = check("POST", Some("/orders"), Ok(token)).await.unwrap_err();
    assert_eq!(refused.rejection, Rejection::InsufficientScope { scope: String::new() }, "deny by default");
    assert_eq!(check("GET", Some("/orders"), Err(Rejection::Missing)).await.unwrap_err().rejection, Rejection::Missing);
    assert_eq!(check("GET", None, Err(Rejection::Missing)).await.unwrap_err().rejection, Rejection::Missing);
    assert_eq!(check("GET", Some("/orders"), Ok("x.y.z")).await.unwrap_err().rejection, Rejection::InvalidToken);
}
