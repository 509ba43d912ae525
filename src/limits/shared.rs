//! Rate limits that hold for the sum of all instances (`--rate-limit-store redis://...`): the per-client and
//! per-partner limits of [`super::rate`], with the same numbers (N per minute, one every 60/N s, a burst of
//! N/6, at least 1; a changed limit starts a full bucket), kept in Redis instead of this instance's memory.
//!
//! Each check is one call of one Lua script (GCRA, sent with EVALSHA; the `redis` crate loads it again when
//! Redis has forgotten it) over one multiplexed connection that every worker shares. The script reads Redis'
//! own clock (`TIME`), so the instances' clocks do not matter, and checks both keys at once: the client's
//! (`<prefix>c:<client id>`) and the partner's (`<prefix>p:<partner id>`). A request takes a cell from both or
//! from neither: a client refused by its partner's limit has not used up its own. A key expires once its
//! bucket would be full again. The two keys of one call may hash to different slots: Redis Cluster is not
//! supported (one Redis, or a replicated primary).
//!
//! **When Redis cannot be reached** (refused, broken, or slower than [`CALL_TIMEOUT`]), the request is decided
//! by this instance's own in-memory buckets, as if the option were not set: it fails open to the per-instance
//! limits. A rate limit protects the service from a looping script, not a secret; refusing every token while
//! Redis is down would turn an outage of an optional store into an outage of the token endpoint for every
//! partner, whereas the per-instance buckets still stop a loop (at most K times the limit over K instances).
//! Each such request counts in `partnergate_rate_limit_store_errors_total`, `partnergate_rate_limit_store_up`
//! is 0 until Redis answers again, and the log says so once when the outage begins and once when it ends.
//! The connection is made again in the background, at most one attempt a second: no request waits for it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus::{IntCounter, IntGauge};
use redis::aio::MultiplexedConnection;

use super::rate::RateLimits;
use super::{Limit, Refusal};
use crate::readmodel::ClientSnapshot;

/// The longest a token request waits for Redis before it is decided by the local buckets.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(100);
/// The longest a (background) connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// At most one connection attempt this often while Redis is unreachable.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// GCRA over two keys. KEYS: the client's, the partner's. ARGV: their limits per minute (0: none). Answers
/// `{0, 0}` (allowed: a cell taken from each limited key), `{1, wait}` (the client's limit refuses) or
/// `{2, wait}` (the partner's limit refuses), `wait` in microseconds; a refusal takes nothing. Each key is a
/// hash: `tat` (the theoretical arrival time, in microseconds of Redis' clock) and `n` (the limit it was
/// counted under: another limit starts a full bucket, as the in-memory buckets do).
const SCRIPT: &str = r#"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local function look(key, n)
  local period = math.floor(60000000 / n)
  local burst = math.max(1, math.ceil(n / 6))
  local stored = redis.call('HMGET', key, 'tat', 'n')
  local tat = tonumber(stored[1])
  if tat == nil or tonumber(stored[2]) ~= n or tat < now then
    tat = now
  end
  local next_tat = tat + period
  return next_tat, next_tat - now - burst * period
end
local function take(key, n, next_tat)
  redis.call('HSET', key, 'tat', string.format('%d', next_tat), 'n', string.format('%d', n))
  redis.call('PEXPIRE', key, string.format('%d', math.ceil((next_tat - now) / 1000) + 1000))
end
local client_n, partner_n = tonumber(ARGV[1]), tonumber(ARGV[2])
local client_tat, partner_tat, wait
if client_n > 0 then
  client_tat, wait = look(KEYS[1], client_n)
  if wait > 0 then return {1, wait} end
end
if partner_n > 0 then
  partner_tat, wait = look(KEYS[2], partner_n)
  if wait > 0 then return {2, wait} end
end
if client_n > 0 then take(KEYS[1], client_n, client_tat) end
if partner_n > 0 then take(KEYS[2], partner_n, partner_tat) end
return {0, 0}
"#;

/// Where the shared buckets live (`--rate-limit-store`, `--rate-limit-key-prefix`).
#[derive(Clone)]
pub struct StoreSettings {
    /// `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]`.
    pub url: String,
    /// Put before every key, so that installations (or tests) sharing one Redis count apart.
    pub key_prefix: String,
}

