//! The request log (ARCHITECTURE.md, The request log): what resource servers report about the requests they
//! served, stored with the reporter's client id, aggregated per minute for charts, read back with filters and
//! partner isolation, and pruned by a retention.
//!
//! `record` checks a reported batch (pure), `aggregate` plans the per-minute counts (pure), `query` reads the
//! log and the aggregates, `retention` prunes; the SQL is in `store::request_log`.

pub mod aggregate;
pub mod query;
pub mod record;
pub mod retention;

use crate::registry::{Caller, Permission, RegistryError, RegistryResult};
use crate::store::DbConnection;

/// Most records in one batch: a reporter flushes far more often than that fills.
pub const MAX_BATCH_RECORDS: usize = 1000;
/// Largest ingestion body: 1000 records of the longest route and ids fit.
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// Stores a reported batch, all or nothing, with its per-minute aggregates in the same transaction; returns
/// how many records were accepted. Only a token with `authz.usage.report` may report; its client is stored
/// as each record's `reporter`.
pub fn ingest(conn: &mut DbConnection, caller: &Caller, records: &[serde_json::Value]) -> RegistryResult<usize> {
    caller.require(Permission::UsageReport)?;
    let reporter =
        caller.client_id().ok_or_else(|| RegistryError::Forbidden("only a client's token reports requests".into()))?;
    if records.len() > MAX_BATCH_RECORDS {
        return Err(RegistryError::TooLarge(format!(
            "{} records in one batch; send at most {MAX_BATCH_RECORDS}",
            records.len()
        )));
    }
    let rows = record::validate_batch(records, reporter, caller.now())?;
    let minutes = aggregate::per_minute(&rows);
    crate::store::request_log::insert_batch(conn, &rows, &minutes)?;
    Ok(rows.len())
}

/// A status filter: one code (`404`) or a class (`4xx`), as the inclusive range of codes it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Code(i32),
    Class(i32),
}

impl StatusFilter {
    pub fn parse(text: &str) -> RegistryResult<Self> {
        let invalid = || RegistryError::Invalid {
            field: "status",
            message: format!("{text:?} is neither a status code (100-599) nor a class (1xx to 5xx)"),
        };
        let bytes = text.as_bytes();
        if bytes.len() == 3 && bytes[1..].eq_ignore_ascii_case(b"xx") {
            let class = i32::from(bytes[0]) - i32::from(b'0');
            return if (1..=5).contains(&class) { Ok(StatusFilter::Class(class)) } else { Err(invalid()) };
        }
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_digit) {
            return Err(invalid());
        }
        let code: i32 = text.parse().map_err(|_| invalid())?;
        if record::STATUS_RANGE.contains(&code) {
            Ok(StatusFilter::Code(code))
        } else {
            Err(invalid())
        }
    }

    /// The inclusive range of codes.
    pub fn range(self) -> (i32, i32) {
        match self {
            StatusFilter::Code(code) => (code, code),
            StatusFilter::Class(class) => (class * 100, class * 100 + 99),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::StatusFilter;

    #[test]
    fn status_filters() {
        assert_eq!(StatusFilter::parse("404").unwrap(), StatusFilter::Code(404));
        assert_eq!(StatusFilter::parse("4xx").unwrap().range(), (400, 499));
        assert_eq!(StatusFilter::parse("2XX").unwrap(), StatusFilter::Class(2));
        for bad in ["", "4", "40", "4000", "099", "600", "6xx", "0xx", "x4x", "+99", "4x", " 404", "४०४"] {
            assert!(StatusFilter::parse(bad).is_err(), "{bad:?}");
        }
    }
}
