//! Partner, scope and role listings are paginated by cursor like clients (issue 7 item 9): `?limit=&cursor=`,
//! `{"items", "next_cursor"}`, at the admin API and the CLI.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

/// Every page of `path` at `limit` items, in order; checks each page's size and the last one's null cursor.
async fn walk(server: &TestServer, token: &str, path: &str, key: &str, limit: usize) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let query = match &cursor {
            Some(c) => format!("{path}?limit={limit}&cursor={}", form_encode(c)),
            None => format!("{path}?limit={limit}"),
        };
        let page = admin_request(server, Method::GET, &query, Some(token), None).await.expect_json(200);
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= limit, "{page}");
        seen.extend(items.iter().map(|i| i[key].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(next) => {
                assert_eq!(items.len(), limit, "only a full page has a next one: {page}");
                cursor = Some(next.to_string());
            }
            None => return seen,
        }
    }
    panic!("{path}: no last page");
}

#[actix_web::test]
async fn partners_scopes_and_roles_come_a_page_at_a_time() {
    let server = TestServer::start().await;
    let (_op, token) = server.operator().await;
    for i in 0..7 {
        let body = json!({"id": format!("partner-{i}"), "name": format!("P{i}")}).to_string();
        admin_request(&server, Method::POST, "/partners", Some(&token), Some(("application/json", body)))
            .await
            .expect_json(201);
        let body = json!({"name": format!("feed.r{i}")}).to_string();
        admin_request(&server, Method::POST, "/scopes", Some(&token), Some(("application/json", body)))
            .await
            .expect_json(201);
        let body = json!({"name": format!("role-{i}"), "scopes": [format!("feed.r{i}")]}).to_string();
        admin_request(&server, Method::POST, "/roles", Some(&token), Some(("application/json", body)))
            .await
            .expect_json(201);
    }
    for (path, key) in [("/partners", "id"), ("/scopes", "name"), ("/roles", "name")] {
        let whole = admin_request(&server, Method::GET, &format!("{path}?limit=500"), Some(&token), None)
            .await
            .expect_json(200);
        assert_eq!(whole["next_cursor"], Value::Null);
        let all: Vec<String> =
            whole["items"].as_array().unwrap().iter().map(|i| i[key].as_str().unwrap().to_string()).collect();
        assert!(all.len() >= 7, "{path}: {all:?}");
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(all, sorted, "{path} is ordered by {key}");
        for limit in [1, 3, 7] {
            assert_eq!(walk(&server, &token, path, key, limit).await, all, "{path} in pages of {limit}");
        }
        for bad in ["limit=0", "limit=501", "limit=x", "offset=3"] {
            let reply = admin_request(&server, Method::GET, &format!("{path}?{bad}"), Some(&token), None).await;
            reply.expect_problem(400, "invalid_input");
        }
    }
    let roles =
        admin_request(&server, Method::GET, "/roles?limit=2&cursor=role-3", Some(&token), None).await.expect_json(200);
    assert_eq!(roles["items"][0]["name"], "role-4");
    assert_eq!(roles["items"][0]["scopes"], json!(["feed.r4"]), "each role with its own scopes");

    // A partner admin's listing holds its own partner only, paginated the same way.
    let (_admin, partner) = server.partner_admin("acme").create().await;
    assert_eq!(walk(&server, &partner, "/partners", "id", 1).await, ["acme"]);

    // The CLI pages the same way.
    let first = run_command(&server.cli(), &["--json", "partner", "list", "--limit", "2"]).json();
    assert_eq!(first["items"].as_array().unwrap().len(), 2, "{first}");
    let next = first["next_cursor"].as_str().unwrap();
    let second = run_command(&server.cli(), &["--json", "partner", "list", "--limit", "2", "--cursor", next]).json();
    assert!(second["items"][0]["id"].as_str().unwrap() > next, "{second}");
    let text = run_command(&server.cli(), &["scope", "list", "--limit", "1"]);
    assert!(text.ok().contains("(more: --cursor "), "{}", text.stdout);
    let roles = run_command(&server.cli(), &["--json", "role", "list", "--cursor", "role-5"]).json();
    assert_eq!(roles["items"].as_array().unwrap().len(), 1, "{roles}");
    server.stop().await;
}
