//! Introspection (RFC 7662) and revocation (RFC 7009) end to end: the real server on a loopback port, tokens
//! fetched with the `oauth2` crate, the OAuth endpoints and the admin API called with `reqwest`, and the
//! database and audit trail read back through the library. Every inactive answer must be exactly
//! `{"active": false}`, and the audit trail must say why.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Timelike;

use common::*;
use diesel::prelude::*;
use oauth2::AuthType;
use partnergate::credentials::{random_base62, ClientSecret};
use partnergate::keys::{self, Algorithm, KeyRing};
use partnergate::oauth::{AccessTokenClaims, Audience};
use partnergate::registry::audit_trail::{self as audit_query, AuditFilter};
use partnergate::registry::clients::{self, CreatedClient};
use partnergate::registry::secrets::{self, NewSecret};
use partnergate::registry::{partners, revocation, Caller};
use partnergate::secevents::revoked;
use partnergate::store::schema::revoked_tokens;
use serde_json::{json, Value};

const INTROSPECT: &str = "authz.introspect";
const CLIENTS_READ: &str = "authz.clients.read";
const CLIENTS_WRITE: &str = "authz.clients.write";

/// The members of an active introspection answer, `active` included.
const ACTIVE_MEMBERS: [&str; 12] =
    ["active", "scope", "client_id", "sub", "aud", "iss", "exp", "iat", "nbf", "jti", "token_type", "partner_id"];
/// The members that must equal the token's own claims.
const CLAIM_MEMBERS: [&str; 10] = ["scope", "client_id", "sub", "aud", "iss", "exp", "iat", "nbf", "jti", "partner_id"];

// ---------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 section 2.3.1).
fn basic_header(client_id: &str, secret: &str) -> String {
    use base64::Engine;
    let encode = |value: &str| {
        let pair = serde_urlencoded::to_string([("v", value)]).unwrap();
        pair["v=".len()..].to_string()
    };
    let credentials = format!("{}:{}", encode(client_id), encode(secret));
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(credentials))
}

/// `POST path` with `token=<token>`, authenticated by HTTP Basic as `client_id` / `secret`.
async fn post_token_as(
    server: &TestServer,
    path: &str,
    client_id: &str,
    secret: &str,
    token: &str,
) -> reqwest::Response {
    let authorization = basic_header(client_id, secret);
    post_form(server, path, &form(&[("token", token)]), &[("authorization", authorization.as_str())]).await
}

/// Introspects `token` as `caller` and returns the JSON answer after checking status and headers.
async fn introspection(server: &TestServer, caller: &CreatedClient, token: &str) -> Value {
    let response = post_token_as(server, "/oauth2/introspect", &caller.client.id, secret_of(caller), token).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "introspection failed: {text}");
    assert_eq!(headers.get("content-type").unwrap(), "application/json");
    assert_eq!(headers.get("cache-control").unwrap(), "no-store");
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("introspection answer is not JSON ({err}): {text}"))
}

/// Audit events matching `filter`, newest first, as JSON: the form in which the admin API and the CLI show
/// them (and independent of the library's record type).
fn audit(server: &TestServer, filter: &AuditFilter) -> Vec<Value> {
    let page = audit_query::list(&mut server.conn(), &Caller::cli(), filter).expect("audit query");
    page.items.iter().map(|item| serde_json::to_value(item).expect("audit event as JSON")).collect()
}

/// The newest audit event of `event_type` whose client is `client_id`.
fn last_event(server: &TestServer, event_type: &str, client_id: &str) -> Value {
    events(server, event_type, client_id, 1).into_iter().next().unwrap_or_else(|| panic!("no {event_type} event"))
}

/// Up to `limit` audit events of `event_type` whose client is `client_id`, newest first.
fn events(server: &TestServer, event_type: &str, client_id: &str, limit: i64) -> Vec<Value> {
    let filter = AuditFilter {
        event_type: Some(event_type.into()),
        client_id: Some(client_id.into()),
        limit: Some(limit),
        ..Default::default()
    };
    audit(server, &filter)
}

/// Asserts that `token` introspects as exactly `{"active": false}`, and that the audit event of that
/// introspection is a failure with `reason`.
async fn assert_inactive(server: &TestServer, caller: &CreatedClient, token: &str, case: &str, reason: &str) {
    let answer = introspection(server, caller, token).await;
    assert_eq!(answer, json!({"active": false}), "{case}: expected exactly {{\"active\": false}}");
    let event = last_event(server, "token.introspect", &caller.client.id);
    assert_eq!(event["outcome"], "failure", "{case}: {event}");
    assert_eq!(event["reason"], reason, "{case}: {event}");
    assert_eq!(event["scopes"], Value::Null, "{case}: an inactive token's scopes are not recorded as granted");
}

/// Asserts that `token` introspects as active and returns the answer; the audit event is a success.
async fn assert_active(server: &TestServer, caller: &CreatedClient, token: &str, case: &str) -> Value {
    let answer = introspection(server, caller, token).await;
    assert_eq!(answer["active"], json!(true), "{case}: {answer}");
    let event = last_event(server, "token.introspect", &caller.client.id);
    assert_eq!(event["outcome"], "success", "{case}: {event}");
    assert_eq!(event["reason"], Value::Null, "{case}: {event}");
    assert_eq!(event["jti"], answer["jti"], "{case}: the event names the token");
    answer
}

/// Revokes `token` as `client` through `/oauth2/revoke` and returns the status; a 200 must be empty and
/// uncacheable.
async fn revoke_as(server: &TestServer, client: &CreatedClient, token: &str) -> u16 {
    let response = post_token_as(server, "/oauth2/revoke", &client.client.id, secret_of(client), token).await;
    let status = response.status().as_u16();
    if status == 200 {
        assert_eq!(response.headers().get("cache-control").unwrap(), "no-store");
        assert_eq!(response.text().await.unwrap(), "", "a revocation answer has no body");
    }
    status
}

/// Claims as the server would issue them to `client`, valid now, with a fresh `jti`.
fn claims_for(server: &TestServer, client: &CreatedClient, audience: &str, scope: &str) -> AccessTokenClaims {
    let now = chrono::Utc::now().timestamp();
    AccessTokenClaims {
        iss: server.settings.issuer.clone(),
        sub: client.client.id.clone(),
        client_id: client.client.id.clone(),
        aud: Audience::One(audience.to_string()),
        iat: now,
        nbf: now,
        exp: now + 600,
        jti: random_base62(22),
        scope: scope.to_string(),
        partner_id: client.client.partner_id.clone(),
        secret_id: None,
    }
}

