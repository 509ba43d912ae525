//! The group-commit audit writer. Requests hand their event to one writer thread and wait; the thread takes
//! every event queued so far (up to a batch limit), inserts them with one statement in one transaction,
//! then answers each waiter. A token is never issued without its committed record, and under load many
//! requests share one commit. The queue is bounded: when it is full, or the database refuses the batch, the
//! caller gets an error (the token endpoint answers 503). Dropping every `AuditWriter` handle flushes the queue
//! and stops the thread.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use tokio::sync::{mpsc, oneshot};

use super::plan::{BatchPlan, DayCount, LastUses};
pub use super::plan::{Recorded, LAST_USE_RESOLUTION};
use super::AuditEvent;
use crate::limits::quota::{QuotaBook, QuotaTerms};
use crate::metrics::Metrics;
use crate::secevents::revoked;
use crate::store::changes::{Change, ChangeSink};
use crate::store::models::{NewAuditEventRow, RevokedTokenRow};
use crate::store::schema::audit_events;
use crate::store::usage;
use crate::store::{DbConnection, DbPool, StoreError, Tx};

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("the audit queue is full")]
    QueueFull,
    #[error("the audit writer has stopped")]
    Stopped,
    #[error("the audit batch could not be written: {message}")]
    WriteFailed {
        message: String,
        /// A fault of ours (the statement failed), not the database being away: see `StoreError::is_unavailable`.
        fault: bool,
    },
    #[error("the audit record was not committed in time")]
    TimedOut,
}

/// How long a request waits for its record's commit. With the database gone, a request answers 503 after
/// this rather than after the pool's or the network's timeouts.
pub const RECORD_DEADLINE: Duration = Duration::from_millis(1500);
/// How long the writer waits for a pooled connection; less than `RECORD_DEADLINE`.
const CONNECTION_WAIT: Duration = Duration::from_millis(1000);

#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    pub queue_capacity: usize,
    pub max_batch: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions { queue_capacity: 8192, max_batch: 512 }
    }
}

/// A change that must land together with its event, in the same commit, or not at all.
#[derive(Debug, Clone)]
pub enum Effect {
    /// A token request authenticated with this secret: its `last_used_at` moves to the event's time.
    SecretUsed(String),
    /// A token revoked by its client (RFC 7009).
    RevokeToken(RevokedTokenRow),
    /// A token about to be handed out: counted against its partner's day, or refused over quota.
    CountToken(QuotaTerms),
}

struct Pending {
    row: NewAuditEventRow,
    effects: Vec<Effect>,
    done: oneshot::Sender<Result<Recorded, BatchFailure>>,
}

#[derive(Clone)]
pub struct AuditWriter {
    queue: mpsc::Sender<Pending>,
}

