//! Daily token quotas per partner (UTC days), shared by every instance on one database.
//!
//! The count is kept by the audit writer in the commit that records the token requests (`store::usage`),
//! so it costs no round trip of its own, and the quota is decided there too: in that transaction the
//! partner's row is locked, so instances count one after the other and the partner never gets more than its
//! quota, whatever the number of instances. A token over quota is not handed out: its request is recorded as
//! refused and answered `429` (in log-only mode it is handed out and recorded as over quota). The signing
//! before that decision is the price of deciding exactly.
//!
//! [`QuotaBook`] remembers the latest count each partner's commit saw, so that once a partner is over quota
//! this instance refuses at once, before signing.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::NaiveDateTime;

use super::{Limit, Refusal};
use crate::readmodel::ClientSnapshot;
use crate::store::usage;

/// What the writer decides for one token, given the partner's count before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Within quota (or no quota): counted and handed out.
    Counted,
    /// Over quota in log-only mode: counted, handed out, and recorded as over quota.
    CountedOverQuota,
    /// Over quota: not counted, not handed out.
    Refused,
}

/// The quota of a token's partner, as the token's request saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaTerms {
    pub partner_id: String,
    pub per_day: Option<i32>,
    pub log_only: bool,
}

impl QuotaTerms {
    pub fn of(client: &ClientSnapshot) -> Self {
        QuotaTerms {
            partner_id: client.partner_id.clone(),
            per_day: client.partner_token_quota_per_day,
            log_only: client.partner_quota_log_only,
        }
    }

    /// The decision for the next token when `counted` tokens of the day are counted already.
    pub fn admit(&self, counted: i64) -> Admission {
        match self.per_day {
            Some(quota) if counted >= i64::from(quota) => {
                if self.log_only {
                    Admission::CountedOverQuota
                } else {
                    Admission::Refused
                }
            }
            _ => Admission::Counted,
        }
    }
}

/// The rule applied to a partner's tokens of one day in queue order, when `counted` tokens were counted
/// before them: each token's admission with the count before it, and the count after them all (refused tokens
/// are not counted). The one place where a batch of tokens meets the quota.
pub fn admit_in_turn<'t>(
    tokens: impl IntoIterator<Item = &'t QuotaTerms>,
    mut counted: i64,
) -> (Vec<(Admission, i64)>, i64) {
    let admitted = tokens
        .into_iter()
        .map(|terms| {
            let admission = terms.admit(counted);
            let before = counted;
            if admission != Admission::Refused {
                counted += 1;
            }
            (admission, before)
        })
        .collect();
    (admitted, counted)
}

/// The refusal of a token over quota at `at`: retry at the next UTC midnight.
pub fn refusal(at: NaiveDateTime) -> Refusal {
    let wait = (usage::next_reset(at) - at).to_std().unwrap_or_default();
    Refusal { limit: Limit::Quota, retry_after: wait }
}

/// The latest count per partner and day this instance's commits saw.
#[derive(Default)]
pub struct QuotaBook {
    counts: Mutex<HashMap<String, (String, i64)>>,
}

impl QuotaBook {
    /// Refuses early, before signing, a token of a partner already known to be over its enforced quota today.
    pub fn check(&self, client: &ClientSnapshot, at: NaiveDateTime) -> Result<(), Refusal> {
        let terms = QuotaTerms::of(client);
        if terms.per_day.is_none() || terms.log_only {
            return Ok(());
        }
        let counts = self.counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let counted = match counts.get(&terms.partner_id) {
            Some((day, counted)) if *day == usage::day_of(at) => *counted,
            _ => 0,
        };
        match terms.admit(counted) {
            Admission::Refused => Err(refusal(at)),
            _ => Ok(()),
        }
    }

    /// What a commit saw: `counted` tokens of `partner_id` on `day`.
    pub fn observe(&self, partner_id: &str, day: &str, counted: i64) {
        let mut counts = self.counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        counts.insert(partner_id.to_string(), (day.to_string(), counted));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readmodel::snapshot::test_snapshot;

    #[test]
    fn the_quota_admits_up_to_its_count_and_log_only_counts_past_it() {
        let enforced = QuotaTerms { partner_id: "acme".into(), per_day: Some(2), log_only: false };
        assert_eq!(enforced.admit(0), Admission::Counted);
        assert_eq!(enforced.admit(1), Admission::Counted);
        assert_eq!(enforced.admit(2), Admission::Refused);
        let logged = QuotaTerms { log_only: true, ..enforced.clone() };
        assert_eq!(logged.admit(5), Admission::CountedOverQuota);
        let none = QuotaTerms { per_day: None, ..enforced };
        assert_eq!(none.admit(1_000_000), Admission::Counted);
    }

    #[test]
    fn tokens_in_turn_are_counted_until_the_quota_and_refused_ones_are_not_counted() {
        let enforced = QuotaTerms { partner_id: "acme".into(), per_day: Some(3), log_only: false };
        let (admitted, after) = admit_in_turn([&enforced, &enforced, &enforced], 2);
        assert_eq!(admitted, [(Admission::Counted, 2), (Admission::Refused, 3), (Admission::Refused, 3)]);
        assert_eq!(after, 3);
        let logged = QuotaTerms { log_only: true, ..enforced.clone() };
        let (admitted, after) = admit_in_turn([&logged, &logged], 3);
        assert_eq!(admitted, [(Admission::CountedOverQuota, 3), (Admission::CountedOverQuota, 4)]);
        assert_eq!(after, 5);
        // The terms travel with each token: a quota raised between two requests counts from the new one.
        let raised = QuotaTerms { per_day: Some(10), ..enforced.clone() };
        assert_eq!(admit_in_turn([&enforced, &raised], 3).0, [(Admission::Refused, 3), (Admission::Counted, 3)]);
    }

    #[test]
    fn the_book_refuses_early_until_the_day_changes() {
        let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap().naive_utc();
        let mut client = test_snapshot("pgc_a", "acme", at);
        client.partner_token_quota_per_day = Some(3);
        let book = QuotaBook::default();
        book.check(&client, at).unwrap();
        book.observe("acme", &usage::day_of(at), 3);
        let refused = book.check(&client, at).unwrap_err();
        assert_eq!(refused.limit, Limit::Quota);
        assert_eq!(refused.retry_after_secs(), (usage::next_reset(at) - at).num_seconds() as u64);
        book.check(&client, usage::next_reset(at)).expect("a new day");
        client.partner_quota_log_only = true;
        book.check(&client, at).expect("log-only mode never refuses");
    }
}
