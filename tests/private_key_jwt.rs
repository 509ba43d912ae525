//! `private_key_jwt` (RFC 7523): clients that authenticate with a key they keep, registered inline or by
//! `jwks_uri`, each assertion once; every bad assertion is `401 invalid_client` with its reason audited.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::assertions::{
    assertion_claims, jwks, last_token_reason, now, token_with_assertion, KeyServer, KeyServerAnswer, PartnerKey,
};
use common::*;
use reqwest::Method;
use serde_json::json;

/// Partner `acme` with `orders.read`, and the operator's admin token.
async fn acme(server: &TestServer) -> String {
    server.seed("acme").role(&["orders.read"]).create();
    server.operator().await.1
}

/// A client of `acme` registered through the admin API with `registration` merged in; its id.
async fn register(server: &TestServer, admin: &str, registration: serde_json::Value) -> (String, serde_json::Value) {
    let mut body = json!({"partner_id": "acme", "name": "keyed", "scopes": ["orders.read"]});
    body.as_object_mut().unwrap().extend(registration.as_object().unwrap().clone());
    let created = admin_json(server, admin, Method::POST, "/clients", body).await.expect_json(201);
    (created["client"]["id"].as_str().unwrap().to_string(), created)
}

/// A key-only client of `acme` with `keys`; its id.
async fn keyed(server: &TestServer, admin: &str, keys: &[&PartnerKey]) -> String {
    register(server, admin, json!({"token_endpoint_auth_methods": ["private_key_jwt"], "jwks": jwks(keys)})).await.0
}

async fn refused(server: &TestServer, assertion: &str, reason: &str) {
    let reply = token_with_assertion(server, assertion).await;
    reply.expect_oauth_error(401, "invalid_client");
    assert_eq!(last_token_reason(server).as_deref(), Some(reason), "{}", reply.text);
}

#[tokio::test]
async fn a_key_only_client_gets_tokens_and_each_assertion_works_once() {
    let server = TestServer::start().await;
    let admin = acme(&server).await;
    let (es, ed) = (PartnerKey::es256("es-1"), PartnerKey::ed25519("ed-1"));
    let (id, created) = register(
        &server,
        &admin,
        json!({"token_endpoint_auth_methods": ["private_key_jwt"], "jwks": jwks(&[&es, &ed])}),
    )
    .await;
    assert!(created.get("secret").is_none(), "a key-only client gets no secret: {created}");
    assert_eq!(created["client"]["token_endpoint_auth_methods"], json!(["private_key_jwt"]));
    assert_eq!(created["client"]["jwks"]["keys"][1]["kid"], "ed-1");

    for key in [&es, &ed] {
        let assertion = key.sign(&assertion_claims(&server, &id));
        let body = token_with_assertion(&server, &assertion).await.expect_json(200);
        let claims = server.verify(body["access_token"].as_str().unwrap(), &server.settings.default_audience).await;
        assert_eq!((claims["client_id"].as_str(), claims["scope"].as_str()), (Some(id.as_str()), Some("orders.read")));
        assert!(!claims.contains_key("secret_id"), "no secret obtained it");
        refused(&server, &assertion, "assertion_replayed").await;
    }
    let granted = audit_rows(&server).into_iter().filter(|r| {
        r.event_type == "token.request" && r.outcome == "success" && r.client_id.as_deref() == Some(id.as_str())
    });
    assert_eq!(granted.count(), 2);

    // The issuer itself is an accepted audience (what openid-client sends), as is a list of only ours.
    let mut to_issuer = assertion_claims(&server, &id);
    to_issuer["aud"] = json!(server.settings.issuer);
    token_with_assertion(&server, &es.sign(&to_issuer)).await.expect_json(200);
    let mut both = assertion_claims(&server, &id);
    both["aud"] = json!([server.settings.issuer, format!("{}/oauth2/token", server.settings.issuer)]);
    token_with_assertion(&server, &es.sign(&both)).await.expect_json(200);
    server.stop().await;
}

