//! The admin API end to end: the real server on a loopback port, admin tokens fetched with the `oauth2` crate,
//! the admin API called with `reqwest`. Tenant isolation, escalation attempts, secret rotation, bootstrap and
//! input validation.

mod common;

use std::collections::BTreeSet;

use common::*;
use oauth2::basic::BasicErrorResponseType;
use oauth2::{AuthType, RequestTokenError};
use partnergate::credentials::{new_client_id, new_secret_id, random_base62};
use partnergate::keys::KeyRing;
use partnergate::oauth::{AccessTokenClaims, Audience};
use partnergate::registry::clients::{self, ClientFilter, CreatedClient, NewClient};
use partnergate::registry::partners;
use partnergate::registry::secrets::{self, NewSecret};
use partnergate::registry::{bootstrap, roles, scopes, Caller, RegistryError};
use reqwest::Method;
use serde_json::{json, Value};

const READ: &str = "authz.clients.read";
const WRITE: &str = "authz.clients.write";
const ADMIN: &str = "authz.admin";

// ---------------------------------------------------------------------------------------------------------
// 1. Tenant isolation
// ---------------------------------------------------------------------------------------------------------

/// Partner A's admin names partner B's client, its secrets and partner B itself on every endpoint. Each answer
/// is the 404 that a nonexistent id gets, byte for byte once the ids are blanked out, and B is untouched.
#[actix_web::test]
async fn partner_admin_cannot_see_or_touch_another_partners_clients() {
    let server = TestServer::start().await;
    let (a_admin, a) = partner_admin(&server, "iso-a", &["orders.read"], &[READ, WRITE]).await;
    let a_other = server.client_of("iso-a").scopes(&["orders.read"]).create();
    let b = server.seed("iso-b").role(&["orders.read"]).scopes(&["orders.write"]).create();
    let b_id = b.client.id.clone();
    let b_second = secrets::create(
        &mut server.conn(),
        &Caller::cli(),
        &b_id,
        &NewSecret { name: Some("second".into()), ..Default::default() },
        LIMITS.secret_policy,
    )
    .expect("second secret for B");
    let b_before = client_snapshot(&server, &b_id);
    let b_partner_before =
        serde_json::to_value(partners::get(&mut server.conn(), &Caller::cli(), "iso-b").unwrap()).unwrap();

    // The token works: A's admin reads its own partner's client and partner.
    let own = a.get(&format!("/clients/{}", a_other.client.id)).await.expect_json(200);
    assert_eq!(own["id"], a_other.client.id.as_str());
    assert_eq!(own["partner_id"], "iso-a");
    assert_eq!(a.get("/partners/iso-a").await.expect_json(200)["id"], "iso-a");

    let missing = new_client_id();
    let missing_secret = new_secret_id();
    let b_secret = b.secret.id.as_str();
    let hijack = json!({"name": "hijacked", "scopes": ["orders.read"]});
    let rotate = json!({"name": "stolen", "grace_period_secs": 0});
    // (method, path template, body): `{c}` is the client id and `{s}` a secret id.
    let matrix: Vec<(Method, &str, Option<Value>)> = vec![
        (Method::GET, "/clients/{c}", None),
        (Method::PATCH, "/clients/{c}", Some(hijack.clone())),
        (Method::DELETE, "/clients/{c}", None),
        (Method::POST, "/clients/{c}/enable", None),
        (Method::POST, "/clients/{c}/disable", None),
        (Method::POST, "/clients/{c}/secrets", Some(rotate.clone())),
        (Method::POST, "/clients/{c}/secrets", None),
        (Method::GET, "/clients/{c}/secrets", None),
        (Method::DELETE, "/clients/{c}/secrets/{s}", None),
    ];
    for (method, template, body) in &matrix {
        let path_b = template.replace("{c}", &b_id).replace("{s}", b_secret);
        let path_missing = template.replace("{c}", &missing).replace("{s}", &missing_secret);
        let on_b = a.send(method.clone(), &path_b, body.clone()).await;
        let on_missing = a.send(method.clone(), &path_missing, body.clone()).await;
        on_b.expect_problem(404, "not_found");
        on_missing.expect_problem(404, "not_found");
        assert_eq!(
            on_b.normalized(&[&b_id, b_secret]),
            on_missing.normalized(&[&missing, &missing_secret]),
            "{method} {template}: B's client answers differently from a nonexistent one"
        );
        assert_eq!(on_b.headers.get("content-type"), on_missing.headers.get("content-type"));
        assert!(!on_b.text.contains("iso-b"), "{method} {template} names B's partner: {}", on_b.text);
    }

    // B's secret id under A's own client: the same answer as an unknown secret id.
    let cross = a.delete(&format!("/clients/{}/secrets/{b_secret}", a_other.client.id)).await;
    let unknown = a.delete(&format!("/clients/{}/secrets/{missing_secret}", a_other.client.id)).await;
    cross.expect_problem(404, "not_found");
    unknown.expect_problem(404, "not_found");
    assert_eq!(cross.normalized(&[b_secret]), unknown.normalized(&[&missing_secret]));

    // Partner B itself.
    let on_b = a.get("/partners/iso-b").await;
    let on_missing = a.get("/partners/no-such-partner").await;
    on_b.expect_problem(404, "not_found");
    on_missing.expect_problem(404, "not_found");
    assert_eq!(on_b.normalized(&["iso-b"]), on_missing.normalized(&["no-such-partner"]));

    // Listings show A's objects only.
    let listed = a.get("/clients").await.expect_json(200);
    assert_eq!(ids(&listed["items"]), BTreeSet::from([a_admin.client.id.clone(), a_other.client.id.clone()]));
    assert!(listed["items"].as_array().unwrap().iter().all(|c| c["partner_id"] == "iso-a"), "{listed}");
    assert_eq!(listed["next_cursor"], Value::Null);
    let filtered = a.get("/clients?partner_id=iso-b").await.expect_json(200);
    assert_eq!(filtered, json!({"items": [], "next_cursor": null}));
    let partners_listed = a.get("/partners").await.expect_json(200);
    assert_eq!(ids(&partners_listed["items"]), BTreeSet::from(["iso-a".to_string()]));

    // Creating a client for partner B answers like creating one for a partner that does not exist.
    let for_b = a.post("/clients", json!({"partner_id": "iso-b", "name": "planted"})).await;
    let for_missing = a.post("/clients", json!({"partner_id": "no-such-partner", "name": "planted"})).await;
    for_b.expect_problem(404, "not_found");
    for_missing.expect_problem(404, "not_found");
    assert_eq!(for_b.normalized(&["iso-b"]), for_missing.normalized(&["no-such-partner"]));

    // The catalog and the partners are the operator's: 403, whatever the target.
    a.post("/partners", json!({"id": "iso-c", "name": "Planted partner"})).await.expect_problem(403, "forbidden");
    a.post("/scopes", json!({"name": "planted.read"})).await.expect_problem(403, "forbidden");
    a.post("/roles", json!({"name": "planted", "scopes": ["orders.read"]})).await.expect_problem(403, "forbidden");
    a.patch("/scopes/orders.read", json!({"description": "mine now"})).await.expect_problem(403, "forbidden");
    a.delete("/roles/role-iso-b").await.expect_problem(403, "forbidden");
    a.patch("/partners/iso-b", json!({"name": "Renamed"})).await.expect_problem(403, "forbidden");
    a.patch("/partners/iso-a", json!({"scope_ceiling": ["orders.read", "orders.write", READ, WRITE]}))
        .await
        .expect_problem(403, "forbidden");
    a.post_empty("/partners/iso-b/suspend").await.expect_problem(403, "forbidden");
    a.post_empty("/partners/iso-a/resume").await.expect_problem(403, "forbidden");

    // The same requests on A's own client succeed: the 404s above come from tenancy, not from the token.
    let own_path = format!("/clients/{}", a_other.client.id);
    assert_eq!(a.patch(&own_path, hijack.clone()).await.expect_json(200)["name"], "hijacked");
    assert_eq!(a.post_empty(&format!("{own_path}/disable")).await.expect_json(200)["enabled"], false);
    assert_eq!(a.post_empty(&format!("{own_path}/enable")).await.expect_json(200)["enabled"], true);
    let own_secret = a.post(&format!("{own_path}/secrets"), rotate.clone()).await.expect_json(201);
    let own_secret_id = own_secret["id"].as_str().unwrap();
    assert_eq!(a.get(&format!("{own_path}/secrets")).await.expect_json(200)["items"].as_array().unwrap().len(), 2);
    let revoked = a.delete(&format!("{own_path}/secrets/{own_secret_id}")).await.expect_json(200);
    assert_eq!(revoked["active"], false);
    assert_eq!(a.delete(&own_path).await.status, 200);
    a.get(&own_path).await.expect_problem(404, "not_found");

    // B is exactly as it was: same client, same secrets (none added, none revoked or expiring), same partner.
    assert_eq!(client_snapshot(&server, &b_id), b_before);
    let b_secrets = &b_before.1;
    assert_eq!(b_secrets.as_array().unwrap().len(), 2, "{b_secrets}");
    for secret in b_secrets.as_array().unwrap() {
        assert_eq!(secret["revoked_at"], Value::Null);
        assert_eq!(secret["expires_at"], Value::Null);
        assert_eq!(secret["active"], true);
    }
    assert_eq!(b_before.0["name"], "test client");
    assert_eq!(b_before.0["enabled"], true);
    assert_eq!(
        serde_json::to_value(partners::get(&mut server.conn(), &Caller::cli(), "iso-b").unwrap()).unwrap(),
        b_partner_before
    );
    assert!(scopes::get(&mut server.conn(), "planted.read").is_err());
    assert!(roles::get(&mut server.conn(), "role-iso-b").is_ok());
    let b_clients = clients::list(
        &mut server.conn(),
        &Caller::cli(),
        &ClientFilter { partner_id: Some("iso-b".into()), ..Default::default() },
    )
    .unwrap();
    assert_eq!(b_clients.items.len(), 1, "no client planted in B");

    // And B's client still gets tokens with both of its secrets.
    for secret in [b.secret.secret.expose(), b_second.secret.expose()] {
        let token = fetch_token(&server, AuthType::BasicAuth, &b_id, secret, &[], None).await.expect("B's token");
        let claims = server.verify(&token, &server.settings.default_audience).await;
        assert_eq!(claims["partner_id"], "iso-b");
        assert_eq!(claims["scope"], "orders.read orders.write");
    }
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------------------
// 2. Escalation attempts
// ---------------------------------------------------------------------------------------------------------

#[actix_web::test]
async fn partner_admin_cannot_grant_beyond_its_ceiling() {
    let server = TestServer::start().await;
    ensure_catalog_scopes(&server, &["orders.read", "billing.write"]);
    roles::create(&mut server.conn(), &Caller::cli(), "esc-wide", "", &strings(&["orders.read", "billing.write"]))
        .unwrap();
    let (a_admin, a) = partner_admin(&server, "esc-a", &["orders.read"], &[READ, WRITE]).await;

    // Within the ceiling: allowed.
    let created = a.post("/clients", json!({"name": "feed", "scopes": ["orders.read"]})).await.expect_json(201);
    assert_eq!(created["client"]["partner_id"], "esc-a");
    assert_eq!(created["client"]["scopes"], json!(["orders.read"]));
    let feed_id = created["client"]["id"].as_str().unwrap().to_string();
    let feed_secret = created["secret"]["secret"].as_str().unwrap().to_string();
    assert!(feed_secret.starts_with("pgs_"), "{feed_secret}");

    // A direct scope outside the ceiling, on create and on update.
    let refused = a.post("/clients", json!({"name": "wide", "scopes": ["orders.read", "billing.write"]})).await;
    let problem = refused.expect_problem(403, "scope_outside_ceiling");
    assert!(problem["message"].as_str().unwrap().contains("billing.write"), "{problem}");
    a.patch(&format!("/clients/{feed_id}"), json!({"scopes": ["orders.read", "billing.write"]}))
        .await
        .expect_problem(403, "scope_outside_ceiling");
    // authz.admin: refused to a partner admin, for a new client, an existing one, and its own client.
    a.post("/clients", json!({"name": "root", "scopes": [ADMIN]})).await.expect_problem(403, "forbidden");
    a.patch(&format!("/clients/{feed_id}"), json!({"scopes": [ADMIN]})).await.expect_problem(403, "forbidden");
    a.patch(&format!("/clients/{}", a_admin.client.id), json!({"scopes": [READ, WRITE, ADMIN]}))
        .await
        .expect_problem(403, "forbidden");
    // Choosing a client id is the operator's.
    a.post("/clients", json!({"client_id": "chosen-id", "name": "chosen"})).await.expect_problem(403, "forbidden");

    // Nothing of that was stored.
    let feed = a.get(&format!("/clients/{feed_id}")).await.expect_json(200);
    assert_eq!(feed["scopes"], json!(["orders.read"]));
    let own = a.get(&format!("/clients/{}", a_admin.client.id)).await.expect_json(200);
    assert_eq!(own["scopes"], json!([READ, WRITE]));
    let listed = a.get("/clients").await.expect_json(200);
    assert_eq!(ids(&listed["items"]), BTreeSet::from([a_admin.client.id.clone(), feed_id.clone()]));
    let a_token_claims = server.verify(&a.token, &server.settings.admin_audience).await;
    assert_eq!(a_token_claims["scope"], format!("{READ} {WRITE}"));

    // A shared role may hold more than the ceiling; assigning it is allowed, but the extra scope never
    // reaches a token.
    let with_role = a.patch(&format!("/clients/{feed_id}"), json!({"roles": ["esc-wide"]})).await.expect_json(200);
    assert_eq!(with_role["roles"], json!(["esc-wide"]));
    let token = fetch_token(&server, AuthType::BasicAuth, &feed_id, &feed_secret, &[], None).await.unwrap();
    assert_eq!(server.verify(&token, &server.settings.default_audience).await["scope"], "orders.read");
    let wide = fetch_token(&server, AuthType::BasicAuth, &feed_id, &feed_secret, &["billing.write"], None).await;
    assert_oauth_error(wide, BasicErrorResponseType::InvalidScope);

    // authz.clients.read alone reads but does not write.
    let ro_client = server.client_of("esc-a").scopes(&[READ]).audiences(&[&server.settings.admin_audience]).create();
    let ro = Admin::new(&server, server.token_for(&ro_client, &[], None).await);
    assert_eq!(ro.get(&format!("/clients/{feed_id}")).await.expect_json(200)["id"], feed_id.as_str());
    ro.post("/clients", json!({"name": "ro-made"})).await.expect_problem(403, "forbidden");
    ro.patch(&format!("/clients/{feed_id}"), json!({"name": "renamed"})).await.expect_problem(403, "forbidden");
    ro.post_empty(&format!("/clients/{feed_id}/disable")).await.expect_problem(403, "forbidden");
    ro.post_empty(&format!("/clients/{feed_id}/secrets")).await.expect_problem(403, "forbidden");
    ro.delete(&format!("/clients/{feed_id}")).await.expect_problem(403, "forbidden");
    let feed = a.get(&format!("/clients/{feed_id}")).await.expect_json(200);
    assert_eq!((feed["name"].as_str(), feed["enabled"].as_bool()), (Some("feed"), Some(true)));
    let feed_secrets = a.get(&format!("/clients/{feed_id}/secrets")).await.expect_json(200);
    assert_eq!(feed_secrets["items"].as_array().unwrap().len(), 1);

    // A partner whose ceiling the operator opened to authz.admin: its admin still cannot hand authz.admin
    // out, neither directly nor through a role that holds it.
    roles::create(&mut server.conn(), &Caller::cli(), "esc-root", "", &strings(&[ADMIN])).unwrap();
    let (r_admin, r) = partner_admin(&server, "esc-r", &[ADMIN], &[READ, WRITE]).await;
    r.post("/clients", json!({"name": "root", "scopes": [ADMIN]})).await.expect_problem(403, "forbidden");
    r.post("/clients", json!({"name": "root", "roles": ["esc-root"]})).await.expect_problem(403, "forbidden");
    r.patch(&format!("/clients/{}", r_admin.client.id), json!({"roles": ["esc-root"]}))
        .await
        .expect_problem(403, "forbidden");
    let listed = r.get("/clients").await.expect_json(200);
    assert_eq!(ids(&listed["items"]), BTreeSet::from([r_admin.client.id.clone()]), "no client was created");
    let own = r.get(&format!("/clients/{}", r_admin.client.id)).await.expect_json(200);
    assert_eq!(own["roles"], json!([]));
    let fresh = server.token_for(&r_admin, &[], None).await;
    assert_eq!(server.verify(&fresh, &server.settings.admin_audience).await["scope"], format!("{READ} {WRITE}"));
    let fresh = Admin::new(&server, fresh);
    fresh.post("/partners", json!({"id": "esc-z", "name": "Z"})).await.expect_problem(403, "forbidden");
    server.stop().await;
}

/// PATCH changes only the fields it names; `null` clears an optional setting.
#[actix_web::test]
async fn partial_updates_change_only_what_they_name() {
    let server = TestServer::start().await;
    let (_, op) = operator(&server).await;
    ensure_catalog_scopes(&server, &["upd.read", "upd.write"]);
    let partner = json!({"id": "upd-p", "name": "Updates", "scope_ceiling": ["upd.read", "upd.write"],
                         "rate_limit_per_minute": 1000, "token_quota_per_day": 50000});
    op.post("/partners", partner).await.expect_json(201);
    let created = op
        .post(
            "/clients",
            json!({"partner_id": "upd-p", "name": "before", "description": "kept", "scopes": ["upd.read"],
                   "audiences": ["https://api.upd.test"], "token_lifetime_secs": 120}),
        )
        .await
        .expect_json(201);
    let id = created["client"]["id"].as_str().unwrap().to_string();
    let secret = created["secret"]["secret"].as_str().unwrap().to_string();
    let lifetime = |claims: &std::collections::HashMap<String, Value>| {
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap()
    };
    let token = fetch_token(&server, AuthType::BasicAuth, &id, &secret, &[], None).await.unwrap();
    assert_eq!(lifetime(&server.verify(&token, "https://api.upd.test").await), 120);

    let renamed = op.patch(&format!("/clients/{id}"), json!({"name": "after"})).await.expect_json(200);
    assert_eq!(renamed["name"], "after");
    assert_eq!(renamed["description"], "kept");
    assert_eq!(renamed["scopes"], json!(["upd.read"]));
    assert_eq!(renamed["audiences"], json!(["https://api.upd.test"]));
    assert_eq!(renamed["token_lifetime_secs"], 120);

    let cleared = op.patch(&format!("/clients/{id}"), json!({"token_lifetime_secs": null})).await.expect_json(200);
    assert_eq!(cleared["token_lifetime_secs"], Value::Null, "null clears the lifetime: {cleared}");
    assert_eq!(cleared["name"], "after");
    assert_eq!(op.get(&format!("/clients/{id}")).await.expect_json(200)["token_lifetime_secs"], Value::Null);
    let token = fetch_token(&server, AuthType::BasicAuth, &id, &secret, &[], None).await.unwrap();
    assert_eq!(lifetime(&server.verify(&token, "https://api.upd.test").await), 600, "the server default");

    let partner = op.patch("/partners/upd-p", json!({"rate_limit_per_minute": null})).await.expect_json(200);
    assert_eq!(partner["rate_limit_per_minute"], Value::Null, "null clears the limit: {partner}");
    assert_eq!(partner["token_quota_per_day"], 50000);
    assert_eq!(partner["name"], "Updates");
    assert_eq!(partner["scope_ceiling"], json!(["upd.read", "upd.write"]));
    let partner = op.patch("/partners/upd-p", json!({"name": "Renamed"})).await.expect_json(200);
    assert_eq!(partner["rate_limit_per_minute"], Value::Null);
    assert_eq!(partner["token_quota_per_day"], 50000);
    let partner = op.patch("/partners/upd-p", json!({"token_quota_per_day": null})).await.expect_json(200);
    assert_eq!(partner["token_quota_per_day"], Value::Null, "{partner}");
    assert_eq!(partner["name"], "Renamed");
    server.stop().await;
}

/// Missing, malformed, tampered, foreign, expired and wrong-audience tokens, and the tokens of a disabled
/// client, a suspended partner and a deleted client: all 401 `invalid_token` with a Bearer challenge.
#[actix_web::test]
async fn admin_api_refuses_tokens_that_do_not_stand() {
    let server = TestServer::start().await;
    let (operator_client, op) = operator(&server).await;
    assert_eq!(op.get("/partners").await.expect_json(200)["items"][0]["id"], "operator");
    let mut rejections: Vec<String> = Vec::new();

    // No or unusable Authorization header.
    for authorization in [None, Some("Basic b3BlcmF0b3I6c2VjcmV0"), Some("Bearer"), Some("Bearer   "), Some("Token x")]
    {
        let reply = raw(&server, Method::GET, "/partners", authorization, None).await;
        expect_unauthorized(&reply);
    }
    let garbage = raw(&server, Method::GET, "/partners", Some("Bearer not.a.jwt"), None).await;
    rejections.push(expect_unauthorized(&garbage));

    // One character of the signature changed.
    let (head, signature) = op.token.rsplit_once('.').unwrap();
    let mut tampered_signature: Vec<char> = signature.chars().collect();
    tampered_signature[10] = if tampered_signature[10] == 'A' { 'B' } else { 'A' };
    let tampered = format!("{head}.{}", tampered_signature.into_iter().collect::<String>());
    assert_ne!(tampered, op.token);
    rejections.push(expect_unauthorized(&Admin::new(&server, tampered).get("/partners").await));

    // Claims signed with the server's own key: fresh ones are accepted (so the crafting is right), expired
    // ones (well beyond the 5 s leeway) are not.
    let ring = server.running().keys().current();
    let now = now_secs();
    let crafted = |iat: i64, exp: i64| AccessTokenClaims {
        iss: server.settings.issuer.clone(),
        sub: operator_client.client.id.clone(),
        client_id: operator_client.client.id.clone(),
        aud: Audience::One(server.settings.admin_audience.clone()),
        iat,
        nbf: iat,
        exp,
        jti: random_base62(22),
        scope: ADMIN.into(),
        partner_id: bootstrap::OPERATOR_PARTNER.into(),
        secret_id: None,
    };
    let fresh = Admin::new(&server, ring.sign_jwt(&crafted(now, now + 600)));
    fresh.get("/partners").await.expect_json(200);
    let expired = Admin::new(&server, ring.sign_jwt(&crafted(now - 660, now - 60)));
    rejections.push(expect_unauthorized(&expired.get("/partners").await));
    // The same claims signed by a key the server does not have.
    let foreign_dir = tempfile::tempdir().unwrap();
    let foreign = KeyRing::load_or_init(foreign_dir.path()).unwrap();
    let foreign = Admin::new(&server, foreign.sign_jwt(&crafted(now - 10, now + 600)));
    rejections.push(expect_unauthorized(&foreign.get("/partners").await));

    // A genuine token for the default audience is not an admin token.
    let p = server.seed("aud-p").scopes(&[READ, WRITE]).create();
    let two_audiences = json!({"audiences": [server.settings.admin_audience, server.settings.default_audience]});
    op.patch(&format!("/clients/{}", p.client.id), two_audiences).await.expect_json(200);
    let default_token = server.token_for(&p, &[], None).await;
    let claims = server.verify(&default_token, &server.settings.default_audience).await;
    assert_eq!(claims["scope"], format!("{READ} {WRITE}"));
    // It is told why: only a genuine token of this server gets that far, and the admin audience is public.
    let wrong_audience = expect_unauthorized(&Admin::new(&server, default_token).get("/clients").await);
    let expected = format!("wrong audience: expected {}", server.settings.admin_audience);
    assert!(wrong_audience.contains(&expected), "{wrong_audience}");
    let admin_token = server.token_for(&p, &[], Some(&server.settings.admin_audience)).await;
    let pa = Admin::new(&server, admin_token);
    assert_eq!(ids(&pa.get("/clients").await.expect_json(200)["items"]), BTreeSet::from([p.client.id.clone()]));

    // The token of a client that is then disabled stops working at once, and works again once enabled.
    let disabled = op.post_empty(&format!("/clients/{}/disable", p.client.id)).await.expect_json(200);
    assert_eq!(disabled["enabled"], false);
    rejections.push(expect_unauthorized(&pa.get("/clients").await));
    op.post_empty(&format!("/clients/{}/enable", p.client.id)).await.expect_json(200);
    pa.get("/clients").await.expect_json(200);

    // The same for a suspended partner.
    let suspended = op.post_empty("/partners/aud-p/suspend").await.expect_json(200);
    assert_eq!(suspended["suspended"], true);
    rejections.push(expect_unauthorized(&pa.get("/clients").await));
    rejections.push(expect_unauthorized(&pa.get(&format!("/clients/{}", p.client.id)).await));
    assert_eq!(op.post_empty("/partners/aud-p/resume").await.expect_json(200)["suspended"], false);
    pa.get("/clients").await.expect_json(200);

    // A deleted client's token.
    let doomed = server.client_of("aud-p").scopes(&[READ]).audiences(&[&server.settings.admin_audience]).create();
    let doomed_admin = Admin::new(&server, server.token_for(&doomed, &[], None).await);
    doomed_admin.get("/clients").await.expect_json(200);
    assert_eq!(op.delete(&format!("/clients/{}", doomed.client.id)).await.status, 200);
    rejections.push(expect_unauthorized(&doomed_admin.get("/clients").await));

    // Every other rejected token gets the same answer: nothing tells an attacker which check failed.
    let distinct: BTreeSet<&String> = rejections.iter().collect();
    assert_eq!(distinct.len(), 1, "{distinct:?}");
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------------------
// 3. Secret rotation, revocation, disable/enable, suspend/resume, through real token requests
// ---------------------------------------------------------------------------------------------------------

#[actix_web::test]
async fn secret_rotation_overlaps_then_expires_the_old_secret() {
    let clock = manual_clock();
    let server = TestServer::start_on(&clock).await;
    let (_, op) = operator(&server).await;
    ensure_catalog_scopes(&server, &["orders.read"]);
    op.post("/partners", json!({"id": "rot-p", "name": "Rotation", "scope_ceiling": ["orders.read"]}))
        .await
        .expect_json(201);
    let created = op
        .post(
            "/clients",
            json!({"partner_id": "rot-p", "name": "rotating", "scopes": ["orders.read"], "secret_name": "first"}),
        )
        .await
        .expect_json(201);
    let id = created["client"]["id"].as_str().unwrap().to_string();
    let first = Issued::from(&created["secret"]);
    assert_eq!(first.name, "first");
    let mut issued = vec![first.secret.clone()];

    let listing = op.secrets(&id, &issued).await;
    assert_eq!(listing.len(), 1);
    assert_eq!(listing[0]["id"], first.id.as_str());
    assert_eq!(listing[0]["prefix"], created["secret"]["prefix"]);
    assert!(first.secret.starts_with(listing[0]["prefix"].as_str().unwrap()), "prefix is the secret's start");
    assert_eq!(listing[0]["last_used_at"], Value::Null, "not used yet");
    assert_eq!(listing[0]["active"], true);

    expect_token(&server, &id, &first.secret).await;
    let listing = op.secrets(&id, &issued).await;
    assert!(listing[0]["last_used_at"].is_string(), "last_used_at set by the token request: {}", listing[0]);

    // Rotate with a 2 s grace period: both secrets work right away.
    let rotated = op
        .post(&format!("/clients/{id}/secrets"), json!({"name": "second", "grace_period_secs": 2}))
        .await
        .expect_json(201);
    let second = Issued::from(&rotated);
    assert_eq!(second.name, "second");
    assert_eq!(rotated["expires_at"], Value::Null, "the new secret does not expire");
    issued.push(second.secret.clone());
    assert_ne!(first.secret, second.secret);
    let listing = op.secrets(&id, &issued).await;
    assert_eq!(listing.len(), 2);
    let old = by_id(&listing, &first.id);
    let new = by_id(&listing, &second.id);
    let deadline: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(old["expires_at"].clone()).expect("old secret expires");
    let rotated_at: chrono::DateTime<chrono::Utc> = serde_json::from_value(rotated["created_at"].clone()).unwrap();
    let grace = (deadline - rotated_at).num_milliseconds();
    assert!((1900..=2100).contains(&grace), "old secret expires 2 s after the rotation, not {grace} ms");
    assert_eq!((old["active"].as_bool(), new["active"].as_bool()), (Some(true), Some(true)));
    assert_eq!(new["last_used_at"], Value::Null);
    expect_token(&server, &id, &first.secret).await;
    expect_token(&server, &id, &second.secret).await;

    // After the grace period the old one is refused, the new one still works.
    clock.advance(chrono::Duration::seconds(3));
    expect_invalid_client(&server, &id, &first.secret).await;
    expect_token(&server, &id, &second.secret).await;
    let listing = op.secrets(&id, &issued).await;
    assert_eq!(by_id(&listing, &first.id)["active"], false);
    assert_eq!(by_id(&listing, &first.id)["revoked_at"], Value::Null, "expired, not revoked");
    assert_eq!(by_id(&listing, &second.id)["active"], true);
    assert!(by_id(&listing, &second.id)["last_used_at"].is_string());

    // A third secret without grace period: the second stays valid. Revoking one leaves the other working.
    let third = Issued::from(&op.post_empty(&format!("/clients/{id}/secrets")).await.expect_json(201));
    assert_eq!(third.name, "secret-3", "default name counts the client's secrets");
    issued.push(third.secret.clone());
    expect_token(&server, &id, &second.secret).await;
    expect_token(&server, &id, &third.secret).await;
    let revoked = op.delete(&format!("/clients/{id}/secrets/{}", second.id)).await.expect_json(200);
    assert_eq!(revoked["id"], second.id.as_str());
    assert_eq!(revoked["active"], false);
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    assert!(revoked.get("secret").is_none(), "{revoked}");
    expect_invalid_client(&server, &id, &second.secret).await;
    expect_token(&server, &id, &third.secret).await;
    // Revoking again changes nothing.
    let again = op.delete(&format!("/clients/{id}/secrets/{}", second.id)).await.expect_json(200);
    assert_eq!(again["revoked_at"], revoked["revoked_at"]);
    let listing = op.secrets(&id, &issued).await;
    assert_eq!(listing.len(), 3);
    assert_eq!(by_id(&listing, &second.id)["revoked_at"], revoked["revoked_at"]);
    assert_eq!(
        listing.iter().map(|s| s["active"].as_bool().unwrap()).collect::<Vec<_>>(),
        [false, false, true],
        "ordered by creation: expired, revoked, active"
    );

    // Disable: the very next request fails; enable: the next one works.
    assert_eq!(op.post_empty(&format!("/clients/{id}/disable")).await.expect_json(200)["enabled"], false);
    expect_invalid_client(&server, &id, &third.secret).await;
    assert_eq!(op.post_empty(&format!("/clients/{id}/enable")).await.expect_json(200)["enabled"], true);
    expect_token(&server, &id, &third.secret).await;

    // Suspend the partner: the same.
    assert_eq!(op.post_empty("/partners/rot-p/suspend").await.expect_json(200)["suspended"], true);
    expect_invalid_client(&server, &id, &third.secret).await;
    assert_eq!(op.post_empty("/partners/rot-p/resume").await.expect_json(200)["suspended"], false);
    expect_token(&server, &id, &third.secret).await;
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------------------
// 4. Bootstrap
// ---------------------------------------------------------------------------------------------------------

#[actix_web::test]
async fn admin_bootstrap_runs_once_and_yields_an_operator_token() {
    let server = TestServer::start().await;
    let audience = server.settings.admin_audience.clone();
    let first = bootstrap::admin_client(&mut server.conn(), &audience, LIMITS, false).expect("first bootstrap");
    assert_eq!(first.client.partner_id, bootstrap::OPERATOR_PARTNER);
    assert_eq!(first.client.scopes, [ADMIN]);
    assert_eq!(first.client.audiences, std::slice::from_ref(&audience));

    match bootstrap::admin_client(&mut server.conn(), &audience, LIMITS, false) {
        Err(RegistryError::AlreadyExists { kind, id }) => {
            assert_eq!(kind, "admin client");
            assert!(id.contains(&first.client.id), "{id}");
        }
        other => panic!("a second bootstrap without force must be refused, got {other:?}"),
    }
    let operator_clients = |server: &TestServer| {
        let filter = ClientFilter { partner_id: Some(bootstrap::OPERATOR_PARTNER.into()), ..Default::default() };
        clients::list(&mut server.conn(), &Caller::cli(), &filter).unwrap().items.len()
    };
    assert_eq!(operator_clients(&server), 1, "the refused run created nothing");

    // A plain client-credentials request gives an admin token, which acts as the operator.
    let token = server.token_for(&first, &[], None).await;
    let claims = server.verify(&token, &audience).await;
    assert_eq!(claims["aud"], audience.as_str());
    assert_eq!(claims["scope"], ADMIN);
    assert_eq!(claims["partner_id"], bootstrap::OPERATOR_PARTNER);
    let op = Admin::new(&server, token);
    let scope = op.post("/scopes", json!({"name": "boot.read", "description": "Read"})).await.expect_json(201);
    assert_eq!(scope["name"], "boot.read");
    let partner = op
        .post("/partners", json!({"id": "boot-made", "name": "Made by the operator", "scope_ceiling": ["boot.read"]}))
        .await
        .expect_json(201);
    assert_eq!(partner["id"], "boot-made");
    assert_eq!(partner["suspended"], false);
    assert_eq!(partner["scope_ceiling"], json!(["boot.read"]));
    assert_eq!(op.get("/partners/boot-made").await.expect_json(200)["name"], "Made by the operator");

    // With force, a second admin client is added, and it works too.
    let forced = bootstrap::admin_client(&mut server.conn(), &audience, LIMITS, true).expect("forced bootstrap");
    assert_ne!(forced.client.id, first.client.id);
    assert_eq!(operator_clients(&server), 2);
    let second = Admin::new(&server, server.token_for(&forced, &[], None).await);
    let listed = second.get("/partners").await.expect_json(200);
    assert_eq!(ids(&listed["items"]), BTreeSet::from(["boot-made".to_string(), "operator".to_string()]));
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------------------
// 5. Validation
// ---------------------------------------------------------------------------------------------------------

#[actix_web::test]
async fn admin_api_validates_its_input() {
    let server = TestServer::start().await;
    let (_, op) = operator(&server).await;
    ensure_catalog_scopes(&server, &["val.read"]);

    for bad in ["Bad-Id", "a", "-lead", "has space", "under_score", "dot.ted", &"x".repeat(64), ""] {
        let reply = op.post("/partners", json!({"id": bad, "name": "Bad"})).await;
        let problem = reply.expect_problem(400, "invalid_input");
        assert!(problem["message"].as_str().unwrap().starts_with("id:"), "{bad:?}: {problem}");
    }
    let sixty_three = "p".repeat(63);
    op.post("/partners", json!({"id": sixty_three, "name": "Longest id"})).await.expect_json(201);
    let made = op.post("/partners", json!({"id": "val-p", "name": "Validation"})).await.expect_json(201);
    assert_eq!(made["id"], "val-p");
    let duplicate = op.post("/partners", json!({"id": "val-p", "name": "Again"})).await;
    duplicate.expect_problem(409, "already_exists");
    assert_eq!(op.get("/partners/val-p").await.expect_json(200)["name"], "Validation", "the original stays");
    op.post("/scopes", json!({"name": "val.read"})).await.expect_problem(409, "already_exists");

    // A role naming an unknown scope.
    let problem = op.post("/roles", json!({"name": "val-role", "scopes": ["val.read", "nope.read"]})).await;
    let problem = problem.expect_problem(400, "invalid_input");
    assert!(problem["message"].as_str().unwrap().contains("nope.read"), "{problem}");
    op.get("/roles/val-role").await.expect_problem(404, "not_found");
    op.patch("/partners/val-p", json!({"scope_ceiling": ["nope.read"]})).await.expect_problem(400, "invalid_input");

    // Unknown fields are refused, not ignored.
    let reply = op.post("/partners", json!({"id": "val-q", "name": "Q", "colour": "red"})).await;
    let problem = reply.expect_problem(400, "invalid_input");
    assert!(problem["message"].as_str().unwrap().contains("colour"), "{problem}");
    op.get("/partners/val-q").await.expect_problem(404, "not_found");
    let client = op.post("/clients", json!({"partner_id": "val-p", "name": "c"})).await.expect_json(201);
    let client_id = client["client"]["id"].as_str().unwrap().to_string();
    op.post("/clients", json!({"partner_id": "val-p", "name": "c2", "superuser": true}))
        .await
        .expect_problem(400, "invalid_input");
    op.patch(&format!("/clients/{client_id}"), json!({"enabled": false})).await.expect_problem(400, "invalid_input");
    op.post(&format!("/clients/{client_id}/secrets"), json!({"grace": 0})).await.expect_problem(400, "invalid_input");
    op.post(&format!("/clients/{client_id}/secrets"), json!({"grace_period_secs": "soon"}))
        .await
        .expect_problem(400, "invalid_input");
    op.post("/scopes", json!({"name": "val.write", "owner": "me"})).await.expect_problem(400, "invalid_input");
    op.patch("/roles/val-nope", json!({"colour": "red"})).await.expect_problem(400, "invalid_input");
    let filtered = op.get("/clients?owner=val-p").await;
    filtered.expect_problem(400, "invalid_input");
    op.delete("/scopes/val.read?cascade=yes").await.expect_problem(400, "invalid_input");
    let after = op.get(&format!("/clients/{client_id}")).await.expect_json(200);
    assert_eq!(after["enabled"], true);
    assert_eq!(op.secrets(&client_id, &[]).await.len(), 1, "no secret created by a refused body");

    // Malformed JSON and the wrong types.
    for body in ["{\"id\": \"val-r\",", "not json", "[]", "{\"id\": 5, \"name\": \"R\"}", ""] {
        let reply = op.post_raw("/partners", "application/json", body).await;
        reply.expect_problem(400, "invalid_input");
    }
    op.post_raw(&format!("/clients/{client_id}/secrets"), "application/json", "{\"name\": ")
        .await
        .expect_problem(400, "invalid_input");
    op.post_raw("/partners", "text/plain", "{\"id\": \"val-r\", \"name\": \"R\"}")
        .await
        .expect_problem(400, "invalid_input");
    op.get("/partners/val-r").await.expect_problem(404, "not_found");
    op.get("/clients?limit=0").await.expect_problem(400, "invalid_input");
    op.get("/clients?limit=501").await.expect_problem(400, "invalid_input");
    op.get("/clients?enabled=maybe").await.expect_problem(400, "invalid_input");
    op.post("/clients", json!({"partner_id": "val-p", "name": "short", "token_lifetime_secs": 5}))
        .await
        .expect_problem(400, "invalid_input");
    op.post("/clients", json!({"name": "no partner"})).await.expect_problem(400, "invalid_input");
    op.post(&format!("/clients/{client_id}/secrets"), json!({"grace_period_secs": -1}))
        .await
        .expect_problem(400, "invalid_input");

    // A scope still held by a role: 409 in_use; with cascade it goes, and the role no longer lists it.
    ensure_catalog_scopes(&server, &["val.write"]);
    let role = op.post("/roles", json!({"name": "val-role", "scopes": ["val.read", "val.write"]})).await;
    assert_eq!(role.expect_json(201)["scopes"], json!(["val.read", "val.write"]));
    let in_use = op.delete("/scopes/val.read").await.expect_problem(409, "in_use");
    assert!(in_use["message"].as_str().unwrap().contains("1 role(s)"), "{in_use}");
    assert_eq!(op.get("/scopes/val.read").await.expect_json(200)["name"], "val.read");
    assert_eq!(op.get("/roles/val-role").await.expect_json(200)["scopes"], json!(["val.read", "val.write"]));
    let cascaded = op.delete("/scopes/val.read?cascade=true").await;
    assert_eq!(cascaded.status, 200, "{}", cascaded.text);
    assert_eq!(op.get("/roles/val-role").await.expect_json(200)["scopes"], json!(["val.write"]));
    op.get("/scopes/val.read").await.expect_problem(404, "not_found");
    let listed = op.get("/scopes").await.expect_json(200);
    assert!(!ids_by(&listed["items"], "name").contains("val.read"), "{listed}");
    // Reserved scopes cannot be deleted at all.
    op.delete(&format!("/scopes/{READ}?cascade=true")).await.expect_problem(403, "forbidden");
    server.stop().await;
}

#[actix_web::test]
async fn client_listing_pages_with_a_cursor() {
    let server = TestServer::start().await;
    let (_, op) = operator(&server).await;
    op.post("/partners", json!({"id": "page-p", "name": "Pages"})).await.expect_json(201);
    op.post("/partners", json!({"id": "page-q", "name": "Other"})).await.expect_json(201);
    let mut made = BTreeSet::new();
    for n in 0..5 {
        let created = op.post("/clients", json!({"partner_id": "page-p", "name": format!("c{n}")})).await;
        made.insert(created.expect_json(201)["client"]["id"].as_str().unwrap().to_string());
    }
    let other = op.post("/clients", json!({"partner_id": "page-q", "name": "elsewhere"})).await.expect_json(201);
    let other_id = other["client"]["id"].as_str().unwrap().to_string();
    op.post_empty(&format!("/clients/{other_id}/disable")).await.expect_json(200);

    let mut seen: Vec<String> = Vec::new();
    let mut pages = Vec::new();
    let mut path = "/clients?partner_id=page-p&limit=2".to_string();
    loop {
        let page = op.get(&path).await.expect_json(200);
        let items: Vec<String> =
            page["items"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()).collect();
        pages.push(items.len());
        seen.extend(items);
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                assert_eq!(Some(cursor), seen.last().map(String::as_str), "the cursor is the page's last id");
                path = format!("/clients?partner_id=page-p&limit=2&cursor={cursor}");
            }
            None => break,
        }
        assert!(pages.len() < 10, "pagination does not end");
    }
    assert_eq!(pages, [2, 2, 1]);
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no duplicates: {seen:?}");
    assert_eq!(unique, made, "every client once");
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "ordered by id");

    // Exactly one full page: no cursor pointing at an empty page.
    let whole = op.get("/clients?partner_id=page-p&limit=5").await.expect_json(200);
    assert_eq!(whole["items"].as_array().unwrap().len(), 5);
    assert_eq!(whole["next_cursor"], Value::Null);
    // The other filters.
    let disabled = op.get("/clients?enabled=false").await.expect_json(200);
    assert_eq!(ids(&disabled["items"]), BTreeSet::from([other_id.clone()]));
    let everything = op.get("/clients?limit=500").await.expect_json(200);
    assert_eq!(everything["items"].as_array().unwrap().len(), 7, "5 + 1 + the operator's admin client");
    server.stop().await;
}

/// Imported client ids may hold `%`, `#`, `?` and `/` (and `..`): percent-encoded as one path segment, each
/// names exactly that client on every client endpoint, never another route.
#[tokio::test]
async fn client_ids_with_reserved_characters_are_managed_through_encoded_paths() {
    let server = TestServer::start().await;
    let (_, op) = operator(&server).await;
    server.seed("victimp").role(&["orders.read"]).create();
    for id in ["a/b?c#d%e", "../partners/victimp/suspend?", "...", "x+y%2F"] {
        let input = NewClient {
            client_id: Some(id.into()),
            partner_id: Some("victimp".into()),
            name: "imported".into(),
            ..Default::default()
        };
        create_client(&server, &input);
        let path = format!("/clients/{}", form_encode(id));
        assert_eq!(op.get(&path).await.expect_json(200)["id"], id);
        let disabled = op.post_empty(&format!("{path}/disable")).await.expect_json(200);
        assert_eq!((disabled["id"].as_str(), disabled["enabled"].as_bool()), (Some(id), Some(false)), "{disabled}");
        assert_eq!(op.post_empty(&format!("{path}/enable")).await.expect_json(200)["enabled"], true);
        let renamed = op.patch(&path, json!({"name": "renamed"})).await.expect_json(200);
        assert_eq!((renamed["id"].as_str(), renamed["name"].as_str()), (Some(id), Some("renamed")));
        let secret = op.post(&format!("{path}/secrets"), json!({"grace_period_secs": 0})).await.expect_json(201);
        let listed = op.get(&format!("{path}/secrets")).await.expect_json(200);
        assert_eq!(listed["items"].as_array().unwrap().len(), 2, "{listed}");
        let secret_path = format!("{path}/secrets/{}", secret["id"].as_str().unwrap());
        assert_eq!(op.delete(&secret_path).await.expect_json(200)["id"], secret["id"]);
        op.post_empty(&format!("{path}/revoke-tokens")).await.expect_json(200);
        op.delete(&path).await.expect_json(200);
        assert_eq!(op.get(&path).await.status, 404);
    }
    let victim = op.get("/partners/victimp").await.expect_json(200);
    assert_eq!(victim["suspended"], false, "no id reached the partner routes: {victim}");
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------

/// An admin API caller holding one bearer token.
struct Admin<'a> {
    server: &'a TestServer,
    token: String,
}

impl<'a> Admin<'a> {
    fn new(server: &'a TestServer, token: String) -> Self {
        Admin { server, token }
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let body = body.map(|b| ("application/json", b.to_string()));
        raw(self.server, method, path, Some(&format!("Bearer {}", self.token)), body).await
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(body)).await
    }

    /// A POST without a body.
    async fn post_empty(&self, path: &str) -> Reply {
        self.send(Method::POST, path, None).await
    }

    async fn post_raw(&self, path: &str, content_type: &str, body: &str) -> Reply {
        let authorization = format!("Bearer {}", self.token);
        raw(self.server, Method::POST, path, Some(&authorization), Some((content_type, body.to_string()))).await
    }

    async fn patch(&self, path: &str, body: Value) -> Reply {
        self.send(Method::PATCH, path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None).await
    }

    /// The secret listing of a client, after checking that it shows exactly the documented fields and none
    /// of the `issued` secrets.
    async fn secrets(&self, client_id: &str, issued: &[String]) -> Vec<Value> {
        let reply = self.get(&format!("/clients/{client_id}/secrets")).await;
        for secret in issued {
            assert!(!reply.text.contains(secret.as_str()), "the listing shows a secret: {}", reply.text);
            assert!(!reply.text.contains(&secret[20..]), "the listing shows part of a secret: {}", reply.text);
        }
        let body = reply.expect_json(200);
        assert_eq!(body["next_cursor"], Value::Null);
        let items = body["items"].as_array().expect("items").clone();
        let expected: BTreeSet<&str> = [
            "id",
            "name",
            "prefix",
            "created_at",
            "expires_at",
            "revoked_at",
            "last_used_at",
            "active",
            "age_days",
            "expires_in_days",
        ]
        .into();
        for item in &items {
            let keys: BTreeSet<&str> = item.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(keys, expected, "{item}");
        }
        items
    }
}

