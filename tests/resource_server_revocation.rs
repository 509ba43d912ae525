//! The example resource server (`verifier/examples/orders_api.rs`, included) following a real partnergate's
//! revocation stream (issue 21): a client disabled through the admin API, a partner suspended through the
//! CLI and a token revoked at `/oauth2/revoke` are refused by the API within 1 s, cached tokens included;
//! re-enabled and resumed, accepted again. On PostgreSQL the same across two instances (changes at A, the API
//! polling B). A restarted API applies what happened while it was down before it serves. The SET checks
//! themselves (forged, unsigned, foreign-key, other-issuer SETs) are tested in `verifier/tests/revocation.rs`.

mod common;

#[path = "../verifier/examples/orders_api.rs"]
#[allow(dead_code)]
mod orders_api;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use partnergate::registry::clients::CreatedClient;
use partnergate_verifier::{FollowerTask, RevocationConfig, RevocationFollower, StartupPolicy, VerifierConfig};

const EVENTS_READ: &str = "authz.events.read";

/// The orders API on a loopback port, following the stream with `config`.
struct OrdersApi {
    url: String,
    server: actix_web::dev::ServerHandle,
    follower: RevocationFollower,
    task: FollowerTask,
}

impl OrdersApi {
    /// Starts the follower, waits until it has caught up (as the example's `main` does), then serves.
    async fn start(issuer: &TestServer, config: RevocationConfig) -> Self {
        let settings = orders_api::Settings {
            issuer: issuer.settings.issuer.clone(),
            audience: issuer.settings.default_audience.clone(),
            bind: "127.0.0.1:0".into(),
            reporting: None,
        };
        let (authorizer, _) =
            orders_api::authorizer(&settings, VerifierConfig::new(&settings.issuer, &settings.audience));
        let (authorizer, task) = orders_api::with_revocation(authorizer, config);
        let follower = authorizer.revocation().unwrap().clone();
        assert!(follower.wait_ready(Duration::from_secs(10)).await, "caught up: {:?}", follower.stats());
        let (addr, api) = orders_api::serve(authorizer, &settings.bind, 1).unwrap();
        let server = api.handle();
        actix_web::rt::spawn(api);
        OrdersApi { url: format!("http://{addr}"), server, follower, task }
    }

    async fn status(&self, token: &str) -> u16 {
        let response = reqwest::Client::new().get(format!("{}/orders", self.url)).bearer_auth(token).send().await;
        response.unwrap().status().as_u16()
    }

    /// Polls until `token` gets `status`, within the documented bound; returns how long that took.
    async fn until_status(&self, token: &str, status: u16, what: &str) -> Duration {
        until(PROPAGATION_BOUND, what, || async { self.status(token).await == status }).await
    }

    async fn stop(self) {
        self.server.stop(true).await;
        self.task.stop().await;
    }
}

/// The API's own client at `server`: `authz.events.read` for the issuer as audience.
fn receiver(server: &TestServer) -> CreatedClient {
    server.seed("ordersapi").scopes(&[EVENTS_READ]).audiences(&[&server.settings.issuer]).create()
}

fn follow(receiver: &CreatedClient, poll_at: &TestServer, state_file: Option<PathBuf>) -> RevocationConfig {
    let mut config = RevocationConfig::new(&receiver.client.id, receiver.secret.secret.expose());
    config.poll_endpoint = Some(poll_at.url("/ssf/poll"));
    config.startup = StartupPolicy::CatchUp { bound: Duration::from_secs(10) };
    config.state_file = state_file;
    config
}

async fn revoke(server: &TestServer, client: &CreatedClient, token: &str) {
    let auth = basic_auth(&client.client.id, client.secret.secret.expose());
    let response = post_form(server, "/oauth2/revoke", &form(&[("token", token)]), &[("authorization", &auth)]).await;
    assert_eq!(response.status(), 200);
}

