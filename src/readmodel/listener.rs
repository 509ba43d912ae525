//! Listens to the change feed and applies what other instances and `partnergate` commands changed.
//!
//! - PostgreSQL: a dedicated connection `LISTEN`s on the feed's channel. diesel's notification iterator does not
//!   block, so the thread polls it every [`POSTGRES_POLL`], and checks the connection with a round trip every
//!   [`POSTGRES_PING`]. When the connection is lost the cache is emptied, and emptied again once a new
//!   connection listens (whatever changed in between is then reloaded).
//! - SQLite: the `registry_changes` table is polled every [`SQLITE_POLL`] for rows after the last one seen.
//!
//! Either way a change reaches every instance well within a second.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::Connection;

use crate::store::changes::{self, Change, ChangeSink, CHANNEL};
use crate::store::{Backend, DbPool, StoreError};

pub const POSTGRES_POLL: Duration = Duration::from_millis(50);
pub const POSTGRES_PING: Duration = Duration::from_millis(500);
pub const SQLITE_POLL: Duration = Duration::from_millis(100);
const RECONNECT_BACKOFF: Duration = Duration::from_millis(250);

/// The running listener; [`FeedListener::stop`] ends its thread.
pub struct FeedListener {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FeedListener {
    /// Starts listening; returns once the listener is in place, so no change committed after this is missed.
    pub fn start(
        database_url: &str,
        pool: DbPool,
        connect_timeout: Duration,
        sink: Arc<dyn ChangeSink>,
    ) -> Result<FeedListener, StoreError> {
        let (backend, driver_url) = crate::store::parse_database_url(database_url)?;
        let stop = Arc::new(AtomicBool::new(false));
        let running = stop.clone();
        let thread = match backend {
            Backend::Postgres => {
                let url = with_application_name(&crate::store::with_connect_timeout(&driver_url, connect_timeout));
                let conn = listen(&url)?;
                spawn("change-listener", move || listen_postgres(conn, &url, &*sink, &running))
            }
            Backend::Sqlite => {
                let last = changes::latest_seq(&mut *pool.get()?)?;
                spawn("change-poller", move || poll_sqlite(pool, last, &*sink, &running))
            }
        };
        Ok(FeedListener { stop, thread: Some(thread) })
    }

    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for FeedListener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn spawn(name: &str, work: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    std::thread::Builder::new().name(name.into()).spawn(work).expect("cannot start the change feed listener")
}

/// The listener's connection names itself, so that operators (and tests) can find it in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "partnergate-change-feed";

fn with_application_name(url: &str) -> String {
    if url.contains("application_name=") {
        return url.to_string();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}application_name={APPLICATION_NAME}")
}

fn listen(url: &str) -> Result<PgConnection, StoreError> {
    let mut conn = PgConnection::establish(url).map_err(|err| {
        StoreError::Unavailable(format!("change feed: {}", crate::store::redact_url(&err.to_string())))
    })?;
    conn.batch_execute(&format!("LISTEN {CHANNEL}"))?;
    Ok(conn)
}

fn listen_postgres(mut conn: PgConnection, url: &str, sink: &dyn ChangeSink, stop: &AtomicBool) {
    // Real time, not the server's clock: it paces pings of a real connection.
    let mut last_ping = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(POSTGRES_POLL);
        let mut received = Vec::new();
        let mut healthy = true;
        for notification in conn.notifications_iter() {
            match notification {
                Ok(notification) => received.push(Change::decode(&notification.payload)),
                Err(_) => {
                    healthy = false;
                    break;
                }
            }
        }
        sink.apply(&received);
        if healthy && last_ping.elapsed() >= POSTGRES_PING {
            healthy = conn.batch_execute("SELECT 1").is_ok();
            last_ping = Instant::now();
        }
        if !healthy {
            log::warn!("change feed: lost the listener connection; the registry cache is emptied until it is back");
            sink.apply(&[Change::Catalog]);
            match reconnect(url, stop) {
                Some(fresh) => conn = fresh,
                None => return,
            }
            // Whatever changed while nobody listened is reloaded.
            sink.apply(&[Change::Catalog]);
            log::info!("change feed: listening again");
        }
    }
}

fn reconnect(url: &str, stop: &AtomicBool) -> Option<PgConnection> {
    while !stop.load(Ordering::SeqCst) {
        match listen(url) {
            Ok(conn) => return Some(conn),
            Err(err) => log::warn!("{err}"),
        }
        std::thread::sleep(RECONNECT_BACKOFF);
    }
    None
}

fn poll_sqlite(pool: DbPool, mut last: i64, sink: &dyn ChangeSink, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(SQLITE_POLL);
        let batch =
            pool.get().map_err(StoreError::from).and_then(|mut conn| changes::changes_after(&mut conn, last, 1000));
        match batch {
            Ok(batch) => {
                if let Some((seq, _)) = batch.last() {
                    last = *seq;
                }
                let changes: Vec<Change> = batch.into_iter().map(|(_, change)| change).collect();
                sink.apply(&changes);
            }
            // The rows stay in the table: the next poll reads them.
            Err(err) => log::warn!("change feed: cannot poll for changes: {err}"),
        }
    }
}
