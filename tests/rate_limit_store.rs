//! Rate limits shared through Redis (`--rate-limit-store`): two instances on one database and one Redis hold
//! a client's limit and a partner's limit for their sum, with the real `Retry-After`; an instance that cannot
//! reach Redis applies the limits alone (fails open to its own buckets), says so once in the log, and counts
//! every such request in `partnergate_rate_limit_store_errors_total`; and when Redis goes away mid-run
//! (refused, then black-holed, through a proxy the test cuts) no token request waits on it beyond the call's
//! bound, and the server reconnects by itself.
//!
//! These tests need Redis: they are `#[ignore]`d, and when run they fail if Redis cannot be reached.

mod common;

use common::proxy::{Proxy, BLACK_HOLE, PASS, REFUSE};
use common::*;
use partnergate::limits::StoreSettings;
use partnergate::registry::clients::CreatedClient;
use reqwest::Method;

const NEEDS_REDIS: &str = "needs Redis";

fn redis_url() -> String {
    std::env::var("PARTNERGATE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string())
}

/// The shared store of one test: the test Redis, under a key prefix no other test (or run) uses. Panics when
/// Redis does not answer, so that these tests never pass without it.
async fn test_store() -> StoreSettings {
    let url = redis_url();
    let client = redis::Client::open(url.as_str()).expect("a redis:// URL");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|err| panic!("{NEEDS_REDIS} at {url} (PARTNERGATE_TEST_REDIS_URL): {err}"));
    let pong: String = redis::cmd("PING").query_async(&mut connection).await.expect("PING");
    assert_eq!(pong, "PONG");
    let prefix = format!("pgtest:{}:", partnergate::credentials::random_base62(12));
    StoreSettings::parse(&url, &prefix).expect("valid store settings")
}

fn captured_log() -> &'static CapturedLog {
    static LOG: std::sync::OnceLock<CapturedLog> = std::sync::OnceLock::new();
    LOG.get_or_init(|| CapturedLog::install("partnergate=info"))
}

/// Asks alternately at `servers` until one refuses; how many were served, and the refusal.
async fn alternate_until_refused(servers: &[&TestServer], clients: &[&CreatedClient]) -> (usize, Reply) {
    for served in 0..100 {
        let reply = request_token(servers[served % servers.len()], clients[served % clients.len()]).await;
        if reply.status != 200 {
            return (served, reply);
        }
    }
    panic!("100 requests served: no limit holds");
}

#[tokio::test]
#[ignore = "needs Redis at 127.0.0.1:6379 (PARTNERGATE_TEST_REDIS_URL): cargo test -- --include-ignored, as .ci/run does"]
async fn two_instances_hold_a_client_limit_for_their_sum() {
    let store = test_store().await;
    let first = TestServer::start_with(|config| config.rate_limit_store = Some(store)).await;
    let client = first.seed("shared").role(&["s.read"]).create();
    let (_, operator) = first.operator().await;
    let path = format!("/clients/{}", client.client.id);
    // 60 a minute: a burst of 10, then one a second, for both instances together.
    admin_json(&first, &operator, Method::PATCH, &path, serde_json::json!({"rate_limit_per_minute": 60}))
        .await
        .expect_json(200);
    let second = TestServer::start_beside(&first).await;

    let (served, refused) = alternate_until_refused(&[&first, &second], &[&client]).await;
    assert_eq!(served, 10, "the burst of 10 counts on both instances together: {}", refused.dump());
    assert_eq!(limited(&refused), 1, "one a second: {}", refused.dump());
    assert!(refused.json()["error_description"].as_str().unwrap().contains("client's rate limit"));
    // Refused on the other instance too, until the refill.
    limited(&request_token(&first, &client).await);
    limited(&request_token(&second, &client).await);
    // A real second: the shared buckets run on Redis' own clock, which no test moves.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    request_token(&second, &client).await.expect_json(200);

    for server in [&first, &second] {
        assert_eq!(metric(server, "partnergate_rate_limit_store_up").await, Some(1.0));
        assert_eq!(metric(server, "partnergate_rate_limit_store_errors_total").await, Some(0.0));
    }
}

#[tokio::test]
#[ignore = "needs Redis at 127.0.0.1:6379 (PARTNERGATE_TEST_REDIS_URL): cargo test -- --include-ignored, as .ci/run does"]
async fn two_instances_hold_a_partner_limit_for_their_sum() {
    let store = test_store().await;
    let first = TestServer::start_with(|config| config.rate_limit_store = Some(store)).await;
    let one = first.seed("pooled").role(&["p.read"]).create();
    let other = first.client_of("pooled").roles(&["role-pooled"]).create();
    let (_, operator) = first.operator().await;
    // 36 a minute for the partner: a burst of 6, then one every 1.67 s, for both clients on both instances.
    admin_json(&first, &operator, Method::PATCH, "/partners/pooled", serde_json::json!({"rate_limit_per_minute": 36}))
        .await
        .expect_json(200);
    let second = TestServer::start_beside(&first).await;

    let (served, refused) = alternate_until_refused(&[&first, &second], &[&one, &one, &other, &other]).await;
    assert_eq!(served, 6, "the partner's burst counts both clients on both instances: {}", refused.dump());
    assert_eq!(limited(&refused), 2, "one every 1.67 s: {}", refused.dump());
    assert!(refused.json()["error_description"].as_str().unwrap().contains("partner's rate limit"));
    assert_eq!(metric(&first, "partnergate_rate_limit_store_errors_total").await, Some(0.0));
}

