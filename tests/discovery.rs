//! Discovery and health: the JWKS, the RFC 8414 metadata (at both well-known paths), liveness and readiness.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::*;
use partnergate::registry::{scopes, Caller};
use serde_json::{json, Value};

/// RFC 7638: SHA-256 over the required members, in lexicographic order, no whitespace.
fn thumbprint(key: &Value) -> String {
    let kty = key["kty"].as_str().expect("kty");
    let members: &[&str] = match kty {
        "EC" => &["crv", "kty", "x", "y"],
        "OKP" => &["crv", "kty", "x"],
        "RSA" => &["e", "kty", "n"],
        other => panic!("unexpected kty {other}"),
    };
    let canonical = members
        .iter()
        .map(|m| format!("\"{m}\":\"{}\"", key[*m].as_str().unwrap_or_else(|| panic!("{m} in {key}"))))
        .collect::<Vec<_>>()
        .join(",");
    let digest = ring::digest::digest(&ring::digest::SHA256, format!("{{{canonical}}}").as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

async fn get(server: &TestServer, path: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = reqwest::get(server.url(path)).await.expect("GET");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.expect("JSON body");
    (status, headers, body)
}

#[actix_web::test]
async fn jwks_publishes_public_keys_only_with_kid_alg_and_use() {
    let server = TestServer::start().await;
    let (status, headers, jwks) = get(&server, "/.well-known/jwks.json").await;
    assert_eq!(status, 200);
    assert_eq!(headers.get("cache-control").unwrap(), "public, max-age=300");
    assert!(headers.get("content-type").unwrap().to_str().unwrap().starts_with("application/json"));
    let keys = jwks["keys"].as_array().expect("keys array");
    assert!(!keys.is_empty(), "at least the active key: {jwks}");
    let mut kids = Vec::new();
    for key in keys {
        let object = key.as_object().expect("a key is an object");
        for member in ["kid", "kty", "alg", "use"] {
            assert!(object.get(member).is_some_and(Value::is_string), "{member} in {key}");
        }
        assert_eq!(key["use"], "sig");
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            assert!(object.get(private).is_none(), "private member {private} in {key}");
        }
        let expected_members: &[&str] = match (key["kty"].as_str().unwrap(), key["alg"].as_str().unwrap()) {
            ("EC", "ES256") => {
                assert_eq!(key["crv"], "P-256");
                &["alg", "crv", "kid", "kty", "use", "x", "y"]
            }
            ("OKP", "EdDSA") => {
                assert_eq!(key["crv"], "Ed25519");
                &["alg", "crv", "kid", "kty", "use", "x"]
            }
            ("RSA", "RS256") => &["alg", "e", "kid", "kty", "n", "use"],
            other => panic!("unexpected key type and algorithm {other:?}"),
        };
        let mut members: Vec<&str> = object.keys().map(String::as_str).collect();
        members.sort();
        assert_eq!(members, expected_members, "exactly the public members");
        // The kid is the key's RFC 7638 thumbprint.
        assert_eq!(key["kid"].as_str().unwrap(), thumbprint(key));
        kids.push(key["kid"].as_str().unwrap().to_string());
    }
    let unique: std::collections::BTreeSet<&String> = kids.iter().collect();
    assert_eq!(unique.len(), kids.len(), "kids are unique");

    // The set parses as a JWKS for `jsonwebtoken`, and a token signed now names one of its keys.
    let parsed: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks.clone()).expect("JwkSet");
    assert_eq!(parsed.keys.len(), keys.len());
    let created = server.seed("jwks-co").role(&["keys.read"]).create();
    let token = server.token_for(&created, &[], None).await;
    let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
    assert!(kids.contains(&kid), "token kid {kid} is in the JWKS");
    let claims = server.verify(&token, &server.settings.default_audience).await;
    assert_eq!(claims["partner_id"], "jwks-co");
    server.stop().await;
}

#[actix_web::test]
async fn jwks_max_age_is_configurable() {
    let server = TestServer::start_with(|config| config.jwks_max_age_secs = 120).await;
    let (status, headers, _) = get(&server, "/.well-known/jwks.json").await;
    assert_eq!(status, 200);
    assert_eq!(headers.get("cache-control").unwrap(), "public, max-age=120");
    server.stop().await;
}

#[actix_web::test]
async fn metadata_is_served_at_both_well_known_paths() {
    let server = TestServer::start().await;
    scopes::create(&mut server.conn(), &Caller::cli(), "invoices.read", "Read invoices").unwrap();
    scopes::create(&mut server.conn(), &Caller::cli(), "invoices.write", "Write invoices").unwrap();
    let issuer = server.settings.issuer.clone();
    let (_, _, jwks) = get(&server, "/.well-known/jwks.json").await;
    let jwks_algs: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["alg"].as_str().unwrap()).collect();

    let mut documents = Vec::new();
    for path in ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"] {
        let (status, headers, metadata) = get(&server, path).await;
        assert_eq!(status, 200, "{path}");
        assert!(headers.get("content-type").unwrap().to_str().unwrap().starts_with("application/json"), "{path}");
        assert_eq!(metadata["issuer"], issuer.as_str(), "{path}");
        assert_eq!(metadata["token_endpoint"], format!("{issuer}/oauth2/token"), "{path}");
        assert_eq!(metadata["jwks_uri"], format!("{issuer}/.well-known/jwks.json"), "{path}");
        assert_eq!(metadata["grant_types_supported"], json!(["client_credentials"]), "{path}");
        let mut methods: Vec<&str> = metadata["token_endpoint_auth_methods_supported"]
            .as_array()
            .expect("token_endpoint_auth_methods_supported")
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        methods.sort();
        assert_eq!(methods, ["client_secret_basic", "client_secret_post", "private_key_jwt"], "{path}");
        assert_eq!(
            metadata["token_endpoint_auth_signing_alg_values_supported"],
            json!(["ES256", "EdDSA", "PS256", "RS256"]),
            "{path}: asymmetric algorithms only"
        );
        let scopes: Vec<&str> = metadata["scopes_supported"]
            .as_array()
            .expect("scopes_supported")
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(scopes.contains(&"invoices.read") && scopes.contains(&"invoices.write"), "{path}: {scopes:?}");
        assert!(!scopes.contains(&"invoices.delete"), "{path}: only registered scopes");
        let algs: Vec<&str> = metadata["access_token_signing_alg_values_supported"]
            .as_array()
            .expect("access_token_signing_alg_values_supported")
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(algs.contains(&"ES256"), "{path}: {algs:?}");
        for alg in &jwks_algs {
            assert!(algs.contains(alg), "{path}: {alg} of a JWKS key is listed");
        }
        documents.push(metadata);
    }
    assert_eq!(documents[0], documents[1], "the same document at both paths");

    // A scope registered later shows up on the next request.
    scopes::create(&mut server.conn(), &Caller::cli(), "invoices.delete", "Delete invoices").unwrap();
    let (_, _, metadata) = get(&server, "/.well-known/oauth-authorization-server").await;
    assert!(metadata["scopes_supported"].as_array().unwrap().contains(&json!("invoices.delete")));
    server.stop().await;
}

#[actix_web::test]
async fn health_and_readiness() {
    let server = TestServer::start().await;
    let (status, _, body) = get(&server, "/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");

    let (status, _, body) = get(&server, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["database"], "ok", "{body}");
    let (_, _, jwks) = get(&server, "/.well-known/jwks.json").await;
    let kid = body["active_kid"].as_str().expect("active_kid");
    assert!(jwks["keys"].as_array().unwrap().iter().any(|k| k["kid"] == kid), "the active key {kid} is published");
    server.stop().await;
}