#[tokio::test]
async fn the_registered_methods_decide_what_a_client_may_use() {
    let server = TestServer::start().await;
    let admin = acme(&server).await;
    let client = server.client_of("acme").scopes(&["orders.read"]).create();
    let (id, secret) = (client.client.id.clone(), client.secret.secret.expose().to_string());
    let key = PartnerKey::es256("k1");
    // A secret client has no keys: an assertion is refused.
    refused(&server, &key.sign(&assertion_claims(&server, &id)), "auth_method_not_allowed").await;

    // During a migration both ways work; then the secret methods are taken away.
    let path = format!("/clients/{id}");
    let both = json!({"token_endpoint_auth_methods": ["client_secret_post", "private_key_jwt"], "jwks": jwks(&[&key])});
    let updated = admin_json(&server, &admin, Method::PATCH, &path, both).await.expect_json(200);
    assert_eq!(updated["token_endpoint_auth_methods"], json!(["client_secret_post", "private_key_jwt"]));
    token_with_assertion(&server, &key.sign(&assertion_claims(&server, &id))).await.expect_json(200);
    fetch_token(&server, oauth2::AuthType::RequestBody, &id, &secret, &[], None).await.expect("post still works");
    let header = basic_auth(&id, &secret);
    let basic =
        post_form(&server, "/oauth2/token", "grant_type=client_credentials", &[("authorization", &header)]).await;
    Reply::from(basic).await.expect_oauth_error(401, "invalid_client");
    assert_eq!(last_token_reason(&server).as_deref(), Some("auth_method_not_allowed"));

    let only_keys = json!({"token_endpoint_auth_methods": ["private_key_jwt"]});
    admin_json(&server, &admin, Method::PATCH, &path, only_keys).await.expect_json(200);
    assert!(fetch_token(&server, oauth2::AuthType::RequestBody, &id, &secret, &[], None).await.is_err());
    assert_eq!(last_token_reason(&server).as_deref(), Some("auth_method_not_allowed"));

    // Registrations that cannot work are refused with a problem.
    for (body, field) in [
        (json!({"jwks": null}), "keys are required"),
        (json!({"token_endpoint_auth_methods": []}), "no method"),
        (json!({"token_endpoint_auth_methods": ["client_secret_jwt"]}), "unknown method"),
        (json!({"jwks": {"keys": [{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}]}}), "a symmetric key"),
        (json!({"jwks": {"keys": [key.jwk(), key.jwk()]}}), "a kid twice"),
    ] {
        let reply = admin_json(&server, &admin, Method::PATCH, &path, body).await;
        assert_eq!(reply.status, 400, "{field}: {}", reply.text);
        assert!(reply.json()["error"].is_string(), "{field}: {}", reply.text);
    }
    let mut private = key.jwk();
    private["d"] = json!("AAAA");
    let reply = admin_json(&server, &admin, Method::PATCH, &path, json!({"jwks": {"keys": [private]}})).await;
    reply.expect_problem(400, "invalid_input");
    server.stop().await;
}

