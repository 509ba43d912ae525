//! Shared test harness: a fresh database per test (a temporary SQLite file, or a fresh PostgreSQL database
//! when `PARTNERGATE_TEST_BACKEND=postgres`), the real server on a loopback port, the `oauth2` crate as the
//! client, and `jsonwebtoken` with the JWKS fetched over HTTP as the verifier.
#![allow(dead_code)]

pub mod assertions;
pub mod browser;
pub mod proxy;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use diesel::connection::SimpleConnection;
use diesel::Connection;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use oauth2::basic::BasicClient;
use oauth2::{AuthType, ClientId, ClientSecret, Scope, TokenResponse, TokenUrl};
use partnergate::config::ServerConfig;
use partnergate::oauth::TokenSettings;
use partnergate::registry::clients::{self, ClientLimits, CreatedClient, NewClient};
use partnergate::registry::partners::{self, NewPartner};
use partnergate::registry::{roles, scopes, Caller};
use partnergate::store::changes::{Change, ChangeSink};
use partnergate::store::{self, DbPool, PoolOptions};
use partnergate::RunningServer;

pub const LIMITS: ClientLimits = ClientLimits {
    max_token_lifetime_secs: 3600,
    secret_policy: partnergate::registry::secret_expiry::SecretPolicy { default_max_age_days: 0 },
};

/// The key-encryption key of test servers on PostgreSQL, where the server does not generate one (instances
/// on several hosts must share it): 32 random bytes, base64, made once per test binary, so every server,
/// second instance and `partnergate` command of one test run shares it and nothing fixed is committed. On
/// SQLite the server generates it into its keys directory, where the `partnergate` commands find it too.
pub fn postgres_test_kek() -> &'static str {
    static KEK: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    KEK.get_or_init(|| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(partnergate::credentials::random_bytes::<32>())
    })
}

pub fn on_postgres() -> bool {
    std::env::var("PARTNERGATE_TEST_BACKEND").as_deref() == Ok("postgres")
}

/// Where test servers read their key-encryption key from: see [`postgres_test_kek`].
pub fn test_kek_source() -> partnergate::keys::kek::KekSource {
    partnergate::keys::kek::KekSource { value: on_postgres().then(|| postgres_test_kek().to_string()), file: None }
}

/// A database that exists for one test and is removed afterwards.
pub struct TestDatabase {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestDatabase {
    pub fn new() -> Self {
        match std::env::var("PARTNERGATE_TEST_BACKEND").as_deref() {
            Ok("postgres") => Self::postgres(),
            Ok("sqlite") | Err(_) => Self::sqlite(),
            Ok(other) => panic!("PARTNERGATE_TEST_BACKEND={other}: use sqlite or postgres"),
        }
    }

    fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        TestDatabase { url, _dir: Some(dir), postgres: None }
    }

