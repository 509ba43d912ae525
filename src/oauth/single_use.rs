//! Group commit for the single-use check of client assertions (`jti`): requests hand their key to one thread
//! and wait; the thread takes every key queued so far (up to a batch limit), records them in one transaction
//! (`store::used_assertions::consume_all`), then answers each waiter. The primary key still makes an assertion
//! single-use across every instance on one database, and a waiter hears "fresh" only once its row is committed,
//! so no token is issued before. Dropping every `SingleUse` handle stops the thread.

use std::time::Duration;

use chrono::NaiveDateTime;
use tokio::sync::{mpsc, oneshot};

use crate::store::{DbPool, StoreError};

/// Keys queued at most; beyond, a request is refused as if the database were away.
const QUEUE_CAPACITY: usize = 8192;
/// Keys per transaction at most.
const MAX_BATCH: usize = 512;
/// How long the thread waits for a pooled connection.
const CONNECTION_WAIT: Duration = Duration::from_millis(1000);
/// How long a request waits for its answer (the queue, the connection, the commit).
const ANSWER_DEADLINE: Duration = Duration::from_millis(1500);

struct Pending {
    key: String,
    expires_at: NaiveDateTime,
    done: oneshot::Sender<Result<bool, String>>,
}

#[derive(Clone)]
pub struct SingleUse {
    queue: mpsc::Sender<Pending>,
}

impl SingleUse {
    pub fn start(pool: DbPool) -> SingleUse {
        let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
        std::thread::Builder::new()
            .name("single-use".into())
            .spawn(move || run(pool, receiver))
            .expect("cannot start the single-use thread");
        SingleUse { queue }
    }

    /// Records `key` as used until `expires_at`, once committed; `false` when it already was.
    pub async fn consume(&self, key: String, expires_at: NaiveDateTime) -> Result<bool, StoreError> {
        let unavailable = |why: &str| StoreError::Unavailable(format!("single-use check failed: {why}"));
        let (done, answer) = oneshot::channel();
        self.queue.try_send(Pending { key, expires_at, done }).map_err(|err| match err {
            mpsc::error::TrySendError::Full(_) => unavailable("the queue is full"),
            mpsc::error::TrySendError::Closed(_) => unavailable("the writer has stopped"),
        })?;
        match tokio::time::timeout(ANSWER_DEADLINE, answer).await {
            Ok(Ok(Ok(fresh))) => Ok(fresh),
            Ok(Ok(Err(message))) => Err(unavailable(&message)),
            Ok(Err(_)) => Err(unavailable("the writer has stopped")),
            Err(_) => Err(unavailable("not committed in time")),
        }
    }
}

fn run(pool: DbPool, mut receiver: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = receiver.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) => break,
            }
        }
        // A waiter that gave up is not written: its request has already been answered.
        batch.retain(|pending: &Pending| !pending.done.is_closed());
        let rows: Vec<(String, NaiveDateTime)> =
            batch.iter().map(|pending| (pending.key.clone(), pending.expires_at)).collect();
        let written = pool
            .get_timeout(CONNECTION_WAIT)
            .map_err(StoreError::from)
            .and_then(|mut conn| crate::store::used_assertions::consume_all(&mut conn, &rows));
        match written {
            Ok(fresh) => {
                for (pending, fresh) in batch.drain(..).zip(fresh) {
                    let _ = pending.done.send(Ok(fresh));
                }
            }
            Err(err) => {
                let message = err.to_string();
                for pending in batch.drain(..) {
                    let _ = pending.done.send(Err(message.clone()));
                }
            }
        }
    }
}
