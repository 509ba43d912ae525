//! The audit trail at scale (issue 18): on PostgreSQL, daily partitions created ahead by the server, retention
//! that drops whole partitions, and the migration that moves an installation's events into the partitioned
//! table without losing one; on both backends, retention in bounded batches and cursor paging that stays
//! exact across days (partitions).

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::NaiveDateTime;
use common::*;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use partnergate::registry::audit_trail::{self as query, AuditFilter};
use partnergate::registry::Caller;
use partnergate::store::models::AuditEventRow;
use partnergate::store::partitions::{self, AUDIT_EVENTS, DAYS_AHEAD, DELETE_BATCH};
use partnergate::store::schema::audit_events;
use partnergate::store::{DbConnection, DbPool};

const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

#[derive(QueryableByName)]
struct Number {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn number(conn: &mut DbConnection, sql: &str) -> i64 {
    diesel::sql_query(sql).get_result::<Number>(conn).unwrap().n
}

fn pg(conn: &mut DbConnection) -> &mut diesel::PgConnection {
    match conn {
        DbConnection::Postgresql(pg) => pg,
        DbConnection::Sqlite(_) => panic!("this test needs PostgreSQL"),
    }
}

fn now() -> NaiveDateTime {
    partnergate::store::now()
}

/// `count` token events spread evenly over the `days` days before `end` (SQL on both backends: a recursive
/// CTE, since SQLite has no `generate_series`), one in a hundred a failure.
fn insert_events(conn: &mut DbConnection, end: NaiveDateTime, days: i64, count: i64) {
    let step_ms = days * 86_400_000 / count;
    let times: Vec<String> = (0..count)
        .map(|i| partnergate::store::sqlite_timestamp(&(end - chrono::Duration::milliseconds(i * step_ms + 1))))
        .collect();
    for chunk in times.chunks(5_000) {
        let values: Vec<String> = chunk
            .iter()
            .enumerate()
            .map(|(i, at)| {
                let outcome = if i % 100 == 0 { "failure" } else { "success" };
                format!("('{at}', 'token.request', '{outcome}', 'p-{}', 'pgc_c{}')", i % 7, i % 31)
            })
            .collect();
        let sql = format!(
            "INSERT INTO audit_events (occurred_at, event_type, outcome, partner_id, client_id) VALUES {}",
            values.join(",")
        );
        conn.batch_execute(&sql).unwrap();
    }
}

/// Rows of `table` (the audit table or one of its partitions) older than `cutoff`.
fn count_before(conn: &mut DbConnection, table: &str, cutoff: NaiveDateTime) -> i64 {
    diesel::sql_query(format!("SELECT count(*) AS n FROM {table} WHERE occurred_at < $1"))
        .bind::<diesel::sql_types::Timestamp, _>(cutoff)
        .get_result::<Number>(conn)
        .unwrap()
        .n
}

fn count_events(conn: &mut DbConnection) -> i64 {
    number(conn, "SELECT count(*) AS n FROM audit_events")
}

fn migrated_pool(db: &TestDatabase) -> DbPool {
    db.pool()
}

#[test]
fn retention_deletes_every_older_event_in_bounded_batches_and_keeps_the_rest() {
    let db = TestDatabase::new();
    let pool = migrated_pool(&db);
    let mut conn = pool.get().unwrap();
    let end = now();
    // More than two batches before the cut-off, some after it.
    insert_events(&mut conn, end, 20, 50_000);
    let cutoff = end - chrono::Duration::days(10);
    let before = count_before(&mut conn, "audit_events", cutoff);
    assert!(before > 2 * DELETE_BATCH, "{before} events before the cut-off");
    let total = count_events(&mut conn);

    let deleted = query::prune_older_than(&mut conn, 10, end).unwrap();
    assert_eq!(deleted as i64, before);
    // What is left: the events after the cut-off, and the prune's own record.
    assert_eq!(count_events(&mut conn), total - before + 1);
    let oldest: NaiveDateTime = diesel::sql_query("SELECT min(occurred_at) AS at FROM audit_events")
        .get_result::<Oldest>(&mut conn)
        .unwrap()
        .at;
    assert!(oldest >= cutoff, "{oldest} is older than {cutoff}");
}

#[derive(QueryableByName)]
struct Oldest {
    #[diesel(sql_type = diesel::sql_types::Timestamp)]
    at: NaiveDateTime,
}

#[test]
fn cursor_pages_walk_every_event_once_newest_first_across_days() {
    let db = TestDatabase::new();
    let pool = migrated_pool(&db);
    let mut conn = pool.get().unwrap();
    insert_events(&mut conn, now(), 6, 1_200);
    for filter in [
        AuditFilter { limit: Some(97), ..Default::default() },
        AuditFilter { partner_id: Some("p-3".into()), limit: Some(13), ..Default::default() },
        AuditFilter { outcome: Some("failure".into()), limit: Some(5), ..Default::default() },
        AuditFilter {
            client_id: Some("pgc_c4".into()),
            since: Some(now() - chrono::Duration::days(4)),
            until: Some(now() - chrono::Duration::days(1)),
            limit: Some(7),
            ..Default::default()
        },
    ] {
        let mut seen = Vec::new();
        let mut page_filter = filter.clone();
        loop {
            let page = query::list(&mut conn, &Caller::cli(), &page_filter).unwrap();
            seen.extend(page.items.iter().map(|row| row.id));
            match page.next_cursor {
                Some(cursor) => page_filter.cursor = Some(cursor),
                None => break,
            }
        }
        let rows: Vec<AuditEventRow> = audit_events::table.select(AuditEventRow::as_select()).load(&mut conn).unwrap();
        let mut expected: Vec<i64> = rows.iter().filter(|row| matches(&filter, row)).map(|row| row.id).collect();
        expected.sort_by(|a, b| b.cmp(a));
        assert!(!seen.is_empty(), "{filter:?} matched nothing");
        assert_eq!(seen, expected, "{filter:?}: every event once, newest first");
        assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), seen.len());
    }
}

