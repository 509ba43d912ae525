//! The revocation stream, server side (issue 21): every change that makes tokens unacceptable is an event
//! stored with the change, delivered as Security Event Tokens by poll (RFC 8936) to receivers holding
//! `authz.events.read`, acknowledged, resumed after a restart, and woken across instances.

mod common;

use std::time::{Duration, Instant};

use common::*;
use diesel::connection::SimpleConnection;
use jsonwebtoken::{DecodingKey, Validation};
use partnergate::registry::clients::CreatedClient;
use reqwest::Method;
use serde_json::{json, Value};

const DISABLED: &str = "https://schemas.openid.net/secevent/risc/event-type/account-disabled";
const ENABLED: &str = "https://schemas.openid.net/secevent/risc/event-type/account-enabled";
const PURGED: &str = "https://schemas.openid.net/secevent/risc/event-type/account-purged";
const CREDENTIAL_CHANGE: &str = "https://schemas.openid.net/secevent/caep/event-type/credential-change";
const TOKEN_REVOKED: &str = "https://partnergate.dev/secevent/token-revoked";
const CUT_OFF: &str = "https://partnergate.dev/secevent/tokens-cut-off";
const EVENTS_READ: &str = "authz.events.read";

/// A resource server's client: holds `authz.events.read`, for the issuer as its only audience.
async fn receiver(server: &TestServer, partner: &str) -> (CreatedClient, String) {
    let issuer = server.settings.issuer.clone();
    let client = server.seed(partner).scopes(&[EVENTS_READ]).audiences(&[&issuer]).create();
    let token = server.token_for(&client, &[EVENTS_READ], None).await;
    (client, token)
}

async fn poll(server: &TestServer, token: &str, body: Value) -> Reply {
    let response = reqwest::Client::new()
        .post(server.url("/ssf/poll"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("poll sent");
    Reply::from(response).await
}

/// One SET, verified as a receiver would: the JWKS over HTTP, `typ: secevent+jwt`, `iss`, `aud`.
#[derive(Debug, Clone)]
struct Set {
    jti: String,
    seq: i64,
    event_type: String,
    event: Value,
    subject: Value,
}

async fn verify_set(server: &TestServer, receiver: &str, jti: &str, token: &str) -> Set {
    let header = jsonwebtoken::decode_header(token).expect("SET header");
    assert_eq!(header.typ.as_deref(), Some("secevent+jwt"));
    let jwks = server.jwks().await;
    let jwk = jwks.find(header.kid.as_deref().expect("kid")).expect("the SET's key is in the JWKS");
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[receiver]);
    validation.set_issuer(&[&server.settings.issuer]);
    validation.set_required_spec_claims(&["iss", "aud"]);
    validation.validate_exp = false;
    let claims = jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .unwrap_or_else(|err| panic!("SET does not verify: {err}"))
        .claims;
    assert_eq!(claims["jti"], jti, "the map's key is the SET's jti");
    assert!(claims["iat"].is_i64() && claims["toe"].is_i64(), "{claims}");
    let events = claims["events"].as_object().expect("events");
    assert_eq!(events.len(), 1, "one event per SET: {claims}");
    let (event_type, event) = events.iter().next().unwrap();
    Set {
        jti: jti.to_string(),
        seq: claims["partnergate_seq"].as_i64().expect("sequence number"),
        event_type: event_type.clone(),
        event: event.clone(),
        subject: claims["sub_id"].clone(),
    }
}

/// A server, its operator's admin token, a receiver and its token, and partner `acme`'s client.
struct Scene {
    server: TestServer,
    admin: String,
    rs: CreatedClient,
    token: String,
    client: CreatedClient,
}

impl Scene {
    async fn start() -> Self {
        let server = TestServer::start().await;
        let (_, admin) = server.operator().await;
        let (rs, token) = receiver(&server, "rs").await;
        let client = server.seed("acme").role(&["orders.read"]).create();
        Scene { server, admin, rs, token, client }
    }
}

/// Polls without waiting; returns the verified SETs in sequence order and `moreAvailable`.
async fn sets_of(server: &TestServer, receiver: &CreatedClient, token: &str, body: Value) -> (Vec<Set>, bool) {
    let reply = poll(server, token, body).await;
    let answer = reply.expect_json(200);
    assert_eq!(reply.header("cache-control"), "no-store");
    let mut sets = Vec::new();
    for (jti, set) in answer["sets"].as_object().expect("sets") {
        sets.push(verify_set(server, &receiver.client.id, jti, set.as_str().expect("a compact SET")).await);
    }
    sets.sort_by_key(|set| set.seq);
    (sets, answer["moreAvailable"].as_bool().expect("moreAvailable"))
}

/// The events not acknowledged yet, which it then acknowledges.
async fn take(server: &TestServer, receiver: &CreatedClient, token: &str) -> Vec<Set> {
    let (sets, more) = sets_of(server, receiver, token, json!({"returnImmediately": true})).await;
    assert!(!more);
    let acks: Vec<&str> = sets.iter().map(|set| set.jti.as_str()).collect();
    let (after, _) = sets_of(server, receiver, token, json!({"ack": acks, "returnImmediately": true})).await;
    assert!(after.is_empty(), "acknowledged events are not sent again: {after:?}");
    sets
}

fn client_subject(client: &CreatedClient) -> Value {
    json!({
        "format": "complex",
        "application": {"format": "opaque", "id": client.client.id},
        "tenant": {"format": "opaque", "id": client.client.partner_id},
    })
}

fn partner_subject(partner: &str) -> Value {
    json!({"format": "complex", "tenant": {"format": "opaque", "id": partner}})
}

/// Checks that `sets` is exactly one event of `event_type` about `subject`; notes its number in `seqs`.
fn expect_one(seqs: &mut Vec<i64>, sets: Vec<Set>, event_type: &str, subject: Value) -> Value {
    assert_eq!(sets.len(), 1, "exactly one event: {sets:?}");
    assert_eq!(sets[0].event_type, event_type);
    assert_eq!(sets[0].subject, subject);
    seqs.push(sets[0].seq);
    sets[0].event.clone()
}

fn seconds(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text).expect("an RFC 3339 time").timestamp()
}

