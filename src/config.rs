//! All settings, from flags and `PARTNERGATE_*` environment variables, with defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::oauth::TokenSettings;
use crate::request_log::retention::Retention as RequestLogRetention;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://./data/partnergate.db";
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";

/// How the process log is written (`--log-format`, `PARTNERGATE_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `[time LEVEL target] message key=value ...`, for people.
    #[default]
    Text,
    /// One JSON object per line (`ts`, `level`, `target`, `message` and the line's fields), for log pipelines.
    Json,
}

#[derive(Clone, Args)]
#[command(next_help_heading = "Database")]
pub struct DatabaseArgs {
    /// Database URL: sqlite://PATH (embedded, the default) or postgres://USER@HOST/DB.
    #[arg(long, env = "PARTNERGATE_DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true)]
    pub database_url: String,
    /// Maximum number of pooled database connections (SQLite uses at most 8).
    #[arg(long, env = "PARTNERGATE_DATABASE_POOL_SIZE", default_value_t = 16, global = true)]
    pub database_pool_size: u32,
    /// Seconds to wait for a database connection before failing.
    #[arg(long, env = "PARTNERGATE_DATABASE_TIMEOUT_SECS", default_value_t = 5, global = true)]
    pub database_timeout_secs: u64,
}

impl DatabaseArgs {
    /// Pool options for a database that must exist already (every operator command).
    pub fn pool_options(&self) -> crate::store::PoolOptions {
        crate::store::PoolOptions {
            max_size: self.database_pool_size.max(1),
            connect_timeout: Duration::from_secs(self.database_timeout_secs.max(1)),
            create_if_missing: false,
        }
    }

    /// Pool options that create a missing SQLite database: only `serve` and `migrate` use them.
    pub fn creating_pool_options(&self) -> crate::store::PoolOptions {
        crate::store::PoolOptions { create_if_missing: true, ..self.pool_options() }
    }
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Signing keys")]
pub struct KeysArgs {
    /// Directory of PKCS#8 PEM signing keys (see keys/README.md).
    #[arg(long, env = "PARTNERGATE_KEYS_DIR", default_value = "./keys", global = true)]
    pub keys_dir: PathBuf,
    /// File holding the key-encryption key (32 bytes, base64) that seals the stored signing keys; defaults to
    /// <keys-dir>/key-encryption-key (generated on SQLite). PARTNERGATE_KEY_ENCRYPTION_KEY may give the key itself.
    #[arg(long, env = "PARTNERGATE_KEY_ENCRYPTION_KEY_FILE", global = true)]
    pub key_encryption_key_file: Option<PathBuf>,
}

impl KeysArgs {
    /// Where the key-encryption key comes from: the key itself is read from the environment only (a flag
    /// would show it in the process list).
    pub fn kek_source(&self) -> crate::keys::kek::KekSource {
        crate::keys::kek::KekSource {
            value: std::env::var(crate::keys::kek::ENV_VALUE).ok(),
            file: self.key_encryption_key_file.clone(),
        }
    }
}

/// The settings that bound a key rotation, for the `keys` commands: give them the server's values (the same
/// variables), so that they judge as the server would.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Key rotation bounds")]
pub struct KeyPolicyArgs {
    /// The JWKS `Cache-Control: max-age` of the server, in seconds: a key is published at least this long
    /// (and at least 10 minutes) before it may sign.
    #[arg(long, env = "PARTNERGATE_JWKS_MAX_AGE_SECS", default_value_t = 300, global = true)]
    pub jwks_max_age_secs: u32,
    /// The server's longest token lifetime, in seconds: a retired key stays published this long (plus 60 s).
    #[arg(long, env = "PARTNERGATE_MAX_TOKEN_LIFETIME_SECS", default_value_t = 3600, global = true,
          value_parser = clap::value_parser!(i64).range(30..=MAX_LIFETIME_SECS))]
    pub max_token_lifetime_secs: i64,
}

impl KeyPolicyArgs {
    pub fn policy(&self) -> crate::keys::KeyPolicy {
        crate::keys::KeyPolicy::new(self.jwks_max_age_secs, self.max_token_lifetime_secs)
    }
}

