//! The throttle of failed client authentications, so that guessing secrets is impractical while the holder
//! of a client's secret is never locked out by somebody else's failures.
//!
//! - Per source address: more failures within a minute than the address budget, and the address is refused
//!   (any client id, valid credentials or not) for [`BLOCK`]. An attacker's own address stops.
//! - Per client id: more failures within a minute than the client budget, from however many addresses, and
//!   the client id is under attack for [`BLOCK`]: requests for it are refused from addresses that are suspect
//!   *for that client id* (they failed for it within [`FAILURE_MEMORY`] and have not authenticated it since),
//!   and served as usual from every other address. A distributed attacker gets one guess per address per
//!   window; the holder, whose requests do not fail, is never refused, also behind an address it shares with
//!   callers that fail for other client ids. A suspect address that now presents the right secret is let
//!   through (see [`Verdict::RefuseUnlessProven`]), which clears the suspicion.
//! - A budget's cell is taken before the client is looked up ([`AuthThrottle::admit`]) and given back when the
//!   authentication succeeds, so that concurrent failures cannot overshoot the budget: at most the budget's
//!   worth of lookups per address and per client id are unresolved or failed within a minute.
//! - Refusals are not audited one by one (an attacker would make the audit trail its flood): the first of each
//!   address, client id and minute is, and the rest of that minute are counted and handed over by
//!   [`AuthThrottle::take_summaries`] for one event.
//!
//! The source address is the TCP peer, or `X-Forwarded-For` behind a trusted proxy (`http::client_address`).
//! Several callers behind one address the server cannot see through share that address's budget.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{NaiveDateTime, Timelike};

use super::{Limit, Refusal};
use crate::clock::SharedClock;

/// A reading of the server clock's monotonic time ([`crate::clock::Clock::monotonic`]), so that a test's manual
/// clock moves the throttle's windows and blocks.
type Moment = Duration;

/// How long an address over its budget, or a client id under attack, stays so.
pub const BLOCK: Duration = Duration::from_secs(60);
/// How long an address that failed for a client id counts as suspect for it.
pub const FAILURE_MEMORY: Duration = Duration::from_secs(600);
/// A budget is so many failures per this window.
const WINDOW: Duration = Duration::from_secs(60);
/// Forgotten entries are swept every this many admissions, which bounds memory under a spray of addresses.
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

/// A generic cell rate algorithm (the token bucket of `governor`, which cannot give a cell back): `per_minute`
/// cells refill evenly over a minute, with a burst of all of them. A cell taken for an authentication whose
/// outcome is not known yet is `pending`; it is given back on success and kept on failure.
struct Budget<K> {
    interval: Duration,
    cells: HashMap<K, Cells>,
}

#[derive(Clone, Copy)]
struct Cells {
    /// The theoretical arrival time of the next cell: the budget is used up while it is more than a window ahead.
    tat: Moment,
    pending: u32,
}

enum Take {
    Taken,
    /// Used up by failures: the key goes over its budget.
    Exhausted,
    /// Used up only because authentications of this key are still unresolved: try again in a moment.
    Busy,
}

impl<K: Hash + Eq + Clone> Budget<K> {
    fn new(per_minute: u32) -> Option<Self> {
        (per_minute > 0).then(|| Budget { interval: WINDOW / per_minute, cells: HashMap::new() })
    }

    fn take(&mut self, key: &K, now: Moment) -> Take {
        let cells = self.cells.entry(key.clone()).or_insert(Cells { tat: now, pending: 0 });
        let tat = cells.tat.max(now);
        if tat + self.interval > now + WINDOW {
            return if cells.pending > 0 { Take::Busy } else { Take::Exhausted };
        }
        cells.tat = tat + self.interval;
        cells.pending += 1;
        Take::Taken
    }

    /// The pending cell's authentication ended: a success gives the cell back, a failure keeps it.
    fn resolve(&mut self, key: &K, failed: bool) {
        if let Some(cells) = self.cells.get_mut(key) {
            cells.pending = cells.pending.saturating_sub(1);
            if !failed {
                cells.tat = cells.tat.checked_sub(self.interval).unwrap_or(cells.tat);
            }
        }
    }

