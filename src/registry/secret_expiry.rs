//! Secret hygiene: a maximum secret age (the server's default, or the partner's own, set by the operator),
//! applied when a secret is created; the listing of secrets that expire soon; the audit notices ahead of
//! expiry; and the explicit command that gives existing secrets without expiry the policy's.
//!
//! Nothing here runs on the token path: an expiry is a date on the secret, which the read model already
//! checks.

use std::collections::HashMap;

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{not_found, validate, Caller, Permission, RegistryError, RegistryResult, Tenancy};
use crate::audit::{AuditEvent, Outcome};
use crate::store::schema::{client_secrets, clients, partners, secret_expiry_notices};
use crate::store::{leases, DbConnection, Tx};

/// Ten years: a longer maximum is a typo, and would overflow nothing but help no one.
pub const MAX_AGE_DAYS: i32 = 3650;
/// Audit notices go out this many days before a secret expires, each once per secret.
pub const NOTICE_DAYS: [i32; 3] = [30, 7, 1];
/// The ranges the expiring-secrets metric counts, in days.
pub const METRIC_WITHIN_DAYS: [i64; 2] = [7, 30];
/// The longest look-ahead of the expiring listing.
pub const MAX_WITHIN_DAYS: i64 = 3650;

/// The server's default maximum secret age (`--secret-max-age-days`); a partner's own value replaces it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SecretPolicy {
    /// 0: no maximum.
    pub default_max_age_days: u32,
}

impl SecretPolicy {
    /// The maximum age for a partner whose own setting is `partner_days` (`None`: the server's default;
    /// 0 in either place: no maximum).
    pub fn max_age(&self, partner_days: Option<i32>) -> Option<Duration> {
        let days = partner_days.map_or(i64::from(self.default_max_age_days), i64::from);
        (days > 0).then(|| Duration::days(days))
    }

    /// The expiry of a secret created `at` for a partner: the earlier of the policy's and the one asked for.
    pub fn expiry_at_creation(
        &self,
        partner_days: Option<i32>,
        at: NaiveDateTime,
        asked: Option<NaiveDateTime>,
    ) -> Option<NaiveDateTime> {
        let policy = self.max_age(partner_days).map(|age| at + age);
        match (policy, asked) {
            (Some(p), Some(a)) => Some(p.min(a)),
            (p, a) => p.or(a),
        }
    }
}

/// The partner's own maximum secret age (the client's partner, for a secret being created).
pub(crate) fn partner_max_age_days(conn: &mut DbConnection, client_id: &str) -> RegistryResult<Option<i32>> {
    Ok(clients::table
        .inner_join(partners::table)
        .filter(clients::id.eq(client_id))
        .select(partners::secret_max_age_days)
        .first::<Option<i32>>(conn)
        .optional()?
        .flatten())
}

/// Whole days from `from` to `to` (negative when `to` is earlier), rounded down.
pub fn whole_days(from: NaiveDateTime, to: NaiveDateTime) -> i64 {
    (to - from).num_days()
}

/// Secrets that still work at `now` (not revoked, not expired) and expire no later than `until`.
#[diesel::dsl::auto_type]
fn working_and_expiring(now: NaiveDateTime, until: NaiveDateTime) -> _ {
    client_secrets::revoked_at
        .is_null()
        .and(client_secrets::expires_at.gt(now))
        .and(client_secrets::expires_at.le(until))
}

/// A secret that expires soon, as the expiring listing shows it (never the secret itself).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ExpiringSecret {
    pub secret_id: String,
    pub name: String,
    pub prefix: String,
    pub client_id: String,
    pub client_name: String,
    pub partner_id: String,
    #[serde(serialize_with = "crate::store::utc::serialize")]
    pub created_at: NaiveDateTime,
    #[serde(serialize_with = "crate::store::utc::serialize")]
    pub expires_at: NaiveDateTime,
    /// Whole days since it was created.
    pub age_days: i64,
    /// Whole days until it expires (0: within a day).
    pub expires_in_days: i64,
}