#[tokio::test]
async fn every_bad_assertion_is_invalid_client_with_its_reason() {
    let server = TestServer::start().await;
    let admin = acme(&server).await;
    let (key, other) = (PartnerKey::es256("k1"), PartnerKey::es256("k2"));
    let id = keyed(&server, &admin, &[&key, &other]).await;
    let claims = || assertion_claims(&server, &id);
    let with = |name: &str, value: serde_json::Value| {
        let mut claims = claims();
        claims[name] = value;
        key.sign(&claims)
    };
    let without = |name: &str| {
        let mut claims = claims();
        claims.as_object_mut().unwrap().remove(name);
        key.sign(&claims)
    };
    let unsigned = |header: serde_json::Value| {
        format!("{}.{}.", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims().to_string()))
    };
    let mut hmac_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hmac_header.kid = Some("k1".into());
    let public_as_secret = jsonwebtoken::EncodingKey::from_secret(key.jwk().to_string().as_bytes());
    let hmac = jsonwebtoken::encode(&hmac_header, &claims(), &public_as_secret).unwrap();
    let impostor = PartnerKey::es256("k1");

    let cases = [
        (with("aud", json!("https://elsewhere.example")), "assertion_audience_mismatch"),
        (with("aud", json!([server.settings.issuer, "https://elsewhere.example"])), "assertion_audience_mismatch"),
        (with("exp", json!(now() - 120)), "assertion_expired"),
        (with("exp", json!(now() + 2 * 3600)), "assertion_lifetime_too_long"),
        (with("nbf", json!(now() + 600)), "assertion_not_yet_valid"),
        (with("iss", json!("pgc_someoneelse0000000000000")), "assertion_issuer_mismatch"),
        (without("exp"), "assertion_claim_missing"),
        (without("jti"), "assertion_claim_missing"),
        (unsigned(json!({"alg": "none", "kid": "k1"})), "assertion_algorithm_not_allowed"),
        (hmac, "assertion_algorithm_not_allowed"),
        (key.sign_as("k9", &claims()), "unknown_key"),
        (impostor.sign(&claims()), "assertion_signature_invalid"),
        ("a.b.c".to_string(), "malformed_assertion"),
    ];
    for (assertion, reason) in &cases {
        refused(&server, assertion, reason).await;
    }
    // Nothing failed as anything but invalid_client: no 5xx, no other code.
    let failures =
        audit_rows(&server).into_iter().filter(|r| r.event_type == "token.request" && r.outcome != "success");
    assert_eq!(failures.count(), cases.len());

    // The key removed from the client's JWKS no longer works; the one kept does.
    let path = format!("/clients/{id}");
    admin_json(&server, &admin, Method::PATCH, &path, json!({"jwks": jwks(&[&other])})).await.expect_json(200);
    refused(&server, &key.sign(&claims()), "unknown_key").await;
    token_with_assertion(&server, &other.sign(&claims())).await.expect_json(200);

    // An assertion with Basic credentials or a client_secret too is two methods at once; a client_id sent along
    // must be the one the assertion names.
    let assertion = other.sign(&claims());
    let body = form(&[
        ("grant_type", "client_credentials"),
        ("client_assertion_type", common::assertions::JWT_BEARER),
        ("client_assertion", &assertion),
    ]);
    let reply = post_form(&server, "/oauth2/token", &body, &[("authorization", &basic_auth(&id, "x"))]).await;
    Reply::from(reply).await.expect_oauth_error(400, "invalid_request");
    let reply = post_form(&server, "/oauth2/token", &format!("{body}&client_id=pgc_other"), &[]).await;
    Reply::from(reply).await.expect_oauth_error(401, "invalid_client");
    let reply = post_form(&server, "/oauth2/token", &body.replace("jwt-bearer", "saml2-bearer"), &[]).await;
    Reply::from(reply).await.expect_oauth_error(401, "invalid_client");
    server.stop().await;
}

#[tokio::test]
async fn jwks_uri_keys_are_cached_and_refreshed_once_on_an_unknown_kid() {
    let server = TestServer::start().await;
    let admin = acme(&server).await;
    let (first, second, third) = (PartnerKey::es256("2026-1"), PartnerKey::es256("2026-2"), PartnerKey::es256("x"));
    let keys = KeyServer::start(KeyServer::serving(&jwks(&[&first]))).await;
    let registration = json!({"token_endpoint_auth_methods": ["private_key_jwt"], "jwks_uri": keys.url});
    let (id, created) = register(&server, &admin, registration).await;
    assert_eq!(created["client"]["jwks_uri"], keys.url.as_str());

    for _ in 0..3 {
        token_with_assertion(&server, &first.sign(&assertion_claims(&server, &id))).await.expect_json(200);
    }
    assert_eq!(keys.hits(), 1, "fetched once, then cached (max-age=300)");

    // The partner rotates: the new kid is unknown to the cache, which is fetched again once.
    keys.set(KeyServer::serving(&jwks(&[&second])));
    token_with_assertion(&server, &second.sign(&assertion_claims(&server, &id))).await.expect_json(200);
    assert_eq!(keys.hits(), 2);
    // Another unknown kid right after: no second fetch within a few seconds.
    refused(&server, &third.sign(&assertion_claims(&server, &id)), "unknown_key").await;
    refused(&server, &first.sign(&assertion_claims(&server, &id)), "unknown_key").await;
    assert_eq!(keys.hits(), 2);
    server.stop().await;
}

