//! Prometheus metrics, served as text at `GET /metrics` (on the main address, or on `--metrics-bind` alone).
//!
//! The hot path only touches prometheus atomics: counters and histograms are looked up by a label from a
//! bounded set (reason codes, limit names, route patterns), never by anything a caller chooses. Gauges that
//! describe state (the audit queue, the database pool) are read when scraped, not kept up to date.

use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::{web, HttpResponse};
use futures_util::future::LocalBoxFuture;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::audit::AuditWriter;
use crate::clock::SharedClock;
use crate::keys::live::LiveKeys;
use crate::limits::{Limit, Refusal};
use crate::oauth::{AuthFailure, OAuthError};
use crate::readmodel::ReadModel;
use crate::secevents::poll::StreamStats;
use crate::store::DbPool;

/// One server's metrics. Each server has its own registry, so that two servers in one process (the tests)
/// count apart.
pub struct Metrics {
    registry: Registry,
    tokens_issued: IntCounter,
    token_denials: IntCounterVec,
    limit_refusals: IntCounterVec,
    request_duration: HistogramVec,
    audit_batch_size: Histogram,
    audit_queue_depth: IntGauge,
    pool_connections: IntGauge,
    pool_idle: IntGauge,
    pool_max: IntGauge,
    signing_key_age: IntGauge,
    readiness_probes: IntCounter,
    client_cache_entries: IntGaugeVec,
    client_cache_lookups: IntCounterVec,
    client_cache_evictions: IntCounter,
    rate_limit_store_errors: IntCounter,
    rate_limit_store_up: IntGauge,
    security_events_last_seq: IntGauge,
    security_events_delivered: IntCounter,
    security_event_errors: IntCounter,
    /// Per receiver (a client holding `authz.events.read`: a set the operator controls, not the callers).
    receiver_acked_seq: IntGaugeVec,
    receiver_lag_events: IntGaugeVec,
    receiver_lag_seconds: IntGaugeVec,
    /// Active client secrets expiring within 7 and 30 days (`within` = `7d`, `30d`), set by the secret expiry
    /// task each tick rather than counted per scrape.
    secrets_expiring: IntGaugeVec,
}

/// What `/metrics` reads at scrape time.
#[derive(Clone)]
pub struct ScrapeSources {
    pub metrics: Arc<Metrics>,
    pub audit: AuditWriter,
    pub pool: DbPool,
    pub keys: Arc<LiveKeys>,
    pub read_model: Arc<ReadModel>,
    /// The revocation stream's counts and its receivers' positions (read every few seconds by a task).
    pub stream: Arc<StreamStats>,
    pub clock: SharedClock,
}

