//! Time, injected: domain rules take the time from a [`Clock`] so that tests can set it.
//!
//! Two readings: [`Clock::now`], the UTC time that is stored and compared with stored times, and
//! [`Clock::monotonic`], for in-memory limits that measure how much time passed (the rate limits' buckets, the
//! failed-authentication throttle): it never goes backwards on the system's clock, and a [`ManualClock`] moves
//! it with `advance`. What stays on [`std::time::Instant`] only measures latency or paces real I/O (a request's
//! deadline, the access log's timer, reconnect and poll intervals); each such place says so.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use chrono::{NaiveDateTime, SubsecRound, Utc};

pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current UTC time, truncated to microseconds so that what PostgreSQL stores equals what we computed.
    fn now(&self) -> NaiveDateTime;

    /// Time since a fixed origin of this clock, never smaller than an earlier reading: for durations that the
    /// server measures in memory, which a change of the system's wall time must not stretch or shrink.
    fn monotonic(&self) -> Duration;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> NaiveDateTime {
        Utc::now().naive_utc().trunc_subsecs(6)
    }

    fn monotonic(&self) -> Duration {
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        ORIGIN.get_or_init(Instant::now).elapsed()
    }
}

/// A clock that stands still until it is moved; for tests.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<Manual>>);

#[derive(Debug)]
struct Manual {
    now: NaiveDateTime,
    /// How far the clock has moved forward: its monotonic reading (moving it back does not lower it).
    moved: Duration,
}

impl ManualClock {
    pub fn at(at: NaiveDateTime) -> Self {
        ManualClock(Arc::new(Mutex::new(Manual { now: at, moved: Duration::ZERO })))
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut manual = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        manual.now += by;
        manual.moved += by.to_std().unwrap_or_default();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> NaiveDateTime {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).now
    }

    fn monotonic(&self) -> Duration {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).moved
    }
}

/// The shared handle services hold.
pub type SharedClock = Arc<dyn Clock>;

pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_both_readings_forward_only_when_told() {
        let clock = ManualClock::at(chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap().naive_utc());
        let (start, origin) = (clock.now(), clock.monotonic());
        assert_eq!((clock.now(), clock.monotonic()), (start, origin), "it stands still");
        clock.advance(chrono::Duration::milliseconds(1500));
        assert_eq!(clock.now() - start, chrono::Duration::milliseconds(1500));
        assert_eq!(clock.monotonic() - origin, Duration::from_millis(1500));
        clock.advance(chrono::Duration::seconds(-1));
        assert_eq!(clock.now() - start, chrono::Duration::milliseconds(500), "the wall time may go back");
        assert_eq!(clock.monotonic() - origin, Duration::from_millis(1500), "the monotonic reading does not");
    }

    #[test]
    fn the_system_clock_is_monotonic() {
        let first = SystemClock.monotonic();
        assert!(SystemClock.monotonic() >= first);
    }
}
