//! Signing keys shared by every instance through the database: sealed at rest, the same JWKS everywhere,
//! changes (admin API, CLI, the schedule) reaching every instance through the change feed, the rotation
//! bounds, and a full rotation on two instances under load with a verifier that caches the JWKS.

mod common;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use diesel::prelude::*;
use partnergate::keys::{KeyPolicy, RotationSchedule};
use partnergate::store::leases;
use partnergate::store::schema::signing_keys;
use reqwest::Method;
use serde_json::Value;

/// How long a key change may take to reach another instance (the feed's bound is 1 s; a reload follows).
const KEY_PROPAGATION: Duration = Duration::from_secs(3);

fn kids(jwks: &jsonwebtoken::jwk::JwkSet) -> Vec<String> {
    let mut kids: Vec<String> = jwks.keys.iter().filter_map(|k| k.common.key_id.clone()).collect();
    kids.sort();
    kids
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

#[actix_web::test]
async fn keys_are_stored_sealed_and_every_instance_publishes_the_same_jwks() {
    let first = TestServer::start().await;
    let second = TestServer::start_beside(&first).await;
    assert_eq!(kids(&first.jwks().await), kids(&second.jwks().await), "one key ring for both instances");
    assert_eq!(kids(&first.jwks().await).len(), 1);

    let rows: Vec<(String, Vec<u8>, String)> = signing_keys::table
        .select((signing_keys::kid, signing_keys::sealed_private_key, signing_keys::state))
        .load(&mut *first.conn())
        .unwrap();
    assert_eq!(rows.len(), 1);
    let (kid, sealed, state) = &rows[0];
    assert_eq!(state, "active");
    assert!(partnergate::keys::SigningKey::from_pkcs8(sealed).is_err(), "the stored private key is not in clear");
    let pem_files = std::fs::read_dir(&first.keys_dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "pem"))
        .count();
    assert_eq!(pem_files, 0, "a generated key is never written to the keys directory");
    if !on_postgres() {
        // SQLite: the key-encryption key was generated beside the keys, private.
        use std::os::unix::fs::PermissionsExt;
        let kek = first.keys_dir.join("key-encryption-key");
        assert_eq!(std::fs::metadata(&kek).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let created = first.seed("sealed").role(&["a.read"]).create();
    let token = second.token_for(&created, &[], None).await;
    assert_eq!(&kid_of(&token), kid);
    first.verify(&token, &first.settings.default_audience).await;
    second.stop().await;
    first.stop().await;
}

#[actix_web::test]
async fn a_published_key_signs_only_after_its_bound_and_every_change_reaches_the_other_instance() {
    let first = TestServer::start().await;
    let second = TestServer::start_beside(&first).await;
    let (_, op) = first.operator().await;
    let client = first.seed("rotating").role(&["a.read"]).create();
    let old = kid_of(&second.token_for(&client, &[], None).await);

    let created = admin_post(&first, &op, "/keys").await.expect_json(201);
    assert_eq!(created["state"], "published", "{created}");
    let new = created["kid"].as_str().unwrap().to_string();
    until(KEY_PROPAGATION, "the published key in the other instance's JWKS", || async {
        kids(&second.jwks().await).contains(&new)
    })
    .await;
    assert_eq!(kid_of(&second.token_for(&client, &[], None).await), old, "published, not signing");

    // Published for less than max(max-age, 10 minutes): refused, unless forced.
    let refused = admin_post(&first, &op, &format!("/keys/{new}/activate")).await;
    let body = refused.expect_problem(409, "conflict");
    assert!(body["message"].as_str().unwrap().contains("--force"), "{body}");
    admin_post(&first, &op, &format!("/keys/{old}/retire")).await.expect_problem(409, "conflict");
    admin_post(&first, &op, "/keys/nope/activate").await.expect_problem(404, "not_found");
    let activated = admin_post(&first, &op, &format!("/keys/{new}/activate?force=true")).await.expect_json(200);
    assert_eq!(activated["state"], "active");
    assert_eq!(kid_of(&first.token_for(&client, &[], None).await), new, "at once on the instance that changed it");
    until(KEY_PROPAGATION, "the other instance signs with the new key", || async {
        kid_of(&second.token_for(&client, &[], None).await) == new
    })
    .await;

    // The old key retired but stays published while its tokens may live; pruning keeps it.
    let listed = admin_request(&second, Method::GET, "/keys", Some(&op), None).await.expect_json(200);
    let states: HashMap<&str, &str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["kid"].as_str().unwrap(), k["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states[old.as_str()], "retired");
    assert_eq!(states[new.as_str()], "active");
    assert_eq!(admin_post(&second, &op, "/keys/prune").await.expect_json(200)["removed"], serde_json::json!([]));
    assert!(kids(&second.jwks().await).contains(&old));

    // A partner admin may not touch the keys.
    let (_, partner_admin) = first.partner_admin("keys-pa").create().await;
    admin_post(&first, &partner_admin, "/keys").await.expect_problem(403, "forbidden");

    let events: Vec<String> = audit_rows(&first)
        .into_iter()
        .filter(|r| r.event_type.starts_with("key."))
        .map(|r| format!("{} {}", r.event_type, r.actor.unwrap_or_default()))
        .collect();
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(events[0].starts_with("key.generate serve"), "{events:?}");
    assert!(events[1].starts_with("key.generate client:") && events[2].starts_with("key.activate client:"));
    second.stop().await;
    first.stop().await;
}

#[actix_web::test]
async fn the_cli_rotates_safely_and_the_server_hears_of_it() {
    let server = TestServer::start_with(|config| {
        config.key_policy = KeyPolicy {
            publish_at_least: chrono::Duration::seconds(1),
            keep_after_retire: chrono::Duration::seconds(1),
        };
    })
    .await;
    let client = server.seed("cli-rot").role(&["a.read"]).create();
    let old = kid_of(&server.token_for(&client, &[], None).await);
    // The command's own bound is the server's default (10 minutes): it publishes and says when to go on.
    let first = partnergate(&server, &["keys", "rotate"]);
    let new = first["published"]["kid"].as_str().unwrap().to_string();
    assert!(first["activated"].is_null() && first["ready_at"].is_string(), "{first}");
    until(KEY_PROPAGATION, "the CLI's key in the JWKS", || async { kids(&server.jwks().await).contains(&new) }).await;
    let again = partnergate(&server, &["keys", "rotate"]);
    assert!(again["activated"].is_null() && again["published"].is_null(), "still waiting: {again}");
    let run = run_command(&server.cli(), &["keys", "activate", &new]);
    assert!(run.failed().contains("published only since"), "{}", run.stderr);
    partnergate(&server, &["keys", "activate", &new, "--force"]);
    until(KEY_PROPAGATION, "the server signs with the CLI's key", || async {
        kid_of(&server.token_for(&client, &[], None).await) == new
    })
    .await;
    let listed = run_command(&server.cli(), &["keys", "list"]);
    for word in ["KID", "STATE", "PUBLISHED", "ACTIVATED", "RETIRED", "active", "retired", &old, &new] {
        assert!(listed.ok().contains(word), "{word}: {}", listed.stdout);
    }
    server.stop().await;
}

#[actix_web::test]
async fn a_retired_key_leaves_the_jwks_once_its_tokens_have_expired() {
    let clock = manual_clock();
    let server = TestServer::start_on_with(&clock, |config| {
        config.key_policy = KeyPolicy {
            publish_at_least: chrono::Duration::seconds(1),
            keep_after_retire: chrono::Duration::seconds(2),
        };
    })
    .await;
    let (_, op) = server.operator().await;
    let started = admin_post(&server, &op, "/keys/rotate").await.expect_json(200);
    let new = started["published"]["kid"].as_str().unwrap().to_string();
    let old = server.running().keys().current().active().kid().to_string();
    assert!(started["activated"].is_null(), "{started}");
    // The server's clock moves; each step is taken exactly when its bound has passed, not before.
    clock.advance(chrono::Duration::milliseconds(999));
    let early = admin_post(&server, &op, "/keys/rotate").await.expect_json(200);
    assert!(early["activated"].is_null(), "not ready before its bound: {early}");
    clock.advance(chrono::Duration::milliseconds(1));
    let activated = admin_post(&server, &op, "/keys/rotate").await.expect_json(200)["activated"].clone();
    assert_eq!(activated["kid"], new.as_str());
    assert!(kids(&server.jwks().await).contains(&old), "retired, still published");
    clock.advance(chrono::Duration::milliseconds(1999));
    assert_eq!(admin_post(&server, &op, "/keys/prune").await.expect_json(200)["removed"], serde_json::json!([]));
    clock.advance(chrono::Duration::milliseconds(1));
    let removed = admin_post(&server, &op, "/keys/prune").await.expect_json(200)["removed"].clone();
    assert_eq!(removed, serde_json::json!([old.as_str()]));
    assert!(!kids(&server.jwks().await).contains(&old));
    let sealed: Vec<u8> =
        signing_keys::table.find(&old).select(signing_keys::sealed_private_key).first(&mut *server.conn()).unwrap();
    assert!(sealed.is_empty(), "a removed key's private key is erased");
    server.stop().await;
}

#[actix_web::test]
async fn the_schedule_lease_is_held_by_one_instance_at_a_time() {
    let server = TestServer::start().await;
    let mut conn = server.conn();
    let now = partnergate::store::now();
    let later = now + chrono::Duration::seconds(30);
    assert!(leases::try_acquire(&mut conn, leases::KEY_SCHEDULE, "a", now, later).unwrap());
    assert!(!leases::try_acquire(&mut conn, leases::KEY_SCHEDULE, "b", now, later).unwrap(), "a holds it");
    assert!(leases::try_acquire(&mut conn, leases::KEY_SCHEDULE, "a", now, later).unwrap(), "a renews it");
    let after = later + chrono::Duration::seconds(1);
    assert!(leases::try_acquire(&mut conn, leases::KEY_SCHEDULE, "b", after, after).unwrap(), "expired: b takes it");
    leases::release(&mut conn, leases::KEY_SCHEDULE, "b").unwrap();
    assert!(leases::try_acquire(&mut conn, leases::KEY_SCHEDULE, "a", now, later).unwrap(), "released");
    drop(conn);
    server.stop().await;
}

#[actix_web::test]
async fn the_schedule_rotates_on_its_own_on_two_instances_without_doing_anything_twice() {
    let configure = |config: &mut partnergate::config::ServerConfig| {
        config.key_policy = KeyPolicy {
            publish_at_least: chrono::Duration::seconds(1),
            keep_after_retire: chrono::Duration::seconds(1),
        };
        config.key_schedule = Some(RotationSchedule {
            every: chrono::Duration::seconds(3),
            announce: chrono::Duration::seconds(2),
            keep: chrono::Duration::seconds(1),
        });
        config.key_schedule_tick = Duration::from_millis(200);
    };
    // The schedule ticks on real time (every 200 ms) and decides on the servers' clock, which moves one stage
    // at a time: each stage is seen done before the clock moves on.
    let clock = manual_clock();
    let first = TestServer::start_on_with(&clock, configure).await;
    let second = TestServer::start_beside(&first).await;
    let initial = first.running().keys().current().active().kid().to_string();
    let states = || -> Vec<(String, String)> {
        signing_keys::table.select((signing_keys::kid, signing_keys::state)).load(&mut *first.conn()).unwrap()
    };
    // The first key was activated at start: its replacement is announced 2 s before its 3 s are up.
    clock.advance(chrono::Duration::seconds(1));
    until(Duration::from_secs(10), "the schedule publishes the next key", || async {
        states().iter().any(|(_, state)| state == "published")
    })
    .await;
    clock.advance(chrono::Duration::seconds(2));
    until(Duration::from_secs(10), "the schedule activates it and retires the first key", || async {
        states().iter().any(|(kid, state)| *kid == initial && state == "retired")
    })
    .await;
    clock.advance(chrono::Duration::seconds(1));
    until(Duration::from_secs(10), "a scheduled rotation removed the first key", || async {
        let keys = partnergate(&first, &["keys", "list"]);
        keys.as_array().unwrap().iter().any(|k| k["kid"] == initial.as_str() && k["state"] == "removed")
    })
    .await;
    let events: Vec<(String, String)> = audit_rows(&first)
        .into_iter()
        .filter(|r| {
            r.event_type.starts_with("key.") && r.actor.as_deref().is_some_and(|a| a.starts_with("key-schedule"))
        })
        .map(|r| (r.event_type, r.details.unwrap_or_default()))
        .collect();
    let generated = events.iter().filter(|(t, _)| t == "key.generate").count();
    let activated = events.iter().filter(|(t, _)| t == "key.activate").count();
    assert!(activated >= 1, "{events:?}");
    assert!(generated >= activated && generated <= activated + 1, "one key published per rotation: {events:?}");
    second.stop().await;
    first.stop().await;
}

/// What the load test's verifier saw.
#[derive(Default)]
struct Tally {
    issued: AtomicUsize,
    request_failures: Mutex<Vec<String>>,
    verified: AtomicUsize,
    verify_failures: Mutex<Vec<String>>,
    kids: Mutex<HashMap<String, usize>>,
}

/// A resource server's verifier: caches the JWKS for the `max-age` its response gives (fetching from either
/// instance, as through a load balancer), and verifies every token it is given with `jsonwebtoken`.
struct CachingVerifier {
    urls: Vec<String>,
    issuer: String,
    audience: String,
    cache: Option<(Instant, Duration, jsonwebtoken::jwk::JwkSet)>,
    fetches: usize,
}

impl CachingVerifier {
    async fn jwks(&mut self) -> &jsonwebtoken::jwk::JwkSet {
        let fresh = self.cache.as_ref().is_some_and(|(at, max_age, _)| at.elapsed() < *max_age);
        if !fresh {
            let url = &self.urls[self.fetches % self.urls.len()];
            self.fetches += 1;
            let response = reqwest::get(format!("{url}/.well-known/jwks.json")).await.expect("JWKS");
            let cache_control = response.headers()["cache-control"].to_str().unwrap().to_string();
            let max_age: u64 = cache_control
                .split(',')
                .find_map(|part| part.trim().strip_prefix("max-age="))
                .and_then(|v| v.parse().ok())
                .expect("a max-age");
            let jwks = response.json().await.expect("JWKS JSON");
            self.cache = Some((Instant::now(), Duration::from_secs(max_age), jwks));
        }
        &self.cache.as_ref().unwrap().2
    }

    async fn verify(&mut self, token: &str) -> Result<String, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
        let kid = header.kid.clone().ok_or("no kid")?;
        let (issuer, audience) = (self.issuer.clone(), self.audience.clone());
        let jwks = self.jwks().await;
        let jwk = jwks.find(&kid).ok_or_else(|| format!("kid {kid} not in the cached JWKS"))?;
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.leeway = 0;
        validation.set_audience(&[audience]);
        validation.set_issuer(&[issuer]);
        jsonwebtoken::decode::<HashMap<String, Value>>(token, &key, &validation).map_err(|e| format!("{kid}: {e}"))?;
        Ok(kid)
    }
}

/// The acceptance test: while clients request tokens continuously from two instances on one database
/// and a verifier that caches the JWKS for its max-age checks every token (at once, and again shortly before it
/// expires), a full rotation runs: publish, wait, activate (on the other instance), retire, prune. Zero failed
/// verifications, zero failed token requests. Short settings keep it quick: JWKS max-age 1 s, a key published
/// 2 s before it signs (max-age plus the feed's 1 s), tokens of 5 s, retired keys kept 5 + 2 s.
#[actix_web::test]
async fn a_full_rotation_under_load_on_two_instances_fails_no_request_and_no_verification() {
    let first = TestServer::start_with(|config| {
        config.jwks_max_age_secs = 1;
        config.token.default_lifetime_secs = 5;
        config.token.max_lifetime_secs = 5;
        config.key_policy = KeyPolicy {
            publish_at_least: chrono::Duration::seconds(2),
            keep_after_retire: chrono::Duration::seconds(7),
        };
    })
    .await;
    let second = TestServer::start_beside(&first).await;
    let (operator, _) = first.operator().await;
    let client = first.seed("load").role(&["a.read"]).create();
    let old = first.running().keys().current().active().kid().to_string();

    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let (to_verifier, mut verifier_inbox) = tokio::sync::mpsc::unbounded_channel::<(Instant, String)>();
    let urls = vec![first.base_url.clone(), second.base_url.clone()];

    let mut requesters = Vec::new();
    for worker in 0..4 {
        let (tally, stop, to_verifier, urls) = (tally.clone(), stop.clone(), to_verifier.clone(), urls.clone());
        let authorization = basic_auth(&client.client.id, client.secret.secret.expose());
        requesters.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut n = worker;
            while !stop.load(Ordering::SeqCst) {
                let url = &urls[n % urls.len()];
                n += 1;
                let response = http
                    .post(format!("{url}/oauth2/token"))
                    .header("authorization", &authorization)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body("grant_type=client_credentials")
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status() == 200 => {
                        let body: Value = r.json().await.unwrap();
                        tally.issued.fetch_add(1, Ordering::SeqCst);
                        let _ = to_verifier.send((Instant::now(), body["access_token"].as_str().unwrap().to_string()));
                    }
                    Ok(r) => {
                        let failure = format!("{}: {}", r.status(), r.text().await.unwrap_or_default());
                        tally.request_failures.lock().unwrap().push(failure);
                    }
                    Err(err) => tally.request_failures.lock().unwrap().push(err.to_string()),
                }
            }
        }));
    }
    drop(to_verifier);

    let verifier = {
        let tally = tally.clone();
        let mut verifier = CachingVerifier {
            urls: urls.clone(),
            issuer: first.settings.issuer.clone(),
            audience: first.settings.default_audience.clone(),
            cache: None,
            fetches: 0,
        };
        tokio::spawn(async move {
            // Every token is verified when it arrives and once more 3 s later (2 s before it expires), so a key
            // that left the JWKS while its tokens lived is caught.
            let mut recheck: VecDeque<(Instant, String)> = VecDeque::new();
            let check = |kid_or_err: Result<String, String>| match kid_or_err {
                Ok(kid) => {
                    tally.verified.fetch_add(1, Ordering::SeqCst);
                    *tally.kids.lock().unwrap().entry(kid).or_default() += 1;
                }
                Err(err) => tally.verify_failures.lock().unwrap().push(err),
            };
            let mut open = true;
            while open || !recheck.is_empty() {
                let due = recheck.front().map(|(at, _)| *at + Duration::from_secs(3));
                let wait = due.map(|d| d.saturating_duration_since(Instant::now())).unwrap_or(Duration::from_secs(1));
                tokio::select! {
                    received = verifier_inbox.recv(), if open => match received {
                        Some((at, token)) => {
                            check(verifier.verify(&token).await);
                            recheck.push_back((at, token));
                        }
                        None => open = false,
                    },
                    _ = tokio::time::sleep(wait) => {
                        while recheck.front().is_some_and(|(at, _)| at.elapsed() >= Duration::from_secs(3)) {
                            let (_, token) = recheck.pop_front().unwrap();
                            check(verifier.verify(&token).await);
                        }
                    }
                }
            }
        })
    };

    let admin_token = || async { first.token_for(&operator, &[], None).await };
    // Real waits in this test: its verifier caches the JWKS for its real max-age and rechecks tokens before
    // they really expire, so the server's clock must be the real one.
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Publish on the first instance.
    let started = admin_post(&first, &admin_token().await, "/keys/rotate").await.expect_json(200);
    let new = started["published"]["kid"].as_str().expect("a key published").to_string();
    // Finish on the second: refused (waiting) until the key has been published long enough.
    until(Duration::from_secs(15), "the second instance activates the key once it is ready", || async {
        let report = admin_post(&second, &admin_token().await, "/keys/rotate").await.expect_json(200);
        !report["activated"].is_null()
    })
    .await;
    until(Duration::from_secs(20), "the retired key is pruned after its tokens expired", || async {
        let removed = admin_post(&first, &admin_token().await, "/keys/prune").await.expect_json(200)["removed"].clone();
        removed == serde_json::json!([old.as_str()])
    })
    .await;
    // Load goes on past the removal, until every cached JWKS has been refreshed without the old key.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    for requester in requesters {
        requester.await.unwrap();
    }
    verifier.await.unwrap();

    let request_failures = tally.request_failures.lock().unwrap().clone();
    let verify_failures = tally.verify_failures.lock().unwrap().clone();
    let kids = tally.kids.lock().unwrap().clone();
    let issued = tally.issued.load(Ordering::SeqCst);
    assert!(
        request_failures.is_empty(),
        "{} failed token requests: {:?}",
        request_failures.len(),
        &request_failures[..request_failures.len().min(5)]
    );
    assert!(
        verify_failures.is_empty(),
        "{} failed verifications: {:?}",
        verify_failures.len(),
        &verify_failures[..verify_failures.len().min(5)]
    );
    assert_eq!(tally.verified.load(Ordering::SeqCst), issued * 2, "every token verified twice");
    assert!(kids.get(&old).copied().unwrap_or(0) > 0 && kids.get(&new).copied().unwrap_or(0) > 0, "{kids:?}");
    assert!(issued > 100, "load was applied: {issued} tokens");
    eprintln!("rotation under load: {issued} tokens, verified twice each, by key {kids:?}");
    assert!(!self::kids(&second.jwks().await).contains(&old));
    second.stop().await;
    first.stop().await;
}
