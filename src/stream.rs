//! Poll delivery (RFC 8936): a receiver (a client holding `authz.events.read`) asks for the events after its
//! last acknowledged one, acknowledging what it processed in the same request, and waits (a long poll) when
//! there is nothing new.
//!
//! - Positions live in the database (`event_receivers`), so any instance serves any receiver and a receiver
//!   resumes after a restart from its last acknowledgement: what it did not acknowledge is sent again.
//! - A poll always answers the oldest unacknowledged events, in sequence order. The position moves over the
//!   acknowledged events that follow it without a hole (an event whose delivery the receiver reported as failed,
//!   `setErrs`, counts as acknowledged: the receiver has decided about it); an acknowledgement beyond a hole is
//!   forgotten and the event is sent again, which receivers must bear anyway (applying an event twice changes
//!   nothing).
//! - A long poll is woken by the change feed ([`StreamSignal`] hears `Change::SecurityEvents` from this
//!   instance's commits and from every other instance's), and looks again every [`RECHECK`] in case a note
//!   was lost; it ends after [`LONG_POLL`] with nothing, or at shutdown.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::clock::SharedClock;
use crate::registry::live_keys::LiveKeys;
use crate::secevents::receivers::{statuses, ReceiverStatus};
use crate::secevents::set;
use crate::store::changes::{Change, ChangeSink};
use crate::store::security_events::{self, SecurityEventRow};
use crate::store::{DbConnection, DbPool, StoreError};

/// The longest a poll waits for an event (below the usual 30 s idle timeouts of proxies and load balancers).
pub const LONG_POLL: Duration = Duration::from_secs(25);
/// How often a waiting poll looks again without being woken.
pub const RECHECK: Duration = Duration::from_secs(5);
/// `maxEvents` when the request names none, and the most one answer carries.
pub const DEFAULT_MAX_EVENTS: u32 = 100;
pub const MAX_EVENTS: u32 = 1000;
/// The most acknowledgements (and error reports) one request may carry.
pub const MAX_ACKS: usize = 10_000;

/// The body of a poll (RFC 8936 section 2.4); members it does not define are ignored.
#[derive(Debug, Default, Deserialize)]
pub struct PollRequest {
    #[serde(default)]
    pub ack: Vec<String>,
    /// `{"<jti>": {"err": "...", "description": "..."}}`: SETs the receiver could not process.
    #[serde(default, rename = "setErrs")]
    pub set_errs: serde_json::Map<String, serde_json::Value>,
    #[serde(default, rename = "maxEvents")]
    pub max_events: Option<u32>,
    #[serde(default, rename = "returnImmediately")]
    pub return_immediately: bool,
}

/// The answer: `{"sets": {"<jti>": "<SET>", ...}, "moreAvailable": bool}`, the SETs in sequence order.
#[derive(Debug, Default)]
pub struct PollAnswer {
    pub sets: Vec<(String, String)>,
    pub more_available: bool,
}

impl Serialize for PollAnswer {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        struct Sets<'a>(&'a [(String, String)]);
        impl Serialize for Sets<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_map(self.0.iter().map(|(jti, token)| (jti, token)))
            }
        }
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("sets", &Sets(&self.sets))?;
        map.serialize_entry("moreAvailable", &self.more_available)?;
        map.end()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The request is not a poll this transmitter can serve (RFC 8935 `invalid_request`).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blocking task did not finish (it panicked, or the runtime is shutting down): a fault of ours.
    #[error("revocation stream: {0}")]
    Interrupted(String),
}

/// Wakes waiting polls: a change-feed sink (`Change::SecurityEvents`, and the catalog-wide note that follows a
/// lost listener connection, after which anything may have been missed), and the server's shutdown.
pub struct StreamSignal {
    wake: watch::Sender<u64>,
    closing: AtomicBool,
}

impl StreamSignal {
    pub fn new() -> Arc<Self> {
        Arc::new(StreamSignal { wake: watch::Sender::new(0), closing: AtomicBool::new(false) })
    }

    fn wake(&self) {
        self.wake.send_modify(|generation| *generation = generation.wrapping_add(1));
    }

    /// Shutdown: waiting polls answer now with what they have, and new ones do not wait.
    pub fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.wake();
    }

    fn closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }
}

impl ChangeSink for StreamSignal {
    fn apply(&self, changes: &[Change]) {
        if changes.iter().any(|change| matches!(change, Change::SecurityEvents | Change::Catalog)) {
            self.wake();
        }
    }
}

/// What this instance counted, and the receivers' statuses as last read, for `/metrics`.
#[derive(Debug, Default)]
pub struct StreamStats {
    pub delivered: AtomicU64,
    pub set_errors: AtomicU64,
    pub last_seq: AtomicI64,
    pub receivers: Mutex<Vec<ReceiverStatus>>,
}

/// Serves polls; cheap to clone.
#[derive(Clone)]
pub struct StreamService {
    pool: DbPool,
    keys: Arc<LiveKeys>,
    issuer: String,
    clock: SharedClock,
    signal: Arc<StreamSignal>,
    stats: Arc<StreamStats>,
}

impl StreamService {
    pub fn new(
        pool: DbPool,
        keys: Arc<LiveKeys>,
        issuer: String,
        clock: SharedClock,
        signal: Arc<StreamSignal>,
    ) -> Self {
        StreamService { pool, keys, issuer, clock, signal, stats: Arc::default() }
    }

