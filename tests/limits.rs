//! Limits at the token endpoint, against the real server: rate limits per client and per partner with the
//! real `Retry-After` and recovery, the daily partner quota (enforced and log-only, shared by two instances on
//! one database), and the failed-authentication throttle, where an attacker's failures never lock out the
//! holder of the secret.

mod common;

use common::*;
use reqwest::Method;

/// The client's successful token requests in the audit trail: one per token handed out.
fn granted_records(server: &TestServer, client_id: &str) -> usize {
    audit_rows(server)
        .into_iter()
        .filter(|row| row.event_type == "token.request" && row.outcome == "success")
        .filter(|row| row.client_id.as_deref() == Some(client_id))
        .count()
}

fn audit_reasons(server: &TestServer, client_id: &str) -> Vec<String> {
    audit_rows(server)
        .into_iter()
        .filter(|row| row.event_type == "token.request" && row.client_id.as_deref() == Some(client_id))
        .filter_map(|row| row.reason)
        .collect()
}

#[tokio::test]
async fn a_client_over_its_rate_gets_429_with_the_real_wait_and_then_is_served() {
    let clock = manual_clock();
    let server = TestServer::start_on(&clock).await;
    let client = server.seed("rate").role(&["rate.read"]).create();
    let (_, operator) = server.operator().await;
    let path = format!("/clients/{}", client.client.id);
    // 60 a minute: a burst of 10, then one a second.
    admin_json(&server, &operator, Method::PATCH, &path, serde_json::json!({"rate_limit_per_minute": 60}))
        .await
        .expect_json(200);

    for _ in 0..10 {
        request_token(&server, &client).await.expect_json(200);
    }
    let refused = request_token(&server, &client).await;
    let wait = limited(&refused);
    assert_eq!(wait, 1, "one token a second: {}", refused.dump());
    assert!(refused.json()["error_description"].as_str().unwrap().contains("rate limit"));

    // Waiting what Retry-After said is enough, and needed: the server's clock moves by it, in two steps.
    clock.advance(chrono::Duration::seconds(wait as i64) - chrono::Duration::milliseconds(1));
    limited(&request_token(&server, &client).await);
    clock.advance(chrono::Duration::milliseconds(1));
    request_token(&server, &client).await.expect_json(200);
    assert!(audit_reasons(&server, &client.client.id).iter().any(|r| r == "client_rate_limited"));

    // `null` restores the server's default, which is no limit in this test server.
    admin_json(&server, &operator, Method::PATCH, &path, serde_json::json!({"rate_limit_per_minute": null}))
        .await
        .expect_json(200);
    for _ in 0..30 {
        request_token(&server, &client).await.expect_json(200);
    }
    let bad = admin_json(&server, &operator, Method::PATCH, &path, serde_json::json!({"rate_limit_per_minute": 0}));
    bad.await.expect_problem(400, "invalid_input");
}

#[tokio::test]
async fn a_partner_limit_is_shared_by_its_clients_and_the_server_default_applies_to_the_rest() {
    let server = TestServer::start_with(|config| config.client_rate_limit_per_minute = 6).await;
    let first = server.seed("shared").role(&["s.read"]).create();
    let second = server.client_of("shared").roles(&["role-shared"]).create();
    // The server default: 6 a minute is a burst of 1 and one every 10 s.
    request_token(&server, &first).await.expect_json(200);
    let wait = limited(&request_token(&server, &first).await);
    assert!((9..=10).contains(&wait), "one every 10 s: {wait}");

    // Through the CLI, as an operator would: the partner's limit (12 a minute: a burst of 2) counts both
    // clients together, and a client's own limit lifts the server default.
    partnergate(&server, &["partner", "update", "shared", "--rate-limit-per-minute", "12"]);
    partnergate(&server, &["client", "update", &second.client.id, "--rate-limit-per-minute", "600"]);
    until(PROPAGATION_BOUND, "the CLI's limits reach the server", || async {
        request_token(&server, &second).await.status == 200
    })
    .await;
    let mut served = 1;
    let refusal = loop {
        let reply = request_token(&server, &second).await;
        if reply.status != 200 {
            break reply;
        }
        served += 1;
        assert!(served <= 2, "the partner's burst is 2");
    };
    let wait = limited(&refusal);
    assert!((4..=5).contains(&wait), "one every 5 s: {}", refusal.dump());
    assert!(audit_reasons(&server, &second.client.id).iter().any(|r| r == "partner_rate_limited"));
    let shown = partnergate(&server, &["partner", "update", "shared", "--no-rate-limit"]);
    assert_eq!(shown["rate_limit_per_minute"], serde_json::Value::Null);
}

