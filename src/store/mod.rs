//! Storage: the Diesel connection over SQLite or PostgreSQL, the pool, and the embedded migrations.
//!
//! The backend is picked from the URL scheme (`sqlite://` or `postgres://`), never guessed: SQLite accepts any
//! string as a file name, and `MultiConnection::establish` hides the real connection error.

pub mod changes;
pub mod console;
pub mod leases;
pub mod models;
pub mod partitions;
pub mod request_log;
pub mod schema;
pub mod security_events;
mod tx;
pub mod usage;
pub mod used_assertions;

pub use tx::{Transactional, Tx};

use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{CustomizeConnection, ManageConnection, Pool, PooledConnection, R2D2Connection};
use diesel::sqlite::SqliteConnection;
use diesel::Connection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// One connection type for both backends; queries are written once against it.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

pub type DbPool = Pool<BackendManager>;
pub type PooledDb = PooledConnection<BackendManager>;

/// Opens connections of one backend only. Diesel's `ConnectionManager<MultiConnection>` tries every backend
/// in turn, so while Postgres is down it would "succeed" by creating a SQLite file named after the URL.
pub struct BackendManager {
    backend: Backend,
    driver_url: String,
}

/// The URL may hold a password, and the pool's `Debug` shows its manager.
impl std::fmt::Debug for BackendManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendManager")
            .field("backend", &self.backend)
            .field("driver_url", &redact_url(&self.driver_url))
            .finish()
    }
}

impl ManageConnection for BackendManager {
    type Connection = DbConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConnection, Self::Error> {
        let conn = match self.backend {
            Backend::Sqlite => SqliteConnection::establish(&self.driver_url).map(DbConnection::Sqlite),
            Backend::Postgres => PgConnection::establish(&self.driver_url).map(DbConnection::Postgresql),
        };
        // r2d2 keeps the last connection error and shows it in its timeout error: no password in it.
        conn.map_err(|err| {
            diesel::r2d2::Error::ConnectionError(diesel::ConnectionError::BadConnection(cause(&self.driver_url, &err)))
        })
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), Self::Error> {
        conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error(
        "no database at {0}: create it with `partnergate migrate` (or start `partnergate serve`), or point \
         PARTNERGATE_DATABASE_URL at the server's database"
    )]
    Missing(String),
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
}

impl StoreError {
    /// Whether the database could not be reached or asked to retry (a pool that timed out, a lost
    /// connection, a busy SQLite file, a serialization failure): an outage to answer `503` with
    /// `Retry-After`. Anything else (a failing statement, a constraint the code should have checked) is a
    /// fault of ours: `500`, logged loudly, and not something a client should retry in a storm.
    pub fn is_unavailable(&self) -> bool {
        use diesel::result::{DatabaseErrorKind, Error};
        match self {
            StoreError::Unavailable(_) | StoreError::Missing(_) => true,
            StoreError::InvalidUrl(_) | StoreError::Migration(_) => false,
            StoreError::Query(Error::BrokenTransactionManager) => true,
            StoreError::Query(Error::DatabaseError(kind, info)) => match kind {
                DatabaseErrorKind::ClosedConnection
                | DatabaseErrorKind::UnableToSendCommand
                | DatabaseErrorKind::SerializationFailure
                | DatabaseErrorKind::ReadOnlyTransaction => true,
                // libpq reports a dropped connection or a full disk, and SQLite a busy or full file, without a
                // kind of their own.
                _ => {
                    let message = info.message();
                    [
                        "database is locked",
                        "connection",
                        "terminating",
                        "SSL SYSCALL",
                        "could not receive",
                        "No space left on device",
                        "disk is full",
                        "read-only",
                        "out of memory",
                    ]
                    .iter()
                    .any(|sign| message.contains(sign))
                }
            },
            StoreError::Query(_) => false,
        }
    }

    /// A unique or foreign key violation: the caller's input conflicts with stored data.
    pub fn is_constraint_violation(&self) -> bool {
        use diesel::result::{DatabaseErrorKind, Error};
        matches!(
            self,
            StoreError::Query(Error::DatabaseError(
                DatabaseErrorKind::UniqueViolation | DatabaseErrorKind::ForeignKeyViolation,
                _
            ))
        )
    }
}

