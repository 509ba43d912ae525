//! The request log, server side, end to end: a resource server's client reports batches with a token from the
//! token endpoint; operators and partner admins read them back through the admin API and the CLI, with
//! filters, cursor paging, per-minute aggregates and partner isolation; the retention prunes old records.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{NaiveDateTime, Utc};
use common::*;
use partnergate::registry::clients::CreatedClient;
use partnergate::request_log::retention::Retention;
use partnergate::store::partitions::REQUEST_LOG;
use partnergate::store::DbConnection;
use reqwest::Method;
use serde_json::{json, Value};

const REPORT: &str = "authz.usage.report";
const AUDIT_READ: &str = "authz.audit.read";

/// A server with the operator's admin token and a resource server's reporting client (of the operator's
/// partner, which `admin bootstrap` gives `authz.usage.report`) with a token from the token endpoint.
struct Setup {
    server: TestServer,
    operator: String,
    reporter: CreatedClient,
    reporter_token: String,
}

impl Setup {
    async fn start() -> Self {
        Self::on(TestServer::start().await).await
    }

    async fn on(server: TestServer) -> Self {
        let (_, operator) = server.operator().await;
        let (reporter, reporter_token) = usage_reporter(&server).await;
        let claims = server.verify(&reporter_token, &server.settings.admin_audience).await;
        assert_eq!(claims["scope"], REPORT);
        Setup { server, operator, reporter, reporter_token }
    }

    async fn report(&self, records: &[Value]) -> Reply {
        report_requests(&self.server, &self.reporter_token, records).await
    }

    /// Reports `records` and expects every one accepted.
    async fn reported(&self, records: &[Value]) {
        let body = self.report(records).await.expect_json(202);
        assert_eq!(body, json!({"accepted": records.len()}));
    }
}

async fn get(server: &TestServer, token: &str, path_and_query: &str) -> Reply {
    admin_request(server, Method::GET, path_and_query, Some(token), None).await
}

/// Every record of a listing, following `next_cursor` with pages of `limit`.
async fn all_pages(server: &TestServer, token: &str, query: &str, limit: usize) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/requests?limit={limit}&{query}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page = get(server, token, &path).await.expect_json(200);
        let page_items = page["items"].as_array().unwrap();
        assert!(page_items.len() <= limit);
        items.extend(page_items.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return items,
        }
        assert!(items.len() < 10_000, "paging does not end");
    }
}