/// Where the server listens and what its tokens say. `serve` and `admin bootstrap` both flatten this one
/// struct, so the admin audience that bootstrap registers is the one the server checks, from the same flags,
/// `PARTNERGATE_*` variables and defaults.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Issuer and tokens")]
pub struct TokenArgs {
    /// Address to listen on; the default issuer is derived from it.
    #[arg(long, env = "PARTNERGATE_BIND", default_value = DEFAULT_BIND)]
    pub bind: SocketAddr,
    /// Issuer URL (`iss`); defaults to http://<bind>, or https://<bind> with --tls-cert.
    #[arg(long, env = "PARTNERGATE_ISSUER")]
    pub issuer: Option<String>,
    /// PEM certificate chain (leaf first): `serve` then speaks HTTPS itself. Needs --tls-key.
    #[arg(long, env = "PARTNERGATE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the certificate (mode 0600). Needs --tls-cert.
    #[arg(long, env = "PARTNERGATE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Audience of tokens whose client has no single audience of its own; defaults to <issuer>/api.
    #[arg(long, env = "PARTNERGATE_DEFAULT_AUDIENCE")]
    pub default_audience: Option<String>,
    /// Audience that admin API tokens must carry; defaults to <issuer>/admin.
    #[arg(long, env = "PARTNERGATE_ADMIN_AUDIENCE")]
    pub admin_audience: Option<String>,
    /// Token lifetime in seconds for clients without their own.
    #[arg(long, env = "PARTNERGATE_DEFAULT_TOKEN_LIFETIME_SECS", default_value_t = 600,
          value_parser = clap::value_parser!(i64).range(30..=MAX_LIFETIME_SECS))]
    pub default_token_lifetime_secs: i64,
    /// Upper bound on any token lifetime, in seconds.
    #[arg(long, env = "PARTNERGATE_MAX_TOKEN_LIFETIME_SECS", default_value_t = 3600,
          value_parser = clap::value_parser!(i64).range(30..=MAX_LIFETIME_SECS))]
    pub max_token_lifetime_secs: i64,
}

/// No token lives longer than a day, whatever the settings say.
pub const MAX_LIFETIME_SECS: i64 = 86_400;
/// Retention beyond a century is a typo; it would also overflow date arithmetic.
pub const MAX_RETENTION_DAYS: i64 = 36_500;

/// The maximum age of new secrets (README, "Secret expiry"). `serve` and every command that creates a secret
/// (`client create`, `client rotate-secret`, `admin bootstrap`) read the same flag and variable.
#[derive(Debug, Clone, Copy, Args)]
pub struct SecretPolicyArgs {
    /// New secrets expire after at most this many days (0: no maximum), unless the operator set a partner's
    /// own maximum. Existing secrets keep their expiry until `client apply-secret-max-age`.
    #[arg(long, env = "PARTNERGATE_SECRET_MAX_AGE_DAYS", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=3650))]
    pub secret_max_age_days: u32,
}