#[tokio::test]
#[ignore = "needs Redis at 127.0.0.1:6379 (PARTNERGATE_TEST_REDIS_URL): cargo test -- --include-ignored, as .ci/run does"]
async fn an_instance_that_cannot_reach_redis_applies_the_limits_alone_and_says_so() {
    let log = captured_log();
    let store = test_store().await;
    let first = TestServer::start_with(|config| config.rate_limit_store = Some(store.clone())).await;
    let client = first.seed("cut").role(&["c.read"]).create();
    let (_, operator) = first.operator().await;
    let path = format!("/clients/{}", client.client.id);
    admin_json(&first, &operator, Method::PATCH, &path, serde_json::json!({"rate_limit_per_minute": 60}))
        .await
        .expect_json(200);
    // The second instance's Redis is a closed port.
    let closed = format!("redis://127.0.0.1:{}", free_port());
    let cut_off = StoreSettings::parse(&closed, &store.key_prefix).unwrap();
    let second = TestServer::start_beside_with(&first, |config| config.rate_limit_store = Some(cut_off)).await;
    assert_eq!(metric(&second, "partnergate_rate_limit_store_up").await, Some(0.0));
    assert_eq!(metric(&first, "partnergate_rate_limit_store_up").await, Some(1.0));

    // The documented choice: fail open to the instance's own buckets. The second instance serves the burst of
    // 10 by itself, then refuses with the real wait, as an instance without the option would.
    let (served, refused) = alternate_until_refused(&[&second], &[&client]).await;
    assert_eq!(served, 10, "the local burst: {}", refused.dump());
    assert_eq!(limited(&refused), 1);
    assert_eq!(metric(&second, "partnergate_rate_limit_store_errors_total").await, Some(11.0), "every request counted");
    // The first instance, which reaches Redis, still has its shared burst: nothing was counted there.
    let (served, _) = alternate_until_refused(&[&first], &[&client]).await;
    assert_eq!(served, 10);
    assert_eq!(metric(&first, "partnergate_rate_limit_store_errors_total").await, Some(0.0));

    let port = closed.rsplit(':').next().unwrap();
    let warnings = log.text().lines().filter(|line| line.contains("cannot be reached") && line.contains(port)).count();
    assert_eq!(warnings, 1, "one warning per outage, not per request:\n{}", log.text());
}

#[tokio::test]
#[ignore = "needs Redis at 127.0.0.1:6379 (PARTNERGATE_TEST_REDIS_URL): cargo test -- --include-ignored, as .ci/run does"]
async fn redis_going_away_and_coming_back_mid_run_never_stalls_token_requests() {
    let log = captured_log();
    let store = test_store().await;
    let upstream = store.url.trim_start_matches("redis://").split('/').next().unwrap().to_string();
    let upstream: std::net::SocketAddr = tokio::net::lookup_host(upstream).await.unwrap().next().unwrap();
    let proxy = Proxy::start(upstream).await;
    let through = format!("redis://{}", proxy.addr);
    let proxied = StoreSettings::parse(&through, &store.key_prefix).unwrap();
    let server = TestServer::start_with(|config| config.rate_limit_store = Some(proxied)).await;
    let client = server.seed("flaky").role(&["f.read"]).create();
    let (_, operator) = server.operator().await;
    let path = format!("/clients/{}", client.client.id);
    // A burst of 1,000: this test is about the store going away, not about running into the limit.
    admin_json(&server, &operator, Method::PATCH, &path, serde_json::json!({"rate_limit_per_minute": 6000}))
        .await
        .expect_json(200);
    let errors = || async { metric(&server, "partnergate_rate_limit_store_errors_total").await.expect("listed") };
    let up = || async { metric(&server, "partnergate_rate_limit_store_up").await.expect("listed") };
    request_token(&server, &client).await.expect_json(200);
    assert_eq!((errors().await, up().await), (0.0, 1.0));

    for cut in [REFUSE, BLACK_HOLE] {
        proxy.set(cut).await;
        let before = errors().await;
        // Each request is answered (by the local buckets) without waiting on Redis for more than a call's
        // bound, whether Redis refuses or holds the connection without a word.
        for _ in 0..20 {
            let started = std::time::Instant::now();
            request_token(&server, &client).await.expect_json(200);
            let took = started.elapsed();
            assert!(took < std::time::Duration::from_secs(1), "a cut store stalls token requests: {took:?}");
        }
        assert!(errors().await >= before + 19.0, "every request decided without Redis counts");
        assert_eq!(up().await, 0.0);

        proxy.set(PASS).await;
        // Requests trigger the reconnection (at most one attempt a second); a few a second are enough.
        until(std::time::Duration::from_secs(5), "the server reconnects by itself", || async {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            request_token(&server, &client).await.expect_json(200);
            up().await == 1.0
        })
        .await;
        let after = errors().await;
        for _ in 0..3 {
            request_token(&server, &client).await.expect_json(200);
        }
        assert_eq!(errors().await, after, "requests go to Redis again");
    }

    let port = proxy.addr.port().to_string();
    let ours = |what: &str| log.text().lines().filter(|line| line.contains(what) && line.contains(&port)).count();
    assert_eq!(ours("cannot be reached"), 2, "one warning per outage:\n{}", log.text());
    assert_eq!(ours("answers again:"), 2, "one line when each outage ends:\n{}", log.text());
}