    /// A fresh PostgreSQL database whatever `PARTNERGATE_TEST_BACKEND` says, for tests `#[ignore]`d as needing it.
    pub fn postgres() -> Self {
        let server = std::env::var("PARTNERGATE_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_string());
        let server = server.trim_end_matches('/').to_string();
        let name = format!(
            "partnergate_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            partnergate::credentials::random_base62(6).to_lowercase()
        );
        partnergate::store::prepare_libpq();
        let mut admin = diesel::PgConnection::establish(&format!("{server}/postgres")).unwrap_or_else(|err| {
            panic!("PostgreSQL at {server} is required for PARTNERGATE_TEST_BACKEND=postgres: {err}")
        });
        admin.batch_execute(&format!("CREATE DATABASE {name}")).expect("create test database");
        TestDatabase { url: format!("{server}/{name}"), _dir: None, postgres: Some((server, name)) }
    }

    pub fn pool(&self) -> DbPool {
        let pool = store::connect(&self.url, &PoolOptions::default()).expect("connect to the test database");
        store::run_migrations(&mut pool.get().unwrap()).expect("migrate");
        pool
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((server, name)) = &self.postgres {
            if let Ok(mut admin) = diesel::PgConnection::establish(&format!("{server}/postgres")) {
                let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}

/// The real server on a loopback port, over a fresh database and a fresh keys directory.
pub struct TestServer {
    pub base_url: String,
    pub pool: DbPool,
    pub settings: TokenSettings,
    pub keys_dir: PathBuf,
    server: Option<RunningServer>,
    /// The keys directory this server created (a second instance shares the first one's).
    _keys: Option<tempfile::TempDir>,
    pub db: TestDatabase,
    pub config: ServerConfig,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(customize: impl FnOnce(&mut ServerConfig)) -> Self {
        let db = TestDatabase::new();
        let keys = tempfile::tempdir().expect("keys directory");
        // The issuer is fixed before the port is known; tokens only need it to be consistent.
        let issuer = "https://auth.partnergate.test".to_string();
        let settings = TokenSettings {
            default_audience: format!("{issuer}/api"),
            admin_audience: format!("{issuer}/admin"),
            issuer,
            default_lifetime_secs: 600,
            max_lifetime_secs: 3600,
        };
        let mut config = ServerConfig {
            database_url: db.url.clone(),
            pool: PoolOptions::default(),
            keys_dir: keys.path().to_path_buf(),
            bind: "127.0.0.1:0".parse().unwrap(),
            tls: None,
            metrics_bind: None,
            token: settings.clone(),
            jwks_max_age_secs: 300,
            max_body_bytes: 16 * 1024,
            workers: Some(2),
            audit_retention_days: 90,
            request_log_retention: Default::default(),
            body_read_timeout: std::time::Duration::from_secs(5),
            max_connections: 1024,
            // No limits unless a test sets them: the concurrency tests send thousands of requests from one
            // client and one address, and the property test thousands of bad credentials.
            client_rate_limit_per_minute: 0,
            rate_limit_store: None,
            throttle: partnergate::limits::ThrottleSettings::off(),
            trusted_proxies: Default::default(),
            kek: test_kek_source(),
            key_policy: partnergate::keys::KeyPolicy::new(300, 3600),
            key_schedule: None,
            key_schedule_tick: std::time::Duration::from_secs(30),
            // Tests serve key sets from loopback addresses.
            allow_private_key_urls: true,
            secret_policy: Default::default(),
            secret_expiry_tick: std::time::Duration::from_secs(60),
            clock: partnergate::clock::system(),
            console: Default::default(),
        };
        customize(&mut config);
        Self::launch(config, db, Some(keys)).await
    }

    /// Another instance on this server's database and keys, as a second node behind a load balancer.
    pub async fn start_beside(first: &TestServer) -> Self {
        Self::start_beside_with(first, |_| {}).await
    }

    /// [`TestServer::start_beside`] with settings of its own (`customize` gets a copy of the first's).
    pub async fn start_beside_with(first: &TestServer, customize: impl FnOnce(&mut ServerConfig)) -> Self {
        let mut config = first.config.clone();
        customize(&mut config);
        let db = TestDatabase { url: first.db.url.clone(), _dir: None, postgres: None };
        Self::launch(config, db, None).await
    }

    async fn launch(config: ServerConfig, db: TestDatabase, keys: Option<tempfile::TempDir>) -> Self {
        let server = partnergate::start(config.clone()).await.expect("server starts");
        let base_url = format!("http://{}", server.addr);
        let pool = store::connect(&db.url, &PoolOptions::default()).expect("test pool");
        TestServer {
            base_url,
            pool,
            settings: config.token.clone(),
            keys_dir: config.keys_dir.clone(),
            server: Some(server),
            _keys: keys,
            db,
            config,
        }
    }

    /// Moves a client's creation `secs` into the past, so that tokens crafted with an older `iat` are ones
    /// it could have been issued (a token older than its client is refused).
    pub fn backdate_client(&self, client_id: &str, secs: i64) {
        use diesel::prelude::*;
        use partnergate::store::schema::clients;
        let at = partnergate::store::now() - chrono::Duration::seconds(secs);
        diesel::update(clients::table.find(client_id))
            .set(clients::created_at.eq(at))
            .execute(&mut *self.conn())
            .expect("backdate client");
        // Written behind the registry's back: tell the cache.
        if let Some(server) = &self.server {
            server.read_model().apply(&[Change::Client(client_id.to_string())]);
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// A unit of work for direct registry calls, as an operator command would make them, except that the
    /// changes it commits reach this server's registry cache at once (like the admin API's, when it is
    /// dropped), instead of through the change feed within a second.
    pub fn conn(&self) -> store::Tx {
        let conn = self.pool.get().expect("test connection");
        match &self.server {
            Some(server) => store::Tx::applying_to(conn, server.changes().clone()),
            None => store::Tx::new(conn),
        }
    }

    pub fn running(&self) -> &RunningServer {
        self.server.as_ref().expect("the server is running")
    }

    pub async fn stop(mut self) {
        self.stop_keep_db().await;
    }

    /// Stops the server (in-flight requests finish, the audit queue is flushed) but keeps this struct, its
    /// pool and its database, for checks after shutdown. `stop` afterwards only drops the rest.
    pub async fn stop_keep_db(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
    }

    /// A new partner and its first client: see [`Seed`]. `server.seed("acme").role(&["orders.read"]).create()`.
    pub fn seed(&self, partner_id: &str) -> Seed<'_> {
        Seed { server: Some(self), ..Seed::partner(partner_id) }
    }

    /// Another client of a partner that exists: see [`Seed`].
    /// `server.client_of("acme").roles(&["role-acme"]).create()`.
    pub fn client_of(&self, partner_id: &str) -> Seed<'_> {
        Seed { server: Some(self), ..Seed::client_of(partner_id) }
    }

    /// A partner admin: see [`PartnerAdmin`]. `server.partner_admin("acme").ceiling(&["orders.read"]).create().await`.
    pub fn partner_admin(&self, id: &str) -> PartnerAdmin<'_> {
        PartnerAdmin { server: self, id: id.to_string(), business: Vec::new(), holding: strings(&CLIENT_ADMIN_SCOPES) }
    }

    /// The operator's admin client (`admin bootstrap`) and an admin token for it.
    pub async fn operator(&self) -> (CreatedClient, String) {
        let created = partnergate::registry::bootstrap::admin_client(
            &mut self.conn(),
            &self.settings.admin_audience,
            LIMITS,
            false,
        )
        .expect("admin bootstrap");
        let token = self.token_for(&created, &[], None).await;
        (created, token)
    }

    /// Fetches and verifies a token in one go, for tests whose subject is not the token endpoint.
    pub async fn token_for(&self, client: &CreatedClient, scopes: &[&str], audience: Option<&str>) -> String {
        fetch_token(self, AuthType::BasicAuth, &client.client.id, client.secret.secret.expose(), scopes, audience)
            .await
            .unwrap_or_else(|err| panic!("token request failed: {err}"))
    }

    pub async fn jwks(&self) -> JwkSet {
        reqwest::get(self.url("/.well-known/jwks.json")).await.unwrap().json().await.unwrap()
    }

    /// Verifies `token` as an independent resource server would: JWKS over HTTP, `kid` lookup, `iss`, `aud`.
    pub async fn verify(&self, token: &str, audience: &str) -> HashMap<String, serde_json::Value> {
        let header = jsonwebtoken::decode_header(token).expect("token header");
        let kid = header.kid.clone().expect("kid in header");
        let jwks = self.jwks().await;
        let jwk = jwks.find(&kid).expect("kid in JWKS");
        let key = DecodingKey::from_jwk(jwk).expect("decoding key from JWK");
        let mut validation = Validation::new(header.alg);
        validation.set_audience(&[audience]);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub", "nbf"]);
        jsonwebtoken::decode::<HashMap<String, serde_json::Value>>(token, &key, &validation)
            .unwrap_or_else(|err| panic!("token does not verify: {err}"))
            .claims
    }
}

/// What a test puts in the registry as an operator would (`Caller::cli()`), built up and written by
/// [`Seed::create`]: either a new partner (`TestServer::seed`, `Seed::partner`) with the scopes it names, a
/// role `role-<partner>` and a first client holding that role; or one more client of a partner that exists
/// (`TestServer::client_of`, `Seed::client_of`). Returns the client with its first secret.
#[must_use = "nothing is written until `create`"]
pub struct Seed<'a> {
    server: Option<&'a TestServer>,
    partner_id: String,
    new_partner: bool,
    ceiling: Option<Vec<String>>,
    role_scopes: Vec<String>,
    roles: Vec<String>,
    scopes: Vec<String>,
    audiences: Vec<String>,
    name: String,
    own_role: bool,
}

impl Seed<'static> {
    /// A new partner, for [`Seed::create_on`] (a database no test server of this process serves).
    pub fn partner(partner_id: &str) -> Self {
        Seed {
            server: None,
            partner_id: partner_id.to_string(),
            new_partner: true,
            ceiling: None,
            role_scopes: Vec::new(),
            roles: Vec::new(),
            scopes: Vec::new(),
            audiences: Vec::new(),
            name: "test client".into(),
            own_role: true,
        }
    }

    /// Another client of partner `partner_id`, for [`Seed::create_on`].
    pub fn client_of(partner_id: &str) -> Self {
        Seed { new_partner: false, own_role: false, ..Self::partner(partner_id) }
    }
}

impl Seed<'_> {
    /// The new partner's scope ceiling; without it, every scope the role and the client are given here.
    pub fn ceiling(mut self, scopes: &[&str]) -> Self {
        assert!(self.new_partner, "a ceiling is set where the partner is created: TestServer::seed");
        self.ceiling = Some(strings(scopes));
        self
    }