impl SecretPolicyArgs {
    pub fn policy(&self) -> crate::registry::secret_expiry::SecretPolicy {
        crate::registry::secret_expiry::SecretPolicy { default_max_age_days: self.secret_max_age_days }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub token: TokenArgs,
    #[command(flatten)]
    pub secrets: SecretPolicyArgs,
    /// `Cache-Control: max-age` of the JWKS response, in seconds.
    #[arg(long, env = "PARTNERGATE_JWKS_MAX_AGE_SECS", default_value_t = 300)]
    pub jwks_max_age_secs: u32,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "PARTNERGATE_MAX_BODY_BYTES", default_value_t = 16 * 1024)]
    pub max_body_bytes: usize,
    /// Delete audit events older than this many days (0 keeps them forever).
    #[arg(long, env = "PARTNERGATE_AUDIT_RETENTION_DAYS", default_value_t = 90,
          value_parser = clap::value_parser!(u32).range(0..=MAX_RETENTION_DAYS))]
    pub audit_retention_days: u32,
    /// Delete request log records older than this many days (0 keeps them forever).
    #[arg(long, env = "PARTNERGATE_REQUEST_LOG_RETENTION_DAYS", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(0..=MAX_RETENTION_DAYS))]
    pub request_log_retention_days: u32,
    /// Delete the request log's per-minute aggregates older than this many days (0 keeps them forever).
    #[arg(long, env = "PARTNERGATE_REQUEST_LOG_AGGREGATE_RETENTION_DAYS", default_value_t = 400,
          value_parser = clap::value_parser!(u32).range(0..=MAX_RETENTION_DAYS))]
    pub request_log_aggregate_retention_days: u32,
    /// HTTP worker threads; defaults to the number of cores.
    #[arg(long, env = "PARTNERGATE_WORKERS")]
    pub workers: Option<usize>,
    /// Seconds a request body may take to arrive, counted from its headers; a slower one is cut with 400.
    #[arg(long, env = "PARTNERGATE_BODY_READ_TIMEOUT_SECS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub body_read_timeout_secs: u64,
    /// Concurrent connections each worker thread serves; beyond that, new connections wait to be accepted.
    #[arg(long, env = "PARTNERGATE_MAX_CONNECTIONS", default_value_t = 1024,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_connections: u64,
    /// Serve `GET /metrics` on this address only (e.g. 127.0.0.1:9090) instead of on the main one.
    #[arg(long, env = "PARTNERGATE_METRICS_BIND")]
    pub metrics_bind: Option<SocketAddr>,
    /// Serve an http:// issuer on a non-loopback address (refused by default: secrets in clear text).
    #[arg(long, env = "PARTNERGATE_ALLOW_INSECURE_ISSUER")]
    pub allow_insecure_issuer: bool,
    /// Fetch clients' jwks_uri from private and loopback addresses and over plain http (refused by default:
    /// a partner could make the server probe the internal network).
    #[arg(long, env = "PARTNERGATE_ALLOW_PRIVATE_KEY_URLS")]
    pub allow_private_key_urls: bool,
    /// Rotate the signing key automatically every N days (0: never; one instance at a time does it).
    #[arg(long, env = "PARTNERGATE_KEY_ROTATION_DAYS", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=3650))]
    pub key_rotation_days: u32,
    /// With the automatic rotation: publish the next key this many days before it signs.
    #[arg(long, env = "PARTNERGATE_KEY_ANNOUNCE_DAYS", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub key_announce_days: u32,
    /// With the automatic rotation: keep a retired key published this many days (at least until its tokens
    /// have expired).
    #[arg(long, env = "PARTNERGATE_KEY_RETAIN_DAYS", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(0..=3650))]
    pub key_retain_days: u32,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub console: ConsoleArgs,
}

/// The console's sign-in for people (README, "Console sign-in with your identity provider").
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Console sign-in")]
pub struct ConsoleArgs {
    /// Issuer URL of the OpenID provider that signs people in to the console (discovered at
    /// <issuer>/.well-known/openid-configuration). Its redirect URI for this server is <issuer of this
    /// server>/console/oidc/callback.
    #[arg(long, env = "PARTNERGATE_CONSOLE_OIDC_ISSUER", requires_all = ["console_oidc_client_id", "console_oidc_client_secret"])]
    pub console_oidc_issuer: Option<String>,
    /// This server's client id at the provider.
    #[arg(long, env = "PARTNERGATE_CONSOLE_OIDC_CLIENT_ID", requires = "console_oidc_issuer")]
    pub console_oidc_client_id: Option<String>,
    /// This server's client secret at the provider (prefer the environment variable: a flag shows in the
    /// process list).
    #[arg(
        long,
        env = "PARTNERGATE_CONSOLE_OIDC_CLIENT_SECRET",
        hide_env_values = true,
        requires = "console_oidc_issuer"
    )]
    pub console_oidc_client_secret: Option<String>,
    /// People in any of these groups (the ID token's `groups` claim) sign in as the operator.
    #[arg(long, env = "PARTNERGATE_CONSOLE_OIDC_OPERATOR_GROUPS", value_delimiter = ',')]
    pub console_oidc_operator_groups: Vec<String>,
    /// People whose verified email is at one of these domains sign in as the operator.
    #[arg(long, env = "PARTNERGATE_CONSOLE_OIDC_OPERATOR_EMAIL_DOMAINS", value_delimiter = ',')]
    pub console_oidc_operator_email_domains: Vec<String>,
    /// Whether the console offers sign-in with an admin client's id and secret (may be turned off only
    /// when a provider is configured).
    #[arg(long, env = "PARTNERGATE_CONSOLE_CLIENT_SIGNIN", default_value_t = true, action = clap::ArgAction::Set)]
    pub console_client_signin: bool,
    /// A console session ends this long after sign-in, in seconds.
    #[arg(long, env = "PARTNERGATE_CONSOLE_SESSION_LIFETIME_SECS", default_value_t = 8 * 3600,
          value_parser = clap::value_parser!(i64).range(60..=7 * 86_400))]
    pub console_session_lifetime_secs: i64,
    /// A console session unused this long ends, in seconds.
    #[arg(long, env = "PARTNERGATE_CONSOLE_SESSION_IDLE_SECS", default_value_t = 1800,
          value_parser = clap::value_parser!(i64).range(60..=86_400))]
    pub console_session_idle_secs: i64,
}

