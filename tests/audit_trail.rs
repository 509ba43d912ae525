//! The audit trail end to end: the real server on a loopback port, real HTTP, a fresh database per test.
//! Exactly-once recording under concurrency, no secret or token in events, error bodies or logs, partner
//! isolation and cursor pagination of the audit query, request ids, admin action events, and the group-commit
//! writer's behaviour on shutdown and when the database refuses writes.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once};
use std::time::Duration;

use common::*;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use futures_util::stream::{self, StreamExt};
use partnergate::audit::event::REDACTED;
use partnergate::credentials::{new_client_id, ClientSecret};
use partnergate::registry::audit_trail::{self as query, AuditFilter, AuditRecord};
use partnergate::registry::clients::{self, CreatedClient};
use partnergate::registry::{secrets, Caller};
use partnergate::secevents::revoked;
use partnergate::store::models::AuditEventRow;
use partnergate::store::schema::audit_events;
use reqwest::Method;
use serde_json::{json, Value};

const AUDIT_READ: &str = "authz.audit.read";
const CLIENTS_READ: &str = "authz.clients.read";
const CLIENTS_WRITE: &str = "authz.clients.write";
const INTROSPECT: &str = "authz.introspect";

// ---------------------------------------------------------------------------------------------------------
// 1. Exactly-once recording under concurrency
// ---------------------------------------------------------------------------------------------------------

/// What a request of the concurrent run presents, and so what the caller and the audit trail must see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Granted,
    WrongSecret,
    UnknownClient,
    InvalidScope,
    MalformedSecret,
    DisabledClient,
}

const KINDS: [Kind; 6] = [
    Kind::Granted,
    Kind::WrongSecret,
    Kind::UnknownClient,
    Kind::InvalidScope,
    Kind::MalformedSecret,
    Kind::DisabledClient,
];