#[tokio::test]
async fn misbehaving_key_servers_and_private_addresses_are_refused() {
    let server = TestServer::start().await;
    let admin = acme(&server).await;
    let key = PartnerKey::es256("k1");
    let keys = KeyServer::start(KeyServerAnswer::Hang).await;
    let registration = json!({"token_endpoint_auth_methods": ["private_key_jwt"], "jwks_uri": keys.url});
    let (id, _) = register(&server, &admin, registration).await;

    let started = std::time::Instant::now();
    refused(&server, &key.sign(&assertion_claims(&server, &id)), "jwks_uri_timeout").await;
    assert!(started.elapsed() < std::time::Duration::from_millis(1800), "within the request deadline");
    keys.set(KeyServerAnswer::Redirect(keys.url.replace("jwks.json", "elsewhere.json")));
    refused(&server, &key.sign(&assertion_claims(&server, &id)), "jwks_uri_redirect").await;
    keys.set(KeyServerAnswer::Huge(100 * 1024));
    refused(&server, &key.sign(&assertion_claims(&server, &id)), "jwks_uri_too_large").await;
    keys.set(KeyServerAnswer::Json { body: "not json".into(), cache_control: None });
    refused(&server, &key.sign(&assertion_claims(&server, &id)), "jwks_uri_unavailable").await;
    keys.set(KeyServer::serving(&jwks(&[&key])));
    token_with_assertion(&server, &key.sign(&assertion_claims(&server, &id))).await.expect_json(200);

    // Without PARTNERGATE_ALLOW_PRIVATE_KEY_URLS a loopback key server is never asked.
    let strict = TestServer::start_beside_with(&server, |config| config.allow_private_key_urls = false).await;
    let hits = keys.hits();
    refused(&strict, &key.sign(&assertion_claims(&server, &id)), "jwks_uri_private_address").await;
    assert_eq!(keys.hits(), hits);
    strict.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn an_assertion_is_single_use_across_instances_on_one_database() {
    let first = TestServer::start().await;
    let admin = acme(&first).await;
    let second = TestServer::start_beside(&first).await;
    let key = PartnerKey::es256("k1");
    let id = keyed(&first, &admin, &[&key]).await;
    let assertion = key.sign(&assertion_claims(&first, &id));
    token_with_assertion(&first, &assertion).await.expect_json(200);
    refused(&second, &assertion, "assertion_replayed").await;
    // And the other way round, with a fresh one sent to both at once: exactly one token.
    let assertion = key.sign(&assertion_claims(&first, &id));
    let (a, b) = tokio::join!(token_with_assertion(&first, &assertion), token_with_assertion(&second, &assertion));
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [200, 401], "{} / {}", a.text, b.text);
    second.stop().await;
    first.stop().await;
}

#[tokio::test]
async fn a_partner_admin_registers_keys_only_for_its_own_clients() {
    let server = TestServer::start().await;
    let (_, acme_admin) = server.partner_admin("acme").ceiling(&["orders.read"]).create().await;
    server.seed("globex").role(&["orders.read"]).create();
    let foreign = server.client_of("globex").scopes(&["orders.read"]).create();
    let key = PartnerKey::es256("k1");
    let keyed = json!({"token_endpoint_auth_methods": ["private_key_jwt"], "jwks": jwks(&[&key])});

    let path = format!("/clients/{}", foreign.client.id);
    admin_json(&server, &acme_admin, Method::PATCH, &path, keyed.clone()).await.expect_problem(404, "not_found");
    let mut foreign_create = keyed.clone();
    foreign_create["partner_id"] = json!("globex");
    foreign_create["name"] = json!("sneaky");
    admin_json(&server, &acme_admin, Method::POST, "/clients", foreign_create).await.expect_problem(404, "not_found");

    let mut own = keyed.clone();
    own["name"] = json!("own keyed client");
    let created = admin_json(&server, &acme_admin, Method::POST, "/clients", own).await.expect_json(201);
    let id = created["client"]["id"].as_str().unwrap();
    token_with_assertion(&server, &key.sign(&assertion_claims(&server, id))).await.expect_json(200);
    server.stop().await;
}

