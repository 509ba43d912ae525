//! The revocation stream's storage (ARCHITECTURE.md, "The revocation stream"): the events, their gapless
//! sequence, and each receiver's acknowledged position.
//!
//! [`append`] takes the next sequence number by updating the one counter row, which locks that row until the
//! transaction ends. Two transactions that both write events are therefore serialized from the moment the second
//! asks for its number, and sequence order is commit order on both backends: a receiver that acknowledged
//! event 10 never later sees an event 9 appear (which a plain `BIGSERIAL` allows on PostgreSQL, where numbers are
//! taken at insert but become visible at commit, in any order). A rolled-back transaction gives its number back,
//! so the sequence has no gaps either, and a receiver can check that it missed nothing.
//!
//! Lock order: a change that writes an event appends it before it updates any row of its own (the counter
//! row is the first lock it takes), so that two such changes cannot each hold what the other waits for.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::changes::{self, Change};
use super::schema::{event_receivers, security_event_sequence, security_events};
use super::{DbConnection, StoreError, Tx};

/// One stored event. `seq` is assigned by [`append`].
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = security_events)]
pub struct SecurityEventRow {
    pub seq: i64,
    pub kind: String,
    pub partner_id: Option<String>,
    pub client_id: Option<String>,
    pub token_id: Option<String>,
    pub token_expires_at: Option<NaiveDateTime>,
    pub cutoff: Option<NaiveDateTime>,
    pub occurred_at: NaiveDateTime,
    pub payload: String,
}

/// A receiver and how far it has acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = event_receivers)]
pub struct EventReceiverRow {
    pub client_id: String,
    pub acked_seq: i64,
    pub created_at: NaiveDateTime,
    pub last_poll_at: NaiveDateTime,
    pub acked_at: Option<NaiveDateTime>,
}

const COUNTER: i32 = 1;

/// Stores `event` in the caller's transaction with the next sequence number, and notes it on the change feed
/// (which wakes the long polls of every instance once the transaction commits). Returns the number.
pub fn append(conn: &mut Tx, mut event: SecurityEventRow) -> Result<i64, StoreError> {
    crate::store::write_transaction(conn, |conn| {
        diesel::update(security_event_sequence::table.find(COUNTER))
            .set(security_event_sequence::last_seq.eq(security_event_sequence::last_seq + 1))
            .execute(conn.db())?;
        event.seq = last_seq(conn)?;
        diesel::insert_into(security_events::table).values(&event).execute(conn.db())?;
        changes::publish(conn, Change::SecurityEvents, event.occurred_at)?;
        Ok(event.seq)
    })
}

/// The newest event's sequence number (0 before the first), pruned or not.
pub fn last_seq(conn: &mut DbConnection) -> Result<i64, StoreError> {
    Ok(security_event_sequence::table.find(COUNTER).select(security_event_sequence::last_seq).first(conn)?)
}

/// Events after `seq`, oldest first, at most `limit`.
pub fn after(conn: &mut DbConnection, seq: i64, limit: i64) -> Result<Vec<SecurityEventRow>, StoreError> {
    Ok(security_events::table
        .filter(security_events::seq.gt(seq))
        .order(security_events::seq)
        .limit(limit)
        .select(SecurityEventRow::as_select())
        .load(conn)?)
}

/// When event `seq` happened, if it is still kept.
pub fn occurred_at(conn: &mut DbConnection, seq: i64) -> Result<Option<NaiveDateTime>, StoreError> {
    Ok(security_events::table.find(seq).select(security_events::occurred_at).first(conn).optional()?)
}

/// The oldest kept event's sequence number, if any is kept.
pub fn first_kept_seq(conn: &mut DbConnection) -> Result<Option<i64>, StoreError> {
    Ok(security_events::table.select(diesel::dsl::min(security_events::seq)).first(conn)?)
}

/// Forgets events that happened before `before`, `batch` rows per statement (each its own short transaction,
/// so that pruning a long backlog never holds locks for long); returns how many.
pub fn prune(conn: &mut DbConnection, before: NaiveDateTime, batch: i64) -> Result<usize, StoreError> {
    let mut pruned = 0;
    loop {
        // The `batch`-th oldest such event bounds this round; fewer than `batch` left: all of them.
        let bound: Option<i64> = security_events::table
            .filter(security_events::occurred_at.lt(before))
            .order(security_events::seq)
            .offset(batch - 1)
            .select(security_events::seq)
            .first(conn)
            .optional()?;
        let mut doomed =
            diesel::delete(security_events::table).filter(security_events::occurred_at.lt(before)).into_boxed();
        if let Some(bound) = bound {
            doomed = doomed.filter(security_events::seq.le(bound));
        }
        let deleted = doomed.execute(conn)?;
        pruned += deleted;
        if bound.is_none() || deleted == 0 {
            return Ok(pruned);
        }
    }
}

