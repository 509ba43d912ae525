//! The CLI as an operator and a partner use it (the real binary against the real server and database),
//! signing keys of every algorithm through the server, and the storage layer's failure modes.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use partnergate::keys::{self, Algorithm, KeyRing};
use partnergate::store::{self, PoolOptions, StoreError};

#[actix_web::test]
async fn operator_registers_with_the_cli_and_the_token_command_fetches_a_verified_token() {
    let server = TestServer::start().await;
    partnergate(&server, &["scope", "create", "orders.read", "--description", "Read orders"]);
    partnergate(&server, &["scope", "create", "orders.write"]);
    let role = partnergate(&server, &["role", "create", "order-reader", "--scope", "orders.read"]);
    assert_eq!(role["scopes"], serde_json::json!(["orders.read"]));
    partnergate(&server, &["partner", "create", "acme", "--name", "Acme", "--ceiling", "orders.read"]);
    let created = partnergate(
        &server,
        &[
            "client",
            "create",
            "--partner",
            "acme",
            "--name",
            "sync",
            "--role",
            "order-reader",
            "--audience",
            "https://api.acme.test",
        ],
    );
    let client_id = created["client"]["id"].as_str().unwrap().to_string();
    let secret = created["secret"]["secret"].as_str().unwrap().to_string();
    assert!(client_id.starts_with("pgc_") && secret.starts_with("pgs_"));

    let listed = partnergate(&server, &["client", "list", "--partner", "acme"]);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    let shown = partnergate(&server, &["client", "show", &client_id]);
    assert!(!shown.to_string().contains(&secret), "show never prints the secret");
    assert_eq!(shown["secrets"].as_array().unwrap().len(), 1);

    // `token` runs the oauth2 crate inside the CLI; the secret comes from the environment, as documented.
    let mut token = partnergate_binary();
    token.env("PARTNERGATE_CLIENT_SECRET", &secret);
    let printed = run_command_async(&token, &["--json", "token", "--url", &server.base_url, "--client-id", &client_id])
        .await
        .json();
    assert_eq!(printed["claims"]["partner_id"], "acme");
    assert_eq!(printed["header"]["typ"], "at+jwt");
    let claims = server.verify(printed["access_token"].as_str().unwrap(), "https://api.acme.test").await;
    assert_eq!(claims["scope"], "orders.read", "orders.write is outside the ceiling and not in the role");
    assert_eq!(claims["client_id"], client_id.as_str());
    server.stop().await;
}

#[actix_web::test]
async fn cli_errors_are_clear_and_exit_non_zero() {
    let server = TestServer::start().await;
    let run = run_command(&server.cli(), &["partner", "create", "Bad Id", "--name", "x"]);
    assert!(run.failed().contains("partner ids are"), "{}", run.stderr);
    server.stop().await;
}

#[actix_web::test]
async fn eddsa_and_rs256_keys_sign_tokens_that_verify_against_the_jwks() {
    for alg in ["EdDSA", "RS256"] {
        let server = TestServer::start_with(|config| {
            let dir = &config.keys_dir;
            let kid = match alg {
                "EdDSA" => keys::generate(dir, Algorithm::EdDSA, true).unwrap(),
                _ => {
                    openssl_rsa_key(&dir.join("rsa.pem"));
                    let ring = KeyRing::load(dir).unwrap();
                    let kid = ring.list()[0].kid.clone();
                    keys::set_active(dir, &kid).unwrap();
                    kid
                }
            };
            assert!(!kid.is_empty());
        })
        .await;
        let created = server.seed(&format!("p-{}", alg.to_lowercase())).role(&["a.read"]).create();
        let token = server.token_for(&created, &[], None).await;
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(format!("{:?}", header.alg), alg);
        let claims = server.verify(&token, &server.settings.default_audience).await;
        assert_eq!(claims["scope"], "a.read");
        let jwks = server.jwks().await;
        assert_eq!(jwks.keys.len(), 1);
        assert_eq!(jwks.keys[0].common.key_id.as_deref(), header.kid.as_deref());
        server.stop().await;
    }
}

#[test]
fn malformed_database_urls_are_refused_by_name() {
    let err = store::connect("mysql://db/partnergate", &PoolOptions::default()).unwrap_err();
    assert!(matches!(err, StoreError::InvalidUrl(_)));
    assert!(err.to_string().contains("sqlite://") && err.to_string().contains("postgres://"), "{err}");
    let err = store::connect("./data/partnergate.db", &PoolOptions::default()).unwrap_err();
    assert!(matches!(err, StoreError::InvalidUrl(_)), "a bare path is not silently taken as SQLite: {err}");
}

