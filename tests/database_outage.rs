//! The database goes away under load and comes back (PostgreSQL, through a loopback TCP proxy the test
//! controls): connections refused, then connections black-holed. During the cut the token endpoint answers
//! `503 temporarily_unavailable` with `Retry-After` within 2 s, `readyz` says not ready, and no token leaves
//! without its audit record; when the database is back, service resumes by itself.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::proxy::{Proxy, BLACK_HOLE, PASS, REFUSE};
use common::*;

/// What the load saw: per response, when it was sent, its latency, status and `Retry-After`.
#[derive(Clone, Debug)]
struct Seen {
    sent: Instant,
    latency: Duration,
    status: u16,
    retry_after: Option<String>,
    jti: Option<String>,
}

async fn readyz(server: &TestServer) -> (u16, Duration) {
    let started = Instant::now();
    let status = reqwest::get(server.url("/readyz")).await.unwrap().status().as_u16();
    (status, started.elapsed())
}

/// Cuts the database in `mode` under load, checks what the endpoints answer, restores it, waits for recovery.
async fn cut_and_restore(server: &TestServer, proxy: &Arc<Proxy>, mode: u8, seen: &Arc<Mutex<Vec<Seen>>>) {
    let label = if mode == REFUSE { "refused" } else { "black-holed" };
    proxy.set(mode).await;
    let cut_at = Instant::now();
    // Requests sent from 2 s after the cut (the pool's connections have noticed by then) must all be 503s.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (status, latency) = readyz(server).await;
    assert_eq!(status, 503, "readyz while the database is {label}");
    assert!(latency < Duration::from_secs(2), "readyz answered in {latency:?}");
    {
        let seen = seen.lock().unwrap();
        let during: Vec<&Seen> = seen
            .iter()
            .filter(|s| s.sent >= cut_at + Duration::from_secs(2) && s.sent + s.latency < Instant::now())
            .collect();
        let since_cut: Vec<(u128, u128, u16)> = seen
            .iter()
            .filter(|s| s.sent >= cut_at - Duration::from_millis(200))
            .map(|s| ((s.sent - cut_at.min(s.sent)).as_millis(), s.latency.as_millis(), s.status))
            .collect();
        assert!(during.len() >= 4, "the load kept going while {label}: {} responses; {since_cut:?}", during.len());
        for response in &during {
            assert_eq!(response.status, 503, "while {label}: {response:?}");
            assert!(response.retry_after.is_some(), "503 with Retry-After: {response:?}");
        }
        let slowest = seen.iter().filter(|s| s.sent >= cut_at).map(|s| s.latency).max().unwrap_or_default();
        assert!(
            slowest <= Duration::from_millis(2500),
            "every request answered within 2 s (+ scheduling): {slowest:?}"
        );
    }
    proxy.set(PASS).await;
    let restored_at = Instant::now();
    until(Duration::from_secs(20), "tokens again after the database is back", || async {
        let seen = seen.lock().unwrap();
        seen.iter().rev().take(4).filter(|s| s.sent > restored_at).filter(|s| s.status == 200).count() == 4
    })
    .await;
    // Readiness is answered from a result refreshed every 250 ms, by a probe that may have started (and waits
    // up to 1.5 s) while the database was still away.
    until(Duration::from_secs(3), "ready again after the database is back", || async { readyz(server).await.0 == 200 })
        .await;
}