impl StoreSettings {
    /// Checks the URL's form (not whether Redis answers: that may change while the server runs).
    pub fn parse(url: &str, key_prefix: &str) -> Result<Self, String> {
        let shown = crate::redact::database(url).into_owned();
        if !url.starts_with("redis://") {
            return Err(format!("--rate-limit-store {shown}: only redis://HOST[:PORT][/DB] is supported"));
        }
        redis::Client::open(url).map_err(|err| format!("--rate-limit-store {shown}: {err}"))?;
        Ok(StoreSettings { url: url.to_string(), key_prefix: key_prefix.to_string() })
    }
}

impl std::fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSettings")
            .field("url", &crate::redact::database(&self.url))
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

/// The store's side of the metrics: the requests decided without it, and whether it answered last.
#[derive(Clone)]
pub struct StoreMetrics {
    pub errors: IntCounter,
    pub up: IntGauge,
}

/// The rate limits of one server: per instance in memory (the default), or shared through Redis.
pub enum Rates {
    Local(RateLimits),
    Shared(SharedRateLimits),
}

pub struct SharedRateLimits {
    /// The same limits in this instance's memory: what decides while Redis cannot be reached.
    local: RateLimits,
    key_prefix: String,
    script: redis::Script,
    link: Arc<Link>,
    errors: IntCounter,
}

impl SharedRateLimits {
    /// Connects (waiting at most [`CONNECT_TIMEOUT`]); a Redis that cannot be reached yet does not stop the
    /// server: it starts on its local buckets and connects in the background.
    pub async fn connect(settings: &StoreSettings, local: RateLimits, metrics: StoreMetrics) -> Result<Self, String> {
        let shown = crate::redact::database(&settings.url).into_owned();
        let client = redis::Client::open(settings.url.as_str()).map_err(|err| format!("{shown}: {err}"))?;
        metrics.up.set(0);
        let link = Arc::new(Link {
            client,
            shown,
            connection: Mutex::new(None),
            generation: AtomicU64::new(0),
            connecting: AtomicBool::new(true),
            down: AtomicBool::new(false),
            epoch: Instant::now(),
            last_attempt_ms: AtomicU64::new(0),
            runtime: tokio::runtime::Handle::current(),
            up: metrics.up,
        });
        link.connect().await;
        Ok(SharedRateLimits {
            local,
            key_prefix: settings.key_prefix.clone(),
            script: redis::Script::new(SCRIPT),
            link,
            errors: metrics.errors,
        })
    }

    pub async fn check(&self, client: &ClientSnapshot) -> Result<(), Refusal> {
        let client_limit = self.local.client_limit(client);
        let partner_limit = self.local.partner_limit(client);
        if client_limit == 0 && partner_limit == 0 {
            return Ok(());
        }
        match self.ask(client, client_limit, partner_limit).await {
            Ok(decision) => decision,
            Err(failure) => {
                self.errors.inc();
                if let Some((generation, cause)) = failure {
                    self.link.call_failed(generation, &cause);
                }
                self.local.check(client)
            }
        }
    }

    /// The script's decision; else `None` when there is no connection (being made again), or the failed
    /// connection's generation and the cause.
    async fn ask(
        &self,
        client: &ClientSnapshot,
        client_limit: u32,
        partner_limit: u32,
    ) -> Result<Decision, Option<(u64, String)>> {
        let Some((generation, mut connection)) = self.link.connection() else {
            return Err(None);
        };
        let failed = |cause: String| Some((generation, cause));
        let mut call = self.script.prepare_invoke();
        call.key(format!("{}c:{}", self.key_prefix, client.client_id))
            .key(format!("{}p:{}", self.key_prefix, client.partner_id))
            .arg(client_limit)
            .arg(partner_limit);
        let answer: (i64, i64) = tokio::time::timeout(CALL_TIMEOUT, call.invoke_async(&mut connection))
            .await
            .map_err(|_| failed(format!("no answer within {} ms", CALL_TIMEOUT.as_millis())))?
            .map_err(|err| failed(err.to_string()))?;
        self.link.answered();
        decision(answer).map_err(failed)
    }
}

type Decision = Result<(), Refusal>;

