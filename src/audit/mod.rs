//! Audit events: an append-only record of token requests, introspections, revocations and admin actions.
//!
//! Admin actions are recorded in the same transaction as the change they describe (`record_in`), so a change
//! never lands without its record. Token-endpoint events go through the group-commit writer.

pub mod event;
pub mod plan;

pub mod writer;

pub use event::{AuditEvent, Outcome, RequestMeta};
pub use writer::{AuditError, AuditWriter, Effect, Recorded, WriterOptions};

use diesel::prelude::*;

use crate::store::schema::audit_events;
use crate::store::{DbConnection, StoreError};

/// Inserts one event on `conn`, typically inside the transaction of the change it records.
pub fn record_in(conn: &mut DbConnection, event: AuditEvent) -> Result<(), StoreError> {
    diesel::insert_into(audit_events::table).values(event.into_row()).execute(conn)?;
    Ok(())
}
