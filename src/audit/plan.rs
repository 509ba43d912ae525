//! What one batch of the audit writer writes and decides, as plain data: no connection, no clock of its own
//! (every time is an event's `occurred_at`, which the request took from the server's injected clock). The
//! writer (`writer.rs`) queues and batches; this module plans; the store's SQL per backend writes the plan.
//!
//! A batch plan has two steps, because the quota depends on counts that only the database knows:
//! [`BatchPlan::of`] gathers, from the events' effects, which secrets' last uses are due, which tokens to
//! revoke and how many tokens each partner's day is asked for; once the day counts are added (one upsert
//! returning each new total), [`BatchPlan::decide`] applies the quota rule (`limits::quota`) to every token in
//! queue order and says which are refused and what to take back.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDateTime;

use super::Effect;
use crate::limits::quota::{self, Admission, QuotaTerms};
use crate::store::models::{NewAuditEventRow, RevokedTokenRow};
use crate::store::usage;

/// A secret's `last_used_at` is written at most this often by one instance: under load that is one update a
/// second instead of one per batch (hundreds a second), and the column is still right to within this.
pub const LAST_USE_RESOLUTION: chrono::TimeDelta = chrono::TimeDelta::seconds(1);

/// What became of a recorded request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Stored,
    /// Its token would exceed the partner's daily quota: recorded as refused, and not to be handed out.
    OverQuota,
}

/// A partner's day: (partner id, `YYYY-MM-DD`).
pub type PartnerDay = (String, String);

/// A partner's count of one day, as a commit left it.
pub type DayCount = (String, String, i64);

/// The `last_used_at` this writer last committed per secret, to write it only once it is
/// [`LAST_USE_RESOLUTION`] out of date.
#[derive(Debug, Default)]
pub struct LastUses(HashMap<String, NaiveDateTime>);

impl LastUses {
    fn due(&self, secret: &str, at: NaiveDateTime) -> bool {
        self.0.get(secret).is_none_or(|written| at >= *written + LAST_USE_RESOLUTION)
    }

    /// Remembers what a committed batch wrote.
    pub fn committed(&mut self, plan: &BatchPlan) {
        self.0.extend(plan.last_use.iter().map(|(secret, at)| (secret.clone(), *at)));
    }
}

/// What a batch changes besides its events, each part sorted: rows are locked in one order (secret ids, then
/// `jti`s, then partner days), so that two writers' batches, of this instance or another, never deadlock.
#[derive(Debug, Default)]
pub struct BatchPlan {
    /// Each due secret's latest use in the batch (only forward: the SQL keeps a later stored value).
    pub last_use: BTreeMap<String, NaiveDateTime>,
    pub revocations: Vec<RevokedTokenRow>,
    /// Per partner's day, the batch's tokens in queue order: (index of the event in the batch, its terms).
    pub tokens: BTreeMap<PartnerDay, Vec<(usize, QuotaTerms)>>,
}

/// The quota's verdicts on a batch, once its day counts are known.
#[derive(Debug, Default, PartialEq)]
pub struct Decision {
    /// Tokens that are not plainly counted: (event index, verdict, the partner's count before the token).
    pub admissions: Vec<(usize, Admission, QuotaTerms, i64)>,
    /// Refused tokens counted by the upsert and to be taken back: (partner, day, negative delta).
    pub corrections: Vec<(String, String, i64)>,
    /// Every partner's day count as the commit leaves it.
    pub counts: Vec<DayCount>,
}

/// A total the upsert should have returned and did not: a bug of the SQL, not an outage.
#[derive(Debug, thiserror::Error)]
#[error("the day count of partner {0} on {1} was not returned")]
pub struct MissingCount(pub String, pub String);