/// A metric's definition is fixed at compile time; a failure here is a programming error.
fn registered<M: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: M) -> M {
    registry.register(Box::new(metric.clone())).expect("metric definitions are valid and unique");
    metric
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let registry = Registry::new_custom(Some("partnergate".into()), None).expect("valid prefix");
        let opts = |name: &str, help: &str| Opts::new(name, help);
        let tokens_issued = registered(
            &registry,
            IntCounter::with_opts(opts("tokens_issued_total", "Access tokens issued")).expect("valid"),
        );
        let token_denials = registered(
            &registry,
            IntCounterVec::new(
                opts(
                    "token_requests_denied_total",
                    "Token requests refused, by reason: the invalid_client reason, the limit, or the OAuth error code",
                ),
                &["reason"],
            )
            .expect("valid"),
        );
        let limit_refusals = registered(
            &registry,
            IntCounterVec::new(
                opts("rate_limit_rejections_total", "OAuth requests refused by a limit (429), by limit"),
                &["limit"],
            )
            .expect("valid"),
        );
        let request_duration = registered(
            &registry,
            HistogramVec::new(
                HistogramOpts::new("http_request_duration_seconds", "HTTP request latency, by route pattern")
                    .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]),
                &["route", "method", "status"],
            )
            .expect("valid"),
        );
        let audit_batch_size = registered(
            &registry,
            Histogram::with_opts(
                HistogramOpts::new("audit_batch_size", "Audit events committed per group commit")
                    .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0]),
            )
            .expect("valid"),
        );
        // Every family is present from the first scrape, at zero for each label known in advance: a query or
        // an alert on a series that does not exist yet sees nothing rather than 0.
        for err in known_denials() {
            token_denials.with_label_values(&[denial_reason(&err)]);
        }
        for limit in Limit::ALL {
            limit_refusals.with_label_values(&[limit.as_str()]);
        }
        // Route, method and status are only known once requests come: the token endpoint's success stands in.
        request_duration.with_label_values(&["/oauth2/token", "POST", "200"]);
        let client_cache_entries = registered(
            &registry,
            IntGaugeVec::new(
                opts(
                    "client_cache_entries",
                    "Cached client snapshots (kind=client) and cached unknown ids (kind=unknown)",
                ),
                &["kind"],
            )
            .expect("valid"),
        );
        let client_cache_lookups = registered(
            &registry,
            IntCounterVec::new(opts("client_cache_lookups_total", "Token-path client lookups, by result"), &["result"])
                .expect("valid"),
        );
        for kind in ["client", "unknown"] {
            client_cache_entries.with_label_values(&[kind]);
        }
        for result in ["hit", "miss"] {
            client_cache_lookups.with_label_values(&[result]);
        }
        let gauge = |name: &str, help: &str| registered(&registry, IntGauge::new(name, help).expect("valid"));
        let rate_limit_store_up = gauge(
            "rate_limit_store_up",
            "1 while the shared rate-limit store (--rate-limit-store) answers, 0 while it cannot be reached, -1 \
             when none is configured",
        );
        rate_limit_store_up.set(-1);
        let per_receiver = |name: &str, help: &str| {
            registered(&registry, IntGaugeVec::new(opts(name, help), &["receiver"]).expect("valid"))
        };
        let counter =
            |name: &str, help: &str| registered(&registry, IntCounter::with_opts(opts(name, help)).expect("valid"));
        let secrets_expiring = registered(
            &registry,
            IntGaugeVec::new(
                opts(
                    "client_secrets_expiring",
                    "Active client secrets that expire within 7 or 30 days (within=7d, 30d), counted by the secret \
                     expiry task each tick (--secret-max-age-days; README, Secret expiry)",
                ),
                &["within"],
            )
            .expect("valid"),
        );
        // The ranges `registry::secret_expiry` counts; present at 0 until its first tick.
        for within in ["7d", "30d"] {
            secrets_expiring.with_label_values(&[within]);
        }
        Arc::new(Metrics {
            secrets_expiring,
            security_events_last_seq: gauge(
                "security_events_last_seq",
                "Sequence number of the newest event on the revocation stream (read every 10 s)",
            ),
            security_events_delivered: counter(
                "security_events_delivered_total",
                "Security Event Tokens this instance sent to receivers (a SET sent again counts again)",
            ),
            security_event_errors: counter(
                "security_event_errors_reported_total",
                "SETs that receivers reported they could not process (setErrs)",
            ),
            receiver_acked_seq: per_receiver(
                "event_receiver_acked_seq",
                "Last revocation stream event the receiver acknowledged (read every 10 s)",
            ),
            receiver_lag_events: per_receiver(
                "event_receiver_lag_events",
                "Revocation stream events the receiver has not acknowledged yet (read every 10 s)",
            ),
            receiver_lag_seconds: per_receiver(
                "event_receiver_lag_seconds",
                "Age of the oldest revocation stream event the receiver has not acknowledged, 0 when up to date",
            ),
            tokens_issued,
            token_denials,
            limit_refusals,
            request_duration,
            audit_batch_size,
            audit_queue_depth: gauge("audit_queue_depth", "Audit events waiting for the writer"),
            pool_connections: gauge("db_pool_connections", "Open database connections in the pool"),
            pool_idle: gauge("db_pool_idle_connections", "Idle database connections in the pool"),
            pool_max: gauge("db_pool_max_connections", "Largest number of pooled database connections"),
            signing_key_age: gauge(
                "signing_key_age_seconds",
                "Seconds since the active signing key began to sign, as of the last key load (-1 when unknown)",
            ),
            readiness_probes: registered(
                &registry,
                IntCounter::with_opts(opts(
                    "readiness_probes_total",
                    "Database probes made to answer /readyz (one at most every 250 ms, shared by every caller)",
                ))
                .expect("valid"),
            ),
            client_cache_entries,
            client_cache_lookups,
            client_cache_evictions: registered(
                &registry,
                IntCounter::with_opts(opts(
                    "client_cache_evictions_total",
                    "Cached client entries dropped to stay within the cache's bound (least recently used first)",
                ))
                .expect("valid"),
            ),
            rate_limit_store_errors: registered(
                &registry,
                IntCounter::with_opts(opts(
                    "rate_limit_store_errors_total",
                    "Token requests whose rate limits were decided by this instance alone, because the shared \
                     store could not be reached in time",
                ))
                .expect("valid"),
            ),
            rate_limit_store_up,
            registry,
        })
    }

    /// The shared rate-limit store's counter and gauge, for the store to keep up to date.
    pub fn rate_limit_store(&self) -> crate::limits::shared::StoreMetrics {
        crate::limits::shared::StoreMetrics {
            errors: self.rate_limit_store_errors.clone(),
            up: self.rate_limit_store_up.clone(),
        }
    }

    /// A token request's final answer, as the caller got it.
    pub fn token_request<T>(&self, result: &Result<T, OAuthError>) {
        match result {
            Ok(_) => self.tokens_issued.inc(),
            Err(err) => self.token_denials.with_label_values(&[denial_reason(err)]).inc(),
        }
    }

    /// Any OAuth request's final answer: counts the ones a limit refused.
    pub fn oauth_request<T>(&self, result: &Result<T, OAuthError>) {
        if let Err(OAuthError::Limited(refusal)) = result {
            self.limit_refusals.with_label_values(&[refusal.limit.as_str()]).inc();
        }
    }

    /// The secret expiry task's counts: (days, active secrets expiring within them).
    pub fn secrets_expiring(&self, counts: &[(i64, i64)]) {
        for (days, count) in counts {
            self.secrets_expiring.with_label_values(&[&format!("{days}d")]).set(*count);
        }
    }

    /// `/readyz` probed the database.
    pub fn readiness_probe(&self) {
        self.readiness_probes.inc();
    }

    /// The audit writer committed (or tried to commit) a batch of this many events.
    pub fn audit_batch(&self, events: usize) {
        self.audit_batch_size.observe(events as f64);
    }

    /// The revocation stream's figures; receivers that are gone lose their series.
    fn render_stream(&self, stream: &StreamStats) {
        use std::sync::atomic::Ordering;
        catch_up(&self.security_events_delivered, stream.delivered.load(Ordering::Relaxed));
        catch_up(&self.security_event_errors, stream.set_errors.load(Ordering::Relaxed));
        self.security_events_last_seq.set(stream.last_seq.load(Ordering::Relaxed));
        let receivers = stream.receivers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for family in [&self.receiver_acked_seq, &self.receiver_lag_events, &self.receiver_lag_seconds] {
            family.reset();
        }
        for receiver in receivers.iter() {
            let label = [receiver.client_id.as_str()];
            self.receiver_acked_seq.with_label_values(&label).set(receiver.acked_seq);
            self.receiver_lag_events.with_label_values(&label).set(receiver.lag_events);
            self.receiver_lag_seconds.with_label_values(&label).set(receiver.lag_seconds);
        }
    }

    /// The Prometheus text exposition of every metric, with the scrape-time gauges read now, from memory: a
    /// scrape reads no database (the key age comes from the key ring, reloaded whenever the keys change).
    pub fn render(&self, sources: &ScrapeSources) -> String {
        let ScrapeSources { audit, pool, keys, read_model, clock, stream, .. } = sources;
        let cache = read_model.stats();
        self.client_cache_entries.with_label_values(&["client"]).set(i64::try_from(cache.clients).unwrap_or(i64::MAX));
        self.client_cache_entries.with_label_values(&["unknown"]).set(i64::try_from(cache.unknown).unwrap_or(i64::MAX));
        // Counters kept by the read model, brought up to its totals.
        catch_up(&self.client_cache_lookups.with_label_values(&["hit"]), cache.hits);
        catch_up(&self.client_cache_lookups.with_label_values(&["miss"]), cache.misses);
        catch_up(&self.client_cache_evictions, cache.evictions);
        self.audit_queue_depth.set(i64::try_from(audit.queued()).unwrap_or(i64::MAX));
        self.render_stream(stream);
        let since = keys.current().active_since();
        self.signing_key_age.set(since.map_or(-1, |since| (clock.now() - since).num_seconds().max(0)));
        let state = pool.state();
        self.pool_connections.set(i64::from(state.connections));
        self.pool_idle.set(i64::from(state.idle_connections));
        self.pool_max.set(i64::from(pool.max_size()));
        let mut text = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut text).expect("text encoding into a Vec");
        String::from_utf8(text).expect("the text format is UTF-8")
    }
}