/// A token signed with the server's own active key.
fn sign_with_server_key(server: &TestServer, claims: &AccessTokenClaims) -> String {
    server.running().keys().current().sign_jwt(claims)
}

/// One character of the signature changed (the first, so that it is never a padding bit).
fn tamper_signature(token: &str) -> String {
    let (signed, signature) = token.rsplit_once('.').expect("three parts");
    let mut chars: Vec<char> = signature.chars().collect();
    chars[0] = if chars[0] == 'A' { 'B' } else { 'A' };
    format!("{signed}.{}", chars.into_iter().collect::<String>())
}

/// The original header and signature over a different payload.
fn swap_payload(token: &str, claims: &serde_json::Map<String, Value>) -> String {
    use base64::Engine;
    let parts: Vec<&str> = token.split('.').collect();
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_string(claims).unwrap());
    format!("{}.{payload}.{}", parts[0], parts[2])
}

fn revoked_rows(server: &TestServer) -> i64 {
    let mut conn = server.conn();
    revoked_tokens::table.count().get_result::<i64>(&mut *conn).expect("count revoked_tokens")
}

/// The introspection caller of a test: a resource server whose partner's ceiling holds `authz.introspect`
/// and whose client holds it through its role.
fn resource_server(server: &TestServer, partner_id: &str) -> CreatedClient {
    server.seed(partner_id).role(&[INTROSPECT]).create()
}

/// `POST /admin/v1{path}` with a bearer token; status and JSON body.
async fn admin_post_json(server: &TestServer, bearer: &str, path: &str) -> (u16, Value) {
    let reply = admin_post(server, bearer, path).await;
    (reply.status, reply.json())
}

/// The cut-off an admin revocation answered with (RFC 3339, UTC), parsed.
fn cutoff_of(body: &Value) -> chrono::NaiveDateTime {
    let text = body["tokens_revoked_before"].as_str().unwrap_or_else(|| panic!("no cut-off: {body}"));
    assert!(text.ends_with('Z'), "cut-off {text} is not UTC");
    chrono::DateTime::parse_from_rfc3339(text).unwrap_or_else(|err| panic!("cut-off {text}: {err}")).naive_utc()
}

// ---------------------------------------------------------------------------------------------------------
// 1. The introspection truth table
// ---------------------------------------------------------------------------------------------------------

/// An active token: every member of the answer equals the token's verified claims, and nothing else is there.
#[actix_web::test]
async fn introspection_of_a_fresh_token_returns_its_claims() {
    let server = TestServer::start().await;
    let rs = resource_server(&server, "fresh-rs");
    let api = "https://api.fresh.test";
    let owner = server.seed("fresh-a").role(&["orders.read"]).scopes(&["orders.write"]).audiences(&[api]).create();

    let token = server.token_for(&owner, &[], None).await;
    let claims = server.verify(&token, api).await;
    let answer = assert_active(&server, &rs, &token, "fresh token").await;

    let members: BTreeSet<&str> = answer.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(members, BTreeSet::from(ACTIVE_MEMBERS), "{answer}");
    for name in CLAIM_MEMBERS {
        assert_eq!(answer[name], claims[name], "member {name} differs from the token's claim: {answer}");
    }
    assert_eq!(answer["token_type"], "Bearer");
    // The claims themselves are what the client and its partner are.
    assert_eq!(answer["client_id"], owner.client.id.as_str());
    assert_eq!(answer["sub"], owner.client.id.as_str());
    assert_eq!(answer["partner_id"], "fresh-a");
    assert_eq!(answer["scope"], "orders.read orders.write");
    assert_eq!(answer["aud"], api);
    assert_eq!(answer["iss"], server.settings.issuer.as_str());
    assert_eq!(answer["exp"].as_i64().unwrap() - answer["iat"].as_i64().unwrap(), 600);
    assert_eq!(answer["nbf"], answer["iat"]);

    // The audit event names the token's owner and what was introspected.
    let event = last_event(&server, "token.introspect", &rs.client.id);
    assert_eq!(event["partner_id"], "fresh-rs");
    assert_eq!(event["scopes"], "orders.read orders.write");
    assert_eq!(event["audience"], api);
    let details = &event["details"];
    assert_eq!(details["token_client_id"], owner.client.id.as_str());
    assert_eq!(details["token_partner_id"], "fresh-a");

    // A narrower token, with the server default audience, introspects with exactly its own scope.
    let other = server.client_of("fresh-a").roles(&["role-fresh-a"]).create();
    let narrow = server.token_for(&other, &["orders.read"], None).await;
    let answer = assert_active(&server, &rs, &narrow, "narrow token").await;
    assert_eq!(answer["scope"], "orders.read");
    assert_eq!(answer["aud"], server.settings.default_audience.as_str());
    assert_eq!(answer["client_id"], other.client.id.as_str());
    server.stop().await;
}

