//! Where the revocation stream's receivers stand (their positions are kept by the poll delivery, `stream.rs`).

use chrono::NaiveDateTime;
use serde::Serialize;

use crate::store::security_events;
use crate::store::{DbConnection, StoreError};

/// Where a receiver stands, for the admin API and the metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReceiverStatus {
    /// The receiver's client id.
    pub client_id: String,
    /// The last event it acknowledged (0: none yet).
    pub acked_seq: i64,
    /// Events after that one.
    pub lag_events: i64,
    /// Seconds since the oldest event it has not acknowledged happened (0 when it is up to date).
    pub lag_seconds: i64,
    #[serde(serialize_with = "crate::store::utc::serialize")]
    pub last_poll_at: NaiveDateTime,
    #[serde(serialize_with = "crate::store::utc::option::serialize")]
    pub acked_at: Option<NaiveDateTime>,
}

/// The stream's newest sequence number and every receiver's status at `now`.
pub fn statuses(conn: &mut DbConnection, now: NaiveDateTime) -> Result<(i64, Vec<ReceiverStatus>), StoreError> {
    let last = security_events::last_seq(conn)?;
    let first_kept = security_events::first_kept_seq(conn)?;
    let mut statuses = Vec::new();
    for row in security_events::receivers(conn)? {
        let lag_events = (last - row.acked_seq).max(0);
        let oldest_unacked = (row.acked_seq + 1).max(first_kept.unwrap_or(0));
        let lag_seconds = match lag_events {
            0 => 0,
            _ => security_events::occurred_at(conn, oldest_unacked)?.map_or(0, |at| (now - at).num_seconds().max(0)),
        };
        statuses.push(ReceiverStatus {
            client_id: row.client_id,
            acked_seq: row.acked_seq,
            lag_events,
            lag_seconds,
            last_poll_at: row.last_poll_at,
            acked_at: row.acked_at,
        });
    }
    Ok((last, statuses))
}