/// The script's answer as a decision.
fn decision((verdict, wait_micros): (i64, i64)) -> Result<Decision, String> {
    let refusal = |limit| Err(Refusal { limit, retry_after: Duration::from_micros(wait_micros.max(0) as u64) });
    match verdict {
        0 => Ok(Ok(())),
        1 => Ok(refusal(Limit::ClientRate)),
        2 => Ok(refusal(Limit::PartnerRate)),
        other => Err(format!("unexpected answer {other} from the rate-limit script")),
    }
}

/// The one connection to Redis, made again in the background after a failure.
struct Link {
    client: redis::Client,
    /// The URL without its password, for the log.
    shown: String,
    /// The connection and its generation (each new connection gets the next one), so that a call that failed
    /// on an older connection does not drop a newer one.
    connection: Mutex<Option<(u64, MultiplexedConnection)>>,
    generation: AtomicU64,
    connecting: AtomicBool,
    /// Between a failure and the next answer: the outage is logged once, at its start and at its end.
    down: AtomicBool,
    /// On the system's monotonic time, not the server's clock: it paces real connection attempts, which a
    /// test's standing manual clock must not stop.
    epoch: Instant,
    last_attempt_ms: AtomicU64,
    /// The server's runtime, where the connection's driver task lives.
    runtime: tokio::runtime::Handle,
    up: IntGauge,
}