impl From<diesel::r2d2::PoolError> for StoreError {
    fn from(err: diesel::r2d2::PoolError) -> Self {
        StoreError::Unavailable(crate::redact::database(&err.to_string()).into_owned())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Which backend a URL names, and the string to hand to that backend's driver.
pub fn parse_database_url(url: &str) -> Result<(Backend, String), StoreError> {
    if let Some(rest) = url.strip_prefix("sqlite://") {
        if rest.is_empty() {
            return Err(StoreError::InvalidUrl(
                "sqlite:// needs a file path, e.g. sqlite://./data/partnergate.db".into(),
            ));
        }
        Ok((Backend::Sqlite, rest.to_string()))
    } else if url == "sqlite::memory:" {
        Ok((Backend::Sqlite, ":memory:".to_string()))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok((Backend::Postgres, url.to_string()))
    } else {
        Err(StoreError::InvalidUrl(format!(
            "unsupported scheme in {:?}: use sqlite://PATH or postgres://USER@HOST/DB",
            redact_url(url)
        )))
    }
}

/// A URL (or key=value DSN) with any password replaced, for messages, logs and `Debug`.
pub fn redact_url(url: &str) -> String {
    crate::redact::database(url).into_owned()
}

/// A driver's error about `url`, with the URL's passwords taken out wherever the driver quoted them (libpq
/// quotes the offending token of a malformed URL, e.g. `invalid percent-encoded token: "..."`).
fn cause(url: &str, err: &impl std::fmt::Display) -> String {
    passwords(url)
        .iter()
        .fold(redact_url(&err.to_string()), |text, password| text.replace(password.as_str(), crate::redact::PASSWORD))
}

/// The passwords a URL carries: its user info's and any `password=` parameter's, as written.
fn passwords(url: &str) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(scheme_end) = url.find("://") {
        let after = &url[scheme_end + 3..];
        let authority = &after[..after.find(['/', '?', '#']).unwrap_or(after.len())];
        if let Some(at) = authority.rfind('@') {
            if let Some(colon) = authority[..at].find(':') {
                found.push(authority[colon + 1..at].to_string());
            }
        }
    }
    for pair in url.split(['?', '&', ' ']) {
        if let Some((key, value)) = pair.split_once('=') {
            if key.eq_ignore_ascii_case("password") {
                found.push(value.trim_matches('\'').to_string());
            }
        }
    }
    found.retain(|p| !p.is_empty());
    found
}

/// Per-connection settings for SQLite: a busy timeout (first, so the others wait too) so that concurrent
/// writers wait instead of failing, and foreign keys (off by default in SQLite). WAL mode, which lets readers
/// proceed beside the writer, is a property of the file and is set once in `connect`.
#[derive(Debug)]
struct SqlitePragmas;

impl CustomizeConnection<DbConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), diesel::r2d2::Error> {
        if let DbConnection::Sqlite(sqlite) = conn {
            sqlite
                .batch_execute("PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")
                .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_size: u32,
    pub connect_timeout: Duration,
    /// Create a missing SQLite file (and its directory), private to the owner. The CLI asks for it only in
    /// `serve` and `migrate`: any other command on a mistyped path would otherwise work on a new, empty
    /// database.
    pub create_if_missing: bool,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions { max_size: 16, connect_timeout: Duration::from_secs(5), create_if_missing: true }
    }
}

/// To be called before anything in the process opens a PostgreSQL connection ([`connect`] does; so must code
/// that calls libpq directly first, such as a test harness creating its database): initialized this way,
/// OpenSSL (libpq's, for TLS to PostgreSQL) registers no exit handler. That handler freed OpenSSL's state in
/// `exit` while a pool thread could still be writing to a connection through it, and the thread then crashed
/// the process (SIGSEGV) instead of it exiting with its status: `serve` refusing to start, and test binaries
/// at their end. Idempotent.
pub fn prepare_libpq() {
    openssl_sys::init();
}