    pub fn stats(&self) -> &Arc<StreamStats> {
        &self.stats
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StreamError> {
        let pool = self.pool.clone();
        match tokio::task::spawn_blocking(move || work(&mut *pool.get()?)).await {
            Ok(result) => Ok(result?),
            Err(err) => Err(StreamError::Interrupted(err.to_string())),
        }
    }

    /// One poll of `receiver` (an authenticated client holding `authz.events.read`).
    pub async fn poll(&self, receiver: &str, request: PollRequest) -> Result<PollAnswer, StreamError> {
        let acks = parse_acknowledgements(receiver, &request)?;
        let max = request.max_events.unwrap_or(DEFAULT_MAX_EVENTS);
        if max > MAX_EVENTS {
            return Err(StreamError::Invalid(format!("maxEvents: at most {MAX_EVENTS}")));
        }
        if !request.set_errs.is_empty() {
            log::warn!("revocation stream: receiver {receiver} could not process {} SET(s)", request.set_errs.len());
            self.stats.set_errors.fetch_add(request.set_errs.len() as u64, Ordering::Relaxed);
        }
        let mut woken = self.signal.wake.subscribe();
        // Real time, not the server's clock: how long this long poll has really waited.
        let started = tokio::time::Instant::now();
        let (owner, at) = (receiver.to_string(), self.clock.now());
        let (position, mut rows) = self
            .blocking(move |conn| {
                // One transaction, one commit: the poll recorded, the acknowledgements, the events to send.
                crate::store::write_transaction(conn, |conn| {
                    let position = acknowledge(conn, &owner, &acks, at)?;
                    Ok((position, security_events::after(conn, position, i64::from(max) + 1)?))
                })
            })
            .await?;
        let waits = max > 0 && !request.return_immediately;
        while waits && rows.is_empty() && !self.signal.closing() {
            let left = LONG_POLL.saturating_sub(started.elapsed());
            if left.is_zero() {
                break;
            }
            // A wake-up after `subscribe` is never missed: `changed` sees every send since then.
            let _ = tokio::time::timeout(left.min(RECHECK), woken.changed()).await;
            woken.borrow_and_update();
            rows = self.blocking(move |conn| security_events::after(conn, position, i64::from(max) + 1)).await?;
        }
        let more_available = rows.len() > max as usize;
        rows.truncate(max as usize);
        Ok(self.sign(receiver, &rows, more_available))
    }

    fn sign(&self, receiver: &str, rows: &[SecurityEventRow], more_available: bool) -> PollAnswer {
        let keys = self.keys.current();
        let iat = self.clock.now();
        let sets = rows
            .iter()
            .map(|row| {
                let claims = set::claims(row, &self.issuer, receiver, iat);
                (set::set_id(row.seq, receiver), keys.sign_jwt_typed(set::SET_TYPE, &claims))
            })
            .collect::<Vec<_>>();
        self.stats.delivered.fetch_add(sets.len() as u64, Ordering::Relaxed);
        PollAnswer { sets, more_available }
    }

    /// Reads the receivers' statuses for `/metrics` every `every`, so that a scrape reads no database.
    pub async fn observe_receivers(self, every: Duration) {
        let mut interval = tokio::time::interval(every);
        loop {
            interval.tick().await;
            let now = self.clock.now();
            match self.blocking(move |conn| statuses(conn, now)).await {
                Ok((last, receivers)) => {
                    self.stats.last_seq.store(last, Ordering::Relaxed);
                    *self.stats.receivers.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = receivers;
                }
                Err(err) => log::warn!("revocation stream: cannot read the receivers' positions: {err}"),
            }
        }
    }
}

/// The sequence numbers a request acknowledges (or reports errors for) that belong to `receiver`; others'
/// and made-up ids are ignored.
fn parse_acknowledgements(receiver: &str, request: &PollRequest) -> Result<BTreeSet<i64>, StreamError> {
    if request.ack.len() + request.set_errs.len() > MAX_ACKS {
        return Err(StreamError::Invalid(format!("at most {MAX_ACKS} acknowledgements per poll")));
    }
    let jtis = request.ack.iter().map(String::as_str).chain(request.set_errs.keys().map(String::as_str));
    Ok(jtis.filter_map(|jti| set::acknowledged_seq(jti, receiver)).collect())
}

/// Registers the receiver on its first poll, moves its position over the acknowledged events that follow it
/// (events pruned meanwhile need no acknowledgement), records the poll, and returns the position.
fn acknowledge(
    conn: &mut DbConnection,
    receiver: &str,
    acks: &BTreeSet<i64>,
    at: NaiveDateTime,
) -> Result<i64, StoreError> {
    let acked_seq = security_events::receiver_polled(conn, receiver, at)?;
    if acks.is_empty() {
        return Ok(acked_seq);
    }
    let mut position = match security_events::first_kept_seq(conn)? {
        Some(first_kept) => acked_seq.max(first_kept - 1),
        None => acked_seq,
    };
    // Only events that exist (committed: the counter moves in their transaction) can be acknowledged.
    let last = security_events::last_seq(conn)?;
    while position < last && acks.contains(&(position + 1)) {
        position += 1;
    }
    if position > acked_seq {
        security_events::acknowledge(conn, receiver, position, at)?;
        return Ok(position);
    }
    Ok(acked_seq)
}
