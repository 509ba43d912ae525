//! Graceful shutdown of the real binary: on SIGTERM or SIGINT, with token requests in flight, it stops
//! accepting connections, answers the requests it has, exits 0, and every token it handed out has its audit
//! event in the database.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;

/// Token requests in a loop on their own connection pool until `stop`, returning the `jti`s they were given.
async fn load(url: String, authorization: String, stop: Arc<AtomicBool>) -> Vec<String> {
    // Dropped when the loop ends, so that its idle keep-alive connections close and do not hold shutdown.
    let http = reqwest::Client::new();
    let mut jtis = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let sent = http
            .post(&url)
            .header("authorization", &authorization)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await;
        // Refused connections after the listener closed are expected; an answer must be a token.
        let Ok(response) = sent else { break };
        let body = token_success(response).await;
        jtis.push(jti_of(body["access_token"].as_str().unwrap()));
    }
    jtis
}

async fn shutdown_under_load(signal: &str) {
    let db = TestDatabase::new();
    let pool = db.pool();
    let client = Seed::partner("shutdown")
        .role(&["orders.read"])
        .create_on(&mut partnergate::store::Tx::new(pool.get().unwrap()));
    let dir = tempfile::tempdir().unwrap();
    let mut command = partnergate_binary();
    command
        .env("PARTNERGATE_DATABASE_URL", &db.url)
        .env("PARTNERGATE_KEYS_DIR", dir.path().join("keys"))
        .env("PARTNERGATE_WORKERS", "2")
        // Six loops of one client outrun the default per-client rate limit; this test is about shutdown.
        .env("PARTNERGATE_CLIENT_RATE_LIMIT_PER_MINUTE", "0")
        .env("RUST_LOG", "info");
    let mut server = ServeProcess::start(&command, dir.path()).await;
    let authorization = basic_auth(&client.client.id, client.secret.secret.expose());

    // A request whose body is half sent when the signal comes: it is in flight and must still be answered.
    let body = "grant_type=client_credentials&scope=orders.read";
    let head = format!(
        "POST /oauth2/token HTTP/1.1\r\nHost: {}\r\nAuthorization: {authorization}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        server.addr(),
        body.len(),
        &body[..10]
    );
    let rest = body.as_bytes()[10..].to_vec();
    let addr = server.addr();
    // One byte every 50 ms: the body completes about 2 s after the head, well within the 5 s body deadline.
    let slow = tokio::task::spawn_blocking(move || {
        slow_request(&addr, &head, &rest, Duration::from_millis(50), Duration::from_secs(20))
    });

    let stop = Arc::new(AtomicBool::new(false));
    let loaders: Vec<_> =
        (0..6).map(|_| tokio::spawn(load(server.url("/oauth2/token"), authorization.clone(), stop.clone()))).collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    server.signal(signal);

    // The listener closes at once: new connections are refused while the slow request is still running.
    let addr = server.addr();
    until(Duration::from_secs(3), "new connections refused after the signal", || {
        let addr = addr.clone();
        async move { tokio::net::TcpStream::connect(addr).await.is_err() }
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    let mut answered: Vec<String> = Vec::new();
    for loader in loaders {
        answered.extend(loader.await.unwrap());
    }
    assert!(answered.len() > 10, "the load got tokens before the signal: {}", answered.len());

    let slow = slow.await.unwrap();
    assert!(slow.response.starts_with("HTTP/1.1 200"), "the request in flight is answered: {}", slow.response);
    let (_, slow_body) = slow.response.split_once("\r\n\r\n").expect("a response body");
    let slow_token: serde_json::Value = serde_json::from_str(slow_body).expect("JSON token response");
    answered.push(jti_of(slow_token["access_token"].as_str().unwrap()));

    let status = tokio::task::spawn_blocking(move || {
        let status = server.wait_exit(Duration::from_secs(30));
        (status, server.log_text())
    });
    let (status, stderr) = status.await.unwrap();
    assert_eq!(status.code(), Some(0), "exit status {status}; stderr:\n{stderr}");
    assert!(stderr.contains(&format!("SIG{signal} received")), "{stderr}");

    let audited: HashSet<String> = audit_rows_in(&pool)
        .into_iter()
        .filter(|row| row.event_type == "token.request" && row.outcome == "success")
        .filter_map(|row| row.jti)
        .collect();
    let missing: Vec<&String> = answered.iter().filter(|jti| !audited.contains(*jti)).collect();
    assert!(missing.is_empty(), "{} of {} tokens have no audit event: {missing:?}", missing.len(), answered.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_requests_in_flight_flushes_the_audit_trail_and_exits_0() {
    shutdown_under_load("TERM").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_is_as_graceful_as_sigterm() {
    shutdown_under_load("INT").await;
}
