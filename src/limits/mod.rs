//! Limits at the token endpoint (README, "Limits, quotas and throttling"): rate limits per client and per
//! partner ([`rate`]), the daily quota per partner ([`quota`]), and the throttle of failed client
//! authentications ([`throttle`]). Rate limits are per instance, in memory, unless the instances share a Redis
//! ([`shared`]); the throttle is per instance; the quota is counted in the database, so it holds across
//! instances. Each refusal is a [`Refusal`]: a `429` with `Retry-After` at the OAuth endpoints.

pub mod quota;
pub mod rate;
pub mod shared;
pub mod throttle;

use std::time::Duration;

pub use quota::QuotaBook;
pub use rate::RateLimits;
pub use shared::{Rates, StoreSettings};
pub use throttle::{AuthThrottle, ThrottleSettings};

/// Which limit refused a request. `as_str` is what the audit trail and the metrics record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    ClientRate,
    PartnerRate,
    Quota,
    Throttled,
}

impl Limit {
    pub const ALL: [Limit; 4] = [Limit::ClientRate, Limit::PartnerRate, Limit::Quota, Limit::Throttled];

    pub fn as_str(self) -> &'static str {
        match self {
            Limit::ClientRate => "client_rate_limited",
            Limit::PartnerRate => "partner_rate_limited",
            Limit::Quota => "quota_exceeded",
            Limit::Throttled => "auth_throttled",
        }
    }
}

/// A request refused by a limit, and how long until the same request can succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub limit: Limit,
    pub retry_after: Duration,
}

impl Refusal {
    /// `Retry-After` in whole seconds, rounded up (a client that waits that long is not refused again for the
    /// same reason), at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        let secs = self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0);
        secs.max(1)
    }

    pub fn description(&self) -> String {
        let wait = self.retry_after_secs();
        match self.limit {
            Limit::ClientRate => format!("the client's rate limit is exceeded; retry in {wait} s"),
            Limit::PartnerRate => format!("the partner's rate limit is exceeded; retry in {wait} s"),
            Limit::Quota => format!("the partner's daily token quota is used up; it resets in {wait} s"),
            Limit::Throttled => format!("too many failed authentications; retry in {wait} s"),
        }
    }
}

/// Every limit of one server.
pub struct Limits {
    pub rates: Rates,
    pub quota: std::sync::Arc<QuotaBook>,
    pub throttle: AuthThrottle,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let refusal = |ms| Refusal { limit: Limit::ClientRate, retry_after: Duration::from_millis(ms) };
        assert_eq!(refusal(0).retry_after_secs(), 1);
        assert_eq!(refusal(1).retry_after_secs(), 1);
        assert_eq!(refusal(1000).retry_after_secs(), 1);
        assert_eq!(refusal(1001).retry_after_secs(), 2);
    }
}
