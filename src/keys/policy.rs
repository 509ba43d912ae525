//! The rules of a signing key's life, as pure functions of the keys' states and dates and the time, so that
//! they are tested with a set clock: published → active → retired → removed.
//!
//! - A key is published (in the JWKS, not signing) for at least `publish_at_least` = max(JWKS max-age,
//!   10 minutes) before it may sign: by then every verifier's cached JWKS holds it (PyJWT caches 5 minutes,
//!   node `jose` 10, whatever the header says).
//! - Activation is one transaction: the new key becomes active, the old active one retired. Exactly one key
//!   is active at any time (the database refuses a second).
//! - A retired key stays in the JWKS for `keep_after_retire` = the longest token lifetime plus clock skew,
//!   so every token it signed expires before it goes; a key that never signed may go at once.

use chrono::{Duration, NaiveDateTime};
use serde::Serialize;

use super::Algorithm;

/// Minimum publication before activation, whatever the JWKS max-age: node `jose` caches for 10 minutes.
pub const MIN_PUBLISH_SECS: i64 = 600;
/// Room for clocks that disagree between instances, and for an instance that hears of a retirement a second
/// late and signs once more with the retired key.
pub const CLOCK_SKEW_SECS: i64 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    Published,
    Active,
    Retired,
    Removed,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Published => "published",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
            KeyState::Removed => "removed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "published" => Some(KeyState::Published),
            "active" => Some(KeyState::Active),
            "retired" => Some(KeyState::Retired),
            "removed" => Some(KeyState::Removed),
            _ => None,
        }
    }
}

/// A key's state and dates (no key material).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct KeyRecord {
    pub kid: String,
    pub alg: Algorithm,
    pub state: KeyState,
    #[serde(with = "crate::store::utc")]
    pub published_at: NaiveDateTime,
    #[serde(with = "crate::store::utc::option")]
    pub activated_at: Option<NaiveDateTime>,
    #[serde(with = "crate::store::utc::option")]
    pub retired_at: Option<NaiveDateTime>,
    #[serde(with = "crate::store::utc::option")]
    pub removed_at: Option<NaiveDateTime>,
}

/// The two bounds that make a rotation safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPolicy {
    pub publish_at_least: Duration,
    pub keep_after_retire: Duration,
}

impl KeyPolicy {
    /// The bounds for a JWKS `max-age` and the longest token lifetime the server issues.
    pub fn new(jwks_max_age_secs: u32, max_token_lifetime_secs: i64) -> Self {
        KeyPolicy {
            publish_at_least: Duration::seconds(i64::from(jwks_max_age_secs).max(MIN_PUBLISH_SECS)),
            keep_after_retire: Duration::seconds(max_token_lifetime_secs + CLOCK_SKEW_SECS),
        }
    }

    /// When a published key may sign.
    pub fn ready_at(&self, key: &KeyRecord) -> NaiveDateTime {
        key.published_at + self.publish_at_least
    }

    /// When a retired key may leave the JWKS: at once if it never signed.
    pub fn removable_at(&self, key: &KeyRecord) -> Option<NaiveDateTime> {
        match (key.state, key.retired_at) {
            (KeyState::Retired, Some(retired_at)) if key.activated_at.is_none() => Some(retired_at),
            (KeyState::Retired, Some(retired_at)) => Some(retired_at + self.keep_after_retire),
            _ => None,
        }
    }
}

/// Why a key change is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("key {kid} is {state}; only a published key can be activated")]
    NotPublished { kid: String, state: &'static str },
    #[error(
        "key {kid} has been published only since {published}; verifiers may not have fetched it yet. It may sign \
         from {ready} (published for max(JWKS max-age, 10 minutes)); --force activates it now"
    )]
    TooEarly { kid: String, published: String, ready: String },
    #[error("key {kid} is the active key: activate another key first (`keys activate` or `keys rotate`)")]
    RetiringActive { kid: String },
    #[error("key {kid} is {state}; only a published or active key can be retired")]
    NotRetirable { kid: String, state: &'static str },
}

/// Whether `key` may become the active key now.
pub fn check_activation(policy: &KeyPolicy, key: &KeyRecord, force: bool, now: NaiveDateTime) -> Result<(), RuleError> {
    if key.state != KeyState::Published {
        return Err(RuleError::NotPublished { kid: key.kid.clone(), state: key.state.as_str() });
    }
    let ready = policy.ready_at(key);
    if now < ready && !force {
        return Err(RuleError::TooEarly {
            kid: key.kid.clone(),
            published: crate::store::utc::format(&key.published_at),
            ready: crate::store::utc::format(&ready),
        });
    }
    Ok(())
}

