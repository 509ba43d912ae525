//! The small ones from review (issue 7 item 9): revoking one token from two instances at once, embedded
//! migrations rebuilt when a directory is added, `keys generate` beside a signing key, `audit prune` audited.

mod common;

use std::time::Duration;

use common::*;
use partnergate::secevents::revoked;

/// A revocation that commits while another one of the same `jti` waits for it: the second sees the row
/// only through the primary key (PostgreSQL, READ COMMITTED) or after the first's write lock (SQLite), and
/// must answer "already revoked", not fail. On SQLite the second's check always finds the row, so the
/// primary-key answer is taken by the next test, on both backends.
#[actix_web::test]
async fn a_jti_revoked_concurrently_is_already_revoked_not_an_error() {
    let server = TestServer::start().await;
    let created = server.seed("acme").role(&["orders.read"]).create();
    let cid = created.client.id.clone();
    let expires = partnergate::store::now() + chrono::Duration::seconds(600);
    let (inserted_tx, inserted) = std::sync::mpsc::channel();
    let (commit_tx, commit) = std::sync::mpsc::channel::<()>();
    let pool = server.pool.clone();
    let first_cid = cid.clone();
    let first = std::thread::spawn(move || {
        let mut conn = partnergate::store::Tx::new(pool.get().unwrap());
        partnergate::store::write_transaction(&mut conn, |conn| {
            let fresh = revoked::revoke_jti(conn, "jti-raced", &first_cid, expires, partnergate::store::now())?;
            inserted_tx.send(fresh).unwrap();
            commit.recv().unwrap();
            Ok::<_, partnergate::store::StoreError>(())
        })
        .map_err(|e| e.to_string())
    });
    assert!(inserted.recv().unwrap(), "the first revocation inserts");
    let pool = server.pool.clone();
    let second = std::thread::spawn(move || {
        revoked::revoke_jti(
            &mut partnergate::store::Tx::new(pool.get().unwrap()),
            "jti-raced",
            &cid,
            expires,
            partnergate::store::now(),
        )
        .map_err(|e| e.to_string())
    });
    // The second cannot finish before the first commits: it waits on the row's key or the write lock.
    std::thread::sleep(Duration::from_millis(300));
    assert!(!second.is_finished(), "the second revocation waits for the first");
    commit_tx.send(()).unwrap();
    assert_eq!(first.join().unwrap(), Ok(()));
    assert_eq!(second.join().unwrap(), Ok(false), "already revoked");
    server.stop().await;
}

/// The interleaving the test above meets on PostgreSQL, made to happen on either backend: the row appears
/// after the check found none and before the insert (a trigger inserts it first, standing in for the other
/// instance), so the insert fails on the primary key. That is "already revoked", and the caller's transaction
/// (the audit writer's batch) goes on and commits its other revocations.
#[actix_web::test]
async fn a_jti_inserted_between_the_check_and_the_insert_is_already_revoked() {
    use diesel::connection::SimpleConnection;
    use partnergate::store::{DbConnection, StoreError};
    let server = TestServer::start().await;
    let cid = server.seed("acme").role(&["orders.read"]).create().client.id;
    let expires = partnergate::store::now() + chrono::Duration::seconds(600);
    let mut conn = partnergate::store::Tx::new(server.pool.get().unwrap());
    let trigger = match &*conn {
        DbConnection::Sqlite(_) => {
            "CREATE TEMP TRIGGER revoked_meanwhile BEFORE INSERT ON revoked_tokens WHEN NEW.jti = 'jti-meanwhile' \
             BEGIN INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at) \
             VALUES (NEW.jti, NEW.client_id, NEW.expires_at, NEW.revoked_at); END"
        }
        DbConnection::Postgresql(_) => {
            "CREATE FUNCTION revoked_meanwhile() RETURNS trigger AS $$ BEGIN \
             IF pg_trigger_depth() = 1 AND NEW.jti = 'jti-meanwhile' THEN \
             INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at) \
             VALUES (NEW.jti, NEW.client_id, NEW.expires_at, NEW.revoked_at); END IF; RETURN NEW; END $$ \
             LANGUAGE plpgsql; CREATE TRIGGER revoked_meanwhile BEFORE INSERT ON revoked_tokens \
             FOR EACH ROW EXECUTE FUNCTION revoked_meanwhile()"
        }
    };
    conn.batch_execute(trigger).unwrap();
    let batch = partnergate::store::write_transaction(&mut conn, |conn| {
        let now = partnergate::store::now();
        let meanwhile = revoked::revoke_jti(conn, "jti-meanwhile", &cid, expires, now)?;
        let next = revoked::revoke_jti(conn, "jti-next", &cid, expires, now)?;
        Ok::<_, StoreError>((meanwhile, next))
    });
    assert_eq!(batch.map_err(|e| e.to_string()), Ok((false, true)), "already revoked, then the next one revoked");
    assert!(revoked::is_revoked(&mut conn, "jti-next").unwrap(), "the caller's transaction committed");
    drop(conn);
    server.stop().await;
}