    fn sweep(&mut self, now: Moment) {
        self.cells.retain(|_, cells| cells.pending > 0 || cells.tat > now);
    }
}

/// What one address did for one client id lately.
#[derive(Default, Clone, Copy)]
struct Track {
    last_failure: Option<Moment>,
    last_success: Option<Moment>,
}

impl Track {
    /// Failed for the client id within the memory, and has not authenticated it since.
    fn suspect(&self, now: Moment) -> bool {
        match self.last_failure {
            Some(failed) => {
                now.saturating_sub(failed) < FAILURE_MEMORY && self.last_success.is_none_or(|ok| ok < failed)
            }
            None => false,
        }
    }
}

/// Refusals of one address for one client id within one minute, audited as one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalSummary {
    /// What was refused (the audit event type of the request).
    pub kind: &'static str,
    pub address: Option<IpAddr>,
    pub client_id: String,
    /// The start of the minute (UTC) the refusals fell in.
    pub minute: NaiveDateTime,
    /// When the last of them was refused.
    pub last: NaiveDateTime,
    pub refusals: u64,
}

type RefusalKey = (&'static str, Option<IpAddr>, String, NaiveDateTime);

#[derive(Default)]
struct Marks {
    addresses: Option<Budget<IpAddr>>,
    clients: Option<Budget<String>>,
    blocked_addresses: HashMap<IpAddr, Moment>,
    attacked_clients: HashMap<String, Moment>,
    /// By client id, then address.
    tracks: HashMap<String, HashMap<IpAddr, Track>>,
    refusals: HashMap<RefusalKey, (NaiveDateTime, u64)>,
}

/// The cells one admitted authentication holds until its outcome is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Admission {
    address_cell: bool,
    client_cell: bool,
}

/// The throttle's answer before a client is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go on, and report the outcome with [`AuthThrottle::succeeded`] or [`AuthThrottle::failed`].
    Admitted(Admission),
    /// Refused without looking at the credentials.
    Refuse(Refusal),
    /// A suspect address asks for a client id under attack: refused, unless the secret proves right without a
    /// database lookup (the client is cached), in which case the holder is served and no longer suspect.
    RefuseUnlessProven(Refusal),
}

pub struct AuthThrottle {
    clock: SharedClock,
    enabled: bool,
    marks: Mutex<Marks>,
    admissions: AtomicU64,
}

impl AuthThrottle {
    pub fn new(settings: ThrottleSettings, clock: SharedClock) -> Self {
        let marks = Marks {
            addresses: Budget::new(settings.address_failures_per_minute),
            clients: Budget::new(settings.client_failures_per_minute),
            ..Marks::default()
        };
        AuthThrottle {
            clock,
            enabled: marks.addresses.is_some() || marks.clients.is_some(),
            marks: Mutex::new(marks),
            admissions: AtomicU64::new(0),
        }
    }

    fn marks(&self) -> std::sync::MutexGuard<'_, Marks> {
        self.marks.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Before authenticating: refuses a blocked address and a suspect address asking for a client id under
    /// attack, and otherwise takes a cell of the address's and the client id's budgets.
    pub fn admit(&self, address: Option<IpAddr>, client_id: &str) -> Verdict {
        self.admit_at(address, client_id, self.clock.monotonic())
    }