/// 2000 concurrent token requests of six kinds (64 in flight at a time) on a fresh database: exactly one
/// `token.request` event per request, found by its request id, carrying the real reason the caller never saw;
/// every issued `jti` recorded exactly once. The same N runs on both backends.
#[actix_web::test]
async fn every_token_request_is_recorded_exactly_once_under_concurrency() {
    const N: usize = 2000;
    let server = TestServer::start().await;
    let client = server.seed("once-p").ceiling(&["orders.read", "orders.write"]).role(&["orders.read"]).create();
    let disabled = server.client_of("once-p").roles(&["role-once-p"]).create();
    clients::set_enabled(&mut server.conn(), &Caller::cli(), &disabled.client.id, false).expect("disable");
    let id = client.client.id.clone();
    let secret = client.secret.secret.expose().to_string();
    let wrong = ClientSecret::generate().expose().to_string();
    let truncated = secret[..secret.len() - 1].to_string();
    let disabled_secret = disabled.secret.secret.expose().to_string();

    let mut unknown_ids = BTreeMap::new();
    let requests: Vec<(usize, Kind, String)> = (0..N)
        .map(|i| {
            let kind = KINDS[i % KINDS.len()];
            let grant = ("grant_type", "client_credentials");
            let body = match kind {
                Kind::Granted => form(&[grant, ("client_id", &id), ("client_secret", &secret)]),
                Kind::WrongSecret => form(&[grant, ("client_id", &id), ("client_secret", &wrong)]),
                Kind::UnknownClient => {
                    let unknown = new_client_id();
                    let body = form(&[grant, ("client_id", &unknown), ("client_secret", &wrong)]);
                    unknown_ids.insert(i, unknown);
                    body
                }
                Kind::InvalidScope => {
                    form(&[grant, ("client_id", &id), ("client_secret", &secret), ("scope", "orders.write")])
                }
                Kind::MalformedSecret => form(&[grant, ("client_id", &id), ("client_secret", &truncated)]),
                Kind::DisabledClient => {
                    form(&[grant, ("client_id", &disabled.client.id), ("client_secret", &disabled_secret)])
                }
            };
            (i, kind, body)
        })
        .collect();

    let http = reqwest::Client::new();
    let url = server.url("/oauth2/token");
    let replies: Vec<(usize, Kind, Reply)> = stream::iter(requests)
        .map(|(i, kind, body)| {
            let (http, url) = (&http, &url);
            async move {
                let request_id = format!("once-{i:05}");
                let reply = send(http, Method::POST, url, &[("x-request-id", &request_id)], Some((FORM, body))).await;
                (i, kind, reply)
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    assert_eq!(replies.len(), N);

    // What the callers saw.
    let mut issued_jtis: BTreeMap<usize, String> = BTreeMap::new();
    for (i, kind, reply) in &replies {
        assert_eq!(reply.header("x-request-id"), format!("once-{i:05}"), "request {i}: request id echoed");
        match kind {
            Kind::Granted => {
                let body = reply.expect_status(200);
                assert_eq!(body["scope"], "orders.read", "request {i}: {body}");
                let token = body["access_token"].as_str().expect("access_token");
                issued_jtis.insert(*i, jti_of(token));
            }
            Kind::InvalidScope => reply.expect_oauth_error(400, "invalid_scope"),
            _ => reply.expect_oauth_error(401, "invalid_client"),
        }
    }
    let granted = replies.iter().filter(|(_, kind, _)| *kind == Kind::Granted).count();
    assert_eq!(issued_jtis.len(), granted);
    assert_eq!(issued_jtis.values().collect::<BTreeSet<_>>().len(), granted, "every jti is unique");

    // What the audit trail holds: N token requests, counted by the database and read through the query API.
    let stored: i64 = audit_events::table
        .filter(audit_events::event_type.eq("token.request"))
        .count()
        .get_result(&mut *server.conn())
        .expect("count");
    assert_eq!(stored, N as i64, "one token.request event per request");
    let events = all_events(&server, AuditFilter { event_type: Some("token.request".into()), ..Default::default() });
    assert_eq!(events.len(), N);
    let successes = events.iter().filter(|e| e.outcome == "success").count();
    assert_eq!(successes, replies.iter().filter(|(_, _, r)| r.status == 200).count());
    assert_eq!(successes, granted);

    let mut by_request: HashMap<&str, Vec<&AuditRecord>> = HashMap::new();
    for event in &events {
        by_request.entry(event.request_id.as_deref().expect("every event has a request id")).or_default().push(event);
    }
    assert_eq!(by_request.len(), N, "N distinct request ids");
    let mut reasons: BTreeMap<Kind, BTreeMap<String, usize>> = BTreeMap::new();
    for (i, kind, _) in &replies {
        let request_id = format!("once-{i:05}");
        let matching = by_request.get(request_id.as_str()).unwrap_or_else(|| panic!("no event for {request_id}"));
        assert_eq!(matching.len(), 1, "{request_id} recorded {} times", matching.len());
        let event = matching[0];
        let reason = event.reason.clone().unwrap_or_else(|| "<none>".into());
        *reasons.entry(*kind).or_default().entry(reason).or_default() += 1;
        assert_eq!(event.source_ip.as_deref(), Some("127.0.0.1"));
        match kind {
            Kind::Granted => {
                assert_eq!(event.outcome, "success", "{event:?}");
                assert_eq!(event.reason, None);
                assert_eq!(event.client_id.as_deref(), Some(id.as_str()));
                assert_eq!(event.partner_id.as_deref(), Some("once-p"));
                assert_eq!(event.secret_id.as_deref(), Some(client.secret.id.as_str()));
                assert_eq!(event.scopes.as_deref(), Some("orders.read"));
                assert_eq!(event.audience.as_deref(), Some(server.settings.default_audience.as_str()));
                assert_eq!(event.jti.as_ref(), Some(&issued_jtis[i]), "{request_id}: the jti of its token");
            }
            Kind::UnknownClient => {
                assert_eq!(event.outcome, "failure");
                assert_eq!(event.client_id.as_ref(), Some(&unknown_ids[i]));
                assert_eq!(event.partner_id, None);
                assert_eq!(event.jti, None);
            }
            Kind::WrongSecret | Kind::MalformedSecret => {
                assert_eq!(event.outcome, "failure");
                assert_eq!(event.client_id.as_deref(), Some(id.as_str()));
                assert_eq!(event.secret_id, None, "no secret matched");
                assert_eq!(event.jti, None);
            }
            Kind::InvalidScope => {
                assert_eq!(event.outcome, "failure");
                assert_eq!((event.partner_id.as_deref(), event.client_id.as_deref()), (Some("once-p"), Some(&*id)));
                assert_eq!(event.secret_id.as_deref(), Some(client.secret.id.as_str()), "authenticated first");
                assert_eq!(event.jti, None);
            }
            Kind::DisabledClient => {
                assert_eq!(event.outcome, "failure");
                assert_eq!(event.client_id.as_deref(), Some(disabled.client.id.as_str()));
                assert_eq!(event.secret_id.as_deref(), Some(disabled.secret.id.as_str()));
                assert_eq!(event.jti, None);
            }
        }
    }
    let expected_count = |kind: Kind| (0..N).filter(|i| KINDS[i % KINDS.len()] == kind).count();
    let invalid_scope_reason = "invalid_scope: the client may not request these scopes: orders.write".to_string();
    let expected: BTreeMap<Kind, BTreeMap<String, usize>> = [
        (Kind::Granted, "<none>".to_string()),
        (Kind::WrongSecret, "wrong_secret".to_string()),
        (Kind::UnknownClient, "unknown_client".to_string()),
        (Kind::InvalidScope, invalid_scope_reason),
        (Kind::MalformedSecret, "malformed_secret".to_string()),
        (Kind::DisabledClient, "client_disabled".to_string()),
    ]
    .into_iter()
    .map(|(kind, reason)| (kind, BTreeMap::from([(reason, expected_count(kind))])))
    .collect();
    assert_eq!(reasons, expected, "failure reasons per category");

    // Every issued jti appears exactly once in the whole table, whatever the event type.
    let mut jti_counts: HashMap<String, usize> = HashMap::new();
    for row in raw_rows(&server) {
        if let Some(jti) = row.jti {
            *jti_counts.entry(jti).or_default() += 1;
        }
    }
    for (i, jti) in &issued_jtis {
        assert_eq!(jti_counts.get(jti), Some(&1), "request {i}: jti {jti} recorded once");
    }

    // The secret's last use is one of its grants, within the writer's resolution of the latest one.
    let grants: Vec<_> = events.iter().filter(|e| e.outcome == "success").map(|e| e.occurred_at).collect();
    let latest_grant = grants.iter().max().copied().expect("grants");
    let listed = secrets::list(&mut server.conn(), &Caller::cli(), &id).expect("secrets");
    assert_eq!(listed.len(), 1);
    let last_used_at = listed[0].last_used_at.expect("the secret was used");
    assert!(grants.contains(&last_used_at), "last_used_at {last_used_at} is a grant's time");
    assert!(
        last_used_at > latest_grant - partnergate::audit::writer::LAST_USE_RESOLUTION,
        "last_used_at {last_used_at} is within the resolution of the latest grant {latest_grant}"
    );
    let disabled_listed = secrets::list(&mut server.conn(), &Caller::cli(), &disabled.client.id).expect("secrets");
    assert_eq!(disabled_listed[0].last_used_at, None, "a refused secret is not marked used");

    server.stop().await;
}

// ---------------------------------------------------------------------------------------------------------
// 2. No secret or token in events, error bodies or logs
// ---------------------------------------------------------------------------------------------------------

/// Every endpoint, successes and failures, including a partner who swaps its client id and secret. Then no
/// audit column, no error response and no log line holds any secret presented or issued, or any token.
#[actix_web::test]
async fn no_secret_or_token_leaks_into_events_error_bodies_or_logs() {
    capture_logs();
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let mut secrets_seen: Vec<String> = Vec::new();
    let mut tokens_seen: Vec<String> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    let mut record = |reply: &Reply| {
        if reply.status >= 400 {
            errors.push(reply.dump());
        }
    };

    let (operator, op_token) = server.operator().await;
    secrets_seen.push(operator.secret.secret.expose().to_string());
    tokens_seen.push(op_token.clone());

    let partner = server.seed("leak-p").ceiling(&["orders.read", INTROSPECT]).role(&["orders.read"]).create();
    let other = server.client_of("leak-p").roles(&["role-leak-p"]).create();
    let introspector = server.client_of("leak-p").scopes(&[INTROSPECT]).create();
    for c in [&partner, &other, &introspector] {
        secrets_seen.push(c.secret.secret.expose().to_string());
    }
    let (pid, psecret) = (partner.client.id.as_str(), partner.secret.secret.expose());
    let wrong = ClientSecret::generate().expose().to_string();
    secrets_seen.push(wrong.clone());

    // Token endpoint: success, then failures of every kind.
    let token_url = server.url("/oauth2/token");
    let granted = token_request(&http, &token_url, &[("client_id", pid), ("client_secret", psecret)], None).await;
    let t1 = granted.expect_status(200)["access_token"].as_str().unwrap().to_string();
    tokens_seen.push(t1.clone());
    let basic = basic_auth(pid, &wrong);
    let failures = [
        token_request(&http, &token_url, &[("client_id", pid), ("client_secret", &wrong)], None).await,
        token_request(&http, &token_url, &[("client_id", pid), ("client_secret", &psecret[..45])], None).await,
        token_request(&http, &token_url, &[], Some(&basic)).await,
        token_request(
            &http,
            &token_url,
            &[("client_id", pid), ("client_secret", psecret), ("scope", INTROSPECT)],
            None,
        )
        .await,
        // Both methods at once.
        token_request(&http, &token_url, &[("client_secret", psecret)], Some(&basic_auth(pid, psecret))).await,
        // A partner who swaps its id and secret, in the body and in Basic.
        token_request(&http, &token_url, &[("client_id", psecret), ("client_secret", pid)], None).await,
        token_request(&http, &token_url, &[], Some(&basic_auth(psecret, pid))).await,
    ];
    let expected = [
        (401, "invalid_client"),
        (401, "invalid_client"),
        (401, "invalid_client"),
        (400, "invalid_scope"),
        (400, "invalid_request"),
        (401, "invalid_client"),
        (401, "invalid_client"),
    ];
    for (reply, (status, error)) in failures.iter().zip(expected) {
        reply.expect_oauth_error(status, error);
        record(reply);
    }

    // Introspection: active, by a client without the scope, an unknown token, the token as the client id.
    let (iid, isecret) = (introspector.client.id.as_str(), introspector.secret.secret.expose());
    let introspect_url = server.url("/oauth2/introspect");
    let active = token_request(&http, &introspect_url, &[("token", &t1)], Some(&basic_auth(iid, isecret))).await;
    assert_eq!(active.expect_status(200)["active"], true);
    let no_scope = token_request(&http, &introspect_url, &[("token", &t1)], Some(&basic_auth(pid, psecret))).await;
    no_scope.expect_oauth_error(403, "unauthorized_client");
    record(&no_scope);
    let garbage =
        token_request(&http, &introspect_url, &[("token", "not-a-token")], Some(&basic_auth(iid, isecret))).await;
    assert_eq!(garbage.expect_status(200), json!({"active": false}));
    let token_as_id =
        token_request(&http, &introspect_url, &[("token", &t1), ("client_id", &t1), ("client_secret", isecret)], None)
            .await;
    token_as_id.expect_oauth_error(401, "invalid_client");
    record(&token_as_id);

    // Revocation: by another client (not revoked), with a wrong secret, then by its own client.
    let revoke_url = server.url("/oauth2/revoke");
    let (oid, osecret) = (other.client.id.as_str(), other.secret.secret.expose());
    let by_other = token_request(&http, &revoke_url, &[("token", &t1)], Some(&basic_auth(oid, osecret))).await;
    assert_eq!(by_other.status, 200, "{}", by_other.dump());
    let bad_revoker = token_request(&http, &revoke_url, &[("token", &t1)], Some(&basic_auth(oid, &wrong))).await;
    bad_revoker.expect_oauth_error(401, "invalid_client");
    record(&bad_revoker);
    let revoked = token_request(&http, &revoke_url, &[("token", &t1)], Some(&basic_auth(pid, psecret))).await;
    assert_eq!(revoked.status, 200, "{}", revoked.dump());
    let after = token_request(&http, &introspect_url, &[("token", &t1)], Some(&basic_auth(iid, isecret))).await;
    assert_eq!(after.expect_status(200), json!({"active": false}));

    // Admin API: create a client, rotate, revoke the first secret, disable; with failures along the way.
    let created = admin(
        &http,
        &server,
        &op_token,
        Method::POST,
        "/clients",
        &[],
        Some(json!({
            "partner_id": "leak-p", "name": "leak client", "scopes": ["orders.read"]
        })),
    )
    .await
    .expect_status(201);
    let new_id = created["client"]["id"].as_str().unwrap().to_string();
    let s2 = created["secret"]["secret"].as_str().unwrap().to_string();
    let s2_id = created["secret"]["id"].as_str().unwrap().to_string();
    secrets_seen.push(s2.clone());
    let rotated = admin(&http, &server, &op_token, Method::POST, &format!("/clients/{new_id}/secrets"), &[], None)
        .await
        .expect_status(201);
    let s3 = rotated["secret"].as_str().unwrap().to_string();
    secrets_seen.push(s3.clone());
    let t3 = token_request(&http, &token_url, &[("client_id", &new_id), ("client_secret", &s3)], None).await;
    let t3 = t3.expect_status(200)["access_token"].as_str().unwrap().to_string();
    tokens_seen.push(t3.clone());
    let revoke_secret =
        admin(&http, &server, &op_token, Method::DELETE, &format!("/clients/{new_id}/secrets/{s2_id}"), &[], None)
            .await;
    assert!(revoke_secret.expect_status(200)["revoked_at"].is_string(), "{}", revoke_secret.text);
    let with_revoked = token_request(&http, &token_url, &[("client_id", &new_id), ("client_secret", &s2)], None).await;
    with_revoked.expect_oauth_error(401, "invalid_client");
    record(&with_revoked);
    let disabled = admin(&http, &server, &op_token, Method::POST, &format!("/clients/{new_id}/disable"), &[], None)
        .await
        .expect_status(200);
    assert_eq!(disabled["enabled"], false);
    let while_disabled =
        token_request(&http, &token_url, &[("client_id", &new_id), ("client_secret", &s3)], None).await;
    while_disabled.expect_oauth_error(401, "invalid_client");
    record(&while_disabled);
    let patched = admin(
        &http,
        &server,
        &op_token,
        Method::PATCH,
        &format!("/clients/{new_id}"),
        &[],
        Some(json!({
            "name": "renamed"
        })),
    )
    .await;
    assert_eq!(patched.expect_status(200)["name"], "renamed");

    let admin_failures = [
        // A token for another audience, a tampered token, no such client, an invalid body, a bad query.
        admin(&http, &server, &t3, Method::GET, "/audit", &[], None).await,
        admin(&http, &server, &tampered(&op_token), Method::GET, "/audit", &[], None).await,
        admin(&http, &server, &op_token, Method::POST, "/clients/pgc_nosuchclient/secrets", &[], None).await,
        admin(&http, &server, &op_token, Method::POST, "/clients", &[], Some(json!({"partner_id": "leak-p"}))).await,
        admin(&http, &server, &op_token, Method::GET, "/audit?limit=0", &[], None).await,
        admin(&http, &server, &op_token, Method::GET, "/audit?outcome=maybe", &[], None).await,
    ];
    let statuses: Vec<u16> = admin_failures.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [401, 401, 404, 400, 400, 400], "admin failures");
    for reply in &admin_failures {
        record(reply);
    }

    // The audit query over HTTP: a view of the table, so it must be clean too.
    let trail = admin(&http, &server, &op_token, Method::GET, "/audit?limit=1000", &[], None).await;
    let trail_body = trail.expect_status(200);
    let trail_text = trail.text.clone();
    let types: BTreeSet<&str> =
        trail_body["items"].as_array().unwrap().iter().map(|e| e["event_type"].as_str().unwrap()).collect();
    for expected in [
        "token.request",
        "token.introspect",
        "token.revoke",
        "client.create",
        "secret.create",
        "secret.revoke",
        "client.disable",
        "client.update",
    ] {
        assert!(types.contains(expected), "{expected} recorded: {types:?}");
    }

    // Needles: the random middle of every secret (so a truncated or embedded one is found too), and every
    // token whole, plus its payload and signature segments.
    let mut needles: Vec<String> = secrets_seen.iter().map(|s| s[8..40].to_string()).collect();
    for token in &tokens_seen {
        needles.push(token.clone());
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3, "a JWS");
        needles.push(parts[1].to_string());
        needles.push(parts[2].to_string());
    }

    let rows = raw_rows(&server);
    assert!(rows.len() > 20, "the run produced events: {}", rows.len());
    for row in &rows {
        let text = format!("{row:?}");
        for needle in &needles {
            assert!(!text.contains(needle.as_str()), "an audit event holds a secret or token: {text}");
        }
    }
    // The truncated and the swapped secrets are recorded; where the secret sat in the client id, the id is
    // redacted, and so is the token sent as the introspecting client's id.
    let malformed: Vec<(&str, Option<&str>)> = rows
        .iter()
        .filter(|r| r.event_type == "token.request" && r.reason.as_deref() == Some("malformed_secret"))
        .map(|r| (r.outcome.as_str(), r.client_id.as_deref()))
        .collect();
    assert_eq!(malformed, [("failure", Some(pid)), ("failure", Some(REDACTED)), ("failure", Some(REDACTED))]);
    let introspections: Vec<Option<&str>> =
        rows.iter().filter(|r| r.event_type == "token.introspect").map(|r| r.client_id.as_deref()).collect();
    assert_eq!(introspections.len(), 5, "{introspections:?}");
    assert_eq!(
        [introspections[0], introspections[1], introspections[2], introspections[4]],
        [Some(iid), Some(pid), Some(iid), Some(iid)]
    );
    assert!(matches!(introspections[3], None | Some(REDACTED)), "the token is not the client id: {introspections:?}");

    assert!(errors.len() >= 15, "error responses collected: {}", errors.len());
    for error in errors.iter().chain([&trail_text]) {
        for needle in &needles {
            assert!(!error.contains(needle.as_str()), "a response holds a secret or token: {error}");
        }
    }

    let lines = captured_logs();
    let listening = format!("partnergate listening on {}", server.base_url);
    assert!(lines.iter().any(|l| l.contains(&listening)), "the logger captured this server: {lines:?}");
    assert!(lines.iter().any(|l| l.contains("admin token rejected")), "the logger captured the rejections");
    for line in &lines {
        for needle in &needles {
            assert!(!line.contains(needle.as_str()), "a log line holds a secret or token: {line}");
        }
    }

    server.stop().await;
}

// ---------------------------------------------------------------------------------------------------------
// 3. Partner isolation of the audit query, and cursor pagination
// ---------------------------------------------------------------------------------------------------------

/// Partner A's audit reader sees A's events only, whatever partner or client it names; the operator sees
/// both; a partner admin without `authz.audit.read` is refused. Pages of two follow the cursor newest first.
#[actix_web::test]
async fn audit_query_is_isolated_per_partner_and_pages_with_a_cursor() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let (_, op_token) = server.operator().await;

    let ceiling = ["orders.read", AUDIT_READ, CLIENTS_READ];
    let a = server.seed("audit-a").ceiling(&ceiling).role(&["orders.read"]).create();
    let b = server.seed("audit-b").ceiling(&ceiling).role(&["orders.read"]).create();
    let admin_aud = server.settings.admin_audience.clone();
    let a_reader = server.client_of("audit-a").scopes(&[AUDIT_READ]).audiences(&[&admin_aud]).create();
    let b_reader = server.client_of("audit-b").scopes(&[AUDIT_READ]).audiences(&[&admin_aud]).create();
    let a_clients_only = server.client_of("audit-a").scopes(&[CLIENTS_READ]).audiences(&[&admin_aud]).create();
    let a_token = server.token_for(&a_reader, &[], None).await;
    let b_token = server.token_for(&b_reader, &[], None).await;
    let a_clients_token = server.token_for(&a_clients_only, &[], None).await;

    // Business traffic for both partners: grants and failures.
    let token_url = server.url("/oauth2/token");
    let wrong = ClientSecret::generate().expose().to_string();
    for (client, tag) in [(&a, "a"), (&b, "b")] {
        let id = client.client.id.as_str();
        for n in 0..3 {
            let creds = [("client_id", id), ("client_secret", client.secret.secret.expose())];
            let ok = token_request_with_id(&http, &token_url, &creds, Some(&format!("iso-{tag}-ok-{n}"))).await;
            assert_eq!(ok.expect_status(200)["scope"], "orders.read");
        }
        let failed = token_request(&http, &token_url, &[("client_id", id), ("client_secret", &wrong)], None).await;
        failed.expect_oauth_error(401, "invalid_client");
    }

    // A's reader: only A's events, including the failures and its own token request.
    let a_items = admin(&http, &server, &a_token, Method::GET, "/audit?limit=1000", &[], None).await.expect_status(200);
    let a_events = a_items["items"].as_array().unwrap().clone();
    assert_eq!(a_items["next_cursor"], Value::Null);
    assert!(!a_events.is_empty());
    assert!(a_events.iter().all(|e| e["partner_id"] == "audit-a"), "only A's events: {a_items}");
    let a_expected = all_events(&server, AuditFilter { partner_id: Some("audit-a".into()), ..Default::default() });
    assert_eq!(ids_of(&a_events), a_expected.iter().map(|e| e.id).collect::<Vec<_>>(), "every A event, newest first");
    let a_token_requests = a_events
        .iter()
        .filter(|e| e["event_type"] == "token.request" && e["client_id"] == a.client.id.as_str())
        .count();
    assert_eq!(a_token_requests, 4, "A's three grants and one failure");
    assert!(a_events.iter().any(|e| e["client_id"] == a_reader.client.id.as_str()), "its own token request");

    // Naming B changes nothing: the partner filter is combined with A's own partner, never replaces it.
    for query in [
        "/audit?partner_id=audit-b".to_string(),
        format!("/audit?client_id={}", b.client.id),
        format!("/audit?partner_id=audit-b&client_id={}&outcome=success", b.client.id),
    ] {
        let reply = admin(&http, &server, &a_token, Method::GET, &query, &[], None).await;
        assert_eq!(reply.expect_status(200), json!({"items": [], "next_cursor": null}), "{query}");
    }
    let own_filtered =
        admin(&http, &server, &a_token, Method::GET, "/audit?partner_id=audit-a&outcome=failure", &[], None)
            .await
            .expect_status(200);
    let own_failures = own_filtered["items"].as_array().unwrap();
    assert_eq!(own_failures.len(), 1, "{own_filtered}");
    assert_eq!(own_failures[0]["reason"], "wrong_secret");
    assert_eq!(own_failures[0]["client_id"], a.client.id.as_str());

    // B's reader sees B's events only.
    let b_items = admin(&http, &server, &b_token, Method::GET, "/audit?limit=1000", &[], None).await.expect_status(200);
    let b_events = b_items["items"].as_array().unwrap();
    assert!(!b_events.is_empty());
    assert!(b_events.iter().all(|e| e["partner_id"] == "audit-b"), "{b_items}");

    // The operator sees both, and can filter to either.
    let op_all = admin(&http, &server, &op_token, Method::GET, "/audit?event_type=token.request&limit=1000", &[], None)
        .await
        .expect_status(200);
    let partners_seen: BTreeSet<&str> =
        op_all["items"].as_array().unwrap().iter().filter_map(|e| e["partner_id"].as_str()).collect();
    assert_eq!(partners_seen, BTreeSet::from(["audit-a", "audit-b", "operator"]));
    let op_b = admin(&http, &server, &op_token, Method::GET, "/audit?partner_id=audit-b&limit=1000", &[], None)
        .await
        .expect_status(200);
    let b_expected = all_events(&server, AuditFilter { partner_id: Some("audit-b".into()), ..Default::default() });
    assert_eq!(ids_of(op_b["items"].as_array().unwrap()), b_expected.iter().map(|e| e.id).collect::<Vec<_>>());
    assert_eq!(ids_of(b_events), ids_of(op_b["items"].as_array().unwrap()), "B's reader and the operator agree");

    // Without authz.audit.read: 403; without a token for the admin audience: 401.
    let refused = admin(&http, &server, &a_clients_token, Method::GET, "/audit", &[], None).await;
    assert_eq!(refused.expect_status(403)["error"], "forbidden");
    let business_token = server.token_for(&a, &[], None).await;
    let wrong_audience = admin(&http, &server, &business_token, Method::GET, "/audit", &[], None).await;
    assert_eq!(wrong_audience.expect_status(401)["error"], "invalid_token");

    // Cursor pagination: pages of two, newest first, without duplicates, ending with a null cursor.
    let everything =
        admin(&http, &server, &a_token, Method::GET, "/audit?limit=1000", &[], None).await.expect_status(200);
    let everything = everything["items"].as_array().unwrap().clone();
    // Since then: A's business token request, and its clients admin's refused (403) audit query.
    assert_eq!(everything.len(), a_events.len() + 2, "A's business token request and refused query since");
    let refusals: Vec<&Value> = everything.iter().filter(|e| e["event_type"] == "admin.refused").collect();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(refusals[0]["reason"], "forbidden");
    assert_eq!(refusals[0]["details"]["path"], "/admin/v1/audit");
    assert!(everything.len() >= 5, "enough events for several pages: {}", everything.len());
    let mut pages = 0;
    let mut seen: Vec<i64> = Vec::new();
    let mut cursor: Option<i64> = None;
    loop {
        let path = match cursor {
            None => "/audit?limit=2".to_string(),
            Some(c) => format!("/audit?limit=2&cursor={c}"),
        };
        let page = admin(&http, &server, &a_token, Method::GET, &path, &[], None).await.expect_status(200);
        let items = page["items"].as_array().unwrap();
        pages += 1;
        assert!(!items.is_empty() && items.len() <= 2, "{page}");
        let page_ids = ids_of(items);
        if let Some(c) = cursor {
            assert!(page_ids.iter().all(|id| *id < c), "older than the cursor: {page}");
        }
        seen.extend(&page_ids);
        match page["next_cursor"].as_i64() {
            Some(next) => {
                assert_eq!(items.len(), 2, "a full page before the end");
                assert_eq!(next, *page_ids.last().unwrap(), "the cursor is the last id of the page");
                cursor = Some(next);
            }
            None => {
                assert_eq!(page["next_cursor"], Value::Null);
                break;
            }
        }
        assert!(pages <= everything.len(), "pagination terminates");
    }
    assert_eq!(seen, ids_of(&everything), "the pages together are the whole list, newest first");
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "strictly newest first: {seen:?}");
    assert_eq!(pages, everything.len().div_ceil(2));

    server.stop().await;
}

