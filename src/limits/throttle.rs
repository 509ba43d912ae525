//! The throttle of failed client authentications, so that guessing secrets is impractical while the holder
//! of a client's secret is never locked out by somebody else's failures.
//!
//! - Per source address: more failures within a minute than the address budget, and the address is refused
//!   (any client id, valid credentials or not) for [`BLOCK`]. An attacker's own address stops.
//! - Per client id: more failures within a minute than the client budget, from however many addresses, and
//!   the client id is under attack for [`BLOCK`]: requests for it are refused from addresses that failed
//!   within the last [`FAILURE_MEMORY`], and served as usual from every other address. A distributed attacker
//!   gets one guess per address per window; the holder, whose requests do not fail, is never refused.
//!
//! The source address is the TCP peer, or `X-Forwarded-For` behind a trusted proxy (`http::client_address`).
//! Several callers behind one address the server cannot see through share that address's budget.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::{Limit, Refusal};

/// How long an address over its budget, or a client id under attack, stays so.
pub const BLOCK: Duration = Duration::from_secs(60);
/// How long an address that failed counts as suspect for a client id under attack.
pub const FAILURE_MEMORY: Duration = Duration::from_secs(600);
/// Forgotten entries are swept every this many failures, which bounds memory under a spray of addresses.
const SWEEP_EVERY: u64 = 4096;

#[derive(Debug, Clone, Copy)]
pub struct ThrottleSettings {
    /// Failures per minute an address may have; 0: addresses are not throttled.
    pub address_failures_per_minute: u32,
    /// Failures per minute a client id may have from all addresses; 0: client ids are not throttled.
    pub client_failures_per_minute: u32,
}

impl ThrottleSettings {
    pub fn off() -> Self {
        ThrottleSettings { address_failures_per_minute: 0, client_failures_per_minute: 0 }
    }
}

fn budget<K: Hash + Eq + Clone>(per_minute: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)))
}

#[derive(Default)]
struct Marks {
    blocked_addresses: HashMap<IpAddr, Instant>,
    attacked_clients: HashMap<String, Instant>,
    last_failure: HashMap<IpAddr, Instant>,
}

pub struct AuthThrottle {
    addresses: Option<DefaultKeyedRateLimiter<IpAddr>>,
    clients: Option<DefaultKeyedRateLimiter<String>>,
    marks: Mutex<Marks>,
    failures: AtomicU64,
}

impl AuthThrottle {
    pub fn new(settings: ThrottleSettings) -> Self {
        AuthThrottle {
            addresses: budget(settings.address_failures_per_minute),
            clients: budget(settings.client_failures_per_minute),
            marks: Mutex::default(),
            failures: AtomicU64::new(0),
        }
    }

    fn enabled(&self) -> bool {
        self.addresses.is_some() || self.clients.is_some()
    }

    fn marks(&self) -> std::sync::MutexGuard<'_, Marks> {
        self.marks.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Before authenticating: refuses a blocked address, and a suspect address asking for a client id under
    /// attack.
    pub fn check(&self, address: Option<IpAddr>, client_id: &str) -> Result<(), Refusal> {
        if !self.enabled() {
            return Ok(());
        }
        let now = Instant::now();
        let marks = self.marks();
        let refused = |until: Instant| Refusal { limit: Limit::Throttled, retry_after: until - now };
        if let Some(address) = address {
            if let Some(&until) = marks.blocked_addresses.get(&address).filter(|until| **until > now) {
                return Err(refused(until));
            }
            let attacked = marks.attacked_clients.get(client_id).copied().filter(|until| *until > now);
            let suspect = marks.last_failure.get(&address).is_some_and(|at| now - *at < FAILURE_MEMORY);
            if let (Some(until), true) = (attacked, suspect) {
                return Err(refused(until));
            }
        }
        Ok(())
    }

    /// After a failed authentication from `address` for `client_id`.
    pub fn failed(&self, address: Option<IpAddr>, client_id: &str) {
        if !self.enabled() {
            return;
        }
        let now = Instant::now();
        let address_over = address.is_some_and(|a| self.addresses.as_ref().is_some_and(|b| b.check_key(&a).is_err()));
        let client_over = self.clients.as_ref().is_some_and(|b| b.check_key(&client_id.to_string()).is_err());
        let mut marks = self.marks();
        if let Some(address) = address {
            marks.last_failure.insert(address, now);
            if address_over {
                marks.blocked_addresses.insert(address, now + BLOCK);
            }
        }
        if client_over {
            marks.attacked_clients.insert(client_id.to_string(), now + BLOCK);
        }
        if self.failures.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            marks.blocked_addresses.retain(|_, until| *until > now);
            marks.attacked_clients.retain(|_, until| *until > now);
            marks.last_failure.retain(|_, at| now - *at < FAILURE_MEMORY);
            drop(marks);
            self.addresses.iter().for_each(|b| b.retain_recent());
            self.clients.iter().for_each(|b| b.retain_recent());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([192, 0, 2, last]))
    }

    #[test]
    fn an_address_over_its_budget_is_blocked_for_every_client_id() {
        let throttle =
            AuthThrottle::new(ThrottleSettings { address_failures_per_minute: 3, client_failures_per_minute: 0 });
        for _ in 0..3 {
            throttle.check(ip(1), "pgc_a").unwrap();
            throttle.failed(ip(1), "pgc_a");
        }
        throttle.check(ip(1), "pgc_a").unwrap();
        throttle.failed(ip(1), "pgc_a");
        let refusal = throttle.check(ip(1), "pgc_other").unwrap_err();
        assert_eq!(refusal.limit, Limit::Throttled);
        assert!(refusal.retry_after > BLOCK - Duration::from_secs(5));
        throttle.check(ip(2), "pgc_a").unwrap();
    }

    #[test]
    fn a_client_id_under_attack_still_serves_addresses_that_did_not_fail() {
        let throttle =
            AuthThrottle::new(ThrottleSettings { address_failures_per_minute: 0, client_failures_per_minute: 5 });
        for attacker in 10..20 {
            throttle.failed(ip(attacker), "pgc_a");
        }
        assert_eq!(throttle.check(ip(10), "pgc_a").unwrap_err().limit, Limit::Throttled);
        assert_eq!(throttle.check(ip(19), "pgc_a").unwrap_err().limit, Limit::Throttled);
        throttle.check(ip(1), "pgc_a").expect("the holder's address never failed");
        throttle.check(ip(10), "pgc_b").expect("only the attacked client id is guarded");
    }
}
