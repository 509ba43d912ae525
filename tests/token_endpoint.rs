//! The token endpoint end to end: real server, real `oauth2` client, tokens verified against the JWKS.

mod common;

use std::collections::{BTreeSet, HashMap};

use common::*;
use oauth2::basic::BasicErrorResponseType;
use oauth2::{AuthType, RequestTokenError};
use partnergate::credentials::ClientSecret;
use partnergate::registry::clients::{CreatedClient, NewClient};
use partnergate::registry::partners::{self, PartnerUpdate};
use partnergate::registry::Caller;
use serde_json::{json, Value};

#[actix_web::test]
async fn basic_and_post_tokens_verify_against_the_jwks() {
    let server = TestServer::start().await;
    let created = server.seed("acme").role(&["orders.read"]).scopes(&["orders.write"]).create();
    let id = created.client.id.clone();
    let secret = created.secret.secret.expose().to_string();
    for auth in [AuthType::BasicAuth, AuthType::RequestBody] {
        let token = fetch_token(&server, auth.clone(), &id, &secret, &[], None).await.expect("token issued");
        let claims = server.verify(&token, &server.settings.default_audience).await;
        assert_eq!(claims["iss"], server.settings.issuer.as_str());
        assert_eq!(claims["sub"], id.as_str());
        assert_eq!(claims["client_id"], id.as_str());
        assert_eq!(claims["aud"], server.settings.default_audience.as_str());
        assert_eq!(claims["partner_id"], "acme");
        assert_eq!(claims["scope"], "orders.read orders.write");
        let iat = claims["iat"].as_i64().unwrap();
        assert_eq!(claims["nbf"].as_i64().unwrap(), iat);
        assert_eq!(claims["exp"].as_i64().unwrap() - iat, 600);
        assert_eq!(claims["jti"].as_str().unwrap().len(), 22, "128 bits in base64url");
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    }
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------

const TOKEN: &str = "/oauth2/token";
const GRANT: (&str, &str) = ("grant_type", "client_credentials");

/// What a token must say about itself.
struct Expected<'a> {
    client_id: &'a str,
    partner_id: &'a str,
    scope: &'a str,
    /// The `aud` claim exactly as serialized: a string for one audience, an array for several.
    aud: Value,
    lifetime: i64,
}

/// Verifies `token` with the JWKS fetched over HTTP and checks every claim and the header.
async fn assert_token(
    server: &TestServer,
    token: &str,
    verify_audience: &str,
    expected: &Expected<'_>,
) -> HashMap<String, Value> {
    let header = jsonwebtoken::decode_header(token).expect("token header");
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    let kid = header.kid.clone().expect("kid in header");
    let jwks = server.jwks().await;
    let matching: Vec<_> = jwks.keys.iter().filter(|k| k.common.key_id.as_deref() == Some(kid.as_str())).collect();
    assert_eq!(matching.len(), 1, "exactly one JWKS key has kid {kid}");
    assert_eq!(matching[0].common.key_algorithm, Some(jsonwebtoken::jwk::KeyAlgorithm::ES256));

    let claims = server.verify(token, verify_audience).await;
    let mut names: Vec<&str> = claims.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(
        names,
        ["aud", "client_id", "exp", "iat", "iss", "jti", "nbf", "partner_id", "scope", "secret_id", "sub"],
        "exactly the RFC 9068 claims plus partner_id and the id of the secret that obtained the token"
    );
    let secret_id = claims["secret_id"].as_str().expect("secret_id is a string");
    assert!(secret_id.starts_with("sec_") && !secret_id.starts_with("pgs_"), "an id, never the secret: {secret_id}");
    assert_eq!(claims["iss"], server.settings.issuer.as_str());
    assert_eq!(claims["sub"], expected.client_id);
    assert_eq!(claims["client_id"], expected.client_id);
    assert_eq!(claims["aud"], expected.aud);
    assert_eq!(claims["partner_id"], expected.partner_id);
    assert_eq!(claims["scope"], expected.scope);
    let iat = claims["iat"].as_i64().expect("iat is an integer");
    assert!((iat - now_secs()).abs() <= 5, "iat {iat} is now ({})", now_secs());
    assert_eq!(claims["nbf"].as_i64().expect("nbf is an integer"), iat);
    assert_eq!(claims["exp"].as_i64().expect("exp is an integer") - iat, expected.lifetime);
    let jti = claims["jti"].as_str().expect("jti is a string");
    assert_eq!(jti.len(), 22, "128 bits in unpadded base64url: {jti}");
    assert!(jti.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "jti is base64url: {jti}");
    claims
}

/// The `error` code of an `oauth2` crate failure that carries the server's error response.
fn server_error(err: &TokenError) -> (BasicErrorResponseType, Option<String>) {
    match err {
        RequestTokenError::ServerResponse(response) => {
            (response.error().clone(), response.error_description().cloned())
        }
        other => panic!("expected the server's error response, got {other:?}"),
    }
}

