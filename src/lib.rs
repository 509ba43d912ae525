//! partnergate: an OAuth2 client-credentials authorization server for partner integrations.
//!
//! Layers, with data flowing one way: `http` and `cli` → `oauth`, `registry`, `audit`, `keys` → `store`.
//! [`start`] builds and starts the server, for `main` and for the integration tests alike.

pub mod audit;
pub mod auth_methods;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console_auth;
pub mod credentials;
pub mod http;
pub mod insecure;
pub mod keys;
pub mod limits;
pub mod metrics;
pub mod oauth;
pub mod readmodel;
pub mod redact;
pub mod registry;
pub mod request_log;
pub mod secevents;
pub mod shutdown;
pub mod store;
pub mod stream;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpServer};

use audit::{AuditWriter, WriterOptions};
use config::ServerConfig;
use http::AppState;
use keys::kek::{KeyEncryptionKey, WhenMissing};
use oauth::TokenService;
use readmodel::listener::FeedListener;
use readmodel::ReadModel;
use registry::clients::ClientLimits;
use registry::live_keys::LiveKeys;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Keys(#[from] keys::KeyError),
    #[error(transparent)]
    Registry(#[from] registry::RegistryError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("rate-limit store {0}")]
    RateLimitStore(String),
}

/// A started server: its address, and the means to stop it with the audit queue flushed.
pub struct RunningServer {
    pub addr: SocketAddr,
    handle: actix_web::dev::ServerHandle,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    audit_thread: std::thread::JoinHandle<()>,
    maintenance: tokio::task::JoinHandle<()>,
    throttle_summaries: ThrottleSummaries,
    key_schedule: tokio::task::JoinHandle<()>,
    secret_expiry: tokio::task::JoinHandle<()>,
    feed: FeedListener,
    read_model: Arc<ReadModel>,
    keys: Arc<LiveKeys>,
    changes: Arc<dyn store::changes::ChangeSink>,
    metrics_server: Option<MetricsServer>,
    stream: Arc<stream::StreamSignal>,
    stream_observer: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// Serves until SIGTERM or SIGINT (see [`shutdown`]), then flushes the audit queue.
    pub async fn wait(self) -> std::io::Result<()> {
        let stream = self.stream.clone();
        let on_signal = tokio::spawn(shutdown::on_signal(self.handle.clone(), move || stream.close()));
        let result = self.server.await.unwrap_or_else(|err| Err(std::io::Error::other(err)));
        on_signal.abort();
        self.maintenance.abort();
        self.stream_observer.abort();
        self.throttle_summaries.finish().await;
        self.key_schedule.abort();
        self.secret_expiry.abort();
        if let Some(metrics) = self.metrics_server {
            metrics.stop().await;
        }
        finish_audit(self.audit_thread).await;
        stop_feed(self.feed).await;
        result
    }

    /// Stops accepting requests, lets the ones in flight finish, and flushes the audit queue.
    pub async fn stop(self) {
        // Long polls answer at once instead of holding the graceful stop for their full wait.
        self.stream.close();
        self.handle.stop(true).await;
        let _ = self.server.await;
        self.maintenance.abort();
        self.stream_observer.abort();
        self.throttle_summaries.finish().await;
        self.key_schedule.abort();
        self.secret_expiry.abort();
        if let Some(metrics) = self.metrics_server {
            metrics.stop().await;
        }
        finish_audit(self.audit_thread).await;
        stop_feed(self.feed).await;
    }

    /// Where `/metrics` listens when it has its own address (`--metrics-bind`).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_server.as_ref().map(|metrics| metrics.addr)
    }

    /// This instance's registry cache, for tests and diagnostics.
    pub fn read_model(&self) -> &Arc<ReadModel> {
        &self.read_model
    }

    /// This instance's signing keys.
    pub fn keys(&self) -> &Arc<LiveKeys> {
        &self.keys
    }

    /// Everything on this instance that hears of committed changes (the registry cache, the key ring).
    pub fn changes(&self) -> &Arc<dyn store::changes::ChangeSink> {
        &self.changes
    }
}

/// The task that audits the throttle's refusals per minute, and the service for the last of them at shutdown.
struct ThrottleSummaries {
    task: tokio::task::JoinHandle<()>,
    tokens: TokenService,
}

impl ThrottleSummaries {
    fn start(tokens: &TokenService) -> Self {
        ThrottleSummaries { task: tokio::spawn(tokens.clone().summarise_throttled_refusals()), tokens: tokens.clone() }
    }