impl AuditWriter {
    /// Starts the writer thread. Join the handle after dropping every `AuditWriter` to flush on shutdown.
    /// `changes` hears of the registry changes a batch committed (token revocations), `quota` of the partners'
    /// counts it saw.
    pub fn start(
        pool: DbPool,
        options: WriterOptions,
        changes: Arc<dyn ChangeSink>,
        quota: Arc<QuotaBook>,
        metrics: Arc<Metrics>,
    ) -> (AuditWriter, JoinHandle<()>) {
        let (queue, receiver) = mpsc::channel(options.queue_capacity.max(1));
        let handle = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || run(pool, receiver, options.max_batch.max(1), &*changes, &quota, &metrics))
            .expect("cannot start the audit writer thread");
        (AuditWriter { queue }, handle)
    }

    /// Events queued and not yet taken by the writer thread.
    pub fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// Queues `event` and waits until it is committed.
    pub async fn record(&self, event: AuditEvent) -> Result<(), AuditError> {
        self.record_with(event, Vec::new()).await.map(|_| ())
    }

    /// Like `record`, and applies `effects` in the same commit as the event. Gives up after
    /// [`RECORD_DEADLINE`]; a record given up on before the writer took it is not written.
    pub async fn record_with(&self, event: AuditEvent, effects: Vec<Effect>) -> Result<Recorded, AuditError> {
        // A deadline on real waiting, not the server's clock.
        self.record_until(event, effects, tokio::time::Instant::now() + RECORD_DEADLINE).await
    }

    /// Like `record_with`, giving up at `deadline`.
    pub async fn record_until(
        &self,
        event: AuditEvent,
        effects: Vec<Effect>,
        deadline: tokio::time::Instant,
    ) -> Result<Recorded, AuditError> {
        let (done, committed) = oneshot::channel();
        let pending = Pending { row: event.into_row(), effects, done };
        self.queue.try_send(pending).map_err(|err| match err {
            mpsc::error::TrySendError::Full(_) => AuditError::QueueFull,
            mpsc::error::TrySendError::Closed(_) => AuditError::Stopped,
        })?;
        match tokio::time::timeout_at(deadline, committed).await {
            Ok(Ok(Ok(recorded))) => Ok(recorded),
            Ok(Ok(Err(BatchFailure { message, fault }))) => Err(AuditError::WriteFailed { message, fault }),
            Ok(Err(_)) => Err(AuditError::Stopped),
            Err(_) => Err(AuditError::TimedOut),
        }
    }
}

fn run(
    pool: DbPool,
    mut receiver: mpsc::Receiver<Pending>,
    max_batch: usize,
    changes: &dyn ChangeSink,
    quota: &QuotaBook,
    metrics: &Metrics,
) {
    let mut batch = Vec::with_capacity(max_batch);
    let mut last_uses = LastUses::default();
    while let Some(first) = receiver.blocking_recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        // A request that gave up waiting (its deadline passed, its client went away) handed nothing out and
        // answered an error: its record and effects are dropped, so that it neither counts nor revokes.
        batch.retain(|pending| !pending.done.is_closed());
        if batch.is_empty() {
            continue;
        }
        metrics.audit_batch(batch.len());
        let (results, counts, published) = commit(&pool, &batch, &mut last_uses);
        for (partner_id, day, counted) in &counts {
            quota.observe(partner_id, day, *counted);
        }
        // What the batch committed (its token revocations); a rolled-back write's changes were dropped with it.
        changes.apply(&published);
        for (pending, result) in batch.drain(..).zip(results) {
            // A waiter that gave up (client disconnected) is no reason to stop.
            let _ = pending.done.send(result);
        }
    }
}

/// Why a batch (or one event of it) was not written.
#[derive(Debug, Clone)]
struct BatchFailure {
    message: String,
    fault: bool,
}

impl From<&StoreError> for BatchFailure {
    fn from(err: &StoreError) -> Self {
        BatchFailure { message: err.to_string(), fault: !err.is_unavailable() }
    }
}

/// Commits the batch, one result per event, and the partners' day counts it saw. When the database refuses
/// the batch for its content rather than for being unreachable, the events are retried one by one, so that
/// one bad event fails only its own request.
fn commit(
    pool: &DbPool,
    batch: &[Pending],
    last_uses: &mut LastUses,
) -> (Vec<Result<Recorded, BatchFailure>>, Vec<DayCount>, Vec<Change>) {
    let failed = |err: &StoreError| (vec![Err(BatchFailure::from(err)); batch.len()], Vec::new(), Vec::new());
    let mut conn = match pool.get_timeout(CONNECTION_WAIT) {
        Ok(conn) => Tx::new(conn),
        Err(err) => {
            let err = StoreError::from(err);
            log::error!("audit batch of {} events failed: {err}", batch.len());
            return failed(&err);
        }
    };
    match write_batch(&mut conn, batch, last_uses) {
        Ok(written) => (written.verdicts.into_iter().map(Ok).collect(), written.counts, conn.take_published()),
        Err(err @ StoreError::Query(_)) if batch.len() > 1 => {
            log::warn!("audit batch of {} events failed ({err}); writing them one by one", batch.len());
            let mut counts = Vec::new();
            let results = batch
                .chunks(1)
                .map(|one| match write_batch(&mut conn, one, last_uses) {
                    Ok(mut written) => {
                        counts.append(&mut written.counts);
                        Ok(written.verdicts[0])
                    }
                    Err(err) => Err(BatchFailure::from(&err)),
                })
                .collect();
            (results, counts, conn.take_published())
        }
        Err(err) => {
            log::error!("audit batch of {} events failed: {err}", batch.len());
            failed(&err)
        }
    }
}

