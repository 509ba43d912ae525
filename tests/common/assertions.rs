//! For tests of client assertions: key pairs a partner would make (generated per test, never committed),
//! assertions signed with them, and a tiny HTTP server on a loopback port that serves a key set the way a
//! partner's key server would, or misbehaves (hangs, redirects, sends too much) on demand.

use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::TestServer;

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A partner's key pair: the private key in PKCS#8, the public key as a JWK.
pub struct PartnerKey {
    pub kid: String,
    pub alg: Algorithm,
    pkcs8: Vec<u8>,
    public: Value,
}

impl PartnerKey {
    pub fn es256(kid: &str) -> Self {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let point = pair.public_key().as_ref();
        let public = json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])});
        PartnerKey { kid: kid.into(), alg: Algorithm::ES256, pkcs8: pkcs8.as_ref().to_vec(), public }
    }

    pub fn ed25519(kid: &str) -> Self {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let public = json!({"kty": "OKP", "crv": "Ed25519", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())});
        PartnerKey { kid: kid.into(), alg: Algorithm::EdDSA, pkcs8: pkcs8.as_ref().to_vec(), public }
    }

    pub fn jwk(&self) -> Value {
        self.public.clone()
    }

    /// The private key as a PEM file's text, as `openssl genpkey` writes it.
    pub fn private_pem(&self) -> String {
        let lines: Vec<String> =
            STANDARD.encode(&self.pkcs8).as_bytes().chunks(64).map(|c| String::from_utf8_lossy(c).into()).collect();
        format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", lines.join("\n"))
    }

    fn encoding_key(&self) -> EncodingKey {
        match self.alg {
            Algorithm::EdDSA => EncodingKey::from_ed_der(&self.pkcs8),
            _ => EncodingKey::from_ec_der(&self.pkcs8),
        }
    }

    /// `claims` signed with this key, its `kid` in the header.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as(&self.kid, claims)
    }

    pub fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, claims, &self.encoding_key()).unwrap()
    }
}

pub fn jwks(keys: &[&PartnerKey]) -> Value {
    json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()})
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The claims of a fresh assertion of `client_id` for `server`'s token endpoint, valid for a minute.
pub fn assertion_claims(server: &TestServer, client_id: &str) -> Value {
    let jti = URL_SAFE_NO_PAD.encode(partnergate::credentials::random_bytes::<16>());
    json!({"iss": client_id, "sub": client_id, "aud": format!("{}/oauth2/token", server.settings.issuer),
           "iat": now(), "exp": now() + 60, "jti": jti})
}

