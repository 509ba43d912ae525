//! The token path's error boundary: the database being away is `503 temporarily_unavailable` with
//! `Retry-After` (tests/database_outage.rs), and a fault of ours, such as a statement that cannot succeed, is
//! `500 server_error` without `Retry-After`, so that a bug does not look like an outage and invite retries.

mod common;

use common::*;
use diesel::connection::SimpleConnection;

fn fault(reply: &Reply) {
    reply.expect_oauth_error(500, "server_error");
    assert_eq!(reply.header("cache-control"), "no-store");
    assert!(reply.headers.get("retry-after").is_none(), "a fault is not to be retried: {}", reply.dump());
}

// Before the typed boundary, both faults answered 503 temporarily_unavailable with Retry-After: 5.
#[tokio::test]
async fn a_failing_statement_on_the_token_path_is_500_without_retry_after() {
    let server = TestServer::start().await;
    let client = server.seed("faulty").role(&["f.read"]).create();

    // The registry read fails: a table the snapshot loader reads is not there.
    server.conn().batch_execute("ALTER TABLE client_audiences RENAME TO client_audiences_gone").unwrap();
    fault(&request_token(&server, &client).await);
    server.conn().batch_execute("ALTER TABLE client_audiences_gone RENAME TO client_audiences").unwrap();
    request_token(&server, &client).await.expect_json(200);

    // The audit writer's insert fails: the table it writes is not there.
    server.conn().batch_execute("ALTER TABLE audit_events RENAME TO audit_events_gone").unwrap();
    fault(&request_token(&server, &client).await);
    server.conn().batch_execute("ALTER TABLE audit_events_gone RENAME TO audit_events").unwrap();
    request_token(&server, &client).await.expect_json(200);

    let metrics = reqwest::get(server.url("/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("partnergate_token_requests_denied_total{reason=\"server_error\"} 2"), "{metrics}");
    server.stop().await;
}