    /// The scopes of the new partner's role `role-<partner>`, which its first client holds (none without it).
    pub fn role(mut self, scopes: &[&str]) -> Self {
        assert!(self.new_partner, "the partner's role is made with the partner: TestServer::seed");
        self.role_scopes = strings(scopes);
        self
    }

    /// Roles (by name) the client holds, besides the new partner's own role.
    pub fn roles(mut self, names: &[&str]) -> Self {
        self.roles = strings(names);
        self
    }

    /// Scopes the client holds directly.
    pub fn scopes(mut self, scopes: &[&str]) -> Self {
        self.scopes = strings(scopes);
        self
    }

    /// The client's audiences (none: the server's default audience).
    pub fn audiences(mut self, audiences: &[&str]) -> Self {
        self.audiences = strings(audiences);
        self
    }

    /// Writes it through the test server's connection, whose changes reach the server's cache at once.
    pub fn create(self) -> CreatedClient {
        let server = self.server.expect("Seed::partner and Seed::client_of are written with create_on");
        self.write(&mut server.conn())
    }

    /// Writes it on any connection, for a database that a server in another process will use.
    pub fn create_on(self, conn: &mut store::Tx) -> CreatedClient {
        self.write(conn)
    }

    /// Every registry call of the seeding.
    fn write(self, conn: &mut store::Tx) -> CreatedClient {
        let caller = Caller::cli();
        let mut roles = self.roles;
        if self.new_partner {
            let ceiling =
                self.ceiling.unwrap_or_else(|| self.role_scopes.iter().chain(&self.scopes).cloned().collect());
            let mut all: Vec<&String> = ceiling.iter().chain(&self.role_scopes).chain(&self.scopes).collect();
            all.sort();
            all.dedup();
            for scope in all {
                if scopes::get(conn, scope).is_err() {
                    scopes::create(conn, &caller, scope, "test scope").unwrap();
                }
            }
            if self.own_role {
                let role = format!("role-{}", self.partner_id);
                roles::create(conn, &caller, &role, "", &self.role_scopes).unwrap();
                roles.insert(0, role);
            }
            let partner = NewPartner {
                id: self.partner_id.clone(),
                name: format!("Partner {}", self.partner_id),
                scope_ceiling: ceiling,
                ..Default::default()
            };
            partners::create(conn, &caller, &partner).unwrap();
        }
        let input = NewClient {
            partner_id: Some(self.partner_id),
            name: self.name,
            roles,
            scopes: self.scopes,
            audiences: self.audiences,
            ..Default::default()
        };
        clients::create(conn, &caller, &input, LIMITS).unwrap()
    }
}