/// Any request to the admin API, with the Authorization header and body exactly as given.
async fn raw(
    server: &TestServer,
    method: Method,
    path: &str,
    authorization: Option<&str>,
    body: Option<(&str, String)>,
) -> Reply {
    let mut request = reqwest::Client::new().request(method, server.url(&format!("/admin/v1{path}")));
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    if let Some((content_type, body)) = body {
        request = request.header("content-type", content_type).body(body);
    }
    Reply::from(request.send().await.expect("admin request sent")).await
}

/// A 401 `invalid_token` with a Bearer challenge; returns the body.
fn expect_unauthorized(reply: &Reply) -> String {
    reply.expect_problem(401, "invalid_token");
    let challenge = reply.headers.get("www-authenticate").expect("WWW-Authenticate").to_str().unwrap();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    reply.text.clone()
}

/// The operator: `admin bootstrap`, then a token for its client.
async fn operator(server: &TestServer) -> (CreatedClient, Admin<'_>) {
    let (created, token) = server.operator().await;
    (created, Admin::new(server, token))
}

/// Partner `id` whose ceiling is the client-admin scopes plus `business`, and its admin client holding
/// `admin_scopes` with the admin audience as its only audience; returns the client and a token for it.
async fn partner_admin<'a>(
    server: &'a TestServer,
    id: &str,
    business: &[&str],
    admin_scopes: &[&str],
) -> (CreatedClient, Admin<'a>) {
    let (client, token) = server.partner_admin(id).ceiling(business).holding(admin_scopes).create().await;
    (client, Admin::new(server, token))
}

