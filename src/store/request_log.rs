//! The request log's storage: one multi-row insert of a batch with its per-minute aggregates in the same
//! transaction, the listing's query, the aggregates' query, and pruning in bounded batches.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{request_log, request_minutes};
use super::{DbConnection, StoreError};

/// A reported request as stored; the database assigns `id`.
#[derive(Debug, Clone, PartialEq, Eq, Insertable)]
#[diesel(table_name = request_log)]
pub struct NewRequestRow {
    pub occurred_at: NaiveDateTime,
    pub reporter: String,
    pub client_id: String,
    pub partner_id: String,
    pub method: String,
    pub route: String,
    pub status: i32,
    pub latency_ms: i32,
    pub jti: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = request_log)]
pub struct RequestRow {
    pub id: i64,
    pub occurred_at: NaiveDateTime,
    pub reporter: String,
    pub client_id: String,
    pub partner_id: String,
    pub method: String,
    pub route: String,
    pub status: i32,
    pub latency_ms: i32,
}

/// One minute's requests of one client to one route with one status class (1 for 1xx ... 5 for 5xx).
#[derive(Debug, Clone, PartialEq, Eq, Insertable)]
#[diesel(table_name = request_minutes)]
pub struct MinuteRow {
    pub minute: NaiveDateTime,
    pub partner_id: String,
    pub client_id: String,
    pub method: String,
    pub route: String,
    pub status_class: i32,
    pub requests: i64,
    pub latency_sum_ms: i64,
    pub latency_max_ms: i32,
}

/// Which records a query reads; every field narrows it. Tenancy is already folded into `partner_id`.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub partner_id: Option<String>,
    pub client_id: Option<String>,
    pub route: Option<String>,
    /// Inclusive range of status codes (a code is `(404, 404)`, a class `(400, 499)`).
    pub status: Option<(i32, i32)>,
    pub since: Option<NaiveDateTime>,
    pub until: Option<NaiveDateTime>,
}

/// Stores a batch and adds it to the per-minute aggregates, in one transaction. `minutes` must be sorted by
/// their key (as a `BTreeMap` yields them), so that concurrent batches lock aggregate rows in one order.
pub fn insert_batch(conn: &mut DbConnection, rows: &[NewRequestRow], minutes: &[MinuteRow]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    match conn {
        // One statement, which autocommit makes one transaction: one round trip, a constant text.
        DbConnection::Postgresql(pg) => insert_batch_postgres(pg, rows, minutes)?,
        DbConnection::Sqlite(_) => super::write_transaction(conn, |conn| {
            let DbConnection::Sqlite(sqlite) = conn else {
                unreachable!("the backend of a connection does not change")
            };
            diesel::insert_into(request_log::table).values(rows).execute(sqlite)?;
            upsert_minutes_sqlite(sqlite, minutes)
        })?,
    };
    Ok(())
}

/// Diesel has no multi-row upsert for SQLite: the statement is written here, one `VALUES` tuple per row (at
/// most 1000 rows of 9 parameters, within SQLite's 32766).
fn upsert_minutes_sqlite(conn: &mut diesel::SqliteConnection, minutes: &[MinuteRow]) -> QueryResult<usize> {
    use diesel::sql_types::{BigInt, Integer, Text, Timestamp};
    if minutes.is_empty() {
        return Ok(0);
    }
    let tuples = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?)"; minutes.len()].join(", ");
    let sql = format!(
        "INSERT INTO request_minutes (minute, partner_id, client_id, method, route, status_class, requests, \
         latency_sum_ms, latency_max_ms) VALUES {tuples} \
         ON CONFLICT (minute, partner_id, client_id, method, route, status_class) DO UPDATE SET \
         requests = requests + excluded.requests, latency_sum_ms = latency_sum_ms + excluded.latency_sum_ms, \
         latency_max_ms = max(latency_max_ms, excluded.latency_max_ms)"
    );
    let mut query = diesel::sql_query(sql).into_boxed::<diesel::sqlite::Sqlite>();
    for row in minutes {
        query = query
            .bind::<Timestamp, _>(row.minute)
            .bind::<Text, _>(&row.partner_id)
            .bind::<Text, _>(&row.client_id)
            .bind::<Text, _>(&row.method)
            .bind::<Text, _>(&row.route)
            .bind::<Integer, _>(row.status_class)
            .bind::<BigInt, _>(row.requests)
            .bind::<BigInt, _>(row.latency_sum_ms)
            .bind::<Integer, _>(row.latency_max_ms);
    }
    query.execute(conn)
}