#[test]
fn an_unreachable_postgres_fails_fast_with_the_real_cause() {
    let options = PoolOptions { max_size: 2, connect_timeout: Duration::from_secs(2), ..PoolOptions::default() };
    let started = Instant::now();
    // Nothing listens on port 1; the password must not appear in the message.
    let err = store::connect("postgres://app:hunter2@127.0.0.1:1/partnergate", &options).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, StoreError::Unavailable(_)), "{message}");
    assert!(message.contains("127.0.0.1") && !message.contains("hunter2"), "{message}");
    assert!(message.to_lowercase().contains("connect"), "names the cause: {message}");
    // Not a timing assertion on performance: a hung connect would block for minutes, not seconds.
    assert!(started.elapsed() < Duration::from_secs(30));
}

fn partnergate_fails(server: &TestServer, args: &[&str]) -> String {
    run_command(&server.cli(), args).failed().to_string()
}

#[actix_web::test]
async fn cli_covers_the_admin_operations_and_records_them() {
    let server = TestServer::start().await;
    partnergate(&server, &["scope", "create", "stock.read"]);
    partnergate(&server, &["scope", "create", "stock.write"]);
    partnergate(&server, &["partner", "create", "shop", "--name", "Shop", "--ceiling", "stock.read"]);
    let created =
        partnergate(&server, &["client", "create", "--partner", "shop", "--name", "feed", "--scope", "stock.read"]);
    let id = created["client"]["id"].as_str().unwrap().to_string();
    let first_secret = created["secret"]["secret"].as_str().unwrap().to_string();

    let stderr = partnergate_fails(&server, &["client", "update", &id, "--scope", "stock.write"]);
    assert!(stderr.contains("outside the partner's ceiling"), "{stderr}");
    partnergate(&server, &["partner", "update", "shop", "--ceiling", "stock.read", "--ceiling", "stock.write"]);
    let updated = partnergate(&server, &["client", "update", &id, "--scope", "stock.write", "--name", "feed v2"]);
    assert_eq!(updated["scopes"], serde_json::json!(["stock.write"]));
    assert_eq!(updated["name"], "feed v2");

    let rotated = partnergate(&server, &["client", "rotate-secret", &id, "--name", "next", "--grace-period-secs", "0"]);
    let second_secret = rotated["secret"].as_str().unwrap().to_string();
    let secret_id = rotated["id"].as_str().unwrap().to_string();
    let auth = oauth2::AuthType::BasicAuth;
    assert!(fetch_token(&server, auth.clone(), &id, &first_secret, &[], None).await.is_err(), "grace 0: old expired");
    fetch_token(&server, auth.clone(), &id, &second_secret, &[], None).await.expect("new secret works");

    // Each command is another process: its change reaches the server through the change feed.
    let (server_ref, auth_ref, id_ref, secret_ref) = (&server, &auth, &id, &second_secret);
    let refused =
        move || async move { fetch_token(server_ref, auth_ref.clone(), id_ref, secret_ref, &[], None).await.is_err() };
    let works = move || async move { !refused().await };
    partnergate(&server, &["client", "disable", &id]);
    until(PROPAGATION_BOUND, "disabled by the CLI", refused).await;
    partnergate(&server, &["client", "enable", &id]);
    until(PROPAGATION_BOUND, "enabled by the CLI", works).await;
    partnergate(&server, &["partner", "suspend", "shop"]);
    until(PROPAGATION_BOUND, "suspended by the CLI", refused).await;
    partnergate(&server, &["partner", "resume", "shop"]);
    until(PROPAGATION_BOUND, "resumed by the CLI", works).await;
    partnergate(&server, &["client", "revoke-secret", &id, &secret_id, "--revoke-tokens"]);
    until(PROPAGATION_BOUND, "secret revoked by the CLI", refused).await;

    let events = partnergate(&server, &["audit", "--client", &id, "--limit", "100"]);
    let types: Vec<&str> =
        events["items"].as_array().unwrap().iter().map(|e| e["event_type"].as_str().unwrap()).collect();
    for expected in
        ["client.create", "client.update", "secret.create", "client.disable", "client.enable", "secret.revoke"]
    {
        assert!(types.contains(&expected), "{expected} missing from {types:?}");
    }
    assert!(types.contains(&"client.revoke_tokens"));
    assert!(!events.to_string().contains(&second_secret) && !events.to_string().contains(&first_secret));
    assert!(events["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["actor"] == "cli" || e["event_type"] == "token.request"));

    partnergate(&server, &["client", "delete", &id]);
    let stderr = partnergate_fails(&server, &["client", "show", &id]);
    assert!(stderr.contains("not found"), "{stderr}");

    let admin = partnergate(&server, &["admin", "bootstrap", "--admin-audience", &server.settings.admin_audience]);
    assert_eq!(admin["client"]["scopes"], serde_json::json!(["authz.admin"]));
    let stderr = partnergate_fails(&server, &["admin", "bootstrap"]);
    assert!(stderr.contains("already exists") && stderr.contains("--force"), "{stderr}");
    server.stop().await;
}

#[actix_web::test]
async fn out_of_range_numbers_are_refused_by_the_cli_not_a_panic() {
    let server = TestServer::start().await;
    for args in [
        &["audit", "prune", "--older-than-days", "4000000000"][..],
        &["audit", "prune", "--older-than-days", "0"],
        &["serve", "--max-token-lifetime-secs", "99999999999"],
        &["serve", "--audit-retention-days", "4000000000"],
    ] {
        let stderr = partnergate_fails(&server, args);
        assert!(stderr.contains("invalid value"), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    let pruned = partnergate(&server, &["audit", "prune", "--older-than-days", "36500"]);
    assert_eq!(pruned["deleted"], 0);
    server.stop().await;
}

/// Kids are RFC 7638 thumbprints in base64url, so about one in 64 starts with '-'; operators' client ids may
/// too. Every command that takes one accepts it as a value, not as an unknown option.
#[actix_web::test]
async fn ids_that_start_with_a_hyphen_are_values_for_every_command_that_takes_one() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut kids = Vec::new();
    for _ in 0..5000 {
        let kid = keys::generate(dir.path(), Algorithm::ES256, false).unwrap();
        if kid.starts_with('-') {
            kids.push(kid);
            if kids.len() == 2 {
                break;
            }
        } else {
            std::fs::remove_file(dir.path().join(format!("{kid}.pem"))).unwrap();
        }
    }
    assert_eq!(kids.len(), 2, "two kids starting with '-' among 5000 keys");
    let imported = partnergate(&server, &["keys", "import", dir.path().to_str().unwrap()]);
    assert_eq!(imported.as_array().map(Vec::len), Some(2), "{imported}");
    partnergate(&server, &["keys", "activate", &kids[0], "--force"]);
    partnergate(&server, &["keys", "retire", &kids[1]]);
    let listed = partnergate(&server, &["keys", "list"]);
    let state = |kid: &str| {
        let key = listed.as_array().unwrap().iter().find(|key| key["kid"] == kid);
        key.unwrap_or_else(|| panic!("{kid} in {listed}"))["state"].as_str().unwrap().to_string()
    };
    assert_eq!((state(&kids[0]).as_str(), state(&kids[1]).as_str()), ("active", "retired"));

    // An imported client id.
    partnergate(&server, &["scope", "create", "h.read"]);
    partnergate(&server, &["partner", "create", "hyphen", "--name", "Hyphen", "--ceiling", "h.read"]);
    let id = "-legacy.7";
    let created = partnergate(
        &server,
        &["client", "create", "--partner", "hyphen", "--name", "Legacy", "--client-id", id, "--scope", "h.read"],
    );
    assert_eq!(created["client"]["id"], id, "{created}");
    assert_eq!(partnergate(&server, &["client", "show", id])["client"]["id"], id);
    partnergate(&server, &["client", "update", id, "--name", "Legacy two"]);
    let rotated = partnergate(&server, &["client", "rotate-secret", id]);
    let secret_id = rotated["id"].as_str().unwrap_or_else(|| panic!("a secret id in {rotated}"));
    partnergate(&server, &["client", "revoke-secret", id, secret_id]);
    partnergate(&server, &["client", "revoke-tokens", id]);
    partnergate(&server, &["client", "disable", id]);
    partnergate(&server, &["client", "enable", id]);
    partnergate(&server, &["client", "list", "--cursor", id]);
    partnergate(&server, &["audit", "--client", id]);
    partnergate(&server, &["client", "delete", id]);
    server.stop().await;
}

/// `keys generate --alg RS256` cannot generate the key (ring makes no RSA keys); its message names the
/// steps that work on a running installation, and following them works.
#[actix_web::test]
async fn generating_an_rs256_key_says_to_import_one_made_with_openssl() {
    let server = TestServer::start().await;
    let run = run_command(&server.cli(), &["keys", "generate", "--alg", "RS256"]);
    let message = run.failed();
    assert!(message.contains("openssl genpkey") && message.contains("partnergate keys import"), "{message}");
    assert!(!message.contains("restart"), "a restart imports nothing into a database that has keys: {message}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rsa.pem");
    openssl_rsa_key(&path);
    let imported = partnergate(&server, &["keys", "import", path.to_str().unwrap()]);
    assert_eq!(imported[0]["alg"], "RS256", "{imported}");
    assert_eq!(imported[0]["state"], "published", "{imported}");
    server.stop().await;
}

/// An RSA-2048 key made with openssl at `path`, readable by its owner only (ring cannot generate RSA keys;
/// operators create them with openssl, as the README says).
fn openssl_rsa_key(path: &std::path::Path) {
    let status = Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out"])
        .arg(path)
        .status()
        .expect("openssl is installed");
    assert!(status.success());
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
}
