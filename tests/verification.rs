//! Where the server verifies its own tokens (introspection, the admin API): RFC 9068 `typ`, and a client id
//! deleted and registered again never accepting the old client's tokens. Also: a client update writes only the
//! columns it edits, so it cannot undo a concurrent change.

mod common;

use std::time::Duration;

use common::*;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use partnergate::clock::{Clock, ManualClock};
use partnergate::registry::clients::{self, CreatedClient, NewClient};
use partnergate::registry::Caller;
use reqwest::Method;
use serde_json::json;

/// `claims` signed with the server's own signing key under header `typ`: the PEM it imported at its first
/// start from its keys directory (see [`server_with_pem_key`]).
fn resign(server: &TestServer, token: &str, typ: Option<&str>) -> String {
    let kid = jsonwebtoken::decode_header(token).unwrap().kid.expect("kid");
    let pem = std::fs::read(server.keys_dir.join(format!("{kid}.pem"))).expect("the server's signing key");
    let header = Header { typ: typ.map(str::to_string), kid: Some(kid), ..Header::new(Algorithm::ES256) };
    jsonwebtoken::encode(&header, &claims_of(token), &EncodingKey::from_ec_pem(&pem).unwrap()).unwrap()
}

/// A server whose signing key was imported from a PEM file in its keys directory, which stays there.
async fn server_with_pem_key() -> TestServer {
    TestServer::start_with(|config| {
        partnergate::keys::generate(&config.keys_dir, partnergate::keys::Algorithm::ES256, true).unwrap();
    })
    .await
}

async fn admin_status(server: &TestServer, token: &str) -> u16 {
    admin_request(server, Method::GET, "/partners", Some(token), None).await.status
}

async fn introspects_active(server: &TestServer, introspector: &CreatedClient, token: &str) -> bool {
    let authorization = basic_auth(&introspector.client.id, introspector.secret.secret.expose());
    let body = form(&[("token", token)]);
    let response = post_form(server, "/oauth2/introspect", &body, &[("authorization", &authorization)]).await;
    Reply::from(response).await.expect_json(200)["active"] == true
}

#[actix_web::test]
async fn only_tokens_typed_as_access_tokens_are_accepted() {
    let server = server_with_pem_key().await;
    let (_, admin) = server.operator().await;
    let introspector =
        server.seed("typ-p").ceiling(&["authz.introspect", "typ.read"]).scopes(&["authz.introspect"]).create();
    let subject = server.client_of("typ-p").scopes(&["typ.read"]).create();
    let token = server.token_for(&subject, &[], None).await;

    for typ in ["at+jwt", "AT+JWT", "application/at+jwt", "Application/AT+JWT"] {
        assert_eq!(admin_status(&server, &resign(&server, &admin, Some(typ))).await, 200, "typ {typ}");
        assert!(introspects_active(&server, &introspector, &resign(&server, &token, Some(typ))).await, "typ {typ}");
    }
    for typ in [None, Some("JWT"), Some("jwt"), Some("at+jwt+x"), Some("")] {
        assert_eq!(admin_status(&server, &resign(&server, &admin, typ)).await, 401, "typ {typ:?}");
        assert!(!introspects_active(&server, &introspector, &resign(&server, &token, typ)).await, "typ {typ:?}");
    }
    server.stop().await;
}

fn admin_client_with_id(server: &TestServer, id: &str) -> CreatedClient {
    let input = NewClient {
        client_id: Some(id.into()),
        partner_id: Some("reuse-p".into()),
        name: "reused".into(),
        scopes: strings(&["authz.clients.read", "authz.introspect"]),
        audiences: vec![server.settings.admin_audience.clone()],
        ..Default::default()
    };
    clients::create(&mut server.conn(), &server.caller(), &input, LIMITS).expect("create the client")
}

#[actix_web::test]
async fn a_client_id_registered_again_never_accepts_the_old_clients_tokens() {
    // The server's clock stands at the start of a second; it moves to the next one after the first
    // registration (a client id registered again gets tokens only from the second after), so that the old
    // token, the deletion and the new registration share a second.
    let clock = ManualClock::at(chrono::SubsecRound::trunc_subsecs(manual_clock().now(), 0));
    let server = TestServer::start_on(&clock).await;
    server.seed("reuse-p").ceiling(&["authz.clients.read", "authz.introspect"]).create();
    let introspector = server.client_of("reuse-p").scopes(&["authz.introspect"]).create();
    let old = admin_client_with_id(&server, "pgc_reused_client_id_0001");
    clock.advance(chrono::Duration::seconds(1));
    let old_token = server.token_for(&old, &[], None).await;
    assert_eq!(admin_status(&server, &old_token).await, 200);
    clients::delete(&mut server.conn(), &server.caller(), &old.client.id).unwrap();
    let new = admin_client_with_id(&server, "pgc_reused_client_id_0001");
    assert_eq!(claims_of(&old_token)["iat"], json!(new.client.created_at.and_utc().timestamp()), "same second");

    assert_eq!(admin_status(&server, &old_token).await, 401, "the old client's token at the admin API");
    assert!(!introspects_active(&server, &introspector, &old_token).await, "the old client's token at introspection");
    clock.advance(chrono::Duration::seconds(1));
    let new_token = server.token_for(&new, &[], None).await;
    assert_eq!(admin_status(&server, &new_token).await, 200, "the new client's own token works");
    assert!(introspects_active(&server, &introspector, &new_token).await);
    server.stop().await;
}

#[actix_web::test]
async fn a_client_update_does_not_undo_a_concurrent_disable() {
    let server = TestServer::start().await;
    let (_, admin) = server.operator().await;
    let client = server.seed("race-p").scopes(&["race.read"]).create();
    let id = client.client.id.clone();

    // Another transaction disables the client and holds its row until after the update has read it.
    let mut other = server.conn();
    let begin = match &*other {
        partnergate::store::DbConnection::Sqlite(_) => "BEGIN IMMEDIATE",
        partnergate::store::DbConnection::Postgresql(_) => "BEGIN",
    };
    other.batch_execute(begin).unwrap();
    diesel::sql_query("UPDATE clients SET enabled = FALSE WHERE id = $1")
        .bind::<diesel::sql_types::Text, _>(&id)
        .execute(&mut *other)
        .unwrap();
    let patch = {
        let (server_url, admin) = (server.url(&format!("/admin/v1/clients/{id}")), admin.clone());
        tokio::spawn(async move {
            reqwest::Client::new()
                .patch(server_url)
                .bearer_auth(admin)
                .json(&json!({"description": "edited meanwhile"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    };
    // Ordering, not an assertion: let the update read the row and wait for the lock.
    tokio::time::sleep(Duration::from_millis(300)).await;
    other.batch_execute("COMMIT").unwrap();
    drop(other);
    assert_eq!(patch.await.unwrap(), 200);

    let stored = clients::get(&mut server.conn(), &Caller::cli(), &id).unwrap();
    assert_eq!(stored.description, "edited meanwhile");
    assert!(!stored.enabled, "the update wrote back the enabled flag it had read before the disable committed");
    server.stop().await;
}
