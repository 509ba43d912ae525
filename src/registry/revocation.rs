//! Token revocation: single tokens by `jti` (kept until the token's own expiry, then pruned), and every token
//! issued so far to a client or a whole partner (a cut-off time; tokens with `iat` at or before it are dead).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::json;

use super::{lookup, partners, secrets, Caller, RegistryResult};
use crate::secevents::revoked::KEEP_AFTER_EXPIRY_SECS;
use crate::secevents::{self, SecurityEvent};
use crate::store::schema::{clients as clients_table, partners as partners_table, revoked_tokens};
use crate::store::{DbConnection, Tx};

/// Revokes every token issued to the client until now. New tokens work again from the next second on.
pub fn revoke_client_tokens(conn: &mut Tx, caller: &Caller, client_id: &str) -> RegistryResult<NaiveDateTime> {
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
            .execute(conn.db())?;
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
pub fn revoke_partner_tokens(conn: &mut Tx, caller: &Caller, partner_id: &str) -> RegistryResult<NaiveDateTime> {
    caller.require_operator("partner-wide revocation")?;
    crate::store::write_transaction(conn, |conn| {
        partners::get(conn, caller, partner_id)?;
        let cutoff = caller.now();
        let event = SecurityEvent::TokensCutOff { partner_id: partner_id.to_string(), client_id: None, cutoff };
        secevents::record(conn, event, cutoff)?;
        diesel::update(partners_table::table.find(partner_id))
            .set(partners_table::tokens_revoked_before.eq(Some(cutoff)))
            .execute(conn.db())?;
        caller.audit(conn, "partner.revoke_tokens", Some(partner_id), None, json!({"cutoff": cutoff}))?;
        Ok(cutoff)
    })
}

/// Revokes one secret and, if asked, every token issued to its client so far (a leaked secret), atomically.
pub fn revoke_secret(
    conn: &mut Tx,
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

/// Forgets revoked `jti`s whose tokens had expired at `at` anyway, leeway included; returns how many.
pub fn prune_expired(conn: &mut DbConnection, at: NaiveDateTime) -> RegistryResult<usize> {
    let before = at - chrono::Duration::seconds(KEEP_AFTER_EXPIRY_SECS);
    Ok(diesel::delete(revoked_tokens::table.filter(revoked_tokens::expires_at.lt(before))).execute(conn)?)
}

/// The latest bulk-revocation cut-off that applies to a client's tokens.
pub fn cutoff(client_cutoff: Option<NaiveDateTime>, partner_cutoff: Option<NaiveDateTime>) -> Option<NaiveDateTime> {
    client_cutoff.max(partner_cutoff)
}