impl ConsoleArgs {
    /// The console's settings; the redirect URI is derived from this server's issuer.
    pub fn settings(&self, issuer: &str) -> Result<crate::console_auth::ConsoleSettings, String> {
        let provider = match (&self.console_oidc_issuer, &self.console_oidc_client_id, &self.console_oidc_client_secret)
        {
            (Some(oidc_issuer), Some(client_id), Some(client_secret)) => Some(crate::console_auth::ProviderSettings {
                issuer: oidc_issuer.trim_end_matches('/').to_string(),
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
                redirect_uri: format!("{}{}", issuer.trim_end_matches('/'), crate::console_auth::CALLBACK_PATH),
                operator_groups: self.console_oidc_operator_groups.clone(),
                operator_email_domains: self.console_oidc_operator_email_domains.clone(),
            }),
            _ => None,
        };
        if provider.is_none() && !self.console_client_signin {
            return Err("--console-client-signin=false needs an identity provider (--console-oidc-issuer): \
                        nobody could sign in to the console"
                .into());
        }
        Ok(crate::console_auth::ConsoleSettings {
            provider,
            client_sign_in: self.console_client_signin,
            sessions: crate::console_auth::SessionPolicy {
                lifetime: chrono::Duration::seconds(self.console_session_lifetime_secs),
                idle_timeout: chrono::Duration::seconds(self.console_session_idle_secs),
                secure_cookie: issuer.starts_with("https://"),
            },
        })
    }
}

/// Limits at the token endpoint (see `limits` and the README's "Limits"). 0 turns a limit off.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Limits")]
pub struct LimitArgs {
    /// Token requests per minute per client (on each instance, or in all together with --rate-limit-store), for
    /// clients without their own limit.
    #[arg(long, env = "PARTNERGATE_CLIENT_RATE_LIMIT_PER_MINUTE", default_value_t = 1200,
          value_parser = clap::value_parser!(u32).range(0..=6_000_000))]
    pub client_rate_limit_per_minute: u32,
    /// Failed client authentications per minute from one address before it is refused for a minute.
    #[arg(long, env = "PARTNERGATE_AUTH_FAILURES_PER_MINUTE_PER_ADDRESS", default_value_t = 30)]
    pub auth_failures_per_minute_per_address: u32,
    /// Failed authentications per minute of one client id, from all addresses, before addresses that failed
    /// are refused for it for a minute (others are still served).
    #[arg(long, env = "PARTNERGATE_AUTH_FAILURES_PER_MINUTE_PER_CLIENT", default_value_t = 60)]
    pub auth_failures_per_minute_per_client: u32,
    /// Address or CIDR range of a reverse proxy whose `X-Forwarded-For` is believed (repeatable, or
    /// comma-separated in the variable). Without one, the TCP peer is the source address.
    #[arg(long = "trusted-proxy", env = "PARTNERGATE_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,
    /// Redis shared by every instance, redis://[:PASSWORD@]HOST[:PORT][/DB]: the per-client and per-partner rate
    /// limits then hold for the sum of all instances. Without it, each instance counts alone, in memory. While
    /// it cannot be reached, each instance counts alone again (see the README).
    #[arg(long, env = "PARTNERGATE_RATE_LIMIT_STORE")]
    pub rate_limit_store: Option<String>,
    /// Prefix of the rate-limit keys in that Redis (installations sharing one Redis need different ones).
    #[arg(long, env = "PARTNERGATE_RATE_LIMIT_KEY_PREFIX", default_value = "pg:rl:")]
    pub rate_limit_key_prefix: String,
}