/// A token request authenticated by `assertion` (the raw exchange, as any client library sends it).
pub async fn token_with_assertion(server: &TestServer, assertion: &str) -> super::Reply {
    let body = super::form(&[
        ("grant_type", "client_credentials"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
    ]);
    super::Reply::from(super::post_form(server, "/oauth2/token", &body, &[]).await).await
}

/// The reason of the newest audited token request.
pub fn last_token_reason(server: &TestServer) -> Option<String> {
    super::audit_rows(server).into_iter().rev().find(|row| row.event_type == "token.request").and_then(|row| row.reason)
}

/// What the key server does with a request.
#[derive(Clone)]
pub enum KeyServerAnswer {
    Json {
        body: String,
        cache_control: Option<String>,
    },
    Redirect(String),
    /// Accepts the request and never answers.
    Hang,
    /// A body of this many bytes.
    Huge(usize),
    /// JSON bodies by request path; other paths are 404.
    Routes(Vec<(String, String)>),
}

/// A partner's key server on a loopback port; `set` changes what it answers; `hits` counts requests.
#[derive(Clone)]
pub struct KeyServer {
    pub url: String,
    answer: Arc<Mutex<KeyServerAnswer>>,
    hits: Arc<Mutex<usize>>,
}

impl KeyServer {
    pub async fn start(answer: KeyServerAnswer) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        let server = KeyServer { url, answer: Arc::new(Mutex::new(answer)), hits: Arc::default() };
        let shared = server.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let shared = shared.clone();
                tokio::spawn(async move { shared.serve(stream).await });
            }
        });
        server
    }

    pub fn serving(keys: &Value) -> KeyServerAnswer {
        KeyServerAnswer::Json { body: keys.to_string(), cache_control: Some("max-age=300".into()) }
    }

    pub fn set(&self, answer: KeyServerAnswer) {
        *self.answer.lock().unwrap() = answer;
    }

    pub fn hits(&self) -> usize {
        *self.hits.lock().unwrap()
    }

    async fn serve(&self, mut stream: tokio::net::TcpStream) {
        let mut request = Vec::new();
        let mut buffer = [0u8; 4096];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&buffer[..n]),
            }
        }
        *self.hits.lock().unwrap() += 1;
        let text = String::from_utf8_lossy(&request).into_owned();
        let path = text.split(' ').nth(1).unwrap_or_default().to_string();
        let mut answer = self.answer.lock().unwrap().clone();
        if let KeyServerAnswer::Routes(routes) = &answer {
            answer = match routes.iter().find(|(route, _)| *route == path) {
                Some((_, body)) => KeyServerAnswer::Json { body: body.clone(), cache_control: None },
                None => KeyServerAnswer::Redirect(String::new()),
            };
        }
        let response = match answer {
            KeyServerAnswer::Json { body, cache_control } => {
                let cache = cache_control.map(|c| format!("Cache-Control: {c}\r\n")).unwrap_or_default();
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{cache}Content-Length: {}\r\nConnection: \
                     close\r\n\r\n{body}",
                    body.len()
                )
            }
            KeyServerAnswer::Redirect(to) if to.is_empty() => {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
            }
            KeyServerAnswer::Redirect(to) => {
                format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            }
            KeyServerAnswer::Hang => {
                tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                return;
            }
            KeyServerAnswer::Routes(_) => unreachable!("resolved above"),
            KeyServerAnswer::Huge(size) => {
                let body = format!("{{\"keys\": [], \"padding\": \"{}\"}}", "x".repeat(size));
                // No Content-Length: the limit must hold while reading, too.
                format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{body}")
            }
        };
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    }
}

/// A local OpenID provider standing in for GitHub Actions or a Kubernetes cluster: its discovery document and
/// JWKS on a loopback port, and tokens signed with its key.
pub struct LocalIssuer {
    pub issuer: String,
    pub key: PartnerKey,
    pub server: KeyServer,
}

impl LocalIssuer {
    pub async fn start() -> Self {
        let server = KeyServer::start(KeyServerAnswer::Hang).await;
        let issuer = server.url.trim_end_matches("/jwks.json").to_string();
        let key = PartnerKey::es256("issuer-key-1");
        let discovery = json!({"issuer": issuer, "jwks_uri": format!("{issuer}/keys"),
            "id_token_signing_alg_values_supported": ["ES256"]});
        server.set(KeyServerAnswer::Routes(vec![
            ("/.well-known/openid-configuration".into(), discovery.to_string()),
            ("/keys".into(), jwks(&[&key]).to_string()),
        ]));
        LocalIssuer { issuer, key, server }
    }

    /// A token for `subject` and `audience`, as the provider issues them (with a `jti` unless `without_jti`).
    pub fn token(&self, subject: &str, audience: &str, without_jti: bool) -> String {
        let mut claims = json!({"iss": self.issuer, "sub": subject, "aud": audience, "iat": now(), "nbf": now(),
            "exp": now() + 300, "jti": URL_SAFE_NO_PAD.encode(partnergate::credentials::random_bytes::<16>())});
        if without_jti {
            claims.as_object_mut().unwrap().remove("jti");
        }
        self.key.sign(&claims)
    }
}

/// A token request with a federated token as the client assertion, naming the client.
pub async fn token_with_federated(server: &TestServer, client_id: &str, token: &str) -> super::Reply {
    let body = super::form(&[
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", token),
    ]);
    super::Reply::from(super::post_form(server, "/oauth2/token", &body, &[]).await).await
}
