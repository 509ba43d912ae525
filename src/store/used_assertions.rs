//! Client assertions already used, each until it expires: the primary key makes an assertion single-use
//! across every instance on one database (RFC 7523 section 3, `jti`).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::used_assertions;
use super::{DbConnection, StoreError};

/// Records each `(key, expires_at)` of `batch` as used, all in one transaction (one commit for many
/// requests); answers, in order, whether each was fresh. A key already stored, or earlier in the same batch, is a
/// replay.
pub fn consume_all(conn: &mut DbConnection, batch: &[(String, NaiveDateTime)]) -> Result<Vec<bool>, StoreError> {
    super::write_transaction(conn, |conn| {
        batch
            .iter()
            .map(|(key, expires_at)| {
                let row = (used_assertions::assertion_key.eq(key), used_assertions::expires_at.eq(*expires_at));
                let insert = diesel::insert_into(used_assertions::table).values(row);
                // ON CONFLICT DO NOTHING rather than a unique violation: on PostgreSQL an error would abort the
                // whole batch's transaction.
                let inserted = match conn {
                    DbConnection::Postgresql(pg) => insert.on_conflict_do_nothing().execute(pg)?,
                    DbConnection::Sqlite(sqlite) => insert.on_conflict_do_nothing().execute(sqlite)?,
                };
                Ok(inserted == 1)
            })
            .collect()
    })
}

/// Forgets the assertions that expired before `at`: they are refused by their `exp` anyway.
pub fn prune(conn: &mut DbConnection, at: NaiveDateTime) -> Result<usize, StoreError> {
    Ok(diesel::delete(used_assertions::table.filter(used_assertions::expires_at.lt(at))).execute(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// In one batch, a key already stored and a key seen earlier in the same batch are replays; the rest are
    /// fresh, and stay used for the next batch.
    #[test]
    fn a_batch_answers_each_key_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("used.db").display());
        let pool = crate::store::connect(&url, &Default::default()).unwrap();
        let conn = &mut *pool.get().unwrap();
        crate::store::run_migrations(conn).unwrap();
        let exp = chrono::DateTime::from_timestamp(1_900_000_000, 0).unwrap().naive_utc();
        let row = |key: &str| (key.to_string(), exp);
        assert_eq!(consume_all(conn, &[row("client:a:1")]).unwrap(), vec![true]);
        let answers = consume_all(conn, &[row("client:a:2"), row("client:a:1"), row("client:a:2"), row("client:a:3")]);
        assert_eq!(answers.unwrap(), vec![true, false, false, true]);
        assert_eq!(consume_all(conn, &[row("client:a:3"), row("client:b:3")]).unwrap(), vec![false, true]);
    }
}
