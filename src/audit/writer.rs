//! The group-commit audit writer. Requests hand their event to one writer thread and wait; the thread takes
//! every event queued so far (up to a batch limit), inserts them with one multi-row insert in one transaction,
//! then answers each waiter. A token is never issued without its committed record, and under load many
//! requests share one commit. The queue is bounded: when it is full, or the database refuses the batch, the
//! caller gets an error (the token endpoint answers 503). Dropping every `AuditWriter` handle flushes the queue
//! and stops the thread.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use tokio::sync::{mpsc, oneshot};

use super::AuditEvent;
use crate::registry::revocation;
use crate::store::changes::{self, ChangeSink};
use crate::store::models::{NewAuditEventRow, RevokedTokenRow};
use crate::store::schema::{audit_events, client_secrets};
use crate::store::{DbConnection, DbPool, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("the audit queue is full")]
    QueueFull,
    #[error("the audit writer has stopped")]
    Stopped,
    #[error("the audit batch could not be written: {0}")]
    WriteFailed(String),
}

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
}

struct Pending {
    row: NewAuditEventRow,
    effects: Vec<Effect>,
    done: oneshot::Sender<Result<(), String>>,
}

#[derive(Clone)]
pub struct AuditWriter {
    queue: mpsc::Sender<Pending>,
}

impl AuditWriter {
    /// Starts the writer thread. Join the handle after dropping every `AuditWriter` to flush on shutdown.
    /// `changes` hears of the registry changes a batch committed (token revocations).
    pub fn start(pool: DbPool, options: WriterOptions, changes: Arc<dyn ChangeSink>) -> (AuditWriter, JoinHandle<()>) {
        let (queue, receiver) = mpsc::channel(options.queue_capacity.max(1));
        let handle = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || run(pool, receiver, options.max_batch.max(1), &*changes))
            .expect("cannot start the audit writer thread");
        (AuditWriter { queue }, handle)
    }

    /// Queues `event` and waits until it is committed.
    pub async fn record(&self, event: AuditEvent) -> Result<(), AuditError> {
        self.record_with(event, Vec::new()).await
    }

    /// Like `record`, and applies `effects` in the same commit as the event.
    pub async fn record_with(&self, event: AuditEvent, effects: Vec<Effect>) -> Result<(), AuditError> {
        let (done, committed) = oneshot::channel();
        let pending = Pending { row: event.into_row(), effects, done };
        self.queue.try_send(pending).map_err(|err| match err {
            mpsc::error::TrySendError::Full(_) => AuditError::QueueFull,
            mpsc::error::TrySendError::Closed(_) => AuditError::Stopped,
        })?;
        match committed.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(AuditError::WriteFailed(message)),
            Err(_) => Err(AuditError::Stopped),
        }
    }
}

fn run(pool: DbPool, mut receiver: mpsc::Receiver<Pending>, max_batch: usize, changes: &dyn ChangeSink) {
    let mut batch = Vec::with_capacity(max_batch);
    while let Some(first) = receiver.blocking_recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let results = commit(&pool, &batch);
        // Applied whether or not a write failed: a rolled-back change's note costs only a reload.
        changes.apply(&changes::take_published());
        for (pending, result) in batch.drain(..).zip(results) {
            // A waiter that gave up (client disconnected) is no reason to stop.
            let _ = pending.done.send(result);
        }
    }
}

/// Commits the batch, one result per event. When the database refuses the batch for its content rather than
/// for being unreachable, the events are retried one by one, so that one bad event fails only its own request.
fn commit(pool: &DbPool, batch: &[Pending]) -> Vec<Result<(), String>> {
    let mut conn = match pool.get() {
        Ok(conn) => conn,
        Err(err) => {
            log::error!("audit batch of {} events failed: {err}", batch.len());
            return vec![Err(err.to_string()); batch.len()];
        }
    };
    match write_batch(&mut conn, batch) {
        Ok(()) => vec![Ok(()); batch.len()],
        Err(err @ StoreError::Query(_)) if batch.len() > 1 => {
            log::warn!("audit batch of {} events failed ({err}); writing them one by one", batch.len());
            batch.chunks(1).map(|one| write_batch(&mut conn, one).map_err(|err| err.to_string())).collect()
        }
        Err(err) => {
            log::error!("audit batch of {} events failed: {err}", batch.len());
            vec![Err(err.to_string()); batch.len()]
        }
    }
}