impl BatchPlan {
    /// Gathers the effects of a batch's events, given as (event time, its effects) in queue order.
    pub fn of<'a>(events: impl IntoIterator<Item = (NaiveDateTime, &'a [Effect])>, last_uses: &LastUses) -> Self {
        let mut plan = BatchPlan::default();
        for (index, (occurred_at, effects)) in events.into_iter().enumerate() {
            for effect in effects {
                match effect {
                    Effect::SecretUsed(secret) => {
                        let at = plan.last_use.entry(secret.clone()).or_insert(occurred_at);
                        *at = (*at).max(occurred_at);
                    }
                    Effect::RevokeToken(row) => plan.revocations.push(row.clone()),
                    Effect::CountToken(terms) => plan
                        .tokens
                        .entry((terms.partner_id.clone(), usage::day_of(occurred_at)))
                        .or_default()
                        .push((index, terms.clone())),
                }
            }
        }
        plan.last_use.retain(|secret, at| last_uses.due(secret, *at));
        plan.revocations.sort_by(|a, b| a.jti.cmp(&b.jti));
        plan
    }

    /// Whether the batch only adds events and day counts: no token of a partner with a quota (nothing for
    /// the count to decide, so nothing to roll back), no secret's last use due, no revocation.
    pub fn has_nothing_to_decide(&self) -> bool {
        self.last_use.is_empty()
            && self.revocations.is_empty()
            && self.tokens.values().flatten().all(|(_, terms)| terms.per_day.is_none())
    }

    /// The tokens each partner's day is asked for, in lock order: what the day-count upsert adds.
    pub fn asked(&self) -> Vec<(&str, &str, i64)> {
        self.tokens
            .iter()
            .map(|((partner, day), tokens)| (partner.as_str(), day.as_str(), tokens.len() as i64))
            .collect()
    }

    /// Applies the quota to every token, given each partner's day total after the upsert of [`asked`]
    /// (`Self::asked`) added the batch's tokens: the count before the batch is the total minus what it asked.
    pub fn decide(&self, totals: &HashMap<PartnerDay, i64>) -> Result<Decision, MissingCount> {
        let mut decision = Decision::default();
        for (key, tokens) in &self.tokens {
            let total = *totals.get(key).ok_or_else(|| MissingCount(key.0.clone(), key.1.clone()))?;
            let before = total - tokens.len() as i64;
            let (admitted, after) = quota::admit_in_turn(tokens.iter().map(|(_, terms)| terms), before);
            for ((index, terms), (admission, counted)) in tokens.iter().zip(admitted) {
                if admission != Admission::Counted {
                    decision.admissions.push((*index, admission, terms.clone(), counted));
                }
            }
            if after != total {
                decision.corrections.push((key.0.clone(), key.1.clone(), after - total));
            }
            decision.counts.push((key.0.clone(), key.1.clone(), after));
        }
        Ok(decision)
    }
}

impl Decision {
    /// Whether any token is refused or over quota: its event must be written as decided, not as asked.
    pub fn decided_anything(&self) -> bool {
        !self.admissions.is_empty()
    }

    /// Marks the events of refused and over-quota tokens (`rows` are the batch's, in queue order) and returns
    /// each event's verdict.
    pub fn apply(&self, rows: &mut [NewAuditEventRow]) -> Vec<Recorded> {
        let mut verdicts = vec![Recorded::Stored; rows.len()];
        for (index, admission, terms, counted) in &self.admissions {
            mark_event(&mut rows[*index], *admission, terms, *counted);
            if *admission == Admission::Refused {
                verdicts[*index] = Recorded::OverQuota;
            }
        }
        verdicts
    }

    /// Replaces the counts of the days in `corrected` with the totals the corrections returned.
    pub fn corrected(&mut self, corrected: &HashMap<PartnerDay, i64>) {
        for (partner, day, count) in &mut self.counts {
            if let Some(total) = corrected.get(&(partner.clone(), day.clone())) {
                *count = *total;
            }
        }
    }
}