/// Connects once directly (to surface the driver's real error), then builds the pool.
pub fn connect(url: &str, options: &PoolOptions) -> Result<DbPool, StoreError> {
    prepare_libpq();
    let (backend, driver_url) = parse_database_url(url)?;
    match backend {
        Backend::Sqlite => {
            if driver_url != ":memory:" {
                sqlite_file::ensure(std::path::Path::new(&driver_url), options.create_if_missing)?;
            }
            let mut probe = SqliteConnection::establish(&driver_url)
                .map_err(|err| StoreError::Unavailable(format!("sqlite {driver_url}: {err}")))?;
            probe.batch_execute("PRAGMA busy_timeout = 5000;")?;
            set_wal(&mut probe, options.connect_timeout)?;
        }
        Backend::Postgres => {
            // libpq honours connect_timeout; without it an unreachable host can hang for minutes.
            let probe_url = with_connect_timeout(&driver_url, options.connect_timeout);
            PgConnection::establish(&probe_url).map_err(|err| {
                StoreError::Unavailable(format!("postgres {}: {}", redact_url(url), cause(url, &err)))
            })?;
        }
    }
    let manager_url = match backend {
        Backend::Sqlite => driver_url.clone(),
        Backend::Postgres => with_connect_timeout(&driver_url, options.connect_timeout),
    };
    // SQLite allows one writer at a time; a small pool avoids lock convoys without limiting readers much.
    let max_size = match backend {
        Backend::Sqlite if driver_url == ":memory:" => 1,
        Backend::Sqlite => options.max_size.min(8),
        Backend::Postgres => options.max_size,
    };
    Pool::builder()
        .max_size(max_size)
        // Connections open as load needs them rather than all at start: a start is quicker, and instances
        // (and test runs) sharing one PostgreSQL do not take its connection slots for nothing.
        .min_idle(Some(1))
        .connection_timeout(options.connect_timeout)
        .connection_customizer(Box::new(SqlitePragmas))
        .build(BackendManager { backend, driver_url: manager_url })
        .map_err(StoreError::from)
}

/// Puts the SQLite file in WAL mode. Two processes that create the database at once both switch it, and SQLite
/// answers one of them "database is locked" at once, whatever the busy timeout (seen 1 in 200 with two
/// instances started together): it tries again until `timeout`.
fn set_wal(conn: &mut SqliteConnection, timeout: Duration) -> Result<(), StoreError> {
    // Real time (a retry bound on real I/O), not the server's clock.
    let started = std::time::Instant::now();
    loop {
        match conn.batch_execute("PRAGMA journal_mode = WAL;") {
            Err(diesel::result::Error::DatabaseError(_, info))
                if info.message().contains("database is locked") && started.elapsed() < timeout =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            done => return Ok(done?),
        }
    }
}

/// The SQLite file: refused when missing (unless asked to create it), and created private (0700 directory,
/// 0600 file) because it holds every client's secret hashes and the audit trail. SQLite gives the `-wal`
/// and `-shm` files the permissions of the database file, so they are private too.
mod sqlite_file {
    use std::fs;
    use std::path::Path;

    use super::StoreError;

    pub fn ensure(path: &Path, create: bool) -> Result<(), StoreError> {
        if path.exists() {
            return Ok(());
        }
        if !create {
            return Err(StoreError::Missing(path.display().to_string()));
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            private_dir_builder().create(parent).map_err(|err| {
                StoreError::Unavailable(format!("cannot create directory {}: {err}", parent.display()))
            })?;
        }
        let mut file = fs::OpenOptions::new();
        file.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
        match file.open(path) {
            // An empty file is an empty SQLite database; another process may have created it meanwhile.
            Ok(_) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(err) => Err(StoreError::Unavailable(format!("cannot create {}: {err}", path.display()))),
        }
    }

    fn private_dir_builder() -> fs::DirBuilder {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
    }
}

