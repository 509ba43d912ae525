//! The request log's retention: records for a short time (on PostgreSQL by dropping whole day partitions,
//! `store::partitions`), per-minute aggregates for longer.

use chrono::NaiveDateTime;

use crate::registry::RegistryResult;
use crate::store::request_log as store;
use crate::store::{partitions, DbConnection};

/// Days the request log keeps records, and its per-minute aggregates; 0 keeps them forever
/// (`prune` applies it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub records_days: u32,
    pub aggregate_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention { records_days: 30, aggregate_days: 400 }
    }
}

/// Rows deleted by one batch: each batch is its own statement, so that a large backlog never holds locks (or
/// SQLite's write lock) for long.
pub const PRUNE_BATCH: i64 = 5000;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub records: usize,
    pub aggregates: usize,
}

/// Deletes what the retention no longer keeps, as of `now`, in batches of [`PRUNE_BATCH`].
pub fn prune(conn: &mut DbConnection, retention: Retention, now: NaiveDateTime) -> RegistryResult<Pruned> {
    let mut pruned = Pruned::default();
    let cutoff = |days: u32| now - chrono::Duration::days(i64::from(days));
    if retention.records_days > 0 {
        pruned.records = partitions::prune_before(conn, &partitions::REQUEST_LOG, cutoff(retention.records_days))?;
    }
    if retention.aggregate_days > 0 {
        pruned.aggregates = in_batches(|| store::prune_minutes(conn, cutoff(retention.aggregate_days), PRUNE_BATCH))?;
    }
    Ok(pruned)
}

fn in_batches(mut batch: impl FnMut() -> diesel::QueryResult<usize>) -> RegistryResult<usize> {
    let mut total = 0;
    loop {
        let deleted = batch()?;
        total += deleted;
        if (deleted as i64) < PRUNE_BATCH {
            return Ok(total);
        }
    }
}
