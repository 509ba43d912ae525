//! The admin API behind the console's flows (issue 23): the operator's own partner is protected from
//! suspension and deletion, partners without clients can be deleted, and clients carry an environment label
//! that the API, the CLI and listings know.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

/// The operator cannot lock every admin out: suspending or deleting its own `operator` partner, or dropping
/// `authz.admin` from its ceiling, is `409 protected` through the API and refused by the CLI; the operator's
/// token keeps working afterwards. Other partners are suspended and deleted as before.
#[actix_web::test]
async fn the_operators_own_partner_cannot_be_suspended_or_deleted() {
    let server = TestServer::start().await;
    let (_operator, token) = server.operator().await;

    let suspend = admin_request(&server, Method::POST, "/partners/operator/suspend", Some(&token), None).await;
    let problem = suspend.expect_problem(409, "protected");
    assert!(problem["message"].as_str().unwrap().contains("lock every admin out"), "{problem}");
    admin_request(&server, Method::DELETE, "/partners/operator", Some(&token), None)
        .await
        .expect_problem(409, "protected");
    let shrink = json!({"scope_ceiling": ["authz.clients.read"]});
    admin_json(&server, &token, Method::PATCH, "/partners/operator", shrink).await.expect_problem(409, "protected");

    let output = run_cli(&server, &["partner", "suspend", "operator"]);
    assert!(!output.status.success(), "the CLI refuses too");
    assert!(String::from_utf8_lossy(&output.stderr).contains("operator's own"), "{output:?}");
    let output = run_cli(&server, &["partner", "delete", "operator"]);
    assert!(!output.status.success(), "the CLI refuses deletion too");

    let partner = admin_request(&server, Method::GET, "/partners/operator", Some(&token), None).await.expect_json(200);
    assert_eq!(partner["suspended"], false, "{partner}");
    assert!(partner["scope_ceiling"].as_array().unwrap().contains(&json!("authz.admin")), "{partner}");
    // Resuming it is harmless and allowed (it is not suspended).
    admin_request(&server, Method::POST, "/partners/operator/resume", Some(&token), None).await.expect_json(200);

    // Another partner is suspended as before.
    server.seed("plain").role(&["orders.read"]).create();
    let suspended = admin_request(&server, Method::POST, "/partners/plain/suspend", Some(&token), None).await;
    assert_eq!(suspended.expect_json(200)["suspended"], true);
    server.stop().await;
}

/// A partner is deleted only once it has no clients (409 `in_use` names how many), only by the operator, and
/// the deletion is audited; a partner admin gets 403 for its own partner.
#[actix_web::test]
async fn a_partner_without_clients_is_deleted_by_the_operator_only() {
    let server = TestServer::start().await;
    let (_operator, token) = server.operator().await;
    let (_admin, partner_token) = server.partner_admin("leaving").ceiling(&["orders.read"]).create().await;
    let extra = server.client_of("leaving").scopes(&["orders.read"]).create();

    let refused = admin_request(&server, Method::DELETE, "/partners/leaving", Some(&partner_token), None).await;
    refused.expect_problem(403, "forbidden");
    let in_use = admin_request(&server, Method::DELETE, "/partners/leaving", Some(&token), None).await;
    let problem = in_use.expect_problem(409, "in_use");
    assert!(problem["message"].as_str().unwrap().contains("2 client(s)"), "{problem}");

    let clients =
        admin_request(&server, Method::GET, "/clients?partner_id=leaving", Some(&token), None).await.expect_json(200);
    for client in clients["items"].as_array().unwrap() {
        let path = format!("/clients/{}", form_encode(client["id"].as_str().unwrap()));
        admin_request(&server, Method::DELETE, &path, Some(&token), None).await.expect_json(200);
    }
    assert_eq!(clients["items"].as_array().unwrap().len(), 2, "{clients}");
    let deleted = admin_request(&server, Method::DELETE, "/partners/leaving", Some(&token), None).await;
    assert_eq!(deleted.expect_json(200), json!({"deleted": "leaving"}));
    admin_request(&server, Method::GET, "/partners/leaving", Some(&token), None).await.expect_problem(404, "not_found");
    admin_request(&server, Method::DELETE, "/partners/leaving", Some(&token), None)
        .await
        .expect_problem(404, "not_found");
    let events: Vec<_> = audit_rows(&server).into_iter().filter(|e| e.event_type == "partner.delete").collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].partner_id.as_deref(), Some("leaving"));
    // The deleted partner's client secret is gone with its client.
    let body = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", &extra.client.id),
        ("client_secret", extra.secret.secret.expose()),
    ]);
    assert_eq!(post_form(&server, "/oauth2/token", &body, &[]).await.status(), 401);

    // The CLI deletes a partner without clients, and names the one it refuses.
    partnergate(&server, &["partner", "create", "short-lived", "--name", "Short lived"]);
    assert_eq!(partnergate(&server, &["partner", "delete", "short-lived"]), json!({"deleted": "short-lived"}));
    server.stop().await;
}