/// Changes at `changes` (admin API, `/oauth2/revoke`; the CLI writes the shared database), the API polling
/// `poll_at`: each refused within the bound, then accepted again once undone.
async fn changes_reach_the_api_within_a_second(changes: &TestServer, poll_at: &TestServer) {
    let (_, admin) = changes.operator().await;
    let api = OrdersApi::start(changes, follow(&receiver(changes), poll_at, None)).await;
    let disabled = changes.seed("acme").role(&["orders.read"]).create();
    let revoked = changes.client_of("acme").roles(&["role-acme"]).create();
    let suspended = changes.seed("beta").role(&["orders.read"]).create();
    let bystander = changes.client_of("acme").roles(&["role-acme"]).create();
    let mut tokens = Vec::new();
    for client in [&disabled, &revoked, &suspended, &bystander] {
        let token = changes.token_for(client, &["orders.read"], None).await;
        assert_eq!(api.status(&token).await, 200, "verified and cached before the change");
        tokens.push(token);
    }
    let [disabled_token, revoked_token, suspended_token, bystander_token] = &tokens[..] else { unreachable!() };

    let mut took = Vec::new();
    admin_post(changes, &admin, &format!("/clients/{}/disable", disabled.client.id)).await.expect_json(200);
    took.push(api.until_status(disabled_token, 401, "the disabled client refused").await);
    partnergate(changes, &["partner", "suspend", "beta"]);
    took.push(api.until_status(suspended_token, 401, "the suspended partner refused").await);
    revoke(changes, &revoked, revoked_token).await;
    took.push(api.until_status(revoked_token, 401, "the revoked token refused").await);
    assert_eq!(api.status(bystander_token).await, 200, "another client of the partner is unaffected");
    eprintln!("from the change's 200 to the API's refusal: {took:?}");

    admin_post(changes, &admin, &format!("/clients/{}/enable", disabled.client.id)).await.expect_json(200);
    api.until_status(disabled_token, 200, "the re-enabled client accepted again").await;
    partnergate(changes, &["partner", "resume", "beta"]);
    api.until_status(suspended_token, 200, "the resumed partner accepted again").await;
    assert_eq!(api.status(revoked_token).await, 401, "a revoked token stays refused");

    let stats = api.follower.stats();
    assert_eq!((stats.sets_refused, stats.sequence_gaps), (0, 0), "{stats:?}");
    assert_eq!(stats.events_applied, 5, "{stats:?}");
    api.stop().await;
}

#[actix_web::test]
async fn one_instance_changes_reach_the_resource_server_within_a_second() {
    let server = start_as_issuer(|_| {}).await;
    changes_reach_the_api_within_a_second(&server, &server).await;
}

#[actix_web::test]
#[ignore = "needs PostgreSQL"]
async fn two_instances_changes_at_a_reach_the_resource_server_polling_b_within_a_second() {
    assert!(on_postgres(), "run with PARTNERGATE_TEST_BACKEND=postgres");
    let a = start_as_issuer(|_| {}).await;
    let b = TestServer::start_beside_with(&a, |config| config.bind = "127.0.0.1:0".parse().unwrap()).await;
    changes_reach_the_api_within_a_second(&a, &b).await;
}

/// Stopped, three changes made, started again: all three (and what it knew before) applied before it
/// serves, with no gap in the sequence.
#[actix_web::test]
async fn a_restarted_resource_server_applies_what_it_missed_before_serving() {
    let server = start_as_issuer(|_| {}).await;
    let (_, admin) = server.operator().await;
    let state = tempfile::tempdir().unwrap();
    let state_file = state.path().join("revocation.json");
    let rs = receiver(&server);
    let before = server.seed("acme").role(&["orders.read"]).create();
    let disabled = server.client_of("acme").roles(&["role-acme"]).create();
    let revoked = server.client_of("acme").roles(&["role-acme"]).create();
    let suspended = server.seed("beta").role(&["orders.read"]).create();
    let bystander = server.client_of("acme").roles(&["role-acme"]).create();
    let mut tokens = Vec::new();
    for client in [&before, &disabled, &revoked, &suspended, &bystander] {
        tokens.push(server.token_for(client, &["orders.read"], None).await);
    }

    let api = OrdersApi::start(&server, follow(&rs, &server, Some(state_file.clone()))).await;
    admin_post(&server, &admin, &format!("/clients/{}/disable", before.client.id)).await.expect_json(200);
    api.until_status(&tokens[0], 401, "disabled while running").await;
    // Acknowledged (so the server will not send it again): the state file is what remembers it.
    let position = || async { receiver_position(&server, &rs) >= 1 };
    until(Duration::from_secs(5), "acknowledged", position).await;
    api.stop().await;

    admin_post(&server, &admin, &format!("/clients/{}/disable", disabled.client.id)).await.expect_json(200);
    partnergate(&server, &["partner", "suspend", "beta"]);
    revoke(&server, &revoked, &tokens[2]).await;

    let api = OrdersApi::start(&server, follow(&rs, &server, Some(state_file))).await;
    for (token, what) in tokens[..4].iter().zip(["before the stop", "disabled", "revoked", "suspended"]) {
        assert_eq!(api.status(token).await, 401, "{what}: refused from the first request");
    }
    assert_eq!(api.status(&tokens[4]).await, 200);
    let stats = api.follower.stats();
    assert_eq!((stats.last_seq, stats.sequence_gaps, stats.events_applied), (4, 0, 3), "{stats:?}");
    api.stop().await;
}

/// The receiver's acknowledged position, as the server stores it.
fn receiver_position(server: &TestServer, receiver: &CreatedClient) -> i64 {
    use diesel::prelude::*;
    use partnergate::store::schema::event_receivers;
    event_receivers::table
        .find(&receiver.client.id)
        .select(event_receivers::acked_seq)
        .first(&mut server.pool.get().unwrap())
        .unwrap_or(0)
}