/// The batch and its aggregates as one array per column, unnested by PostgreSQL: 18 parameters whatever the
/// batch size (a `VALUES` list would be a new statement text, parsed and planned, for every size).
const INSERT_BATCH: &str = "WITH logged AS (INSERT INTO request_log (occurred_at, reporter, client_id, \
     partner_id, method, route, status, latency_ms, jti) \
     SELECT at, $2, c, p, m, r, s, l, j FROM unnest($1::timestamp[], $3::text[], $4::text[], $5::text[], \
     $6::text[], $7::int[], $8::int[], $9::text[]) AS b(at, c, p, m, r, s, l, j)) \
     INSERT INTO request_minutes (minute, partner_id, client_id, method, route, status_class, requests, \
     latency_sum_ms, latency_max_ms) \
     SELECT * FROM unnest($10::timestamp[], $11::text[], $12::text[], $13::text[], $14::text[], $15::int[], \
     $16::bigint[], $17::bigint[], $18::int[]) \
     ON CONFLICT (minute, partner_id, client_id, method, route, status_class) DO UPDATE SET \
     requests = request_minutes.requests + excluded.requests, \
     latency_sum_ms = request_minutes.latency_sum_ms + excluded.latency_sum_ms, \
     latency_max_ms = GREATEST(request_minutes.latency_max_ms, excluded.latency_max_ms)";

