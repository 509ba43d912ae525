//! Daily token usage per partner: the counts the audit writer keeps in `partner_usage`, in the commit of the
//! token requests' audit events, and the quota's calendar (days are UTC). What the admin API and CLI read of
//! them, as a caller may see it, is `registry/usage.rs`.

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::schema::partner_usage;
use super::DbConnection;

/// The key a day's count is stored under.
pub fn day_of(at: NaiveDateTime) -> String {
    at.date().format("%Y-%m-%d").to_string()
}

/// The next UTC midnight after `at`.
pub fn next_reset(at: NaiveDateTime) -> NaiveDateTime {
    let tomorrow: NaiveDate = at.date().succ_opt().unwrap_or(NaiveDate::MAX);
    tomorrow.and_hms_opt(0, 0, 0).unwrap_or(NaiveDateTime::MAX)
}

/// The partner's count on `day` (0 when none).
pub fn tokens_on(conn: &mut DbConnection, partner_id: &str, day: &str) -> QueryResult<i64> {
    Ok(partner_usage::table.find((partner_id, day)).select(partner_usage::tokens).first(conn).optional()?.unwrap_or(0))
}

/// A partner's count of one day, as an upsert returned it.
#[derive(QueryableByName)]
pub struct DayCountRow {
    #[diesel(sql_type = Text)]
    pub partner_id: String,
    #[diesel(sql_type = Text)]
    pub day: String,
    #[diesel(sql_type = BigInt)]
    pub tokens: i64,
}

/// Adds to partners' day counts (negative to take some back) and returns each (partner, day)'s new count, in
/// one statement whatever their number. Inside a write transaction the upsert locks the rows on PostgreSQL (in
/// the order given; callers sort) and SQLite's write lock covers them, until the commit, so instances that
/// share the database see each other's counts and count one after the other.
pub fn add_all(conn: &mut DbConnection, counts: &[(&str, &str, i64)]) -> QueryResult<HashMap<(String, String), i64>> {
    use diesel::sql_types::Array;
    let counted: Vec<DayCountRow> = match conn {
        _ if counts.is_empty() => Vec::new(),
        DbConnection::Postgresql(pg) => diesel::sql_query(
            "INSERT INTO partner_usage (partner_id, day, tokens) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) \
             ON CONFLICT (partner_id, day) DO UPDATE SET tokens = partner_usage.tokens + excluded.tokens \
             RETURNING partner_id, day, tokens",
        )
        .bind::<Array<Text>, _>(counts.iter().map(|(partner, _, _)| *partner).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(counts.iter().map(|(_, day, _)| *day).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(counts.iter().map(|(_, _, tokens)| *tokens).collect::<Vec<_>>())
        .load(pg)?,
        // SQLite has no arrays: the triples travel as one JSON array. `WHERE true` tells SQLite's parser that
        // the `ON CONFLICT` belongs to the upsert, not to a join of the `SELECT`.
        DbConnection::Sqlite(sqlite) => diesel::sql_query(
            "INSERT INTO partner_usage (partner_id, day, tokens) \
             SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]') \
             FROM json_each($1) WHERE true \
             ON CONFLICT (partner_id, day) DO UPDATE SET tokens = partner_usage.tokens + excluded.tokens \
             RETURNING partner_id, day, tokens",
        )
        .bind::<Text, _>(serde_json::to_string(counts).expect("strings and integers serialize"))
        .load(sqlite)?,
    };
    Ok(counted.into_iter().map(|row| ((row.partner_id, row.day), row.tokens)).collect())
}

/// Forgets counts of days before `day` (they are in the audit trail).
pub fn prune_before(conn: &mut DbConnection, day: &str) -> QueryResult<usize> {
    diesel::delete(partner_usage::table.filter(partner_usage::day.lt(day))).execute(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_dates_and_reset_at_midnight() {
        let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap().naive_utc();
        assert_eq!(day_of(at), "2027-01-15");
        assert_eq!(crate::store::utc::format(&next_reset(at)), "2027-01-16T00:00:00Z");
    }
}
