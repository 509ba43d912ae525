//! A key-encryption key (KEK) that is not the one the stored keys were sealed with: commands refuse to store a
//! key under it, and an instance that meets a key it cannot open says it is not ready.

mod common;

use std::time::Duration;

use base64::Engine;
use common::*;
use diesel::prelude::*;
use partnergate::keys::kek::{KeyEncryptionKey, ENV_VALUE};
use partnergate::keys::{Algorithm, SigningKey};
use partnergate::store::schema::signing_keys;

/// 32 random bytes in base64: a KEK that no key of the test server was sealed with.
fn another_kek() -> String {
    base64::engine::general_purpose::STANDARD.encode(partnergate::credentials::random_bytes::<32>())
}

fn stored_kids(server: &TestServer) -> Vec<String> {
    signing_keys::table.select(signing_keys::kid).order(signing_keys::kid).load(&mut *server.conn()).unwrap()
}

async fn readyz(server: &TestServer) -> (u16, serde_json::Value) {
    let response = reqwest::get(server.url("/readyz")).await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[actix_web::test]
async fn commands_with_another_kek_refuse_to_store_a_key() {
    let server = TestServer::start().await;
    let before = stored_kids(&server);
    let dir = tempfile::tempdir().unwrap();
    let kid = partnergate::keys::generate(dir.path(), Algorithm::ES256, false).unwrap();
    let pem = dir.path().join(format!("{kid}.pem"));
    let mut wrong = server.cli();
    wrong.env(ENV_VALUE, another_kek());
    for args in [&["keys", "generate"][..], &["keys", "rotate", "--force"], &["keys", "import", pem.to_str().unwrap()]]
    {
        let run = run_command(&wrong, args);
        let message = run.failed();
        assert_eq!(run.code, Some(1), "{args:?}: {message}");
        assert!(message.contains("key-encryption key does not open"), "{args:?}: {message}");
    }
    assert_eq!(stored_kids(&server), before, "nothing stored");
    assert_eq!(readyz(&server).await.0, 200);
    // With the right KEK the same command works.
    run_command(&server.cli(), &["keys", "generate"]).ok();
    assert_eq!(stored_kids(&server).len(), before.len() + 1);
    server.stop().await;
}

#[actix_web::test]
async fn an_instance_that_cannot_open_the_active_key_is_not_ready() {
    let server = TestServer::start().await;
    assert_eq!(readyz(&server).await.0, 200);
    // A key sealed under another KEK, as an older version let a command with the wrong KEK store one.
    let der = SigningKey::generate_pkcs8(Algorithm::ES256).unwrap();
    let key = SigningKey::from_pkcs8(&der).unwrap();
    let other = KeyEncryptionKey::from_bytes(&partnergate::credentials::random_bytes::<32>()).unwrap();
    let (nonce, sealed) = other.seal(key.kid(), &der).unwrap();
    let published = chrono::Utc::now().naive_utc() - chrono::Duration::days(1);
    diesel::insert_into(signing_keys::table)
        .values((
            signing_keys::kid.eq(key.kid()),
            signing_keys::alg.eq("ES256"),
            signing_keys::public_jwk.eq(serde_json::to_string(key.jwk()).unwrap()),
            signing_keys::sealed_private_key.eq(sealed),
            signing_keys::nonce.eq(nonce),
            signing_keys::state.eq("published"),
            signing_keys::published_at.eq(published),
        ))
        .execute(&mut *server.conn())
        .unwrap();
    // Activated by a command (which does not open keys): the instance hears of it and cannot open it.
    run_command(&server.cli(), &["keys", "activate", key.kid()]).ok();
    until(Duration::from_secs(5), "readiness reports the key it cannot open", || async {
        readyz(&server).await.0 == 503
    })
    .await;
    let (_, body) = readyz(&server).await;
    assert_eq!(body["status"], "unavailable", "{body}");
    assert!(body["keys"].as_str().is_some_and(|m| m.contains(key.kid())), "{body}");
    server.stop().await;
}