impl Link {
    /// The connection if there is one; else a background attempt to make it (at most one a second).
    fn connection(self: &Arc<Self>) -> Option<(u64, MultiplexedConnection)> {
        if let Some(current) = self.connection.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            return Some(current.clone());
        }
        let now_ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_attempt_ms.load(Ordering::Relaxed);
        let due = now_ms.saturating_sub(last) >= RETRY_EVERY.as_millis() as u64;
        if due && !self.connecting.swap(true, Ordering::AcqRel) {
            let link = self.clone();
            self.runtime.spawn(async move { link.connect().await });
        }
        None
    }

    /// One connection attempt; `connecting` is set by the caller and cleared here.
    async fn connect(&self) {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT));
        let attempt = self.client.get_multiplexed_async_connection_with_config(&config);
        let result = match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err(format!("no connection within {} s", CONNECT_TIMEOUT.as_secs())),
        };
        let now_ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_attempt_ms.store(now_ms, Ordering::Relaxed);
        match result {
            Ok(connection) => {
                let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
                *self.connection.lock().unwrap_or_else(|p| p.into_inner()) = Some((generation, connection));
                self.answered();
            }
            Err(cause) => self.went_down(&cause),
        }
        self.connecting.store(false, Ordering::Release);
    }

    fn answered(&self) {
        if self.down.load(Ordering::Relaxed) && self.down.swap(false, Ordering::AcqRel) {
            log::info!("the rate-limit store {} answers again: rate limits hold across instances", self.shown);
        }
        self.up.set(1);
    }

    /// A call failed on the connection of `generation`: that connection (broken, or too slow to be trusted) is
    /// dropped, unless a newer one has replaced it already (then the failure is old news).
    fn call_failed(&self, generation: u64, cause: &str) {
        let mut current = self.connection.lock().unwrap_or_else(|p| p.into_inner());
        if current.as_ref().is_some_and(|(current, _)| *current == generation) {
            current.take();
            drop(current);
            self.went_down(cause);
        }
    }

    /// Redis cannot be reached: said once per outage.
    fn went_down(&self, cause: &str) {
        self.up.set(0);
        if !self.down.swap(true, Ordering::AcqRel) {
            log::warn!(
                "the rate-limit store {} cannot be reached ({}): each instance applies the rate limits alone, in \
                 memory, until it answers again",
                self.shown,
                crate::redact::database(cause)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readmodel::snapshot::test_snapshot;

    pub(crate) fn test_redis_url() -> String {
        std::env::var("PARTNERGATE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string())
    }

    fn metrics() -> StoreMetrics {
        StoreMetrics { errors: IntCounter::new("errors", "errors").unwrap(), up: IntGauge::new("up", "up").unwrap() }
    }

    async fn shared(default_client_per_minute: u32) -> (SharedRateLimits, StoreMetrics) {
        let prefix = format!("pgtest:{}:", crate::credentials::random_base62(12));
        let settings = StoreSettings::parse(&test_redis_url(), &prefix).unwrap();
        let metrics = metrics();
        let limits = SharedRateLimits::connect(
            &settings,
            RateLimits::new(default_client_per_minute, crate::clock::system()),
            metrics.clone(),
        )
        .await;
        let limits = limits.unwrap();
        assert_eq!(metrics.up.get(), 1, "Redis must answer at {} for this test", test_redis_url());
        (limits, metrics)
    }

    #[tokio::test]
    #[ignore = "needs Redis at 127.0.0.1:6379 (PARTNERGATE_TEST_REDIS_URL): cargo test -- --include-ignored, as .ci/run does"]
    async fn the_script_counts_like_the_in_memory_buckets() {
        let (limits, metrics) = shared(0).await;
        let mut client = test_snapshot("pgc_a", "acme", crate::store::now());
        client.rate_limit_per_minute = Some(60);
        for _ in 0..10 {
            limits.check(&client).await.unwrap();
        }
        let refusal = limits.check(&client).await.unwrap_err();
        assert_eq!(refusal.limit, Limit::ClientRate);
        assert!(refusal.retry_after <= Duration::from_secs(1), "one a second: {:?}", refusal.retry_after);
        assert!(refusal.retry_after > Duration::from_millis(500), "one a second: {:?}", refusal.retry_after);
        assert_eq!(refusal.retry_after_secs(), 1);

        // A changed limit takes effect at once, with a full bucket.
        client.rate_limit_per_minute = Some(6);
        limits.check(&client).await.unwrap();
        let refusal = limits.check(&client).await.unwrap_err();
        assert!(refusal.retry_after > Duration::from_secs(9), "one every 10 s: {:?}", refusal.retry_after);
        assert_eq!(refusal.retry_after_secs(), 10);

        // A partner's refusal takes nothing from the client's bucket.
        let mut first = test_snapshot("pgc_b", "beta", crate::store::now());
        first.rate_limit_per_minute = Some(12);
        first.partner_rate_limit_per_minute = Some(6);
        let mut second = test_snapshot("pgc_c", "beta", crate::store::now());
        second.partner_rate_limit_per_minute = Some(6);
        limits.check(&second).await.unwrap();
        for _ in 0..3 {
            assert_eq!(limits.check(&first).await.unwrap_err().limit, Limit::PartnerRate);
        }
        first.partner_rate_limit_per_minute = None;
        limits.check(&first).await.unwrap();
        limits.check(&first).await.unwrap();
        assert_eq!(limits.check(&first).await.unwrap_err().limit, Limit::ClientRate, "a burst of 2");
        assert_eq!(metrics.errors.get(), 0);
    }

    #[tokio::test]
    async fn an_unreachable_store_leaves_the_decision_to_the_local_buckets_and_counts_it() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let settings = StoreSettings::parse(&format!("redis://127.0.0.1:{port}"), "pg:rl:").unwrap();
        let metrics = metrics();
        let limits = SharedRateLimits::connect(&settings, RateLimits::new(0, crate::clock::system()), metrics.clone())
            .await
            .unwrap();
        assert_eq!(metrics.up.get(), 0);
        let mut client = test_snapshot("pgc_a", "acme", crate::store::now());
        client.rate_limit_per_minute = Some(60);
        for _ in 0..10 {
            limits.check(&client).await.unwrap();
        }
        assert_eq!(limits.check(&client).await.unwrap_err().limit, Limit::ClientRate);
        assert_eq!(metrics.errors.get(), 11);
        assert!(limits.link.down.load(Ordering::Relaxed));
    }

    #[test]
    fn only_redis_urls_are_taken_and_passwords_are_not_shown() {
        assert!(StoreSettings::parse("redis://127.0.0.1:6379/2", "p:").is_ok());
        let err = StoreSettings::parse("rediss://:hunter2@cache:6380", "p:").unwrap_err();
        assert!(err.contains("only redis://") && !err.contains("hunter2"), "{err}");
        let err = StoreSettings::parse("redis://:hunter2@cache:port", "p:").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
        let settings = StoreSettings::parse("redis://:hunter2@cache:6379", "p:").unwrap();
        assert!(!format!("{settings:?}").contains("hunter2"));
    }
}