pub(crate) fn with_connect_timeout(url: &str, timeout: Duration) -> String {
    let mut url = url.to_string();
    // A database that stops answering (a cut network, a black-holed address) must fail a connection in
    // seconds rather than after the kernel's TCP retries (minutes): the token endpoint then answers 503
    // instead of hanging. `tcp_user_timeout` bounds unacknowledged writes, keepalives catch an idle dead peer.
    let timeout_secs = timeout.as_secs().max(1).to_string();
    let params = [
        ("connect_timeout", timeout_secs.as_str()),
        ("tcp_user_timeout", "2000"),
        ("keepalives", "1"),
        ("keepalives_idle", "5"),
        ("keepalives_interval", "2"),
        ("keepalives_count", "2"),
    ];
    for (name, value) in params {
        if !url.contains(&format!("{name}=")) {
            let separator = if url.contains('?') { '&' } else { '?' };
            url = format!("{url}{separator}{name}={value}");
        }
    }
    url
}

/// The key of the PostgreSQL advisory lock held while migrating ("pgmigrat" in ASCII): any fixed number that
/// nothing else on the database uses.
const MIGRATION_LOCK: i64 = 0x7067_6d69_6772_6174;

/// Applies every pending migration of the connection's backend; returns how many ran.
///
/// Instances (and `migrate`) started at once on one database take turns: each finds the pending migrations and
/// applies them holding a lock (PostgreSQL: a session advisory lock; SQLite: a write transaction), so the
/// second one finds nothing left to do instead of failing on a table the first has just created.
pub fn run_migrations(conn: &mut DbConnection) -> Result<usize, StoreError> {
    match conn {
        DbConnection::Sqlite(_) => write_transaction(conn, |conn| {
            let DbConnection::Sqlite(sqlite) = conn else {
                unreachable!("the backend of a connection does not change")
            };
            sqlite.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()).map_err(migration_error)
        }),
        DbConnection::Postgresql(pg) => {
            use diesel::RunQueryDsl;
            let lock = |sql: &str| diesel::sql_query(sql).bind::<diesel::sql_types::BigInt, _>(MIGRATION_LOCK);
            lock("SELECT pg_advisory_lock($1)").execute(pg)?;
            let applied = pg.run_pending_migrations(POSTGRES_MIGRATIONS).map(|v| v.len()).map_err(migration_error);
            // A failed unlock means a lost connection, whose session (and lock) PostgreSQL has ended anyway.
            let unlocked = lock("SELECT pg_advisory_unlock($1)").execute(pg);
            let applied = applied?;
            unlocked?;
            Ok(applied)
        }
    }
}

fn migration_error(err: Box<dyn std::error::Error + Send + Sync>) -> StoreError {
    StoreError::Migration(redact_url(&err.to_string()))
}

/// Serde helpers that write stored UTC timestamps as RFC 3339 with a `Z` (`2026-11-22T20:36:16.008297Z`),
/// so API and CLI readers never have to guess the zone. Reading accepts that form and the bare one.
pub mod utc {
    use chrono::{NaiveDateTime, SecondsFormat};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn format(at: &NaiveDateTime) -> String {
        at.and_utc().to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }

    pub fn serialize<S: Serializer>(at: &NaiveDateTime, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format(at))
    }

    pub fn parse(text: &str) -> Result<NaiveDateTime, String> {
        chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| t.naive_utc())
            .or_else(|_| text.parse::<NaiveDateTime>())
            .map_err(|_| format!("{text:?} is not a time: use RFC 3339, e.g. 2026-11-22T20:36:16Z"))
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(at: &Option<NaiveDateTime>, serializer: S) -> Result<S::Ok, S::Error> {
            match at {
                Some(at) => super::serialize(at, serializer),
                None => serializer.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<NaiveDateTime>, D::Error> {
            let text: Option<String> = Option::deserialize(deserializer)?;
            text.map(|t| super::parse(&t).map_err(serde::de::Error::custom)).transpose()
        }
    }
}