/// Marks a token request's audit event with the quota's verdict, `counted` being the partner's count of the
/// day before the token: refused, the event is a failure for the quota and names no token (none was handed
/// out); counted over quota in log-only mode, its details say so.
fn mark_event(row: &mut NewAuditEventRow, admission: Admission, terms: &QuotaTerms, counted: i64) {
    match admission {
        Admission::Refused => {
            row.outcome = super::Outcome::Failure.as_str().to_string();
            row.reason = Some(crate::limits::Limit::Quota.as_str().to_string());
            row.jti = None;
        }
        Admission::CountedOverQuota => {
            let over = serde_json::json!({"over_quota": {
                "mode": "log_only", "token_quota_per_day": terms.per_day, "tokens_today": counted + 1,
            }});
            row.details = Some(over.to_string());
        }
        Admission::Counted => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditEvent, Outcome, RequestMeta};

    fn at(secs: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap().naive_utc()
    }

    fn terms(partner: &str, per_day: Option<i32>, log_only: bool) -> QuotaTerms {
        QuotaTerms { partner_id: partner.into(), per_day, log_only }
    }

    fn token(partner: &str, per_day: Option<i32>) -> Vec<Effect> {
        vec![Effect::CountToken(terms(partner, per_day, false))]
    }

    fn plan(events: &[(NaiveDateTime, Vec<Effect>)], last_uses: &LastUses) -> BatchPlan {
        BatchPlan::of(events.iter().map(|(at, effects)| (*at, effects.as_slice())), last_uses)
    }

    fn totals(plan: &BatchPlan, before: &[(&str, i64)]) -> HashMap<PartnerDay, i64> {
        plan.tokens
            .iter()
            .map(|((partner, day), tokens)| {
                let earlier = before.iter().find(|(p, _)| p == partner).map_or(0, |(_, n)| *n);
                ((partner.clone(), day.clone()), earlier + tokens.len() as i64)
            })
            .collect()
    }

    #[test]
    fn a_secret_used_several_times_is_written_once_at_its_latest_use_and_only_when_due() {
        let used = |secret: &str| vec![Effect::SecretUsed(secret.into())];
        let events = [(at(2), used("s1")), (at(1), used("s1")), (at(0), used("s2"))];
        let planned = plan(&events, &LastUses::default());
        assert_eq!(planned.last_use.into_iter().collect::<Vec<_>>(), [("s1".into(), at(2)), ("s2".into(), at(0))]);

        let mut memory = LastUses::default();
        memory.committed(&plan(&events, &LastUses::default()));
        let within = [(at(2) + LAST_USE_RESOLUTION - chrono::TimeDelta::milliseconds(1), used("s1"))];
        assert!(plan(&within, &memory).last_use.is_empty(), "written again within the resolution");
        let past = [(at(2) + LAST_USE_RESOLUTION, used("s1"))];
        assert_eq!(plan(&past, &memory).last_use.len(), 1);
    }

    #[test]
    fn tokens_are_grouped_by_partner_and_utc_day_in_lock_order() {
        let midnight = usage::next_reset(at(0));
        let events = [
            (at(0), token("zeta", None)),
            (at(1), token("acme", None)),
            (midnight, token("acme", None)),
            (at(2), token("acme", None)),
        ];
        let planned = plan(&events, &LastUses::default());
        let asked = planned.asked();
        let today = usage::day_of(at(0));
        let tomorrow = usage::day_of(midnight);
        assert_eq!(asked, [("acme", today.as_str(), 2), ("acme", tomorrow.as_str(), 1), ("zeta", today.as_str(), 1)]);
        assert_eq!(
            planned.tokens[&("acme".to_string(), today.clone())].iter().map(|t| t.0).collect::<Vec<_>>(),
            [1, 3]
        );
        assert!(planned.has_nothing_to_decide(), "no quota, no last use, no revocation");
    }

    #[test]
    fn revocations_are_sorted_and_anything_but_plain_counts_needs_a_transaction() {
        let revoke = |jti: &str| {
            Effect::RevokeToken(RevokedTokenRow {
                jti: jti.into(),
                client_id: "c".into(),
                expires_at: at(60),
                revoked_at: at(0),
            })
        };
        let events = [(at(0), vec![revoke("b")]), (at(0), vec![revoke("a")])];
        let planned = plan(&events, &LastUses::default());
        assert_eq!(planned.revocations.iter().map(|r| r.jti.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert!(!planned.has_nothing_to_decide());
        assert!(!plan(&[(at(0), token("acme", Some(10)))], &LastUses::default()).has_nothing_to_decide());
        assert!(!plan(&[(at(0), vec![Effect::SecretUsed("s".into())])], &LastUses::default()).has_nothing_to_decide());
    }

    #[test]
    fn within_quota_nothing_is_decided_and_the_counts_are_the_totals() {
        let events = [(at(0), token("acme", Some(10))), (at(1), token("acme", Some(10)))];
        let planned = plan(&events, &LastUses::default());
        let decision = planned.decide(&totals(&planned, &[("acme", 8)])).unwrap();
        assert!(!decision.decided_anything());
        assert!(decision.corrections.is_empty());
        assert_eq!(decision.counts, [("acme".to_string(), usage::day_of(at(0)), 10)]);
    }

    #[test]
    fn tokens_past_the_quota_are_refused_in_queue_order_and_taken_back() {
        let events = [
            (at(0), token("acme", Some(3))),
            (at(1), token("acme", Some(3))),
            (at(2), vec![]),
            (at(3), token("acme", Some(3))),
        ];
        let planned = plan(&events, &LastUses::default());
        let decision = planned.decide(&totals(&planned, &[("acme", 2)])).unwrap();
        assert!(decision.decided_anything());
        let day = usage::day_of(at(0));
        assert_eq!(decision.corrections, [("acme".to_string(), day.clone(), -2)]);
        assert_eq!(decision.counts, [("acme".to_string(), day, 3)]);

        let mut rows: Vec<NewAuditEventRow> = (0..4)
            .map(|_| {
                let mut event =
                    AuditEvent::new("token.request", Outcome::Success, RequestMeta::default(), crate::store::now());
                event.jti = Some("j".into());
                event.into_row()
            })
            .collect();
        let verdicts = decision.apply(&mut rows);
        assert_eq!(verdicts, [Recorded::Stored, Recorded::OverQuota, Recorded::Stored, Recorded::OverQuota]);
        assert_eq!(rows[1].outcome, "failure");
        assert_eq!(rows[1].reason.as_deref(), Some("quota_exceeded"));
        assert_eq!(rows[1].jti, None, "a refused token was never handed out");
        assert_eq!(rows[0].outcome, "success");
        assert_eq!(rows[0].jti.as_deref(), Some("j"));
    }

    #[test]
    fn log_only_counts_past_the_quota_and_marks_the_event() {
        let events = vec![(at(0), vec![Effect::CountToken(terms("acme", Some(1), true))]); 2];
        let planned = plan(&events, &LastUses::default());
        let decision = planned.decide(&totals(&planned, &[("acme", 0)])).unwrap();
        assert!(decision.corrections.is_empty());
        assert_eq!(decision.counts[0].2, 2);
        let mut rows: Vec<NewAuditEventRow> = (0..2)
            .map(|_| {
                AuditEvent::new("token.request", Outcome::Success, RequestMeta::default(), crate::store::now())
                    .into_row()
            })
            .collect();
        assert_eq!(decision.apply(&mut rows), [Recorded::Stored, Recorded::Stored]);
        assert_eq!(rows[0].details, None);
        let details: serde_json::Value = serde_json::from_str(rows[1].details.as_deref().unwrap()).unwrap();
        assert_eq!(details["over_quota"]["tokens_today"], 2);
        assert_eq!(details["over_quota"]["mode"], "log_only");
    }

    #[test]
    fn a_total_missing_from_the_upsert_is_an_error_not_a_guess() {
        let planned = plan(&[(at(0), token("acme", Some(1)))], &LastUses::default());
        assert!(planned.decide(&HashMap::new()).is_err());
    }
}
