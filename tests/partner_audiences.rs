//! Partner audiences (issue 7 item 8): the operator sets an audience ceiling per partner, and the partner's
//! admin may give its clients only audiences within it (`403 audience_outside_ceiling`); shrinking the
//! ceiling is refused (`409 in_use`) while a client has a dropped audience.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

const ORDERS: &str = "https://orders.example.com";
const BILLING: &str = "https://billing.example.com";
const ELSEWHERE: &str = "https://elsewhere.example.com";

#[actix_web::test]
async fn a_partner_admin_gives_only_audiences_within_its_ceiling() {
    let server = TestServer::start().await;
    let (_op, operator) = server.operator().await;
    let (_admin, partner) = server.partner_admin("acme").ceiling(&["orders.read"]).create().await;
    let set =
        admin_json(&server, &operator, Method::PATCH, "/partners/acme", json!({"audience_ceiling": [ORDERS]})).await;
    assert_eq!(set.expect_json(200)["audience_ceiling"], json!([ORDERS]));
    let shown = admin_request(&server, Method::GET, "/partners/acme", Some(&partner), None).await;
    assert_eq!(shown.expect_json(200)["audience_ceiling"], json!([ORDERS]), "its admin sees its ceiling");

    // Outside the ceiling: any other audience, the admin audience above all.
    let admin_audience = server.settings.admin_audience.clone();
    for outside in [ELSEWHERE, admin_audience.as_str()] {
        let body = json!({"name": "sync", "scopes": ["orders.read"], "audiences": [ORDERS, outside]});
        let refused = admin_json(&server, &partner, Method::POST, "/clients", body).await;
        let problem = refused.expect_problem(403, "audience_outside_ceiling");
        assert!(problem["message"].as_str().unwrap().contains(outside), "{problem}");
    }

    // Inside: created, and the client gets tokens for it.
    let body = json!({"name": "sync", "scopes": ["orders.read"], "audiences": [ORDERS]});
    let created: Value = admin_json(&server, &partner, Method::POST, "/clients", body).await.expect_json(201);
    let cid = created["client"]["id"].as_str().unwrap().to_string();
    let secret = created["secret"]["secret"].as_str().unwrap().to_string();
    let token = fetch_token(&server, oauth2::AuthType::BasicAuth, &cid, &secret, &[], Some(ORDERS)).await.unwrap();
    assert_eq!(server.verify(&token, ORDERS).await["aud"], ORDERS);

    // Adding an outside audience later is refused as well, and leaves the client as it was.
    let path = format!("/clients/{cid}");
    let refused = admin_json(&server, &partner, Method::PATCH, &path, json!({"audiences": [ORDERS, ELSEWHERE]})).await;
    refused.expect_problem(403, "audience_outside_ceiling");
    let client = admin_request(&server, Method::GET, &path, Some(&partner), None).await.expect_json(200);
    assert_eq!(client["audiences"], json!([ORDERS]));

    // The operator gives any audience; the partner admin may keep it while editing the list.
    admin_json(&server, &operator, Method::PATCH, &path, json!({"audiences": [ORDERS, ELSEWHERE]}))
        .await
        .expect_json(200);
    admin_json(&server, &partner, Method::PATCH, &path, json!({"audiences": [ELSEWHERE]})).await.expect_json(200);
    let refused = admin_json(&server, &partner, Method::PATCH, &path, json!({"audiences": [ELSEWHERE, BILLING]})).await;
    refused.expect_problem(403, "audience_outside_ceiling");

    // Shrinking the ceiling while a client uses a dropped audience is refused; once unused, it works.
    admin_json(&server, &partner, Method::PATCH, &path, json!({"audiences": [ORDERS]})).await.expect_json(200);
    let shrink =
        admin_json(&server, &operator, Method::PATCH, "/partners/acme", json!({"audience_ceiling": [BILLING]})).await;
    let problem = shrink.expect_problem(409, "in_use");
    assert!(problem["message"].as_str().unwrap().contains(&cid), "names the client: {problem}");
    admin_json(&server, &partner, Method::PATCH, &path, json!({"audiences": []})).await.expect_json(200);
    let shrink =
        admin_json(&server, &operator, Method::PATCH, "/partners/acme", json!({"audience_ceiling": [BILLING]})).await;
    assert_eq!(shrink.expect_json(200)["audience_ceiling"], json!([BILLING]));

    // Only the operator sets a ceiling.
    let own =
        admin_json(&server, &partner, Method::PATCH, "/partners/acme", json!({"audience_ceiling": [ELSEWHERE]})).await;
    own.expect_problem(403, "forbidden");
    server.stop().await;
}

#[actix_web::test]
async fn the_cli_sets_the_audience_ceiling() {
    let server = TestServer::start().await;
    let run = |args: &[&str]| {
        let output = run_cli(&server, &[&["--json"], args].concat());
        (output.status.success(), output)
    };
    let (ok, output) = run(&["partner", "create", "globex", "--name", "Globex", "--audience", ORDERS]);
    assert!(ok, "{}", String::from_utf8_lossy(&output.stderr));
    let shown: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(shown["audience_ceiling"], json!([ORDERS]));
    let (ok, output) = run(&["partner", "update", "globex", "--audience", ORDERS, "--audience", BILLING]);
    assert!(ok, "{}", String::from_utf8_lossy(&output.stderr));
    let shown: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(shown["audience_ceiling"], json!([BILLING, ORDERS]));
    let (ok, output) = run(&["partner", "update", "globex", "--audience", "not an audience"]);
    assert!(!ok && String::from_utf8_lossy(&output.stderr).contains("audience"));
    let (ok, output) = run(&["partner", "update", "globex", "--clear-audiences"]);
    assert!(ok, "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(serde_json::from_slice::<Value>(&output.stdout).unwrap()["audience_ceiling"], json!([]));
    server.stop().await;
}
