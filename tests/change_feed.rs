//! The change feed: registry changes made through one instance, or by `partnergate` commands in another
//! process, reach every instance's registry cache within the documented second; a lost listener connection
//! on PostgreSQL is replaced and changes keep arriving.

mod common;

use std::time::Duration;

use common::*;
use diesel::prelude::*;
use partnergate::registry::clients::CreatedClient;
use reqwest::Method;

/// A client of `partner` holding `feed.read`, and a token it was issued.
struct Subject {
    client: CreatedClient,
    token: String,
}

async fn subject(server: &TestServer, partner: &str) -> Subject {
    let client = server.client_of(partner).scopes(&["feed.read"]).create();
    let token = server.token_for(&client, &[], None).await;
    Subject { client, token }
}

async fn gets_a_token(server: &TestServer, client: &CreatedClient) -> bool {
    fetch_token(server, oauth2::AuthType::BasicAuth, &client.client.id, secret_of(client), &[], None).await.is_ok()
}

/// Whether `introspector` finds `token` active on `server`.
async fn active(server: &TestServer, introspector: &CreatedClient, token: &str) -> bool {
    let body = form(&[("token", token)]);
    let authorization = basic_auth(&introspector.client.id, secret_of(introspector));
    let reply =
        Reply::from(post_form(server, "/oauth2/introspect", &body, &[("authorization", &authorization)]).await).await;
    reply.expect_json(200)["active"] == true
}

/// Four clients on two partners, each holding a token, with every instance's cache warm for them.
struct Scene {
    disabled: Subject,
    secret_revoked: Subject,
    bulk_revoked: Subject,
    suspended: Subject,
    introspector: CreatedClient,
}

async fn scene(a: &TestServer, instances: &[&TestServer], tag: &str) -> Scene {
    let (p, q) = (format!("{tag}-p"), format!("{tag}-q"));
    a.seed(&p).ceiling(&["feed.read", "authz.introspect"]).create();
    a.seed(&q).ceiling(&["feed.read"]).create();
    let introspector = a.client_of(&p).scopes(&["authz.introspect"]).create();
    let scene = Scene {
        disabled: subject(a, &p).await,
        secret_revoked: subject(a, &p).await,
        bulk_revoked: subject(a, &p).await,
        suspended: subject(a, &q).await,
        introspector,
    };
    for server in instances {
        for subject in [&scene.disabled, &scene.secret_revoked, &scene.bulk_revoked, &scene.suspended] {
            assert!(gets_a_token(server, &subject.client).await, "warming the cache");
            assert!(active(server, &scene.introspector, &subject.token).await, "warming the cache");
        }
    }
    scene
}

/// Waits until `server` refuses what each change took away, and returns the slowest wait.
async fn refused_everywhere(server: &TestServer, scene: &Scene) -> Duration {
    let bound = PROPAGATION_BOUND;
    let waits = [
        until(bound, "disabled client", || async { !gets_a_token(server, &scene.disabled.client).await }).await,
        until(bound, "revoked secret", || async { !gets_a_token(server, &scene.secret_revoked.client).await }).await,
        until(bound, "bulk revocation", || async {
            !active(server, &scene.introspector, &scene.bulk_revoked.token).await
        })
        .await,
        until(bound, "suspended partner", || async { !gets_a_token(server, &scene.suspended.client).await }).await,
    ];
    waits.into_iter().max().unwrap()
}