/// Each change, through the admin API, the CLI and `/oauth2/revoke`, is exactly one event (two for a secret
/// revoked with its tokens), with a gapless sequence; changes that change nothing make none.
#[tokio::test]
async fn each_change_produces_exactly_its_event() {
    let Scene { server, admin, rs, token, client } = Scene::start().await;
    let id = client.client.id.clone();
    assert!(take(&server, &rs, &token).await.is_empty(), "creating partners and clients is no event");
    let mut seqs = Vec::new();
    // The admin API.
    admin_json(&server, &admin, Method::POST, &format!("/clients/{id}/disable"), json!({})).await.expect_json(200);
    expect_one(&mut seqs, take(&server, &rs, &token).await, DISABLED, client_subject(&client));
    admin_json(&server, &admin, Method::POST, &format!("/clients/{id}/disable"), json!({})).await.expect_json(200);
    assert!(take(&server, &rs, &token).await.is_empty(), "disabling a disabled client changes nothing");
    admin_json(&server, &admin, Method::POST, &format!("/clients/{id}/enable"), json!({})).await.expect_json(200);
    expect_one(&mut seqs, take(&server, &rs, &token).await, ENABLED, client_subject(&client));
    let reply = admin_json(&server, &admin, Method::POST, &format!("/clients/{id}/revoke-tokens"), json!({})).await;
    let cutoff = seconds(reply.expect_json(200)["tokens_revoked_before"].as_str().unwrap());
    let event = expect_one(&mut seqs, take(&server, &rs, &token).await, CUT_OFF, client_subject(&client));
    assert_eq!(event, json!({"issued_at_or_before": cutoff}));
    admin_json(&server, &admin, Method::POST, "/partners/acme/suspend", json!({})).await.expect_json(200);
    expect_one(&mut seqs, take(&server, &rs, &token).await, DISABLED, partner_subject("acme"));
    admin_json(&server, &admin, Method::POST, "/partners/acme/resume", json!({})).await.expect_json(200);
    expect_one(&mut seqs, take(&server, &rs, &token).await, ENABLED, partner_subject("acme"));

    // A secret revoked with its tokens: both events, in one transaction (consecutive numbers).
    let secret = &client.secret.id;
    let path = format!("/clients/{id}/secrets/{secret}?revoke_tokens=true");
    admin_request(&server, Method::DELETE, &path, Some(&admin), None).await.expect_json(200);
    let sets = take(&server, &rs, &token).await;
    assert_eq!(sets.len(), 2, "{sets:?}");
    assert_eq!(sets[0].event_type, CREDENTIAL_CHANGE);
    assert_eq!(sets[0].event["change_type"], "revoke");
    assert_eq!(sets[0].event["credential_type"], "client_secret");
    assert_eq!(sets[0].event["partnergate_secret_id"], secret.as_str());
    assert_eq!(sets[1].event_type, CUT_OFF);
    assert_eq!(sets[0].subject, client_subject(&client));
    seqs.extend([sets[0].seq, sets[1].seq]);
    admin_request(&server, Method::DELETE, &path, Some(&admin), None).await.expect_json(200);
    let again = take(&server, &rs, &token).await;
    assert_eq!(again.len(), 1, "a revoked secret is not revoked twice, the cut-off is new: {again:?}");
    assert_eq!(again[0].event_type, CUT_OFF);
    seqs.push(again[0].seq);

    // The CLI, from another process.
    partnergate(&server, &["partner", "suspend", "acme"]);
    expect_one(&mut seqs, take(&server, &rs, &token).await, DISABLED, partner_subject("acme"));
    partnergate(&server, &["partner", "resume", "acme"]);
    expect_one(&mut seqs, take(&server, &rs, &token).await, ENABLED, partner_subject("acme"));
    partnergate(&server, &["partner", "revoke-tokens", "acme"]);
    let event = expect_one(&mut seqs, take(&server, &rs, &token).await, CUT_OFF, partner_subject("acme"));
    assert!(event["issued_at_or_before"].is_i64());
    partnergate(&server, &["client", "disable", &id]);
    expect_one(&mut seqs, take(&server, &rs, &token).await, DISABLED, client_subject(&client));
    partnergate(&server, &["client", "enable", &id]);
    expect_one(&mut seqs, take(&server, &rs, &token).await, ENABLED, client_subject(&client));

    // `/oauth2/revoke` by the token's own client: the jti with its exp; a second revocation is no event.
    let other = server.client_of("acme").roles(&["role-acme"]).create();
    let access = server.token_for(&other, &[], None).await;
    let exp = server.verify(&access, &server.settings.default_audience).await["exp"].as_i64().unwrap();
    let jti = server.verify(&access, &server.settings.default_audience).await["jti"].clone();
    for _ in 0..2 {
        let body = form(&[("token", &access)]);
        let auth = basic_auth(&other.client.id, other.secret.secret.expose());
        let response = post_form(&server, "/oauth2/revoke", &body, &[("authorization", &auth)]).await;
        assert_eq!(response.status(), 200);
    }
    let event = expect_one(&mut seqs, take(&server, &rs, &token).await, TOKEN_REVOKED, client_subject(&other));
    assert_eq!(event, json!({"jti": jti, "exp": exp}));

    admin_request(&server, Method::DELETE, &format!("/clients/{id}"), Some(&admin), None).await.expect_json(200);
    expect_one(&mut seqs, take(&server, &rs, &token).await, PURGED, client_subject(&client));

    let first = seqs[0];
    assert_eq!(seqs, (first..first + seqs.len() as i64).collect::<Vec<_>>(), "gapless and in order");
    server.stop().await;
}

