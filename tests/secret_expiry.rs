//! Secret hygiene against the real server on a manual clock: a secret created under a 1-day maximum age
//! expires when the clock passes it; the expiry notices are written once each although two instances run the
//! notice task; the listings (admin API and CLI) and the metric show the secrets that expire soon; a partner
//! admin sees only its own partner's and cannot set the maximum; applying the policy to existing secrets
//! changes only those without an expiry, once.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use common::*;
use oauth2::AuthType;
use partnergate::clock::{Clock, ManualClock};
use partnergate::registry::secret_expiry;
use partnergate::registry::Caller;
use reqwest::Method;
use serde_json::json;

async fn expiring_metric(server: &TestServer) -> (Option<f64>, Option<f64>) {
    (
        metric(server, r#"partnergate_client_secrets_expiring{within="7d"}"#).await,
        metric(server, r#"partnergate_client_secrets_expiring{within="30d"}"#).await,
    )
}

/// The expiry notices in the audit trail: (secret id, days), in the order written.
fn notices(server: &TestServer) -> Vec<(String, i64)> {
    audit_rows(server)
        .into_iter()
        .filter(|row| row.event_type == "secret.expiry_notice")
        .map(|row| {
            let details: serde_json::Value = serde_json::from_str(row.details.as_deref().unwrap()).unwrap();
            (details["secret_id"].as_str().unwrap().to_string(), details["days"].as_i64().unwrap())
        })
        .collect()
}

fn ids(listing: &serde_json::Value) -> Vec<String> {
    let items = listing["items"].as_array().or(listing.as_array()).expect("a list");
    let mut ids: Vec<String> = items.iter().map(|s| s["secret_id"].as_str().unwrap().to_string()).collect();
    ids.sort();
    ids
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

fn time(value: &serde_json::Value) -> NaiveDateTime {
    chrono::DateTime::parse_from_rfc3339(value.as_str().expect("a time")).unwrap().naive_utc()
}

#[tokio::test]
async fn secrets_expire_on_schedule_with_notices_listings_and_metric() {
    let clock = ManualClock::at(partnergate::store::now());
    let shared: partnergate::clock::SharedClock = Arc::new(clock.clone());
    let server = TestServer::start_with(|config| {
        config.clock = shared.clone();
        config.secret_expiry_tick = Duration::from_millis(100);
    })
    .await;
    // A second instance on the same database and clock: it runs the notice task too, without the lease.
    let beside = TestServer::start_beside(&server).await;
    // The partners and admin clients below are seeded directly, on the system's clock: the server's stands a
    // few seconds ahead of it, so that no token it issues is older than its client.
    clock.advance(partnergate::store::now() + chrono::Duration::seconds(5) - clock.now());
    let start = clock.now();
    let (operator_client, operator) = server.operator().await;
    let (acme_admin, acme_token) = server.partner_admin("acme").ceiling(&["orders.read"]).create().await;
    let (globex_admin, _) = server.partner_admin("globex").ceiling(&["orders.read"]).create().await;
    assert_eq!(acme_admin.secret.expires_at, None, "no maximum yet: no expiry");

    // The maximum is the operator's: a partner admin cannot set it, nor apply it.
    let acme_max = json!({"secret_max_age_days": 5});
    admin_json(&server, &acme_token, Method::PATCH, "/partners/acme", acme_max).await.expect_problem(403, "forbidden");
    admin_json(&server, &acme_token, Method::POST, "/secrets/apply-max-age", json!({}))
        .await
        .expect_problem(403, "forbidden");
    let set = |days: i64| json!({"secret_max_age_days": days});
    let acme = admin_json(&server, &operator, Method::PATCH, "/partners/acme", set(1)).await.expect_json(200);
    assert_eq!(acme["secret_max_age_days"], 1);
    admin_json(&server, &operator, Method::PATCH, "/partners/globex", set(10)).await.expect_json(200);
    admin_json(&server, &operator, Method::PATCH, "/partners/globex", set(-1))
        .await
        .expect_problem(400, "invalid_input");

    // New secrets get the policy's expiry at creation: client creation, and rotation (the earlier of the
    // policy's and the one asked for).
    let new_client = |partner: &str| json!({"partner_id": partner, "name": format!("{partner} sync")});
    let daily = admin_json(&server, &operator, Method::POST, "/clients", new_client("acme")).await.expect_json(201);
    let daily_id = daily["client"]["id"].as_str().unwrap().to_string();
    let daily_secret = daily["secret"]["id"].as_str().unwrap().to_string();
    let daily_key = daily["secret"]["secret"].as_str().unwrap().to_string();
    assert_eq!(time(&daily["secret"]["expires_at"]), start + chrono::Duration::days(1));
    let path = format!("/clients/{daily_id}/secrets");
    let hour =
        admin_json(&server, &operator, Method::POST, &path, json!({"expires_in_secs": 3600})).await.expect_json(201);
    assert_eq!(time(&hour["expires_at"]), start + chrono::Duration::hours(1), "asked for less than the maximum");
    let year = admin_json(&server, &operator, Method::POST, &path, json!({"expires_in_secs": 365 * 86_400}))
        .await
        .expect_json(201);
    assert_eq!(time(&year["expires_at"]), start + chrono::Duration::days(1), "capped by the maximum");
    let acme_secrets = sorted(vec![
        daily_secret.clone(),
        hour["id"].as_str().unwrap().to_string(),
        year["id"].as_str().unwrap().to_string(),
    ]);
    let weekly = admin_json(&server, &operator, Method::POST, "/clients", new_client("globex")).await.expect_json(201);
    let weekly_id = weekly["client"]["id"].as_str().unwrap().to_string();
    let weekly_secret = weekly["secret"]["id"].as_str().unwrap().to_string();
    let weekly_key = weekly["secret"]["secret"].as_str().unwrap().to_string();
    assert_eq!(time(&weekly["secret"]["expires_at"]), start + chrono::Duration::days(10));

    // Every secret listing shows the expiry and the age.
    let listed = admin_request(&server, Method::GET, &path, Some(&operator), None).await.expect_json(200);
    let first = listed["items"].as_array().unwrap().iter().find(|s| s["id"] == daily_secret.as_str()).unwrap();
    assert_eq!((first["age_days"].as_i64(), first["expires_in_days"].as_i64()), (Some(0), Some(1)));
    assert_eq!(time(&first["expires_at"]), start + chrono::Duration::days(1));
    let shown = partnergate(&server, &["client", "show", &daily_id]);
    let shown = shown["secrets"].as_array().unwrap().iter().find(|s| s["id"] == daily_secret.as_str()).unwrap();
    assert_eq!(shown["expires_at"], daily["secret"]["expires_at"]);
    assert_eq!(shown["age_days"], 0);

    // The expiring listing: the operator sees all, or one partner's; a partner admin only its own.
    let expiring = |token: String, query: &'static str| {
        let server = &server;
        async move { admin_request(server, Method::GET, &format!("/secrets/expiring{query}"), Some(&token), None).await }
    };
    let all_soon = expiring(operator.clone(), "?within_days=2").await.expect_json(200);
    assert_eq!(ids(&all_soon), acme_secrets, "within 2 days: acme's, not globex's 10-day secret");
    let all_month = expiring(operator.clone(), "?within_days=30").await.expect_json(200);
    let mut everything = acme_secrets.clone();
    everything.push(weekly_secret.clone());
    assert_eq!(ids(&all_month), sorted(everything));
    let globex_only = expiring(operator.clone(), "?within_days=30&partner_id=globex").await.expect_json(200);
    assert_eq!(ids(&globex_only), vec![weekly_secret.clone()]);
    let own = expiring(acme_token.clone(), "?within_days=30").await.expect_json(200);
    assert_eq!(ids(&own), acme_secrets, "a partner admin sees its own partner's only");
    expiring(acme_token.clone(), "?within_days=30&partner_id=globex").await.expect_problem(404, "not_found");
    expiring(operator.clone(), "?within_days=0").await.expect_problem(400, "invalid_input");
    let cli = partnergate(&server, &["client", "expiring-secrets", "--within-days", "2"]);
    assert_eq!(ids(&cli), acme_secrets, "the CLI lists the same");

    // The metric, refreshed by the task: three secrets within 7 days, four within 30.
    until(Duration::from_secs(10), "the metric counts the expiring secrets", || async {
        expiring_metric(&server).await == (Some(3.0), Some(4.0))
    })
    .await;

    // Notices: the tightest threshold each secret is within, once, whichever instance holds the lease.
    let expected: Vec<(String, i64)> =
        acme_secrets.iter().map(|id| (id.clone(), 1)).chain([(weekly_secret.clone(), 30)]).collect();
    until(Duration::from_secs(10), "the notices are written", || async { notices(&server).len() >= 4 }).await;
    // A real wait: the two instances' tasks tick on real time; a few more ticks must write nothing more.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut written = notices(&server);
    written.sort();
    let mut wanted = expected.clone();
    wanted.sort();
    assert_eq!(written, wanted, "one notice per secret, from two instances ticking every 100 ms");
    let pass = Caller::system("test").with_clock(shared.clone());
    assert_eq!(secret_expiry::write_notices(&mut server.conn(), &pass).unwrap(), 0, "a pass run again writes none");

    // Four days later: acme's secrets have expired and are refused at the token endpoint; globex's has six
    // days left, which is its 7-day notice.
    clock.advance(chrono::Duration::days(4));
    let refused = fetch_token(&server, AuthType::BasicAuth, &daily_id, &daily_key, &[], None).await;
    assert!(refused.is_err(), "an expired secret gets no token");
    let refused = fetch_token(&beside, AuthType::BasicAuth, &daily_id, &daily_key, &[], None).await;
    assert!(refused.is_err(), "on either instance");
    fetch_token(&server, AuthType::BasicAuth, &weekly_id, &weekly_key, &[], None).await.expect("still valid");
    let reasons: Vec<Option<String>> = audit_rows(&server)
        .into_iter()
        .filter(|row| row.event_type == "token.request" && row.client_id.as_deref() == Some(daily_id.as_str()))
        .map(|row| row.reason)
        .collect();
    assert_eq!(reasons, vec![Some("secret_expired".to_string()); 2], "audited with the real reason");
    until(Duration::from_secs(10), "the 7-day notice is written", || async { notices(&server).len() >= 5 }).await;
    // A real wait, as above: more ticks, no more notices.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let written = notices(&server);
    assert_eq!(written.len(), 5, "{written:?}");
    assert_eq!(written[4], (weekly_secret.clone(), 7));
    until(Duration::from_secs(10), "the metric follows the clock", || async {
        expiring_metric(&beside).await == (Some(1.0), Some(1.0))
    })
    .await;
    let operator = server.token_for(&operator_client, &[], None).await;
    let listed = admin_request(&server, Method::GET, &path, Some(&operator), None).await.expect_json(200);
    let first = listed["items"].as_array().unwrap().iter().find(|s| s["id"] == daily_secret.as_str()).unwrap();
    assert_eq!(first["active"], false);
    assert_eq!((first["age_days"].as_i64(), first["expires_in_days"].as_i64()), (Some(4), Some(-3)));

    // Applying the policy to existing secrets: only active ones without an expiry, of partners with a
    // maximum (the two partner admins' secrets; not the operator's, whose partner has none), at least 30
    // days ahead. Again: nothing changes.
    let applied =
        admin_json(&server, &operator, Method::POST, "/secrets/apply-max-age", json!({})).await.expect_json(200);
    assert_eq!(applied["changed"], 2, "{applied}");
    let changed: Vec<String> =
        applied["secret_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    assert_eq!(sorted(changed), sorted(vec![acme_admin.secret.id.clone(), globex_admin.secret.id.clone()]));
    let admin_secrets = format!("/clients/{}/secrets", globex_admin.client.id);
    let listed = admin_request(&server, Method::GET, &admin_secrets, Some(&operator), None).await.expect_json(200);
    assert_eq!(time(&listed["items"][0]["expires_at"]), clock.now() + chrono::Duration::days(30));
    let weekly_path = format!("/clients/{weekly_id}/secrets");
    let listed = admin_request(&server, Method::GET, &weekly_path, Some(&operator), None).await.expect_json(200);
    assert_eq!(time(&listed["items"][0]["expires_at"]), start + chrono::Duration::days(10), "its expiry stays");
    let again = partnergate(&server, &["client", "apply-secret-max-age"]);
    assert_eq!(again["changed"], 0, "idempotent: {again}");
    let audited = audit_rows(&server).into_iter().filter(|row| row.event_type == "secret.apply_max_age").count();
    assert_eq!(audited, 2, "each application is audited");

    beside.stop().await;
    server.stop().await;
}
