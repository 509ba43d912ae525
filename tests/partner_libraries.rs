//! `private_key_jwt` with the libraries partners use, unchanged: authlib's `PrivateKeyJWT` (Python) and
//! openid-client v6's `PrivateKeyJwt` (Node). Both need packages from the network (pip, npm), installed once
//! per target directory; CI runs them in its PostgreSQL run with `--include-ignored`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::assertions::{jwks, last_token_reason, PartnerKey};
use common::*;
use serde_json::json;

/// Partner `acme` with `orders.read` and a key-only client registered with `key`; its id.
async fn keyed_client(server: &TestServer, key: &PartnerKey) -> String {
    server.seed("acme").role(&["orders.read"]).create();
    let (_, admin) = server.operator().await;
    let body = json!({"partner_id": "acme", "name": "library", "scopes": ["orders.read"],
        "token_endpoint_auth_methods": ["private_key_jwt"], "jwks": jwks(&[key])});
    let created = admin_json(server, &admin, reqwest::Method::POST, "/clients", body).await.expect_json(201);
    created["client"]["id"].as_str().unwrap().to_string()
}

/// Runs a command off the test's runtime (it calls the in-process server); its stdout, after checking it
/// succeeded.
async fn run(mut command: Command) -> String {
    let output = actix_web::web::block(move || command.output()).await.unwrap().expect("command runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "failed ({}): {stdout}\n{stderr}", output.status);
    stdout.into_owned()
}

/// Marks `dir` ready after `setup` has run once in it.
fn once_in(dir: &Path, setup: impl FnOnce(&Path)) {
    let ready = dir.join(".ready");
    if !ready.exists() {
        std::fs::create_dir_all(dir).unwrap();
        setup(dir);
        std::fs::write(&ready, b"").unwrap();
    }
}

const AUTHLIB_SCRIPT: &str = r#"
import json, sys
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc.jwk import ECKey

# The token endpoint the metadata names (the assertion's audience), and where this test server listens.
token_endpoint, token_url, client_id, key_file, kid = sys.argv[1:6]
# authlib reads a PEM string as an RSA key; other key types are passed as joserfc keys.
private_key = ECKey.import_key(open(key_file).read())
session = OAuth2Session(
    client_id,
    private_key,
    token_endpoint_auth_method=PrivateKeyJWT(token_endpoint, headers={"kid": kid}, alg="ES256"),
    scope="orders.read",
)
token = session.fetch_token(token_url, grant_type="client_credentials")
print(json.dumps(token))
"#;

#[tokio::test]
#[ignore = "needs Python/Node packages: pip install authlib"]
async fn authlib_private_key_jwt_gets_a_token() {
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("authlib-venv");
    let python = venv.join("bin/python");
    once_in(&venv, |venv| {
        let status = Command::new("python3").args(["-m", "venv"]).arg(venv).status().expect("python3 -m venv");
        assert!(status.success(), "python3 -m venv failed (python3-venv is needed; .ci/run installs it)");
        let status = Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
            .args(["authlib>=1.6,<2", "requests>=2.31,<3", "cryptography>=42"])
            .status()
            .expect("pip");
        assert!(status.success(), "pip install authlib failed");
    });
    let server = TestServer::start().await;
    let key = PartnerKey::es256("authlib-1");
    let id = keyed_client(&server, &key).await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key.pem");
    std::fs::write(&key_file, key.private_pem()).unwrap();

    let metadata: serde_json::Value =
        reqwest::get(server.url("/.well-known/oauth-authorization-server")).await.unwrap().json().await.unwrap();
    let mut command = Command::new(&python);
    command.arg("-c").arg(AUTHLIB_SCRIPT).arg(metadata["token_endpoint"].as_str().unwrap());
    command.arg(server.url("/oauth2/token")).arg(&id).arg(&key_file).arg(&key.kid);
    let token: serde_json::Value = serde_json::from_str(&run(command).await).unwrap();
    let claims = server.verify(token["access_token"].as_str().unwrap(), &server.settings.default_audience).await;
    assert_eq!(claims["client_id"], id.as_str());
    assert_eq!(claims["scope"], "orders.read");
    // authlib's defaults (aud = the token endpoint, exp an hour ahead) are what the server accepts.
    assert_eq!(last_token_reason(&server), None);
    server.stop().await;
}

const OPENID_CLIENT_SCRIPT: &str = r#"
import * as client from 'openid-client';

const [issuer, tokenEndpoint, clientId, pem, kid] = process.argv.slice(2);
const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
const key = await crypto.subtle.importKey('pkcs8', der, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
// The test server's issuer is not its loopback URL, so the metadata is given rather than discovered.
const config = new client.Configuration(
  { issuer, token_endpoint: tokenEndpoint },
  clientId,
  undefined,
  client.PrivateKeyJwt({ key, kid }),
);
client.allowInsecureRequests(config);
const tokens = await client.clientCredentialsGrant(config, { scope: 'orders.read' });
console.log(JSON.stringify(tokens));
"#;

#[tokio::test]
#[ignore = "needs Python/Node packages: npm install openid-client@6"]
async fn openid_client_private_key_jwt_gets_a_token() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("openid-client-v6");
    once_in(&dir, |dir| {
        let status = Command::new("npm")
            .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
            .arg(dir)
            .arg("openid-client@6")
            .status()
            .expect("npm");
        assert!(status.success(), "npm install openid-client@6 failed");
    });
    let script = dir.join("client-credentials.mjs");
    std::fs::write(&script, OPENID_CLIENT_SCRIPT).unwrap();

    let server = TestServer::start().await;
    let key = PartnerKey::es256("node-1");
    let id = keyed_client(&server, &key).await;
    let mut command = Command::new("node");
    command.arg(&script).arg(&server.settings.issuer).arg(server.url("/oauth2/token")).arg(&id);
    command.arg(key.private_pem()).arg(&key.kid);
    let tokens: serde_json::Value = serde_json::from_str(&run(command).await).unwrap();
    let claims = server.verify(tokens["access_token"].as_str().unwrap(), &server.settings.default_audience).await;
    assert_eq!(claims["client_id"], id.as_str());
    assert_eq!(claims["scope"], "orders.read");
    assert_eq!(last_token_reason(&server), None);
    server.stop().await;
}