struct Written {
    verdicts: Vec<Recorded>,
    counts: Vec<DayCount>,
}

/// Why a transaction of the writer ended without a commit.
enum Attempt {
    Failed(StoreError),
    /// The events were written as if every token were within its quota, and one is not: roll back and write
    /// them again with the quota decided first.
    DecideFirst,
}

impl From<diesel::result::Error> for Attempt {
    fn from(err: diesel::result::Error) -> Self {
        Attempt::Failed(err.into())
    }
}

impl From<StoreError> for Attempt {
    fn from(err: StoreError) -> Self {
        Attempt::Failed(err)
    }
}

fn write_batch(conn: &mut Tx, batch: &[Pending], last_uses: &mut LastUses) -> Result<Written, StoreError> {
    let plan = BatchPlan::of(batch.iter().map(|p| (p.row.occurred_at, p.effects.as_slice())), last_uses);
    if let (DbConnection::Postgresql(pg), true) = (conn.db(), plan.has_nothing_to_decide()) {
        // No transaction of its own and nothing to remember: `plan.last_use` is empty.
        return Ok(write_in_one_statement(pg, &plan, batch)?);
    }
    // Usually every token is within its quota and the events go in as they are, with the partners' day
    // counts last: those rows are the ones every batch of a partner locks, and they are then held only for the
    // upsert and the commit, so that the writers of other instances on the database can write their batches
    // meanwhile.
    let written = match crate::store::write_transaction(conn, |conn| write(conn, &plan, batch, false)) {
        Err(Attempt::DecideFirst) => crate::store::write_transaction(conn, |conn| write(conn, &plan, batch, true)),
        other => other,
    };
    let written = written.map_err(|attempt| match attempt {
        Attempt::Failed(err) => err,
        Attempt::DecideFirst => unreachable!("the quota is decided before the events are written"),
    })?;
    last_uses.committed(&plan);
    Ok(written)
}

/// Moves each secret's `last_used_at` forward to its latest use in the batch, in one statement whatever the
/// number of secrets: with many clients nearly every token's secret is due, and one `UPDATE` per secret inside
/// the group commit cut throughput to a fifth. Only forward: a later batch may carry a request that started
/// before one already committed.
fn write_last_uses(conn: &mut DbConnection, last_use: &BTreeMap<String, NaiveDateTime>) -> QueryResult<()> {
    use diesel::sql_types::{Array, Text, Timestamp};
    match conn {
        _ if last_use.is_empty() => {}
        DbConnection::Postgresql(pg) => {
            diesel::sql_query(
                "UPDATE client_secrets AS s SET last_used_at = u.at \
                 FROM unnest($1::text[], $2::timestamp[]) AS u(id, at) \
                 WHERE s.id = u.id AND (s.last_used_at IS NULL OR s.last_used_at < u.at)",
            )
            .bind::<Array<Text>, _>(last_use.keys().collect::<Vec<_>>())
            .bind::<Array<Timestamp>, _>(last_use.values().copied().collect::<Vec<_>>())
            .execute(pg)?;
        }
        DbConnection::Sqlite(sqlite) => {
            // SQLite has no arrays: the pairs travel as one JSON array, with the times in the text form diesel
            // stores (`crate::store::sqlite_timestamp`), so that they compare as the column's values do.
            let pairs: Vec<(&str, String)> =
                last_use.iter().map(|(secret, at)| (secret.as_str(), crate::store::sqlite_timestamp(at))).collect();
            diesel::sql_query(
                "UPDATE client_secrets SET last_used_at = u.at \
                 FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS at \
                       FROM json_each($1)) AS u \
                 WHERE client_secrets.id = u.id \
                 AND (client_secrets.last_used_at IS NULL OR client_secrets.last_used_at < u.at)",
            )
            .bind::<Text, _>(serde_json::to_string(&pairs).expect("strings serialize"))
            .execute(sqlite)?;
        }
    }
    Ok(())
}

