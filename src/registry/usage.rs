//! A partner's daily token usage as the admin API and CLI read it (the counts and the calendar are in
//! `store/usage.rs`).

use chrono::NaiveDateTime;
use serde::Serialize;

use super::{partners, Caller, RegistryResult};
use crate::store::usage::{day_of, next_reset, tokens_on};
use crate::store::DbConnection;

/// A partner's tokens today against its quota.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Usage {
    pub partner_id: String,
    /// The UTC day counted, `YYYY-MM-DD`.
    pub day: String,
    pub tokens: i64,
    pub token_quota_per_day: Option<i32>,
    pub quota_log_only: bool,
    /// When the count starts again from zero: the next UTC midnight.
    #[serde(serialize_with = "crate::store::utc::serialize")]
    pub resets_at: NaiveDateTime,
}

/// The partner's count for the day of `at`, as the caller may see it (a partner admin only its own).
pub fn today(conn: &mut DbConnection, caller: &Caller, partner_id: &str) -> RegistryResult<Usage> {
    let partner = partners::get(conn, caller, partner_id)?;
    let at = caller.now();
    let day = day_of(at);
    let tokens = tokens_on(conn, partner_id, &day)?;
    Ok(Usage {
        partner_id: partner.id,
        day,
        tokens,
        token_quota_per_day: partner.token_quota_per_day,
        quota_log_only: partner.quota_log_only,
        resets_at: next_reset(at),
    })
}