/// A client and its secret listing as the registry has them, for before/after comparisons.
fn client_snapshot(server: &TestServer, client_id: &str) -> (Value, Value) {
    let mut conn = server.conn();
    let client = clients::get(&mut conn, &Caller::cli(), client_id).expect("client exists");
    let secrets = secrets::list(&mut conn, &Caller::cli(), client_id).expect("secrets");
    (serde_json::to_value(client).unwrap(), serde_json::to_value(secrets).unwrap())
}

fn ids(items: &Value) -> BTreeSet<String> {
    ids_by(items, "id")
}

fn ids_by(items: &Value, field: &str) -> BTreeSet<String> {
    items.as_array().expect("a list").iter().map(|item| item[field].as_str().unwrap().to_string()).collect()
}

fn by_id<'v>(items: &'v [Value], id: &str) -> &'v Value {
    items.iter().find(|item| item["id"] == id).unwrap_or_else(|| panic!("{id} not listed"))
}

/// A secret as the create endpoints return it, once.
struct Issued {
    id: String,
    name: String,
    secret: String,
}

impl From<&Value> for Issued {
    fn from(value: &Value) -> Self {
        let field = |name: &str| value[name].as_str().unwrap_or_else(|| panic!("{name} in {value}")).to_string();
        let issued = Issued { id: field("id"), name: field("name"), secret: field("secret") };
        assert!(issued.secret.starts_with("pgs_") && issued.secret.len() == 53, "{}", issued.secret.len());
        assert!(issued.secret.starts_with(&field("prefix")));
        issued
    }
}