// ---------------------------------------------------------------------------------------------------------
// 4. Request ids
// ---------------------------------------------------------------------------------------------------------

/// A valid `X-Request-Id` is echoed and stored; an invalid one is replaced by a generated id, which is
/// returned and stored. Failures and the admin API carry the id too.
#[actix_web::test]
async fn request_ids_are_echoed_or_generated_and_stored() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let client = server.seed("reqid-p").role(&["orders.read"]).create();
    let (id, secret) = (client.client.id.as_str(), client.secret.secret.expose());
    let token_url = server.url("/oauth2/token");
    let good: &[(&str, &str)] = &[("client_id", id), ("client_secret", secret)];
    let wrong = ClientSecret::generate().expose().to_string();
    let bad: &[(&str, &str)] = &[("client_id", id), ("client_secret", &wrong)];

    let longest = format!("max-{}", "x".repeat(124));
    assert_eq!(longest.len(), 128);
    for (incoming, body, status) in [
        ("trail-req_01.a:b", good, 200),
        ("failing-request-7", bad, 401),
        (longest.as_str(), good, 200),
        ("Ab9-_.:", good, 200),
    ] {
        let reply = token_request_with_id(&http, &token_url, body, Some(incoming)).await;
        assert_eq!(reply.status, status, "{}", reply.dump());
        assert_eq!(reply.header("x-request-id"), incoming, "echoed");
        let events = events_with_request_id(&server, incoming);
        assert_eq!(events.len(), 1, "stored once: {events:?}");
        assert_eq!(events[0].event_type, "token.request");
        assert_eq!(events[0].outcome, if status == 200 { "success" } else { "failure" });
        assert_eq!(events[0].client_id.as_deref(), Some(id));
    }

    let too_long = "y".repeat(129);
    let two_hundred = "z".repeat(200);
    let mut generated = BTreeSet::new();
    for incoming in [
        Some("has spaces in it"),
        Some(too_long.as_str()),
        Some(two_hundred.as_str()),
        Some("semi;colon"),
        Some(""),
        None,
    ] {
        let reply = token_request_with_id(&http, &token_url, good, incoming).await;
        assert_eq!(reply.status, 200, "{}", reply.dump());
        let returned = reply.header("x-request-id");
        assert_ne!(Some(returned.as_str()), incoming, "replaced");
        assert_eq!(returned.len(), 22, "a generated id: {returned}");
        assert!(returned.bytes().all(|b| b.is_ascii_alphanumeric()), "base62: {returned}");
        let events = events_with_request_id(&server, &returned);
        assert_eq!(events.len(), 1, "the generated id is stored: {returned}");
        assert_eq!(events[0].outcome, "success");
        if let Some(incoming) = incoming.filter(|i| !i.is_empty()) {
            assert!(events_with_request_id(&server, incoming).is_empty(), "the invalid id is not stored");
        }
        assert!(generated.insert(returned), "generated ids differ");
    }

    // Failures generate ids too; the admin API and plain endpoints echo them.
    let failed = token_request_with_id(&http, &token_url, bad, Some("bad id")).await;
    failed.expect_oauth_error(401, "invalid_client");
    let returned = failed.header("x-request-id");
    assert_eq!(returned.len(), 22);
    assert_eq!(events_with_request_id(&server, &returned)[0].reason.as_deref(), Some("wrong_secret"));
    let health = send(&http, Method::GET, &server.url("/healthz"), &[("x-request-id", "health-1")], None).await;
    assert_eq!(health.header("x-request-id"), "health-1");
    let unauthenticated =
        send(&http, Method::GET, &server.url("/admin/v1/audit"), &[("x-request-id", "admin-1")], None).await;
    assert_eq!(unauthenticated.status, 401);
    assert_eq!(unauthenticated.header("x-request-id"), "admin-1");

    server.stop().await;
}