impl TokenArgs {
    /// The settings `serve` would take without flags: from the `PARTNERGATE_*` variables and the defaults.
    /// For commands that do not offer these flags (`token` derives its default URL from the issuer).
    pub fn from_environment() -> Result<Self, String> {
        use clap::{Args as _, FromArgMatches as _};
        let command = TokenArgs::augment_args(clap::Command::new("partnergate").no_binary_name(true));
        let matches = command.try_get_matches_from(std::iter::empty::<String>()).map_err(|err| err.to_string())?;
        TokenArgs::from_arg_matches(&matches).map_err(|err| err.to_string())
    }

    /// The certificate and key `serve` terminates TLS with, when both are given (clap requires the pair).
    pub fn tls(&self) -> Option<crate::tls::TlsFiles> {
        Some(crate::tls::TlsFiles { cert: self.tls_cert.clone()?, key: self.tls_key.clone()? })
    }

    pub fn resolve(&self) -> Result<TokenSettings, String> {
        let scheme = if self.tls_cert.is_some() { "https" } else { "http" };
        let issuer = self.issuer.clone().unwrap_or_else(|| format!("{scheme}://{}", self.bind));
        let issuer = issuer.trim_end_matches('/').to_string();
        if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
            return Err(format!("issuer {issuer:?} must be an http(s) URL"));
        }
        if self.tls_cert.is_some() && !issuer.starts_with("https://") {
            return Err(format!(
                "issuer {issuer:?} is http:// but the server speaks HTTPS (--tls-cert): give an https:// issuer"
            ));
        }
        if self.max_token_lifetime_secs < 30 {
            return Err("max token lifetime must be at least 30 seconds".into());
        }
        if !(30..=self.max_token_lifetime_secs).contains(&self.default_token_lifetime_secs) {
            return Err("default token lifetime must be between 30 seconds and the maximum lifetime".into());
        }
        Ok(TokenSettings {
            default_audience: self.default_audience.clone().unwrap_or_else(|| format!("{issuer}/api")),
            admin_audience: self.admin_audience.clone().unwrap_or_else(|| format!("{issuer}/admin")),
            issuer,
            default_lifetime_secs: self.default_token_lifetime_secs,
            max_lifetime_secs: self.max_token_lifetime_secs,
        })
    }
}

/// Everything `serve` needs, resolved.
#[derive(Clone)]
pub struct ServerConfig {
    pub database_url: String,
    pub pool: crate::store::PoolOptions,
    pub keys_dir: PathBuf,
    pub bind: SocketAddr,
    /// HTTPS when set.
    pub tls: Option<crate::tls::TlsFiles>,
    /// `/metrics` alone on this address; `None` serves it on `bind`.
    pub metrics_bind: Option<SocketAddr>,
    pub token: TokenSettings,
    pub jwks_max_age_secs: u32,
    pub max_body_bytes: usize,
    pub workers: Option<usize>,
    pub audit_retention_days: u32,
    pub request_log_retention: RequestLogRetention,
    /// The time a request body may take to arrive (the headers have actix-web's 5 s).
    pub body_read_timeout: Duration,
    /// Per worker thread.
    pub max_connections: usize,
    pub client_rate_limit_per_minute: u32,
    /// Rate limits shared by the instances through Redis; `None`: in this instance's memory.
    pub rate_limit_store: Option<crate::limits::StoreSettings>,
    pub throttle: crate::limits::ThrottleSettings,
    pub trusted_proxies: crate::http::client_address::TrustedProxies,
    pub kek: crate::keys::kek::KekSource,
    pub key_policy: crate::keys::KeyPolicy,
    /// The automatic rotation, if any, and how often the instance holding its lease looks at it.
    pub key_schedule: Option<crate::keys::RotationSchedule>,
    pub key_schedule_tick: Duration,
    /// Fetch clients' `jwks_uri` from private and loopback addresses, and over plain http (tests, closed
    /// networks); refused by default.
    pub allow_private_key_urls: bool,
    /// The default maximum age of new secrets.
    pub secret_policy: crate::registry::secret_expiry::SecretPolicy,
    /// How often each instance refreshes the expiring-secrets metric, and the one holding the lease writes
    /// the expiry notices.
    pub secret_expiry_tick: Duration,
    /// The server's time (tests pass a `ManualClock` to travel instead of sleeping).
    pub clock: crate::clock::SharedClock,
    /// The console's sign-in for people, its sessions and their clock.
    pub console: crate::console_auth::ConsoleSettings,
}

