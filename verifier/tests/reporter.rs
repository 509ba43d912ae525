//! The usage reporter against a small local issuer: the batch's shape (the server's contract), batches of at
//! most 1000, a new token on 401, no retry of a 400, retries with backoff on 5xx, a bounded queue that drops the
//! oldest, and a flush on shutdown.

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use partnergate_verifier::clock::ManualClock;
use partnergate_verifier::*;
use support::*;

fn record(n: u64) -> UsageRecord {
    UsageRecord {
        time: Duration::from_millis(1_796_666_400_123 + n),
        method: "GET".into(),
        route: "/orders/{id}".into(),
        status: 200,
        latency_ms: 3,
        client_id: "pgc_1".into(),
        partner_id: "acme".into(),
        jti: format!("jti-{n}"),
    }
}

fn config() -> ReporterConfig {
    let mut config = ReporterConfig::new("pgc_reporter", "pgs_secret");
    config.flush_interval = Duration::from_millis(50);
    config.max_backoff = Duration::from_millis(200);
    config.clock = Arc::new(ManualClock::at(Duration::from_secs(1_796_666_400)));
    config
}

fn discovery(issuer: &FakeIssuer) -> Arc<Discovery> {
    Arc::new(Discovery::new(&issuer.url, None, Duration::from_secs(5)))
}

fn records_received(issuer: &FakeIssuer) -> usize {
    let reports = issuer.state.reports.lock().unwrap();
    reports.iter().map(|(_, body)| body["records"].as_array().unwrap().len()).sum()
}

#[tokio::test]
async fn batches_follow_the_contract_and_flush_on_shutdown() {
    let issuer = FakeIssuer::start().await;
    let mut config = config();
    config.flush_interval = Duration::from_secs(3600);
    let (reporter, task) = UsageReporter::start(discovery(&issuer), config);
    for n in 0..2_500 {
        reporter.record(record(n));
    }
    assert!(issuer.state.reports.lock().unwrap().is_empty(), "nothing before the flush interval");
    task.shutdown().await;

    let reports = issuer.state.reports.lock().unwrap();
    let sizes: Vec<usize> = reports.iter().map(|(_, body)| body["records"].as_array().unwrap().len()).collect();
    assert_eq!(sizes, vec![1000, 1000, 500]);
    let (authorization, body) = &reports[0];
    assert_eq!(authorization, "Bearer report-token-0");
    assert_eq!(
        body["records"][0],
        serde_json::json!({
            "time": "2026-12-07T18:00:00.123Z", "method": "GET", "route": "/orders/{id}", "status": 200,
            "latency_ms": 3, "client_id": "pgc_1", "partner_id": "acme", "jti": "jti-0",
        })
    );
    assert_eq!(reporter.stats(), ReporterStats { queued: 0, sent: 2_500, dropped: 0, rejected: 0 });
    assert_eq!(issuer.state.token_hits.load(Ordering::SeqCst), 1, "one token for all batches");
}

#[tokio::test]
async fn a_refused_token_is_renewed_an_invalid_batch_dropped_and_failures_retried() {
    let issuer = FakeIssuer::start().await;
    issuer.state.report_statuses.lock().unwrap().extend([401, 400, 503, 500]);
    let (reporter, task) = UsageReporter::start(discovery(&issuer), config());

    reporter.record(record(1));
    // 401: a new token, the same batch again, which the server then refuses as invalid (400): not retried.
    until(Duration::from_secs(5), "the first batch is refused", || reporter.stats().rejected == 1).await;
    assert_eq!(issuer.state.token_hits.load(Ordering::SeqCst), 2);
    let reports = issuer.state.reports.lock().unwrap().clone();
    assert_eq!(reports.len(), 2);
    assert_eq!((reports[0].0.as_str(), reports[1].0.as_str()), ("Bearer report-token-0", "Bearer report-token-1"));

    // 503, 500: retried with backoff until taken.
    reporter.record(record(2));
    until(Duration::from_secs(5), "the second batch is taken", || reporter.stats().sent == 1).await;
    let reports = issuer.state.reports.lock().unwrap().clone();
    assert_eq!(reports.len(), 5);
    assert!(reports[2..].iter().all(|(_, body)| body["records"][0]["jti"] == "jti-2"));
    task.shutdown().await;
    assert_eq!(reporter.stats(), ReporterStats { queued: 0, sent: 1, dropped: 0, rejected: 1 });
}

#[tokio::test]
async fn a_full_queue_drops_the_oldest_and_says_how_many() {
    let issuer = FakeIssuer::start().await;
    let mut config = config();
    config.queue_capacity = 10;
    config.flush_interval = Duration::from_secs(3600);
    let (reporter, task) = UsageReporter::start(discovery(&issuer), config);
    for n in 0..25 {
        reporter.record(record(n));
    }
    assert_eq!(reporter.stats().dropped, 15);
    assert_eq!(reporter.stats().queued, 10);
    task.shutdown().await;
    assert_eq!(issuer.state.reports.lock().unwrap()[0].1["records"][0]["jti"], "jti-15", "the newest ten were kept");
    assert_eq!(records_received(&issuer), 10);
}

#[tokio::test]
async fn an_unreachable_request_log_costs_the_records_at_shutdown_not_the_shutdown_itself() {
    let issuer = FakeIssuer::start().await;
    issuer.state.report_statuses.lock().unwrap().extend([503; 100]);
    let mut config = config();
    config.shutdown_timeout = Duration::from_millis(500);
    let (reporter, task) = UsageReporter::start(discovery(&issuer), config);
    for n in 0..3 {
        reporter.record(record(n));
    }
    until(Duration::from_secs(5), "a first attempt", || !issuer.state.reports.lock().unwrap().is_empty()).await;
    let started = std::time::Instant::now();
    task.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(2), "shutdown took {:?}", started.elapsed());
    assert_eq!(reporter.stats(), ReporterStats { queued: 0, sent: 0, dropped: 3, rejected: 0 });
}