// ---------------------------------------------------------------------------------------------------------
// 5. Admin action events
// ---------------------------------------------------------------------------------------------------------

/// Creating and updating a client through the admin API records who did it, from where, under which request
/// id, and the state before and after.
#[actix_web::test]
async fn admin_actions_record_actor_request_and_before_after() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let (operator, op_token) = server.operator().await;
    server
        .seed("actions-p")
        .ceiling(&["orders.read", "orders.write", CLIENTS_WRITE, AUDIT_READ])
        .role(&["orders.read"])
        .create();
    let admin_aud = server.settings.admin_audience.clone();
    let partner_admin =
        server.client_of("actions-p").scopes(&[CLIENTS_WRITE, AUDIT_READ]).audiences(&[&admin_aud]).create();
    let pa_token = server.token_for(&partner_admin, &[], None).await;

    let headers = [("x-request-id", "create-client-req-1"), ("user-agent", "audit-trail-test/5")];
    let created = admin(
        &http,
        &server,
        &op_token,
        Method::POST,
        "/clients",
        &headers,
        Some(json!({
            "partner_id": "actions-p", "name": "before name", "scopes": ["orders.read"]
        })),
    )
    .await;
    assert_eq!(created.header("x-request-id"), "create-client-req-1");
    let created = created.expect_status(201);
    let client_id = created["client"]["id"].as_str().unwrap().to_string();
    let secret_id = created["secret"]["id"].as_str().unwrap().to_string();

    let path = format!("/audit?event_type=client.create&client_id={client_id}");
    let listed = admin(&http, &server, &op_token, Method::GET, &path, &[], None).await.expect_status(200);
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{listed}");
    let event = &items[0];
    assert_eq!(event["actor"], format!("client:{}", operator.client.id));
    assert_eq!(event["request_id"], "create-client-req-1");
    assert_eq!(event["source_ip"], "127.0.0.1");
    assert_eq!(event["user_agent"], "audit-trail-test/5");
    assert_eq!(event["outcome"], "success");
    assert_eq!(event["reason"], Value::Null);
    assert_eq!(event["partner_id"], "actions-p");
    assert_eq!(event["client_id"], client_id.as_str());
    assert_eq!(event["details"]["after"]["id"], client_id.as_str());
    assert_eq!(event["details"]["after"]["name"], "before name");
    assert_eq!(event["details"]["after"]["scopes"], json!(["orders.read"]));
    assert_eq!(event["details"]["secret_id"], secret_id.as_str());
    let secret = created["secret"]["secret"].as_str().unwrap();
    assert!(!listed.to_string().contains(&secret[8..]), "the event does not hold the secret");

    let headers = [("x-request-id", "update-client-req-2")];
    let updated = admin(
        &http,
        &server,
        &op_token,
        Method::PATCH,
        &format!("/clients/{client_id}"),
        &headers,
        Some(json!({
            "name": "after name", "scopes": ["orders.read", "orders.write"], "token_lifetime_secs": 300
        })),
    )
    .await
    .expect_status(200);
    assert_eq!(updated["name"], "after name");
    let path = format!("/audit?event_type=client.update&client_id={client_id}");
    let listed = admin(&http, &server, &op_token, Method::GET, &path, &[], None).await.expect_status(200);
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{listed}");
    let event = &items[0];
    assert_eq!(event["actor"], format!("client:{}", operator.client.id));
    assert_eq!(event["request_id"], "update-client-req-2");
    assert_eq!(event["source_ip"], "127.0.0.1");
    let (before, after) = (&event["details"]["before"], &event["details"]["after"]);
    assert_eq!(before["name"], "before name");
    assert_eq!(after["name"], "after name");
    assert_eq!(before["scopes"], json!(["orders.read"]));
    assert_eq!(after["scopes"], json!(["orders.read", "orders.write"]));
    assert_eq!(before["token_lifetime_secs"], Value::Null);
    assert_eq!(after["token_lifetime_secs"], 300);
    assert_eq!(before["id"], client_id.as_str());
    assert_eq!(after["id"], client_id.as_str());

    // A partner admin is named as the actor of its own changes, and reads them back itself.
    let headers = [("x-request-id", "partner-admin-create")];
    let by_partner =
        admin(&http, &server, &pa_token, Method::POST, "/clients", &headers, Some(json!({"name": "by partner"})))
            .await
            .expect_status(201);
    let by_partner_id = by_partner["client"]["id"].as_str().unwrap().to_string();
    let path = format!("/audit?event_type=client.create&client_id={by_partner_id}");
    let listed = admin(&http, &server, &pa_token, Method::GET, &path, &[], None).await.expect_status(200);
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{listed}");
    assert_eq!(items[0]["actor"], format!("client:{}", partner_admin.client.id));
    assert_eq!(items[0]["partner_id"], "actions-p");
    assert_eq!(items[0]["request_id"], "partner-admin-create");

    // Each change was recorded once, in its own transaction: exactly these admin events for the two clients.
    let kinds: Vec<(String, String)> =
        all_events(&server, AuditFilter { partner_id: Some("actions-p".into()), ..Default::default() })
            .into_iter()
            .filter(|e| e.client_id.as_deref() == Some(&client_id) || e.client_id.as_deref() == Some(&by_partner_id))
            .map(|e| (e.event_type, e.request_id.unwrap_or_default()))
            .collect();
    assert_eq!(
        kinds,
        [
            ("client.create".to_string(), "partner-admin-create".to_string()),
            ("client.update".to_string(), "update-client-req-2".to_string()),
            ("client.create".to_string(), "create-client-req-1".to_string()),
        ]
    );

    server.stop().await;
}