fn rfc3339(at: NaiveDateTime) -> String {
    at.and_utc().to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// A time `minutes` before now, on a whole second plus `millis`, so that records sort predictably.
fn minutes_ago(minutes: i64, millis: i64) -> String {
    let base = Utc::now().naive_utc() - chrono::Duration::minutes(minutes);
    let base = base.and_utc().timestamp();
    rfc3339(chrono::DateTime::from_timestamp(base, 0).unwrap().naive_utc() + chrono::Duration::milliseconds(millis))
}

fn record(time: &str, method: &str, route: &str, status: u16, latency_ms: u64, client: &str, partner: &str) -> Value {
    json!({"time": time, "method": method, "route": route, "status": status, "latency_ms": latency_ms,
           "client_id": client, "partner_id": partner, "jti": "j1Zx-_9"})
}

fn times(items: &[Value]) -> Vec<String> {
    items.iter().map(|item| item["time"].as_str().unwrap().to_string()).collect()
}

fn statuses(items: &[Value]) -> Vec<u64> {
    items.iter().map(|item| item["status"].as_u64().unwrap()).collect()
}

#[tokio::test]
async fn a_reporter_ingests_with_a_token_from_the_token_endpoint() {
    let setup = Setup::start().await;
    let (early, late) = (minutes_ago(2, 123), minutes_ago(1, 456));
    setup
        .reported(&[
            record(&early, "GET", "/orders/{id}", 200, 3, "pgc_acmeapp", "acme"),
            record(&late, "POST", "/orders", 201, 12, "pgc_acmeapp", "acme"),
        ])
        .await;
    // An empty batch is accepted too: nothing to store.
    setup.reported(&[]).await;

    let page = get(&setup.server, &setup.operator, "/requests").await.expect_json(200);
    let items = page["items"].as_array().unwrap();
    assert_eq!(page["next_cursor"], Value::Null);
    assert_eq!(
        items,
        &vec![
            json!({"time": late, "client_id": "pgc_acmeapp", "partner_id": "acme", "method": "POST",
                   "route": "/orders", "status": 201, "latency_ms": 12, "reporter": setup.reporter.client.id}),
            json!({"time": early, "client_id": "pgc_acmeapp", "partner_id": "acme", "method": "GET",
                   "route": "/orders/{id}", "status": 200, "latency_ms": 3, "reporter": setup.reporter.client.id}),
        ],
        "newest first, shaped as documented, the reporter named"
    );
    setup.server.stop().await;
}

#[tokio::test]
async fn an_invalid_record_stores_nothing_and_is_named() {
    let setup = Setup::start().await;
    let now = minutes_ago(0, 0);
    let good = record(&now, "GET", "/orders", 200, 1, "pgc_acmeapp", "acme");
    let cases = [
        (json!({"status": 700}), "record 2: status"),
        (json!({"route": "/orders?id=7"}), "record 2: route"),
        (json!({"route": "/orders/\u{1b}"}), "record 2: route"),
        (json!({"method": "G3T"}), "record 2: method"),
        (json!({"latency_ms": -4}), "record 2: latency_ms"),
        (json!({"time": "2026-13-01T00:00:00Z"}), "record 2: time"),
        (json!({"time": rfc3339(Utc::now().naive_utc() + chrono::Duration::days(1))}), "record 2: time"),
        (json!({"client_id": "has space"}), "record 2: client_id"),
        (json!({"partner_id": "Not_A_Partner"}), "record 2: partner_id"),
        (json!({"raw_path": "/orders/7"}), "record 2: record"),
    ];
    for (change, named) in cases {
        let mut bad = good.clone();
        for (field, value) in change.as_object().unwrap() {
            bad[field] = value.clone();
        }
        let reply = setup.report(&[good.clone(), good.clone(), bad]).await;
        let problem = reply.expect_problem(400, "invalid_input");
        assert!(problem["message"].as_str().unwrap().contains(named), "{change}: {problem}");
    }
    // Not a batch at all.
    for (content_type, body) in [
        ("application/json", "{\"records\": [".to_string()),
        ("application/json", json!({"records": [good.clone()], "reporter": "me"}).to_string()),
        ("application/json", json!([good.clone()]).to_string()),
        ("text/plain", json!({"records": [good.clone()]}).to_string()),
    ] {
        let reply = admin_request(
            &setup.server,
            Method::POST,
            "/requests",
            Some(&setup.reporter_token),
            Some((content_type, body.clone())),
        )
        .await;
        reply.expect_problem(400, "invalid_input");
    }
    let page = get(&setup.server, &setup.operator, "/requests").await.expect_json(200);
    assert_eq!(page["items"], json!([]), "all or nothing: the good records of refused batches are not stored");
    let summary = get(&setup.server, &setup.operator, "/requests/summary").await.expect_json(200);
    assert_eq!(summary["buckets"], json!([]), "nor counted");
    setup.server.stop().await;
}

#[tokio::test]
async fn batch_and_body_sizes_are_bounded() {
    let setup = Setup::start().await;
    let now = minutes_ago(0, 0);
    let one = record(&now, "GET", "/orders/{id}", 200, 1, "pgc_acmeapp", "acme");
    let too_many = vec![one.clone(); 1001];
    setup.report(&too_many).await.expect_problem(413, "too_large");
    // A body over 1 MiB is refused before it is parsed, even if its records are few.
    let long = format!("/{}", "a".repeat(200));
    let padded = json!({"records": [one.clone()], "padding": "x".repeat(1024 * 1024)}).to_string();
    let reply = admin_request(
        &setup.server,
        Method::POST,
        "/requests",
        Some(&setup.reporter_token),
        Some(("application/json", padded)),
    )
    .await;
    reply.expect_problem(413, "too_large");
    // The largest batch passes.
    let full: Vec<Value> =
        (0..1000).map(|i| record(&now, "GET", &long, 200 + (i % 3), u64::from(i), "pgc_acmeapp", "acme")).collect();
    setup.reported(&full).await;
    let listed = all_pages(&setup.server, &setup.operator, "", 500).await;
    assert_eq!(listed.len(), 1000);
    setup.server.stop().await;
}

#[tokio::test]
async fn a_reporter_cannot_read_and_a_reader_cannot_report() {
    let setup = Setup::start().await;
    let server = &setup.server;
    let now = minutes_ago(0, 0);
    setup.reported(&[record(&now, "GET", "/orders", 200, 1, "pgc_acmeapp", "acme")]).await;
    for path in ["/requests", "/requests/summary", "/audit", "/clients", "/partners", "/scopes", "/roles", "/keys"] {
        get(server, &setup.reporter_token, path).await.expect_problem(403, "forbidden");
    }
    let reporter_id = &setup.reporter.client.id;
    admin_request(server, Method::DELETE, &format!("/clients/{reporter_id}"), Some(&setup.reporter_token), None)
        .await
        .expect_problem(403, "forbidden");
    // A partner admin's token (no permission reports) still reads the catalog as before.
    let (_, reader) = server.partner_admin("acme").ceiling(&[AUDIT_READ]).holding(&[AUDIT_READ]).create().await;
    get(server, &reader, "/scopes").await.expect_json(200);
    let batch = [record(&now, "GET", "/orders", 500, 1, "pgc_acmeapp", "acme")];
    report_requests(server, &reader, &batch).await.expect_problem(403, "forbidden");
    // Not even the operator's admin token: a record's reporter is always a resource server's client.
    report_requests(server, &setup.operator, &batch).await.expect_problem(403, "forbidden");
    // Without a token at all.
    let reply = admin_request(
        server,
        Method::POST,
        "/requests",
        None,
        Some(("application/json", json!({"records": batch}).to_string())),
    )
    .await;
    reply.expect_problem(401, "invalid_token");
    let page = get(server, &setup.operator, "/requests").await.expect_json(200);
    assert_eq!(statuses(page["items"].as_array().unwrap()), vec![200], "only the reporter's record");
    setup.server.stop().await;
}

/// Eight records over two partners, two clients, three routes and four statuses, a minute apart, oldest first.
fn mixed_records() -> Vec<Value> {
    let plan = [
        ("GET", "/orders", 200, "pgc_acmeapp", "acme"),
        ("GET", "/orders/{id}", 404, "pgc_acmeapp", "acme"),
        ("POST", "/orders", 201, "pgc_acmeapp", "acme"),
        ("GET", "/orders/{id}", 200, "pgc_globexapp", "globex"),
        ("GET", "/orders/{id}", 500, "pgc_globexapp", "globex"),
        ("GET", "/inventory", 403, "pgc_acmeapp", "acme"),
        ("GET", "/orders", 404, "pgc_acmeapp", "acme"),
        ("GET", "/orders", 200, "pgc_globexapp", "globex"),
    ];
    plan.iter()
        .enumerate()
        .map(|(i, (method, route, status, client, partner))| {
            record(&minutes_ago(20 - i as i64, 0), method, route, *status, i as u64, client, partner)
        })
        .collect()
}

#[tokio::test]
async fn every_filter_and_the_cursor_through_the_api_and_the_cli() {
    let setup = Setup::start().await;
    let server = &setup.server;
    let records = mixed_records();
    // Reported in two batches, the newer first: the listing orders by time, not by arrival.
    setup.reported(&records[4..]).await;
    setup.reported(&records[..4]).await;
    let newest_first: Vec<Value> = records.iter().rev().cloned().collect();
    let expect = |keep: &dyn Fn(&Value) -> bool| -> Vec<String> {
        times(&newest_first.iter().filter(|r| keep(r)).cloned().collect::<Vec<_>>())
    };
    let time_of = |i: usize| records[i]["time"].as_str().unwrap().to_string();
    let strings = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let cases: Vec<(String, Vec<String>, Vec<String>)> = vec![
        ("status=404".into(), strings(&["--status", "404"]), expect(&|r| r["status"] == 404)),
        ("status=4xx".into(), strings(&["--status", "4xx"]), expect(&|r| r["status"].as_u64().unwrap() / 100 == 4)),
        ("status=5XX".into(), strings(&["--status", "5XX"]), expect(&|r| r["status"] == 500)),
        ("route=/orders".into(), strings(&["--route", "/orders"]), expect(&|r| r["route"] == "/orders")),
        (
            "route=/orders/%7Bid%7D".into(),
            strings(&["--route", "/orders/{id}"]),
            expect(&|r| r["route"] == "/orders/{id}"),
        ),
        (
            "client_id=pgc_globexapp".into(),
            strings(&["--client", "pgc_globexapp"]),
            expect(&|r| r["partner_id"] == "globex"),
        ),
        ("partner_id=acme".into(), strings(&["--partner", "acme"]), expect(&|r| r["partner_id"] == "acme")),
        (
            format!("since={}&until={}", time_of(2), time_of(5)),
            strings(&["--since", &time_of(2), "--until", &time_of(5)]),
            times(&[records[4].clone(), records[3].clone(), records[2].clone()]),
        ),
        (
            "partner_id=acme&route=/orders&status=2xx".into(),
            strings(&["--partner", "acme", "--route", "/orders", "--status", "2xx"]),
            expect(&|r| {
                r["partner_id"] == "acme" && r["route"] == "/orders" && r["status"].as_u64().unwrap() / 100 == 2
            }),
        ),
    ];
    for (query, cli_args, expected) in &cases {
        assert!(!expected.is_empty(), "{query}: a case that selects something");
        // Pages of 2 through the API: the same records, in order, none twice.
        let paged = all_pages(server, &setup.operator, &query.replace('+', "%2B"), 2).await;
        assert_eq!(&times(&paged), expected, "API {query}");
        // The CLI, a page of 2 then the rest with its cursor.
        let mut args = vec!["requests", "--limit", "2"];
        args.extend(cli_args.iter().map(String::as_str));
        let first = partnergate(server, &args);
        let mut listed = first["items"].as_array().unwrap().clone();
        if let Some(cursor) = first["next_cursor"].as_str() {
            let mut rest_args = args.clone();
            rest_args.truncate(1);
            rest_args.extend(["--limit", "500", "--cursor", cursor]);
            rest_args.extend(cli_args.iter().map(String::as_str));
            listed.extend(partnergate(server, &rest_args)["items"].as_array().unwrap().iter().cloned());
        }
        assert_eq!(&times(&listed), expected, "CLI {cli_args:?}");
    }
    // The human output names the route and the reporter.
    let output = run_cli(server, &["requests", "--status", "500"]);
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("/orders/{id}") && text.contains(&setup.reporter.client.id), "{text}");
    // Bad filters are problems, not 500s.
    for query in ["status=6xx", "status=20", "route=orders", "client_id=a%20b", "cursor=nope", "limit=0", "since=x"] {
        get(server, &setup.operator, &format!("/requests?{query}")).await.expect_problem(400, "invalid_input");
    }
    assert!(!run_cli(server, &["requests", "--status", "2x"]).status.success());
    setup.server.stop().await;
}