/// Tokens that never were good: tampered, forged for another issuer, expired, not yet valid, signed by an
/// unknown key, `alg: none`, and garbage. Each is exactly `{"active": false}`, with the reason in the audit.
#[actix_web::test]
async fn introspection_rejects_invalid_tokens() {
    let server = TestServer::start().await;
    let rs = resource_server(&server, "bad-rs");
    let api = "https://api.bad.test";
    let owner = server.seed("bad-a").role(&["orders.read"]).audiences(&[api]).create();
    server.backdate_client(&owner.client.id, 3600);
    let token = server.token_for(&owner, &[], None).await;
    assert_active(&server, &rs, &token, "the untampered token").await;

    // One character of the signature changed.
    assert_inactive(&server, &rs, &tamper_signature(&token), "bad signature", "bad_signature_or_claims").await;
    // The original signature over a widened payload.
    let mut widened = claims_of(&token);
    widened["scope"] = json!("orders.read orders.admin");
    assert_inactive(&server, &rs, &swap_payload(&token, &widened), "altered payload", "bad_signature_or_claims").await;

    // Forged with the server's own key: first the control, which must be active, then one claim wrong each.
    let control = claims_for(&server, &owner, api, "orders.read");
    let answer = assert_active(&server, &rs, &sign_with_server_key(&server, &control), "forged control").await;
    assert_eq!(answer["jti"], control.jti.as_str());
    assert_eq!(answer["exp"], control.exp);

    let other_issuer =
        AccessTokenClaims { iss: "https://evil.example".into(), jti: random_base62(22), ..control.clone() };
    let other_issuer = sign_with_server_key(&server, &other_issuer);
    assert_inactive(&server, &rs, &other_issuer, "another issuer", "bad_signature_or_claims").await;

    let now = chrono::Utc::now().timestamp();
    let expired =
        AccessTokenClaims { iat: now - 610, nbf: now - 610, exp: now - 10, jti: random_base62(22), ..control.clone() };
    assert_inactive(&server, &rs, &sign_with_server_key(&server, &expired), "expired", "expired").await;
    // Within the 5 s leeway an expired token still counts (`oauth::verify::LEEWAY_SECS`), which shows the case above fails on
    // its expiry and not on anything else.
    let just_expired =
        AccessTokenClaims { iat: now - 601, nbf: now - 601, exp: now - 1, jti: random_base62(22), ..control.clone() };
    assert_active(&server, &rs, &sign_with_server_key(&server, &just_expired), "within the leeway").await;

    let not_yet =
        AccessTokenClaims { iat: now + 60, nbf: now + 60, exp: now + 660, jti: random_base62(22), ..control.clone() };
    assert_inactive(&server, &rs, &sign_with_server_key(&server, &not_yet), "not yet valid", "bad_signature_or_claims")
        .await;

    // Signed by a key the server does not have.
    let foreign_dir = tempfile::tempdir().unwrap();
    keys::generate(foreign_dir.path(), Algorithm::ES256, true).expect("foreign key");
    let foreign = KeyRing::load(foreign_dir.path()).unwrap().sign_jwt(&control);
    assert_inactive(&server, &rs, &foreign, "unknown key", "unknown_key").await;

    // `alg: none` with the server's kid.
    let unsigned = {
        use base64::Engine;
        let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
        let header = json!({"alg": "none", "typ": "at+jwt", "kid": kid});
        format!("{}.{}.", b64(&header), b64(&serde_json::to_value(&control).unwrap()))
    };
    assert_inactive(&server, &rs, &unsigned, "alg none", "malformed").await;

    // Garbage.
    assert_inactive(&server, &rs, "this is not a token", "garbage text", "malformed").await;
    assert_inactive(&server, &rs, "a.b.c", "three garbage parts", "malformed").await;
    assert_inactive(&server, &rs, &"x".repeat(9000), "oversized", "malformed").await;

    // None of this touched the real token.
    assert_active(&server, &rs, &token, "the untampered token afterwards").await;
    server.stop().await;
}

