//! Usage reports: one record per request into a bounded queue (the request never waits; when it is full the
//! oldest records go, counted), sent in batches by a background task to the issuer's request log,
//! authenticated with the resource server's own client credentials (scope `authz.usage.report`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::clock::{rfc3339_millis, Clock, SystemClock};
use crate::discovery::Discovery;
use crate::token_source::ClientToken;

/// The reserved scope a reporter's token must hold.
pub const USAGE_REPORT_SCOPE: &str = "authz.usage.report";
/// The server takes at most this many records per batch.
pub const MAX_BATCH: usize = 1000;

/// One request as the request log keeps it: the route pattern, never the raw path or query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRecord {
    /// When the request arrived, since the Unix epoch.
    pub time: Duration,
    pub method: String,
    pub route: String,
    pub status: u16,
    pub latency_ms: u64,
    pub client_id: String,
    pub partner_id: String,
    pub jti: String,
}

#[derive(Serialize)]
struct WireRecord<'a> {
    time: String,
    method: &'a str,
    route: &'a str,
    status: u16,
    latency_ms: u64,
    client_id: &'a str,
    partner_id: &'a str,
    jti: &'a str,
}

#[derive(Serialize)]
struct Batch<'a> {
    records: Vec<WireRecord<'a>>,
}

/// How the reporter sends.
#[derive(Clone)]
pub struct ReporterConfig {
    /// The resource server's own client, holding `authz.usage.report`.
    pub client_id: String,
    pub client_secret: String,
    /// Where batches go; default `{issuer}/admin/v1/requests`.
    pub endpoint: Option<String>,
    /// The audience to ask for; default the admin API's, from the metadata (`partnergate_admin_audience`).
    pub audience: Option<String>,
    pub queue_capacity: usize,
    /// Records per batch, at most [`MAX_BATCH`].
    pub batch_size: usize,
    /// How long records wait for a batch to fill.
    pub flush_interval: Duration,
    /// The longest wait between retries.
    pub max_backoff: Duration,
    /// How long [`ReporterTask::shutdown`] keeps trying to send what is queued.
    pub shutdown_timeout: Duration,
    pub clock: Arc<dyn Clock>,
}

impl ReporterConfig {
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        ReporterConfig {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            endpoint: None,
            audience: None,
            queue_capacity: 100_000,
            batch_size: MAX_BATCH,
            flush_interval: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(5),
            clock: Arc::new(SystemClock),
        }
    }
}

impl std::fmt::Debug for ReporterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReporterConfig").field("client_id", &self.client_id).field("endpoint", &self.endpoint).finish()
    }
}

/// What the reporter has done.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReporterStats {
    pub queued: usize,
    /// Accepted by the server.
    pub sent: u64,
    /// Dropped from a full queue, or unsent at shutdown.
    pub dropped: u64,
    /// Refused by the server as invalid (`400`), not retried.
    pub rejected: u64,
}

struct Shared {
    queue: Mutex<VecDeque<UsageRecord>>,
    capacity: usize,
    dropped: AtomicU64,
    sent: AtomicU64,
    rejected: AtomicU64,
    closing: AtomicBool,
    wake: Notify,
}

/// The request path's handle: [`UsageReporter::record`] never waits. Cheap to clone.
#[derive(Clone)]
pub struct UsageReporter {
    shared: Arc<Shared>,
    clock: Arc<dyn Clock>,
}

/// The background task's owner: [`ReporterTask::shutdown`] sends what is queued and stops it. Dropped without
/// that, the task is told to flush and stop on its own.
pub struct ReporterTask {
    shared: Arc<Shared>,
    handle: Option<JoinHandle<()>>,
}

impl UsageReporter {
    /// Starts the sending task on the current tokio runtime.
    pub fn start(discovery: Arc<Discovery>, config: ReporterConfig) -> (UsageReporter, ReporterTask) {
        let shared = Arc::new(Shared {
            queue: Mutex::new(VecDeque::new()),
            capacity: config.queue_capacity.max(1),
            dropped: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            wake: Notify::new(),
        });
        let reporter = UsageReporter { shared: shared.clone(), clock: config.clock.clone() };
        let token = ClientToken::new(
            discovery.clone(),
            config.clock.clone(),
            &config.client_id,
            &config.client_secret,
            USAGE_REPORT_SCOPE,
        );
        let sender = Sender { shared: shared.clone(), discovery, config, token };
        let handle = tokio::spawn(sender.run());
        (reporter, ReporterTask { shared, handle: Some(handle) })
    }

    /// The clock the records' times come from.
    pub fn now(&self) -> Duration {
        self.clock.now()
    }

    pub fn record(&self, record: UsageRecord) {
        let mut queue = self.shared.queue.lock().expect("usage queue lock");
        if queue.len() >= self.shared.capacity {
            queue.pop_front();
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
        queue.push_back(record);
    }

    pub fn stats(&self) -> ReporterStats {
        ReporterStats {
            queued: self.shared.queue.lock().expect("usage queue lock").len(),
            sent: self.shared.sent.load(Ordering::Relaxed),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
            rejected: self.shared.rejected.load(Ordering::Relaxed),
        }
    }
}

impl ReporterTask {
    /// Sends what is queued (within the configured shutdown timeout) and stops the task.
    pub async fn shutdown(mut self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        self.shared.wake.notify_one();
        if let Some(handle) = self.handle.take() {
            let _ = handle.await;
        }
    }
}

impl Drop for ReporterTask {
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        self.shared.wake.notify_one();
    }
}