#[tokio::test]
async fn a_partner_admin_never_sees_another_partners_records() {
    let setup = Setup::start().await;
    let server = &setup.server;
    let records = mixed_records();
    setup.reported(&records).await;
    let (_, acme) = server.partner_admin("acme").ceiling(&[AUDIT_READ]).holding(&[AUDIT_READ]).create().await;
    let (_, globex) = server.partner_admin("globex").ceiling(&[AUDIT_READ]).holding(&[AUDIT_READ]).create().await;
    for (token, partner) in [(&acme, "acme"), (&globex, "globex")] {
        let own = all_pages(server, token, "", 3).await;
        let expected: BTreeSet<String> =
            times(&records.iter().filter(|r| r["partner_id"] == partner).cloned().collect::<Vec<_>>())
                .into_iter()
                .collect();
        assert_eq!(times(&own).into_iter().collect::<BTreeSet<_>>(), expected, "{partner}");
        assert!(own.iter().all(|r| r["partner_id"] == partner));
        // Naming the other partner (or its client) reads nothing, as in the audit trail.
        let other = if partner == "acme" { "globex" } else { "acme" };
        let named = get(server, token, &format!("/requests?partner_id={other}")).await.expect_json(200);
        assert_eq!(named["items"], json!([]));
        let client = format!("pgc_{other}app");
        let by_client = get(server, token, &format!("/requests?client_id={client}")).await.expect_json(200);
        assert_eq!(by_client["items"], json!([]));
        // The summary too.
        let summary = get(server, token, "/requests/summary").await.expect_json(200);
        let counted: i64 = summary["buckets"].as_array().unwrap().iter().map(|b| b["requests"].as_i64().unwrap()).sum();
        assert_eq!(counted as usize, expected.len(), "{partner}: {summary}");
        let summary = get(server, token, &format!("/requests/summary?partner_id={other}")).await.expect_json(200);
        assert_eq!(summary["buckets"], json!([]));
    }
    // A partner admin without authz.audit.read reads nothing at all.
    let (_, clients_only) = server.partner_admin("initech").create().await;
    get(server, &clients_only, "/requests").await.expect_problem(403, "forbidden");
    // The operator sees both partners.
    assert_eq!(all_pages(server, &setup.operator, "", 100).await.len(), records.len());
    setup.server.stop().await;
}