/// A client of `partner_id` with an operator-chosen id.
fn client_with_id(server: &TestServer, partner_id: &str, id: &str, roles: &[&str]) -> (String, String) {
    let created = create_client(
        server,
        &NewClient {
            client_id: Some(id.into()),
            partner_id: Some(partner_id.into()),
            name: "chosen id".into(),
            roles: strings(roles),
            ..Default::default()
        },
    );
    assert_eq!(created.client.id, id);
    (created.client.id, created.secret.secret.expose().to_string())
}

/// A well-formed secret (prefix, length, checksum) that belongs to no client.
fn stranger_secret() -> String {
    ClientSecret::generate().expose().to_string()
}

/// `secret` with one character of its random part changed: the checksum no longer matches.
fn with_one_character_changed(secret: &str) -> String {
    let mut bytes = secret.as_bytes().to_vec();
    let at = 10;
    bytes[at] = if bytes[at] == b'a' { b'b' } else { b'a' };
    let changed = String::from_utf8(bytes).unwrap();
    assert_ne!(changed, secret);
    assert_eq!(changed.len(), secret.len());
    changed
}

// ---------------------------------------------------------------------------------------------------------
// 1. Tokens through the `oauth2` crate and raw Basic credentials
// ---------------------------------------------------------------------------------------------------------

#[actix_web::test]
async fn a_client_id_that_needs_form_encoding_authenticates_with_both_methods() {
    let server = TestServer::start().await;
    server.seed("acme-eu").role(&["sync.read", "sync.write"]).create();
    let (id, secret) = client_with_id(&server, "acme-eu", "acme:sync+prod@eu%1", &["role-acme-eu"]);
    let mut jtis = BTreeSet::new();
    for auth in [AuthType::BasicAuth, AuthType::RequestBody] {
        let token = fetch_token(&server, auth.clone(), &id, &secret, &[], None)
            .await
            .unwrap_or_else(|err| panic!("{auth:?}: token request failed: {err:?}"));
        let claims = assert_token(
            &server,
            &token,
            &server.settings.default_audience,
            &Expected {
                client_id: "acme:sync+prod@eu%1",
                partner_id: "acme-eu",
                scope: "sync.read sync.write",
                aud: json!(server.settings.default_audience),
                lifetime: 600,
            },
        )
        .await;
        jtis.insert(claims["jti"].as_str().unwrap().to_string());

        // A subset through the crate, too.
        let token = fetch_token(&server, auth.clone(), &id, &secret, &["sync.write"], None)
            .await
            .unwrap_or_else(|err| panic!("{auth:?}: token request failed: {err:?}"));
        let claims = server.verify(&token, &server.settings.default_audience).await;
        assert_eq!(claims["scope"], "sync.write");
        jtis.insert(claims["jti"].as_str().unwrap().to_string());
    }
    assert_eq!(jtis.len(), 4, "every token has its own jti");

    // The same id sent without form encoding is a different id ('+' is a space, ':' splits): refused.
    let response =
        post_form(&server, TOKEN, &form(&[GRANT]), &[("authorization", &basic_auth_raw(&format!("{id}:{secret}")))])
            .await;
    let (status, error, headers) = oauth_error(response).await;
    assert_eq!((status, error.as_str()), (401, "invalid_client"));
    assert_eq!(headers.get("www-authenticate").unwrap(), "Basic realm=\"partnergate\"");
    server.stop().await;
}