fn environments(page: &Value) -> Vec<(String, Value)> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_string(), c["environment"].clone()))
        .collect()
}

/// A client's environment label: set at creation and by update (null removes it), validated, shown, and a
/// listing filter that keeps to the caller's tenancy; the CLI sets, clears and filters it too; the OpenAPI
/// document describes it.
#[actix_web::test]
async fn clients_carry_an_environment_label_that_listings_filter_on() {
    let server = TestServer::start().await;
    let (_operator, token) = server.operator().await;
    let (_admin, partner_token) = server.partner_admin("envs").ceiling(&["orders.read"]).create().await;
    server.seed("other-envs").role(&["orders.read"]).create();

    let create = |partner: &'static str, name: &'static str, environment: Value| {
        let body = json!({"partner_id": partner, "name": name, "environment": environment});
        let token = token.clone();
        let server = &server;
        async move { admin_json(server, &token, Method::POST, "/clients", body).await }
    };
    let prod = create("envs", "shop prod", json!("production")).await.expect_json(201);
    assert_eq!(prod["client"]["environment"], "production");
    create("envs", "shop staging", json!("staging")).await.expect_json(201);
    create("other-envs", "other prod", json!("production")).await.expect_json(201);
    let none = create("envs", "unlabelled", Value::Null).await.expect_json(201);
    assert_eq!(none["client"]["environment"], Value::Null);
    for bad in ["Production", "", "prod env", "-prod", "x".repeat(33).as_str(), "prod\u{202e}"] {
        let problem = create("envs", "bad", json!(bad)).await.expect_problem(400, "invalid_input");
        assert!(problem["message"].as_str().unwrap().starts_with("environment:"), "{bad:?}: {problem}");
    }

    // The operator filters across partners; the partner admin's filter stays within its own partner.
    let page = admin_request(&server, Method::GET, "/clients?environment=production", Some(&token), None)
        .await
        .expect_json(200);
    let mut names: Vec<String> = environments(&page).into_iter().map(|(n, _)| n).collect();
    names.sort();
    assert_eq!(names, ["other prod", "shop prod"]);
    let own = admin_request(&server, Method::GET, "/clients?environment=production", Some(&partner_token), None)
        .await
        .expect_json(200);
    assert_eq!(environments(&own), [("shop prod".to_string(), json!("production"))]);
    admin_request(&server, Method::GET, "/clients?environment=PROD", Some(&token), None)
        .await
        .expect_problem(400, "invalid_input");

    // A partner admin relabels its own client; null removes the label; absent leaves it.
    let path = format!("/clients/{}", prod["client"]["id"].as_str().unwrap());
    let relabelled = admin_json(&server, &partner_token, Method::PATCH, &path, json!({"environment": "staging"})).await;
    assert_eq!(relabelled.expect_json(200)["environment"], "staging");
    let renamed = admin_json(&server, &partner_token, Method::PATCH, &path, json!({"name": "shop main"})).await;
    assert_eq!(renamed.expect_json(200)["environment"], "staging", "absent: kept");
    let cleared = admin_json(&server, &partner_token, Method::PATCH, &path, json!({"environment": null})).await;
    assert_eq!(cleared.expect_json(200)["environment"], Value::Null);
    admin_json(&server, &partner_token, Method::PATCH, &path, json!({"environment": "Prod"}))
        .await
        .expect_problem(400, "invalid_input");

    // The CLI: create with a label, relabel, filter, clear.
    let created = partnergate(
        &server,
        &["client", "create", "--partner", "envs", "--name", "cli dev", "--environment", "development"],
    );
    assert_eq!(created["client"]["environment"], "development");
    let id = created["client"]["id"].as_str().unwrap().to_string();
    let listed = partnergate(&server, &["client", "list", "--environment", "development"]);
    assert_eq!(environments(&listed), [("cli dev".to_string(), json!("development"))]);
    let updated = partnergate(&server, &["client", "update", &id, "--environment", "qa"]);
    assert_eq!(updated["environment"], "qa");
    let updated = partnergate(&server, &["client", "update", &id, "--clear-environment"]);
    assert_eq!(updated["environment"], Value::Null);
    let table = run_cli(&server, &["client", "list", "--partner", "envs"]);
    assert!(String::from_utf8_lossy(&table.stdout).lines().next().unwrap().contains("ENVIRONMENT"));

    // The OpenAPI document describes the label and the filter.
    let document: Value = reqwest::get(server.url("/admin/v1/openapi.json")).await.unwrap().json().await.unwrap();
    let schemas = &document["components"]["schemas"];
    for schema in ["Client", "NewClient", "ClientUpdate"] {
        assert!(schemas[schema]["properties"].get("environment").is_some(), "{schema}: {}", schemas[schema]);
    }
    let parameters = document["paths"]["/admin/v1/clients"]["get"]["parameters"].as_array().unwrap();
    assert!(parameters.iter().any(|p| p["name"] == "environment"), "{parameters:?}");
    assert!(document["paths"]["/admin/v1/partners/{id}"].get("delete").is_some());
    server.stop().await;
}

