//! The automatic rotation inside `serve`, run by exactly one instance at a time: each tick, the instance that
//! takes (or renews) the schedule's lease in the database looks at the keys and does what is due
//! ([`crate::keys::policy::scheduled_steps`]). The lease lasts three ticks, so when its holder stops another instance
//! takes over within that time. Every tick also retries a key ring reload that failed.

use std::sync::Arc;
use std::time::Duration;

use super::live_keys::LiveKeys;
use super::signing_keys as stored;
use super::{Caller, RegistryResult};
use crate::keys::{KeyManager, RotationSchedule};
use crate::store::changes::{self, ChangeSink};
use crate::store::{leases, DbPool};

pub async fn run(
    pool: DbPool,
    keys: KeyManager,
    schedule: Option<RotationSchedule>,
    tick: Duration,
    sinks: Arc<dyn ChangeSink>,
    live: Arc<LiveKeys>,
) {
    let holder = format!("instance-{}", crate::credentials::random_base62(12));
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let (pool, keys, holder, sinks, live) =
            (pool.clone(), keys.clone(), holder.clone(), sinks.clone(), live.clone());
        let outcome = tokio::task::spawn_blocking(move || {
            live.reload_if_stale();
            let Some(schedule) = schedule else { return Ok(false) };
            changes::take_published();
            let result = step(&pool, &keys, &schedule, &holder, tick);
            sinks.apply(&changes::take_published());
            result
        })
        .await;
        match outcome {
            Ok(Ok(true)) => log::info!("key schedule: rotated as scheduled"),
            Ok(Ok(false)) => {}
            Ok(Err(err)) => log::warn!("key schedule failed: {err}"),
            Err(err) => log::warn!("key schedule task failed: {err}"),
        }
    }
}

/// One tick: whether this instance holds the lease, and if so what it changed.
fn step(
    pool: &DbPool,
    keys: &KeyManager,
    schedule: &RotationSchedule,
    holder: &str,
    tick: Duration,
) -> RegistryResult<bool> {
    let mut conn = pool.get()?;
    let now = keys.clock.now();
    if !leases::hold_for_ticks(&mut conn, leases::KEY_SCHEDULE, holder, now, tick)? {
        return Ok(false);
    }
    let caller = Caller::system(&format!("key-schedule:{holder}"));
    stored::run_schedule(&mut conn, &caller, &keys.kek, &keys.policy, schedule, now)
}
