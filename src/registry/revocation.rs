//! Token revocation: single tokens by `jti` (kept until the token's own expiry, then pruned), and every token
//! issued so far to a client or a whole partner (a cut-off time; tokens with `iat` at or before it are dead).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::json;

use super::{lookup, partners, secrets, Caller, RegistryResult};
use crate::secevents::{self, SecurityEvent};
use crate::store::changes::{self, Change};
use crate::store::models::RevokedTokenRow;
use crate::store::schema::{clients as clients_table, partners as partners_table, revoked_tokens};
use crate::store::{DbConnection, StoreError};

/// Revokes every token issued to the client until now. New tokens work again from the next second on.
pub fn revoke_client_tokens(
    conn: &mut DbConnection,
    caller: &Caller,
    client_id: &str,
) -> RegistryResult<NaiveDateTime> {
    crate::store::write_transaction(conn, |conn| {
        let client = lookup::get_row(conn, &caller.tenancy, client_id)?;
        lookup::require_writable(caller, &client)?;
        let cutoff = caller.now();
        let event = SecurityEvent::TokensCutOff {
            partner_id: client.partner_id.clone(),
            client_id: Some(client_id.to_string()),
            cutoff,
        };
        secevents::record(conn, event, cutoff)?;
        diesel::update(clients_table::table.find(client_id))
            .set(clients_table::tokens_revoked_before.eq(Some(cutoff)))
            .execute(conn)?;
        caller.audit(
            conn,
            "client.revoke_tokens",
            Some(&client.partner_id),
            Some(client_id),
            json!({"cutoff": cutoff}),
        )?;
        Ok(cutoff)
    })
}

/// Revokes every token issued to any client of the partner until now. Operator only.
pub fn revoke_partner_tokens(
    conn: &mut DbConnection,
    caller: &Caller,
    partner_id: &str,
) -> RegistryResult<NaiveDateTime> {
    caller.require_operator("partner-wide revocation")?;
    crate::store::write_transaction(conn, |conn| {
        partners::get(conn, caller, partner_id)?;
        let cutoff = caller.now();
        let event = SecurityEvent::TokensCutOff { partner_id: partner_id.to_string(), client_id: None, cutoff };
        secevents::record(conn, event, cutoff)?;
        diesel::update(partners_table::table.find(partner_id))
            .set(partners_table::tokens_revoked_before.eq(Some(cutoff)))
            .execute(conn)?;
        caller.audit(conn, "partner.revoke_tokens", Some(partner_id), None, json!({"cutoff": cutoff}))?;
        Ok(cutoff)
    })
}

/// Revokes one secret and, if asked, every token issued to its client so far (a leaked secret), atomically.
pub fn revoke_secret(
    conn: &mut DbConnection,
    caller: &Caller,
    client_id: &str,
    secret_id: &str,
    revoke_tokens: bool,
) -> RegistryResult<secrets::SecretInfo> {
    crate::store::write_transaction(conn, |conn| {
        let info = secrets::revoke(conn, caller, client_id, secret_id)?;
        if revoke_tokens {
            revoke_client_tokens(conn, caller, client_id)?;
        }
        Ok(info)
    })
}

/// The revocation stream's newest event and its receivers (the clients that polled it), each with how far
/// behind it is. Operator only.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct EventReceivers {
    /// The newest event's sequence number (0 before the first).
    pub last_seq: i64,
    pub items: Vec<secevents::receivers::ReceiverStatus>,
}

pub fn event_receivers(conn: &mut DbConnection, caller: &Caller) -> RegistryResult<EventReceivers> {
    caller.require_operator("the revocation stream's receivers")?;
    let (last_seq, items) = secevents::receivers::statuses(conn, caller.now())?;
    Ok(EventReceivers { last_seq, items })
}

/// Whether a token id has been revoked.
pub fn is_revoked(conn: &mut DbConnection, jti: &str) -> Result<bool, StoreError> {
    Ok(revoked_tokens::table.find(jti).count().get_result::<i64>(conn)? > 0)
}

/// Records a revoked `jti` (revoked at `revoked_at`) until `expires_at`; false if it was already. Revoking twice is not an error, also
/// when two instances revoke the same token at once: on PostgreSQL both may find no row, and the second
/// insert then fails on the primary key once the first commits. That is "already revoked" too; the insert
/// runs in its own savepoint (a nested transaction), so the caller's transaction (the audit writer's batch)
/// survives it. The token endpoint's revocations reach here through the audit writer, in the same commit as
/// their audit event.
pub fn revoke_jti(
    conn: &mut DbConnection,
    jti: &str,
    client_id: &str,
    expires_at: NaiveDateTime,
    revoked_at: NaiveDateTime,
) -> Result<bool, StoreError> {
    use diesel::result::{DatabaseErrorKind, Error};
    let row = RevokedTokenRow { jti: jti.to_string(), client_id: client_id.to_string(), expires_at, revoked_at };
    let inserted = insert_revoked(conn, &row);
    match inserted {
        Err(StoreError::Query(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _))) => Ok(false),
        other => other,
    }
}

fn insert_revoked(conn: &mut DbConnection, row: &RevokedTokenRow) -> Result<bool, StoreError> {
    crate::store::write_transaction(conn, |conn| {
        if is_revoked(conn, &row.jti)? {
            return Ok(false);
        }
        let partner_id: Option<String> =
            clients_table::table.find(&row.client_id).select(clients_table::partner_id).first(conn).optional()?;
        let event = SecurityEvent::TokenRevoked {
            partner_id,
            client_id: row.client_id.clone(),
            jti: row.jti.clone(),
            expires_at: row.expires_at,
        };
        secevents::record(conn, event, row.revoked_at)?;
        diesel::insert_into(revoked_tokens::table).values(row).execute(conn)?;
        // Cached snapshots hold the client's revoked token ids.
        changes::publish(conn, Change::Client(row.client_id.clone()), row.revoked_at)?;
        Ok(true)
    })
}

/// How long a revoked `jti` outlives its token's `exp`. Verification accepts a token up to
/// `oauth::verify::LEEWAY_SECS` after `exp` (whole seconds, so up to a second more), and during that time only
/// this row keeps a revoked token dead; the rest is room for clock skew between instances sharing the database.
/// (`oauth::verify` asserts at compile time that this exceeds the leeway.)
pub const KEEP_AFTER_EXPIRY_SECS: i64 = 60;

/// Forgets revoked `jti`s whose tokens had expired at `at` anyway, leeway included; returns how many.
pub fn prune_expired(conn: &mut DbConnection, at: NaiveDateTime) -> RegistryResult<usize> {
    let before = at - chrono::Duration::seconds(KEEP_AFTER_EXPIRY_SECS);
    Ok(diesel::delete(revoked_tokens::table.filter(revoked_tokens::expires_at.lt(before))).execute(conn)?)
}

/// The latest bulk-revocation cut-off that applies to a client's tokens.
pub fn cutoff(client_cutoff: Option<NaiveDateTime>, partner_cutoff: Option<NaiveDateTime>) -> Option<NaiveDateTime> {
    client_cutoff.max(partner_cutoff)
}