/// The test PostgreSQL server's address.
fn postgres_upstream() -> SocketAddr {
    let upstream_url = std::env::var("PARTNERGATE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_string());
    let upstream_url = reqwest::Url::parse(&upstream_url).unwrap();
    format!("{}:{}", upstream_url.host_str().unwrap(), upstream_url.port().unwrap_or(5432)).parse().unwrap()
}

/// A server whose database (the test's own) is reached through `proxy`.
async fn server_behind(proxy: &Proxy) -> TestServer {
    TestServer::start_with(|config| {
        let mut proxied = reqwest::Url::parse(&config.database_url).unwrap();
        proxied.set_port(Some(proxy.addr.port())).unwrap();
        config.database_url = proxied.to_string();
        config.pool.connect_timeout = Duration::from_secs(2);
    })
    .await
}

/// `/readyz` answers from a result refreshed at most every 250 ms (so that a flood of probes does not reach
/// the database), yet it still follows the database: 503 within that bound plus one probe's wait (1.5 s)
/// once the database is gone, 200 again soon after it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "cuts a PostgreSQL connection: PARTNERGATE_TEST_BACKEND=postgres cargo test -- --include-ignored (as .ci/run does)"]
async fn readiness_follows_the_database_within_the_refresh_bound() {
    assert!(on_postgres(), "this test needs PARTNERGATE_TEST_BACKEND=postgres");
    let proxy = Proxy::start(postgres_upstream()).await;
    let server = server_behind(&proxy).await;
    assert_eq!(readyz(&server).await.0, 200);
    // Every answer within 2 s, while probes keep coming (as from a load balancer, and more often).
    let follow = |expected: u16, limit: Duration| {
        let server = &server;
        async move {
            let started = Instant::now();
            loop {
                let (status, latency) = readyz(server).await;
                assert!(latency < Duration::from_secs(2), "readyz answered in {latency:?}");
                if status == expected {
                    return started.elapsed();
                }
                assert!(started.elapsed() < limit, "readyz not {expected} within {limit:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    for mode in [REFUSE, BLACK_HOLE] {
        proxy.set(mode).await;
        // 250 ms of cached answer, then one probe that waits at most 1.5 s, plus scheduling.
        let gone = follow(503, Duration::from_millis(2250)).await;
        proxy.set(PASS).await;
        let back = follow(200, Duration::from_secs(5)).await;
        println!("mode {mode}: 503 after {gone:?}, 200 again after {back:?}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "cuts a PostgreSQL connection: PARTNERGATE_TEST_BACKEND=postgres cargo test -- --include-ignored (as .ci/run does)"]
async fn the_token_endpoint_answers_503_during_an_outage_and_recovers_by_itself() {
    assert!(on_postgres(), "the outage test cuts a PostgreSQL connection: set PARTNERGATE_TEST_BACKEND=postgres");
    let proxy = Proxy::start(postgres_upstream()).await;
    let server = server_behind(&proxy).await;
    let client = server.seed("outage").role(&["o.read"]).create();
    let authorization = basic_auth(&client.client.id, client.secret.secret.expose());

    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (url, authorization, seen, running) =
            (server.url("/oauth2/token"), authorization.clone(), seen.clone(), running.clone());
        load.push(tokio::spawn(async move {
            let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
            while running.load(Ordering::SeqCst) {
                let sent = Instant::now();
                let response = http
                    .post(&url)
                    .header("authorization", &authorization)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body("grant_type=client_credentials")
                    .send()
                    .await
                    .expect("the server answers even when its database does not");
                let status = response.status().as_u16();
                let retry_after =
                    response.headers().get("retry-after").map(|v| v.to_str().unwrap_or_default().to_string());
                let body: serde_json::Value = response.json().await.expect("a JSON body");
                if status != 200 {
                    assert_eq!(body["error"], "temporarily_unavailable", "{status}: {body}");
                }
                let jti = body["access_token"].as_str().map(jti_of);
                seen.lock().unwrap().push(Seen { sent, latency: sent.elapsed(), status, retry_after, jti });
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    until(Duration::from_secs(10), "tokens before the cut", || async {
        seen.lock().unwrap().iter().filter(|s| s.status == 200).count() >= 20
    })
    .await;

    cut_and_restore(&server, &proxy, REFUSE, &seen).await;
    cut_and_restore(&server, &proxy, BLACK_HOLE, &seen).await;

    running.store(false, Ordering::SeqCst);
    for task in load {
        task.await.expect("the load ran to the end");
    }
    // No token left without its audit record: every token handed out has its success event.
    let recorded: std::collections::HashSet<String> = audit_rows(&server)
        .into_iter()
        .filter(|row| row.event_type == "token.request" && row.outcome == "success")
        .filter_map(|row| row.jti)
        .collect();
    let issued: Vec<String> = seen.lock().unwrap().iter().filter_map(|s| s.jti.clone()).collect();
    assert!(issued.len() >= 30, "tokens before, between and after the cuts: {}", issued.len());
    let unrecorded: Vec<&String> = issued.iter().filter(|jti| !recorded.contains(*jti)).collect();
    assert!(unrecorded.is_empty(), "tokens without an audit record: {unrecorded:?}");
    server.stop().await;
}