/// Seconds from now to the next UTC midnight.
fn until_midnight() -> i64 {
    let now = chrono::Utc::now().naive_utc();
    let midnight = now.date().succ_opt().unwrap().and_hms_opt(0, 0, 0).unwrap();
    (midnight - now).num_seconds()
}

#[tokio::test]
async fn a_daily_quota_refuses_with_the_reset_time_and_log_only_mode_counts_on() {
    let server = TestServer::start().await;
    let client = server.seed("quota").role(&["q.read"]).create();
    let (_, operator) = server.operator().await;
    admin_json(&server, &operator, Method::PATCH, "/partners/quota", serde_json::json!({"token_quota_per_day": 3}))
        .await
        .expect_json(200);
    for _ in 0..3 {
        request_token(&server, &client).await.expect_json(200);
    }
    for _ in 0..2 {
        let refused = request_token(&server, &client).await;
        let wait = limited(&refused) as i64;
        assert!((wait - until_midnight()).abs() <= 2, "resets at UTC midnight: {wait} s");
        assert!(refused.json()["error_description"].as_str().unwrap().contains("quota"));
    }
    let usage = admin_request(&server, Method::GET, "/partners/quota/usage", Some(&operator), None).await;
    let usage = usage.expect_json(200);
    assert_eq!((usage["tokens"].as_i64(), usage["token_quota_per_day"].as_i64()), (Some(3), Some(3)), "{usage}");
    assert_eq!(usage["day"], chrono::Utc::now().format("%Y-%m-%d").to_string());
    let reasons = audit_reasons(&server, &client.client.id);
    assert_eq!(reasons.iter().filter(|r| *r == "quota_exceeded").count(), 2, "{reasons:?}");

    // Log-only: tokens are issued and counted past the quota, and their audit events say so.
    let shown = partnergate(&server, &["partner", "update", "quota", "--quota-log-only", "true"]);
    assert_eq!(shown["quota_log_only"], true);
    until(PROPAGATION_BOUND, "log-only mode reaches the server", || async {
        request_token(&server, &client).await.status == 200
    })
    .await;
    request_token(&server, &client).await.expect_json(200);
    let quota = partnergate(&server, &["partner", "quota", "quota"]);
    assert_eq!(quota["tokens"], 5, "{quota}");
    assert_eq!(quota["quota_log_only"], true);
    let over: Vec<_> = audit_rows(&server)
        .into_iter()
        .filter(|row| row.event_type == "token.request" && row.outcome == "success")
        .filter(|row| row.client_id.as_deref() == Some(client.client.id.as_str()))
        .filter_map(|row| row.details)
        .collect();
    assert_eq!(over.len(), 2, "{over:?}");
    assert!(over.iter().all(|d| d.contains("over_quota") && d.contains("log_only")), "{over:?}");

    // A partner admin reads its own usage and no other partner's.
    let (_, partner_admin) = server.partner_admin("other").create().await;
    admin_request(&server, Method::GET, "/partners/other/usage", Some(&partner_admin), None).await.expect_json(200);
    admin_request(&server, Method::GET, "/partners/quota/usage", Some(&partner_admin), None)
        .await
        .expect_problem(404, "not_found");
}