async fn expect_token(server: &TestServer, client_id: &str, secret: &str) {
    let token = fetch_token(server, AuthType::BasicAuth, client_id, secret, &[], None)
        .await
        .unwrap_or_else(|err| panic!("token refused: {err:?}"));
    assert_eq!(server.verify(&token, &server.settings.default_audience).await["client_id"], client_id);
}

/// The `oauth2` crate sees `invalid_client`, and the raw response is a 401.
async fn expect_invalid_client(server: &TestServer, client_id: &str, secret: &str) {
    let result = fetch_token(server, AuthType::BasicAuth, client_id, secret, &[], None).await;
    assert_oauth_error(result, BasicErrorResponseType::InvalidClient);
    let authorization = basic_auth(client_id, secret);
    let response =
        post_form(server, "/oauth2/token", "grant_type=client_credentials", &[("authorization", &authorization)]).await;
    let (status, error, _) = oauth_error(response).await;
    assert_eq!((status, error.as_str()), (401, "invalid_client"));
}

fn assert_oauth_error(result: Result<String, TokenError>, expected: BasicErrorResponseType) {
    match result {
        Err(RequestTokenError::ServerResponse(response)) => assert_eq!(*response.error(), expected),
        Err(other) => panic!("expected {expected:?}, got {other:?}"),
        Ok(_) => panic!("expected {expected:?}, got a token"),
    }
}

