//! Leases: work that exactly one instance may do at a time (the key rotation schedule, the secret expiry
//! notices). A lease is a row with
//! its holder and an expiry, taken or renewed with one conditional update, which both backends serialize: the
//! update succeeds for the holder, or for anyone once the lease has expired.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::leases;
use super::{DbConnection, StoreError};

/// The lease of the key rotation schedule (its row is created by the migration).
pub const KEY_SCHEDULE: &str = "key-schedule";
/// The lease of the secret expiry notices (`registry::secret_expiry`; its row is created by the migration).
pub const SECRET_EXPIRY: &str = "secret-expiry";

/// Takes or renews `name` for `holder` until `until`; false when another holder's lease is still running.
pub fn try_acquire(
    conn: &mut DbConnection,
    name: &str,
    holder: &str,
    now: NaiveDateTime,
    until: NaiveDateTime,
) -> Result<bool, StoreError> {
    let taken = diesel::update(
        leases::table.filter(leases::name.eq(name)).filter(leases::holder.eq(holder).or(leases::expires_at.lt(now))),
    )
    .set((leases::holder.eq(holder), leases::expires_at.eq(until)))
    .execute(conn)?;
    Ok(taken == 1)
}

/// Takes or renews `name` for `holder` for three ticks of its task: while the holder keeps ticking it keeps
/// the lease, and when it stops another instance takes over within three ticks.
pub fn hold_for_ticks(
    conn: &mut DbConnection,
    name: &str,
    holder: &str,
    now: NaiveDateTime,
    tick: std::time::Duration,
) -> Result<bool, StoreError> {
    let lease = chrono::Duration::from_std(tick * 3).unwrap_or(chrono::Duration::minutes(5));
    try_acquire(conn, name, holder, now, now + lease)
}

/// Gives the lease up (at shutdown), so that another instance need not wait for it to expire.
pub fn release(conn: &mut DbConnection, name: &str, holder: &str) -> Result<(), StoreError> {
    diesel::update(leases::table.filter(leases::name.eq(name)).filter(leases::holder.eq(holder)))
        .set(leases::expires_at.eq(chrono::DateTime::UNIX_EPOCH.naive_utc()))
        .execute(conn)?;
    Ok(())
}