/// What sending one batch came to.
enum Outcome {
    Done,
    /// The token was refused: fetch another and try again.
    NewToken,
    Retry(String),
}

struct Sender {
    shared: Arc<Shared>,
    discovery: Arc<Discovery>,
    config: ReporterConfig,
    token: ClientToken,
}

impl Sender {
    async fn run(mut self) {
        let batch_size = self.config.batch_size.clamp(1, MAX_BATCH);
        loop {
            let closing = self.shared.closing.load(Ordering::SeqCst);
            if !closing {
                tokio::select! {
                    _ = self.shared.wake.notified() => {}
                    _ = tokio::time::sleep(self.config.flush_interval) => {}
                }
            }
            let closing = self.shared.closing.load(Ordering::SeqCst);
            let deadline = closing.then(|| tokio::time::Instant::now() + self.config.shutdown_timeout);
            loop {
                let batch: Vec<UsageRecord> = {
                    let mut queue = self.shared.queue.lock().expect("usage queue lock");
                    let n = queue.len().min(batch_size);
                    queue.drain(..n).collect()
                };
                if batch.is_empty() {
                    break;
                }
                if !self.deliver(&batch, deadline).await {
                    // Out of time at shutdown: what is left is lost, and counted.
                    let left = self.shared.queue.lock().expect("usage queue lock").drain(..).count();
                    self.shared.dropped.fetch_add((batch.len() + left) as u64, Ordering::Relaxed);
                    return;
                }
            }
            if closing {
                return;
            }
        }
    }

    /// Sends `batch` until the server has taken or refused it, backing off between tries; `false` when the
    /// shutdown `deadline` passed first.
    async fn deliver(&mut self, batch: &[UsageRecord], mut deadline: Option<tokio::time::Instant>) -> bool {
        let mut backoff = Duration::from_millis(200);
        let mut renewed = false;
        loop {
            let reason = match self.send_once(batch).await {
                Outcome::Done => return true,
                Outcome::NewToken if !renewed => {
                    self.token.invalidate();
                    renewed = true;
                    continue;
                }
                Outcome::NewToken => {
                    self.token.invalidate();
                    "the request log refused a fresh token".to_string()
                }
                Outcome::Retry(reason) => reason,
            };
            renewed = false;
            if deadline.is_none() && self.shared.closing.load(Ordering::SeqCst) {
                deadline = Some(tokio::time::Instant::now() + self.config.shutdown_timeout);
            }
            let until = tokio::time::Instant::now() + backoff;
            if deadline.is_some_and(|deadline| until > deadline) {
                log::warn!("usage report: giving up at shutdown ({reason}); {} records lost", batch.len());
                return false;
            }
            log::warn!("usage report: {reason}; retrying in {backoff:?}");
            if deadline.is_some() {
                tokio::time::sleep_until(until).await;
            } else {
                // A shutdown cuts the wait short, so that its deadline applies from then on.
                tokio::select! {
                    _ = tokio::time::sleep_until(until) => {}
                    _ = self.shared.wake.notified() => {}
                }
            }
            backoff = (backoff * 2).min(self.config.max_backoff);
        }
    }

    async fn send_once(&mut self, batch: &[UsageRecord]) -> Outcome {
        let token = match self.token().await {
            Ok(token) => token,
            Err(reason) => return Outcome::Retry(reason),
        };
        let endpoint = match &self.config.endpoint {
            Some(endpoint) => endpoint.clone(),
            None => format!("{}/admin/v1/requests", self.discovery.issuer()),
        };
        let body = Batch {
            records: batch
                .iter()
                .map(|r| WireRecord {
                    time: rfc3339_millis(r.time),
                    method: &r.method,
                    route: &r.route,
                    status: r.status,
                    latency_ms: r.latency_ms,
                    client_id: &r.client_id,
                    partner_id: &r.partner_id,
                    jti: &r.jti,
                })
                .collect(),
        };
        let response = match self.discovery.http().post(endpoint).bearer_auth(token).json(&body).send().await {
            Ok(response) => response,
            Err(err) => return Outcome::Retry(format!("request log unreachable: {}", err.without_url())),
        };
        let status = response.status().as_u16();
        match status {
            200..=299 => {
                self.shared.sent.fetch_add(batch.len() as u64, Ordering::Relaxed);
                Outcome::Done
            }
            401 => Outcome::NewToken,
            429 | 500..=599 => Outcome::Retry(format!("the request log answered {status}")),
            _ => {
                // 400 (an invalid batch), 403 (a client without the scope): sending again would not help.
                let problem = response.text().await.unwrap_or_default();
                log::error!("usage report: {} records refused with {status}: {problem:.300}", batch.len());
                self.shared.rejected.fetch_add(batch.len() as u64, Ordering::Relaxed);
                Outcome::Done
            }
        }
    }

    /// A token for the request log (see [`ClientToken`]).
    async fn token(&mut self) -> Result<String, String> {
        // The request log is on the admin API: ask for its audience (configured, or the issuer's metadata says).
        let audience = match &self.config.audience {
            Some(audience) => Some(audience.clone()),
            None => {
                let metadata = self.discovery.metadata().await.map_err(|err| format!("issuer metadata: {err}"))?;
                metadata.partnergate_admin_audience.clone()
            }
        };
        self.token.get(audience.as_deref()).await
    }
}
