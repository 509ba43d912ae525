//! `GET /metrics` against the real server: counters move by exactly what the requests did, labels are route
//! patterns and reason codes (never a raw path or a client id), and every line is valid Prometheus text.

mod common;

use std::collections::HashMap;

use common::*;
use reqwest::Method;

/// Series (`name{labels}` as printed) to value, after checking every line of the text format.
fn parse_exposition(text: &str) -> HashMap<String, f64> {
    let mut series = HashMap::new();
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut parts = comment.splitn(3, ' ');
            let (kind, name, rest) = (parts.next(), parts.next(), parts.next());
            assert!(name.is_some_and(is_metric_name), "metric name in {line:?}");
            match kind {
                Some("HELP") => assert!(rest.is_some_and(|help| !help.is_empty()), "help text in {line:?}"),
                Some("TYPE") => assert!(
                    matches!(rest, Some("counter" | "gauge" | "histogram" | "summary" | "untyped")),
                    "type in {line:?}"
                ),
                _ => panic!("unknown comment {line:?}"),
            }
            continue;
        }
        assert!(!line.trim().is_empty(), "no blank lines");
        let (key, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("sample {line:?}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            other => other.parse().unwrap_or_else(|_| panic!("value in {line:?}")),
        };
        let name = key.split('{').next().unwrap();
        assert!(is_metric_name(name), "metric name in {line:?}");
        if let Some(labels) = key.strip_prefix(name).filter(|rest| !rest.is_empty()) {
            check_labels(labels, line);
        }
        assert!(series.insert(key.to_string(), value).is_none(), "series printed once: {line:?}");
    }
    series
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `{name="value",...}` with `\\`, `\"` and `\n` the only escapes.
fn check_labels(labels: &str, line: &str) {
    let inner = labels.strip_prefix('{').and_then(|l| l.strip_suffix('}')).unwrap_or_else(|| panic!("{line:?}"));
    let mut rest = inner;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").unwrap_or_else(|| panic!("label in {line:?}"));
        assert!(is_metric_name(name) && !name.contains(':'), "label name {name:?} in {line:?}");
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => assert!(matches!(chars.next(), Some((_, '\\' | '"' | 'n'))), "escape in {line:?}"),
                Some((at, '"')) => break at,
                Some(_) => {}
                None => panic!("unterminated label value in {line:?}"),
            }
        };
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

async fn scrape(url: String) -> HashMap<String, f64> {
    let response = reqwest::get(url).await.expect("scrape");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    parse_exposition(&response.text().await.unwrap())
}

