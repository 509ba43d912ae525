//! Partners: the tenant boundary. A suspended partner gets no tokens at all.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::paging::{self, Page, PageRequest};
use super::{not_found, scopes, validate, Caller, Permission, RegistryError, RegistryResult, Tenancy};
use crate::secevents::{self, SecurityEvent};
use crate::store::models::PartnerRow;
use crate::store::schema::{
    client_audiences, clients, partner_audiences, partner_scopes, partner_trusted_issuers, partners,
};
use crate::store::{DbConnection, Tx};

/// The operator's own partner (`admin bootstrap` creates it): its admin clients are the only way into the admin
/// API, so it cannot be suspended or deleted, nor lose `authz.admin` from its ceiling, through any entry point.
pub const OPERATOR_PARTNER: &str = "operator";

fn protected(action: &str) -> RegistryError {
    RegistryError::Protected(format!(
        "partner {OPERATOR_PARTNER} is the operator's own: {action} it would lock every admin out of the admin API"
    ))
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Partner {
    pub id: String,
    pub name: String,
    pub suspended: bool,
    /// `operator` while suspended: only the operator suspends and resumes partners.
    #[schema(value_type = Option<String>)]
    pub suspended_by: Option<&'static str>,
    /// The scopes this partner's clients may ever hold.
    pub scope_ceiling: Vec<String>,
    /// The audiences this partner's admin may give its clients (the operator gives any).
    pub audience_ceiling: Vec<String>,
    /// The identity providers whose tokens the partner's clients may accept (workload identity federation).
    pub trusted_issuers: Vec<String>,
    /// Token requests per minute of all the partner's clients together, on each instance.
    pub rate_limit_per_minute: Option<i32>,
    /// Tokens per UTC day of all the partner's clients together, across instances.
    pub token_quota_per_day: Option<i32>,
    /// Over quota, tokens are still issued, counted and audited as over quota, not refused.
    pub quota_log_only: bool,
    /// New secrets of the partner's clients expire after at most this many days (0: no maximum); `null`: the
    /// server's `--secret-max-age-days`. Set by the operator only.
    pub secret_max_age_days: Option<i32>,
    #[serde(serialize_with = "crate::store::utc::serialize")]
    pub created_at: chrono::NaiveDateTime,
    #[serde(serialize_with = "crate::store::utc::serialize")]
    pub updated_at: chrono::NaiveDateTime,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPartner {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub scope_ceiling: Vec<String>,
    #[serde(default)]
    pub audience_ceiling: Vec<String>,
    #[serde(default)]
    pub trusted_issuers: Vec<String>,
    pub rate_limit_per_minute: Option<i32>,
    pub token_quota_per_day: Option<i32>,
    #[serde(default)]
    pub quota_log_only: bool,
    /// Maximum age of new secrets in days (0: none); absent: the server's default.
    pub secret_max_age_days: Option<i32>,
}

/// A partial update: absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartnerUpdate {
    pub name: Option<String>,
    pub scope_ceiling: Option<Vec<String>>,
    /// Replaces the audience ceiling; refused with `in_use` while a client of the partner has an audience
    /// that the new ceiling drops.
    pub audience_ceiling: Option<Vec<String>>,
    /// Replaces the trusted issuers; federated credentials of a dropped issuer stop working at once.
    pub trusted_issuers: Option<Vec<String>>,
    /// `null` clears a limit.
    #[serde(default, deserialize_with = "validate::nullable")]
    pub rate_limit_per_minute: Option<Option<i32>>,
    #[serde(default, deserialize_with = "validate::nullable")]
    pub token_quota_per_day: Option<Option<i32>>,
    pub quota_log_only: Option<bool>,
    /// Maximum age of new secrets in days (0: none); `null`: the server's default again. Secrets that exist
    /// keep their expiry (see `POST /admin/v1/secrets/apply-max-age`).
    #[serde(default, deserialize_with = "validate::nullable")]
    pub secret_max_age_days: Option<Option<i32>>,
}

fn validate_secret_max_age(days: Option<i32>) -> RegistryResult<()> {
    if days.is_some_and(|d| !(0..=super::secret_expiry::MAX_AGE_DAYS).contains(&d)) {
        return Err(RegistryError::Invalid {
            field: "secret_max_age_days",
            message: format!("must be between 0 and {} days", super::secret_expiry::MAX_AGE_DAYS),
        });
    }
    Ok(())
}

fn validate_limits(rate: Option<i32>, quota: Option<i32>) -> RegistryResult<()> {
    validate::rate_limit(rate)?;
    if quota.is_some_and(|q| q < 1) {
        return Err(RegistryError::Invalid { field: "token_quota_per_day", message: "must be at least 1".into() });
    }
    Ok(())
}

fn replace_ceiling(conn: &mut DbConnection, partner_id: &str, ceiling: &[String]) -> RegistryResult<()> {
    diesel::delete(partner_scopes::table.filter(partner_scopes::partner_id.eq(partner_id))).execute(conn)?;
    for scope in ceiling {
        diesel::insert_into(partner_scopes::table)
            .values((partner_scopes::partner_id.eq(partner_id), partner_scopes::scope.eq(scope)))
            .execute(conn)?;
    }
    Ok(())
}

fn replace_audience_ceiling(conn: &mut DbConnection, partner_id: &str, ceiling: &[String]) -> RegistryResult<()> {
    diesel::delete(partner_audiences::table.filter(partner_audiences::partner_id.eq(partner_id))).execute(conn)?;
    for audience in ceiling {
        diesel::insert_into(partner_audiences::table)
            .values((partner_audiences::partner_id.eq(partner_id), partner_audiences::audience.eq(audience)))
            .execute(conn)?;
    }
    Ok(())
}

pub fn audience_ceiling(conn: &mut DbConnection, partner_id: &str) -> RegistryResult<Vec<String>> {
    Ok(partner_audiences::table
        .filter(partner_audiences::partner_id.eq(partner_id))
        .order(partner_audiences::audience)
        .select(partner_audiences::audience)
        .load(conn)?)
}

fn replace_trusted_issuers(conn: &mut DbConnection, partner_id: &str, issuers: &[String]) -> RegistryResult<()> {
    diesel::delete(partner_trusted_issuers::table.filter(partner_trusted_issuers::partner_id.eq(partner_id)))
        .execute(conn)?;
    for issuer in issuers {
        diesel::insert_into(partner_trusted_issuers::table)
            .values((partner_trusted_issuers::partner_id.eq(partner_id), partner_trusted_issuers::issuer.eq(issuer)))
            .execute(conn)?;
    }
    Ok(())
}

pub fn trusted_issuers(conn: &mut DbConnection, partner_id: &str) -> RegistryResult<Vec<String>> {
    Ok(partner_trusted_issuers::table
        .filter(partner_trusted_issuers::partner_id.eq(partner_id))
        .order(partner_trusted_issuers::issuer)
        .select(partner_trusted_issuers::issuer)
        .load(conn)?)
}

fn check_issuers(issuers: &[String]) -> RegistryResult<Vec<String>> {
    let mut checked = Vec::with_capacity(issuers.len());
    for issuer in issuers {
        super::client_keys::check_url("trusted_issuers", issuer)?;
        checked.push(issuer.clone());
    }
    checked.sort();
    checked.dedup();
    Ok(checked)
}

/// Shrinking the audience ceiling must not strand clients: refused while one of the partner's clients has
/// an audience that `ceiling` drops (change those clients first).
fn require_unused(conn: &mut DbConnection, partner_id: &str, ceiling: &[String]) -> RegistryResult<()> {
    let dropped: Vec<String> =
        audience_ceiling(conn, partner_id)?.into_iter().filter(|a| !ceiling.contains(a)).collect();
    if dropped.is_empty() {
        return Ok(());
    }
    let users: Vec<(String, String)> = client_audiences::table
        .inner_join(clients::table)
        .filter(clients::partner_id.eq(partner_id))
        .filter(client_audiences::audience.eq_any(&dropped))
        .select((client_audiences::client_id, client_audiences::audience))
        .order((client_audiences::audience, client_audiences::client_id))
        .limit(20)
        .load(conn)?;
    match users.first() {
        None => Ok(()),
        Some((client, audience)) => Err(RegistryError::InUse {
            kind: "audience",
            id: audience.clone(),
            message: format!(
                "client {client} of partner {partner_id} has it{}; change its audiences before dropping it",
                if users.len() > 1 { " (and others)" } else { "" }
            ),
        }),
    }
}

pub fn ceiling(conn: &mut DbConnection, partner_id: &str) -> RegistryResult<Vec<String>> {
    Ok(partner_scopes::table
        .filter(partner_scopes::partner_id.eq(partner_id))
        .order(partner_scopes::scope)
        .select(partner_scopes::scope)
        .load(conn)?)
}

fn from_row(conn: &mut DbConnection, row: PartnerRow) -> RegistryResult<Partner> {
    let scope_ceiling = ceiling(conn, &row.id)?;
    let audience_ceiling = audience_ceiling(conn, &row.id)?;
    let trusted_issuers = trusted_issuers(conn, &row.id)?;
    Ok(Partner {
        id: row.id,
        name: row.name,
        suspended: row.suspended,
        suspended_by: row.suspended.then_some("operator"),
        scope_ceiling,
        audience_ceiling,
        trusted_issuers,
        rate_limit_per_minute: row.rate_limit_per_minute,
        token_quota_per_day: row.token_quota_per_day,
        quota_log_only: row.quota_log_only,
        secret_max_age_days: row.secret_max_age_days,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

pub fn create(conn: &mut Tx, caller: &Caller, input: &NewPartner) -> RegistryResult<Partner> {
    caller.require_operator("partners")?;
    validate::partner_id(&input.id)?;
    validate::text("name", &input.name, 1, 200)?;
    validate_limits(input.rate_limit_per_minute, input.token_quota_per_day)?;
    validate_secret_max_age(input.secret_max_age_days)?;
    let audiences = validate::list(&input.audience_ceiling, validate::audience)?;
    let issuers = check_issuers(&input.trusted_issuers)?;
    crate::store::write_transaction(conn, |conn| {
        let ceiling = scopes::require_known(conn, &input.scope_ceiling)?;
        if partners::table.find(&input.id).count().get_result::<i64>(conn.db())? > 0 {
            return Err(RegistryError::AlreadyExists { kind: "partner", id: input.id.clone() });
        }
        let at = caller.now();
        let row = PartnerRow {
            id: input.id.clone(),
            name: input.name.clone(),
            suspended: false,
            rate_limit_per_minute: input.rate_limit_per_minute,
            token_quota_per_day: input.token_quota_per_day,
            tokens_revoked_before: None,
            created_at: at,
            updated_at: at,
            quota_log_only: input.quota_log_only,
            secret_max_age_days: input.secret_max_age_days,
        };
        diesel::insert_into(partners::table).values(&row).execute(conn.db())?;
        replace_ceiling(conn, &row.id, &ceiling)?;
        replace_audience_ceiling(conn, &row.id, &audiences)?;
        replace_trusted_issuers(conn, &row.id, &issuers)?;
        let partner = from_row(conn, row)?;
        caller.audit(conn, "partner.create", Some(&partner.id), None, json!({"after": partner}))?;
        Ok(partner)
    })
}

/// A partner as its caller may see it: a partner admin naming another partner gets `NotFound`.
pub fn get(conn: &mut DbConnection, caller: &Caller, id: &str) -> RegistryResult<Partner> {
    caller.require(Permission::ClientsRead)?;
    validate::lookup("partner", id, validate::is_partner_id)?;
    if !caller.tenancy.allows_partner(id) {
        return Err(not_found("partner", id));
    }
    let row = partners::table
        .find(id)
        .select(PartnerRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| not_found("partner", id))?;
    from_row(conn, row)
}

/// Partners by id, a page at a time (a platform can have thousands); a partner admin sees only its own.
pub fn list(conn: &mut DbConnection, caller: &Caller, request: &PageRequest) -> RegistryResult<Page<Partner>> {
    caller.require(Permission::ClientsRead)?;
    let size = request.size()?;
    let mut query = partners::table.select(PartnerRow::as_select()).order(partners::id).limit(size + 1).into_boxed();
    if let Tenancy::Partner(own) = &caller.tenancy {
        query = query.filter(partners::id.eq(own.clone()));
    }
    if let Some(cursor) = &request.cursor {
        query = query.filter(partners::id.gt(cursor.clone()));
    }
    paging::page(query.load(conn)?, size, |r: &PartnerRow| r.id.clone()).try_map(|row| from_row(conn, row))
}

pub fn update(conn: &mut Tx, caller: &Caller, id: &str, input: &PartnerUpdate) -> RegistryResult<Partner> {
    caller.require_operator("partners")?;
    if let Some(name) = &input.name {
        validate::text("name", name, 1, 200)?;
    }
    validate_limits(input.rate_limit_per_minute.flatten(), input.token_quota_per_day.flatten())?;
    validate_secret_max_age(input.secret_max_age_days.flatten())?;
    let audiences = input.audience_ceiling.as_deref().map(|a| validate::list(a, validate::audience)).transpose()?;
    let issuers = input.trusted_issuers.as_deref().map(check_issuers).transpose()?;
    crate::store::write_transaction(conn, |conn| {
        let before = get(conn, caller, id)?;
        if let Some(issuers) = &issuers {
            replace_trusted_issuers(conn, id, issuers)?;
        }
        if let Some(audiences) = &audiences {
            require_unused(conn, id, audiences)?;
            replace_audience_ceiling(conn, id, audiences)?;
        }
        if let Some(ceiling) = &input.scope_ceiling {
            if id == OPERATOR_PARTNER && !ceiling.iter().any(|s| s == scopes::ADMIN) {
                return Err(protected(&format!("removing {} from the ceiling of", scopes::ADMIN)));
            }
            let ceiling = scopes::require_known(conn, ceiling)?;
            replace_ceiling(conn, id, &ceiling)?;
        }
        let target = partners::table.find(id);
        if let Some(name) = &input.name {
            diesel::update(target).set(partners::name.eq(name)).execute(conn.db())?;
        }
        if let Some(rate) = input.rate_limit_per_minute {
            diesel::update(target).set(partners::rate_limit_per_minute.eq(rate)).execute(conn.db())?;
        }
        if let Some(quota) = input.token_quota_per_day {
            diesel::update(target).set(partners::token_quota_per_day.eq(quota)).execute(conn.db())?;
        }
        if let Some(log_only) = input.quota_log_only {
            diesel::update(target).set(partners::quota_log_only.eq(log_only)).execute(conn.db())?;
        }
        if let Some(max_age) = input.secret_max_age_days {
            diesel::update(target).set(partners::secret_max_age_days.eq(max_age)).execute(conn.db())?;
        }
        diesel::update(target).set(partners::updated_at.eq(caller.now())).execute(conn.db())?;
        let after = get(conn, caller, id)?;
        caller.audit(conn, "partner.update", Some(id), None, json!({"before": before, "after": after}))?;
        Ok(after)
    })
}

/// Suspends or resumes a partner; takes effect on the very next token request of any of its clients.
pub fn set_suspended(conn: &mut Tx, caller: &Caller, id: &str, suspended: bool) -> RegistryResult<Partner> {
    caller.require_operator("partners")?;
    if suspended && id == OPERATOR_PARTNER {
        return Err(protected("suspending"));
    }
    crate::store::write_transaction(conn, |conn| {
        let before = get(conn, caller, id)?;
        if before.suspended != suspended {
            let partner_id = id.to_string();
            let event = match suspended {
                true => SecurityEvent::PartnerSuspended { partner_id },
                false => SecurityEvent::PartnerResumed { partner_id },
            };
            secevents::record(conn, event, caller.now())?;
        }
        diesel::update(partners::table.find(id))
            .set((partners::suspended.eq(suspended), partners::updated_at.eq(caller.now())))
            .execute(conn.db())?;
        let event = if suspended { "partner.suspend" } else { "partner.resume" };
        caller.audit(conn, event, Some(id), None, json!({"after": {"suspended": suspended}}))?;
        get(conn, caller, id)
    })
}

/// Deletes a partner that has no clients left (its ceilings and usage counts go with it; its audit events stay).
/// Refused while it has clients, so that no integration stops by a side effect: delete or move them first.
pub fn delete(conn: &mut Tx, caller: &Caller, id: &str) -> RegistryResult<()> {
    caller.require_operator("partners")?;
    if id == OPERATOR_PARTNER {
        return Err(protected("deleting"));
    }
    crate::store::write_transaction(conn, |conn| {
        let before = get(conn, caller, id)?;
        let count: i64 = clients::table.filter(clients::partner_id.eq(id)).count().get_result(conn.db())?;
        if count > 0 {
            return Err(RegistryError::InUse {
                kind: "partner",
                id: id.to_string(),
                message: format!("it has {count} client(s); delete them before the partner"),
            });
        }
        diesel::delete(partners::table.find(id)).execute(conn.db())?;
        caller.audit(conn, "partner.delete", Some(id), None, json!({"before": before}))?;
        Ok(())
    })
}