    /// Records what is left, before the audit writer is flushed (which waits for every handle to be dropped).
    async fn finish(self) {
        self.task.abort();
        let _ = self.task.await;
        self.tokens.record_throttle_summaries(true).await;
    }
}

async fn stop_feed(feed: FeedListener) {
    let _ = tokio::task::spawn_blocking(move || feed.stop()).await;
}

/// The writer thread ends once every handle is dropped with the server's workers; its last batch is the flush.
async fn finish_audit(thread: std::thread::JoinHandle<()>) {
    let joined = tokio::task::spawn_blocking(move || thread.join());
    if tokio::time::timeout(Duration::from_secs(30), joined).await.is_err() {
        log::error!("the audit writer did not finish within 30 s");
    }
}

/// Connects to the database, runs migrations, loads (or creates) the signing keys and starts listening.
pub async fn start(config: ServerConfig) -> Result<RunningServer, StartError> {
    // Before the database: a bad certificate or key is the operator's to fix, nothing else has started.
    let tls = config.tls.as_ref().map(tls::server_config).transpose()?;
    let setup = config.clone();
    let clock = config.clock.clone();
    let setup_clock = clock.clone();
    let stream_signal = stream::StreamSignal::new();
    let setup_signal = stream_signal.clone();
    let (pool, live_keys, kek, read_model, changes, feed) =
        tokio::task::spawn_blocking(move || -> Result<_, StartError> {
            // The keys directory first: a refused one then exits before any pool thread is inside libpq.
            let (backend, _) = store::parse_database_url(&setup.database_url)?;
            let directory = keys::read_dir_keys(&setup.keys_dir)?;
            let when_missing = match backend {
                store::Backend::Sqlite => WhenMissing::Generate,
                store::Backend::Postgres => WhenMissing::Refuse,
            };
            let kek = Arc::new(KeyEncryptionKey::load(&setup.kek, &setup.keys_dir, when_missing)?);
            let pool = store::connect(&setup.database_url, &setup.pool)?;
            // Nothing caches the registry yet: the changes published here need applying nowhere.
            let mut conn = store::Tx::new(pool.get().map_err(store::StoreError::from)?);
            store::run_migrations(&mut conn)?;
            for key in registry::signing_keys::initialize(&mut conn, &kek, &directory, setup_clock.now())? {
                log::info!("signing key {} ({}) stored as {}", key.kid, key.alg, key.state.as_str());
            }
            if registry::bootstrap::admin_client_ids(&mut conn)?.is_empty() {
                log::info!(
                    "no admin client yet: `partnergate admin bootstrap` (with this server's settings) creates the \
                     operator's admin client and prints its secret once; sign in to the console with it"
                );
            }
            drop(conn);
            let live_keys = LiveKeys::stored(pool.clone(), kek.clone())?;
            let read_model = ReadModel::new(pool.clone(), setup_clock);
            let changes: Arc<dyn store::changes::ChangeSink> =
                Arc::new(store::changes::Sinks(vec![read_model.clone(), live_keys.clone(), setup_signal]));
            let feed =
                FeedListener::start(&setup.database_url, pool.clone(), setup.pool.connect_timeout, changes.clone())?;
            Ok((pool, live_keys, kek, read_model, changes, feed))
        })
        .await
        .expect("server setup panicked")?;

    let metrics = metrics::Metrics::new();
    let local_rates = limits::RateLimits::new(config.client_rate_limit_per_minute, clock.clone());
    let rates = match &config.rate_limit_store {
        None => limits::Rates::Local(local_rates),
        Some(store) => {
            let shared = limits::shared::SharedRateLimits::connect(store, local_rates, metrics.rate_limit_store());
            limits::Rates::Shared(shared.await.map_err(StartError::RateLimitStore)?)
        }
    };
    let limits = Arc::new(limits::Limits {
        rates,
        quota: Arc::new(limits::QuotaBook::default()),
        throttle: limits::AuthThrottle::new(config.throttle, clock.clone()),
    });
    let (audit_writer, audit_thread) = AuditWriter::start(
        pool.clone(),
        WriterOptions::default(),
        // Everything that hears changes: a revocation at `/oauth2/revoke` also wakes this instance's long polls.
        changes.clone(),
        limits.quota.clone(),
        metrics.clone(),
    );
    let maintenance = tokio::spawn(maintenance(
        pool.clone(),
        config.audit_retention_days,
        config.request_log_retention,
        config.token.max_lifetime_secs,
        clock.clone(),
    ));
    let key_manager = keys::KeyManager { kek, policy: config.key_policy, clock: clock.clone() };
    let registry = registry::Registry::new(pool.clone()).with_sinks(changes.clone()).with_keys(key_manager);
    let key_schedule = tokio::spawn(registry::key_schedule::run(
        registry.clone(),
        config.key_schedule,
        config.key_schedule_tick,
        live_keys.clone(),
    ));
    let tokens = TokenService::new(
        read_model.clone(),
        live_keys.clone(),
        Arc::new(config.token.clone()),
        clock.clone(),
        audit_writer.clone(),
        limits,
        metrics.clone(),
        Arc::new(oauth::assertion::Assertions::new(
            pool.clone(),
            &config.token,
            config.allow_private_key_urls,
            clock.clone(),
        )),
    );
    let secret_expiry =
        tokio::spawn(secret_expiry(registry.clone(), clock.clone(), config.secret_expiry_tick, metrics.clone()));
    let throttle_summaries = ThrottleSummaries::start(&tokens);
    let stream = stream::StreamService::new(
        pool.clone(),
        live_keys.clone(),
        config.token.issuer.clone(),
        clock.clone(),
        stream_signal.clone(),
    );
    let stream_observer = tokio::spawn(stream.clone().observe_receivers(Duration::from_secs(10)));
    let scrape = web::Data::new(http::metrics::ScrapeSources {
        metrics: metrics.clone(),
        audit: audit_writer.clone(),
        pool: pool.clone(),
        keys: live_keys.clone(),
        read_model: read_model.clone(),
        stream: stream.stats().clone(),
        clock,
    });
    let state = AppState {
        registry: registry.clone(),
        tokens,
        audit: audit_writer,
        jwks_cache_control: actix_web::http::header::HeaderValue::from_str(&format!(
            "public, max-age={}",
            config.jwks_max_age_secs
        ))
        .expect("digits and ASCII are a valid header value"),
        max_body_bytes: config.max_body_bytes,
        client_limits: ClientLimits {
            max_token_lifetime_secs: config.token.max_lifetime_secs,
            secret_policy: config.secret_policy,
        },
        readiness: http::Readiness::new(pool.clone(), metrics.clone()),
        stream,
        console: console_auth::ConsoleAuth::new(registry.clone(), config.console.clone(), config.clock.clone()),
        clock: config.clock.clone(),
    };
    let body_read_timeout = config.body_read_timeout;
    let trusted_proxies = web::Data::new(config.trusted_proxies.clone());
    // `/metrics` is on the main address unless it has an address of its own.
    let scrape_here = config.metrics_bind.is_none().then(|| scrape.clone());
    let mut server = HttpServer::new(move || {
        let observed = metrics.clone();
        let scrape_here = scrape_here.clone();
        App::new()
            .app_data(web::Data::new(state.clone()))
            .app_data(trusted_proxies.clone())
            .wrap_fn(move |req, service| http::body_timeout::limit(req, service, body_read_timeout))
            .wrap_fn(http::guard::check_head)
            .wrap_fn(http::errors::shape)
            .wrap_fn(http::request_id::assign)
            .wrap_fn(http::headers::secure)
            .wrap_fn(http::access_log::record)
            .wrap_fn(move |req, service| http::metrics::observe(&observed, req, service))
            .configure(|cfg| {
                if let Some(scrape) = scrape_here {
                    cfg.app_data(scrape).route("/metrics", web::get().to(http::metrics::scrape));
                }
                http::routes(cfg)
            })
    })
    // `RunningServer::wait` handles SIGTERM and SIGINT; actix-web's own handling stops at once on SIGINT.
    .disable_signals()
    .shutdown_timeout(shutdown::DEADLINE.as_secs())
    .max_connections(config.max_connections);
    if let Some(workers) = config.workers {
        server = server.workers(workers.max(1));
    }
    let server = match tls {
        Some(tls) => server.bind_rustls_0_23(config.bind, tls),
        None => server.bind(config.bind),
    }
    .map_err(|source| StartError::Bind { addr: config.bind, source })?;
    let addr = server.addrs()[0];
    let scheme = if config.tls.is_some() { "https" } else { "http" };
    let server = server.run();
    let handle = server.handle();
    let server = tokio::spawn(server);
    log::info!(
        "partnergate listening on {scheme}://{addr} (issuer {}); web console at {scheme}://{addr}/console",
        config.token.issuer
    );
    let metrics_server = match config.metrics_bind {
        Some(bind) => Some(metrics_server(bind, scrape)?),
        None => None,
    };
    Ok(RunningServer {
        addr,
        handle,
        server,
        audit_thread,
        maintenance,
        throttle_summaries,
        key_schedule,
        secret_expiry,
        feed,
        read_model,
        keys: live_keys,
        changes,
        metrics_server,
        stream: stream_signal,
        stream_observer,
    })
}