/// A leaked secret: revoking it with `?revoke_tokens=true` also kills every token issued so far, here the
/// partner admin's own admin token; a new token from its other secret works.
#[actix_web::test]
async fn revoking_a_secret_can_revoke_the_clients_tokens_too() {
    let server = TestServer::start().await;
    let (admin_client, admin) = partner_admin(&server, "leak", &[], &[READ, WRITE]).await;
    let id = admin_client.client.id.clone();
    let rotated =
        admin.post(&format!("/clients/{id}/secrets"), serde_json::json!({"name": "spare"})).await.expect_json(201);
    let spare = rotated["secret"].as_str().unwrap().to_string();

    // Without the flag, earlier tokens survive.
    let extra = admin.post(&format!("/clients/{id}/secrets"), serde_json::json!({})).await.expect_json(201);
    let extra_id = extra["id"].as_str().unwrap();
    admin.delete(&format!("/clients/{id}/secrets/{extra_id}")).await.expect_json(200);
    admin.get(&format!("/clients/{id}")).await.expect_json(200);

    let leaked_id = &admin_client.secret.id;
    let revoked = admin.delete(&format!("/clients/{id}/secrets/{leaked_id}?revoke_tokens=true")).await.expect_json(200);
    assert_eq!(revoked["active"], false);
    expect_unauthorized(&admin.get(&format!("/clients/{id}")).await);
    expect_invalid_client(&server, &id, admin_client.secret.secret.expose()).await;

    let fresh = fetch_token(&server, AuthType::BasicAuth, &id, &spare, &[], None).await.expect("spare secret works");
    let fresh = Admin::new(&server, fresh);
    fresh.get(&format!("/clients/{id}")).await.expect_json(200);
    fresh.delete(&format!("/clients/{id}/secrets/{leaked_id}?revoke=1")).await.expect_problem(400, "invalid_input");
    server.stop().await;
}