// ---------------------------------------------------------------------------------------------------------
// 6. The writer: graceful shutdown mid-load, and a database that refuses writes
// ---------------------------------------------------------------------------------------------------------

/// Many concurrent token requests; the server is stopped gracefully after the first 50 answers, while the
/// rest are in flight. Every token that reached its caller has its event in the database afterwards.
#[actix_web::test]
async fn events_of_answered_requests_survive_a_graceful_shutdown_mid_load() {
    const TOTAL: usize = 1500;
    let mut server = TestServer::start().await;
    let client = server.seed("drain-p").role(&["orders.read"]).create();
    let body = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", &client.client.id),
        ("client_secret", client.secret.secret.expose()),
    ]);
    let url = server.url("/oauth2/token");
    let http = reqwest::Client::new();
    let answered = AtomicUsize::new(0);

    let load = stream::iter(0..TOTAL)
        .map(|i| {
            let (http, url, body, answered) = (&http, &url, &body, &answered);
            async move {
                let outcome = async {
                    let response = http
                        .post(url.as_str())
                        .header("content-type", FORM)
                        .header("x-request-id", format!("drain-{i:05}"))
                        .body(body.clone())
                        .send()
                        .await?;
                    let status = response.status().as_u16();
                    let text = response.text().await?;
                    Ok::<_, reqwest::Error>((status, text))
                }
                .await;
                if outcome.is_ok() {
                    answered.fetch_add(1, Ordering::SeqCst);
                }
                (i, outcome)
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>();
    let stop = async {
        while answered.load(Ordering::SeqCst) < 50 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        server.stop_keep_db().await;
    };
    let (outcomes, ()) = futures_util::future::join(load, stop).await;

    // The server is gone: nothing answers any more.
    assert!(http.post(url.as_str()).body(body.clone()).send().await.is_err(), "the server stopped");

    let mut issued: Vec<(usize, String)> = Vec::new();
    let mut unavailable = 0;
    let mut failed = 0;
    for (i, outcome) in &outcomes {
        match outcome {
            Ok((200, text)) => {
                let body: Value = serde_json::from_str(text).expect("token JSON");
                issued.push((*i, jti_of(body["access_token"].as_str().expect("access_token"))));
            }
            Ok((503, text)) => {
                let body: Value = serde_json::from_str(text).expect("error JSON");
                assert_eq!(body["error"], "temporarily_unavailable", "{text}");
                unavailable += 1;
            }
            Ok((status, text)) => panic!("request {i}: unexpected {status}: {text}"),
            Err(_) => failed += 1,
        }
    }
    assert!(issued.len() >= 50, "at least the first 50 answers were tokens: {}", issued.len());
    assert!(failed > 0, "the stop came mid-load: some requests found the server gone");
    assert_eq!(issued.len() + unavailable + failed, TOTAL);

    // The database outlives the server: every answered token has exactly one committed event.
    let rows = raw_rows(&server);
    let mut by_jti: HashMap<&str, Vec<&AuditEventRow>> = HashMap::new();
    for row in &rows {
        if let Some(jti) = &row.jti {
            by_jti.entry(jti.as_str()).or_default().push(row);
        }
    }
    for (i, jti) in &issued {
        let events = by_jti.get(jti.as_str()).unwrap_or_else(|| panic!("request {i}: token {jti} has no event"));
        assert_eq!(events.len(), 1, "request {i}: recorded once");
        assert_eq!(events[0].outcome, "success");
        assert_eq!(events[0].request_id.as_deref(), Some(format!("drain-{i:05}").as_str()));
    }
    let successes = rows.iter().filter(|r| r.event_type == "token.request" && r.outcome == "success").count();
    assert!(successes >= issued.len(), "{successes} success events for {} answered tokens", issued.len());

    server.stop().await;
}

/// While the database refuses audit inserts, the token endpoint answers 503 `temporarily_unavailable` with
/// `Retry-After` and issues nothing; admin changes are refused whole. Once it accepts again, tokens flow.
#[actix_web::test]
async fn refused_audit_writes_make_the_token_endpoint_unavailable_until_they_succeed() {
    capture_logs();
    let clock = manual_clock();
    let server = TestServer::start_on(&clock).await;
    let http = reqwest::Client::new();
    let (_, op_token) = server.operator().await;
    let client = server.seed("refuse-p").role(&["orders.read"]).create();
    let (id, secret) = (client.client.id.as_str(), client.secret.secret.expose());
    let token_url = server.url("/oauth2/token");
    let creds: &[(&str, &str)] = &[("client_id", id), ("client_secret", secret)];

    let first = token_request(&http, &token_url, creds, None).await;
    let t1 = first.expect_status(200)["access_token"].as_str().unwrap().to_string();
    let used_before = last_used(&server, &client);
    assert!(used_before.is_some());
    let events_before = raw_rows(&server).len();
    // Past the writer's last-use resolution, so that every request below would move the secret's last use.
    clock.advance(partnergate::audit::writer::LAST_USE_RESOLUTION);

    let postgres = server.db.url.starts_with("postgres");
    // A full disk, as each database words it: an outage (503), not a fault of ours (500, tests/error_boundary.rs).
    let refuse = if postgres {
        "CREATE FUNCTION refuse_audit() RETURNS trigger AS $$ BEGIN
           RAISE EXCEPTION 'refused: could not extend file: No space left on device' USING ERRCODE = 'disk_full';
         END $$ LANGUAGE plpgsql;
         CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse_audit();"
    } else {
        "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events BEGIN
           SELECT RAISE(ABORT, 'refused: database or disk is full');
         END;"
    };
    server.conn().batch_execute(refuse).expect("install the refusing trigger");

    for (n, auth) in [(0, None), (1, Some(basic_auth(id, secret)))] {
        let reply = match &auth {
            None => token_request(&http, &token_url, creds, None).await,
            Some(basic) => token_request(&http, &token_url, &[], Some(basic)).await,
        };
        reply.expect_oauth_error(503, "temporarily_unavailable");
        let retry_after = reply.header("retry-after");
        assert!(retry_after.parse::<u32>().is_ok_and(|s| s > 0), "Retry-After in seconds: {retry_after:?}");
        assert!(!reply.text.contains("access_token"), "no token: {}", reply.text);
        assert!(!reply.text.contains("refused"), "the database's message stays inside: {}", reply.text);
        assert_eq!(reply.json()["error_description"], "the service is temporarily unavailable; retry later", "{n}");
    }
    // A failing request is refused the same way: its event cannot be written either.
    let wrong = ClientSecret::generate().expose().to_string();
    let failing = token_request(&http, &token_url, &[("client_id", id), ("client_secret", &wrong)], None).await;
    failing.expect_oauth_error(503, "temporarily_unavailable");
    // Revocation is audited the same way, and the revocation commits with its event or not at all.
    let revoke =
        token_request(&http, &server.url("/oauth2/revoke"), &[("token", &t1)], Some(&basic_auth(id, secret))).await;
    revoke.expect_oauth_error(503, "temporarily_unavailable");
    let t1_jti = jti_of(&t1);
    assert!(!revoked::is_revoked(&mut server.conn(), &t1_jti).unwrap(), "a refused revocation did not happen");

    // An admin change cannot land without its record: the whole change is refused.
    let create = admin(
        &http,
        &server,
        &op_token,
        Method::POST,
        "/clients",
        &[],
        Some(json!({
            "partner_id": "refuse-p", "name": "never created"
        })),
    )
    .await;
    assert!(create.status == 500 || create.status == 503, "refused: {}", create.dump());
    assert!(!create.text.contains("refused"), "{}", create.text);
    let page = clients::list(&mut server.conn(), &Caller::cli(), &Default::default()).expect("clients");
    assert!(page.items.iter().all(|c| c.name != "never created"), "no client without its audit record");

    // No event was written, and the last-use update was rolled back with the refused batch.
    assert_eq!(raw_rows(&server).len(), events_before, "no event while refused");
    assert_eq!(last_used(&server, &client), used_before, "last use rolled back with the refused batch");
    let lines = captured_logs();
    assert!(
        lines.iter().any(|l| l.contains("audit batch of") && l.contains("failed") && l.contains("refused")),
        "the writer logged the refusal"
    );
    assert!(lines.iter().any(|l| l.contains("token endpoint unavailable")), "the endpoint logged its 503s");
    for line in &lines {
        assert!(!line.contains(&secret[8..40]), "a log line holds the secret: {line}");
    }

    let drop_trigger =
        if postgres { "DROP TRIGGER refuse_audit ON audit_events;" } else { "DROP TRIGGER refuse_audit;" };
    server.conn().batch_execute(drop_trigger).expect("drop the trigger");

    let recovered = token_request_with_id(&http, &token_url, creds, Some("after-recovery")).await;
    let t2 = recovered.expect_status(200)["access_token"].as_str().unwrap().to_string();
    let events = events_with_request_id(&server, "after-recovery");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].outcome, "success");
    assert_eq!(events[0].jti.as_deref(), Some(jti_of(&t2).as_str()));
    assert_eq!(raw_rows(&server).len(), events_before + 1, "exactly the recovered request's event");
    assert!(last_used(&server, &client) > used_before, "last use moves on again");
    let latest = admin(&http, &server, &op_token, Method::GET, "/audit?limit=1", &[], None).await;
    assert_eq!(latest.expect_status(200)["items"][0]["request_id"], "after-recovery");
    let revoke =
        token_request(&http, &server.url("/oauth2/revoke"), &[("token", &t1)], Some(&basic_auth(id, secret))).await;
    assert_eq!(revoke.status, 200, "{}", revoke.text);
    assert!(revoked::is_revoked(&mut server.conn(), &t1_jti).unwrap(), "revoked together with its event");

    server.stop().await;
}