/// `?within_days=&partner_id=` of the expiring listing.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExpiringFilter {
    /// Secrets that expire within this many days (1 to 3650; default 30).
    pub within_days: Option<i64>,
    /// Operator: only this partner's secrets. A partner admin sees only its own partner's anyway.
    pub partner_id: Option<String>,
}

type SecretWithClient = (String, String, String, NaiveDateTime, NaiveDateTime, String, String, String);

/// Active secrets (not revoked, not yet expired) that expire within `filter.within_days`, soonest first.
pub fn expiring(
    conn: &mut DbConnection,
    caller: &Caller,
    filter: &ExpiringFilter,
) -> RegistryResult<Vec<ExpiringSecret>> {
    caller.require(Permission::ClientsRead)?;
    let within = filter.within_days.unwrap_or(30);
    if !(1..=MAX_WITHIN_DAYS).contains(&within) {
        return Err(RegistryError::Invalid {
            field: "within_days",
            message: format!("must be between 1 and {MAX_WITHIN_DAYS}"),
        });
    }
    validate::filter("partner_id", filter.partner_id.as_deref(), validate::is_partner_id)?;
    let partner = match (&caller.tenancy, &filter.partner_id) {
        (Tenancy::Operator, named) => named.clone(),
        (Tenancy::Partner(own), Some(named)) if named != own => return Err(not_found("partner", named)),
        (Tenancy::Partner(own), _) => Some(own.clone()),
    };
    let now = caller.now();
    let mut query = client_secrets::table
        .inner_join(clients::table)
        .filter(working_and_expiring(now, now + Duration::days(within)))
        .select((
            client_secrets::id,
            client_secrets::name,
            client_secrets::prefix,
            client_secrets::created_at,
            client_secrets::expires_at.assume_not_null(),
            clients::id,
            clients::name,
            clients::partner_id,
        ))
        .order((client_secrets::expires_at, client_secrets::id))
        .into_boxed();
    if let Some(partner) = partner {
        query = query.filter(clients::partner_id.eq(partner));
    }
    let rows: Vec<SecretWithClient> = query.load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(secret_id, name, prefix, created_at, expires_at, client_id, client_name, partner_id)| ExpiringSecret {
            secret_id,
            name,
            prefix,
            client_id,
            client_name,
            partner_id,
            created_at,
            expires_at,
            age_days: whole_days(created_at, now),
            expires_in_days: whole_days(now, expires_at),
        })
        .collect())
}

/// Active secrets expiring within each of [`METRIC_WITHIN_DAYS`], for the metric: one indexed count each.
pub fn count_expiring(conn: &mut DbConnection, now: NaiveDateTime) -> RegistryResult<Vec<(i64, i64)>> {
    let mut counts = Vec::with_capacity(METRIC_WITHIN_DAYS.len());
    for days in METRIC_WITHIN_DAYS {
        let count: i64 = client_secrets::table
            .filter(working_and_expiring(now, now + Duration::days(days)))
            .count()
            .get_result(conn)?;
        counts.push((days, count));
    }
    Ok(counts)
}

/// The notice due for a secret that expires at `expires_at`, given the thresholds already noticed: the
/// tightest threshold it is within, unless that one or a tighter one was already written. A secret created
/// with one day left gets the 1-day notice only, not three at once.
pub fn notice_due(expires_at: NaiveDateTime, now: NaiveDateTime, noticed: &[i32]) -> Option<i32> {
    if expires_at <= now {
        return None;
    }
    let tightest = NOTICE_DAYS.iter().copied().filter(|&days| expires_at <= now + Duration::days(days.into())).min()?;
    (!noticed.iter().any(|&n| n <= tightest)).then_some(tightest)
}