/// Admin changes read before they write. On SQLite such a transaction used to fail at once ("database is
/// locked") when the audit writer committed in between; write transactions now take the lock up front.
#[actix_web::test]
async fn admin_writes_succeed_while_tokens_are_being_issued() {
    use futures_util::stream::{self, StreamExt};
    let server = TestServer::start().await;
    let (_, op) = operator(&server).await;
    let created = server.seed("busy").role(&["busy.read"]).create();
    let id = created.client.id.clone();
    let secret = created.secret.secret.expose().to_string();
    let token_load = stream::iter(0..600)
        .map(|_| fetch_token(&server, AuthType::BasicAuth, &id, &secret, &[], None))
        .buffer_unordered(32)
        .collect::<Vec<_>>();
    let admin_writes = async {
        let mut statuses = Vec::new();
        for i in 0..40 {
            let reply = op.patch(&format!("/clients/{id}"), json!({"description": format!("change {i}")})).await;
            statuses.push((reply.status, reply.text));
        }
        statuses
    };
    let (tokens, statuses) = futures_util::future::join(token_load, admin_writes).await;
    assert!(tokens.iter().all(Result::is_ok), "every token request succeeded");
    for (status, text) in &statuses {
        assert_eq!(*status, 200, "{text}");
    }
    let client = clients::get(&mut server.conn(), &Caller::cli(), &id).unwrap();
    assert_eq!(client.description, "change 39");
    server.stop().await;
}