#[actix_web::test]
async fn basic_credentials_are_form_decoded_even_where_no_encoding_was_needed() {
    let server = TestServer::start().await;
    let created = server.seed("globex").role(&["orders.read"]).create();
    let id = created.client.id.clone();
    let secret = created.secret.secret.expose().to_string();
    assert!(id.contains('_') && secret.contains('_'));
    let percent_every_byte = |s: &str| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
    let variants = [
        // `_` as `%5F` in both id and secret.
        format!("{}:{}", id.replace('_', "%5F"), secret.replace('_', "%5F")),
        // Lowercase hex digits are the same escape.
        format!("{}:{}", id.replace('_', "%5f"), secret.replace('_', "%5f")),
        // Every single byte escaped.
        format!("{}:{}", percent_every_byte(&id), percent_every_byte(&secret)),
    ];
    for credentials in &variants {
        let response =
            post_form(&server, TOKEN, &form(&[GRANT]), &[("authorization", &basic_auth_raw(credentials))]).await;
        let body = token_success(response).await;
        assert_eq!(body["scope"], "orders.read");
        assert_eq!(body["expires_in"], 600);
        let claims = server.verify(body["access_token"].as_str().unwrap(), &server.settings.default_audience).await;
        assert_eq!(claims["sub"], id.as_str(), "{credentials}");
        assert_eq!(claims["partner_id"], "globex");
    }

    // Decoding is not a licence to truncate: a raw `&` or a bad escape does not name the client.
    for credentials in [
        format!("{id}&x=y:{secret}"),
        format!("{id}:{secret}&x=y"),
        format!("{id}%:{secret}"),
        format!("{id}:{secret}%2"),
    ] {
        let response =
            post_form(&server, TOKEN, &form(&[GRANT]), &[("authorization", &basic_auth_raw(&credentials))]).await;
        let (status, error, headers) = oauth_error(response).await;
        assert_eq!((status, error.as_str()), (401, "invalid_client"), "{credentials}");
        assert_eq!(headers.get("www-authenticate").unwrap(), "Basic realm=\"partnergate\"");
    }
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------------------
// 2. Errors
// ---------------------------------------------------------------------------------------------------------

#[actix_web::test]
async fn failed_authentication_is_invalid_client_with_a_challenge_only_for_basic() {
    let server = TestServer::start().await;
    let created = server.seed("initech").role(&["tps.read"]).create();
    let id = created.client.id.clone();
    let secret = created.secret.secret.expose().to_string();
    // Sanity: the real credentials work with both methods.
    for auth in [AuthType::BasicAuth, AuthType::RequestBody] {
        fetch_token(&server, auth, &id, &secret, &[], None).await.expect("the real credentials work");
    }
    let cases = [
        ("unknown client", "pgc_000000000000000000000000".to_string(), secret.clone()),
        ("wrong secret with a valid format", id.clone(), stranger_secret()),
        ("one character changed (bad checksum)", id.clone(), with_one_character_changed(&secret)),
        ("truncated secret", id.clone(), secret[..secret.len() - 1].to_string()),
        ("empty secret", id.clone(), String::new()),
    ];
    for (case, client_id, client_secret) in &cases {
        // client_secret_basic: 401 with the challenge.
        let response =
            post_form(&server, TOKEN, &form(&[GRANT]), &[("authorization", &basic_auth(client_id, client_secret))])
                .await;
        let (status, error, headers) = oauth_error(response).await;
        assert_eq!((status, error.as_str()), (401, "invalid_client"), "basic: {case}");
        assert_eq!(
            headers.get("www-authenticate").map(|v| v.to_str().unwrap()),
            Some("Basic realm=\"partnergate\""),
            "basic: {case}"
        );
        // client_secret_post: 401 without it.
        let response =
            post_form(&server, TOKEN, &form(&[GRANT, ("client_id", client_id), ("client_secret", client_secret)]), &[])
                .await;
        let (status, error, headers) = oauth_error(response).await;
        assert_eq!((status, error.as_str()), (401, "invalid_client"), "post: {case}");
        assert!(headers.get("www-authenticate").is_none(), "post: {case}: no Basic challenge for client_secret_post");
    }
    // No credentials at all: 401, and the challenge tells the client how to authenticate.
    let response = post_form(&server, TOKEN, &form(&[GRANT]), &[]).await;
    let (status, error, headers) = oauth_error(response).await;
    assert_eq!((status, error.as_str()), (401, "invalid_client"));
    assert_eq!(headers.get("www-authenticate").unwrap(), "Basic realm=\"partnergate\"");
    server.stop().await;
}

#[actix_web::test]
async fn a_malformed_authorization_header_is_invalid_client() {
    let server = TestServer::start().await;
    let created = server.seed("hooli").role(&["mail.read"]).create();
    let id = created.client.id.clone();
    let secret = created.secret.secret.expose().to_string();
    let headers = [
        "Basic !!!".to_string(),
        "Bearer x".to_string(),
        "Basic".to_string(),
        basic_auth_raw("no-colon-here"),
        basic_auth_raw(&format!(":{secret}")),
        // The right credentials under another scheme name.
        basic_auth(&id, &secret).replacen("Basic", "Digest", 1),
    ];
    for header in &headers {
        let response = post_form(&server, TOKEN, &form(&[GRANT]), &[("authorization", header)]).await;
        let (status, error, response_headers) = oauth_error(response).await;
        assert_eq!((status, error.as_str()), (401, "invalid_client"), "{header}");
        assert_eq!(response_headers.get("www-authenticate").unwrap(), "Basic realm=\"partnergate\"", "{header}");
    }
    // The scheme name is case-insensitive (RFC 9110 section 11.1).
    let lowercase = basic_auth(&id, &secret).replacen("Basic", "basic", 1);
    let response = post_form(&server, TOKEN, &form(&[GRANT]), &[("authorization", &lowercase)]).await;
    token_success(response).await;
    server.stop().await;
}

#[actix_web::test]
async fn malformed_requests_are_invalid_request_or_unsupported_grant_type() {
    let server = TestServer::start().await;
    let created = server.seed("umbrella").role(&["labs.read"]).create();
    let id = created.client.id.clone();
    let secret = created.secret.secret.expose().to_string();
    let basic = basic_auth(&id, &secret);
    let with_basic = [("authorization", basic.as_str())];

    let expect = |status: u16, error: &'static str| (status, error);
    // (case, body, headers, expected status and error)
    type Case<'a> = (&'a str, String, &'a [(&'a str, &'a str)], (u16, &'a str));
    let cases: Vec<Case> = vec![
        (
            "both authentication methods",
            form(&[GRANT, ("client_id", &id), ("client_secret", &secret)]),
            &with_basic,
            expect(400, "invalid_request"),
        ),
        ("missing grant_type", form(&[("scope", "labs.read")]), &with_basic, expect(400, "invalid_request")),
        ("empty grant_type", form(&[("grant_type", "")]), &with_basic, expect(400, "invalid_request")),
        (
            "missing grant_type, client_secret_post",
            form(&[("client_id", &id), ("client_secret", &secret)]),
            &[],
            expect(400, "invalid_request"),
        ),
        (
            "password grant",
            form(&[("grant_type", "password"), ("username", "u"), ("password", "p")]),
            &with_basic,
            expect(400, "unsupported_grant_type"),
        ),
        (
            "authorization_code grant",
            form(&[("grant_type", "authorization_code"), ("code", "c")]),
            &with_basic,
            expect(400, "unsupported_grant_type"),
        ),
        ("repeated grant_type", form(&[GRANT, GRANT]), &with_basic, expect(400, "invalid_request")),
        (
            "repeated scope",
            form(&[GRANT, ("scope", "labs.read"), ("scope", "labs.read")]),
            &with_basic,
            expect(400, "invalid_request"),
        ),
        (
            "repeated client_secret",
            form(&[GRANT, ("client_id", &id), ("client_secret", &secret), ("client_secret", &secret)]),
            &[],
            expect(400, "invalid_request"),
        ),
    ];
    for (case, body, headers, (status, code)) in &cases {
        let response = post_form(&server, TOKEN, body, headers).await;
        let (got_status, got_error, _) = oauth_error(response).await;
        assert_eq!((got_status, got_error.as_str()), (*status, *code), "{case}");
    }

    // A JSON body, even with valid credentials and a valid grant inside.
    let json_body = json!({"grant_type": "client_credentials"}).to_string();
    let response = post_raw(&server, TOKEN, "application/json", json_body.into_bytes(), &with_basic).await;
    let (status, error, _) = oauth_error(response).await;
    assert_eq!((status, error.as_str()), (400, "invalid_request"), "JSON body");

    // A form body with no content type at all, or a different one.
    for content_type in ["text/plain", "multipart/form-data; boundary=x"] {
        let response = post_raw(&server, TOKEN, content_type, form(&[GRANT]).into_bytes(), &with_basic).await;
        let (status, error, _) = oauth_error(response).await;
        assert_eq!((status, error.as_str()), (400, "invalid_request"), "{content_type}");
    }
    // A charset parameter on the right media type is fine.
    let response = post_raw(
        &server,
        TOKEN,
        "application/x-www-form-urlencoded; charset=UTF-8",
        form(&[GRANT]).into_bytes(),
        &with_basic,
    )
    .await;
    token_success(response).await;
    server.stop().await;
}

