//! Token buckets per client and per partner (`governor`). A limit of N per minute refills one token every
//! 60/N seconds and holds at most a sixth of a minute's worth (N/6, at least 1), so a client may burst for
//! ten seconds' worth of its rate and no more. Buckets live in this instance's memory: with K instances
//! behind a load balancer that spreads evenly, a client gets up to K times its limit; set limits to
//! (intended rate / K) to hold the total, or give the instances a shared store ([`super::shared`]).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::Clock as _;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use super::{Limit, Refusal};
use crate::clock::SharedClock;
use crate::readmodel::ClientSnapshot;

/// The server's clock as `governor` reads it: its monotonic reading, so that a test's manual clock refills
/// the buckets.
#[derive(Debug, Clone)]
struct BucketClock(SharedClock);

impl governor::clock::Clock for BucketClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.0.monotonic()
    }
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, BucketClock, NoOpMiddleware<Duration>>;

struct Bucket {
    per_minute: u32,
    limiter: Arc<Limiter>,
}

/// Buckets by id, each made for the limit it was made with; a changed limit starts a new bucket.
struct Buckets {
    clock: BucketClock,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Buckets {
    fn new(clock: SharedClock) -> Self {
        Buckets { clock: BucketClock(clock), buckets: Mutex::default() }
    }

    fn check(&self, id: &str, per_minute: u32, limit: Limit) -> Result<(), Refusal> {
        let limiter = {
            let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            match buckets.get(id) {
                Some(bucket) if bucket.per_minute == per_minute => bucket.limiter.clone(),
                _ => {
                    let limiter = Arc::new(RateLimiter::direct_with_clock(quota(per_minute), self.clock.clone()));
                    buckets.insert(id.to_string(), Bucket { per_minute, limiter: limiter.clone() });
                    limiter
                }
            }
        };
        limiter.check().map_err(|not_until| Refusal { limit, retry_after: not_until.wait_time_from(self.clock.now()) })
    }
}

/// N per minute, refilled evenly, with a burst of N/6 (at least 1).
fn quota(per_minute: u32) -> Quota {
    let per_minute = per_minute.max(1);
    let burst = NonZeroU32::new(per_minute.div_ceil(6)).unwrap_or(NonZeroU32::MIN);
    let period = Duration::from_secs(60) / per_minute;
    Quota::with_period(period.max(Duration::from_nanos(1))).expect("a positive period").allow_burst(burst)
}

pub struct RateLimits {
    /// Per minute for clients without their own limit; 0: no limit.
    default_client_per_minute: u32,
    clients: Buckets,
    partners: Buckets,
}

impl RateLimits {
    /// Buckets on `clock` (the server's).
    pub fn new(default_client_per_minute: u32, clock: SharedClock) -> Self {
        RateLimits { default_client_per_minute, clients: Buckets::new(clock.clone()), partners: Buckets::new(clock) }
    }

    /// The client's own limit per minute, else the server's default; 0: none.
    pub fn client_limit(&self, client: &ClientSnapshot) -> u32 {
        client.rate_limit_per_minute.map_or(self.default_client_per_minute, |n| n.max(1) as u32)
    }

    /// The partner's limit per minute; 0: none.
    pub fn partner_limit(&self, client: &ClientSnapshot) -> u32 {
        client.partner_rate_limit_per_minute.map_or(0, |n| n.max(1) as u32)
    }

    /// Takes one token request from the client's bucket, then from its partner's.
    pub fn check(&self, client: &ClientSnapshot) -> Result<(), Refusal> {
        let client_limit = self.client_limit(client);
        if client_limit > 0 {
            self.clients.check(&client.client_id, client_limit, Limit::ClientRate)?;
        }
        let partner_limit = self.partner_limit(client);
        if partner_limit > 0 {
            self.partners.check(&client.partner_id, partner_limit, Limit::PartnerRate)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock as _;
    use crate::readmodel::snapshot::test_snapshot;

    #[test]
    fn a_client_gets_its_burst_then_waits_for_the_refill() {
        let limits = RateLimits::new(0, crate::clock::system());
        let mut client = test_snapshot("pgc_a", "acme", crate::store::now());
        client.rate_limit_per_minute = Some(60);
        for _ in 0..10 {
            limits.check(&client).unwrap();
        }
        let refusal = limits.check(&client).unwrap_err();
        assert_eq!(refusal.limit, Limit::ClientRate);
        assert!(refusal.retry_after <= Duration::from_secs(1), "one token a second: {:?}", refusal.retry_after);
        assert_eq!(refusal.retry_after_secs(), 1);
    }

    #[test]
    fn the_buckets_refill_as_the_server_clock_moves() {
        let clock = crate::clock::ManualClock::at(crate::store::now());
        let limits = RateLimits::new(60, std::sync::Arc::new(clock.clone()));
        let client = test_snapshot("pgc_a", "acme", clock.now());
        for _ in 0..10 {
            limits.check(&client).unwrap();
        }
        assert_eq!(limits.check(&client).unwrap_err().retry_after, Duration::from_secs(1), "the clock stands still");
        clock.advance(chrono::Duration::milliseconds(999));
        assert_eq!(limits.check(&client).unwrap_err().retry_after, Duration::from_millis(1));
        clock.advance(chrono::Duration::milliseconds(1));
        limits.check(&client).expect("one token a second");
        limits.check(&client).unwrap_err();
        clock.advance(chrono::Duration::seconds(60));
        for _ in 0..10 {
            limits.check(&client).expect("a full burst again, no more");
        }
        limits.check(&client).unwrap_err();
    }

    #[test]
    fn the_server_default_applies_without_an_own_limit_and_partners_share_a_bucket() {
        let limits = RateLimits::new(6, crate::clock::system());
        let client = test_snapshot("pgc_a", "acme", crate::store::now());
        limits.check(&client).unwrap();
        let refusal = limits.check(&client).unwrap_err();
        assert!(refusal.retry_after > Duration::from_secs(8), "6/min is one per 10 s: {:?}", refusal.retry_after);

        let unlimited = RateLimits::new(0, crate::clock::system());
        let mut first = test_snapshot("pgc_b", "beta", crate::store::now());
        first.partner_rate_limit_per_minute = Some(12);
        let mut second = test_snapshot("pgc_c", "beta", crate::store::now());
        second.partner_rate_limit_per_minute = Some(12);
        unlimited.check(&first).unwrap();
        unlimited.check(&second).unwrap();
        assert_eq!(unlimited.check(&first).unwrap_err().limit, Limit::PartnerRate);
        for _ in 0..100 {
            unlimited.check(&test_snapshot("pgc_d", "gamma", crate::store::now())).unwrap();
        }
    }
}