/// A partner admin passes on only the reserved scopes its own token carries, even when its partner's ceiling
/// holds more; directly or through a role.
#[actix_web::test]
async fn partner_admin_passes_on_only_the_reserved_scopes_it_holds() {
    let server = TestServer::start().await;
    let (_, op) = operator(&server).await;
    let (_, admin) = partner_admin(&server, "minter", &["authz.introspect", "authz.audit.read"], &[WRITE]).await;
    op.post("/roles", json!({"name": "introspector", "scopes": ["authz.introspect"]})).await.expect_json(201);
    let audience = server.settings.admin_audience.clone();
    for scope in ["authz.introspect", "authz.audit.read", "authz.admin"] {
        let reply = admin.post("/clients", json!({"name": "minted", "scopes": [scope], "audiences": [audience]})).await;
        reply.expect_problem(403, "forbidden");
    }
    admin.post("/clients", json!({"name": "minted", "roles": ["introspector"]})).await.expect_problem(403, "forbidden");
    let listed = admin.get("/clients").await.expect_json(200);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "nothing minted: {listed}");
    // What it holds itself it may pass on: another integration admin is no escalation, once the operator
    // allows the admin audience in the partner's audience ceiling.
    let peer = admin.post("/clients", json!({"name": "peer admin", "scopes": [WRITE], "audiences": [audience]})).await;
    peer.expect_problem(403, "audience_outside_ceiling");
    op.patch("/partners/minter", json!({"audience_ceiling": [audience]})).await.expect_json(200);
    let peer = admin.post("/clients", json!({"name": "peer admin", "scopes": [WRITE], "audiences": [audience]})).await;
    assert_eq!(peer.expect_json(201)["client"]["scopes"], json!([WRITE]));
    server.stop().await;
}