// ---------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------

const FORM: &str = "application/x-www-form-urlencoded";

async fn send(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, String)>,
) -> Reply {
    let mut request = http.request(method, url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some((content_type, body)) = body {
        request = request.header("content-type", content_type).body(body);
    }
    Reply::from(request.send().await.expect("request sent")).await
}

/// A POST to an OAuth endpoint: `params` (after `grant_type=client_credentials` at the token endpoint), and an
/// optional `Authorization` header.
async fn token_request(
    http: &reqwest::Client,
    url: &str,
    params: &[(&str, &str)],
    authorization: Option<&str>,
) -> Reply {
    let mut pairs = Vec::new();
    if url.ends_with("/oauth2/token") {
        pairs.push(("grant_type", "client_credentials"));
    }
    pairs.extend_from_slice(params);
    let headers: Vec<(&str, &str)> = authorization.map(|a| ("authorization", a)).into_iter().collect();
    send(http, Method::POST, url, &headers, Some((FORM, form(&pairs)))).await
}

/// A token request with client credentials in the body and an optional `X-Request-Id`.
async fn token_request_with_id(
    http: &reqwest::Client,
    url: &str,
    params: &[(&str, &str)],
    request_id: Option<&str>,
) -> Reply {
    let mut pairs = vec![("grant_type", "client_credentials")];
    pairs.extend_from_slice(params);
    let headers: Vec<(&str, &str)> = request_id.map(|r| ("x-request-id", r)).into_iter().collect();
    send(http, Method::POST, url, &headers, Some((FORM, form(&pairs)))).await
}

/// An admin API request with a bearer token, extra headers and an optional JSON body.
async fn admin(
    http: &reqwest::Client,
    server: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Reply {
    let authorization = format!("Bearer {token}");
    let mut all = vec![("authorization", authorization.as_str())];
    all.extend_from_slice(headers);
    let body = body.map(|b| ("application/json", b.to_string()));
    send(http, method, &server.url(&format!("/admin/v1{path}")), &all, body).await
}

/// A token whose signature no longer matches.
fn tampered(token: &str) -> String {
    let (rest, signature) = token.rsplit_once('.').unwrap();
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    format!("{rest}.{flipped}{}", &signature[1..])
}

/// Every event matching `filter`, newest first, read through the domain query page by page.
fn all_events(server: &TestServer, filter: AuditFilter) -> Vec<AuditRecord> {
    let mut conn = server.conn();
    let mut events = Vec::new();
    let mut cursor = None;
    loop {
        let page = query::list(&mut conn, &Caller::cli(), &AuditFilter { cursor, limit: Some(1000), ..filter.clone() })
            .expect("audit query");
        events.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return events,
        }
    }
}

/// Every row of `audit_events` as stored, `details` as raw text.
fn raw_rows(server: &TestServer) -> Vec<AuditEventRow> {
    audit_events::table
        .select(AuditEventRow::as_select())
        .order(audit_events::id)
        .load(&mut *server.conn())
        .expect("audit rows")
}

fn events_with_request_id(server: &TestServer, request_id: &str) -> Vec<AuditRecord> {
    all_events(server, AuditFilter::default())
        .into_iter()
        .filter(|e| e.request_id.as_deref() == Some(request_id))
        .collect()
}

fn ids_of(items: &[Value]) -> Vec<i64> {
    items.iter().map(|e| e["id"].as_i64().expect("numeric id")).collect()
}

fn last_used(server: &TestServer, client: &CreatedClient) -> Option<chrono::NaiveDateTime> {
    let listed = secrets::list(&mut server.conn(), &Caller::cli(), &client.client.id).expect("secrets");
    listed.iter().find(|s| s.id == client.secret.id).expect("the client's secret").last_used_at
}

// The capturing logger: every record of this test binary, formatted, at every level.

static LOG_LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct CaptureLogger;

impl log::Log for CaptureLogger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, record: &log::Record) {
        let line = format!("{} {} {}", record.level(), record.target(), record.args());
        LOG_LINES.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(line);
    }

    fn flush(&self) {}
}

