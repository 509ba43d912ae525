//! Time-partitioned append-only tables (the audit trail, the request log): on PostgreSQL one
//! range partition per UTC day, created ahead of time by the server's maintenance, plus a default partition
//! that takes whatever no day partition covers, so that no insert ever fails for want of a partition.
//! Retention drops whole day partitions and deletes in bounded batches only what is left before the cut-off
//! (the day that straddles it, and the default partition); on SQLite, which has no partitions, it deletes in
//! bounded batches. No statement of retention holds a lock for long, so token requests keep being recorded
//! while it runs.
//!
//! A table opts in with a migration that creates it `PARTITION BY RANGE (<column>)` with a default partition
//! named `<table>_default`; day partitions are named `<table>_pYYYYMMDD` (the migration may create some).

use chrono::{NaiveDate, NaiveDateTime};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};

use super::{DbConnection, StoreError};

/// How many days ahead of today the maintenance keeps partitions: a week of room for a server that stops
/// running its maintenance (events past the last partition go to the default partition, never fail).
pub const DAYS_AHEAD: u64 = 7;

/// Rows one statement of retention deletes at most: each batch is its own short transaction.
pub const DELETE_BATCH: i64 = 10_000;

/// A table partitioned by day on a timestamp column, with an integer key column.
#[derive(Debug, Clone, Copy)]
pub struct DailyPartitions {
    pub table: &'static str,
    /// The `TIMESTAMP` partition key.
    pub column: &'static str,
    /// A column that identifies a row (with the partition key), for batched deletes.
    pub key: &'static str,
}

pub const AUDIT_EVENTS: DailyPartitions = DailyPartitions { table: "audit_events", column: "occurred_at", key: "id" };
pub const REQUEST_LOG: DailyPartitions = DailyPartitions { table: "request_log", column: "occurred_at", key: "id" };

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

impl DailyPartitions {
    pub fn partition_name(&self, day: NaiveDate) -> String {
        format!("{}_p{}", self.table, day.format("%Y%m%d"))
    }

    fn default_partition(&self) -> String {
        format!("{}_default", self.table)
    }

    /// The days that have a partition, oldest first.
    pub fn days(&self, conn: &mut diesel::PgConnection) -> Result<Vec<NaiveDate>, StoreError> {
        let names: Vec<Name> = diesel::sql_query(
            "SELECT c.relname::text AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = to_regclass($1)",
        )
        .bind::<Text, _>(self.table)
        .load(conn)?;
        let prefix = format!("{}_p", self.table);
        let mut days: Vec<NaiveDate> = names
            .iter()
            .filter_map(|n| n.name.strip_prefix(&prefix))
            .filter_map(|suffix| NaiveDate::parse_from_str(suffix, "%Y%m%d").ok())
            .collect();
        days.sort();
        Ok(days)
    }