    fn admit_at(&self, address: Option<IpAddr>, client_id: &str, now: Moment) -> Verdict {
        let mut admission = Admission::default();
        if !self.enabled {
            return Verdict::Admitted(admission);
        }
        let refused = |until: Moment| Refusal { limit: Limit::Throttled, retry_after: until.saturating_sub(now) };
        let busy = Refusal { limit: Limit::Throttled, retry_after: Duration::from_secs(1) };
        let mut marks = self.marks();
        let marks = &mut *marks;
        if let Some(address) = address {
            if let Some(&until) = marks.blocked_addresses.get(&address).filter(|until| **until > now) {
                return Verdict::Refuse(refused(until));
            }
            let attacked = marks.attacked_clients.get(client_id).copied().filter(|until| *until > now);
            let track = marks.tracks.get(client_id).and_then(|by_address| by_address.get(&address));
            if let (Some(until), true) = (attacked, track.is_some_and(|t| t.suspect(now))) {
                return Verdict::RefuseUnlessProven(refused(until));
            }
            if let Some(budget) = &mut marks.addresses {
                match budget.take(&address, now) {
                    Take::Taken => admission.address_cell = true,
                    Take::Busy => return Verdict::Refuse(busy),
                    Take::Exhausted => {
                        marks.blocked_addresses.insert(address, now + BLOCK);
                        return Verdict::Refuse(refused(now + BLOCK));
                    }
                }
            }
        }
        if let Some(budget) = &mut marks.clients {
            // Over its budget, the client id is under attack; this address is not suspect for it (else it was
            // refused above), so it is served without a cell, as every innocent address is.
            match budget.take(&client_id.to_string(), now) {
                Take::Taken => admission.client_cell = true,
                Take::Busy => {}
                Take::Exhausted => {
                    marks.attacked_clients.insert(client_id.to_string(), now + BLOCK);
                }
            }
        }
        if self.admissions.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            sweep(marks, now);
        }
        Verdict::Admitted(admission)
    }

    /// An admitted authentication failed: its cells stay taken, and the address is suspect for the client id.
    pub fn failed(&self, admission: Admission, address: Option<IpAddr>, client_id: &str) {
        self.resolve(admission, address, client_id, Some(true), self.clock.monotonic());
    }

    /// An authentication succeeded (admitted, or proven past [`Verdict::RefuseUnlessProven`]): its cells are
    /// given back, and the address is no longer suspect for the client id.
    pub fn succeeded(&self, admission: Admission, address: Option<IpAddr>, client_id: &str) {
        self.resolve(admission, address, client_id, Some(false), self.clock.monotonic());
    }

    /// An admitted authentication could not be decided (the registry was unavailable): its cells are given
    /// back, and nothing is learnt of the address.
    pub fn abandoned(&self, admission: Admission, address: Option<IpAddr>, client_id: &str) {
        self.resolve(admission, address, client_id, None, self.clock.monotonic());
    }

    /// `failed`: whether the authentication failed; `None`, undecided.
    fn resolve(
        &self,
        admission: Admission,
        address: Option<IpAddr>,
        client_id: &str,
        failed: Option<bool>,
        now: Moment,
    ) {
        if !self.enabled {
            return;
        }
        let decided = failed.is_some();
        let failed = failed.unwrap_or(false);
        let mut marks = self.marks();
        if let (true, Some(budget)) = (admission.client_cell, &mut marks.clients) {
            budget.resolve(&client_id.to_string(), failed);
        }
        let Some(address) = address else { return };
        if let (true, Some(budget)) = (admission.address_cell, &mut marks.addresses) {
            budget.resolve(&address, failed);
        }
        if !decided {
            return;
        }
        // A success from an address that never failed for the client id needs no track (the hot path stays a
        // lookup, not an insert).
        let tracks = &mut marks.tracks;
        let track = match tracks.get_mut(client_id).and_then(|by_address| by_address.get_mut(&address)) {
            Some(track) => track,
            None if failed => tracks.entry(client_id.to_string()).or_default().entry(address).or_default(),
            None => return,
        };
        if failed {
            track.last_failure = Some(now);
        } else {
            track.last_success = Some(now);
        }
    }

    /// Counts a refusal at `at` (the server's clock). True for the first of its address, client id and minute,
    /// which is audited as it happens; the others are left to the minute's summary.
    pub fn count_refusal(
        &self,
        kind: &'static str,
        address: Option<IpAddr>,
        client_id: &str,
        at: NaiveDateTime,
    ) -> bool {
        let minute = at.with_second(0).and_then(|t| t.with_nanosecond(0)).unwrap_or(at);
        let mut marks = self.marks();
        let entry = marks.refusals.entry((kind, address, client_id.to_string(), minute)).or_insert((at, 0));
        entry.0 = entry.0.max(at);
        entry.1 += 1;
        entry.1 == 1
    }

    /// The summaries of minutes that ended before `now` (all of them with `everything`, at shutdown), removed:
    /// each counts the refusals after the first of its minute (those not audited one by one).
    pub fn take_summaries(&self, now: NaiveDateTime, everything: bool) -> Vec<RefusalSummary> {
        let mut marks = self.marks();
        let ended = |minute: &NaiveDateTime| everything || *minute + chrono::Duration::minutes(1) <= now;
        let keys: Vec<_> = marks.refusals.keys().filter(|(_, _, _, minute)| ended(minute)).cloned().collect();
        let mut summaries: Vec<RefusalSummary> = keys
            .into_iter()
            .filter_map(|key| {
                let (last, counted) = marks.refusals.remove(&key)?;
                let (kind, address, client_id, minute) = key;
                let refusals = counted.checked_sub(1).filter(|after_first| *after_first > 0)?;
                Some(RefusalSummary { kind, address, client_id, minute, last, refusals })
            })
            .collect();
        summaries.sort_by(|a, b| (a.minute, &a.client_id).cmp(&(b.minute, &b.client_id)));
        summaries
    }
}