#[tokio::test]
async fn the_cli_registers_keys_from_a_file_or_a_url() {
    let server = TestServer::start().await;
    server.seed("acme").role(&["orders.read"]).create();
    let key = PartnerKey::es256("cli-1");
    let dir = tempfile::tempdir().unwrap();
    let jwks_file = dir.path().join("jwks.json");
    std::fs::write(&jwks_file, jwks(&[&key]).to_string()).unwrap();

    let created = partnergate(
        &server,
        &[
            "client",
            "create",
            "--partner",
            "acme",
            "--name",
            "keyed",
            "--scope",
            "orders.read",
            "--auth-method",
            "private_key_jwt",
            "--jwks",
            jwks_file.to_str().unwrap(),
        ],
    );
    assert!(created.get("secret").is_none(), "{created}");
    let id = created["client"]["id"].as_str().unwrap().to_string();
    assert_eq!(created["client"]["jwks"]["keys"][0]["kid"], "cli-1");
    // The CLI wrote behind the server's back: the change feed tells it within a second.
    until(std::time::Duration::from_secs(5), "the server knows the new client", || async {
        token_with_assertion(&server, &key.sign(&assertion_claims(&server, &id))).await.status == 200
    })
    .await;

    let rotated = PartnerKey::es256("cli-2");
    let keys = KeyServer::start(KeyServer::serving(&jwks(&[&rotated]))).await;
    let updated = partnergate(&server, &["client", "update", &id, "--jwks-uri", &keys.url]);
    assert_eq!(updated["jwks_uri"], keys.url.as_str());
    assert!(updated["jwks"].is_null(), "a URL replaces the inline keys: {updated}");
    until(std::time::Duration::from_secs(5), "the rotated key works", || async {
        token_with_assertion(&server, &rotated.sign(&assertion_claims(&server, &id))).await.status == 200
    })
    .await;

    let output = run_cli(&server, &["client", "update", &id, "--auth-method", "client_secret_jwt"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("private_key_jwt"), "names the methods");
    server.stop().await;
}

#[tokio::test]
async fn the_token_command_authenticates_with_a_private_key_file() {
    let server = TestServer::start().await;
    let admin = acme(&server).await;
    let (es, ed) = (PartnerKey::es256("ops-2026"), PartnerKey::ed25519("ops-ed"));
    let id = keyed(&server, &admin, &[&es, &ed]).await;
    let dir = tempfile::tempdir().unwrap();
    for key in [&es, &ed] {
        let pem = dir.path().join(format!("{}.pem", key.kid));
        std::fs::write(&pem, key.private_pem()).unwrap();
        let args = [
            "--json",
            "token",
            "--url",
            &server.base_url,
            "--client-id",
            &id,
            "--private-key",
            pem.to_str().unwrap(),
            "--key-id",
            &key.kid,
            "--scope",
            "orders.read",
        ];
        let printed = run_command_async(&partnergate_binary(), &args).await.json();
        assert_eq!(printed["claims"]["client_id"], id.as_str(), "{printed}");
        assert_eq!(printed["claims"]["scope"], "orders.read");
    }
    // A kid the client did not register: the command fails and says so, the audit says why.
    let pem = dir.path().join("ops-2026.pem");
    let args = [
        "token",
        "--url",
        &server.base_url,
        "--client-id",
        &id,
        "--private-key",
        pem.to_str().unwrap(),
        "--key-id",
        "nope",
    ];
    let run = run_command_async(&partnergate_binary(), &args).await;
    assert!(run.failed().contains("invalid_client"), "{}", run.stderr);
    assert_eq!(last_token_reason(&server).as_deref(), Some("unknown_key"));
    server.stop().await;
}