    /// Creates the missing day partitions from `first` through `last`; returns how many it created. Safe to
    /// run on several instances at once: each creation holds a transaction-scoped advisory lock of the table
    /// and checks again under it. Rows of the day already in the default partition (a server that did not
    /// run its maintenance for a week) move into the new partition in the same transaction.
    pub fn ensure(
        &self,
        conn: &mut diesel::PgConnection,
        first: NaiveDate,
        last: NaiveDate,
    ) -> Result<usize, StoreError> {
        let existing = self.days(conn)?;
        let mut created = 0;
        for day in first.iter_days().take_while(|day| *day <= last) {
            if existing.contains(&day) {
                continue;
            }
            let name = self.partition_name(day);
            let (from, to) = (day_start(day), day_start(day.succ_opt().unwrap_or(NaiveDate::MAX)));
            let made = conn.transaction(|conn| -> Result<bool, diesel::result::Error> {
                // A DDL lock that waits long would queue every insert behind it; try again next time instead.
                conn.batch_execute("SET LOCAL lock_timeout = '2s'")?;
                diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext($1))")
                    .bind::<Text, _>(self.table)
                    .execute(conn)?;
                let present: Vec<Name> = diesel::sql_query("SELECT $1::text AS name WHERE to_regclass($1) IS NOT NULL")
                    .bind::<Text, _>(&name)
                    .load(conn)?;
                if !present.is_empty() {
                    return Ok(false);
                }
                let (table, column, default) = (self.table, self.column, self.default_partition());
                conn.batch_execute(&format!(
                    "CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
                ))?;
                diesel::sql_query(format!(
                    "WITH moved AS (DELETE FROM {default} WHERE {column} >= $1 AND {column} < $2 RETURNING *) \
                     INSERT INTO {name} SELECT * FROM moved"
                ))
                .bind::<Timestamp, _>(from)
                .bind::<Timestamp, _>(to)
                .execute(conn)?;
                conn.batch_execute(&format!(
                    "ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM ('{from}') TO ('{to}')"
                ))?;
                Ok(true)
            })?;
            created += usize::from(made);
        }
        Ok(created)
    }

    /// Drops the day partitions that end at or before `cutoff`; returns how many rows they held.
    fn drop_before(&self, conn: &mut diesel::PgConnection, cutoff: NaiveDateTime) -> Result<usize, StoreError> {
        let mut dropped = 0;
        for day in self.days(conn)? {
            if day_start(day.succ_opt().unwrap_or(NaiveDate::MAX)) > cutoff {
                break;
            }
            let name = self.partition_name(day);
            dropped += conn.transaction(|conn| -> Result<usize, diesel::result::Error> {
                // Dropping a partition locks the whole table for an instant; never wait long for that lock.
                conn.batch_execute("SET LOCAL lock_timeout = '2s'")?;
                let rows: Count =
                    diesel::sql_query(format!("SELECT count(*) AS count FROM {name}")).get_result(conn)?;
                conn.batch_execute(&format!("DROP TABLE {name}"))?;
                Ok(rows.count as usize)
            })?;
        }
        Ok(dropped)
    }
}

fn day_start(day: NaiveDate) -> NaiveDateTime {
    day.and_hms_opt(0, 0, 0).unwrap_or(NaiveDateTime::MAX)
}

/// The maintenance's part: on PostgreSQL, today's partition and [`DAYS_AHEAD`] more exist afterwards; returns
/// how many were created. Nothing to do on SQLite.
pub fn ensure_ahead(conn: &mut DbConnection, table: &DailyPartitions, today: NaiveDate) -> Result<usize, StoreError> {
    match conn {
        DbConnection::Postgresql(pg) => {
            table.ensure(pg, today, today.checked_add_days(chrono::Days::new(DAYS_AHEAD)).unwrap_or(today))
        }
        DbConnection::Sqlite(_) => Ok(0),
    }
}

/// Retention: removes every row older than `cutoff` and returns how many. On PostgreSQL whole day partitions
/// go first; then what remains before the cut-off (on SQLite, everything) is deleted [`DELETE_BATCH`] rows
/// at a time, each batch its own transaction, so that writers wait for one short batch at most.
pub fn prune_before(
    conn: &mut DbConnection,
    table: &DailyPartitions,
    cutoff: NaiveDateTime,
) -> Result<usize, StoreError> {
    let mut removed = match conn {
        DbConnection::Postgresql(pg) => table.drop_before(pg, cutoff)?,
        DbConnection::Sqlite(_) => 0,
    };
    let DailyPartitions { table, column, key } = *table;
    // The outer condition on the partition key keeps PostgreSQL to the partitions before the cut-off.
    let delete = format!(
        "DELETE FROM {table} WHERE {column} < $1 AND {key} IN \
         (SELECT {key} FROM {table} WHERE {column} < $1 LIMIT $2)"
    );
    loop {
        let deleted =
            diesel::sql_query(&delete).bind::<Timestamp, _>(cutoff).bind::<BigInt, _>(DELETE_BATCH).execute(conn)?;
        removed += deleted;
        if (deleted as i64) < DELETE_BATCH {
            return Ok(removed);
        }
    }
}