/// Whether `key` may be retired: a published one (it never signed) may; the active one may not, or nothing
/// would sign.
pub fn check_retirement(key: &KeyRecord) -> Result<(), RuleError> {
    match key.state {
        KeyState::Published => Ok(()),
        KeyState::Active => Err(RuleError::RetiringActive { kid: key.kid.clone() }),
        other => Err(RuleError::NotRetirable { kid: key.kid.clone(), state: other.as_str() }),
    }
}

/// The retired keys that may leave the JWKS now.
pub fn due_for_removal<'a>(policy: &KeyPolicy, keys: &'a [KeyRecord], now: NaiveDateTime) -> Vec<&'a KeyRecord> {
    keys.iter().filter(|k| policy.removable_at(k).is_some_and(|at| at <= now)).collect()
}

/// One step of a rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Generate a key and publish it.
    Publish,
    /// Make this published key the signing key (the active one retires).
    Activate(String),
    /// Nothing to do before this time (a published key waits to be ready).
    WaitUntil(NaiveDateTime),
}

/// The next step of `keys rotate`: publish a key if none is published, activate the oldest published key once
/// it is ready (or at once with `force`), otherwise say when.
pub fn rotation_step(policy: &KeyPolicy, keys: &[KeyRecord], force: bool, now: NaiveDateTime) -> Step {
    let candidate = keys.iter().filter(|k| k.state == KeyState::Published).min_by_key(|k| k.published_at);
    match candidate {
        None => Step::Publish,
        Some(key) if force || policy.ready_at(key) <= now => Step::Activate(key.kid.clone()),
        Some(key) => Step::WaitUntil(policy.ready_at(key)),
    }
}

/// The automatic schedule inside `serve`: a new key every `every`, published `announce` before it signs, and
/// retired keys kept `keep` after their retirement (never less than the policy's bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationSchedule {
    pub every: Duration,
    pub announce: Duration,
    pub keep: Duration,
}