/// The scopes a partner's admin client holds unless [`PartnerAdmin::holding`] says otherwise.
pub const CLIENT_ADMIN_SCOPES: [&str; 2] = ["authz.clients.read", "authz.clients.write"];

/// A partner that manages its own clients through the admin API, and its admin client: see
/// [`TestServer::partner_admin`].
#[must_use = "nothing is written until `create`"]
pub struct PartnerAdmin<'a> {
    server: &'a TestServer,
    id: String,
    business: Vec<String>,
    holding: Vec<String>,
}

impl PartnerAdmin<'_> {
    /// The partner's business scopes: its ceiling is these and [`CLIENT_ADMIN_SCOPES`].
    pub fn ceiling(mut self, business: &[&str]) -> Self {
        self.business = strings(business);
        self
    }

    /// The admin scopes its admin client holds, instead of [`CLIENT_ADMIN_SCOPES`].
    pub fn holding(mut self, admin_scopes: &[&str]) -> Self {
        self.holding = strings(admin_scopes);
        self
    }

    /// The partner (no role of its own) and its admin client `<id> admin`, whose only audience is the admin
    /// audience; the client and a token for it, checked to carry exactly the scopes held.
    pub async fn create(self) -> (CreatedClient, String) {
        let server = self.server;
        let mut ceiling = self.business;
        ceiling.extend(CLIENT_ADMIN_SCOPES.map(String::from));
        let seed = Seed {
            server: Some(server),
            ceiling: Some(ceiling),
            scopes: self.holding.clone(),
            audiences: vec![server.settings.admin_audience.clone()],
            name: format!("{} admin", self.id),
            own_role: false,
            ..Seed::partner(&self.id)
        };
        let client = seed.create();
        let token = server.token_for(&client, &[], None).await;
        let claims = server.verify(&token, &server.settings.admin_audience).await;
        assert_eq!(claims["scope"], self.holding.join(" "));
        (client, token)
    }
}

pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

pub type TokenError =
    oauth2::RequestTokenError<oauth2::HttpClientError<reqwest::Error>, oauth2::basic::BasicErrorResponse>;

/// A token from the server through the `oauth2` crate, as a partner's Rust integration would fetch it.
pub async fn fetch_token(
    server: &TestServer,
    auth: AuthType,
    client_id: &str,
    secret: &str,
    scopes: &[&str],
    audience: Option<&str>,
) -> Result<String, TokenError> {
    let client = BasicClient::new(ClientId::new(client_id.to_string()))
        .set_client_secret(ClientSecret::new(secret.to_string()))
        .set_token_uri(TokenUrl::new(server.url("/oauth2/token")).unwrap())
        .set_auth_type(auth);
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut request = client.exchange_client_credentials();
    for scope in scopes {
        request = request.add_scope(Scope::new(scope.to_string()));
    }
    if let Some(audience) = audience {
        request = request.add_extra_param("resource", audience.to_string());
    }
    let response = request.request_async(&http).await?;
    Ok(response.access_token().secret().clone())
}