#[tokio::test]
async fn a_quota_holds_across_two_instances_on_one_database() {
    let first = TestServer::start().await;
    let second = TestServer::start_beside(&first).await;
    let client = first.seed("pooled").role(&["p.read"]).create();
    partnergate(&first, &["partner", "update", "pooled", "--token-quota-per-day", "20"]);
    until(PROPAGATION_BOUND, "both instances know the quota", || async {
        let a = first.running().read_model().client(&client.client.id).await.unwrap();
        let b = second.running().read_model().client(&client.client.id).await.unwrap();
        [a, b].iter().all(|s| s.as_ref().is_some_and(|s| s.partner_token_quota_per_day == Some(20)))
    })
    .await;

    // 30 concurrent requests to each instance; the partner may get 20 tokens in all.
    let mut requests = Vec::new();
    for server in [&first, &second] {
        for _ in 0..30 {
            requests.push(request_token(server, &client));
        }
    }
    let replies = futures_util::future::join_all(requests).await;
    let granted = replies.iter().filter(|r| r.status == 200).count();
    for refused in replies.iter().filter(|r| r.status != 200) {
        limited(refused);
    }
    assert_eq!(granted, 20, "exactly the quota across both instances");
    let usage = partnergate(&first, &["partner", "quota", "pooled"]);
    assert_eq!(usage["tokens"], 20);
    let successes = granted_records(&first, &client.client.id);
    assert_eq!(successes, 20, "one success record per token handed out");
}

/// A partner without a quota has nothing for the count to decide: on PostgreSQL most of its batches are
/// written in one statement (events and day count together). The count must still be exact across two
/// instances writing at once, and every token must have its record.
#[tokio::test]
async fn without_a_quota_the_day_count_is_exact_across_two_instances() {
    let first = TestServer::start().await;
    let second = TestServer::start_beside(&first).await;
    let client = first.seed("uncapped").role(&["u.read"]).create();
    let mut requests = Vec::new();
    for server in [&first, &second] {
        for _ in 0..40 {
            requests.push(request_token(server, &client));
        }
    }
    let replies = futures_util::future::join_all(requests).await;
    assert!(replies.iter().all(|r| r.status == 200), "no quota, no refusal");
    let usage = partnergate(&first, &["partner", "quota", "uncapped"]);
    assert_eq!(usage["tokens"], 80, "{usage}");
    let successes = granted_records(&first, &client.client.id);
    assert_eq!(successes, 80, "one success record per token handed out");
}

#[tokio::test]
async fn an_attackers_failures_never_lock_out_the_holder_of_the_secret() {
    let server = throttled_server(5, 10).await;
    let victim = server.seed("victim").role(&["v.read"]).create();
    let id = victim.client.id.clone();
    let holder = Some("203.0.113.10");
    let wrong = partnergate::credentials::ClientSecret::generate();

    // One address guessing: five failures, then refused for a minute, whatever it sends.
    for _ in 0..5 {
        request_token_as(&server, &id, wrong.expose(), Some("198.51.100.1"))
            .await
            .expect_oauth_error(401, "invalid_client");
    }
    let blocked = request_token_as(&server, &id, wrong.expose(), Some("198.51.100.1")).await;
    let wait = limited(&blocked);
    assert!((55..=60).contains(&wait), "blocked for the rest of a minute: {wait}");
    limited(&request_token_as(&server, "pgc_someoneelse", wrong.expose(), Some("198.51.100.1")).await);
    request_token_as(&server, &id, secret_of(&victim), holder).await.expect_json(200);

    // Many addresses guessing one client id: it is under attack, and every address that failed is refused
    // for it, while the holder, from an address that never failed, is served throughout.
    for n in 1..=20 {
        let attacker = format!("192.0.2.{n}");
        let reply = request_token_as(&server, &id, wrong.expose(), Some(&attacker)).await;
        assert!(matches!(reply.status, 401 | 429), "{}", reply.dump());
        request_token_as(&server, &id, secret_of(&victim), holder).await.expect_json(200);
    }
    for n in 1..=20 {
        let attacker = format!("192.0.2.{n}");
        limited(&request_token_as(&server, &id, wrong.expose(), Some(&attacker)).await);
    }
    // A fresh address gets one guess, no more.
    request_token_as(&server, &id, wrong.expose(), Some("192.0.2.200")).await.expect_oauth_error(401, "invalid_client");
    limited(&request_token_as(&server, &id, wrong.expose(), Some("192.0.2.200")).await);
    for _ in 0..5 {
        request_token_as(&server, &id, secret_of(&victim), holder).await.expect_json(200);
    }
    // The first refusal of each address for the client id is audited at once.
    let refused_at_once = audit_reasons(&server, &id).iter().filter(|r| *r == "auth_throttled").count();
    assert!(refused_at_once >= 22, "{refused_at_once} throttled attempts audited at once");
    let mut server = server;
    server.stop_keep_db().await;
    assert!(throttled_refusals(&server, &id) >= 22, "throttled attempts are audited, counted per minute");
}