/// Brings a counter up to a total kept elsewhere (totals only grow).
fn catch_up(counter: &IntCounter, total: u64) {
    counter.inc_by(total.saturating_sub(counter.get()));
}

/// A bounded label: the audit reason code for authentication failures and limits, else the OAuth error code.
fn denial_reason(err: &OAuthError) -> &'static str {
    match err {
        OAuthError::InvalidClient { reason, .. } => reason.as_str(),
        OAuthError::Limited(refusal) => refusal.limit.as_str(),
        other => other.code(),
    }
}

/// One error of each kind a token request can be denied with, for the labels known in advance.
fn known_denials() -> impl Iterator<Item = OAuthError> {
    let codes = [
        OAuthError::InvalidRequest(String::new()),
        OAuthError::UnauthorizedClient(String::new()),
        OAuthError::UnsupportedGrantType(String::new()),
        OAuthError::InvalidScope(String::new()),
        OAuthError::InvalidTarget(String::new()),
        OAuthError::TemporarilyUnavailable(String::new()),
        OAuthError::ServerError(String::new()),
    ];
    let clients = AuthFailure::ALL.map(|reason| OAuthError::InvalidClient { reason, basic_challenge: false });
    let limits = Limit::ALL.map(|limit| OAuthError::Limited(Refusal { limit, retry_after: Default::default() }));
    codes.into_iter().chain(clients).chain(limits)
}

/// `GET /metrics`.
pub async fn scrape(sources: web::Data<ScrapeSources>) -> HttpResponse {
    let sources = sources.into_inner();
    let text = web::block(move || sources.metrics.render(&sources)).await;
    match text {
        Ok(text) => HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(text),
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

/// Middleware: observes each request's latency under its route pattern (`/admin/v1/clients/{id}`, never the
/// raw path); requests that match no route share the label `unmatched`.
pub fn observe<S, B>(
    metrics: &Arc<Metrics>,
    req: ServiceRequest,
    service: &S,
) -> LocalBoxFuture<'static, Result<ServiceResponse<B>, actix_web::Error>>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
    B: 'static,
{
    // Latency, measured on real time, not the server's clock.
    let started = Instant::now();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".to_string());
    let method = method_label(req.method());
    let metrics = metrics.clone();
    let response = service.call(req);
    Box::pin(async move {
        let response = response.await?;
        metrics
            .request_duration
            .with_label_values(&[route.as_str(), method, response.status().as_str()])
            .observe(started.elapsed().as_secs_f64());
        Ok(response)
    })
}

/// Methods outside the standard set share one label, so that a caller cannot grow the label set.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