/// A read-write transaction; nested calls become savepoints. On SQLite the outermost one begins with
/// `BEGIN IMMEDIATE`, taking the write lock up front: a deferred transaction that reads first and writes
/// later fails at once with "database is locked" when another connection (the audit writer, say) committed
/// in between, whatever the busy timeout. PostgreSQL needs nothing of the kind.
pub fn write_transaction<C, T, E, F>(conn: &mut C, work: F) -> Result<T, E>
where
    C: Transactional + ?Sized,
    F: FnOnce(&mut C) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    type Manager = <DbConnection as Connection>::TransactionManager;
    let mark = conn.published_mark();
    let outermost_sqlite = match conn.db() {
        DbConnection::Sqlite(sqlite) => {
            AnsiTransactionManager::transaction_manager_status_mut(sqlite).transaction_depth()?.is_none()
        }
        DbConnection::Postgresql(_) => false,
    };
    match conn.db() {
        DbConnection::Sqlite(sqlite) if outermost_sqlite => {
            AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?
        }
        db => Manager::begin_transaction(db)?,
    }
    let result = match work(conn) {
        Ok(value) => match Manager::commit_transaction(conn.db()) {
            Ok(()) => Ok(value),
            Err(err) => Err(err.into()),
        },
        Err(err) => match Manager::rollback_transaction(conn.db()) {
            // The work's error is the one to report; a failed rollback marks the connection broken for the pool.
            Err(rollback)
                if !outermost_sqlite && !matches!(rollback, diesel::result::Error::BrokenTransactionManager) =>
            {
                Err(rollback.into())
            }
            _ => Err(err),
        },
    };
    if result.is_err() {
        conn.roll_back_published(mark);
    }
    result
}

/// A round trip to the database.
pub fn ping(conn: &mut DbConnection) -> Result<(), StoreError> {
    conn.batch_execute("SELECT 1")?;
    Ok(())
}

/// A time as diesel stores it in a SQLite `TIMESTAMP` column (text that sorts as the times do), for raw SQL
/// that passes times inside a JSON document instead of as bound parameters.
pub fn sqlite_timestamp(at: &NaiveDateTime) -> String {
    at.format("%F %T%.f").to_string()
}

/// The system clock's time, for the CLI and tests; the server's paths take the time from its injected
/// [`crate::clock::Clock`] instead.
pub fn now() -> NaiveDateTime {
    crate::clock::Clock::now(&crate::clock::SystemClock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_follows_the_scheme() {
        assert_eq!(parse_database_url("sqlite://./data/x.db").unwrap(), (Backend::Sqlite, "./data/x.db".into()));
        assert_eq!(parse_database_url("postgres://u@h/db").unwrap().0, Backend::Postgres);
        assert!(matches!(parse_database_url("mysql://h/db"), Err(StoreError::InvalidUrl(_))));
        assert!(matches!(parse_database_url("./data/x.db"), Err(StoreError::InvalidUrl(_))));
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let at = utc::parse("2026-11-22T20:36:16.5Z").unwrap();
        assert_eq!(utc::format(&at), "2026-11-22T20:36:16.500Z");
        assert_eq!(utc::parse("2026-11-22T21:36:16.5+01:00").unwrap(), at);
        assert_eq!(utc::parse("2026-11-22T20:36:16.5").unwrap(), at);
        assert!(utc::parse("yesterday").unwrap_err().contains("RFC 3339"));
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact_url("postgres://bob:hunter2@db/x"), "postgres://bob:***@db/x");
        assert_eq!(redact_url("postgres://bob@db/x"), "postgres://bob@db/x");
        assert_eq!(redact_url("postgres://bob@db/x?password=hunter2"), "postgres://bob@db/x?password=***");
        let url = "postgresql://bob:Hun%zz2@db/x?password=Other3";
        let quoted = cause(url, &"invalid percent-encoded token: \"Hun%zz2\" (also Other3)");
        assert!(!quoted.contains("Hun%zz2") && !quoted.contains("Other3"), "{quoted}");
    }

    #[test]
    fn the_pools_debug_shows_no_password() {
        let manager = BackendManager {
            backend: Backend::Postgres,
            driver_url: "postgres://bob:Hunter2a@db/x?password=Hunter2b&connect_timeout=1".into(),
        };
        let pool: DbPool = Pool::builder().max_size(1).build_unchecked(manager);
        let shown = format!("{pool:?} {:?}", parse_database_url("host=db password=Hunter2c"));
        assert!(shown.contains("BackendManager"), "{shown}");
        assert!(!shown.contains("Hunter2"), "{shown}");
    }
}