fn sweep(marks: &mut Marks, now: Moment) {
    marks.blocked_addresses.retain(|_, until| *until > now);
    marks.attacked_clients.retain(|_, until| *until > now);
    marks.tracks.retain(|_, by_address| {
        by_address
            .retain(|_, track| track.last_failure.is_some_and(|failed| now.saturating_sub(failed) < FAILURE_MEMORY));
        !by_address.is_empty()
    });
    if let Some(budget) = &mut marks.addresses {
        budget.sweep(now);
    }
    if let Some(budget) = &mut marks.clients {
        budget.sweep(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([192, 0, 2, last]))
    }

    fn throttle(address: u32, client: u32) -> AuthThrottle {
        let settings = ThrottleSettings { address_failures_per_minute: address, client_failures_per_minute: client };
        AuthThrottle::new(settings, crate::clock::system())
    }

    fn refused(verdict: Verdict) -> bool {
        matches!(verdict, Verdict::Refuse(_) | Verdict::RefuseUnlessProven(_))
    }

    fn admitted(verdict: Verdict) -> Option<Admission> {
        match verdict {
            Verdict::Admitted(admission) => Some(admission),
            _ => None,
        }
    }

    /// Admits and fails, if admitted.
    fn fail(throttle: &AuthThrottle, address: Option<IpAddr>, client_id: &str) {
        if let Some(admission) = admitted(throttle.admit(address, client_id)) {
            throttle.failed(admission, address, client_id);
        }
    }

    #[test]
    fn an_address_over_its_budget_is_blocked_for_every_client_id() {
        let throttle = throttle(3, 0);
        for _ in 0..3 {
            let admission = admitted(throttle.admit(ip(1), "pgc_a")).expect("within the budget");
            throttle.failed(admission, ip(1), "pgc_a");
        }
        let Verdict::Refuse(refusal) = throttle.admit(ip(1), "pgc_other") else { panic!("not blocked") };
        assert_eq!(refusal.limit, Limit::Throttled);
        assert!(refusal.retry_after > BLOCK - Duration::from_secs(5));
        assert!(admitted(throttle.admit(ip(2), "pgc_a")).is_some());
    }

    #[test]
    fn a_client_id_under_attack_still_serves_addresses_that_did_not_fail_for_it() {
        let throttle = throttle(0, 5);
        for attacker in 10..20 {
            fail(&throttle, ip(attacker), "pgc_a");
        }
        assert!(refused(throttle.admit(ip(10), "pgc_a")));
        assert!(refused(throttle.admit(ip(14), "pgc_a")));
        // The holder's address failed too, but for another client id (a colleague's typo behind one NAT).
        fail(&throttle, ip(1), "pgc_b");
        assert!(admitted(throttle.admit(ip(1), "pgc_a")).is_some(), "suspect only for the id it failed for");
        assert!(admitted(throttle.admit(ip(10), "pgc_b")).is_some(), "only the attacked client id is guarded");
    }

    #[test]
    fn a_success_after_the_last_failure_clears_the_suspicion() {
        let throttle = throttle(0, 2);
        // The holder failed once (a secret rotated a moment ago on another instance), then came the attack.
        fail(&throttle, ip(1), "pgc_a");
        for attacker in 10..15 {
            fail(&throttle, ip(attacker), "pgc_a");
        }
        let Verdict::RefuseUnlessProven(_) = throttle.admit(ip(1), "pgc_a") else { panic!("not suspect") };
        // It proved its secret (a cached client, no lookup), holding no cells.
        throttle.succeeded(Admission::default(), ip(1), "pgc_a");
        assert!(admitted(throttle.admit(ip(1), "pgc_a")).is_some());
    }

    #[test]
    fn concurrent_lookups_cannot_overshoot_the_budget() {
        let throttle = throttle(30, 0);
        let now = Duration::from_secs(1);
        // 100 concurrent attempts, none resolved yet: only the budget's worth are let through to a lookup.
        let admissions: Vec<_> = (0..100).filter_map(|_| admitted(throttle.admit_at(ip(1), "pgc_x", now))).collect();
        assert_eq!(admissions.len(), 30);
        for admission in admissions {
            throttle.resolve(admission, ip(1), "pgc_x", Some(true), now);
        }
        assert!(matches!(throttle.admit_at(ip(1), "pgc_x", now), Verdict::Refuse(_)));
        assert!(throttle.marks().blocked_addresses.contains_key(&ip(1).unwrap()), "31st failure blocks");
    }

    #[test]
    fn successes_give_their_cells_back() {
        let throttle = throttle(3, 3);
        let now = Duration::from_secs(1);
        for _ in 0..1000 {
            let admission = admitted(throttle.admit_at(ip(1), "pgc_a", now)).expect("cells come back");
            throttle.resolve(admission, ip(1), "pgc_a", Some(false), now);
        }
        let busy: Vec<_> = (0..4).map(|_| throttle.admit_at(ip(1), "pgc_a", now)).collect();
        assert_eq!(busy[3], Verdict::Refuse(Refusal { limit: Limit::Throttled, retry_after: Duration::from_secs(1) }));
        assert!(throttle.marks().blocked_addresses.is_empty(), "unresolved attempts do not block");
    }

    #[test]
    fn a_block_ends_when_the_server_clock_has_moved_past_it() {
        let clock =
            crate::clock::ManualClock::at(chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap().naive_utc());
        let throttle = AuthThrottle::new(
            ThrottleSettings { address_failures_per_minute: 2, client_failures_per_minute: 0 },
            std::sync::Arc::new(clock.clone()),
        );
        fail(&throttle, ip(1), "pgc_a");
        fail(&throttle, ip(1), "pgc_a");
        let Verdict::Refuse(refusal) = throttle.admit(ip(1), "pgc_a") else { panic!("not blocked") };
        assert_eq!(refusal.retry_after, BLOCK, "the clock stands still: the whole block is left");
        clock.advance(chrono::Duration::seconds(59));
        let Verdict::Refuse(refusal) = throttle.admit(ip(1), "pgc_a") else { panic!("not blocked") };
        assert_eq!(refusal.retry_after, Duration::from_secs(1));
        clock.advance(chrono::Duration::seconds(1));
        assert!(admitted(throttle.admit(ip(1), "pgc_a")).is_some(), "the block and the window are over");
    }

    #[test]
    fn refusals_are_summarised_per_address_client_id_and_minute() {
        let throttle = throttle(1, 0);
        let at = |s: i64| chrono::DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap().naive_utc();
        // 1_800_000_000 is 08:00:00 UTC.
        let first: Vec<bool> =
            (0..50).map(|s| throttle.count_refusal("token.request", ip(1), "pgc_a", at(s))).collect();
        assert_eq!((first[0], first[1..].iter().any(|f| *f)), (true, false), "only the first is audited at once");
        assert!(throttle.count_refusal("token.request", ip(1), "pgc_a", at(61)), "a new minute");
        throttle.count_refusal("token.request", ip(1), "pgc_a", at(62));
        assert!(throttle.count_refusal("token.request", ip(2), "pgc_a", at(3)), "another address");
        assert!(throttle.take_summaries(at(59), false).is_empty(), "the minute is not over");
        let summaries = throttle.take_summaries(at(60), false);
        // The second address had one refusal, audited at once: nothing to summarise.
        assert_eq!(summaries.len(), 1);
        assert_eq!((summaries[0].refusals, summaries[0].minute, summaries[0].last), (49, at(0), at(49)));
        let rest = throttle.take_summaries(at(60), true);
        assert_eq!((rest.len(), rest[0].refusals, rest[0].minute, rest[0].last), (1, 1, at(60), at(62)));
    }
}