/// The event is written in the change's transaction: a change that fails after the event was written (here
/// the database refuses the client's update) leaves no event, and its sequence number is used by the next.
#[tokio::test]
async fn a_failed_change_leaves_no_event() {
    let Scene { server, admin, rs, token, client } = Scene::start().await;
    let id = client.client.id.clone();
    let refuse = if on_postgres() {
        format!(
            "CREATE FUNCTION refuse_update() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$ \
             LANGUAGE plpgsql; CREATE TRIGGER refuse BEFORE UPDATE ON clients FOR EACH ROW WHEN (NEW.id = '{id}') \
             EXECUTE FUNCTION refuse_update();"
        )
    } else {
        format!(
            "CREATE TRIGGER refuse BEFORE UPDATE ON clients WHEN NEW.id = '{id}' BEGIN SELECT RAISE(ABORT, \
             'refused'); END;"
        )
    };
    server.conn().batch_execute(&refuse).unwrap();
    let refused = admin_json(&server, &admin, Method::POST, &format!("/clients/{id}/disable"), json!({})).await;
    assert!(refused.status >= 400, "{}", refused.dump());
    assert!(take(&server, &rs, &token).await.is_empty(), "no event of a change that rolled back");
    let drop = if on_postgres() { "DROP TRIGGER refuse ON clients" } else { "DROP TRIGGER refuse" };
    server.conn().batch_execute(drop).unwrap();
    admin_json(&server, &admin, Method::POST, &format!("/clients/{id}/disable"), json!({})).await.expect_json(200);
    let sets = take(&server, &rs, &token).await;
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0].seq, 1, "the rolled-back change's number was given back");
    server.stop().await;
}