/// Tokens that were good and no longer stand: a revoked `jti`, a disabled client, a suspended partner, and
/// the bulk revocations of a client and of a partner. Disabling and suspending are standing checks made at
/// each introspection, not revocations: undoing them makes a token that was not revoked otherwise active again.
#[actix_web::test]
async fn introspection_follows_each_tokens_current_standing() {
    let server = TestServer::start().await;
    let rs = resource_server(&server, "stand-rs");
    let owner = server.seed("stand-a").role(&["orders.read"]).create();
    let role = ["role-stand-a"];

    // Revoked by its owner.
    let revoked = server.token_for(&owner, &[], None).await;
    assert_active(&server, &rs, &revoked, "before revocation").await;
    assert_eq!(revoke_as(&server, &owner, &revoked).await, 200);
    assert_inactive(&server, &rs, &revoked, "revoked jti", "revoked").await;
    // A sibling token of the same client is unaffected.
    let sibling = server.token_for(&owner, &[], None).await;
    assert_active(&server, &rs, &sibling, "sibling of a revoked token").await;

    // A disabled client, then enabled again.
    let disabled = server.client_of("stand-a").roles(&role).create();
    let token = server.token_for(&disabled, &[], None).await;
    assert_active(&server, &rs, &token, "before disabling").await;
    clients::set_enabled(&mut server.conn(), &Caller::cli(), &disabled.client.id, false).unwrap();
    assert_inactive(&server, &rs, &token, "disabled client", "client_disabled").await;
    assert_active(&server, &rs, &sibling, "another client of the partner").await;
    // Disabling is a standing check, not a revocation: enabling the client again revives the token.
    clients::set_enabled(&mut server.conn(), &Caller::cli(), &disabled.client.id, true).unwrap();
    assert_active(&server, &rs, &token, "client enabled again").await;

    // A suspended partner, then resumed.
    let suspended = server.seed("stand-s").role(&["orders.read"]).create();
    let token = server.token_for(&suspended, &[], None).await;
    assert_active(&server, &rs, &token, "before suspension").await;
    partners::set_suspended(&mut server.conn(), &Caller::cli(), "stand-s", true).unwrap();
    assert_inactive(&server, &rs, &token, "suspended partner", "partner_suspended").await;
    assert_active(&server, &rs, &sibling, "a client of another partner").await;
    // Suspension is a standing check too: resuming revives the token.
    partners::set_suspended(&mut server.conn(), &Caller::cli(), "stand-s", false).unwrap();
    assert_active(&server, &rs, &token, "partner resumed").await;

    // A client's tokens revoked in bulk: earlier ones dead for good, later ones fine.
    let bulk = server.client_of("stand-a").roles(&role).create();
    let early = server.token_for(&bulk, &[], None).await;
    assert_active(&server, &rs, &early, "before the client's bulk revocation").await;
    revocation::revoke_client_tokens(&mut server.conn(), &Caller::cli(), &bulk.client.id).unwrap();
    assert_inactive(&server, &rs, &early, "issued before its client's cut-off", "revoked_in_bulk").await;
    let late = server.token_for(&bulk, &[], None).await;
    assert_active(&server, &rs, &late, "issued after its client's cut-off").await;
    assert_active(&server, &rs, &sibling, "another client of the partner after a client cut-off").await;
    // A bulk revocation is not undone by disabling and enabling.
    clients::set_enabled(&mut server.conn(), &Caller::cli(), &bulk.client.id, false).unwrap();
    clients::set_enabled(&mut server.conn(), &Caller::cli(), &bulk.client.id, true).unwrap();
    assert_inactive(&server, &rs, &early, "bulk-revoked, after disable and enable", "revoked_in_bulk").await;

    // A partner's tokens revoked in bulk.
    let first = server.seed("stand-p").role(&["orders.read"]).create();
    let second = server.client_of("stand-p").roles(&["role-stand-p"]).create();
    let first_early = server.token_for(&first, &[], None).await;
    let second_early = server.token_for(&second, &[], None).await;
    assert_active(&server, &rs, &first_early, "before the partner's bulk revocation").await;
    revocation::revoke_partner_tokens(&mut server.conn(), &Caller::cli(), "stand-p").unwrap();
    assert_inactive(&server, &rs, &first_early, "issued before its partner's cut-off", "revoked_in_bulk").await;
    assert_inactive(&server, &rs, &second_early, "another client, same partner cut-off", "revoked_in_bulk").await;
    let second_late = server.token_for(&second, &[], None).await;
    assert_active(&server, &rs, &second_late, "issued after its partner's cut-off").await;
    assert_active(&server, &rs, &sibling, "a client of another partner after a partner cut-off").await;
    // Suspension and resumption do not undo it either.
    partners::set_suspended(&mut server.conn(), &Caller::cli(), "stand-p", true).unwrap();
    assert_inactive(&server, &rs, &second_late, "suspended after the cut-off", "partner_suspended").await;
    partners::set_suspended(&mut server.conn(), &Caller::cli(), "stand-p", false).unwrap();
    assert_inactive(&server, &rs, &first_early, "bulk-revoked, after suspend and resume", "revoked_in_bulk").await;
    assert_active(&server, &rs, &second_late, "after resumption").await;

    // A deleted client's tokens.
    let deleted = server.client_of("stand-a").roles(&role).create();
    let token = server.token_for(&deleted, &[], None).await;
    assert_active(&server, &rs, &token, "before deletion").await;
    clients::delete(&mut server.conn(), &Caller::cli(), &deleted.client.id).unwrap();
    assert_inactive(&server, &rs, &token, "deleted client", "unknown_client").await;
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------------------
// 2. Who may introspect
// ---------------------------------------------------------------------------------------------------------

#[actix_web::test]
async fn introspection_requires_an_authenticated_caller_holding_the_scope() {
    let server = TestServer::start().await;
    let owner = server.seed("acc-a").role(&["orders.read"]).create();
    let token = server.token_for(&owner, &[], None).await;
    // Holds the scope directly rather than through a role.
    let direct = server.seed("acc-rs").role(&["orders.read"]).scopes(&[INTROSPECT]).create();
    let answer = assert_active(&server, &direct, &token, "direct scope").await;
    assert_eq!(answer["client_id"], owner.client.id.as_str());

    // client_secret_post works as well as Basic.
    let body = form(&[
        ("token", token.as_str()),
        ("client_id", direct.client.id.as_str()),
        ("client_secret", secret_of(&direct)),
    ]);
    let response = post_form(&server, "/oauth2/introspect", &body, &[]).await;
    assert_eq!(response.status().as_u16(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["active"], true);
    assert_eq!(answer["jti"], claims_of(&token)["jti"]);

    // A client without the scope: 403 unauthorized_client, and no token data.
    let check_forbidden = |response: reqwest::Response, case: &'static str| async move {
        let (status, error, _) = oauth_error(response).await;
        assert_eq!((status, error.as_str()), (403, "unauthorized_client"), "{case}");
    };
    let plain = server.client_of("acc-rs").roles(&["role-acc-rs"]).create();
    let response = post_token_as(&server, "/oauth2/introspect", &plain.client.id, secret_of(&plain), &token).await;
    check_forbidden(response, "client without the scope").await;
    let event = last_event(&server, "token.introspect", &plain.client.id);
    assert_eq!(event["outcome"], "failure");
    assert!(event["reason"].as_str().unwrap().starts_with("unauthorized_client"), "{event}");
    assert_eq!(event["jti"], Value::Null, "the token was not looked at: {event}");
    // The token owner itself, without the scope.
    let response = post_token_as(&server, "/oauth2/introspect", &owner.client.id, secret_of(&owner), &token).await;
    check_forbidden(response, "the token's own client").await;

    // A role holding the scope does not help when the partner's ceiling lacks it.
    let mut conn = server.conn();
    partnergate::registry::roles::create(&mut conn, &Caller::cli(), "acc-wide", "", &strings(&[INTROSPECT])).unwrap();
    drop(conn);
    server.seed("acc-capped").role(&["orders.read"]).create();
    let capped = server.client_of("acc-capped").roles(&["acc-wide"]).create();
    let response = post_token_as(&server, "/oauth2/introspect", &capped.client.id, secret_of(&capped), &token).await;
    check_forbidden(response, "scope outside the ceiling").await;

    // Bad credentials: 401 invalid_client, with a Basic challenge when Basic was used.
    let wrong = ClientSecret::generate();
    let response = post_token_as(&server, "/oauth2/introspect", &direct.client.id, wrong.expose(), &token).await;
    let (status, error, headers) = oauth_error(response).await;
    assert_eq!((status, error.as_str()), (401, "invalid_client"));
    assert_eq!(headers.get("www-authenticate").unwrap(), "Basic realm=\"partnergate\"");
    assert_eq!(last_event(&server, "token.introspect", &direct.client.id)["reason"], "wrong_secret");
    let body =
        form(&[("token", token.as_str()), ("client_id", direct.client.id.as_str()), ("client_secret", wrong.expose())]);
    let (status, error, _) = oauth_error(post_form(&server, "/oauth2/introspect", &body, &[]).await).await;
    assert_eq!((status, error.as_str()), (401, "invalid_client"));
    // Another client's (valid) secret.
    let response = post_token_as(&server, "/oauth2/introspect", &direct.client.id, secret_of(&owner), &token).await;
    assert_eq!(oauth_error(response).await.0, 401);
    // No credentials at all.
    let response = post_form(&server, "/oauth2/introspect", &form(&[("token", &token)]), &[]).await;
    let (status, error, _) = oauth_error(response).await;
    assert_eq!((status, error.as_str()), (401, "invalid_client"));
    // An unknown client id.
    let response = post_token_as(&server, "/oauth2/introspect", "pgc_nosuchclient", wrong.expose(), &token).await;
    assert_eq!(oauth_error(response).await.0, 401);

    // Missing token: 400 invalid_request, for an authorized caller; an empty token counts as missing.
    let authorization = basic_header(&direct.client.id, secret_of(&direct));
    for body in ["", "token=", "other=1"] {
        let response = post_form(&server, "/oauth2/introspect", body, &[("authorization", &authorization)]).await;
        let (status, error, _) = oauth_error(response).await;
        assert_eq!((status, error.as_str()), (400, "invalid_request"), "body {body:?}");
    }

    // A caller whose own client is disabled, or whose partner is suspended, is no caller at all.
    clients::set_enabled(&mut server.conn(), &Caller::cli(), &direct.client.id, false).unwrap();
    let response = post_token_as(&server, "/oauth2/introspect", &direct.client.id, secret_of(&direct), &token).await;
    assert_eq!(oauth_error(response).await.0, 401);
    clients::set_enabled(&mut server.conn(), &Caller::cli(), &direct.client.id, true).unwrap();
    partners::set_suspended(&mut server.conn(), &Caller::cli(), "acc-rs", true).unwrap();
    let response = post_token_as(&server, "/oauth2/introspect", &direct.client.id, secret_of(&direct), &token).await;
    assert_eq!(oauth_error(response).await.0, 401);
    partners::set_suspended(&mut server.conn(), &Caller::cli(), "acc-rs", false).unwrap();
    assert_active(&server, &direct, &token, "caller restored").await;
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------------------
// 3. Revocation rules
// ---------------------------------------------------------------------------------------------------------

#[actix_web::test]
async fn a_client_revokes_only_its_own_tokens() {
    let server = TestServer::start().await;
    let rs = resource_server(&server, "rev-rs");
    let owner = server.seed("rev-a").role(&["orders.read"]).create();
    server.backdate_client(&owner.client.id, 3600);
    let colleague = server.client_of("rev-a").roles(&["role-rev-a"]).create();
    let stranger = server.seed("rev-b").role(&["orders.read"]).create();
    let token = server.token_for(&owner, &[], None).await;
    let jti = claims_of(&token)["jti"].as_str().unwrap().to_string();
    let exp = claims_of(&token)["exp"].as_i64().unwrap();
    assert_eq!(revoked_rows(&server), 0);

    // Other clients, of the same partner or another one, get 200 and change nothing.
    assert_eq!(revoke_as(&server, &colleague, &token).await, 200);
    assert_eq!(revoke_as(&server, &stranger, &token).await, 200);
    assert_eq!(revoked_rows(&server), 0);
    assert_active(&server, &rs, &token, "after others tried to revoke it").await;

    // Bad credentials: 401, with the Basic challenge; nothing revoked.
    let wrong = ClientSecret::generate();
    let response = post_token_as(&server, "/oauth2/revoke", &owner.client.id, wrong.expose(), &token).await;
    let (status, error, headers) = oauth_error(response).await;
    assert_eq!((status, error.as_str()), (401, "invalid_client"));
    assert_eq!(headers.get("www-authenticate").unwrap(), "Basic realm=\"partnergate\"");
    let response = post_form(&server, "/oauth2/revoke", &form(&[("token", &token)]), &[]).await;
    assert_eq!(oauth_error(response).await.0, 401, "no credentials");
    assert_active(&server, &rs, &token, "after a revocation with bad credentials").await;

    // Missing token: 400 invalid_request.
    let authorization = basic_header(&owner.client.id, secret_of(&owner));
    let response = post_form(&server, "/oauth2/revoke", "", &[("authorization", &authorization)]).await;
    let (status, error, _) = oauth_error(response).await;
    assert_eq!((status, error.as_str()), (400, "invalid_request"));

    // The owner revokes it: 200, and it is dead.
    assert_eq!(revoke_as(&server, &owner, &token).await, 200);
    assert_inactive(&server, &rs, &token, "revoked by its owner", "revoked").await;
    // Revoking again is fine and changes nothing.
    assert_eq!(revoke_as(&server, &owner, &token).await, 200);
    assert_inactive(&server, &rs, &token, "revoked twice", "revoked").await;

    // client_secret_post works for revocation too.
    let second = server.token_for(&owner, &[], None).await;
    let body = form(&[
        ("token", second.as_str()),
        ("client_id", owner.client.id.as_str()),
        ("client_secret", secret_of(&owner)),
    ]);
    assert_eq!(post_form(&server, "/oauth2/revoke", &body, &[]).await.status().as_u16(), 200);
    assert_inactive(&server, &rs, &second, "revoked with client_secret_post", "revoked").await;

    // Unknown and invalid tokens: 200, nothing stored.
    let before = revoked_rows(&server);
    assert_eq!(before, 2);
    assert_eq!(revoke_as(&server, &owner, "not a token").await, 200);
    assert_eq!(revoke_as(&server, &owner, &tamper_signature(&token)).await, 200);
    let now = chrono::Utc::now().timestamp();
    let expired = AccessTokenClaims {
        iat: now - 700,
        nbf: now - 700,
        exp: now - 100,
        ..claims_for(&server, &owner, &server.settings.default_audience, "orders.read")
    };
    assert_eq!(revoke_as(&server, &owner, &sign_with_server_key(&server, &expired)).await, 200);
    assert_eq!(revoked_rows(&server), before, "nothing stored for invalid or expired tokens");

    // The stored row: the token's jti and client, kept until the token's own expiry.
    let rows: Vec<(String, String, chrono::NaiveDateTime)> = revoked_tokens::table
        .filter(revoked_tokens::jti.eq(&jti))
        .select((revoked_tokens::jti, revoked_tokens::client_id, revoked_tokens::expires_at))
        .load(&mut *server.conn())
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1, owner.client.id);
    assert_eq!(rows[0].2.and_utc().timestamp(), exp);

    // Pruning keeps the revocations of unexpired tokens and forgets those of expired ones.
    assert_eq!(revocation::prune_expired(&mut server.conn(), partnergate::store::now()).unwrap(), 0);
    assert_eq!(revoked_rows(&server), 2);
    let long_ago = partnergate::store::now() - chrono::Duration::hours(1);
    assert!(revoked::revoke_jti(
        &mut server.conn(),
        "expired-jti",
        &owner.client.id,
        long_ago,
        partnergate::store::now()
    )
    .unwrap());
    assert!(!revoked::revoke_jti(
        &mut server.conn(),
        "expired-jti",
        &owner.client.id,
        long_ago,
        partnergate::store::now()
    )
    .unwrap());
    assert_eq!(revoked_rows(&server), 3);
    assert_eq!(revocation::prune_expired(&mut server.conn(), partnergate::store::now()).unwrap(), 1);
    assert_eq!(revoked_rows(&server), 2);
    let left: i64 = revoked_tokens::table
        .filter(revoked_tokens::jti.eq("expired-jti"))
        .count()
        .get_result(&mut *server.conn())
        .unwrap();
    assert_eq!(left, 0);
    assert_inactive(&server, &rs, &token, "revoked, after pruning", "revoked").await;
    server.stop().await;
}

/// A revoked token just past its `exp` still verifies for 5 s (the leeway of `oauth::verify`), so its revocation
/// must outlive `exp` by at least that much: pruning in that window must not bring it back to life. (Rows of
/// long-expired tokens are pruned: see `a_client_revokes_only_its_own_tokens`.)
#[actix_web::test]
async fn pruning_does_not_revive_a_revoked_token_within_the_expiry_leeway() {
    let clock = manual_clock();
    let server = TestServer::start_on(&clock).await;
    let rs = resource_server(&server, "leeway-rs");
    let owner = server.seed("leeway-a").role(&["orders.read"]).create();
    server.backdate_client(&owner.client.id, 3600);
    let now = partnergate::clock::Clock::now(&clock).and_utc().timestamp();
    let claims = AccessTokenClaims {
        iat: now - 599,
        nbf: now - 599,
        exp: now + 1,
        ..claims_for(&server, &owner, &server.settings.default_audience, "orders.read")
    };
    let token = sign_with_server_key(&server, &claims);
    assert_active(&server, &rs, &token, "before revocation").await;
    assert_eq!(revoke_as(&server, &owner, &token).await, 200);
    assert_eq!(revoked_rows(&server), 1);

    // Past exp, well inside the leeway, on the server's clock.
    clock.advance(chrono::Duration::milliseconds(2300));
    assert_eq!(
        revocation::prune_expired(&mut server.conn(), partnergate::clock::Clock::now(&clock)).unwrap(),
        0,
        "pruned inside the leeway"
    );
    assert_eq!(revoked_rows(&server), 1);
    assert_inactive(&server, &rs, &token, "revoked, just past exp", "revoked").await;
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------------------
// 4. Bulk revocation
// ---------------------------------------------------------------------------------------------------------

#[actix_web::test]
async fn the_operator_revokes_a_clients_or_a_partners_tokens_through_the_admin_api() {
    let server = TestServer::start().await;
    let rs = resource_server(&server, "bulk-rs");
    let operator = server.operator().await.1;
    let first = server.seed("bulk-a").role(&["orders.read"]).create();
    let second = server.client_of("bulk-a").roles(&["role-bulk-a"]).create();
    let outsider = server.seed("bulk-b").role(&["orders.read"]).create();
    let first_early = server.token_for(&first, &[], None).await;
    let second_early = server.token_for(&second, &[], None).await;
    let outsider_token = server.token_for(&outsider, &[], None).await;
    assert_active(&server, &rs, &first_early, "before any revocation").await;

    // One client.
    let before = partnergate::store::now();
    let (status, body) =
        admin_post_json(&server, &operator, &format!("/clients/{}/revoke-tokens", first.client.id)).await;
    assert_eq!(status, 200, "{body}");
    let cutoff = cutoff_of(&body);
    assert!(cutoff >= before && cutoff <= partnergate::store::now(), "cut-off {cutoff} is now");
    assert_inactive(&server, &rs, &first_early, "client revoked by the operator", "revoked_in_bulk").await;
    assert_active(&server, &rs, &second_early, "the partner's other client").await;
    let first_late = server.token_for(&first, &[], None).await;
    assert!(claims_of(&first_late)["iat"].as_i64().unwrap() > cutoff.and_utc().timestamp());
    assert_active(&server, &rs, &first_late, "new token after the client cut-off").await;
    let event = last_event(&server, "client.revoke_tokens", &first.client.id);
    assert_eq!(event["outcome"], "success");
    assert!(event["actor"].as_str().unwrap().starts_with("client:pgc_"), "{event}");

    // The whole partner.
    let (status, body) = admin_post_json(&server, &operator, "/partners/bulk-a/revoke-tokens").await;
    assert_eq!(status, 200, "{body}");
    let partner_cutoff = cutoff_of(&body);
    assert!(partner_cutoff >= cutoff);
    assert_inactive(&server, &rs, &first_late, "partner revoked: first client", "revoked_in_bulk").await;
    assert_inactive(&server, &rs, &second_early, "partner revoked: second client", "revoked_in_bulk").await;
    assert_active(&server, &rs, &outsider_token, "another partner's token").await;
    let second_late = server.token_for(&second, &[], None).await;
    assert_active(&server, &rs, &second_late, "new token after the partner cut-off").await;
    let first_latest = server.token_for(&first, &[], None).await;
    assert_active(&server, &rs, &first_latest, "new token of the first client").await;

    // Unknown ids: 404. No token or a wrong one: 401.
    let (status, body) = admin_post_json(&server, &operator, "/clients/pgc_nosuchclient/revoke-tokens").await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    let (status, body) = admin_post_json(&server, &operator, "/partners/no-such-partner/revoke-tokens").await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    let (status, body) = admin_post_json(&server, &second_late, "/partners/bulk-b/revoke-tokens").await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_token")), "a token for another audience");
    assert_active(&server, &rs, &outsider_token, "after refused revocations").await;
    server.stop().await;
}

#[actix_web::test]
async fn revoking_a_leaked_secret_can_revoke_its_clients_tokens() {
    let server = TestServer::start().await;
    let rs = resource_server(&server, "leak-rs");
    let leaky = server.seed("leak-a").role(&["orders.read"]).create();
    let spare = secrets::create(
        &mut server.conn(),
        &Caller::cli(),
        &leaky.client.id,
        &NewSecret { name: Some("spare".into()), ..Default::default() },
        LIMITS.secret_policy,
    )
    .unwrap();
    let bystander = server.client_of("leak-a").roles(&["role-leak-a"]).create();
    let early = server.token_for(&leaky, &[], None).await;
    let early_spare =
        fetch_token(&server, AuthType::BasicAuth, &leaky.client.id, spare.secret.expose(), &[], None).await.unwrap();
    let bystander_token = server.token_for(&bystander, &[], None).await;
    assert_active(&server, &rs, &early, "before the leak").await;

    let info = revocation::revoke_secret(&mut server.conn(), &Caller::cli(), &leaky.client.id, &leaky.secret.id, true)
        .expect("revoke the leaked secret");
    assert_eq!(info.id, leaky.secret.id);
    assert!(info.revoked_at.is_some() && !info.active);

    // Every earlier token of the client is dead, whichever secret obtained it; other clients are untouched.
    assert_inactive(&server, &rs, &early, "issued with the leaked secret", "revoked_in_bulk").await;
    assert_inactive(&server, &rs, &early_spare, "issued with the other secret", "revoked_in_bulk").await;
    assert_active(&server, &rs, &bystander_token, "another client of the partner").await;
    // The leaked secret gets nothing more; the spare one gets a working token.
    let refused = fetch_token(&server, AuthType::BasicAuth, &leaky.client.id, secret_of(&leaky), &[], None).await;
    match refused {
        Err(oauth2::RequestTokenError::ServerResponse(response)) => {
            assert_eq!(response.error(), &oauth2::basic::BasicErrorResponseType::InvalidClient)
        }
        other => panic!("the revoked secret must get invalid_client, got {other:?}"),
    }
    let fresh =
        fetch_token(&server, AuthType::BasicAuth, &leaky.client.id, spare.secret.expose(), &[], None).await.unwrap();
    let answer = assert_active(&server, &rs, &fresh, "new token with the spare secret").await;
    assert_eq!(answer["client_id"], leaky.client.id.as_str());

    // The secret revocation and the bulk revocation were recorded together.
    let event = last_event(&server, "client.revoke_tokens", &leaky.client.id);
    assert_eq!((&event["outcome"], &event["actor"]), (&json!("success"), &json!("cli")));
    let event = last_event(&server, "secret.revoke", &leaky.client.id);
    assert_eq!(event["details"]["secret_id"], leaky.secret.id.as_str());
    server.stop().await;
}

/// A partner admin (`authz.clients.write`, admin audience) may cut off its own partner's clients, gets the
/// 404 of a nonexistent client for another partner's, and may not cut off a whole partner.
#[actix_web::test]
async fn a_partner_admin_revokes_tokens_of_its_own_partners_clients_only() {
    let server = TestServer::start().await;
    let rs = resource_server(&server, "padm-rs");
    let admin_aud = server.settings.admin_audience.clone();
    let admin = server.seed("padm-a").role(&["orders.read"]).scopes(&[CLIENTS_WRITE]).audiences(&[&admin_aud]).create();
    let admin_token = server.token_for(&admin, &[], None).await;
    assert_eq!(claims_of(&admin_token)["aud"], admin_aud.as_str());
    let own = server.client_of("padm-a").roles(&["role-padm-a"]).create();
    let foreign = server.seed("padm-b").role(&["orders.read"]).create();
    let own_token = server.token_for(&own, &[], None).await;
    let foreign_token = server.token_for(&foreign, &[], None).await;

    let (status, body) =
        admin_post_json(&server, &admin_token, &format!("/clients/{}/revoke-tokens", own.client.id)).await;
    assert_eq!(status, 200, "{body}");
    assert_inactive(&server, &rs, &own_token, "revoked by its partner admin", "revoked_in_bulk").await;
    assert_active(&server, &rs, &server.token_for(&own, &[], None).await, "new token after it").await;
    let event = last_event(&server, "client.revoke_tokens", &own.client.id);
    assert_eq!(event["actor"], format!("client:{}", admin.client.id));

    // Another partner's client: the same 404 as a client that does not exist, and nothing changes.
    let (status, body) =
        admin_post_json(&server, &admin_token, &format!("/clients/{}/revoke-tokens", foreign.client.id)).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")), "{body}");
    assert!(!body.to_string().contains("padm-b"), "{body}");
    let (status, _) = admin_post_json(&server, &admin_token, "/clients/pgc_nosuchclient/revoke-tokens").await;
    assert_eq!(status, 404);
    assert_active(&server, &rs, &foreign_token, "another partner's client after the attempt").await;
    assert!(events(&server, "client.revoke_tokens", &foreign.client.id, 10).is_empty());

    // Partner-wide revocation is the operator's, even for the admin's own partner.
    for partner in ["padm-a", "padm-b"] {
        let (status, body) =
            admin_post_json(&server, &admin_token, &format!("/partners/{partner}/revoke-tokens")).await;
        assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")), "{partner}: {body}");
    }
    assert_active(&server, &rs, &foreign_token, "after refused partner revocations").await;
    assert_active(&server, &rs, &admin_token, "the admin's own token after its refused revocation").await;

    // A read-only partner admin may not revoke at all.
    let reader = server.seed("padm-r").role(&["orders.read"]).scopes(&[CLIENTS_READ]).audiences(&[&admin_aud]).create();
    let reader_own = server.client_of("padm-r").roles(&["role-padm-r"]).create();
    let reader_own_token = server.token_for(&reader_own, &[], None).await;
    let reader_token = server.token_for(&reader, &[], None).await;
    let (status, body) =
        admin_post_json(&server, &reader_token, &format!("/clients/{}/revoke-tokens", reader_own.client.id)).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")), "{body}");
    assert_active(&server, &rs, &reader_own_token, "after a read-only admin's attempt").await;
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------------------
// 5. The audit trail
// ---------------------------------------------------------------------------------------------------------

#[actix_web::test]
async fn introspections_and_revocations_are_audited() {
    let server = TestServer::start().await;
    let rs = resource_server(&server, "aud-rs");
    let owner = server.seed("aud-a").role(&["orders.read"]).create();
    let stranger = server.seed("aud-b").role(&["orders.read"]).create();
    let token = server.token_for(&owner, &[], None).await;
    let jti = claims_of(&token)["jti"].as_str().unwrap().to_string();

    // Introspections: active, then inactive once revoked, then expired.
    assert_active(&server, &rs, &token, "active").await;
    // A stranger's revocation attempt: served (200) but not carried out, so recorded as a failure.
    assert_eq!(revoke_as(&server, &stranger, &token).await, 200);
    let attempt = last_event(&server, "token.revoke", &stranger.client.id);
    assert_eq!(attempt["outcome"], "failure");
    assert_eq!(attempt["reason"], "not revoked: the token belongs to another client");
    assert_eq!(attempt["partner_id"], "aud-b");
    assert_eq!(attempt["jti"], jti.as_str());
    assert_eq!(attempt["details"]["token_client_id"], owner.client.id.as_str());

    // The owner's revocation: a success naming the token; the second one says it was already revoked.
    assert_eq!(revoke_as(&server, &owner, &token).await, 200);
    assert_eq!(revoke_as(&server, &owner, &token).await, 200);
    let revocations = events(&server, "token.revoke", &owner.client.id, 10);
    assert_eq!(revocations.len(), 2);
    for (event, already) in revocations.iter().zip([true, false]) {
        assert_eq!(event["outcome"], "success", "{event}");
        assert_eq!(event["reason"], Value::Null);
        assert_eq!(event["jti"], jti.as_str());
        assert_eq!(event["partner_id"], "aud-a");
        assert_eq!(event["secret_id"], owner.secret.id.as_str());
        assert_eq!(event["details"]["already_revoked"], already, "{event}");
    }
    // An unknown token: served, not carried out, recorded as a failure with the reason.
    assert_eq!(revoke_as(&server, &owner, "garbage").await, 200);
    let garbage = last_event(&server, "token.revoke", &owner.client.id);
    assert_eq!((&garbage["outcome"], &garbage["reason"]), (&json!("failure"), &json!("not revoked: malformed")));
    // Bad credentials at the revocation endpoint.
    let response =
        post_token_as(&server, "/oauth2/revoke", &owner.client.id, ClientSecret::generate().expose(), &token).await;
    assert_eq!(response.status().as_u16(), 401);
    let denied = last_event(&server, "token.revoke", &owner.client.id);
    assert_eq!((&denied["outcome"], &denied["reason"]), (&json!("failure"), &json!("wrong_secret")));

    assert_inactive(&server, &rs, &token, "revoked", "revoked").await;
    let now = chrono::Utc::now().timestamp();
    let expired = AccessTokenClaims {
        iat: now - 700,
        nbf: now - 700,
        exp: now - 100,
        ..claims_for(&server, &owner, &server.settings.default_audience, "orders.read")
    };
    assert_inactive(&server, &rs, &sign_with_server_key(&server, &expired), "expired", "expired").await;

    // The introspection trail, newest first, as the operator reads it with the event-type filter.
    let filter = AuditFilter { event_type: Some("token.introspect".into()), ..Default::default() };
    let trail = audit(&server, &filter);
    let summary: Vec<(&str, Option<&str>)> =
        trail.iter().map(|e| (e["outcome"].as_str().unwrap(), e["reason"].as_str())).collect();
    assert_eq!(summary, [("failure", Some("expired")), ("failure", Some("revoked")), ("success", None)]);
    assert!(trail.iter().all(|e| e["client_id"] == rs.client.id.as_str()), "{trail:?}");
    assert!(trail.iter().all(|e| e["secret_id"] == rs.secret.id.as_str()), "{trail:?}");
    assert_eq!(trail[1]["jti"], jti.as_str());
    assert_eq!(trail[0]["jti"], Value::Null, "an expired token's claims are not trusted, not even its jti");
    // Only the owner's revocations succeeded.
    let filter =
        AuditFilter { event_type: Some("token.revoke".into()), outcome: Some("success".into()), ..Default::default() };
    let succeeded = audit(&server, &filter);
    assert_eq!(succeeded.len(), 2);
    assert!(succeeded.iter().all(|e| e["client_id"] == owner.client.id.as_str()), "{succeeded:?}");
    server.stop().await;
}

/// Issue 17 item 2: an instance that has not yet heard that a secret was revoked (with its tokens) on another
/// instance issues tokens with it. Before tokens named their secret, those outlived the bulk cut-off when they
/// fell in a later second than the revocation, and stayed active for their whole lifetime. The race is forced:
/// the revocation is written behind the stale instance's back, two seconds in its past, and the instance is
/// told only after it has issued a token with the secret.
#[actix_web::test]
async fn a_token_obtained_with_a_secret_after_its_revocation_is_refused_by_every_instance() {
    let stale = TestServer::start().await;
    let reader = resource_server(&stale, "rs");
    let client = stale.seed("leaky").role(&["l.read"]).create();
    let id = client.client.id.clone();
    // The stale instance holds the client's snapshot (a load that races with the seeding's own change
    // notices is not cached, so ask until it is).
    for _ in 0..50 {
        stale.token_for(&client, &[], None).await;
        if stale.running().read_model().cached(&id).is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(stale.running().read_model().cached(&id).is_some(), "the snapshot is cached");

    let revoked_at = chrono::Utc::now().naive_utc().with_nanosecond(0).unwrap() - chrono::Duration::seconds(2);
    {
        use partnergate::store::schema::{client_secrets, clients as clients_table};
        let mut conn = stale.conn();
        diesel::update(client_secrets::table.filter(client_secrets::client_id.eq(&id)))
            .set(client_secrets::revoked_at.eq(Some(revoked_at)))
            .execute(&mut *conn)
            .unwrap();
        diesel::update(clients_table::table.find(&id))
            .set(clients_table::tokens_revoked_before.eq(Some(revoked_at)))
            .execute(&mut *conn)
            .unwrap();
    }
    let after = stale.token_for(&client, &[], None).await;
    assert_eq!(claims_of(&after)["secret_id"], json!(client.secret.id), "the token names its secret");
    // What the change feed would deliver a moment later.
    stale.running().changes().apply(&[partnergate::store::changes::Change::Client(id.clone())]);

    let other = TestServer::start_beside(&stale).await;
    for (server, name) in [(&stale, "the stale instance"), (&other, "another instance")] {
        assert_inactive(server, &reader, &after, name, "secret_revoked").await;
    }
    other.stop().await;
    stale.stop().await;
}