/// Records a poll of the receiver `client_id` at `at` and returns its position (the last sequence number it
/// acknowledged), in one statement: a receiver unknown so far is registered with nothing acknowledged (it is
/// then sent every event still kept). Two first polls at once (two instances) meet in the upsert.
pub fn receiver_polled(conn: &mut DbConnection, client_id: &str, at: NaiveDateTime) -> Result<i64, StoreError> {
    use diesel::sql_types::{BigInt, Text, Timestamp};
    #[derive(QueryableByName)]
    struct Position {
        #[diesel(sql_type = BigInt)]
        acked_seq: i64,
    }
    let position: Position = diesel::sql_query(
        "INSERT INTO event_receivers (client_id, acked_seq, created_at, last_poll_at) VALUES ($1, 0, $2, $2) \
         ON CONFLICT (client_id) DO UPDATE SET last_poll_at = excluded.last_poll_at RETURNING acked_seq",
    )
    .bind::<Text, _>(client_id)
    .bind::<Timestamp, _>(at)
    .get_result(conn)?;
    Ok(position.acked_seq)
}

/// Moves a receiver's position forward to `seq` (never back: two polls may acknowledge at once).
pub fn acknowledge(conn: &mut DbConnection, client_id: &str, seq: i64, at: NaiveDateTime) -> Result<(), StoreError> {
    diesel::update(event_receivers::table.find(client_id).filter(event_receivers::acked_seq.lt(seq)))
        .set((event_receivers::acked_seq.eq(seq), event_receivers::acked_at.eq(Some(at))))
        .execute(conn)?;
    Ok(())
}

/// Every receiver, by client id.
pub fn receivers(conn: &mut DbConnection) -> Result<Vec<EventReceiverRow>, StoreError> {
    Ok(event_receivers::table.order(event_receivers::client_id).select(EventReceiverRow::as_select()).load(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(at: NaiveDateTime) -> SecurityEventRow {
        SecurityEventRow {
            seq: 0,
            kind: "client_disabled".into(),
            partner_id: Some("acme".into()),
            client_id: Some("pgc_a".into()),
            token_id: None,
            token_expires_at: None,
            cutoff: None,
            occurred_at: at,
            payload: "{}".into(),
        }
    }

    /// Numbers follow each other without holes, a rolled-back append gives its number back, and pruning
    /// takes every old event in bounded rounds and nothing newer, while the sequence goes on.
    #[test]
    fn the_sequence_is_gapless_and_pruning_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("events.db").display());
        let pool = crate::store::connect(&url, &Default::default()).unwrap();
        let conn = &mut Tx::new(pool.get().unwrap());
        crate::store::run_migrations(conn).unwrap();
        let old = chrono::DateTime::from_timestamp(1_900_000_000, 0).unwrap().naive_utc();
        let new = old + chrono::Duration::days(2);
        for i in 0..25 {
            assert_eq!(append(conn, event(old)).unwrap(), i + 1);
        }
        let rolled_back: Result<(), StoreError> = crate::store::write_transaction(conn, |conn| {
            append(conn, event(new))?;
            Err(StoreError::Query(diesel::result::Error::RollbackTransaction))
        });
        assert!(rolled_back.is_err());
        assert_eq!(conn.published().len(), 25, "the rolled-back append's change is forgotten");
        assert_eq!(append(conn, event(new)).unwrap(), 26, "the rolled-back number is given back");
        assert_eq!(prune(conn, old + chrono::Duration::days(1), 10).unwrap(), 25);
        assert_eq!(first_kept_seq(conn).unwrap(), Some(26));
        assert_eq!(after(conn, 0, 100).unwrap().iter().map(|e| e.seq).collect::<Vec<_>>(), [26]);
        assert_eq!(append(conn, event(new)).unwrap(), 27, "pruning does not restart the sequence");
        assert_eq!(conn.take_published().len(), 27);
        // A savepoint that rolls back forgets its own changes only; its transaction's commit keeps the rest.
        let kept: Result<(), StoreError> = crate::store::write_transaction(conn, |conn| {
            append(conn, event(new))?;
            let inner: Result<(), StoreError> = crate::store::write_transaction(conn, |conn| {
                append(conn, event(new))?;
                Err(StoreError::Query(diesel::result::Error::RollbackTransaction))
            });
            assert!(inner.is_err());
            append(conn, event(new)).map(drop)
        });
        kept.unwrap();
        assert_eq!(conn.published(), [Change::SecurityEvents, Change::SecurityEvents]);
        assert_eq!(after(conn, 27, 100).unwrap().iter().map(|e| e.seq).collect::<Vec<_>>(), [28, 29]);
    }
}