/// Throttled refusals for `client_id` as the audit trail counts them: the first of each address, client id
/// and minute as an event of its own, the rest of that minute as one event with their number in
/// `details.refusals`.
fn throttled_refusals(server: &TestServer, client_id: &str) -> u64 {
    audit_rows(server)
        .into_iter()
        .filter(|row| row.client_id.as_deref() == Some(client_id) && row.reason.as_deref() == Some("auth_throttled"))
        .map(|row| match row.details.as_deref() {
            None => 1,
            Some(details) => {
                let details: serde_json::Value = serde_json::from_str(details).unwrap();
                details["refusals"].as_u64().expect("a count of refusals")
            }
        })
        .sum()
}

/// A server that believes `X-Forwarded-For` from the test (which plays a load balancer on loopback).
async fn throttled_server(address_failures_per_minute: u32, client_failures_per_minute: u32) -> TestServer {
    TestServer::start_with(|config| {
        config.throttle =
            partnergate::limits::ThrottleSettings { address_failures_per_minute, client_failures_per_minute };
        config.trusted_proxies =
            partnergate::http::client_address::TrustedProxies::parse(&["127.0.0.1".into()]).unwrap();
    })
    .await
}

// Issue 17 item 1: before the fix, an address was suspect for every client id once it had failed for any,
// so the holder behind a shared address was refused (429) while its client id was under attack.
#[tokio::test]
async fn the_holder_behind_an_address_that_failed_is_served_while_its_client_id_is_under_attack() {
    let server = throttled_server(100, 10).await;
    let victim = server.seed("victim").role(&["v.read"]).create();
    let colleague = server.client_of("victim").scopes(&["v.read"]).create();
    let id = victim.client.id.clone();
    let shared = Some("203.0.113.10");
    let wrong = partnergate::credentials::ClientSecret::generate();

    // A colleague behind the holder's NAT mistypes its own secret; the holder itself fails once (a secret
    // rotated a moment ago on another instance) and then succeeds.
    request_token_as(&server, &colleague.client.id, wrong.expose(), shared)
        .await
        .expect_oauth_error(401, "invalid_client");
    request_token_as(&server, &id, wrong.expose(), shared).await.expect_oauth_error(401, "invalid_client");
    request_token_as(&server, &id, secret_of(&victim), shared).await.expect_json(200);
    // Three addresses guess the holder's secret: its client id is under attack.
    for n in 0..12 {
        let attacker = format!("198.51.100.{}", n % 3 + 1);
        let reply = request_token_as(&server, &id, wrong.expose(), Some(&attacker)).await;
        assert!(matches!(reply.status, 401 | 429), "{}", reply.dump());
    }
    limited(&request_token_as(&server, &id, wrong.expose(), Some("198.51.100.1")).await);
    for _ in 0..10 {
        request_token_as(&server, &id, secret_of(&victim), shared).await.expect_json(200);
    }
    // An attacker behind the same address fails for the holder's client id: the address is suspect for it
    // again, its wrong guesses are refused, and the holder, who presents the right secret, is still served.
    request_token_as(&server, &id, wrong.expose(), shared).await;
    limited(&request_token_as(&server, &id, wrong.expose(), shared).await);
    for _ in 0..10 {
        request_token_as(&server, &id, secret_of(&victim), shared).await.expect_json(200);
    }
}