/// The filter's meaning, spelled out independently of the query under test.
fn matches(filter: &AuditFilter, row: &AuditEventRow) -> bool {
    filter.partner_id.as_ref().is_none_or(|p| row.partner_id.as_ref() == Some(p))
        && filter.client_id.as_ref().is_none_or(|c| row.client_id.as_ref() == Some(c))
        && filter.event_type.as_ref().is_none_or(|t| &row.event_type == t)
        && filter.outcome.as_ref().is_none_or(|o| &row.outcome == o)
        && filter.since.is_none_or(|since| row.occurred_at >= since)
        && filter.until.is_none_or(|until| row.occurred_at < until)
}

#[test]
#[ignore = "needs PostgreSQL"]
fn the_migration_moves_every_existing_event_into_the_partitioned_table() {
    let db = TestDatabase::postgres();
    partnergate::store::prepare_libpq();
    let mut old = diesel::PgConnection::establish(&db.url).unwrap();
    // The schema as it was before the audit partitions.
    let source = POSTGRES_MIGRATIONS;
    let migrations = diesel::migration::MigrationSource::<diesel::pg::Pg>::migrations(&source).unwrap();
    diesel::migration::MigrationConnection::setup(&mut old).unwrap();
    for migration in migrations.iter().take_while(|m| !m.name().to_string().contains("audit_partitions")) {
        old.run_migration(migration).unwrap();
    }
    // Events of 200 days (older than the partitions the migration creates), today and next month.
    old.batch_execute(
        "INSERT INTO audit_events (occurred_at, event_type, outcome, partner_id) \
         SELECT now()::timestamp - (g * interval '17 minutes'), 'token.request', 'success', 'p-' || (g % 5) \
         FROM generate_series(1, 17000) g; \
         INSERT INTO audit_events (occurred_at, event_type, outcome) \
         VALUES (now()::timestamp + interval '31 days', 'client.create', 'success')",
    )
    .unwrap();
    let fingerprint = "SELECT count(*) AS n FROM audit_events";
    let ids = "SELECT coalesce(sum(id), 0)::bigint AS n FROM audit_events";
    let count_before = diesel::sql_query(fingerprint).get_result::<Number>(&mut old).unwrap().n;
    let ids_before = diesel::sql_query(ids).get_result::<Number>(&mut old).unwrap().n;
    assert_eq!(count_before, 17_001);
    drop(old);

    let pool = migrated_pool(&db);
    let mut conn = pool.get().unwrap();
    assert_eq!(number(&mut conn, fingerprint), count_before, "every event kept");
    assert_eq!(number(&mut conn, ids), ids_before, "with its id");
    let partitioned =
        number(&mut conn, "SELECT count(*) AS n FROM pg_partitioned_table WHERE partrelid = 'audit_events'::regclass");
    assert_eq!(partitioned, 1);
    let days = AUDIT_EVENTS.days(pg(&mut conn)).unwrap();
    let today = now().date();
    assert!(days.contains(&today) && days.contains(&(today + chrono::Days::new(DAYS_AHEAD))), "{days:?}");
    // Older than the partitions, and past them: in the default partition, still listed.
    assert!(number(&mut conn, "SELECT count(*) AS n FROM audit_events_default") > 0);
    let page = query::list(
        &mut conn,
        &Caller::cli(),
        &AuditFilter { event_type: Some("client.create".into()), ..Default::default() },
    );
    assert_eq!(page.unwrap().items.len(), 1);
    // New events continue the old ids.
    partnergate::audit::record_in(
        &mut conn,
        partnergate::audit::AuditEvent::new(
            "partner.create",
            partnergate::audit::Outcome::Success,
            Default::default(),
            partnergate::store::now(),
        ),
    )
    .unwrap();
    assert!(number(&mut conn, "SELECT max(id) AS n FROM audit_events") > 17_001);
}

