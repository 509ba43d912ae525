//! Slow clients (issue 7 item 3): a request whose body never completes, or trickles, is answered and its
//! connection closed within the body read timeout, at the OAuth endpoints and the admin API alike; the
//! number of connections a worker serves is bounded.

mod common;

use std::time::Duration;

use common::*;

/// The server's body read timeout in these tests, and how long a raw client waits at most.
const BODY_TIMEOUT: Duration = Duration::from_secs(1);
const BOUND: Duration = Duration::from_secs(8);

async fn start() -> TestServer {
    TestServer::start_with(|config| config.body_read_timeout = BODY_TIMEOUT).await
}

async fn exchange(server: &TestServer, head: String, trickle: &'static [u8]) -> RawExchange {
    let addr = server.base_url.trim_start_matches("http://").to_string();
    tokio::task::spawn_blocking(move || slow_request(&addr, &head, trickle, Duration::from_millis(150), BOUND))
        .await
        .unwrap()
}

fn head(method_path: &str, content_type: &str, length: usize, extra: &str, body_start: &str) -> String {
    format!(
        "{method_path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: {content_type}\r\ncontent-length: {length}\r\n\
         {extra}\r\n{body_start}"
    )
}

/// Answered with `status` after the timeout but well within the bound, and the connection closed.
fn assert_cut(what: &str, seen: &RawExchange, status: &str) {
    let answered = seen.answered_after.unwrap_or_else(|| panic!("{what}: no answer within {BOUND:?}"));
    assert!(answered >= BODY_TIMEOUT - Duration::from_millis(100), "{what}: answered before the timeout");
    assert!(answered < BODY_TIMEOUT + Duration::from_secs(3), "{what}: answered only after {answered:?}");
    assert!(seen.response.starts_with(&format!("HTTP/1.1 {status}")), "{what}: {}", seen.response);
    assert!(seen.response.contains("not received in time"), "{what}: {}", seen.response);
    let closed = seen.closed_after.unwrap_or_else(|| panic!("{what}: connection still open after {BOUND:?}"));
    assert!(closed < BODY_TIMEOUT + Duration::from_secs(3), "{what}: closed only after {closed:?}");
}

#[actix_web::test]
async fn a_body_that_never_completes_is_cut_at_the_oauth_endpoints() {
    let server = start().await;
    for path in ["/oauth2/token", "/oauth2/introspect", "/oauth2/revoke"] {
        let head = head(&format!("POST {path}"), "application/x-www-form-urlencoded", 400, "", "grant_type=");
        let seen = exchange(&server, head, b"").await;
        assert_cut(path, &seen, "400");
        assert!(seen.response.contains("invalid_request"), "{}", seen.response);
    }
    server.stop().await;
}

#[actix_web::test]
async fn a_trickling_body_is_cut_too() {
    let server = start().await;
    let trickle: &'static [u8] = &[b'x'; 200];
    let head = head("POST /oauth2/token", "application/x-www-form-urlencoded", 220, "", "grant_type=");
    let seen = exchange(&server, head, trickle).await;
    assert_cut("trickling form", &seen, "400");
    server.stop().await;
}

#[actix_web::test]
async fn a_stalled_admin_json_body_is_cut_and_prompt_bodies_still_work() {
    let server = start().await;
    let (_operator, token) = server.operator().await;
    let auth = format!("authorization: Bearer {token}\r\n");
    let head = head("POST /admin/v1/scopes", "application/json", 300, &auth, "{\"name\": ");
    let seen = exchange(&server, head, b"").await;
    assert_cut("admin JSON", &seen, "400");
    assert!(seen.response.contains("invalid_input"), "{}", seen.response);

    let body = serde_json::json!({"name": "orders.read", "description": "read orders"}).to_string();
    let reply =
        admin_request(&server, reqwest::Method::POST, "/scopes", Some(&token), Some(("application/json", body))).await;
    assert_eq!(reply.status, 201, "{}", reply.dump());
    server.stop().await;
}

#[actix_web::test]
async fn connections_beyond_the_limit_wait_to_be_accepted() {
    let server = TestServer::start_with(|config| {
        config.workers = Some(1);
        config.max_connections = 2;
    })
    .await;
    let addr = server.base_url.trim_start_matches("http://").to_string();
    let held: Vec<std::net::TcpStream> = (0..2).map(|_| std::net::TcpStream::connect(&addr).unwrap()).collect();
    // Each held connection is accepted before the next is tried (accepting is asynchronous).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let client = reqwest::Client::builder().timeout(Duration::from_millis(700)).build().unwrap();
    let third = client.get(server.url("/healthz")).send().await;
    assert!(third.is_err(), "a third connection is not served while two are held: {third:?}");
    drop(held);
    let mut served = false;
    for _ in 0..40 {
        if client.get(server.url("/healthz")).send().await.is_ok_and(|r| r.status() == 200) {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "served once the held connections are gone");
    server.stop().await;
}