/// What the schedule does now: publish when the active key is within `announce` of its replacement, activate
/// once it is due and the published key is ready, and remove retired keys after `keep`.
pub fn scheduled_steps(
    policy: &KeyPolicy,
    schedule: &RotationSchedule,
    keys: &[KeyRecord],
    now: NaiveDateTime,
) -> (Option<Step>, Vec<String>) {
    let keep = schedule.keep.max(policy.keep_after_retire);
    let removals = keys
        .iter()
        .filter(|k| k.state == KeyState::Retired)
        .filter(|k| match (k.activated_at, k.retired_at) {
            (None, Some(_)) => true,
            (Some(_), Some(retired_at)) => retired_at + keep <= now,
            _ => false,
        })
        .map(|k| k.kid.clone())
        .collect();
    let Some(active) = keys.iter().find(|k| k.state == KeyState::Active) else { return (None, removals) };
    let replace_at = active.activated_at.unwrap_or(active.published_at) + schedule.every;
    let step = match rotation_step(policy, keys, false, now) {
        Step::Publish if now >= replace_at - schedule.announce => Some(Step::Publish),
        Step::Activate(kid) if now >= replace_at => Some(Step::Activate(kid)),
        _ => None,
    };
    (step, removals)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};

    fn t0() -> NaiveDateTime {
        chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap().naive_utc()
    }

    fn key(kid: &str, state: KeyState, published_at: NaiveDateTime) -> KeyRecord {
        KeyRecord {
            kid: kid.into(),
            alg: Algorithm::ES256,
            state,
            published_at,
            activated_at: None,
            retired_at: None,
            removed_at: None,
        }
    }

    #[test]
    fn the_publication_bound_is_the_longer_of_max_age_and_ten_minutes() {
        assert_eq!(KeyPolicy::new(300, 600).publish_at_least, Duration::minutes(10));
        assert_eq!(KeyPolicy::new(3600, 600).publish_at_least, Duration::hours(1));
        assert_eq!(KeyPolicy::new(300, 3600).keep_after_retire, Duration::seconds(3600 + CLOCK_SKEW_SECS));
    }

    #[test]
    fn a_key_signs_only_after_its_publication_bound_unless_forced() {
        let clock = ManualClock::at(t0());
        let policy = KeyPolicy::new(300, 600);
        let published = key("new", KeyState::Published, clock.now());
        clock.advance(Duration::minutes(9));
        let err = check_activation(&policy, &published, false, clock.now()).unwrap_err();
        assert!(matches!(err, RuleError::TooEarly { .. }), "{err}");
        check_activation(&policy, &published, true, clock.now()).expect("forced");
        clock.advance(Duration::minutes(1));
        check_activation(&policy, &published, false, clock.now()).expect("after 10 minutes");
        let active = KeyRecord { state: KeyState::Active, ..published.clone() };
        assert!(matches!(check_activation(&policy, &active, true, clock.now()), Err(RuleError::NotPublished { .. })));
    }

    #[test]
    fn the_active_key_is_not_retired_and_a_retired_one_stays_until_its_tokens_expired() {
        let clock = ManualClock::at(t0());
        let policy = KeyPolicy::new(300, 600);
        let mut old = key("old", KeyState::Active, clock.now());
        old.activated_at = Some(clock.now());
        assert!(matches!(check_retirement(&old), Err(RuleError::RetiringActive { .. })));
        check_retirement(&key("p", KeyState::Published, clock.now())).expect("a published key may retire");

        clock.advance(Duration::hours(1));
        old.state = KeyState::Retired;
        old.retired_at = Some(clock.now());
        let mut never_signed = key("never", KeyState::Retired, t0());
        never_signed.retired_at = Some(clock.now());
        let keys = vec![old.clone(), never_signed];
        let due: Vec<&str> = due_for_removal(&policy, &keys, clock.now()).iter().map(|k| k.kid.as_str()).collect();
        assert_eq!(due, ["never"], "a key that signed nothing may go at once");
        clock.advance(Duration::seconds(600 + CLOCK_SKEW_SECS - 1));
        assert_eq!(due_for_removal(&policy, &keys, clock.now()).len(), 1, "a token of the old key may still live");
        clock.advance(Duration::seconds(1));
        assert_eq!(due_for_removal(&policy, &keys, clock.now()).len(), 2);
    }

    #[test]
    fn rotate_publishes_then_waits_then_activates() {
        let clock = ManualClock::at(t0());
        let policy = KeyPolicy::new(300, 600);
        let mut keys = vec![key("old", KeyState::Active, clock.now())];
        assert_eq!(rotation_step(&policy, &keys, false, clock.now()), Step::Publish);
        keys.push(key("new", KeyState::Published, clock.now()));
        assert_eq!(rotation_step(&policy, &keys, false, clock.now()), Step::WaitUntil(t0() + Duration::minutes(10)));
        assert_eq!(rotation_step(&policy, &keys, true, clock.now()), Step::Activate("new".into()));
        clock.advance(Duration::minutes(10));
        assert_eq!(rotation_step(&policy, &keys, false, clock.now()), Step::Activate("new".into()));
    }

    #[test]
    fn the_schedule_announces_activates_and_removes_on_time() {
        let clock = ManualClock::at(t0());
        let policy = KeyPolicy::new(300, 600);
        let schedule =
            RotationSchedule { every: Duration::days(30), announce: Duration::days(2), keep: Duration::days(1) };
        let mut active = key("a", KeyState::Active, clock.now());
        active.activated_at = Some(clock.now());
        let mut keys = vec![active];
        clock.advance(Duration::days(27));
        assert_eq!(scheduled_steps(&policy, &schedule, &keys, clock.now()), (None, vec![]));
        clock.advance(Duration::days(1));
        assert_eq!(scheduled_steps(&policy, &schedule, &keys, clock.now()).0, Some(Step::Publish), "2 days before");
        keys.push(key("b", KeyState::Published, clock.now()));
        clock.advance(Duration::days(1));
        assert_eq!(scheduled_steps(&policy, &schedule, &keys, clock.now()).0, None, "published, not yet due");
        clock.advance(Duration::days(1));
        assert_eq!(scheduled_steps(&policy, &schedule, &keys, clock.now()).0, Some(Step::Activate("b".into())));
        keys[0].state = KeyState::Retired;
        keys[0].retired_at = Some(clock.now());
        keys[1].state = KeyState::Active;
        keys[1].activated_at = Some(clock.now());
        clock.advance(Duration::hours(23));
        assert_eq!(scheduled_steps(&policy, &schedule, &keys, clock.now()), (None, vec![]));
        clock.advance(Duration::hours(1));
        assert_eq!(scheduled_steps(&policy, &schedule, &keys, clock.now()), (None, vec!["a".to_string()]));
    }
}