fn insert_batch_postgres(conn: &mut PgConnection, rows: &[NewRequestRow], minutes: &[MinuteRow]) -> QueryResult<usize> {
    use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Timestamp};
    let reporter = rows[0].reporter.as_str();
    debug_assert!(rows.iter().all(|row| row.reporter == reporter), "one reporter per batch");
    let text = |field: fn(&NewRequestRow) -> &str| rows.iter().map(field).collect::<Vec<_>>();
    let minute_text = |field: fn(&MinuteRow) -> &str| minutes.iter().map(field).collect::<Vec<_>>();
    diesel::sql_query(INSERT_BATCH)
        .bind::<Array<Timestamp>, _>(rows.iter().map(|row| row.occurred_at).collect::<Vec<_>>())
        .bind::<Text, _>(reporter)
        .bind::<Array<Text>, _>(text(|row| &row.client_id))
        .bind::<Array<Text>, _>(text(|row| &row.partner_id))
        .bind::<Array<Text>, _>(text(|row| &row.method))
        .bind::<Array<Text>, _>(text(|row| &row.route))
        .bind::<Array<Integer>, _>(rows.iter().map(|row| row.status).collect::<Vec<_>>())
        .bind::<Array<Integer>, _>(rows.iter().map(|row| row.latency_ms).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(rows.iter().map(|row| row.jti.as_deref()).collect::<Vec<_>>())
        .bind::<Array<Timestamp>, _>(minutes.iter().map(|row| row.minute).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(minute_text(|row| &row.partner_id))
        .bind::<Array<Text>, _>(minute_text(|row| &row.client_id))
        .bind::<Array<Text>, _>(minute_text(|row| &row.method))
        .bind::<Array<Text>, _>(minute_text(|row| &row.route))
        .bind::<Array<Integer>, _>(minutes.iter().map(|row| row.status_class).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(minutes.iter().map(|row| row.requests).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(minutes.iter().map(|row| row.latency_sum_ms).collect::<Vec<_>>())
        .bind::<Array<Integer>, _>(minutes.iter().map(|row| row.latency_max_ms).collect::<Vec<_>>())
        .execute(conn)
}

/// `query` (boxed, over a table with `partner_id`, `client_id` and `route` columns in module `$table`)
/// narrowed by the selection's partner, client, route and time range (on `$time`). A macro: the two tables'
/// queries are different types, and a generic bound over diesel's boxed queries would be longer than this.
macro_rules! narrowed {
    ($query:expr, $selection:expr, $table:ident, $time:expr) => {{
        let mut query = $query;
        if let Some(partner_id) = &$selection.partner_id {
            query = query.filter($table::partner_id.eq(partner_id.clone()));
        }
        if let Some(client_id) = &$selection.client_id {
            query = query.filter($table::client_id.eq(client_id.clone()));
        }
        if let Some(route) = &$selection.route {
            query = query.filter($table::route.eq(route.clone()));
        }
        if let Some(since) = $selection.since {
            query = query.filter($time.ge(since));
        }
        if let Some(until) = $selection.until {
            query = query.filter($time.lt(until));
        }
        query
    }};
}

/// Records matching `selection`, newest first (by time, then id), after the record `after` (time, id) of a
/// previous page, at most `limit`.
pub fn select(
    conn: &mut DbConnection,
    selection: &Selection,
    after: Option<(NaiveDateTime, i64)>,
    limit: i64,
) -> QueryResult<Vec<RequestRow>> {
    use request_log::dsl as r;
    let query = r::request_log
        .select(RequestRow::as_select())
        .order((r::occurred_at.desc(), r::id.desc()))
        .limit(limit)
        .into_boxed();
    let mut query = narrowed!(query, selection, r, r::occurred_at);
    if let Some((low, high)) = selection.status {
        query = query.filter(r::status.between(low, high));
    }
    if let Some((time, id)) = after {
        query = query.filter(r::occurred_at.lt(time).or(r::occurred_at.eq(time).and(r::id.lt(id))));
    }
    query.load(conn)
}

/// Per-minute totals over every client matching `selection` (its `status` is a class's range), by minute,
/// method, route and status class, oldest first; at most `limit` rows.
#[derive(Debug, Clone, Queryable)]
pub struct MinuteTotal {
    pub minute: NaiveDateTime,
    pub method: String,
    pub route: String,
    pub status_class: i32,
    pub requests: i64,
    pub latency_sum_ms: i64,
    pub latency_max_ms: i32,
}

pub fn minute_totals(conn: &mut DbConnection, selection: &Selection, limit: i64) -> QueryResult<Vec<MinuteTotal>> {
    use diesel::dsl::sql;
    use diesel::sql_types::{BigInt, Integer};
    use request_minutes::dsl as m;
    let query = m::request_minutes
        .group_by((m::minute, m::method, m::route, m::status_class))
        .select((
            m::minute,
            m::method,
            m::route,
            m::status_class,
            // SUM of a bigint is a numeric on PostgreSQL: cast back.
            sql::<BigInt>("CAST(SUM(requests) AS BIGINT)"),
            sql::<BigInt>("CAST(SUM(latency_sum_ms) AS BIGINT)"),
            sql::<Integer>("CAST(MAX(latency_max_ms) AS INTEGER)"),
        ))
        .order((m::minute, m::method, m::route, m::status_class))
        .limit(limit)
        .into_boxed();
    let mut query = narrowed!(query, selection, m, m::minute);
    if let Some((low, high)) = selection.status {
        query = query.filter(m::status_class.between(low / 100, high / 100));
    }
    query.load(conn)
}

/// Deletes up to `batch` per-minute aggregates of minutes before `cutoff`; returns how many went.
pub fn prune_minutes(conn: &mut DbConnection, cutoff: NaiveDateTime, batch: i64) -> QueryResult<usize> {
    use request_minutes::dsl as m;
    let ids: Vec<i64> = m::request_minutes.filter(m::minute.lt(cutoff)).select(m::id).limit(batch).load(conn)?;
    diesel::delete(m::request_minutes.filter(m::id.eq_any(ids))).execute(conn)
}