#[actix_web::test]
async fn an_oversized_body_is_400_invalid_request() {
    let server = TestServer::start().await;
    let created = server.seed("soylent").role(&["food.read"]).create();
    let basic = basic_auth(&created.client.id, created.secret.secret.expose());
    let padding = "x".repeat(16 * 1024);
    let body = form(&[GRANT, ("padding", &padding)]);
    assert!(body.len() > 16 * 1024);
    let response = post_form(&server, TOKEN, &body, &[("authorization", &basic)]).await;
    let (status, error, _) = oauth_error(response).await;
    assert_eq!((status, error.as_str()), (400, "invalid_request"));

    // Without a Content-Length (chunked), the limit still holds while the body streams in.
    let addr = server.base_url.trim_start_matches("http://").to_string();
    let raw = tokio::task::spawn_blocking(move || chunked_post(&addr, &basic, body.as_bytes())).await.unwrap();
    let status_line = raw.lines().next().unwrap_or_default().to_string();
    assert!(status_line.starts_with("HTTP/1.1 400"), "{status_line}");
    assert!(raw.contains("\"error\":\"invalid_request\""), "{raw}");

    // Just under the limit is accepted.
    let small = form(&[GRANT, ("padding", &"x".repeat(15 * 1024))]);
    let basic = basic_auth(&created.client.id, created.secret.secret.expose());
    let response = post_form(&server, TOKEN, &small, &[("authorization", &basic)]).await;
    token_success(response).await;
    server.stop().await;
}

