//! Database passwords are never printed (issue 7 item 2): not by `migrate` or `serve` when the database
//! cannot be reached or the URL is malformed, and not in the `serve` log of a server that did start.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Every way a password can be written into `--database-url`, each with its own marker.
const URLS: &[(&str, &str)] = &[
    ("postgres://postgres:Hunter2User@127.0.0.1:1/x", "Hunter2User"),
    ("postgresql://postgres@127.0.0.1:1/x?sslmode=disable&password=Hunter2Query", "Hunter2Query"),
    ("postgres://postgres:Hun%zzter2Pct@127.0.0.1:1/x", "Hun%zzter2Pct"),
    ("host=127.0.0.1 port=1 user=postgres password=Hunter2Dsn dbname=x", "Hunter2Dsn"),
];

fn partnergate(url: &str, args: &[&str]) -> (bool, String) {
    let keys = tempfile::tempdir().unwrap();
    // Settings through the environment: each command takes only the options it uses.
    let output = Command::new(env!("CARGO_BIN_EXE_partnergate"))
        .env("PARTNERGATE_DATABASE_URL", url)
        .env("PARTNERGATE_DATABASE_TIMEOUT_SECS", "1")
        .env("PARTNERGATE_KEYS_DIR", keys.path())
        .args(args)
        .env("RUST_LOG", "debug")
        .output()
        .expect("run partnergate");
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), printed)
}

#[test]
fn failing_commands_print_no_database_password() {
    for (url, password) in URLS {
        for args in [&["migrate"][..], &["serve", "--bind", "127.0.0.1:0"], &["partner", "list"]] {
            let (ok, printed) = partnergate(url, args);
            assert!(!ok, "{args:?} on an unreachable database fails: {printed}");
            assert!(printed.contains("error:"), "{args:?} says why: {printed}");
            assert!(!printed.contains(password), "{args:?} printed the password {password}: {printed}");
        }
    }
}

/// A server that starts logs its database without the password (on PostgreSQL, whose local trust
/// authentication accepts any password; SQLite URLs carry none).
#[actix_web::test]
async fn the_serve_log_names_the_database_without_its_password() {
    let db = TestDatabase::new();
    let with_password =
        if db.url.starts_with("postgres") { format!("{}?password=Hunter2Served", db.url) } else { db.url.clone() };
    let keys = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_partnergate"))
        .args(["serve", "--database-url", &with_password, "--keys-dir"])
        .arg(keys.path())
        .args(["--bind", "127.0.0.1:0"])
        .env("RUST_LOG", "debug")
        // The key-encryption key (a PostgreSQL server does not generate one).
        .env(partnergate::keys::kek::ENV_VALUE, postgres_test_kek())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start partnergate serve");
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap_or_default();
            let done = line.contains("partnergate listening on");
            lines.push(line);
            if done {
                break;
            }
        }
        lines
    });
    let started = Instant::now();
    while !reader.is_finished() && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().ok();
    child.wait().ok();
    let lines = reader.join().unwrap().join("\n");
    assert!(lines.contains("database: "), "the log names the database: {lines}");
    assert!(lines.contains("partnergate listening on"), "the server started: {lines}");
    assert!(!lines.contains("Hunter2"), "the log holds the password: {lines}");
}