/// A batch that [`has_nothing_to_decide`](BatchPlan::has_nothing_to_decide), on PostgreSQL: the events and
/// the partners' day counts in one statement, which autocommit makes one transaction. One round trip instead
/// of four (`BEGIN`, the events, the counts, `COMMIT`) shortens every group commit, and so the time each
/// request waits for its record. Its only locks are the partners' day rows, which the upsert takes in the
/// order `unnest` yields them (the plan's sorted order, in practice) like every other batch's.
fn write_in_one_statement(
    conn: &mut diesel::PgConnection,
    plan: &BatchPlan,
    batch: &[Pending],
) -> QueryResult<Written> {
    use diesel::sql_types::{Array, BigInt, Text};
    let rows: Vec<&NewAuditEventRow> = batch.iter().map(|pending| &pending.row).collect();
    // PostgreSQL runs both parts in one transaction, in an order of its choosing; nothing depends on it:
    // the events take no lock that another batch waits for.
    let sql = format!(
        "WITH counted AS (INSERT INTO partner_usage (partner_id, day, tokens) \
         SELECT * FROM unnest($16::text[], $17::text[], $18::bigint[]) \
         ON CONFLICT (partner_id, day) DO UPDATE SET tokens = partner_usage.tokens + excluded.tokens \
         RETURNING partner_id, day, tokens), events AS ({INSERT_EVENTS}) \
         SELECT partner_id, day, tokens FROM counted"
    );
    let asked = plan.asked();
    let counted: Vec<usage::DayCountRow> = bind_events(diesel::sql_query(sql).into_boxed(), &rows)
        .bind::<Array<Text>, _>(asked.iter().map(|(partner, _, _)| *partner).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(asked.iter().map(|(_, day, _)| *day).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(asked.iter().map(|(_, _, tokens)| *tokens).collect::<Vec<_>>())
        .load(conn)?;
    Ok(Written {
        verdicts: vec![Recorded::Stored; batch.len()],
        counts: counted.into_iter().map(|row| (row.partner_id, row.day, row.tokens)).collect(),
    })
}

/// The plan in one transaction, of a constant number of statements whatever the number of secrets and
/// partners (a revocation's own statements aside): the events, the revocations, the last uses, then the day
/// counts (one upsert), decided by the plan, and one more upsert to take refused tokens back. Rows are
/// locked in one order whichever comes first (jtis with the revocation stream's counter, then secret ids,
/// then partner days, each sorted), so that two writers' batches, of this instance or another, never
/// deadlock; the stream's counter comes first as in every change that writes a security event (an admin's
/// secret revocation takes it before the secret's row: `store::security_events`).
fn write(conn: &mut Tx, plan: &BatchPlan, batch: &[Pending], decide_first: bool) -> Result<Written, Attempt> {
    let mut rows: Vec<NewAuditEventRow> = batch.iter().map(|p| p.row.clone()).collect();
    if !decide_first {
        insert_events(conn, &rows)?;
    }
    for row in &plan.revocations {
        revoked::revoke_jti(conn, &row.jti, &row.client_id, row.expires_at, row.revoked_at)?;
    }
    write_last_uses(conn, &plan.last_use)?;
    // Counted first, decided after: the upsert locks the partners' rows for the day, so the counts before
    // this batch are exact.
    let totals = usage::add_all(conn, &plan.asked())?;
    let mut decision = plan.decide(&totals).map_err(|missing| {
        log::error!("audit writer: {missing}");
        Attempt::Failed(diesel::result::Error::NotFound.into())
    })?;
    if decision.decided_anything() && !decide_first {
        return Err(Attempt::DecideFirst);
    }
    if !decision.corrections.is_empty() {
        let corrections: Vec<(&str, &str, i64)> =
            decision.corrections.iter().map(|(partner, day, delta)| (partner.as_str(), day.as_str(), *delta)).collect();
        decision.corrected(&usage::add_all(conn, &corrections)?);
    }
    let verdicts = decision.apply(&mut rows);
    if decide_first {
        insert_events(conn, &rows)?;
    }
    Ok(Written { verdicts, counts: decision.counts })
}

fn insert_events(conn: &mut DbConnection, rows: &[NewAuditEventRow]) -> Result<(), StoreError> {
    // MultiConnection cannot do multi-row inserts; each backend's connection can.
    match conn {
        DbConnection::Postgresql(pg) => insert_events_postgres(pg, rows)?,
        DbConnection::Sqlite(sqlite) => diesel::insert_into(audit_events::table).values(rows).execute(sqlite)?,
    };
    Ok(())
}

/// The batch as one array per column, unnested into rows by PostgreSQL. A multi-row `VALUES` list has a
/// different text for every batch size and 15 parameters per row, which diesel does not cache, so
/// PostgreSQL parsed and planned a statement of up to thousands of parameters for every batch. This one is
/// not cached either (diesel never caches `sql_query`), but it has 15 parameters whatever the size and a
/// trivial plan. `unnest` yields the arrays in order, so the rows' ids follow the queue in practice; nothing
/// depends on that. Its parameters are `$1` to `$15`, bound by [`bind_events`].
const INSERT_EVENTS: &str = "INSERT INTO audit_events (occurred_at, event_type, outcome, reason, request_id, \
     actor, partner_id, client_id, secret_id, scopes, audience, jti, source_ip, user_agent, details) \
     SELECT * FROM unnest($1::timestamp[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
     $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], \
     $15::text[])";