fn value(series: &HashMap<String, f64>, key: &str) -> f64 {
    series.get(key).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn counters_move_by_what_the_token_requests_did() {
    let server = TestServer::start().await;
    let served = server.seed("metrics").role(&["m.read"]).create();
    let limited = server.client_of("metrics").roles(&["role-metrics"]).create();
    let (_, operator) = server.operator().await;
    // 6 a minute: a burst of 1, then one every 10 s.
    let path = format!("/clients/{}", limited.client.id);
    admin_json(&server, &operator, Method::PATCH, &path, serde_json::json!({"rate_limit_per_minute": 6}))
        .await
        .expect_json(200);

    let before = scrape(server.url("/metrics")).await;
    request_token(&server, &served).await.expect_json(200);
    // Another client's secret: well formed, so the reason is the wrong secret.
    request_token_as(&server, &served.client.id, limited.secret.secret.expose(), None)
        .await
        .expect_oauth_error(401, "invalid_client");
    request_token(&server, &limited).await.expect_json(200);
    request_token(&server, &limited).await.expect_oauth_error(429, "temporarily_unavailable");
    let after = scrape(server.url("/metrics")).await;

    let moved = |key: &str| value(&after, key) - value(&before, key);
    assert_eq!(moved("partnergate_tokens_issued_total"), 2.0);
    assert_eq!(moved(r#"partnergate_token_requests_denied_total{reason="wrong_secret"}"#), 1.0);
    assert_eq!(moved(r#"partnergate_token_requests_denied_total{reason="client_rate_limited"}"#), 1.0);
    assert_eq!(moved(r#"partnergate_rate_limit_rejections_total{limit="client_rate_limited"}"#), 1.0);
    let token_latency = |status: &str| {
        format!(
            r#"partnergate_http_request_duration_seconds_count{{method="POST",route="/oauth2/token",status="{status}"}}"#
        )
    };
    assert_eq!(moved(&token_latency("200")), 2.0);
    assert_eq!(moved(&token_latency("401")), 1.0);
    assert_eq!(moved(&token_latency("429")), 1.0);
    // Four events, each committed in some batch.
    assert!(moved("partnergate_audit_batch_size_sum") >= 4.0);
    assert!(moved("partnergate_audit_batch_size_count") >= 1.0);
    assert!(after.contains_key("partnergate_audit_queue_depth"));
    assert!(value(&after, "partnergate_db_pool_max_connections") >= 1.0);
    assert!(value(&after, "partnergate_db_pool_connections") >= value(&after, "partnergate_db_pool_idle_connections"));

    // The admin call is labelled by its route pattern: no client id in any label.
    let patch = r#"partnergate_http_request_duration_seconds_count{method="PATCH",route="/admin/v1/clients/{id}",status="200"}"#;
    assert_eq!(value(&after, patch), 1.0, "{:?}", after.keys().filter(|k| k.contains("PATCH")).collect::<Vec<_>>());
    for key in after.keys() {
        assert!(!key.contains(&limited.client.id) && !key.contains(&served.client.id), "{key}");
    }
    // A path that matches no route does not become a label.
    reqwest::get(server.url("/no/such/path/pgc_guess")).await.unwrap();
    let last = scrape(server.url("/metrics")).await;
    assert!(last.keys().all(|key| !key.contains("pgc_guess")));
    assert_eq!(
        value(&last, r#"partnergate_http_request_duration_seconds_count{method="GET",route="unmatched",status="404"}"#),
        1.0
    );
    server.stop().await;
}

/// The key age comes from the instance's key ring (loaded when the keys change), so a scrape reads no
/// database: a change written behind the instance's back shows once the instance hears of it.
#[tokio::test]
async fn the_active_signing_key_age_is_kept_in_memory_from_the_last_key_load() {
    use diesel::prelude::*;
    use partnergate::store::changes::Change;
    use partnergate::store::schema::signing_keys;
    let server = TestServer::start().await;
    let age = |series: &HashMap<String, f64>| series["partnergate_signing_key_age_seconds"];
    let fresh = age(&scrape(server.url("/metrics")).await);
    assert!((0.0..300.0).contains(&fresh), "a key generated at start is {fresh} s old");
    // As if the active key had begun to sign two days ago.
    let two_days_ago = chrono::Utc::now().naive_utc() - chrono::Duration::days(2);
    let moved = diesel::update(signing_keys::table.filter(signing_keys::state.eq("active")))
        .set((signing_keys::activated_at.eq(two_days_ago), signing_keys::published_at.eq(two_days_ago)))
        .execute(&mut *server.conn())
        .unwrap();
    assert_eq!(moved, 1, "one active key");
    let unheard = age(&scrape(server.url("/metrics")).await);
    assert!((0.0..300.0).contains(&unheard), "the scrape read the database: {unheard} s");
    // What the change feed delivers when the keys change.
    server.running().changes().apply(&[Change::Keys]);
    let aged = age(&scrape(server.url("/metrics")).await);
    assert!((172_800.0..173_100.0).contains(&aged), "two days is {aged} s");
    server.stop().await;
}

#[tokio::test]
async fn metrics_can_have_an_address_of_their_own() {
    let server = TestServer::start_with(|config| config.metrics_bind = Some("127.0.0.1:0".parse().unwrap())).await;
    let client = server.seed("apart").role(&["a.read"]).create();
    request_token(&server, &client).await.expect_json(200);

    let on_main = reqwest::get(server.url("/metrics")).await.unwrap();
    assert_eq!(on_main.status(), 404, "not on the public address");
    let addr = server.running().metrics_addr().expect("a metrics address");
    let series = scrape(format!("http://{addr}/metrics")).await;
    assert_eq!(value(&series, "partnergate_tokens_issued_total"), 1.0);
    server.stop().await;
}

/// The metric families the README's metrics table documents, with their type (`..._idle_connections` in the
/// table stands for the first name's prefix followed by that suffix).
fn documented_families() -> Vec<(String, String)> {
    let mut families = Vec::new();
    for row in include_str!("../README.md").lines().filter(|line| line.starts_with("| `partnergate_")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (names, kind) = (cells[1], cells[2].to_string());
        let names: Vec<&str> = names.split('`').skip(1).step_by(2).collect();
        let first = names[0];
        for name in &names {
            let name = match name.strip_prefix("..._") {
                Some(suffix) => format!("{}_{suffix}", first.rsplit_once('_').expect("a prefix").0),
                None => name.to_string(),
            };
            families.push((name, kind.clone()));
        }
    }
    families
}

#[tokio::test]
async fn every_documented_family_is_present_on_a_fresh_server() {
    let server = TestServer::start().await;
    // The first request this server serves.
    let text = reqwest::get(server.url("/metrics")).await.unwrap().text().await.unwrap();
    let series = parse_exposition(&text);
    let families = documented_families();
    assert!(families.len() >= 10, "the README's table: {families:?}");
    for (name, kind) in &families {
        assert!(
            text.contains(&format!("# TYPE {name} {kind}\n")),
            "{name} ({kind}) missing on a fresh server:\n{text}"
        );
    }
    // At zero for every label known in advance.
    for limit in ["client_rate_limited", "partner_rate_limited", "quota_exceeded", "auth_throttled"] {
        let rejections = format!(r#"partnergate_rate_limit_rejections_total{{limit="{limit}"}}"#);
        assert_eq!(series.get(&rejections), Some(&0.0), "{rejections}");
    }
    for reason in [
        "wrong_secret",
        "unknown_client",
        "secret_expired",
        "secret_revoked",
        "client_disabled",
        "partner_suspended",
        "no_credentials",
        "client_rate_limited",
        "quota_exceeded",
        "auth_throttled",
        "invalid_request",
        "invalid_scope",
        "invalid_target",
        "unsupported_grant_type",
        "temporarily_unavailable",
    ] {
        let denied = format!(r#"partnergate_token_requests_denied_total{{reason="{reason}"}}"#);
        assert_eq!(series.get(&denied), Some(&0.0), "{denied}");
    }
    server.stop().await;
}

/// A flood of unauthenticated `/readyz` requests shares one database probe every refresh period (250 ms):
/// the count of probes, as `/metrics` reports it, stays bounded by the flood's duration, not its size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_readiness_probes_touches_the_database_a_bounded_number_of_times() {
    let server = TestServer::start().await;
    let probes = |series: &HashMap<String, f64>| value(series, "partnergate_readiness_probes_total");
    let before = probes(&scrape(server.url("/metrics")).await);
    let started = std::time::Instant::now();
    let flood = std::time::Duration::from_millis(1500);
    let mut callers = Vec::new();
    for _ in 0..32 {
        let url = server.url("/readyz");
        callers.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut answered = 0u32;
            while started.elapsed() < flood {
                let response = http.get(&url).send().await.expect("readyz answers");
                assert_eq!(response.status(), 200);
                let body: serde_json::Value = response.json().await.unwrap();
                assert_eq!(body["status"], "ready", "{body}");
                answered += 1;
            }
            answered
        }));
    }
    let mut answered = 0;
    for caller in callers {
        answered += caller.await.expect("caller");
    }
    let elapsed = started.elapsed();
    let made = probes(&scrape(server.url("/metrics")).await) - before;
    let bound = (elapsed.as_millis() / 250) as f64 + 2.0;
    assert!(answered >= 200, "a flood: {answered} answers in {elapsed:?}");
    assert!(made >= 1.0, "the database was probed at all");
    assert!(made <= bound, "{made} probes for {answered} requests in {elapsed:?} (at most {bound})");
    server.stop().await;
}
