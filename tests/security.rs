//! Security headers on every kind of response, and the refusals to start with an insecure configuration
//! (a keys directory others may write, an `http://` issuer on a non-loopback address), with the real binary.

mod common;

use std::time::Duration;

use common::*;
use reqwest::Method;

/// Every response: `nosniff`, no `Server` banner, and `no-store` unless it is one of the public documents.
fn assert_secure(what: &str, reply: &Reply) {
    assert_eq!(reply.header("x-content-type-options"), "nosniff", "{what}");
    assert!(reply.headers.get("server").is_none(), "{what}: a Server header: {:?}", reply.headers.get("server"));
    let cache = reply.header("cache-control");
    if what.starts_with("public") {
        assert!(cache.starts_with("public, max-age="), "{what}: {cache}");
    } else {
        assert_eq!(cache, "no-store", "{what}");
    }
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let server = TestServer::start().await;
    let client = server.seed("headers").role(&["orders.read"]).create();
    let (_, admin) = server.operator().await;
    let basic = basic_auth(&client.client.id, client.secret.secret.expose());
    let http = reqwest::Client::new();
    let token =
        post_form(&server, "/oauth2/token", "grant_type=client_credentials", &[("authorization", &basic)]).await;
    let token = Reply::from(token).await;
    let access_token = token.expect_status(200)["access_token"].as_str().unwrap().to_string();

    let get = |path: &str| http.get(server.url(path)).send();
    let mut replies = vec![
        ("token", token),
        (
            "token error",
            Reply::from(post_form(&server, "/oauth2/token", "grant_type=password", &[("authorization", &basic)]).await)
                .await,
        ),
        (
            "introspection",
            Reply::from(
                post_form(
                    &server,
                    "/oauth2/introspect",
                    &form(&[("token", &access_token)]),
                    &[("authorization", &basic)],
                )
                .await,
            )
            .await,
        ),
        (
            "revocation",
            Reply::from(
                post_form(&server, "/oauth2/revoke", &form(&[("token", &access_token)]), &[("authorization", &basic)])
                    .await,
            )
            .await,
        ),
        (
            "malformed content type at the token endpoint",
            Reply::from(post_raw(&server, "/oauth2/token", "application/x-www-form-urlencoded;;", vec![], &[]).await)
                .await,
        ),
        ("wrong method at the token endpoint", Reply::from(get("/oauth2/token").await.unwrap()).await),
        ("admin list", admin_request(&server, Method::GET, "/partners", Some(&admin), None).await),
        ("admin error", admin_request(&server, Method::GET, "/partners/nope", Some(&admin), None).await),
        ("admin without a token", admin_request(&server, Method::GET, "/partners", None, None).await),
        ("unknown path", Reply::from(get("/nothing/here").await.unwrap()).await),
        ("health", Reply::from(get("/healthz").await.unwrap()).await),
        ("readiness", Reply::from(get("/readyz").await.unwrap()).await),
        ("public JWKS", Reply::from(get("/.well-known/jwks.json").await.unwrap()).await),
        ("public metadata", Reply::from(get("/.well-known/oauth-authorization-server").await.unwrap()).await),
    ];
    replies.push((
        "headers too large",
        Reply::from(http.get(server.url("/healthz")).header("x-padding", "a".repeat(20_000)).send().await.unwrap())
            .await,
    ));
    for (what, reply) in &replies {
        assert_secure(what, reply);
    }
    assert_eq!(replies.last().unwrap().1.status, 431);
    server.stop().await;
}

/// The binary on a fresh database and `keys`, logging at `info`.
fn serve_command(db: &TestDatabase, keys: &std::path::Path) -> std::process::Command {
    let mut command = partnergate_binary();
    command.env("PARTNERGATE_DATABASE_URL", &db.url).env("PARTNERGATE_KEYS_DIR", keys).env("RUST_LOG", "info");
    command
}

#[cfg(unix)]
#[test]
fn serve_refuses_a_keys_directory_that_others_can_write() {
    use std::os::unix::fs::PermissionsExt;
    let db = TestDatabase::new();
    let logs = tempfile::tempdir().unwrap();
    for mode in [0o777, 0o770, 0o1777] {
        let keys = tempfile::tempdir().unwrap();
        std::fs::set_permissions(keys.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        let command = serve_command(&db, keys.path());
        let (status, log) = ServeProcess::refused(&command, logs.path(), "127.0.0.1", Duration::from_secs(30));
        assert_eq!(status.code(), Some(1), "mode {mode:o}: {log}");
        assert!(log.contains("is writable by group or others") && log.contains("chmod go-w"), "{log}");
        // Refused before any key was written into it.
        assert_eq!(std::fs::read_dir(keys.path()).unwrap().count(), 0, "mode {mode:o}");
    }
}

#[cfg(unix)]
#[test]
fn serve_refuses_a_group_readable_key_file() {
    use std::os::unix::fs::PermissionsExt;
    let db = TestDatabase::new();
    let keys = tempfile::tempdir().unwrap();
    let kid = partnergate::keys::generate(keys.path(), partnergate::keys::Algorithm::ES256, true).unwrap();
    let key = keys.path().join(format!("{kid}.pem"));
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let command = serve_command(&db, keys.path());
    let (status, log) = ServeProcess::refused(&command, keys.path(), "127.0.0.1", Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("readable by group or others") && log.contains("chmod 600"), "{log}");
}

#[tokio::test]
async fn serve_refuses_an_http_issuer_on_a_non_loopback_address_unless_allowed() {
    let db = TestDatabase::new();
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    for (host, issuer) in
        [("0.0.0.0", None), ("0.0.0.0", Some("http://auth.example.test")), ("[::]", Some("http://127.0.0.1:8080"))]
    {
        let mut command = serve_command(&db, &keys);
        if let Some(issuer) = issuer {
            command.env("PARTNERGATE_ISSUER", issuer);
        }
        let (status, log) = ServeProcess::refused(&command, dir.path(), host, Duration::from_secs(30));
        assert_eq!(status.code(), Some(1), "{host} {issuer:?}: {log}");
        assert!(log.contains("refusing to serve the http:// issuer"), "{host} {issuer:?}: {log}");
        assert!(log.contains("--allow-insecure-issuer"), "{log}");
    }

    // Explicitly allowed (by flag or variable), it serves, and stops cleanly.
    let mut command = serve_command(&db, &keys);
    command.env("PARTNERGATE_ISSUER", "http://auth.example.test");
    let allowed_by_flag = command_like(&command);
    command.env("PARTNERGATE_ALLOW_INSECURE_ISSUER", "true");
    let mut https = serve_command(&db, &keys);
    https.env("PARTNERGATE_ISSUER", "https://auth.example.test");
    for (command, args) in
        [(&allowed_by_flag, &["--allow-insecure-issuer"][..]), (&command, &[][..]), (&https, &[][..])]
    {
        let mut server = ServeProcess::start_on(command, dir.path(), "0.0.0.0", args).await;
        server.signal("TERM");
        // Blocking is fine: nothing else runs on this test's runtime.
        let status = server.wait_exit(Duration::from_secs(30));
        assert_eq!(status.code(), Some(0), "{}", server.log_text());
    }
}
