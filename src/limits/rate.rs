//! Token buckets per client and per partner (`governor`). A limit of N per minute refills one token every
//! 60/N seconds and holds at most a sixth of a minute's worth (N/6, at least 1), so a client may burst for
//! ten seconds' worth of its rate and no more. Buckets live in this instance's memory: with K instances
//! behind a load balancer that spreads evenly, a client gets up to K times its limit; set limits to
//! (intended rate / K) to hold the total, or give the instances a shared store ([`super::shared`]).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use super::{Limit, Refusal};
use crate::readmodel::ClientSnapshot;

struct Bucket {
    per_minute: u32,
    limiter: Arc<DefaultDirectRateLimiter>,
}

/// Buckets by id, each made for the limit it was made with; a changed limit starts a new bucket.
#[derive(Default)]
struct Buckets(Mutex<HashMap<String, Bucket>>);

impl Buckets {
    fn check(&self, id: &str, per_minute: u32, limit: Limit) -> Result<(), Refusal> {
        let limiter = {
            let mut buckets = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            match buckets.get(id) {
                Some(bucket) if bucket.per_minute == per_minute => bucket.limiter.clone(),
                _ => {
                    let limiter = Arc::new(RateLimiter::direct(quota(per_minute)));
                    buckets.insert(id.to_string(), Bucket { per_minute, limiter: limiter.clone() });
                    limiter
                }
            }
        };
        limiter.check().map_err(|not_until| Refusal {
            limit,
            retry_after: not_until.wait_time_from(DefaultClock::default().now()),
        })
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
    pub fn new(default_client_per_minute: u32) -> Self {
        RateLimits { default_client_per_minute, clients: Buckets::default(), partners: Buckets::default() }
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
    use crate::readmodel::snapshot::test_snapshot;

    #[test]
    fn a_client_gets_its_burst_then_waits_for_the_refill() {
        let limits = RateLimits::new(0);
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
    fn the_server_default_applies_without_an_own_limit_and_partners_share_a_bucket() {
        let limits = RateLimits::new(6);
        let client = test_snapshot("pgc_a", "acme", crate::store::now());
        limits.check(&client).unwrap();
        let refusal = limits.check(&client).unwrap_err();
        assert!(refusal.retry_after > Duration::from_secs(8), "6/min is one per 10 s: {:?}", refusal.retry_after);

        let unlimited = RateLimits::new(0);
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