/// `/metrics` alone on its own address (`--metrics-bind`), so that it need not be reachable from the outside.
struct MetricsServer {
    addr: SocketAddr,
    handle: actix_web::dev::ServerHandle,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl MetricsServer {
    /// Stopped before the audit writer is flushed: it holds a writer handle to read the queue depth.
    async fn stop(self) {
        self.handle.stop(true).await;
        let _ = self.server.await;
    }
}

fn metrics_server(
    bind: SocketAddr,
    scrape: web::Data<http::metrics::ScrapeSources>,
) -> Result<MetricsServer, StartError> {
    let server = HttpServer::new(move || {
        App::new().app_data(scrape.clone()).route("/metrics", web::get().to(http::metrics::scrape))
    })
    .disable_signals()
    .workers(1)
    .bind(bind)
    .map_err(|source| StartError::Bind { addr: bind, source })?;
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    log::info!("metrics on http://{addr}/metrics");
    Ok(MetricsServer { addr, handle, server: tokio::spawn(server) })
}

/// The secret expiry task of every instance: each tick it refreshes the expiring-secrets metric (two indexed
/// counts, so a scrape reads no database), and the instance holding the lease writes the notices that are due.
async fn secret_expiry(
    service: registry::Registry,
    clock: clock::SharedClock,
    every: Duration,
    metrics: Arc<metrics::Metrics>,
) {
    let holder = format!("instance-{}", credentials::random_base62(12));
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let (clock, holder) = (clock.clone(), holder.clone());
        let outcome = service.run(move |tx| registry::secret_expiry::tick(tx, &clock, &holder, every)).await;
        match outcome {
            Ok(tick) => {
                metrics.secrets_expiring(&tick.expiring);
                if tick.notices > 0 {
                    log::info!("secret expiry: wrote {} notice(s)", tick.notices);
                }
            }
            Err(err) => log::warn!("secret expiry task failed: {err}"),
        }
    }
}