/// An HTTP/1.1 POST of `body` to the token endpoint with chunked transfer encoding; returns the raw response.
fn chunked_post(addr: &str, authorization: &str, body: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let head = format!(
        "POST {TOKEN} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Authorization: {authorization}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    // The server may answer and close before it has read everything; later writes may then fail.
    for chunk in body.chunks(1024) {
        let frame = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
        if stream.write_all(&frame).is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

#[actix_web::test]
async fn scopes_and_audiences_the_client_may_not_use_are_refused() {
    let server = TestServer::start().await;
    let created = server
        .seed("wonka")
        .ceiling(&["candy.read", "candy.write"])
        .role(&["candy.read"])
        .audiences(&["https://api.wonka.test"])
        .create();
    // A scope that exists and is in the ceiling, but that the client does not hold.
    ensure_catalog_scopes(&server, &["fizzy.drink"]);
    let id = created.client.id.clone();
    let secret = created.secret.secret.expose().to_string();
    let basic = basic_auth(&id, &secret);
    let cases: Vec<(&str, String, (u16, &str))> = vec![
        (
            "a scope in the ceiling the client does not hold",
            form(&[GRANT, ("scope", "candy.write")]),
            (400, "invalid_scope"),
        ),
        ("a registered scope outside the ceiling", form(&[GRANT, ("scope", "fizzy.drink")]), (400, "invalid_scope")),
        ("an unknown scope", form(&[GRANT, ("scope", "nothing.here")]), (400, "invalid_scope")),
        (
            "an audience the client may not use",
            form(&[GRANT, ("resource", "https://api.other.test")]),
            (400, "invalid_target"),
        ),
        (
            "the server default audience, for a client with exactly one audience",
            form(&[GRANT, ("resource", &server.settings.default_audience)]),
            (400, "invalid_target"),
        ),
        (
            "one allowed and one other audience",
            form(&[GRANT, ("resource", "https://api.wonka.test"), ("resource", "https://api.other.test")]),
            (400, "invalid_target"),
        ),
        (
            "a resource that is not an absolute URI",
            form(&[GRANT, ("resource", "api.wonka.test")]),
            (400, "invalid_target"),
        ),
        (
            "the audience parameter with an audience the client may not use",
            form(&[GRANT, ("audience", "https://api.other.test")]),
            (400, "invalid_target"),
        ),
    ];
    for (case, body, (status, code)) in &cases {
        let response = post_form(&server, TOKEN, body, &[("authorization", &basic)]).await;
        let (got_status, got_error, headers) = oauth_error(response).await;
        assert_eq!((got_status, got_error.as_str()), (*status, *code), "{case}");
        assert!(headers.get("www-authenticate").is_none(), "{case}");
    }
    server.stop().await;
}

#[actix_web::test]
async fn the_oauth2_crate_surfaces_the_server_errors() {
    let server = TestServer::start().await;
    let created = server
        .seed("tyrell")
        .ceiling(&["replicant.read", "replicant.retire"])
        .role(&["replicant.read"])
        .audiences(&["https://api.tyrell.test"])
        .create();
    let id = created.client.id.clone();
    let secret = created.secret.secret.expose().to_string();
    for auth in [AuthType::BasicAuth, AuthType::RequestBody] {
        let err = fetch_token(&server, auth.clone(), &id, &secret, &["replicant.retire"], None).await.unwrap_err();
        let (code, description) = server_error(&err);
        assert_eq!(code, BasicErrorResponseType::InvalidScope, "{auth:?}");
        assert!(description.is_some_and(|d| !d.is_empty()));

        let err = fetch_token(&server, auth.clone(), &id, &stranger_secret(), &[], None).await.unwrap_err();
        let (code, description) = server_error(&err);
        assert_eq!(code, BasicErrorResponseType::InvalidClient, "{auth:?}");
        assert_eq!(description.as_deref(), Some("client authentication failed"));

        let err = fetch_token(&server, auth.clone(), &id, &secret, &[], Some("https://api.elsewhere.test"))
            .await
            .unwrap_err();
        let (code, _) = server_error(&err);
        assert_eq!(code, BasicErrorResponseType::Extension("invalid_target".into()), "{auth:?}");
    }
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------------------
// 3. Scope resolution
// ---------------------------------------------------------------------------------------------------------

/// A raw token request with Basic credentials; returns the success body.
async fn token_with(server: &TestServer, id: &str, secret: &str, params: &[(&str, &str)]) -> Value {
    let mut pairs = vec![GRANT];
    pairs.extend_from_slice(params);
    let response = post_form(server, TOKEN, &form(&pairs), &[("authorization", &basic_auth(id, secret))]).await;
    token_success(response).await
}

/// The `scope` claim of a verified token for the server's default audience.
async fn scope_claim(server: &TestServer, body: &Value) -> String {
    let claims = server.verify(body["access_token"].as_str().unwrap(), &server.settings.default_audience).await;
    assert_eq!(claims["scope"], body["scope"], "the response's scope is the token's");
    claims["scope"].as_str().unwrap().to_string()
}

#[actix_web::test]
async fn allowed_scopes_are_role_and_direct_scopes_within_the_partner_ceiling() {
    let server = TestServer::start().await;
    // The role holds `fleet.admin`, which is outside the ceiling; `fleet.write` is in the ceiling but not
    // granted; `fleet.track` is a direct grant.
    let created = server
        .seed("stark")
        .ceiling(&["fleet.read", "fleet.track", "fleet.write"])
        .role(&["fleet.read", "fleet.admin"])
        .scopes(&["fleet.track"])
        .create();
    assert_eq!(created.client.roles, ["role-stark"]);
    let id = created.client.id.clone();
    let secret = created.secret.secret.expose().to_string();
    for auth in [AuthType::BasicAuth, AuthType::RequestBody] {
        let token = fetch_token(&server, auth, &id, &secret, &[], None).await.expect("token");
        assert_token(
            &server,
            &token,
            &server.settings.default_audience,
            &Expected {
                client_id: &id,
                partner_id: "stark",
                scope: "fleet.read fleet.track",
                aud: json!(server.settings.default_audience),
                lifetime: 600,
            },
        )
        .await;
    }
    // Neither the role's scope beyond the ceiling nor the ungranted ceiling scope can be requested.
    for scope in ["fleet.admin", "fleet.write"] {
        let err = fetch_token(&server, AuthType::BasicAuth, &id, &secret, &[scope], None).await.unwrap_err();
        assert_eq!(server_error(&err).0, BasicErrorResponseType::InvalidScope, "{scope}");
    }

    // A second client of the same partner with only a direct grant, and one with only the role.
    let direct_only = server.client_of("stark").scopes(&["fleet.write"]).create();
    let body = token_with(&server, &direct_only.client.id, direct_only.secret.secret.expose(), &[]).await;
    assert_eq!(scope_claim(&server, &body).await, "fleet.write");
    let role_only = server.client_of("stark").roles(&["role-stark"]).create();
    let body = token_with(&server, &role_only.client.id, role_only.secret.secret.expose(), &[]).await;
    assert_eq!(scope_claim(&server, &body).await, "fleet.read");

    // The same shared role on a partner whose ceiling includes `fleet.admin` does give it.
    partners::create(
        &mut server.conn(),
        &Caller::cli(),
        &partners::NewPartner {
            id: "stark-hq".into(),
            name: "Stark HQ".into(),
            scope_ceiling: strings(&["fleet.read", "fleet.admin"]),
            ..Default::default()
        },
    )
    .unwrap();
    let hq = server.client_of("stark-hq").roles(&["role-stark"]).create();
    let body = token_with(&server, &hq.client.id, hq.secret.secret.expose(), &[]).await;
    assert_eq!(scope_claim(&server, &body).await, "fleet.admin fleet.read");
    server.stop().await;
}

#[actix_web::test]
async fn the_scope_parameter_selects_exactly_what_is_asked_or_fails() {
    let server = TestServer::start().await;
    let created = server.seed("cyberdyne").role(&["net.read", "net.write"]).scopes(&["net.admin"]).create();
    let id = created.client.id.clone();
    let secret = created.secret.secret.expose().to_string();
    let all = "net.admin net.read net.write";

    // No scope parameter: everything allowed.
    let body = token_with(&server, &id, &secret, &[]).await;
    assert_eq!(scope_claim(&server, &body).await, all);
    // `scope=` (empty) counts as omitted, and so does a scope of only spaces.
    for empty in ["", " ", "   "] {
        let body = token_with(&server, &id, &secret, &[("scope", empty)]).await;
        assert_eq!(scope_claim(&server, &body).await, all, "scope={empty:?}");
    }
    // A subset gives exactly that subset.
    let body = token_with(&server, &id, &secret, &[("scope", "net.write")]).await;
    assert_eq!(scope_claim(&server, &body).await, "net.write");
    assert_eq!(body["scope"], "net.write");
    let body = token_with(&server, &id, &secret, &[("scope", "net.write net.read")]).await;
    let granted: BTreeSet<String> = scope_claim(&server, &body).await.split(' ').map(str::to_string).collect();
    assert_eq!(granted, BTreeSet::from(["net.read".into(), "net.write".into()]));
    // Through the crate as well.
    let token = fetch_token(&server, AuthType::RequestBody, &id, &secret, &["net.admin"], None).await.unwrap();
    let claims = server.verify(&token, &server.settings.default_audience).await;
    assert_eq!(claims["scope"], "net.admin");

    // One allowed plus one not allowed: refused, not narrowed.
    ensure_catalog_scopes(&server, &["net.delete"]);
    // The description names the refused scopes (the client sent them), not the allowed one.
    for (requested, refused) in
        [("net.read net.delete", "net.delete"), ("net.read unknown.scope other.scope", "other.scope unknown.scope")]
    {
        let response = post_form(
            &server,
            TOKEN,
            &form(&[GRANT, ("scope", requested)]),
            &[("authorization", &basic_auth(&id, &secret))],
        )
        .await;
        let reply = Reply::from(response).await;
        reply.expect_oauth_error(400, "invalid_scope");
        let description = reply.json()["error_description"].as_str().unwrap().to_string();
        assert!(description.ends_with(&format!(": {refused}")), "{requested}: {description}");
        assert!(!description.contains("net.read"), "{requested}: {description}");
    }
    let err =
        fetch_token(&server, AuthType::BasicAuth, &id, &secret, &["net.read", "net.delete"], None).await.unwrap_err();
    assert_eq!(server_error(&err).0, BasicErrorResponseType::InvalidScope);
    server.stop().await;
}

#[actix_web::test]
async fn shrinking_the_partner_ceiling_takes_effect_on_the_next_token() {
    let server = TestServer::start().await;
    let created = server.seed("weyland").role(&["ship.read", "ship.write"]).scopes(&["crew.read"]).create();
    let id = created.client.id.clone();
    let secret = created.secret.secret.expose().to_string();
    let body = token_with(&server, &id, &secret, &[]).await;
    assert_eq!(scope_claim(&server, &body).await, "crew.read ship.read ship.write");

    partners::update(
        &mut server.conn(),
        &Caller::cli(),
        "weyland",
        &PartnerUpdate { scope_ceiling: Some(strings(&["ship.read"])), ..Default::default() },
    )
    .unwrap();

    let body = token_with(&server, &id, &secret, &[]).await;
    assert_eq!(scope_claim(&server, &body).await, "ship.read");
    let token = fetch_token(&server, AuthType::BasicAuth, &id, &secret, &[], None).await.unwrap();
    assert_token(
        &server,
        &token,
        &server.settings.default_audience,
        &Expected {
            client_id: &id,
            partner_id: "weyland",
            scope: "ship.read",
            aud: json!(server.settings.default_audience),
            lifetime: 600,
        },
    )
    .await;
    for scope in ["ship.write", "crew.read"] {
        let err = fetch_token(&server, AuthType::BasicAuth, &id, &secret, &[scope], None).await.unwrap_err();
        assert_eq!(server_error(&err).0, BasicErrorResponseType::InvalidScope, "{scope}");
    }

    // Widening it again restores the scopes on the next token.
    partners::update(
        &mut server.conn(),
        &Caller::cli(),
        "weyland",
        &PartnerUpdate {
            scope_ceiling: Some(strings(&["ship.read", "ship.write", "crew.read"])),
            ..Default::default()
        },
    )
    .unwrap();
    let body = token_with(&server, &id, &secret, &[]).await;
    assert_eq!(scope_claim(&server, &body).await, "crew.read ship.read ship.write");
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------------------
// 4. Audience and lifetime
// ---------------------------------------------------------------------------------------------------------

#[actix_web::test]
async fn the_audience_is_the_clients_only_one_or_the_server_default_or_the_requested_one() {
    let server = TestServer::start().await;
    let default = server.settings.default_audience.clone();
    let one = server.seed("oscorp").role(&["lab.read"]).audiences(&["https://lab.oscorp.test"]).create();
    let none = server.client_of("oscorp").roles(&["role-oscorp"]).create();
    let several = server
        .client_of("oscorp")
        .roles(&["role-oscorp"])
        .audiences(&["https://a.oscorp.test", "https://b.oscorp.test"])
        .create();

    let expect =
        |client: &CreatedClient, aud: Value| (client.client.id.clone(), client.secret.secret.expose().to_string(), aud);
    // Defaults: exactly one audience gives that one; none or several give the server default.
    for (id, secret, aud) in [
        expect(&one, json!("https://lab.oscorp.test")),
        expect(&none, json!(default)),
        expect(&several, json!(default)),
    ] {
        for auth in [AuthType::BasicAuth, AuthType::RequestBody] {
            let token = fetch_token(&server, auth, &id, &secret, &[], None).await.unwrap();
            assert_token(
                &server,
                &token,
                aud.as_str().unwrap(),
                &Expected { client_id: &id, partner_id: "oscorp", scope: "lab.read", aud: aud.clone(), lifetime: 600 },
            )
            .await;
            // A resource server expecting another audience rejects the token.
            let other = if aud == json!(default) { "https://lab.oscorp.test".to_string() } else { default.clone() };
            assert!(
                decode_for_audience(&server, &token, &other).await.is_err(),
                "a token for {aud} is not accepted for {other}"
            );
        }
    }

    // Requested through `resource` (via the crate) and through `audience` (raw).
    let (id, secret) = (several.client.id.clone(), several.secret.secret.expose().to_string());
    for wanted in ["https://a.oscorp.test", "https://b.oscorp.test"] {
        let token = fetch_token(&server, AuthType::BasicAuth, &id, &secret, &[], Some(wanted)).await.unwrap();
        assert_token(
            &server,
            &token,
            wanted,
            &Expected { client_id: &id, partner_id: "oscorp", scope: "lab.read", aud: json!(wanted), lifetime: 600 },
        )
        .await;
        let body = token_with(&server, &id, &secret, &[("audience", wanted)]).await;
        let claims = server.verify(body["access_token"].as_str().unwrap(), wanted).await;
        assert_eq!(claims["aud"], wanted);
    }
    // Both audiences at once (RFC 8707 allows repeating `resource`): an array.
    let body = token_with(
        &server,
        &id,
        &secret,
        &[("resource", "https://b.oscorp.test"), ("resource", "https://a.oscorp.test")],
    )
    .await;
    let claims = server.verify(body["access_token"].as_str().unwrap(), "https://a.oscorp.test").await;
    let aud: BTreeSet<&str> = claims["aud"]
        .as_array()
        .expect("aud is an array for several audiences")
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(aud, BTreeSet::from(["https://a.oscorp.test", "https://b.oscorp.test"]));
    // The client with one audience may ask for it explicitly.
    let body =
        token_with(&server, &one.client.id, one.secret.secret.expose(), &[("resource", "https://lab.oscorp.test")])
            .await;
    let claims = server.verify(body["access_token"].as_str().unwrap(), "https://lab.oscorp.test").await;
    assert_eq!(claims["aud"], "https://lab.oscorp.test");
    server.stop().await;
}

async fn decode_for_audience(
    server: &TestServer,
    token: &str,
    audience: &str,
) -> Result<(), jsonwebtoken::errors::Error> {
    let header = jsonwebtoken::decode_header(token)?;
    let jwks = server.jwks().await;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwks.find(&header.kid.unwrap()).unwrap())?;
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[&server.settings.issuer]);
    jsonwebtoken::decode::<Value>(token, &key, &validation).map(|_| ())
}

#[actix_web::test]
async fn a_client_lifetime_sets_exp_and_expires_in() {
    let server = TestServer::start().await;
    server.seed("aperture").role(&["portal.open"]).create();
    let short = create_client(
        &server,
        &NewClient {
            partner_id: Some("aperture".into()),
            name: "short-lived".into(),
            roles: strings(&["role-aperture"]),
            token_lifetime_secs: Some(120),
            ..Default::default()
        },
    );
    let id = short.client.id.clone();
    let secret = short.secret.secret.expose().to_string();
    for body in [token_with(&server, &id, &secret, &[]).await, {
        let response =
            post_form(&server, TOKEN, &form(&[GRANT, ("client_id", &id), ("client_secret", &secret)]), &[]).await;
        token_success(response).await
    }] {
        assert_eq!(body["expires_in"], json!(120));
        assert_eq!(body["scope"], "portal.open");
        let mut keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["access_token", "expires_in", "scope", "token_type"]);
        assert_token(
            &server,
            body["access_token"].as_str().unwrap(),
            &server.settings.default_audience,
            &Expected {
                client_id: &id,
                partner_id: "aperture",
                scope: "portal.open",
                aud: json!(server.settings.default_audience),
                lifetime: 120,
            },
        )
        .await;
    }
    // A client without its own lifetime gets the server default.
    let default = server.client_of("aperture").roles(&["role-aperture"]).create();
    let body = token_with(&server, &default.client.id, default.secret.secret.expose(), &[]).await;
    assert_eq!(body["expires_in"], json!(600));
    server.stop().await;
}

#[actix_web::test]
async fn other_methods_on_the_oauth_endpoints_are_405() {
    let server = TestServer::start().await;
    for path in ["/oauth2/token", "/oauth2/introspect", "/oauth2/revoke"] {
        let response = reqwest::get(server.url(path)).await.unwrap();
        assert_eq!(response.status().as_u16(), 405, "{path}");
        assert_eq!(response.headers().get("allow").unwrap(), "POST");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");
    }
    assert_eq!(reqwest::get(server.url("/nope")).await.unwrap().status().as_u16(), 404);
    server.stop().await;
}