/// Admin tokens: the admin audience must be the only audience, permissions follow the client's current grants,
/// and a token older than its client (a deleted id registered again) is refused.
#[actix_web::test]
async fn admin_tokens_must_be_for_the_admin_api_alone_and_current() {
    let clock = manual_clock();
    let server = TestServer::start_on(&clock).await;
    let (_, op) = operator(&server).await;
    let (admin_client, admin) = partner_admin(&server, "current", &[], &[READ, WRITE]).await;
    let id = admin_client.client.id.clone();
    let admin_audience = server.settings.admin_audience.clone();

    // A token for the admin API and a resource server at once could be replayed here by that server.
    op.patch(&format!("/clients/{id}"), json!({"audiences": [admin_audience, "https://api.current.test"]}))
        .await
        .expect_json(200);
    let secret = admin_client.secret.secret.expose();
    let both = fetch_token(&server, AuthType::BasicAuth, &id, secret, &[], Some(&admin_audience)).await.unwrap();
    assert_eq!(server.verify(&both, &admin_audience).await["aud"], json!(admin_audience));
    let client = reqwest::Client::new();
    let mixed = client
        .post(server.url("/oauth2/token"))
        .basic_auth(&id, Some(secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("resource", &admin_audience),
            ("resource", "https://api.current.test"),
        ])
        .send()
        .await
        .unwrap();
    let mixed_token = mixed.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string();
    expect_unauthorized(&Admin::new(&server, mixed_token).get("/clients").await);
    Admin::new(&server, both).get("/clients").await.expect_json(200);

    // Taking a scope away takes effect on the next request, not when the token expires.
    admin.get("/clients").await.expect_json(200);
    op.patch(&format!("/clients/{id}"), json!({"scopes": [READ]})).await.expect_json(200);
    admin.post("/clients", json!({"name": "after demotion"})).await.expect_problem(403, "forbidden");
    admin.get("/clients").await.expect_json(200);

    // Deleting a client and registering its id again does not revive the old client's tokens.
    let reused = "current:reused";
    let created = op
        .post("/clients", json!({"client_id": reused, "partner_id": "current", "name": "first", "scopes": [READ], "audiences": [admin_audience]}))
        .await
        .expect_json(201);
    // An id of the operator's choosing gets tokens from the second after its registration on.
    clock.advance(chrono::Duration::seconds(1));
    let old_token =
        fetch_token(&server, AuthType::BasicAuth, reused, created["secret"]["secret"].as_str().unwrap(), &[], None)
            .await
            .unwrap();
    Admin::new(&server, old_token.clone()).get("/clients").await.expect_json(200);
    assert_eq!(op.delete("/clients/current%3Areused").await.status, 200);
    clock.advance(chrono::Duration::milliseconds(1100));
    op.post("/clients", json!({"client_id": reused, "partner_id": "current", "name": "second", "scopes": [READ], "audiences": [admin_audience]}))
        .await
        .expect_json(201);
    expect_unauthorized(&Admin::new(&server, old_token).get("/clients").await);
    server.stop().await;
}

/// Encoded control characters in the URI are refused before they reach the database (PostgreSQL refuses NUL
/// in text, which used to surface as 500).
#[actix_web::test]
async fn control_characters_in_the_uri_are_bad_input_not_500() {
    let server = TestServer::start().await;
    let (_, op) = operator(&server).await;
    for path in [
        "/clients/%00",
        "/clients?partner_id=%00",
        "/clients?cursor=a%00",
        "/scopes/%00",
        "/roles/x%1f",
        "/audit?client_id=%00",
    ] {
        let reply = op.get(path).await;
        reply.expect_problem(400, "invalid_input");
        assert!(reply.headers.get("x-request-id").is_some(), "the guard's answer carries a request id too");
    }
    assert_eq!(op.delete("/clients/%00").await.status, 400);
    op.get("/clients?partner_id=operator").await.expect_json(200);
    server.stop().await;
}

/// Refused admin requests are audited: a probe of another partner's client and a rejected token.
#[actix_web::test]
async fn refused_admin_requests_are_audited() {
    let server = TestServer::start().await;
    let (a_client, a_admin) = partner_admin(&server, "probe-a", &[], &[READ]).await;
    let b = server.seed("probe-b").role(&["b.read"]).create();
    a_admin.get(&format!("/clients/{}", b.client.id)).await.expect_problem(404, "not_found");
    let wrong_audience = server.token_for(&b, &[], None).await;
    expect_unauthorized(&Admin::new(&server, wrong_audience).get("/clients").await);

    let refused = partnergate::registry::audit_trail::list(
        &mut server.conn(),
        &Caller::cli(),
        &partnergate::registry::audit_trail::AuditFilter {
            event_type: Some("admin.refused".into()),
            ..Default::default()
        },
    )
    .unwrap()
    .items;
    assert_eq!(refused.len(), 2, "{refused:?}");
    let unauthorized = &refused[0];
    assert_eq!(unauthorized.reason.as_deref(), Some("unauthorized: wrong_audience"));
    assert_eq!(unauthorized.actor, None);
    let probe = &refused[1];
    assert_eq!(probe.actor.as_deref(), Some(format!("client:{}", a_client.client.id).as_str()));
    assert_eq!(probe.partner_id.as_deref(), Some("probe-a"));
    assert_eq!(probe.reason.as_deref(), Some("not_found"));
    let details = serde_json::to_value(probe).unwrap()["details"].clone();
    assert_eq!(details["path"], format!("/admin/v1/clients/{}", b.client.id));
    assert_eq!(details["status"], 404);
    server.stop().await;
}