/// Installs the capturing logger once for the whole binary; call before starting the server.
fn capture_logs() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        log::set_boxed_logger(Box::new(CaptureLogger)).expect("no other logger in this test binary");
        log::set_max_level(log::LevelFilter::Trace);
    });
}

fn captured_logs() -> Vec<String> {
    LOG_LINES.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
}

/// PostgreSQL refuses NUL in text. A request carrying one must fail alone: its event is stored with the byte
/// replaced, and the valid requests that share its group-commit batch still get their tokens.
#[actix_web::test]
async fn a_request_with_a_nul_byte_fails_alone() {
    let server = TestServer::start().await;
    let created = server.seed("nul").role(&["nul.read"]).create();
    let id = created.client.id.clone();
    let secret = created.secret.secret.expose().to_string();
    let http = reqwest::Client::new();
    let token_url = server.url("/oauth2/token");
    let good_body = format!("grant_type=client_credentials&client_id={id}&client_secret={secret}");
    // A NUL in a form body is refused as malformed (400) before any lookup; one in the Basic credentials is
    // a client id like any other, unknown (401), and reaches the audit writer.
    let nul_basic = basic_auth_raw("%00:x");
    let bodies: Vec<String> = (0..300)
        .map(|i| match i % 3 {
            0 => good_body.clone(),
            1 => "grant_type=client_credentials".to_string(),
            _ => "a%00=1&a%00=2".to_string(),
        })
        .collect();
    let replies: Vec<(usize, u16)> = stream::iter(bodies.iter().enumerate())
        .map(|(i, body)| {
            let http = http.clone();
            let url = token_url.clone();
            let mut request = http.post(url).header("content-type", FORM).body(body.clone());
            if i % 3 == 1 {
                request = request.header("authorization", nul_basic.clone());
            }
            async move { (i, request.send().await.unwrap().status().as_u16()) }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    for (i, status) in replies {
        let expected = [200, 401, 400][i % 3];
        assert_eq!(status, expected, "request {i} ({})", bodies[i]);
    }
    let rows: Vec<AuditEventRow> = raw_rows(&server).into_iter().filter(|r| r.event_type == "token.request").collect();
    assert_eq!(rows.len(), 300, "every request recorded");
    assert!(rows.iter().all(|r| !r.client_id.as_deref().unwrap_or("").contains('\0')));
    assert_eq!(rows.iter().filter(|r| r.client_id.as_deref() == Some("\u{fffd}")).count(), 100);
    server.stop().await;
}