/// Hourly housekeeping (and once at start): forget revoked `jti`s of expired tokens and old security events,
/// create the audit trail's partitions ahead (PostgreSQL), apply the audit retention and the request log's.
async fn maintenance(
    pool: store::DbPool,
    audit_retention_days: u32,
    request_log_retention: request_log::retention::Retention,
    max_token_lifetime_secs: i64,
    clock: clock::SharedClock,
) {
    let mut interval = tokio::time::interval(Duration::from_secs(3600));
    loop {
        interval.tick().await;
        let (pool, now) = (pool.clone(), clock.now());
        let outcome = tokio::task::spawn_blocking(move || -> Result<_, registry::RegistryError> {
            let mut conn = pool.get()?;
            let tokens = registry::revocation::prune_expired(&mut conn, now)?;
            let security_events = secevents::prune(&mut conn, now, max_token_lifetime_secs)?;
            if security_events > 0 {
                log::info!("maintenance: pruned {security_events} security event(s) past their retention");
            }
            store::used_assertions::prune(&mut conn, now)?;
            // Console sessions past their lifetime, and sign-ins abandoned at the provider.
            store::console::prune(&mut conn, now, now - chrono::Duration::hours(1))?;
            // Every listener has read a change within a second; an hour is room for a stalled poller.
            store::changes::prune(&mut conn, now - chrono::Duration::hours(1))?;
            // Yesterday's count stays readable; older days are in the audit trail.
            store::usage::prune_before(&mut conn, &store::usage::day_of(now - chrono::Duration::days(2)))
                .map_err(store::StoreError::from)?;
            for table in [&store::partitions::AUDIT_EVENTS, &store::partitions::REQUEST_LOG] {
                store::partitions::ensure_ahead(&mut conn, table, now.date())?;
            }
            let events = if audit_retention_days > 0 {
                registry::audit_trail::prune_older_than(&mut conn, audit_retention_days, now)?
            } else {
                0
            };
            let requests = request_log::retention::prune(&mut conn, request_log_retention, now)?;
            Ok((tokens, events, requests))
        })
        .await;
        match outcome {
            Ok(Ok((tokens, events, requests))) => log::info!(
                "maintenance: pruned {tokens} revoked token id(s), {events} audit event(s), {} request log \
                 record(s), {} request log aggregate(s)",
                requests.records,
                requests.aggregates
            ),
            Ok(Err(err)) => log::warn!("maintenance failed: {err}"),
            Err(err) => log::warn!("maintenance task failed: {err}"),
        }
    }
}