/// What a receiver acknowledged is not sent again, also by a new instance after a restart; what it did not
/// acknowledge is. Acknowledgements of other receivers' SETs and made-up ones move nothing.
#[tokio::test]
async fn acknowledgements_survive_a_restart() {
    let mut first = TestServer::start().await;
    let (rs, token) = receiver(&first, "rs").await;
    let (other, other_token) = receiver(&first, "other-rs").await;
    for partner in ["p1", "p2", "p3"] {
        first.seed(partner).role(&["orders.read"]).create();
        partnergate::registry::partners::set_suspended(
            &mut first.conn(),
            &partnergate::registry::Caller::cli(),
            partner,
            true,
        )
        .unwrap();
    }
    let (sets, _) = sets_of(&first, &rs, &token, json!({"returnImmediately": true})).await;
    assert_eq!(sets.iter().map(|s| s.seq).collect::<Vec<_>>(), [1, 2, 3]);
    let (theirs, _) = sets_of(&first, &other, &other_token, json!({"returnImmediately": true})).await;
    let acks = json!({
        "ack": [sets[0].jti, sets[1].jti, theirs[2].jti, "4.".to_string() + &rs.client.id, "garbage"],
        "maxEvents": 0,
    });
    let (none, more) = sets_of(&first, &rs, &token, acks).await;
    assert!(none.is_empty() && more, "maxEvents 0 acknowledges only, and says more is there");
    first.stop_keep_db().await;

    let second = TestServer::start_beside(&first).await;
    let token = second.token_for(&rs, &[EVENTS_READ], None).await;
    let (sets, _) = sets_of(&second, &rs, &token, json!({"returnImmediately": true})).await;
    assert_eq!(sets.iter().map(|s| s.seq).collect::<Vec<_>>(), [3], "only the unacknowledged one");
    let (after, _) = sets_of(
        &second,
        &rs,
        &token,
        json!({"setErrs": {sets[0].jti.clone(): {"err": "x", "description": "y"}}, "returnImmediately": true}),
    )
    .await;
    assert!(after.is_empty(), "a reported error counts as acknowledged");
    let (theirs, _) = sets_of(&second, &other, &other_token, json!({"returnImmediately": true})).await;
    assert_eq!(theirs.len(), 3, "the other receiver acknowledged nothing");
    second.stop().await;
    first.stop().await;
}

/// `maxEvents` bounds an answer and `moreAvailable` says what is left.
#[tokio::test]
async fn answers_are_bounded_by_max_events() {
    let server = TestServer::start().await;
    let (rs, token) = receiver(&server, "rs").await;
    let client = server.seed("acme").role(&["orders.read"]).create();
    for _ in 0..3 {
        partnergate::registry::revocation::revoke_client_tokens(
            &mut server.conn(),
            &partnergate::registry::Caller::cli(),
            &client.client.id,
        )
        .unwrap();
    }
    let (sets, more) = sets_of(&server, &rs, &token, json!({"maxEvents": 2, "returnImmediately": true})).await;
    assert_eq!((sets.iter().map(|s| s.seq).collect::<Vec<_>>(), more), (vec![1, 2], true));
    let acks: Vec<String> = sets.iter().map(|s| s.jti.clone()).collect();
    let (sets, more) = sets_of(&server, &rs, &token, json!({"ack": acks, "maxEvents": 2})).await;
    assert_eq!((sets.iter().map(|s| s.seq).collect::<Vec<_>>(), more), (vec![3], false));
    server.stop().await;
}

/// Where the change that wakes a long poll is made.
#[derive(Clone, Copy, PartialEq)]
enum ChangedBy {
    AdminApi,
    /// A `partnergate` command: another process.
    Cli,
}

