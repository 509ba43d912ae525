//! No secret or token a caller sends, wherever it puts it, reaches an audit event, an error body or a log
//! line (issue 7 item 1, ARCHITECTURE.md, Credentials): real secrets and real tokens in an admin path, a query string, a
//! form parameter's name and value, a JSON field's name and value, then a scan of every record.

mod common;

use common::*;
use reqwest::Method;

/// The parts of a credential that must not appear anywhere: the whole, a long prefix (a truncated copy is
/// still most of the secret), and a token's signature (with it, header and payload make a token again).
fn fragments(secret: &str, token: &str) -> Vec<String> {
    let signature = token.rsplit('.').next().unwrap().to_string();
    vec![secret.to_string(), secret[..24].to_string(), token.to_string(), signature]
}

fn assert_clean(what: &str, text: &str, fragments: &[String]) {
    for fragment in fragments {
        assert!(!text.contains(fragment.as_str()), "{what} holds a credential ({fragment}): {text}");
    }
}

#[actix_web::test]
async fn secrets_and_tokens_are_never_stored_echoed_or_logged() {
    let log = CapturedLog::install("debug");
    let server = TestServer::start().await;
    let victim = server.seed("acme").role(&["orders.read"]).create();
    let (_operator, admin) = server.operator().await;
    let secret = victim.secret.secret.expose().to_string();
    let token = server.token_for(&victim, &[], None).await;
    let cid = victim.client.id.clone();
    let secret_id = victim.secret.id.clone();
    let mut bodies = Vec::new();

    // Admin path: the secret where its id belongs, the token where a client id belongs.
    let reply =
        admin_request(&server, Method::DELETE, &format!("/clients/{cid}/secrets/{secret}"), Some(&admin), None).await;
    reply.expect_problem(404, "not_found");
    bodies.push(reply.dump());
    let encoded = format!("pgs_%{:02X}{}", secret.as_bytes()[4], &secret[5..]);
    let reply =
        admin_request(&server, Method::DELETE, &format!("/clients/{cid}/secrets/{encoded}"), Some(&admin), None).await;
    reply.expect_problem(404, "not_found");
    bodies.push(reply.dump());
    let reply = admin_request(&server, Method::GET, &format!("/clients/{token}"), Some(&admin), None).await;
    reply.expect_problem(404, "not_found");
    bodies.push(reply.dump());

    // Query string: as an unknown parameter's name and as a value.
    let reply = admin_request(&server, Method::GET, &format!("/clients?{secret}=1"), Some(&admin), None).await;
    reply.expect_problem(400, "invalid_input");
    bodies.push(reply.dump());
    let reply = admin_request(&server, Method::GET, &format!("/clients?enabled={token}"), Some(&admin), None).await;
    reply.expect_problem(400, "invalid_input");
    bodies.push(reply.dump());
    let reply = admin_request(
        &server,
        Method::DELETE,
        &format!("/clients/{cid}/secrets/{secret_id}?{token}=1"),
        Some(&admin),
        None,
    )
    .await;
    reply.expect_problem(400, "invalid_input");
    bodies.push(reply.dump());

    // JSON: a field name and field values.
    for body in [
        serde_json::json!({"partner_id": "acme", "name": "x", secret.as_str(): token}).to_string(),
        serde_json::json!({"partner_id": secret, "name": token}).to_string(),
        serde_json::json!({"partner_id": "acme", "name": "x", "roles": [secret], "scopes": [token]}).to_string(),
        format!("{{\"partner_id\": \"acme\", \"name\": {token}}}"),
    ] {
        let reply =
            admin_request(&server, Method::POST, "/clients", Some(&admin), Some(("application/json", body))).await;
        assert!((400..500).contains(&reply.status), "{}", reply.dump());
        bodies.push(reply.dump());
    }

    // OAuth forms: parameter names (repeated, so that the name is quoted) and values, and the token where the
    // admin API expects its bearer token.
    let basic = basic_auth(&cid, &secret);
    let prefix = &secret[..40];
    for body in [
        format!("grant_type=client_credentials&{prefix}=1&{prefix}=2"),
        format!("grant_type=client_credentials&{token}=1&{token}=2"),
        format!("grant_type=client_credentials&scope={secret}"),
        format!("grant_type=client_credentials&resource={token}"),
        format!("grant_type={token}"),
        format!("grant_type=client_credentials&client_id={secret}&client_secret={token}"),
    ] {
        let reply = Reply::from(post_form(&server, "/oauth2/token", &body, &[("authorization", &basic)]).await).await;
        assert!((400..500).contains(&reply.status), "{}", reply.dump());
        bodies.push(reply.dump());
        let reply = Reply::from(post_form(&server, "/oauth2/token", &body, &[]).await).await;
        bodies.push(reply.dump());
    }
    for path in ["/oauth2/introspect", "/oauth2/revoke"] {
        let body = format!("token={token}&token={secret}&{prefix}=x&{prefix}=y");
        let reply = Reply::from(post_form(&server, path, &body, &[("authorization", &basic)]).await).await;
        bodies.push(reply.dump());
    }
    let reply = admin_request(&server, Method::GET, "/clients", Some(&format!("{secret} {token}")), None).await;
    bodies.push(reply.dump());

    // The operator's CLI, given the secret where the secret id belongs.
    let output = run_cli(&server, &["client", "revoke-secret", &cid, &secret]);
    assert!(!output.status.success());
    bodies.push(String::from_utf8_lossy(&output.stderr).into_owned());
    bodies.push(String::from_utf8_lossy(&output.stdout).into_owned());

    let mut server = server;
    server.stop_keep_db().await;
    let parts = fragments(&secret, &token);
    for body in &bodies {
        assert_clean("a response", body, &parts);
    }
    let rows = audit_rows(&server);
    let refused = rows.iter().filter(|r| r.event_type == "admin.refused").count();
    assert!(refused >= 10, "the refused admin requests were audited: {refused}");
    assert!(rows.iter().any(|r| r.event_type == "token.request" && r.outcome == "failure"));
    for row in &rows {
        assert_clean("an audit event", &format!("{row:?}"), &parts);
    }
    let logged = log.text();
    assert!(logged.contains("partnergate listening on"), "the log was captured: {logged}");
    assert_clean("the log", &logged, &parts);
    server.stop().await;
}
