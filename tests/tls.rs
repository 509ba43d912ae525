//! `serve --tls-cert/--tls-key`: the real binary speaks HTTPS to a real OAuth client and to a verifier that
//! fetches the JWKS over HTTPS, derives an https:// issuer, answers its own health check, and refuses to start
//! with a readable key, a plain issuer or half the pair.

mod common;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::*;
use jsonwebtoken::jwk::JwkSet;
use oauth2::basic::BasicClient;
use oauth2::{ClientId, ClientSecret, Scope, TokenResponse, TokenUrl};

/// A test CA and a certificate for `localhost` that it signed, written into `dir`: (certificate, key, CA).
fn certificate(dir: &Path) -> (PathBuf, PathBuf, reqwest::Certificate) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "partnergate test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let (cert_path, key_path) = (dir.join("server.crt"), dir.join("server.key"));
    std::fs::write(&cert_path, leaf.pem()).unwrap();
    std::fs::write(&key_path, leaf_key.serialize_pem()).unwrap();
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    (cert_path, key_path, reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
}

fn serve_command(db: &TestDatabase, dir: &Path, cert: &Path, key: &Path) -> std::process::Command {
    let mut command = partnergate_binary();
    command
        .env("PARTNERGATE_DATABASE_URL", &db.url)
        .env("PARTNERGATE_KEYS_DIR", dir.join("keys"))
        .env("PARTNERGATE_TLS_CERT", cert)
        .env("PARTNERGATE_TLS_KEY", key);
    command
}

#[actix_web::test]
async fn serve_speaks_https_to_an_oauth_client_and_a_jwks_verifier() {
    let db = TestDatabase::new();
    let created = Seed::partner("acme")
        .role(&["orders.read"])
        .create_on(&mut partnergate::store::Tx::new(db.pool().get().unwrap()));
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, ca) = certificate(dir.path());
    let server = ServeProcess::start_https(&serve_command(&db, dir.path(), &cert, &key), dir.path(), ca).await;

    // With a certificate and no issuer of its own, the issuer is https:// on the bind address.
    let issuer = format!("https://127.0.0.1:{}", server.port);
    let metadata: serde_json::Value = server
        .http
        .get(server.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], issuer.as_str(), "{metadata}");
    assert_eq!(metadata["token_endpoint"], format!("{issuer}/oauth2/token"), "{metadata}");

    // A partner's integration through the oauth2 crate, over HTTPS, trusting only the test CA.
    let token = BasicClient::new(ClientId::new(created.client.id.clone()))
        .set_client_secret(ClientSecret::new(created.secret.secret.expose().to_string()))
        .set_token_uri(TokenUrl::new(server.url("/oauth2/token")).unwrap())
        .exchange_client_credentials()
        .add_scope(Scope::new("orders.read".into()))
        .request_async(&server.http)
        .await
        .unwrap_or_else(|err| panic!("token over HTTPS: {err:?}\n{}", server.log_text()));
    let token = token.access_token().secret().clone();

    // A resource server verifying offline with the JWKS it fetched over HTTPS.
    let jwks: JwkSet =
        server.http.get(server.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    let jwk = jwks.find(header.kid.as_deref().unwrap()).expect("the token's kid is in the JWKS");
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_issuer(&[&issuer]);
    validation.set_audience(&[format!("{issuer}/api")]);
    let claims = jsonwebtoken::decode::<HashMap<String, serde_json::Value>>(
        &token,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .expect("the token verifies")
    .claims;
    assert_eq!(claims["partner_id"], "acme");
    assert_eq!(claims["scope"], "orders.read");

    // The port speaks TLS only: plain HTTP gets no answer.
    let plain = reqwest::get(format!("http://127.0.0.1:{}/readyz", server.port)).await;
    assert!(plain.is_err(), "plain HTTP answered: {:?}", plain.map(|r| r.status()));

    // The container health check finds the server through the same variables that `serve` reads.
    let mut health = partnergate_binary();
    health.env("PARTNERGATE_BIND", server.addr()).env("PARTNERGATE_TLS_CERT", &cert);
    run_command(&health, &["healthcheck"]).ok();
    let mut plain_health = partnergate_binary();
    plain_health.env("PARTNERGATE_BIND", server.addr());
    let refused = run_command(&plain_health, &["healthcheck"]);
    assert_ne!(refused.code, Some(0), "an http:// health check of an HTTPS server passed");
}

#[actix_web::test]
async fn serve_refuses_a_readable_key_a_plain_issuer_and_half_the_pair() {
    let db = TestDatabase::new();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = certificate(dir.path());
    let limit = std::time::Duration::from_secs(20);

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (status, log) =
        ServeProcess::refused(&serve_command(&db, dir.path(), &cert, &key), dir.path(), "127.0.0.1", limit);
    assert!(!status.success(), "served with a world-readable TLS key");
    assert!(log.contains("chmod 600") && log.contains("server.key"), "{log}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();

    let mut plain_issuer = serve_command(&db, dir.path(), &cert, &key);
    plain_issuer.env("PARTNERGATE_ISSUER", "http://auth.example.com");
    let (status, log) = ServeProcess::refused(&plain_issuer, dir.path(), "127.0.0.1", limit);
    assert!(!status.success(), "served HTTPS under an http:// issuer");
    assert!(log.contains("give an https:// issuer"), "{log}");

    let mut no_key = serve_command(&db, dir.path(), &cert, &key);
    no_key.env_remove("PARTNERGATE_TLS_KEY");
    let (status, log) = ServeProcess::refused(&no_key, dir.path(), "127.0.0.1", limit);
    assert!(!status.success(), "served with a certificate and no key");
    assert!(log.contains("--tls-key"), "{log}");

    std::fs::write(&cert, "not a certificate\n").unwrap();
    let (status, log) =
        ServeProcess::refused(&serve_command(&db, dir.path(), &cert, &key), dir.path(), "127.0.0.1", limit);
    assert!(!status.success(), "served with no certificate");
    assert!(log.contains("holds no PEM certificate"), "{log}");
}