#[actix_web::test]
async fn changes_made_through_one_instance_reach_the_other_within_a_second() {
    let a = TestServer::start().await;
    let b = TestServer::start_beside(&a).await;
    let (_, admin) = a.operator().await;
    let scene = scene(&a, &[&a, &b], "api").await;

    let call = |method: Method, path: String| {
        let admin = admin.clone();
        let a = &a;
        async move { admin_request(a, method, &path, Some(&admin), None).await.expect_json(200) }
    };
    call(Method::POST, format!("/clients/{}/disable", scene.disabled.client.client.id)).await;
    let (id, secret_id) = (&scene.secret_revoked.client.client.id, &scene.secret_revoked.client.secret.id);
    call(Method::DELETE, format!("/clients/{id}/secrets/{secret_id}")).await;
    call(Method::POST, format!("/clients/{}/revoke-tokens", scene.bulk_revoked.client.client.id)).await;
    call(Method::POST, format!("/partners/{}/suspend", scene.suspended.client.client.partner_id)).await;

    // The instance that made the changes knows at once.
    assert!(!gets_a_token(&a, &scene.disabled.client).await);
    assert!(!gets_a_token(&a, &scene.secret_revoked.client).await);
    assert!(!active(&a, &scene.introspector, &scene.bulk_revoked.token).await);
    assert!(!gets_a_token(&a, &scene.suspended.client).await);
    let slowest = refused_everywhere(&b, &scene).await;
    println!("slowest propagation to the other instance: {slowest:?}");

    b.stop().await;
    a.stop().await;
}

#[actix_web::test]
async fn changes_made_by_cli_commands_reach_every_instance_within_a_second() {
    let a = TestServer::start().await;
    let b = TestServer::start_beside(&a).await;
    let scene = scene(&a, &[&a, &b], "cli").await;

    partnergate(&a, &["client", "disable", &scene.disabled.client.client.id]);
    let (id, secret_id) = (&scene.secret_revoked.client.client.id, &scene.secret_revoked.client.secret.id);
    partnergate(&a, &["client", "revoke-secret", id, secret_id]);
    partnergate(&a, &["client", "revoke-tokens", &scene.bulk_revoked.client.client.id]);
    partnergate(&a, &["partner", "suspend", &scene.suspended.client.client.partner_id]);

    for server in [&a, &b] {
        let slowest = refused_everywhere(server, &scene).await;
        println!("slowest propagation of a CLI change: {slowest:?}");
    }
    b.stop().await;
    a.stop().await;
}

/// The listener backends of this server's database.
fn listener_pids(server: &TestServer) -> Vec<i32> {
    #[derive(QueryableByName)]
    struct Pid {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }
    let query = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1";
    let rows: Vec<Pid> = diesel::sql_query(query)
        .bind::<diesel::sql_types::Text, _>(partnergate::readmodel::listener::APPLICATION_NAME)
        .load(&mut *server.conn())
        .expect("pg_stat_activity");
    rows.into_iter().map(|row| row.pid).collect()
}

#[actix_web::test]
#[ignore = "the listener connection exists on PostgreSQL only: PARTNERGATE_TEST_BACKEND=postgres cargo test -- --include-ignored (as .ci/run does)"]
async fn after_losing_its_listener_connection_an_instance_still_hears_of_changes() {
    assert!(on_postgres(), "the listener connection exists on PostgreSQL only: set PARTNERGATE_TEST_BACKEND=postgres");
    let server = TestServer::start().await;
    let scene = scene(&server, &[&server], "lost").await;
    let before = listener_pids(&server);
    assert_eq!(before.len(), 1, "one listener connection: {before:?}");
    diesel::sql_query("SELECT pg_terminate_backend($1)")
        .bind::<diesel::sql_types::Integer, _>(before[0])
        .execute(&mut *server.conn())
        .expect("terminate the listener's backend");
    let replaced = until(Duration::from_secs(5), "a new listener connection", || async {
        let now = listener_pids(&server);
        now.len() == 1 && now != before
    })
    .await;
    println!("listener replaced after {replaced:?}");
    // Warm again after the reconnect emptied the cache, then change from another process.
    assert!(gets_a_token(&server, &scene.disabled.client).await);
    assert!(gets_a_token(&server, &scene.suspended.client).await);
    partnergate(&server, &["client", "disable", &scene.disabled.client.client.id]);
    partnergate(&server, &["partner", "suspend", &scene.suspended.client.client.partner_id]);
    until(PROPAGATION_BOUND, "disabled after the reconnect", || async {
        !gets_a_token(&server, &scene.disabled.client).await
    })
    .await;
    until(PROPAGATION_BOUND, "suspended after the reconnect", || async {
        !gets_a_token(&server, &scene.suspended.client).await
    })
    .await;
    server.stop().await;
}