/// One pass of the expiry notices: for each active secret within 30 days of its expiry, the notice that is
/// due, written once (a row per secret and threshold, in the same transaction as its audit event). Run by
/// the instance holding the [`leases::SECRET_EXPIRY`] lease; returns how many it wrote.
pub fn write_notices(conn: &mut Tx, caller: &Caller) -> RegistryResult<usize> {
    let now = caller.now();
    let horizon = now + Duration::days(NOTICE_DAYS.iter().copied().max().unwrap_or(30).into());
    let candidates: Vec<(String, String, NaiveDateTime, String, String)> = client_secrets::table
        .inner_join(clients::table)
        .filter(working_and_expiring(now, horizon))
        .select((
            client_secrets::id,
            client_secrets::name,
            client_secrets::expires_at.assume_not_null(),
            clients::id,
            clients::partner_id,
        ))
        .order((client_secrets::expires_at, client_secrets::id))
        .load(conn.db())?;
    let ids: Vec<&String> = candidates.iter().map(|c| &c.0).collect();
    let mut noticed: HashMap<String, Vec<i32>> = HashMap::new();
    for chunk in ids.chunks(500) {
        let rows: Vec<(String, i32)> = secret_expiry_notices::table
            .filter(secret_expiry_notices::secret_id.eq_any(chunk))
            .select((secret_expiry_notices::secret_id, secret_expiry_notices::threshold_days))
            .load(conn.db())?;
        for (id, days) in rows {
            noticed.entry(id).or_default().push(days);
        }
    }
    let mut written = 0;
    for (secret_id, name, expires_at, client_id, partner_id) in &candidates {
        let Some(days) = notice_due(*expires_at, now, noticed.get(secret_id).map_or(&[], Vec::as_slice)) else {
            continue;
        };
        crate::store::write_transaction(conn, |conn| -> RegistryResult<()> {
            diesel::insert_into(secret_expiry_notices::table)
                .values((
                    secret_expiry_notices::secret_id.eq(secret_id),
                    secret_expiry_notices::threshold_days.eq(days),
                    secret_expiry_notices::noticed_at.eq(now),
                ))
                .execute(conn.db())?;
            let mut event = AuditEvent::new("secret.expiry_notice", Outcome::Success, caller.meta.clone(), now);
            event.partner_id = Some(partner_id.clone());
            event.client_id = Some(client_id.clone());
            event.actor = Some(caller.actor.clone());
            event.details = Some(json!({"secret_id": secret_id, "name": name, "days": days,
                                        "expires_at": crate::store::utc::format(expires_at)}));
            // A notice changes nothing a token request reads: no change on the feed, the cache stays warm.
            crate::audit::record_in(conn, event)?;
            Ok(())
        })?;
        written += 1;
    }
    Ok(written)
}

/// What `apply-max-age` asks for.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyMaxAge {
    /// Only this partner's secrets; absent: every partner's.
    pub partner_id: Option<String>,
    /// A secret already older than the maximum gets this many days from now instead (default 30), so that
    /// its owner is warned before it stops working; 0 lets such secrets expire at once.
    pub min_days_left: Option<i64>,
}

/// What `apply-max-age` changed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AppliedMaxAge {
    /// How many secrets got an expiry.
    pub changed: usize,
    /// Which (their ids).
    pub secret_ids: Vec<String>,
}

/// Gives every active secret without an expiry (of one partner, or all) the expiry of its partner's maximum
/// age counted from its creation, but at least `min_days_left` from now. Secrets that already expire, and
/// partners without a maximum, are left alone, so running it again changes nothing. Operator only; audited.
pub fn apply_max_age(
    conn: &mut Tx,
    caller: &Caller,
    policy: SecretPolicy,
    input: &ApplyMaxAge,
) -> RegistryResult<AppliedMaxAge> {
    caller.require_operator("the secret age policy")?;
    validate::filter("partner_id", input.partner_id.as_deref(), validate::is_partner_id)?;
    let min_days_left = input.min_days_left.unwrap_or(30);
    if !(0..=i64::from(MAX_AGE_DAYS)).contains(&min_days_left) {
        return Err(RegistryError::Invalid {
            field: "min_days_left",
            message: format!("must be between 0 and {MAX_AGE_DAYS}"),
        });
    }
    crate::store::write_transaction(conn, |conn| {
        if let Some(partner) = &input.partner_id {
            if partners::table.find(partner).count().get_result::<i64>(conn.db())? == 0 {
                return Err(not_found("partner", partner));
            }
        }
        let now = caller.now();
        let mut query = client_secrets::table
            .inner_join(clients::table.inner_join(partners::table))
            .filter(client_secrets::revoked_at.is_null())
            .filter(client_secrets::expires_at.is_null())
            .select((client_secrets::id, client_secrets::created_at, partners::secret_max_age_days))
            .order(client_secrets::id)
            .into_boxed();
        if let Some(partner) = &input.partner_id {
            query = query.filter(clients::partner_id.eq(partner.clone()));
        }
        let rows: Vec<(String, NaiveDateTime, Option<i32>)> = query.load(conn.db())?;
        let mut secret_ids = Vec::new();
        for (id, created_at, partner_days) in rows {
            let Some(age) = policy.max_age(partner_days) else { continue };
            let expiry = (created_at + age).max(now + Duration::days(min_days_left));
            diesel::update(client_secrets::table.find(&id))
                .set(client_secrets::expires_at.eq(Some(expiry)))
                .execute(conn.db())?;
            secret_ids.push(id);
        }
        caller.audit(
            conn,
            "secret.apply_max_age",
            input.partner_id.as_deref(),
            None,
            json!({"changed": secret_ids.len(), "secret_ids": secret_ids, "min_days_left": min_days_left,
                   "default_max_age_days": policy.default_max_age_days}),
        )?;
        Ok(AppliedMaxAge { changed: secret_ids.len(), secret_ids })
    })
}