/// Summary buckets by (start, method, route, status class): (requests, latency sum, latency max).
type Buckets = BTreeMap<(String, String, String, String), (i64, i64, i64)>;

#[tokio::test]
async fn the_aggregates_match_the_raw_records() {
    let setup = Setup::start().await;
    let server = &setup.server;
    let routes = ["/orders", "/orders/{id}", "/inventory"];
    let statuses = [200, 201, 204, 301, 400, 404, 429, 500, 503];
    // 1500 records over 30 minutes in two batches; several per minute, route and class, across batches.
    let records: Vec<Value> = (0..1500u64)
        .map(|i| {
            let time = minutes_ago(30 - (i % 30) as i64, (i % 997) as i64);
            let (client, partner) = if i % 4 == 0 { ("pgc_globexapp", "globex") } else { ("pgc_acmeapp", "acme") };
            let method = if i % 5 == 0 { "POST" } else { "GET" };
            record(&time, method, routes[(i % 3) as usize], statuses[(i % 9) as usize], (i * 7) % 250, client, partner)
        })
        .collect();
    setup.reported(&records[..800]).await;
    setup.reported(&records[800..]).await;

    // Expected buckets from the raw records as the listing returns them.
    let raw = all_pages(server, &setup.operator, "", 500).await;
    assert_eq!(raw.len(), records.len());
    let expected_for = |interval_minutes: i64, partner: Option<&str>| {
        let mut buckets = Buckets::new();
        for r in raw.iter().filter(|r| partner.is_none_or(|p| r["partner_id"] == p)) {
            let at = partnergate::store::utc::parse(r["time"].as_str().unwrap()).unwrap().and_utc().timestamp();
            let start = at - at.rem_euclid(interval_minutes * 60);
            let start =
                partnergate::store::utc::format(&chrono::DateTime::from_timestamp(start, 0).unwrap().naive_utc());
            let class = format!("{}xx", r["status"].as_i64().unwrap() / 100);
            let key = (start, r["method"].as_str().unwrap().into(), r["route"].as_str().unwrap().into(), class);
            let entry = buckets.entry(key).or_default();
            let latency = r["latency_ms"].as_i64().unwrap();
            entry.0 += 1;
            entry.1 += latency;
            entry.2 = entry.2.max(latency);
        }
        buckets
    };
    let since = rfc3339(Utc::now().naive_utc() - chrono::Duration::hours(2));
    for (interval, partner) in [(1, None), (60, None), (1, Some("acme")), (15, Some("globex"))] {
        let mut query = format!("/requests/summary?since={since}&interval_minutes={interval}");
        if let Some(partner) = partner {
            query.push_str(&format!("&partner_id={partner}"));
        }
        let summary = get(server, &setup.operator, &query).await.expect_json(200);
        assert_eq!(summary["interval_minutes"], interval);
        let got: Buckets = summary["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                let text = |f: &str| b[f].as_str().unwrap().to_string();
                let number = |f: &str| b[f].as_i64().unwrap();
                (
                    (text("start"), text("method"), text("route"), text("status_class")),
                    (number("requests"), number("latency_sum_ms"), number("latency_max_ms")),
                )
            })
            .collect();
        assert_eq!(got, expected_for(interval, partner), "interval {interval}, partner {partner:?}");
    }
    // A class filter on the summary; a single code is refused (the aggregates count classes).
    let fours = get(server, &setup.operator, &format!("/requests/summary?since={since}&status=4xx")).await;
    let fours = fours.expect_json(200);
    let expected_fours: i64 = raw.iter().filter(|r| r["status"].as_i64().unwrap() / 100 == 4).count() as i64;
    let counted: i64 = fours["buckets"].as_array().unwrap().iter().map(|b| b["requests"].as_i64().unwrap()).sum();
    assert_eq!(counted, expected_fours);
    get(server, &setup.operator, "/requests/summary?status=404").await.expect_problem(400, "invalid_input");
    get(server, &setup.operator, "/requests/summary?interval_minutes=0").await.expect_problem(400, "invalid_input");
    let too_wide = format!("/requests/summary?since={}", rfc3339(Utc::now().naive_utc() - chrono::Duration::days(2)));
    get(server, &setup.operator, &too_wide).await.expect_problem(400, "invalid_input");
    setup.server.stop().await;
}

