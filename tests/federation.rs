//! Workload identity federation: a token of an identity provider the operator lets the partner trust, for a
//! subject registered on one client, authenticates that client. A local OpenID provider on a loopback port
//! (discovery, JWKS, tokens signed with a key made by the test) stands in for GitHub Actions or Kubernetes.

mod common;

use common::assertions::{jwks, last_token_reason, token_with_federated, LocalIssuer, PartnerKey};
use common::*;
use reqwest::Method;
use serde_json::json;

const SUBJECT: &str = "repo:acme/inventory-sync:ref:refs/heads/main";

async fn trust(server: &TestServer, admin: &str, partner: &str, issuers: &[&str]) {
    let body = json!({ "trusted_issuers": issuers });
    let path = format!("/partners/{partner}");
    let partner = admin_json(server, admin, Method::PATCH, &path, body).await.expect_json(200);
    assert_eq!(partner["trusted_issuers"], json!(issuers));
}

async fn refused(server: &TestServer, client_id: &str, token: &str, reason: &str) {
    let reply = token_with_federated(server, client_id, token).await;
    reply.expect_oauth_error(401, "invalid_client");
    assert_eq!(last_token_reason(server).as_deref(), Some(reason), "{}", reply.text);
}

#[tokio::test]
async fn a_trusted_issuers_token_for_the_registered_subject_authenticates_the_client() {
    let server = TestServer::start().await;
    server.seed("acme").role(&["orders.read"]).create();
    let (_, admin) = server.operator().await;
    let provider = LocalIssuer::start().await;
    trust(&server, &admin, "acme", &[&provider.issuer]).await;
    let audience = server.settings.issuer.clone();
    let body = json!({"partner_id": "acme", "name": "ci", "scopes": ["orders.read"],
        "token_endpoint_auth_methods": ["private_key_jwt"],
        "federated_credentials": [{"issuer": provider.issuer, "subject": SUBJECT, "audience": audience}]});
    let created = admin_json(&server, &admin, Method::POST, "/clients", body).await.expect_json(201);
    assert!(created.get("secret").is_none(), "no stored credential at all: {created}");
    let id = created["client"]["id"].as_str().unwrap().to_string();

    let token = provider.token(SUBJECT, &audience, false);
    let granted = token_with_federated(&server, &id, &token).await.expect_json(200);
    let claims = server.verify(granted["access_token"].as_str().unwrap(), &server.settings.default_audience).await;
    assert_eq!((claims["client_id"].as_str(), claims["partner_id"].as_str()), (Some(id.as_str()), Some("acme")));
    let audited = audit_rows(&server).into_iter().rev().find(|r| r.event_type == "token.request").unwrap();
    assert!(audited.details.unwrap_or_default().contains(SUBJECT), "the audit names the external subject");
    // Its jti makes it single-use; a token without one is accepted while it is recent.
    refused(&server, &id, &token, "assertion_replayed").await;
    let no_jti = provider.token(SUBJECT, &audience, true);
    token_with_federated(&server, &id, &no_jti).await.expect_json(200);

    // Another subject, another audience, another issuer, a key the issuer does not publish: refused.
    refused(
        &server,
        &id,
        &provider.token("repo:acme/other:ref:refs/heads/main", &audience, false),
        "federation_subject_mismatch",
    )
    .await;
    refused(
        &server,
        &id,
        &provider.token(SUBJECT, "https://someone-else.example", false),
        "assertion_audience_mismatch",
    )
    .await;
    let stranger = LocalIssuer::start().await;
    refused(&server, &id, &stranger.token(SUBJECT, &audience, false), "federation_issuer_unknown").await;
    let mut forged = json!({"iss": provider.issuer, "sub": SUBJECT, "aud": audience, "exp": common::assertions::now() + 60,
        "iat": common::assertions::now(), "jti": "forged-1"});
    let impostor = PartnerKey::es256(&provider.key.kid);
    refused(&server, &id, &impostor.sign(&forged), "assertion_signature_invalid").await;
    forged["jti"] = json!("forged-2");
    refused(&server, &id, &impostor.sign_as("not-published", &forged), "unknown_key").await;

    // The operator withdraws the partner's trust: the credential stops working at once.
    trust(&server, &admin, "acme", &[]).await;
    refused(&server, &id, &provider.token(SUBJECT, &audience, false), "federation_issuer_not_trusted").await;
    server.stop().await;
}

#[tokio::test]
async fn partner_admins_register_federation_only_within_what_the_operator_allowed() {
    let server = TestServer::start().await;
    let (_, admin) = server.operator().await;
    let (acme_admin_client, acme_admin) = server.partner_admin("acme").ceiling(&["orders.read"]).create().await;
    server.seed("globex").role(&["orders.read"]).create();
    let foreign = server.client_of("globex").scopes(&["orders.read"]).create();
    let own = server.client_of("acme").scopes(&["orders.read"]).create();
    let provider = LocalIssuer::start().await;
    let credential = json!([{"issuer": provider.issuer, "subject": SUBJECT, "audience": server.settings.issuer}]);
    let federate = json!({ "federated_credentials": credential });

    // The issuer is not trusted for acme yet: refused, whoever asks.
    let own_path = format!("/clients/{}", own.client.id);
    admin_json(&server, &acme_admin, Method::PATCH, &own_path, federate.clone()).await.expect_problem(403, "forbidden");
    // A partner admin cannot trust an issuer itself.
    let reply = admin_json(
        &server,
        &acme_admin,
        Method::PATCH,
        "/partners/acme",
        json!({"trusted_issuers": [provider.issuer]}),
    )
    .await;
    assert_eq!(reply.status, 403, "{}", reply.text);

    trust(&server, &admin, "acme", &[&provider.issuer]).await;
    let updated = admin_json(&server, &acme_admin, Method::PATCH, &own_path, federate.clone()).await.expect_json(200);
    assert_eq!(updated["federated_credentials"], credential);
    // Another partner's client: not found, as if it did not exist; nor keys.
    let foreign_path = format!("/clients/{}", foreign.client.id);
    admin_json(&server, &acme_admin, Method::PATCH, &foreign_path, federate.clone())
        .await
        .expect_problem(404, "not_found");
    let keys = json!({"token_endpoint_auth_methods": ["private_key_jwt"], "jwks": jwks(&[&PartnerKey::es256("k")])});
    admin_json(&server, &acme_admin, Method::PATCH, &foreign_path, keys).await.expect_problem(404, "not_found");
    // One (issuer, subject), one client.
    let admin_client_path = format!("/clients/{}", acme_admin_client.client.id);
    admin_json(&server, &acme_admin, Method::PATCH, &admin_client_path, federate.clone())
        .await
        .expect_problem(409, "conflict");

    let token = provider.token(SUBJECT, &server.settings.issuer, false);
    token_with_federated(&server, &own.client.id, &token).await.expect_json(200);
    server.stop().await;
}
