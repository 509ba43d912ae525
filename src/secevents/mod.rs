//! The revocation stream (ARCHITECTURE.md, "The revocation stream"): every change that
//! makes tokens unacceptable, and its reversal, is a security event, stored in the change's own transaction
//! ([`record`], called by the registry next to the change) and delivered to resource servers as Security Event
//! Tokens (RFC 8417, [`set`]) by poll (RFC 8936, `stream.rs`).

pub mod receivers;
pub mod revoked;
pub mod set;

use chrono::NaiveDateTime;
use serde_json::json;

use crate::store::security_events::{self, SecurityEventRow};
use crate::store::{DbConnection, StoreError};

/// A change that makes tokens unacceptable, or undoes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecurityEvent {
    ClientDisabled {
        partner_id: String,
        client_id: String,
    },
    ClientEnabled {
        partner_id: String,
        client_id: String,
    },
    /// The client and its secrets are gone: none of its tokens is good any more.
    ClientDeleted {
        partner_id: String,
        client_id: String,
    },
    PartnerSuspended {
        partner_id: String,
    },
    PartnerResumed {
        partner_id: String,
    },
    /// One token, by `jti`, until its `exp` (`partner_id`: its client's, when the client still exists).
    TokenRevoked {
        partner_id: Option<String>,
        client_id: String,
        jti: String,
        expires_at: NaiveDateTime,
    },
    /// Every token of a client (`client_id`) or of every client of a partner (`None`) issued at or before
    /// `cutoff`.
    TokensCutOff {
        partner_id: String,
        client_id: Option<String>,
        cutoff: NaiveDateTime,
    },
    /// A secret revoked: tokens it obtains from now on are refused (those it obtained before stand, unless a
    /// cut-off comes with it).
    SecretRevoked {
        partner_id: String,
        client_id: String,
        secret_id: String,
    },
}

/// The stored kinds, one per [`SecurityEvent`] variant.
pub mod kind {
    pub const CLIENT_DISABLED: &str = "client_disabled";
    pub const CLIENT_ENABLED: &str = "client_enabled";
    pub const CLIENT_DELETED: &str = "client_deleted";
    pub const PARTNER_SUSPENDED: &str = "partner_suspended";
    pub const PARTNER_RESUMED: &str = "partner_resumed";
    pub const TOKEN_REVOKED: &str = "token_revoked";
    pub const TOKENS_CUT_OFF: &str = "tokens_cut_off";
    pub const SECRET_REVOKED: &str = "secret_revoked";
}

impl SecurityEvent {
    fn into_row(self, at: NaiveDateTime) -> SecurityEventRow {
        let row = |kind: &str, partner_id: Option<String>, client_id: Option<String>| SecurityEventRow {
            seq: 0,
            kind: kind.to_string(),
            partner_id,
            client_id,
            token_id: None,
            token_expires_at: None,
            cutoff: None,
            occurred_at: at,
            payload: "{}".to_string(),
        };
        match self {
            SecurityEvent::ClientDisabled { partner_id, client_id } => {
                row(kind::CLIENT_DISABLED, Some(partner_id), Some(client_id))
            }
            SecurityEvent::ClientEnabled { partner_id, client_id } => {
                row(kind::CLIENT_ENABLED, Some(partner_id), Some(client_id))
            }
            SecurityEvent::ClientDeleted { partner_id, client_id } => {
                row(kind::CLIENT_DELETED, Some(partner_id), Some(client_id))
            }
            SecurityEvent::PartnerSuspended { partner_id } => row(kind::PARTNER_SUSPENDED, Some(partner_id), None),
            SecurityEvent::PartnerResumed { partner_id } => row(kind::PARTNER_RESUMED, Some(partner_id), None),
            SecurityEvent::TokenRevoked { partner_id, client_id, jti, expires_at } => SecurityEventRow {
                token_id: Some(jti),
                token_expires_at: Some(expires_at),
                ..row(kind::TOKEN_REVOKED, partner_id, Some(client_id))
            },
            SecurityEvent::TokensCutOff { partner_id, client_id, cutoff } => {
                SecurityEventRow { cutoff: Some(cutoff), ..row(kind::TOKENS_CUT_OFF, Some(partner_id), client_id) }
            }
            SecurityEvent::SecretRevoked { partner_id, client_id, secret_id } => SecurityEventRow {
                payload: json!({ "secret_id": secret_id }).to_string(),
                ..row(kind::SECRET_REVOKED, Some(partner_id), Some(client_id))
            },
        }
    }
}

/// Stores `event`, which happened at `at`, in the caller's transaction; returns its sequence number. Call it
/// before the change updates its own rows (the lock order of `store::security_events`).
pub fn record(conn: &mut crate::store::Tx, event: SecurityEvent, at: NaiveDateTime) -> Result<i64, StoreError> {
    security_events::append(conn, event.into_row(at))
}

/// How long events are kept: at least a day, and always the longest token lifetime plus an hour. An event
/// matters only while a token issued before it may still be presented, so a receiver that starts from what is
/// kept misses nothing that still counts; the day is room for a receiver that was down for a while.
pub fn retention(max_token_lifetime_secs: i64) -> chrono::Duration {
    // A century stands in for "forever" (chrono's durations end near 292 billion years, seconds do not).
    let lifetime = chrono::Duration::seconds(max_token_lifetime_secs.clamp(0, 100 * 365 * 86_400));
    (lifetime + chrono::Duration::hours(1)).max(chrono::Duration::days(1))
}

/// Rows deleted per statement when pruning.
pub const PRUNE_BATCH: i64 = 1000;

/// Forgets the events older than the retention at `now`; returns how many.
pub fn prune(conn: &mut DbConnection, now: NaiveDateTime, max_token_lifetime_secs: i64) -> Result<usize, StoreError> {
    security_events::prune(conn, now - retention(max_token_lifetime_secs), PRUNE_BATCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_outlives_the_longest_token() {
        assert_eq!(retention(600), chrono::Duration::days(1));
        assert_eq!(retention(7 * 86_400), chrono::Duration::days(7) + chrono::Duration::hours(1));
        assert!(retention(i64::MAX) > chrono::Duration::days(365));
        assert_eq!(retention(-1), chrono::Duration::days(1));
    }
}