#[tokio::test]
async fn the_retention_prunes_old_records_and_keeps_aggregates_longer() {
    let retention = Retention { records_days: 30, aggregate_days: 400 };
    let server = TestServer::start_with(|config| config.request_log_retention = retention).await;
    let setup = Setup::on(server).await;
    let days_ago = |days: i64| minutes_ago(days * 24 * 60, 250);
    let (recent, old, ancient) = (days_ago(1), days_ago(40), days_ago(500));
    setup
        .reported(&[
            record(&recent, "GET", "/orders", 200, 1, "pgc_acmeapp", "acme"),
            record(&old, "GET", "/orders", 200, 2, "pgc_acmeapp", "acme"),
            record(&ancient, "GET", "/orders", 200, 3, "pgc_acmeapp", "acme"),
        ])
        .await;
    let summary_path = format!("/requests/summary?since={}&interval_minutes=1440", days_ago(600));
    let counted = |summary: &Value| summary["buckets"].as_array().unwrap().len();
    let before = get(&setup.server, &setup.operator, &summary_path).await.expect_json(200);
    assert_eq!(counted(&before), 3);

    // On PostgreSQL the 40-day-old record gets a day partition of its own (it sat in the default one), which the
    // retention must drop whole.
    let old_day = (Utc::now().naive_utc() - chrono::Duration::days(40)).date();
    let day_partitions = |conn: &mut DbConnection| match conn {
        DbConnection::Postgresql(pg) => Some(REQUEST_LOG.days(pg).unwrap()),
        DbConnection::Sqlite(_) => None,
    };
    if let DbConnection::Postgresql(pg) = &mut *setup.server.conn() {
        REQUEST_LOG.ensure(pg, old_day, old_day).unwrap();
    }
    if let Some(days) = day_partitions(&mut setup.server.conn()) {
        assert!(days.contains(&old_day), "{days:?}");
    }

    // A second instance runs its housekeeping as it starts.
    let second = TestServer::start_beside(&setup.server).await;
    let server = &setup.server;
    until(Duration::from_secs(10), "the retention pruned the old records", || async {
        let page = get(server, &setup.operator, "/requests").await.expect_json(200);
        page["items"].as_array().unwrap().len() == 1
    })
    .await;
    let page = get(server, &setup.operator, "/requests").await.expect_json(200);
    assert_eq!(times(page["items"].as_array().unwrap()), vec![recent.clone()]);
    let after = get(server, &setup.operator, &summary_path).await.expect_json(200);
    let latencies: Vec<i64> =
        after["buckets"].as_array().unwrap().iter().map(|b| b["latency_sum_ms"].as_i64().unwrap()).collect();
    assert_eq!(latencies, vec![2, 1], "the 40-day-old minute is kept for charts, the 500-day-old one is gone");
    if let Some(days) = day_partitions(&mut setup.server.conn()) {
        assert!(!days.contains(&old_day), "the old day's partition is dropped: {days:?}");
        assert!(days.contains(&Utc::now().naive_utc().date()), "today's partition stays: {days:?}");
    }
    second.stop().await;
    setup.server.stop().await;
}