// Issue 17 item 11: before the fix, concurrent failures all passed the throttle before the first of them
// failed, so 100 concurrent guesses from one address made up to 100 lookups against a budget of 30.
#[tokio::test]
async fn concurrent_failures_from_one_address_cannot_overshoot_its_budget() {
    let server = throttled_server(30, 0).await;
    let wrong = partnergate::credentials::ClientSecret::generate();
    let replies =
        futures_util::future::join_all(
            (0..100).map(|n| {
                let (server, wrong) = (&server, &wrong);
                async move {
                    request_token_as(server, &format!("pgc_madeup{n}"), wrong.expose(), Some("198.51.100.7")).await
                }
            }),
        )
        .await;
    let looked_up = replies.iter().filter(|reply| reply.status == 401).count();
    assert!(replies.iter().all(|reply| matches!(reply.status, 401 | 429)));
    assert!(looked_up <= 30, "{looked_up} lookups against a budget of 30");
    let failures = audit_rows(&server).iter().filter(|row| row.reason.as_deref() == Some("unknown_client")).count();
    assert_eq!(failures, looked_up);
}

// Issue 17 item 3: before the fix, every refusal of a blocked address was an audit event of its own; now the
// first of each minute is, and the rest of the minute are one event with their number.
#[tokio::test]
async fn a_blocked_address_is_audited_once_a_minute_with_the_count_and_every_refusal_is_in_the_metrics() {
    let mut server = throttled_server(2, 0).await;
    let client = server.seed("flooded").role(&["f.read"]).create();
    let id = client.client.id.clone();
    let wrong = partnergate::credentials::ClientSecret::generate();
    let attacker = Some("198.51.100.9");
    for _ in 0..2 {
        request_token_as(&server, &id, wrong.expose(), attacker).await.expect_oauth_error(401, "invalid_client");
    }
    let started = chrono::Utc::now();
    for _ in 0..300 {
        limited(&request_token_as(&server, &id, wrong.expose(), attacker).await);
    }
    let minutes = (chrono::Utc::now().timestamp() / 60 - started.timestamp() / 60 + 1) as usize;
    let metrics = reqwest::get(server.url("/metrics")).await.unwrap().text().await.unwrap();
    let denied = metrics
        .lines()
        .find(|line| line.starts_with("partnergate_token_requests_denied_total{reason=\"auth_throttled\"}"))
        .unwrap_or_else(|| panic!("no auth_throttled count in {metrics}"));
    assert!(denied.ends_with(" 300"), "{denied}");
    server.stop_keep_db().await;
    let rows: Vec<_> =
        audit_rows(&server).into_iter().filter(|row| row.reason.as_deref() == Some("auth_throttled")).collect();
    assert!((2..=2 * minutes).contains(&rows.len()), "{} events for 300 refusals in {minutes} minute(s)", rows.len());
    assert_eq!(rows[0].source_ip.as_deref(), Some("198.51.100.9"));
    assert_eq!(throttled_refusals(&server, &id), 300);
}

#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_is_ignored() {
    let server = TestServer::start_with(|config| {
        config.throttle =
            partnergate::limits::ThrottleSettings { address_failures_per_minute: 3, client_failures_per_minute: 0 };
    })
    .await;
    let client = server.seed("spoof").role(&["x.read"]).create();
    let wrong = partnergate::credentials::ClientSecret::generate();
    // A new made-up address on each try does not buy new guesses: the peer is loopback every time.
    for n in 1..=3 {
        let claimed = format!("198.51.100.{n}");
        request_token_as(&server, &client.client.id, wrong.expose(), Some(&claimed))
            .await
            .expect_oauth_error(401, "invalid_client");
    }
    limited(&request_token_as(&server, &client.client.id, wrong.expose(), Some("198.51.100.99")).await);
    let sources: Vec<_> = audit_rows(&server).into_iter().filter_map(|row| row.source_ip).collect();
    assert!(sources.iter().all(|ip| ip == "127.0.0.1"), "{sources:?}");
}