impl ServerConfig {
    pub fn from_args(database: &DatabaseArgs, keys: &KeysArgs, serve: &ServeArgs) -> Result<Self, String> {
        let token = serve.token.resolve()?;
        crate::insecure::check_issuer(&token.issuer, serve.token.bind, serve.allow_insecure_issuer)?;
        let key_schedule = (serve.key_rotation_days > 0).then(|| {
            let days = |n: u32| chrono::Duration::days(i64::from(n));
            crate::keys::RotationSchedule {
                every: days(serve.key_rotation_days),
                announce: days(serve.key_announce_days),
                keep: days(serve.key_retain_days),
            }
        });
        if let Some(schedule) = &key_schedule {
            if schedule.announce >= schedule.every {
                return Err("--key-announce-days must be less than --key-rotation-days".into());
            }
        }
        let key_policy = crate::keys::KeyPolicy::new(serve.jwks_max_age_secs, token.max_lifetime_secs);
        let console = serve.console.settings(&token.issuer)?;
        Ok(ServerConfig {
            database_url: database.database_url.clone(),
            pool: database.creating_pool_options(),
            keys_dir: keys.keys_dir.clone(),
            bind: serve.token.bind,
            tls: serve.token.tls(),
            metrics_bind: serve.metrics_bind,
            token,
            jwks_max_age_secs: serve.jwks_max_age_secs,
            max_body_bytes: serve.max_body_bytes,
            workers: serve.workers,
            audit_retention_days: serve.audit_retention_days,
            request_log_retention: RequestLogRetention {
                records_days: serve.request_log_retention_days,
                aggregate_days: serve.request_log_aggregate_retention_days,
            },
            body_read_timeout: Duration::from_secs(serve.body_read_timeout_secs),
            max_connections: usize::try_from(serve.max_connections).unwrap_or(usize::MAX),
            client_rate_limit_per_minute: serve.limits.client_rate_limit_per_minute,
            rate_limit_store: serve
                .limits
                .rate_limit_store
                .as_deref()
                .map(|url| crate::limits::StoreSettings::parse(url, &serve.limits.rate_limit_key_prefix))
                .transpose()?,
            throttle: crate::limits::ThrottleSettings {
                address_failures_per_minute: serve.limits.auth_failures_per_minute_per_address,
                client_failures_per_minute: serve.limits.auth_failures_per_minute_per_client,
            },
            trusted_proxies: crate::http::client_address::TrustedProxies::parse(&serve.limits.trusted_proxies)?,
            kek: keys.kek_source(),
            key_policy,
            key_schedule,
            key_schedule_tick: Duration::from_secs(30),
            allow_private_key_urls: serve.allow_private_key_urls,
            secret_policy: serve.secrets.policy(),
            secret_expiry_tick: Duration::from_secs(60),
            clock: crate::clock::system(),
            console,
        })
    }
}

/// The database URL may hold a password: `Debug` shows it redacted.
impl std::fmt::Debug for DatabaseArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseArgs")
            .field("database_url", &crate::store::redact_url(&self.database_url))
            .field("database_pool_size", &self.database_pool_size)
            .field("database_timeout_secs", &self.database_timeout_secs)
            .finish()
    }
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("database_url", &crate::store::redact_url(&self.database_url))
            .field("keys_dir", &self.keys_dir)
            .field("bind", &self.bind)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}