#[test]
#[ignore = "needs PostgreSQL"]
fn partitions_are_created_ahead_idempotently_and_take_their_days_rows_out_of_the_default() {
    let db = TestDatabase::postgres();
    let pool = migrated_pool(&db);
    let mut conn = pool.get().unwrap();
    let far = now().date() + chrono::Days::new(40);
    // No partition for that day yet: the insert lands in the default partition, it does not fail.
    let at = far.and_hms_opt(12, 0, 0).unwrap();
    insert_events(&mut conn, at, 0, 3);
    assert_eq!(number(&mut conn, "SELECT count(*) AS n FROM audit_events_default"), 3);

    assert_eq!(partitions::ensure_ahead(&mut conn, &AUDIT_EVENTS, far).unwrap(), DAYS_AHEAD as usize + 1);
    assert_eq!(partitions::ensure_ahead(&mut conn, &AUDIT_EVENTS, far).unwrap(), 0, "already there");
    assert_eq!(number(&mut conn, "SELECT count(*) AS n FROM audit_events_default"), 0);
    let name = AUDIT_EVENTS.partition_name(far);
    assert_eq!(number(&mut conn, &format!("SELECT count(*) AS n FROM {name}")), 3);
    assert_eq!(count_events(&mut conn), 3);

    // Two instances at once: each day is created once, neither fails.
    let first = now().date() + chrono::Days::new(60);
    let (a, b) = (pool.clone(), pool.clone());
    let racers: Vec<_> = [a, b]
        .into_iter()
        .map(|pool| {
            std::thread::spawn(move || {
                partitions::ensure_ahead(&mut pool.get().unwrap(), &AUDIT_EVENTS, first).unwrap()
            })
        })
        .collect();
    let created: usize = racers.into_iter().map(|r| r.join().unwrap()).sum();
    assert_eq!(created, DAYS_AHEAD as usize + 1);
}

#[test]
#[ignore = "needs PostgreSQL"]
fn retention_drops_whole_partitions_and_trims_the_day_that_straddles_the_cutoff() {
    let db = TestDatabase::postgres();
    let pool = migrated_pool(&db);
    let mut conn = pool.get().unwrap();
    let end = now();
    // A month of partitions before today (a fresh database has them from today on).
    AUDIT_EVENTS.ensure(pg(&mut conn), end.date() - chrono::Days::new(31), end.date()).unwrap();
    insert_events(&mut conn, end, 30, 30_000);
    let cutoff = end - chrono::Duration::days(10);
    let straddling = cutoff.date();
    let older = straddling - chrono::Days::new(1);
    let days = AUDIT_EVENTS.days(pg(&mut conn)).unwrap();
    assert!(days.contains(&older) && days.contains(&straddling));
    let expected = count_before(&mut conn, "audit_events", cutoff);

    let deleted = query::prune_older_than(&mut conn, 10, end).unwrap();
    assert_eq!(deleted as i64, expected);
    let days = AUDIT_EVENTS.days(pg(&mut conn)).unwrap();
    assert!(days.iter().all(|day| *day >= straddling), "a partition before the cut-off's day is left: {days:?}");
    assert!(days.contains(&straddling), "the straddling day's partition stays, trimmed");
    let name = AUDIT_EVENTS.partition_name(straddling);
    assert_eq!(count_before(&mut conn, &name, cutoff), 0);
    assert!(number(&mut conn, &format!("SELECT count(*) AS n FROM {name}")) > 0, "the rest of that day is kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn a_starting_server_creates_the_missing_partitions_ahead() {
    assert!(on_postgres(), "run with PARTNERGATE_TEST_BACKEND=postgres: the server under test must be on PostgreSQL");
    let first = TestServer::start().await;
    let ahead = now().date() + chrono::Days::new(DAYS_AHEAD);
    let mut conn = first.pool.get().unwrap();
    conn.batch_execute(&format!("DROP TABLE {}", AUDIT_EVENTS.partition_name(ahead))).unwrap();
    assert!(!AUDIT_EVENTS.days(pg(&mut conn)).unwrap().contains(&ahead));
    drop(conn);
    // A second instance on the same database runs its maintenance when it starts.
    let second = TestServer::start_beside(&first).await;
    until(Duration::from_secs(10), "the partition a week ahead", || {
        let pool = second.pool.clone();
        async move { AUDIT_EVENTS.days(pg(&mut pool.get().unwrap())).unwrap().contains(&ahead) }
    })
    .await;
}
