//! `partnergate serve` as real processes on one database: a refusal to start is exit status 1 with its
//! message every time, and instances started together on an empty database all start.

mod common;

use std::time::Duration;

use common::*;
use diesel::RunQueryDsl;

/// `serve` (and the other commands) on `db`, with `keys` as keys directory and the test run's key-encryption
/// key, so that instances started together share it without racing to generate its file.
fn command_on(db: &TestDatabase, keys: &std::path::Path) -> std::process::Command {
    let mut command = partnergate_binary();
    command
        .env("PARTNERGATE_DATABASE_URL", &db.url)
        .env("PARTNERGATE_KEYS_DIR", keys)
        .env(partnergate::keys::kek::ENV_VALUE, postgres_test_kek());
    command
}

/// On PostgreSQL the process used to die by SIGSEGV now and then (4 of 23 runs under load, about 1 in 150
/// here) instead of exiting 1: a pool thread was inside OpenSSL, opening a TLS connection for libpq, while
/// `exit` ran OpenSSL's clean-up. Six at a time, 180 runs in all, to catch it within a few seconds.
#[test]
fn serve_that_refuses_to_start_exits_1_with_its_message_every_time() {
    let db = TestDatabase::new();
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let command = command_on(&db, &keys);
    run_command(&command, &["migrate"]).ok();
    run_command(&command, &["keys", "generate"]).ok();
    // A database whose keys have none active: `serve` refuses it after its pool is up.
    diesel::sql_query("UPDATE signing_keys SET state = 'published', activated_at = NULL")
        .execute(&mut db.pool().get().unwrap())
        .unwrap();
    std::thread::scope(|scope| {
        for runner in 0..6 {
            let (db, keys) = (&db, &keys);
            scope.spawn(move || {
                let command = command_on(db, keys);
                // A log directory per runner: two runners may be handed the same free port, which names the log.
                let logs = tempfile::tempdir().unwrap();
                for run in 1..=30 {
                    let (status, log) =
                        ServeProcess::refused(&command, logs.path(), "127.0.0.1", Duration::from_secs(30));
                    assert_eq!(status.code(), Some(1), "runner {runner}, run {run}: {status}: {log}");
                    let refusal = "error: the stored signing keys have no active key";
                    assert!(log.contains(refusal), "runner {runner}, run {run}: {log}");
                }
            });
        }
    });
}

/// Two instances of a new deployment started at once on an empty database: both migrate, one key is made,
/// both start and sign with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_started_together_on_an_empty_database_all_start() {
    for round in 1..=4 {
        let db = TestDatabase::new();
        let dir = tempfile::tempdir().unwrap();
        let command = command_on(&db, &dir.path().join("keys"));
        let (first, second) =
            tokio::join!(ServeProcess::start(&command, dir.path()), ServeProcess::start(&command, dir.path()));
        let jwks = |server: &ServeProcess| {
            let (http, url) = (server.http.clone(), server.url("/.well-known/jwks.json"));
            async move { http.get(url).send().await.unwrap().json::<serde_json::Value>().await.unwrap() }
        };
        let (one, two) = (jwks(&first).await, jwks(&second).await);
        assert_eq!(one["keys"].as_array().map(Vec::len), Some(1), "round {round}: one key: {one}");
        assert_eq!(one, two, "round {round}: one key ring for both");
    }
}
