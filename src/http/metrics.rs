//! `GET /metrics`: the scrape-time gauges read from every module, the text rendering, and the middleware that
//! times requests by route (the counters are in `metrics.rs`).

use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::{web, HttpResponse};
use futures_util::future::LocalBoxFuture;
use prometheus::{Encoder, IntCounter, TextEncoder};

use crate::audit::AuditWriter;
use crate::clock::SharedClock;
use crate::metrics::Metrics;
use crate::readmodel::ReadModel;
use crate::registry::live_keys::LiveKeys;
use crate::store::DbPool;
use crate::stream::StreamStats;

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

impl Metrics {
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