fn write_batch(conn: &mut DbConnection, batch: &[Pending]) -> Result<(), StoreError> {
    let rows: Vec<NewAuditEventRow> = batch.iter().map(|p| p.row.clone()).collect();
    // Rows are locked in one order (by secret id, then by jti), so that two instances' batches never deadlock.
    let mut last_use: BTreeMap<&str, NaiveDateTime> = BTreeMap::new();
    let mut revocations: Vec<&RevokedTokenRow> = Vec::new();
    for pending in batch {
        for effect in &pending.effects {
            match effect {
                Effect::SecretUsed(secret) => {
                    let at = last_use.entry(secret).or_insert(pending.row.occurred_at);
                    *at = (*at).max(pending.row.occurred_at);
                }
                Effect::RevokeToken(row) => revocations.push(row),
            }
        }
    }
    revocations.sort_by(|a, b| a.jti.cmp(&b.jti));
    crate::store::write_transaction(conn, |conn| {
        // MultiConnection cannot do multi-row inserts; each backend's connection can.
        match conn {
            DbConnection::Postgresql(pg) => {
                diesel::insert_into(audit_events::table).values(&rows).execute(pg)?;
            }
            DbConnection::Sqlite(sqlite) => {
                diesel::insert_into(audit_events::table).values(&rows).execute(sqlite)?;
            }
        }
        // Only forward: a later batch may carry a request that started before one already committed.
        for (secret, at) in &last_use {
            let older = client_secrets::last_used_at.is_null().or(client_secrets::last_used_at.lt(*at));
            diesel::update(client_secrets::table.find(*secret).filter(older))
                .set(client_secrets::last_used_at.eq(Some(*at)))
                .execute(conn)?;
        }
        for row in revocations {
            revocation::revoke_jti(conn, &row.jti, &row.client_id, row.expires_at)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Outcome, RequestMeta};
    use crate::registry::clients::{self, ClientLimits, NewClient};
    use crate::registry::partners::{self, NewPartner};
    use crate::registry::{secrets, Caller};

    fn pending(occurred_at: NaiveDateTime, secret: &str) -> Pending {
        let mut event = AuditEvent::new("token.request", Outcome::Success, RequestMeta::default());
        event.occurred_at = occurred_at;
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
        let mut conn = pool.get().unwrap();
        crate::store::run_migrations(&mut conn).unwrap();
        let partner = NewPartner { id: "writer-p".into(), name: "Writer".into(), ..Default::default() };
        partners::create(&mut conn, &Caller::cli(), &partner).unwrap();
        let input = NewClient { partner_id: Some("writer-p".into()), name: "c".into(), ..Default::default() };
        let created =
            clients::create(&mut conn, &Caller::cli(), &input, ClientLimits { max_token_lifetime_secs: 60 }).unwrap();
        let secret_id = created.secret.id.as_str();
        let later = crate::store::now();
        let earlier = later - chrono::Duration::milliseconds(3);

        write_batch(&mut conn, &[pending(earlier, secret_id), pending(later, secret_id)]).unwrap();
        write_batch(&mut conn, &[pending(earlier, secret_id)]).unwrap();
        let listed = secrets::list(&mut conn, &Caller::cli(), &created.client.id).unwrap();
        assert_eq!(listed[0].last_used_at, Some(later));
        let stored: i64 = audit_events::table
            .filter(audit_events::event_type.eq("token.request"))
            .count()
            .get_result(&mut conn)
            .unwrap();
        assert_eq!(stored, 3);
    }
}