/// What one tick of the secret expiry task saw and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tick {
    /// (days, active secrets expiring within them), for the metric.
    pub expiring: Vec<(i64, i64)>,
    /// Notices written by this instance (0 when another holds the lease).
    pub notices: usize,
}

/// One tick of the task every instance runs: the counts for the metric (two indexed counts), then, on the
/// instance that holds the [`leases::SECRET_EXPIRY`] lease, the notices that are due.
pub fn tick(
    conn: &mut Tx,
    clock: &crate::clock::SharedClock,
    holder: &str,
    every: std::time::Duration,
) -> RegistryResult<Tick> {
    let now = clock.now();
    let expiring = count_expiring(conn, now)?;
    if !leases::hold_for_ticks(conn, leases::SECRET_EXPIRY, holder, now, every)? {
        return Ok(Tick { expiring, notices: 0 });
    }
    let caller = Caller::system(&format!("secret-expiry:{holder}")).with_clock(clock.clone());
    Ok(Tick { expiring, notices: write_notices(conn, &caller)? })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(day: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(1_900_000_000, 0).unwrap().naive_utc() + Duration::days(day)
    }

    #[test]
    fn the_policy_expiry_is_the_earlier_of_the_maximum_and_the_one_asked_for() {
        let policy = SecretPolicy { default_max_age_days: 90 };
        assert_eq!(policy.expiry_at_creation(None, at(0), None), Some(at(90)));
        assert_eq!(policy.expiry_at_creation(None, at(0), Some(at(10))), Some(at(10)));
        assert_eq!(policy.expiry_at_creation(None, at(0), Some(at(200))), Some(at(90)));
        assert_eq!(policy.expiry_at_creation(Some(1), at(0), None), Some(at(1)), "the partner's own replaces it");
        assert_eq!(policy.expiry_at_creation(Some(0), at(0), None), None, "0: no maximum for the partner");
        let none = SecretPolicy::default();
        assert_eq!(none.expiry_at_creation(None, at(0), None), None);
        assert_eq!(none.expiry_at_creation(None, at(0), Some(at(3))), Some(at(3)));
    }

    #[test]
    fn each_notice_is_due_once_and_a_late_start_skips_the_wider_ones() {
        assert_eq!(notice_due(at(40), at(0), &[]), None);
        assert_eq!(notice_due(at(30), at(0), &[]), Some(30));
        assert_eq!(notice_due(at(30), at(0), &[30]), None);
        assert_eq!(notice_due(at(30), at(23), &[30]), Some(7));
        assert_eq!(notice_due(at(30), at(23), &[30, 7]), None);
        assert_eq!(notice_due(at(30), at(29), &[30, 7]), Some(1));
        assert_eq!(notice_due(at(1), at(0), &[]), Some(1), "created with a day left: the 1-day notice only");
        assert_eq!(notice_due(at(1), at(0), &[1]), None);
        assert_eq!(notice_due(at(1), at(1), &[]), None, "expired: no notice");
    }
}