fn insert_events_postgres(conn: &mut diesel::PgConnection, rows: &[NewAuditEventRow]) -> QueryResult<usize> {
    let rows: Vec<&NewAuditEventRow> = rows.iter().collect();
    bind_events(diesel::sql_query(INSERT_EVENTS).into_boxed(), &rows).execute(conn)
}

type PgQuery<'a> = diesel::query_builder::BoxedSqlQuery<'a, diesel::pg::Pg, diesel::query_builder::SqlQuery>;

/// Binds the 15 column arrays of [`INSERT_EVENTS`] as the query's first parameters.
fn bind_events<'a>(query: PgQuery<'a>, rows: &[&'a NewAuditEventRow]) -> PgQuery<'a> {
    use diesel::sql_types::{Array, Nullable, Text, Timestamp};
    let text = |field: fn(&'a NewAuditEventRow) -> &'a str| rows.iter().map(|row| field(row)).collect::<Vec<_>>();
    let optional =
        |field: fn(&'a NewAuditEventRow) -> Option<&'a str>| rows.iter().map(|row| field(row)).collect::<Vec<_>>();
    query
        .bind::<Array<Timestamp>, _>(rows.iter().map(|row| row.occurred_at).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(text(|row| &row.event_type))
        .bind::<Array<Text>, _>(text(|row| &row.outcome))
        .bind::<Array<Nullable<Text>>, _>(optional(|row| row.reason.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(optional(|row| row.request_id.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(optional(|row| row.actor.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(optional(|row| row.partner_id.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(optional(|row| row.client_id.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(optional(|row| row.secret_id.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(optional(|row| row.scopes.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(optional(|row| row.audience.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(optional(|row| row.jti.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(optional(|row| row.source_ip.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(optional(|row| row.user_agent.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(optional(|row| row.details.as_deref()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Outcome, RequestMeta};
    use crate::store::schema::{client_secrets, clients, partners};

    fn pending(occurred_at: NaiveDateTime, secret: &str) -> Pending {
        let event = AuditEvent::new("token.request", Outcome::Success, RequestMeta::default(), occurred_at);
        Pending {
            row: event.into_row(),
            effects: vec![Effect::SecretUsed(secret.to_string())],
            done: oneshot::channel().0,
        }
    }

    /// Batches commit in queue order, but a request queued later may have started earlier: the secret's
    /// last use must not move backwards.
    #[test]
    fn last_use_only_moves_forward() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("writer.db").display());
        let pool = crate::store::connect(&url, &Default::default()).unwrap();
        let mut conn = crate::store::Tx::new(pool.get().unwrap());
        crate::store::run_migrations(&mut conn).unwrap();
        // The rows the writer touches, written as storage rows: the registry is a layer above.
        let created = crate::store::now();
        diesel::insert_into(partners::table)
            .values((
                partners::id.eq("writer-p"),
                partners::name.eq("Writer"),
                partners::suspended.eq(false),
                partners::quota_log_only.eq(false),
                partners::created_at.eq(created),
                partners::updated_at.eq(created),
            ))
            .execute(conn.db())
            .unwrap();
        diesel::insert_into(clients::table)
            .values((
                clients::id.eq("pgc_writer"),
                clients::partner_id.eq("writer-p"),
                clients::name.eq("c"),
                clients::description.eq(""),
                clients::enabled.eq(true),
                clients::auth_methods.eq("client_secret_basic client_secret_post"),
                clients::created_at.eq(created),
                clients::updated_at.eq(created),
            ))
            .execute(conn.db())
            .unwrap();
        let secret_id = "sec_writer";
        diesel::insert_into(client_secrets::table)
            .values((
                client_secrets::id.eq(secret_id),
                client_secrets::client_id.eq("pgc_writer"),
                client_secrets::name.eq("secret-1"),
                client_secrets::secret_hash.eq("not a digest"),
                client_secrets::prefix.eq("pgs_test"),
                client_secrets::created_at.eq(created),
            ))
            .execute(conn.db())
            .unwrap();
        let last_used = |conn: &mut DbConnection| -> Option<NaiveDateTime> {
            client_secrets::table.find(secret_id).select(client_secrets::last_used_at).first(conn).unwrap()
        };
        let later = crate::store::now();
        let earlier = later - chrono::Duration::milliseconds(3);

        // Each writer remembers what it wrote; a second instance's writer has its own memory.
        let (mut one, mut other) = (LastUses::default(), LastUses::default());
        write_batch(&mut conn, &[pending(earlier, secret_id), pending(later, secret_id)], &mut one).unwrap();
        write_batch(&mut conn, &[pending(earlier, secret_id)], &mut other).unwrap();
        assert_eq!(last_used(&mut conn), Some(later));

        // Within the resolution the column stays; past it, it moves.
        let soon = later + LAST_USE_RESOLUTION - chrono::Duration::milliseconds(1);
        write_batch(&mut conn, &[pending(soon, secret_id)], &mut one).unwrap();
        assert_eq!(last_used(&mut conn), Some(later), "written again within {LAST_USE_RESOLUTION}");
        let past = later + LAST_USE_RESOLUTION;
        write_batch(&mut conn, &[pending(past, secret_id)], &mut one).unwrap();
        assert_eq!(last_used(&mut conn), Some(past));
        let stored: i64 = audit_events::table
            .filter(audit_events::event_type.eq("token.request"))
            .count()
            .get_result(conn.db())
            .unwrap();
        assert_eq!(stored, 5);
    }
}
