//! Prometheus metrics, served as text at `GET /metrics` (on the main address, or on `--metrics-bind` alone).
//!
//! The hot path only touches prometheus atomics: counters and histograms are looked up by a label from a
//! bounded set (reason codes, limit names, route patterns), never by anything a caller chooses. Gauges that
//! describe state (the audit queue, the database pool) are read when scraped, not kept up to date.
//!
//! This module holds the counters, so that any layer can count; what the token path counts is in
//! `oauth/metrics.rs`, and the scrape (reading the gauges from every module, rendering, the middleware) in
//! `http/metrics.rs`.

use std::sync::Arc;

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

use crate::limits::Limit;

/// One server's metrics. Each server has its own registry, so that two servers in one process (the tests)
/// count apart.
pub struct Metrics {
    pub(crate) registry: Registry,
    pub(crate) tokens_issued: IntCounter,
    pub(crate) token_denials: IntCounterVec,
    pub(crate) limit_refusals: IntCounterVec,
    pub(crate) request_duration: HistogramVec,
    pub(crate) audit_batch_size: Histogram,
    pub(crate) audit_queue_depth: IntGauge,
    pub(crate) pool_connections: IntGauge,
    pub(crate) pool_idle: IntGauge,
    pub(crate) pool_max: IntGauge,
    pub(crate) signing_key_age: IntGauge,
    pub(crate) readiness_probes: IntCounter,
    pub(crate) client_cache_entries: IntGaugeVec,
    pub(crate) client_cache_lookups: IntCounterVec,
    pub(crate) client_cache_evictions: IntCounter,
    pub(crate) rate_limit_store_errors: IntCounter,
    pub(crate) rate_limit_store_up: IntGauge,
    pub(crate) security_events_last_seq: IntGauge,
    pub(crate) security_events_delivered: IntCounter,
    pub(crate) security_event_errors: IntCounter,
    /// Per receiver (a client holding `authz.events.read`: a set the operator controls, not the callers).
    pub(crate) receiver_acked_seq: IntGaugeVec,
    pub(crate) receiver_lag_events: IntGaugeVec,
    pub(crate) receiver_lag_seconds: IntGaugeVec,
    /// Active client secrets expiring within 7 and 30 days (`within` = `7d`, `30d`), set by the secret expiry
    /// task each tick rather than counted per scrape.
    pub(crate) secrets_expiring: IntGaugeVec,
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
        // an alert on a series that does not exist yet sees nothing rather than 0 (the token denials' labels
        // are registered by the token service, which knows them: `oauth/metrics.rs`).
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
}