/// A long poll of instance `waiting` is answered within a second of a change made through the admin API of
/// instance `changing`, or by a `partnergate` command on its database.
async fn long_poll_wakes(changing: &TestServer, waiting: &TestServer, by: ChangedBy) {
    let (_, admin) = changing.operator().await;
    let (rs, token) = receiver(changing, "rs").await;
    let client = changing.seed("acme").role(&["orders.read"]).create();
    let poll = {
        let (url, token) = (waiting.url("/ssf/poll"), token.clone());
        tokio::spawn(async move {
            let response = reqwest::Client::new().post(url).bearer_auth(token).json(&json!({})).send().await.unwrap();
            let answered = Instant::now();
            (response.json::<Value>().await.unwrap(), answered)
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!poll.is_finished(), "nothing to send: the poll waits");
    match by {
        ChangedBy::AdminApi => {
            let path = format!("/clients/{}/disable", client.client.id);
            admin_json(changing, &admin, Method::POST, &path, json!({})).await.expect_json(200);
        }
        ChangedBy::Cli => {
            let mut command = changing.cli();
            command.args(["client", "disable", &client.client.id]);
            let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        }
    }
    let changed = Instant::now();
    let (answer, answered) = tokio::time::timeout(Duration::from_secs(5), poll).await.expect("woken").unwrap();
    let latency = answered.saturating_duration_since(changed);
    assert!(latency < Duration::from_secs(1), "woken {latency:?} after the change");
    let sets = answer["sets"].as_object().unwrap();
    assert_eq!(sets.len(), 1, "{answer}");
    let (jti, set) = sets.iter().next().unwrap();
    let set = verify_set(waiting, &rs.client.id, jti, set.as_str().unwrap()).await;
    assert_eq!(set.event_type, DISABLED);
}

#[tokio::test]
async fn a_long_poll_wakes_at_once_on_this_instance() {
    let server = TestServer::start().await;
    long_poll_wakes(&server, &server, ChangedBy::AdminApi).await;
    server.stop().await;
}

#[tokio::test]
async fn a_long_poll_wakes_within_a_second_of_a_command_in_another_process() {
    let server = TestServer::start().await;
    long_poll_wakes(&server, &server, ChangedBy::Cli).await;
    server.stop().await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: two instances on one database"]
async fn a_long_poll_wakes_within_a_second_of_a_change_at_another_instance() {
    let a = TestServer::start().await;
    let b = TestServer::start_beside(&a).await;
    long_poll_wakes(&a, &b, ChangedBy::AdminApi).await;
    b.stop().await;
    a.stop().await;
}

/// A long poll with nothing to send ends at the server's shutdown instead of holding it up.
#[tokio::test]
async fn shutdown_ends_long_polls() {
    let server = TestServer::start().await;
    let (_, token) = receiver(&server, "rs").await;
    let url = server.url("/ssf/poll");
    let poll = tokio::spawn(async move {
        reqwest::Client::new().post(url).bearer_auth(token).json(&json!({})).send().await.map(|r| r.status())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    server.stop().await;
    assert!(started.elapsed() < Duration::from_secs(5), "stopped in {:?}", started.elapsed());
    assert_eq!(poll.await.unwrap().unwrap(), 200);
}

/// RFC 6750 at the poll endpoint: no token, a bad one, one for another audience, one without the scope; RFC
/// 8935 error bodies for bad requests.
#[tokio::test]
async fn the_poll_endpoint_refuses_what_it_should() {
    let server = TestServer::start().await;
    let issuer = server.settings.issuer.clone();
    let (_, token) = receiver(&server, "rs").await;
    let url = server.url("/ssf/poll");
    let http = reqwest::Client::new();

    let reply = Reply::from(http.post(&url).json(&json!({})).send().await.unwrap()).await;
    assert_eq!(reply.expect_json(401)["err"], "authentication_failed");
    assert_eq!(reply.header("www-authenticate"), "Bearer realm=\"partnergate\"");

    let reply = poll(&server, "not-a-token", json!({})).await;
    reply.expect_json(401);
    assert!(reply.header("www-authenticate").contains("error=\"invalid_token\""), "{}", reply.dump());

    // Without the scope: 403 insufficient_scope, naming it.
    let plain = server.seed("plain").role(&["orders.read"]).audiences(&[&issuer]).create();
    let plain_token = server.token_for(&plain, &[], None).await;
    let reply = poll(&server, &plain_token, json!({})).await;
    assert_eq!(reply.expect_json(403)["err"], "access_denied");
    assert_eq!(
        reply.header("www-authenticate"),
        "Bearer realm=\"partnergate\", error=\"insufficient_scope\", scope=\"authz.events.read\""
    );

    // With the scope but for a resource server's audience: replayed there, it is refused here.
    let elsewhere = server
        .seed("elsewhere")
        .scopes(&[EVENTS_READ])
        .audiences(&[&issuer, &server.settings.default_audience])
        .create();
    let api_token = server.token_for(&elsewhere, &[], Some(&server.settings.default_audience)).await;
    let reply = poll(&server, &api_token, json!({})).await;
    reply.expect_json(401);
    assert!(reply.header("www-authenticate").contains("invalid_token"));

    // An admin token (the admin audience) is not a receiver's either.
    let (_, admin) = server.operator().await;
    poll(&server, &admin, json!({})).await.expect_json(401);

    for bad in [
        json!([]),
        json!({"ack": "x"}),
        json!({"maxEvents": -1}),
        json!({"maxEvents": 1001}),
        json!({"returnImmediately": "yes"}),
    ] {
        let reply = poll(&server, &token, bad.clone()).await;
        let body = reply.expect_json(400);
        assert_eq!(body["err"], "invalid_request", "{bad}: {body}");
    }
    let reply = Reply::from(
        http.post(&url).bearer_auth(&token).header("content-type", "text/plain").body("{}").send().await.unwrap(),
    )
    .await;
    assert_eq!(reply.expect_json(400)["err"], "invalid_request");
    // An event, so that the poll with an empty body (every default: a long poll) answers at once.
    let client = server.seed("acme").role(&["orders.read"]).create();
    partnergate::registry::clients::set_enabled(
        &mut server.conn(),
        &partnergate::registry::Caller::cli(),
        &client.client.id,
        false,
    )
    .unwrap();
    let reply = Reply::from(http.post(&url).bearer_auth(&token).body("").send().await.unwrap()).await;
    assert_eq!(reply.status, 200, "an empty body is a poll with every default: {}", reply.dump());
    let reply = Reply::from(http.get(&url).bearer_auth(&token).send().await.unwrap()).await;
    assert_eq!(reply.status, 405);

    // A SET is no access token: the admin API refuses it.
    let answer = poll(&server, &token, json!({"returnImmediately": true})).await.expect_json(200);
    let set = answer["sets"].as_object().unwrap().values().next().unwrap().as_str().unwrap().to_string();
    admin_request(&server, Method::GET, "/partners", Some(&set), None).await.expect_json(401);
    server.stop().await;
}

/// Transmitter metadata in the manner of OpenID Shared Signals 1.0.
#[tokio::test]
async fn transmitter_metadata() {
    let server = TestServer::start().await;
    let issuer = server.settings.issuer.clone();
    let reply = Reply::from(reqwest::get(server.url("/.well-known/ssf-configuration")).await.unwrap()).await;
    let metadata = reply.expect_json(200);
    assert_eq!(metadata["issuer"], issuer);
    assert_eq!(metadata["jwks_uri"], format!("{issuer}/.well-known/jwks.json"));
    assert_eq!(metadata["delivery_methods_supported"], json!(["urn:ietf:rfc:8936"]));
    assert_eq!(metadata["partnergate_poll_endpoint"], format!("{issuer}/ssf/poll"));
    assert_eq!(metadata["partnergate_token_scope"], EVENTS_READ);
    let events = metadata["partnergate_events_supported"].as_array().unwrap();
    for event in [DISABLED, ENABLED, PURGED, CREDENTIAL_CHANGE, TOKEN_REVOKED, CUT_OFF] {
        assert!(events.contains(&json!(event)), "{event}");
    }
    server.stop().await;
}

/// The operator sees each receiver's position and lag in the admin API and in the metrics; partner admins
/// do not.
#[tokio::test]
async fn receivers_positions_and_lag_are_observable() {
    let Scene { server, admin, rs, token, client } = Scene::start().await;
    let caller = partnergate::registry::Caller::cli();
    for enabled in [false, true, false] {
        partnergate::registry::clients::set_enabled(&mut server.conn(), &caller, &client.client.id, enabled).unwrap();
    }
    let (sets, _) = sets_of(&server, &rs, &token, json!({"returnImmediately": true})).await;
    let (_, _) = sets_of(&server, &rs, &token, json!({"ack": [sets[0].jti], "maxEvents": 0})).await;

    let listing = admin_request(&server, Method::GET, "/event-receivers", Some(&admin), None).await.expect_json(200);
    assert_eq!(listing["last_seq"], 3);
    let items = listing["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{listing}");
    assert_eq!(items[0]["client_id"], rs.client.id.as_str());
    assert_eq!(items[0]["acked_seq"], 1);
    assert_eq!(items[0]["lag_events"], 2);
    assert!(items[0]["lag_seconds"].as_i64().unwrap() >= 0);
    assert!(items[0]["acked_at"].is_string() && items[0]["last_poll_at"].is_string());

    let (_, partner_admin) = server.partner_admin("tenant").create().await;
    admin_request(&server, Method::GET, "/event-receivers", Some(&partner_admin), None)
        .await
        .expect_problem(403, "forbidden");

    let label = format!("partnergate_event_receiver_lag_events{{receiver=\"{}\"}} 2", rs.client.id);
    until(Duration::from_secs(15), "the receiver's lag in /metrics", || async {
        let text = reqwest::get(server.url("/metrics")).await.unwrap().text().await.unwrap();
        text.contains(&label)
            && text.contains("partnergate_security_events_last_seq 3")
            && text.contains("partnergate_security_events_delivered_total 3")
    })
    .await;
    server.stop().await;
}

/// Events are kept for the longest token lifetime plus a margin, then pruned; a receiver that starts later
/// gets every event still kept.
#[tokio::test]
async fn retention_keeps_events_for_the_longest_token_lifetime() {
    let server = TestServer::start().await;
    let client = server.seed("acme").role(&["orders.read"]).create();
    let caller = partnergate::registry::Caller::cli();
    partnergate::registry::clients::set_enabled(&mut server.conn(), &caller, &client.client.id, false).unwrap();
    let max_lifetime = server.config.token.max_lifetime_secs;
    let now = partnergate::store::now();
    let lifetime = chrono::Duration::seconds(max_lifetime);
    let kept = partnergate::secevents::prune(&mut server.conn(), now + lifetime, max_lifetime).unwrap();
    assert_eq!(kept, 0, "kept for the longest token lifetime");
    let (rs, token) = receiver(&server, "rs").await;
    let (sets, _) = sets_of(&server, &rs, &token, json!({"returnImmediately": true})).await;
    assert_eq!(sets.len(), 1, "a new receiver starts with every event kept");

    let retention = partnergate::secevents::retention(max_lifetime);
    assert!(retention >= lifetime + chrono::Duration::hours(1));
    let later = now + retention + chrono::Duration::seconds(1);
    assert_eq!(partnergate::secevents::prune(&mut server.conn(), later, max_lifetime).unwrap(), 1);
    let (sets, _) = sets_of(&server, &rs, &token, json!({"returnImmediately": true})).await;
    assert!(sets.is_empty(), "pruned");
    // The sequence goes on after pruning.
    partnergate::registry::clients::set_enabled(&mut server.conn(), &caller, &client.client.id, true).unwrap();
    let (sets, _) = sets_of(&server, &rs, &token, json!({"ack": ["1.".to_string() + &rs.client.id]})).await;
    assert_eq!(sets.iter().map(|s| s.seq).collect::<Vec<_>>(), [2]);
    server.stop().await;
}

/// Concurrent changes commit in sequence order: a receiver polling and acknowledging while they happen
/// never sees an event below what it acknowledged, nor a hole.
#[tokio::test]
async fn concurrent_changes_arrive_in_sequence_order() {
    let Scene { server, admin, rs, token, .. } = Scene::start().await;
    let clients: Vec<String> =
        (0..4).map(|_| server.client_of("acme").roles(&["role-acme"]).create().client.id).collect();
    const CHANGES: i64 = 40;
    let changes = (0..CHANGES).map(|i| {
        let (url, admin) =
            (server.url(&format!("/admin/v1/clients/{}/revoke-tokens", clients[i as usize % 4])), admin.clone());
        async move {
            let response = reqwest::Client::new().post(url).bearer_auth(admin).send().await.unwrap();
            assert_eq!(response.status(), 200);
        }
    });
    let changing = tokio::spawn(futures_util::future::join_all(changes));
    let (mut acked, mut acks) = (0, Vec::new());
    let started = Instant::now();
    while acked < CHANGES {
        assert!(started.elapsed() < Duration::from_secs(30), "only {acked} events arrived");
        let body = json!({"ack": std::mem::take(&mut acks), "returnImmediately": true});
        for set in sets_of(&server, &rs, &token, body).await.0 {
            assert_eq!(set.seq, acked + 1, "events arrive in order, without holes");
            acked = set.seq;
            acks.push(set.jti);
        }
    }
    changing.await.unwrap();
    server.stop().await;
}
