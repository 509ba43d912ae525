//! Revoked token ids: each is recorded with its security event (`TokenRevoked`) and a change-feed note, in one
//! transaction. The registry's revocations and the audit writer's (the token endpoint's, in the commit of their
//! audit event) both come here.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::secevents::{self, SecurityEvent};
use crate::store::changes::{self, Change};
use crate::store::models::RevokedTokenRow;
use crate::store::schema::{clients as clients_table, revoked_tokens};
use crate::store::{DbConnection, StoreError, Tx};

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
    conn: &mut Tx,
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

fn insert_revoked(conn: &mut Tx, row: &RevokedTokenRow) -> Result<bool, StoreError> {
    crate::store::write_transaction(conn, |conn| {
        if is_revoked(conn, &row.jti)? {
            return Ok(false);
        }
        let partner_id: Option<String> =
            clients_table::table.find(&row.client_id).select(clients_table::partner_id).first(conn.db()).optional()?;
        let event = SecurityEvent::TokenRevoked {
            partner_id,
            client_id: row.client_id.clone(),
            jti: row.jti.clone(),
            expires_at: row.expires_at,
        };
        secevents::record(conn, event, row.revoked_at)?;
        diesel::insert_into(revoked_tokens::table).values(row).execute(conn.db())?;
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
