//! The automatic rotation inside `serve`, run by exactly one instance at a time: each tick, the instance that
//! takes (or renews) the schedule's lease in the database looks at the keys and does what is due
//! ([`crate::keys::policy::scheduled_steps`]). The lease lasts three ticks, so when its holder stops another instance
//! takes over within that time. Every tick also retries a key ring reload that failed.

use std::sync::Arc;
use std::time::Duration;

use super::live_keys::LiveKeys;
use super::Registry;
use crate::keys::RotationSchedule;

pub async fn run(registry: Registry, schedule: Option<RotationSchedule>, tick: Duration, live: Arc<LiveKeys>) {
    let holder = format!("instance-{}", crate::credentials::random_base62(12));
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let (registry, holder, live) = (registry.clone(), holder.clone(), live.clone());
        let outcome = tokio::task::spawn_blocking(move || {
            live.reload_if_stale();
            let Some(schedule) = schedule else { return Ok(false) };
            // The unit of work applies what the step changed to this instance's key ring and read model.
            registry.key_schedule_step(&schedule, &holder, tick)
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