/// The clients listing's `search` keeps clients whose name or id contains the text, ignoring case, over every
/// page; LIKE's wildcards in it are taken literally; a partner admin's search stays within its partner; the CLI
/// searches the same way.
#[actix_web::test]
async fn the_clients_listing_searches_names_and_ids_across_pages() {
    let server = TestServer::start().await;
    let (_operator, token) = server.operator().await;
    let (_admin, partner_token) = server.partner_admin("finds").ceiling(&["orders.read"]).create().await;
    server.seed("other-finds").role(&["orders.read"]).create();
    let mut ids = Vec::new();
    for (partner, name) in
        [("finds", "Nightly Sync"), ("finds", "sync 100%"), ("finds", "billing"), ("other-finds", "other SYNC")]
    {
        let body = json!({"partner_id": partner, "name": name});
        let created = admin_json(&server, &token, Method::POST, "/clients", body).await.expect_json(201);
        ids.push(created["client"]["id"].as_str().unwrap().to_string());
    }
    let names = |page: &Value| {
        let mut names: Vec<String> = environments(page).into_iter().map(|(n, _)| n).collect();
        names.sort();
        names
    };
    let search = |query: String, token: String| {
        let server = &server;
        async move { admin_request(server, Method::GET, &format!("/clients?{query}"), Some(&token), None).await }
    };

    let all = search("search=sYnC&limit=1".into(), token.clone()).await.expect_json(200);
    assert_eq!(all["items"].as_array().unwrap().len(), 1, "{all}");
    let mut found = names(&all);
    let rest = search(format!("search=sYnC&limit=10&cursor={}", all["next_cursor"].as_str().unwrap()), token.clone())
        .await
        .expect_json(200);
    found.extend(names(&rest));
    found.sort();
    assert_eq!(found, ["Nightly Sync", "other SYNC", "sync 100%"], "every page searched, case ignored");
    let literal = search("search=100%25&limit=10".into(), token.clone()).await.expect_json(200);
    assert_eq!(names(&literal), ["sync 100%"]);
    let wildcard = search("search=%25&limit=10".into(), token.clone()).await.expect_json(200);
    assert_eq!(names(&wildcard), ["sync 100%"], "% is a character, not a wildcard");
    let underscore = search("search=sync_&limit=10".into(), token.clone()).await.expect_json(200);
    assert_eq!(names(&underscore), Vec::<String>::new(), "_ is a character, not any one character");
    let by_id = search(format!("search={}", ids[2].to_uppercase()), token.clone()).await.expect_json(200);
    assert_eq!(names(&by_id), ["billing"], "ids are searched too");
    let own = search("search=sync".into(), partner_token.clone()).await.expect_json(200);
    assert_eq!(names(&own), ["Nightly Sync", "sync 100%"], "a partner admin searches its own clients");
    search(format!("search={}", "x".repeat(201)), token.clone()).await.expect_problem(400, "invalid_input");

    let listed = partnergate(&server, &["client", "list", "--partner", "finds", "--search", "NIGHTLY"]);
    assert_eq!(names(&listed), ["Nightly Sync"]);
}
