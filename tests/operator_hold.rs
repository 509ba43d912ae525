//! Operator hold (issue 7 item 4): a client the operator disabled stays disabled whatever its partner's
//! admin does; the partner's own disabling and enabling of its clients still works; listings say who holds.

mod common;

use common::*;
use reqwest::Method;
use serde_json::Value;

async fn client_state(server: &TestServer, token: &str, id: &str) -> (Value, Value) {
    let listed = admin_request(server, Method::GET, "/clients?partner_id=acme", Some(token), None).await;
    let items = listed.expect_json(200)["items"].as_array().unwrap().clone();
    let item = items.into_iter().find(|c| c["id"] == id).expect("listed");
    (item["enabled"].clone(), item["disabled_by"].clone())
}

#[actix_web::test]
async fn a_partner_admin_cannot_lift_the_operators_hold() {
    let server = TestServer::start().await;
    let (_op, operator) = server.operator().await;
    let (_admin, partner) = server.partner_admin("acme").ceiling(&["orders.read"]).create().await;
    let target = server.client_of("acme").scopes(&["orders.read"]).create();
    let id = target.client.id.clone();

    // The partner's own disabling and enabling works, and says so.
    admin_post(&server, &partner, &format!("/clients/{id}/disable")).await.expect_json(200);
    assert_eq!(client_state(&server, &partner, &id).await, (false.into(), "partner".into()));
    admin_post(&server, &partner, &format!("/clients/{id}/enable")).await.expect_json(200);
    assert_eq!(client_state(&server, &partner, &id).await, (true.into(), Value::Null));
    server.token_for(&target, &[], None).await;

    // The operator disables: the partner admin's enable is refused, and the client stays disabled.
    let reply = admin_post(&server, &operator, &format!("/clients/{id}/disable")).await;
    assert_eq!(reply.expect_json(200)["disabled_by"], "operator");
    let refused = admin_post(&server, &partner, &format!("/clients/{id}/enable")).await;
    refused.expect_problem(403, "forbidden");
    assert!(refused.json()["message"].as_str().unwrap().contains("operator"), "{}", refused.text);
    assert_eq!(client_state(&server, &partner, &id).await, (false.into(), "operator".into()));
    let secret = target.secret.secret.expose();
    let denied = fetch_token(&server, oauth2::AuthType::BasicAuth, &id, secret, &[], None).await;
    assert!(denied.is_err(), "a held client gets no token");

    // Disabling it again as the partner does not turn the hold into the partner's.
    admin_post(&server, &partner, &format!("/clients/{id}/disable")).await.expect_json(200);
    assert_eq!(client_state(&server, &operator, &id).await, (false.into(), "operator".into()));
    admin_post(&server, &partner, &format!("/clients/{id}/enable")).await.expect_problem(403, "forbidden");

    // The operator lifts it; the partner may then manage the client again.
    admin_post(&server, &operator, &format!("/clients/{id}/enable")).await.expect_json(200);
    assert_eq!(client_state(&server, &partner, &id).await, (true.into(), Value::Null));
    admin_post(&server, &partner, &format!("/clients/{id}/disable")).await.expect_json(200);
    admin_post(&server, &operator, &format!("/clients/{id}/enable")).await.expect_json(200);

    // A suspended partner shows who holds it, and its admin cannot resume it.
    admin_post(&server, &operator, "/partners/acme/suspend").await.expect_json(200);
    let shown = admin_request(&server, Method::GET, "/partners/acme", Some(&operator), None).await;
    assert_eq!(shown.expect_json(200)["suspended_by"], "operator");
    server.stop().await;
}

/// The CLI is the operator: its disabling holds too, and it shows who disabled.
#[actix_web::test]
async fn the_cli_disables_as_the_operator() {
    let server = TestServer::start().await;
    let (_admin, partner) = server.partner_admin("acme").ceiling(&["orders.read"]).create().await;
    let target = server.client_of("acme").scopes(&["orders.read"]).create();
    let id = target.client.id.clone();
    let output = run_cli(&server, &["client", "disable", &id]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let output = run_cli(&server, &["client", "show", &id]);
    assert!(String::from_utf8_lossy(&output.stdout).contains("disabled by operator"));
    admin_post(&server, &partner, &format!("/clients/{id}/enable")).await.expect_problem(403, "forbidden");
    server.stop().await;
}