/// A raw POST to an OAuth endpoint, for error cases that a well-behaved client library cannot produce.
pub async fn post_form(server: &TestServer, path: &str, body: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(server.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request sent")
}

/// Status, body and a header of an OAuth error response, after checking the RFC 6749 section 5.2 shape.
pub async fn oauth_error(response: reqwest::Response) -> (u16, String, reqwest::header::HeaderMap) {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    assert_eq!(headers.get("content-type").unwrap(), "application/json");
    assert_eq!(headers.get("cache-control").unwrap(), "no-store");
    let body: serde_json::Value = response.json().await.expect("JSON error body");
    let error = body["error"].as_str().unwrap_or_else(|| panic!("status {status}, no error code: {body}")).to_string();
    assert!(body["error_description"].is_string(), "error_description present: {body}");
    (status, error, headers)
}

/// One value `application/x-www-form-urlencoded`, as RFC 6749 section 2.3.1 asks of Basic credentials.
pub fn form_encode(value: &str) -> String {
    let pair = serde_urlencoded::to_string([("v", value)]).expect("form encoding");
    pair["v=".len()..].to_string()
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))`, the way a conforming client sends it.
pub fn basic_auth(client_id: &str, secret: &str) -> String {
    basic_auth_raw(&format!("{}:{}", form_encode(client_id), form_encode(secret)))
}

/// `Basic base64(credentials)` with `credentials` used exactly as given (no form encoding).
pub fn basic_auth_raw(credentials: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(credentials))
}

/// A form body from name/value pairs, each form-encoded.
pub fn form(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).expect("form encoding")
}

/// A raw POST with any content type, for bodies that are not forms.
pub async fn post_raw(
    server: &TestServer,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = reqwest::Client::new().post(server.url(path)).header("content-type", content_type).body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request sent")
}

/// The JSON body of a successful token response, after checking the RFC 6749 section 5.1 status and headers.
pub async fn token_success(response: reqwest::Response) -> serde_json::Value {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("response body");
    assert_eq!(status, 200, "token request failed: {text}");
    assert_eq!(headers.get("content-type").unwrap(), "application/json");
    assert_eq!(headers.get("cache-control").unwrap(), "no-store");
    assert_eq!(headers.get("pragma").unwrap(), "no-cache");
    let body: serde_json::Value = serde_json::from_str(&text).expect("JSON token response");
    assert_eq!(body["token_type"], "Bearer", "{body}");
    assert!(body["access_token"].is_string(), "{body}");
    body
}

/// A client from a full `NewClient`, created by the operator.
pub fn create_client(server: &TestServer, input: &NewClient) -> CreatedClient {
    clients::create(&mut server.conn(), &Caller::cli(), input, LIMITS)
        .unwrap_or_else(|err| panic!("create client: {err}"))
}

/// One HTTP exchange, kept whole: status, headers and body text.
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Reply {
    pub async fn from(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("response body");
        Reply { status, headers, text }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.text).unwrap_or_else(|err| panic!("JSON body expected ({err}): {}", self.text))
    }

    /// The JSON body, after checking the status.
    pub fn expect_status(&self, status: u16) -> serde_json::Value {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.text);
        self.json()
    }

    /// An RFC 6749 section 5.2 error with this status and code.
    pub fn expect_oauth_error(&self, status: u16, error: &str) {
        let body = self.expect_status(status);
        assert_eq!(body["error"], error, "{body}");
        assert!(body["error_description"].is_string(), "{body}");
        assert_eq!(self.header("cache-control"), "no-store");
    }

    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header; status {}", self.status))
            .to_str()
            .expect("text header")
            .to_string()
    }

    /// Status, headers and body as one text, for leak checks and messages.
    pub fn dump(&self) -> String {
        let headers: Vec<String> = self.headers.iter().map(|(n, v)| format!("{n}: {v:?}")).collect();
        format!("{} {} {}", self.status, headers.join("; "), self.text)
    }

    /// The JSON body, after checking the status.
    pub fn expect_json(&self, status: u16) -> serde_json::Value {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.text);
        assert_eq!(self.headers.get("content-type").unwrap(), "application/json");
        self.json()
    }

    /// The problem body `{"error", "message"}`, after checking the status and the error code.
    pub fn expect_problem(&self, status: u16, error: &str) -> serde_json::Value {
        let body = self.expect_json(status);
        assert_eq!(body["error"], error, "{body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
        assert_eq!(body.as_object().unwrap().len(), 2, "only error and message: {body}");
        body
    }

    /// The body with each of `ids` replaced by a placeholder, to compare answers about different ids.
    pub fn normalized(&self, ids: &[&str]) -> String {
        ids.iter().fold(self.text.clone(), |text, id| text.replace(id, "<id>"))
    }
}

/// Any admin API request with a bearer token (`None`: none) and a body sent as given with its content type.
pub async fn admin_request(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, String)>,
) -> Reply {
    let mut request = reqwest::Client::new().request(method, server.url(&format!("/admin/v1{path}")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some((content_type, body)) = body {
        request = request.header("content-type", content_type).body(body);
    }
    Reply::from(request.send().await.expect("admin request sent")).await
}

/// Every stored audit row, oldest first, `details` as stored text.
pub fn audit_rows(server: &TestServer) -> Vec<partnergate::store::models::AuditEventRow> {
    audit_rows_in(&server.pool)
}

/// [`audit_rows`] of any database.
pub fn audit_rows_in(pool: &DbPool) -> Vec<partnergate::store::models::AuditEventRow> {
    use diesel::prelude::*;
    use partnergate::store::models::AuditEventRow;
    use partnergate::store::schema::audit_events;
    audit_events::table
        .select(AuditEventRow::as_select())
        .order(audit_events::id)
        .load(&mut pool.get().expect("audit connection"))
        .expect("audit rows")
}

/// The real binary with `args`, set up (through the environment) for `server`'s database and keys.
pub fn run_cli(server: &TestServer, args: &[&str]) -> std::process::Output {
    server.cli().args(args).output().expect("run partnergate")
}

/// Log lines written through the server's own (redacting) logger, captured for leak checks. The logger is
/// global: install it once per test binary.
#[derive(Clone, Default)]
pub struct CapturedLog(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLog {
    /// Installs `partnergate::cli::logging` at `filter` level, writing into the returned capture.
    pub fn install(filter: &str) -> Self {
        let log = CapturedLog::default();
        partnergate::cli::logging::builder(partnergate::config::LogFormat::Text)
            .parse_filters(filter)
            .target(env_logger::Target::Pipe(Box::new(log.clone())))
            .init();
        log
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for CapturedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What a raw TCP client saw: the bytes the server sent until it closed the connection (or `bound` passed),
/// and when the first bytes and the close came.
pub struct RawExchange {
    pub response: String,
    pub answered_after: Option<std::time::Duration>,
    pub closed_after: Option<std::time::Duration>,
}

/// Sends `head` (request line, headers and the start of a body) over a raw TCP connection, then one byte
/// of `trickle` every `interval` (none when `trickle` is empty: the body never completes), reading whatever
/// the server answers until it closes the connection or `bound` passes. Blocking; run on a blocking thread.
pub fn slow_request(
    addr: &str,
    head: &str,
    trickle: &[u8],
    interval: std::time::Duration,
    bound: std::time::Duration,
) -> RawExchange {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    stream.write_all(head.as_bytes()).expect("send the head");
    let started = Instant::now();
    let mut exchange = RawExchange { response: String::new(), answered_after: None, closed_after: None };
    let mut sent = 0;
    let mut next_byte = started + interval;
    let mut buf = [0u8; 4096];
    while started.elapsed() < bound {
        if sent < trickle.len() && Instant::now() >= next_byte {
            // A write may fail once the server has closed; the read below sees the close.
            let _ = stream.write_all(&trickle[sent..sent + 1]);
            sent += 1;
            next_byte += interval;
        }
        match stream.read(&mut buf) {
            Ok(0) => {
                exchange.closed_after = Some(started.elapsed());
                break;
            }
            Ok(n) => {
                exchange.answered_after.get_or_insert(started.elapsed());
                exchange.response.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
            Err(err) if matches!(err.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => {
                exchange.closed_after = Some(started.elapsed());
                break;
            }
        }
    }
    exchange
}

/// How long the change feed may take to bring a change made elsewhere (another instance, a CLI command) to a
/// server: the documented bound.
pub const PROPAGATION_BOUND: std::time::Duration = std::time::Duration::from_secs(1);

/// Polls `probe` until it holds and returns how long that took; panics when it does not within `limit`.
pub async fn until<F, Fut>(limit: std::time::Duration, what: &str, mut probe: F) -> std::time::Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    loop {
        if probe().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Runs a `partnergate` command as an operator would, in its own process, with `--json`; returns its output.
pub fn partnergate(server: &TestServer, args: &[&str]) -> serde_json::Value {
    let args: Vec<&str> = std::iter::once("--json").chain(args.iter().copied()).collect();
    let output = run_cli(server, &args);
    assert!(
        output.status.success(),
        "partnergate {args:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|err| panic!("{args:?} printed no JSON ({err})"))
}

/// Creates the scopes of `names` that do not exist yet.
pub fn ensure_catalog_scopes(server: &TestServer, names: &[&str]) {
    let mut conn = server.conn();
    for name in names {
        if scopes::get(&mut conn, name).is_err() {
            scopes::create(&mut conn, &Caller::cli(), name, "test scope").unwrap();
        }
    }
}

/// An admin API request with a JSON body.
pub async fn admin_json(
    server: &TestServer,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: serde_json::Value,
) -> Reply {
    admin_request(server, method, path, Some(token), Some(("application/json", body.to_string()))).await
}

/// The real `partnergate` binary, without the developer's own `PARTNERGATE_*` settings: each test says
/// what it sets, through the environment as an operator would.
pub fn partnergate_binary() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_partnergate"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PARTNERGATE_") {
            command.env_remove(name);
        }
    }
    command.env("RUST_BACKTRACE", "0");
    if on_postgres() {
        command.env(partnergate::keys::kek::ENV_VALUE, postgres_test_kek());
    }
    command
}

impl TestServer {
    /// The binary set up for this server's database and keys directory.
    pub fn cli(&self) -> std::process::Command {
        let mut command = partnergate_binary();
        command.env("PARTNERGATE_DATABASE_URL", &self.db.url).env("PARTNERGATE_KEYS_DIR", &self.keys_dir);
        command
    }
}

/// How a CLI run ended.
pub struct CliRun {
    pub args: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// A fresh command with the template's program, arguments and environment (a `Command` cannot be cloned,
/// and running one again would append to its arguments).
pub fn command_like(template: &std::process::Command) -> std::process::Command {
    let mut command = std::process::Command::new(template.get_program());
    command.args(template.get_args());
    copy_env(template, &mut command);
    command
}

fn copy_env(from: &std::process::Command, to: &mut std::process::Command) {
    for (name, value) in from.get_envs() {
        match value {
            Some(value) => to.env(name, value),
            None => to.env_remove(name),
        };
    }
}

/// Runs the template with `args` added, to its end (blocking: for commands that do not call an in-process
/// server).
pub fn run_command(template: &std::process::Command, args: &[&str]) -> CliRun {
    let output = command_like(template).args(args).output().expect("run partnergate");
    CliRun {
        args: format!("{args:?}"),
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs the command off the test's runtime, for commands that call the in-process server.
pub async fn run_command_async(template: &std::process::Command, args: &[&str]) -> CliRun {
    let mut command = command_like(template);
    command.args(args);
    actix_web::web::block(move || run_command(&command, &[])).await.expect("CLI thread")
}

impl CliRun {
    /// Stdout of a run that must have succeeded.
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "partnergate {} failed: {}", self.args, self.stderr);
        &self.stdout
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.ok())
            .unwrap_or_else(|err| panic!("{} printed no JSON ({err}): {}", self.args, self.stdout))
    }

    /// Stderr of a run that must have failed: a non-zero exit, an `error:` message, never a panic.
    pub fn failed(&self) -> &str {
        assert!(self.code.is_some_and(|code| code != 0), "partnergate {} should fail: {}", self.args, self.stdout);
        assert!(self.stderr.contains("error"), "{}: no error message: {}", self.args, self.stderr);
        assert!(!self.stderr.contains("panicked"), "{}: {}", self.args, self.stderr);
        &self.stderr
    }
}

/// A loopback port that nothing listens on (it was free a moment ago), never one this test process handed out
/// before: the kernel may offer a port just released again, and two servers started together would then
/// race for it.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port").local_addr().unwrap().port();
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
}

/// `partnergate serve` as its own process on a free loopback port, configured through the environment;
/// killed when dropped. Started under a usual umask (022), so a private file is private because the server
/// made it so.
pub struct ServeProcess {
    pub base_url: String,
    pub port: u16,
    /// An HTTP client that trusts the server (for HTTPS, its test certificate).
    pub http: reqwest::Client,
    child: std::process::Child,
    log: PathBuf,
}

impl ServeProcess {
    /// `command` carries the environment (database, keys, issuer settings); the bind is added here.
    pub async fn start(command: &std::process::Command, log_dir: &std::path::Path) -> Self {
        Self::start_on(command, log_dir, "127.0.0.1", &[]).await
    }

    /// [`ServeProcess::start`] listening on `host` (loopback or all addresses: it is reached on loopback),
    /// with `serve_args` after `serve`.
    pub async fn start_on(
        command: &std::process::Command,
        log_dir: &std::path::Path,
        host: &str,
        serve_args: &[&str],
    ) -> Self {
        let mut process = Self::spawn(command, log_dir, host, serve_args);
        process.wait_ready().await;
        process
    }

    /// [`ServeProcess::start`] for a server configured with a TLS certificate (for `localhost`) that `root`
    /// signed: reached at `https://localhost:PORT`.
    pub async fn start_https(
        command: &std::process::Command,
        log_dir: &std::path::Path,
        root: reqwest::Certificate,
    ) -> Self {
        let mut process = Self::spawn(command, log_dir, "127.0.0.1", &[]);
        process.base_url = format!("https://localhost:{}", process.port);
        process.http = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(root)
            .https_only(true)
            .build()
            .unwrap();
        process.wait_ready().await;
        process
    }

    fn spawn(command: &std::process::Command, log_dir: &std::path::Path, host: &str, serve_args: &[&str]) -> Self {
        let port = free_port();
        let log = log_dir.join(format!("serve-{port}.log"));
        let child = under_umask_022(command)
            .arg("serve")
            .args(serve_args)
            .env("PARTNERGATE_BIND", format!("{host}:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).expect("serve log file"))
            .spawn()
            .expect("start partnergate serve");
        ServeProcess { base_url: format!("http://127.0.0.1:{port}"), port, http: reqwest::Client::new(), child, log }
    }

    /// Runs `serve` expecting it to refuse to start: its exit status and log (it is killed after `limit`).
    pub fn refused(
        command: &std::process::Command,
        log_dir: &std::path::Path,
        host: &str,
        limit: std::time::Duration,
    ) -> (std::process::ExitStatus, String) {
        let mut process = Self::spawn(command, log_dir, host, &[]);
        let status = process.wait_exit(limit);
        (status, process.log_text())
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Sends `signal` (`TERM`, `INT`) with kill(1).
    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits for the process to exit; kills it and panics after `limit`.
    pub fn wait_exit(&mut self, limit: std::time::Duration) -> std::process::ExitStatus {
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for partnergate") {
                return status;
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("partnergate did not exit within {limit:?}:\n{}", self.log_text());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    async fn wait_ready(&mut self) {
        let ready = format!("{}/readyz", self.base_url);
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().expect("serve status") {
                panic!("partnergate serve exited ({status}): {}", self.log_text());
            }
            if self.http.get(&ready).send().await.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("partnergate serve not ready within 30 s: {}", self.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }
}

/// The template run through `sh` under umask 022, the usual one; arguments added to the result follow the
/// template's.
pub fn under_umask_022(template: &std::process::Command) -> std::process::Command {
    let mut shell = std::process::Command::new("sh");
    shell.args(["-c", "umask 022 && exec \"$@\"", "sh"]).arg(template.get_program()).args(template.get_args());
    copy_env(template, &mut shell);
    shell
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A resource server's reporting client for the request log (of the operator's partner, whose ceiling holds
/// `authz.usage.report`; the admin audience, where the ingestion endpoint is) and its access token from the
/// token endpoint. The operator's partner must exist (`TestServer::operator`).
pub async fn usage_reporter(server: &TestServer) -> (CreatedClient, String) {
    let reporter = create_client(
        server,
        &NewClient {
            partner_id: Some(partnergate::registry::bootstrap::OPERATOR_PARTNER.into()),
            name: "orders api".into(),
            scopes: vec!["authz.usage.report".into()],
            audiences: vec![server.settings.admin_audience.clone()],
            ..Default::default()
        },
    );
    let token = server.token_for(&reporter, &[], None).await;
    (reporter, token)
}

/// `POST /admin/v1/requests` with `records`, as a resource server reports them.
pub async fn report_requests(server: &TestServer, token: &str, records: &[serde_json::Value]) -> Reply {
    admin_json(server, token, reqwest::Method::POST, "/requests", serde_json::json!({ "records": records })).await
}

/// One request-log record as a resource server reports it, `seconds_ago` before now.
pub fn request_record(
    seconds_ago: i64,
    method: &str,
    route: &str,
    status: u16,
    client_id: &str,
    partner_id: &str,
) -> serde_json::Value {
    let at = chrono::Utc::now() - chrono::Duration::seconds(seconds_ago);
    serde_json::json!({
        "time": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true), "method": method, "route": route,
        "status": status, "latency_ms": 7, "client_id": client_id, "partner_id": partner_id,
    })
}

/// A server whose issuer is its own loopback URL, so that discovery at the issuer (a resource server's
/// verifier, a stream receiver) finds it; audiences `<issuer>/api` and `<issuer>/admin`.
pub async fn start_as_issuer(customize: impl FnOnce(&mut ServerConfig)) -> TestServer {
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    TestServer::start_with(|config| {
        let issuer = format!("http://{addr}");
        config.bind = addr;
        config.token.default_audience = format!("{issuer}/api");
        config.token.admin_audience = format!("{issuer}/admin");
        config.token.issuer = issuer;
        customize(config);
    })
    .await
}

// The server's clock in tests (issue 19 item 4): a test that needs time to pass for the server starts it on a
// manual clock and moves the clock, instead of sleeping.

/// A manual clock a few seconds ahead of the system's, so that what a test seeds directly (on the system's
/// clock) is older than what the server then does on this one, as it would be (a token older than its client
/// is refused). It stands still until the test moves it.
pub fn manual_clock() -> partnergate::clock::ManualClock {
    partnergate::clock::ManualClock::at(store::now() + chrono::Duration::seconds(5))
}

impl TestServer {
    /// A server whose clock is `clock` (its audit events, limits, key rules, sessions and expiries follow it).
    pub async fn start_on(clock: &partnergate::clock::ManualClock) -> Self {
        Self::start_on_with(clock, |_| {}).await
    }

    /// [`TestServer::start_on`] with other settings too.
    pub async fn start_on_with(
        clock: &partnergate::clock::ManualClock,
        customize: impl FnOnce(&mut ServerConfig),
    ) -> Self {
        let clock: partnergate::clock::SharedClock = std::sync::Arc::new(clock.clone());
        Self::start_with(move |config| {
            config.clock = clock;
            customize(config);
        })
        .await
    }

    /// A registry caller on this server's clock, for direct registry calls that must agree with the server's
    /// time.
    pub fn caller(&self) -> Caller {
        Caller::cli().with_clock(self.config.clock.clone())
    }
}

/// The secret a client was created with.
pub fn secret_of(client: &CreatedClient) -> &str {
    client.secret.secret.expose()
}

/// A client-credentials token request with HTTP Basic credentials, kept whole (no checks).
pub async fn request_token(server: &TestServer, client: &CreatedClient) -> Reply {
    request_token_as(server, &client.client.id, secret_of(client), None).await
}

/// [`request_token`] with any credentials, and from `forwarded_for` (an `X-Forwarded-For` header) if given.
pub async fn request_token_as(
    server: &TestServer,
    client_id: &str,
    secret: &str,
    forwarded_for: Option<&str>,
) -> Reply {
    let authorization = basic_auth(client_id, secret);
    let mut headers = vec![("authorization", authorization.as_str())];
    if let Some(address) = forwarded_for {
        headers.push(("x-forwarded-for", address));
    }
    Reply::from(post_form(server, "/oauth2/token", "grant_type=client_credentials", &headers).await).await
}

/// A rate-limited token request's answer (a 429 `temporarily_unavailable`, not cached); its `Retry-After`
/// in seconds.
pub fn limited(reply: &Reply) -> u64 {
    reply.expect_oauth_error(429, "temporarily_unavailable");
    reply.header("retry-after").parse().unwrap_or_else(|_| panic!("Retry-After in seconds: {}", reply.dump()))
}

/// `POST /admin/v1{path}` with a bearer token and no body.
pub async fn admin_post(server: &TestServer, token: &str, path: &str) -> Reply {
    admin_request(server, reqwest::Method::POST, path, Some(token), None).await
}

/// The value of one series on the server's `/metrics` page (`name` or `name{labels}` as printed), if listed.
pub async fn metric(server: &TestServer, series: &str) -> Option<f64> {
    let text = reqwest::get(server.url("/metrics")).await.unwrap().text().await.unwrap();
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The claims of a compact JWS, decoded without verification.
pub fn claims_of(token: &str) -> serde_json::Map<String, serde_json::Value> {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWS payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// The `jti` of a compact JWS, read without verification.
pub fn jti_of(token: &str) -> String {
    claims_of(token)["jti"].as_str().expect("jti claim").to_string()
}

/// Now, in seconds since the Unix epoch, by the machine's clock.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}
