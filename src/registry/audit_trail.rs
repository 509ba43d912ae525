//! Reading the audit trail (written by `audit/`): filters, newest first, cursor pagination, partner isolation;
//! and retention.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::{Caller, Permission, RegistryError, RegistryResult, Tenancy};
use crate::audit::{AuditEvent, Outcome, RequestMeta};
use crate::store::models::AuditEventRow;
use crate::store::schema::audit_events;
use crate::store::{partitions, DbConnection};

pub const DEFAULT_PAGE_SIZE: i64 = 100;
pub const MAX_PAGE_SIZE: i64 = 1000;

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditFilter {
    pub partner_id: Option<String>,
    pub client_id: Option<String>,
    pub event_type: Option<String>,
    pub outcome: Option<String>,
    /// Events at or after this time (RFC 3339, e.g. `2026-11-22T20:00:00Z`).
    #[serde(default, with = "crate::store::utc::option")]
    pub since: Option<NaiveDateTime>,
    /// Events before this time.
    #[serde(default, with = "crate::store::utc::option")]
    pub until: Option<NaiveDateTime>,
    /// The previous page's `next_cursor`: continue with older events.
    pub cursor: Option<i64>,
    pub limit: Option<i64>,
}

/// An event as the API and CLI show it.
pub type AuditRecord = AuditEventRow;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    #[schema(value_type = Vec<crate::store::models::AuditEventRow>)]
    pub items: Vec<AuditRecord>,
    pub next_cursor: Option<i64>,
}

/// Events matching `filter`, newest first. A partner admin sees only its own partner's events, whatever
/// partner it names.
pub fn list(conn: &mut DbConnection, caller: &Caller, filter: &AuditFilter) -> RegistryResult<AuditPage> {
    caller.require(Permission::AuditRead)?;
    let limit = filter.limit.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&limit) {
        return Err(RegistryError::Invalid {
            field: "limit",
            message: format!("must be between 1 and {MAX_PAGE_SIZE}"),
        });
    }
    use crate::registry::validate;
    validate::filter("partner_id", filter.partner_id.as_deref(), validate::is_partner_id)?;
    validate::filter("client_id", filter.client_id.as_deref(), validate::is_client_id)?;
    validate::filter("event_type", filter.event_type.as_deref(), validate::is_event_type)?;
    if let Some(outcome) = &filter.outcome {
        if outcome != "success" && outcome != "failure" {
            return Err(RegistryError::Invalid { field: "outcome", message: "must be success or failure".into() });
        }
    }
    let mut query = audit_events::table
        .select(AuditEventRow::as_select())
        .order(audit_events::id.desc())
        .limit(limit + 1)
        .into_boxed();
    if let Tenancy::Partner(own) = &caller.tenancy {
        query = query.filter(audit_events::partner_id.eq(own.clone()));
    }
    if let Some(partner_id) = &filter.partner_id {
        query = query.filter(audit_events::partner_id.eq(partner_id.clone()));
    }
    if let Some(client_id) = &filter.client_id {
        query = query.filter(audit_events::client_id.eq(client_id.clone()));
    }
    if let Some(event_type) = &filter.event_type {
        query = query.filter(audit_events::event_type.eq(event_type.clone()));
    }
    if let Some(outcome) = &filter.outcome {
        query = query.filter(audit_events::outcome.eq(outcome.clone()));
    }
    if let Some(since) = filter.since {
        query = query.filter(audit_events::occurred_at.ge(since));
    }
    if let Some(until) = filter.until {
        query = query.filter(audit_events::occurred_at.lt(until));
    }
    if let Some(cursor) = filter.cursor {
        query = query.filter(audit_events::id.lt(cursor));
    }
    let mut rows = query.load(conn)?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.id)
    } else {
        None
    };
    Ok(AuditPage { items: rows, next_cursor })
}

/// Deletes events older than `days` days before `now`; returns how many.
/// The hourly retention: an `audit.prune` event by `maintenance` records each prune that deleted anything.
pub fn prune_older_than(conn: &mut DbConnection, days: u32, now: NaiveDateTime) -> RegistryResult<usize> {
    prune(conn, "maintenance", RequestMeta::default(), days, now, false)
}

/// An operator's prune (`audit prune`): always recorded, with who, the age and how many events went, so
/// that deleting part of the trail is itself on the trail.
pub fn prune_by(conn: &mut DbConnection, caller: &Caller, days: u32) -> RegistryResult<usize> {
    caller.require_operator("the audit retention")?;
    prune(conn, &caller.actor, caller.meta.clone(), days, caller.now(), true)
}

fn prune(
    conn: &mut DbConnection,
    actor: &str,
    meta: RequestMeta,
    days: u32,
    now: NaiveDateTime,
    always: bool,
) -> RegistryResult<usize> {
    let cutoff = now - chrono::Duration::days(i64::from(days));
    // Not one transaction: whole partitions go, then short batches, so that token requests are recorded
    // meanwhile. The record of the prune follows it; a prune cut short by an error is logged by the caller
    // and finished by the next one.
    let deleted = partitions::prune_before(conn, &partitions::AUDIT_EVENTS, cutoff)?;
    if always || deleted > 0 {
        let mut event = AuditEvent::new("audit.prune", Outcome::Success, meta, now);
        event.actor = Some(actor.to_string());
        event.details = Some(serde_json::json!({
            "older_than_days": days,
            "before": crate::store::utc::format(&cutoff),
            "deleted": deleted,
        }));
        crate::audit::record_in(conn, event)?;
    }
    Ok(deleted)
}