/// Two instances on one database, each asked to revoke the same tokens at the same moment: every answer is
/// 200 and every token ends revoked.
#[actix_web::test]
async fn two_instances_revoking_the_same_token_both_answer_200() {
    let first = TestServer::start().await;
    let second = TestServer::start_beside(&first).await;
    let created = first.seed("acme").role(&["orders.read"]).create();
    let auth = basic_auth(&created.client.id, created.secret.secret.expose());
    for _ in 0..10 {
        let token = first.token_for(&created, &[], None).await;
        let body = form(&[("token", &token)]);
        let headers = [("authorization", auth.as_str())];
        let (a, b) = tokio::join!(
            post_form(&first, "/oauth2/revoke", &body, &headers),
            post_form(&second, "/oauth2/revoke", &body, &headers)
        );
        assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
        let claims = first.verify(&token, &first.settings.default_audience).await;
        assert!(revoked::is_revoked(&mut first.pool.get().unwrap(), claims["jti"].as_str().unwrap()).unwrap());
    }
    second.stop().await;
    first.stop().await;
}

/// Every migration directory is watched by the build script (a directory's mtime changes when an entry is
/// added), so that `embed_migrations!` is run again.
#[test]
fn the_build_script_watches_every_migration_directory() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = std::fs::read_to_string(root.join("build.rs")).expect("build.rs exists");
    let mut dirs = vec!["migrations".to_string()];
    for entry in std::fs::read_dir(root.join("migrations")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            dirs.push(format!("migrations/{}", entry.file_name().to_string_lossy()));
        }
    }
    for dir in dirs {
        assert!(script.contains(&format!("\"{dir}\"")), "build.rs does not watch {dir}");
    }
    assert!(script.contains("cargo:rerun-if-changed="), "{script}");
}

/// `keys generate` beside a signing key publishes the new key without making it sign; every generated key is
/// recorded in the audit trail.
#[actix_web::test]
async fn keys_generate_beside_a_signing_key_only_publishes_and_is_audited() {
    let server = TestServer::start().await;
    let cli = server.cli();
    let signing = server.running().keys().current().active().kid().to_string();
    let first = run_command(&cli, &["--json", "keys", "generate"]).json();
    assert_eq!(first["state"], "published", "{first}");
    let second = run_command(&cli, &["--json", "keys", "generate", "--alg", "EdDSA"]).json();
    assert_eq!(second["state"], "published", "{second}");
    let listed = run_command(&cli, &["--json", "keys", "list"]).json();
    let active: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["state"] == "active")
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(active, [signing.as_str()], "the signing key is unchanged: {listed}");

    let recorded: Vec<serde_json::Value> = audit_rows(&server)
        .into_iter()
        .filter(|r| r.event_type == "key.generate" && r.actor.as_deref() == Some("cli"))
        .map(|r| serde_json::from_str(r.details.as_deref().unwrap()).unwrap())
        .collect();
    assert_eq!(recorded.len(), 2, "{recorded:?}");
    assert_eq!((recorded[0]["kid"].clone(), recorded[0]["state"].clone()), (first["kid"].clone(), "published".into()));
    assert_eq!((recorded[1]["kid"].clone(), recorded[1]["alg"].clone()), (second["kid"].clone(), "EdDSA".into()));
    server.stop().await;
}

/// Pruning the audit trail is on the trail: who, how old, how many.
#[actix_web::test]
async fn audit_prune_is_audited() {
    use diesel::prelude::*;
    use partnergate::store::schema::audit_events;
    let server = TestServer::start().await;
    server.seed("acme").role(&["orders.read"]).create();
    let old = partnergate::store::now() - chrono::Duration::days(10);
    let aged = diesel::update(audit_events::table).set(audit_events::occurred_at.eq(old)).execute(&mut *server.conn());
    let aged = aged.unwrap();
    assert!(aged > 0);
    let pruned = run_command(&server.cli(), &["--json", "audit", "prune", "--older-than-days", "5"]).json();
    assert_eq!(pruned["deleted"], aged);
    let rows = audit_rows(&server);
    assert_eq!(rows.len(), 1, "only the prune's own event is left");
    assert_eq!((rows[0].event_type.as_str(), rows[0].actor.as_deref()), ("audit.prune", Some("cli")));
    let details: serde_json::Value = serde_json::from_str(rows[0].details.as_deref().unwrap()).unwrap();
    assert_eq!((details["deleted"].clone(), details["older_than_days"].clone()), (aged.into(), 5.into()));
    server.stop().await;
}
