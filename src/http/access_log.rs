//! The access log: one line per request, at `info` under the target `partnergate::access`, with the method,
//! the path (never the query string, which a careless client may fill with credentials), the status, the
//! latency, the client id when the request named or presented one, and the request id. Never headers or
//! bodies; the logger redacts whatever looks like a credential in the fields it is given.

use std::time::Instant;

use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use futures_util::future::LocalBoxFuture;

use super::request_id::RequestId;

pub const TARGET: &str = "partnergate::access";

/// The client a request is attributed to, set by the handler or extractor that learned it.
#[derive(Debug, Clone)]
pub struct LoggedClient(pub String);

/// The middleware body, for `App::wrap_fn`; outermost, so that the latency and status are those answered.
pub fn record<S, B>(req: ServiceRequest, service: &S) -> LocalBoxFuture<'static, Result<ServiceResponse<B>, Error>>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    S::Future: 'static,
    B: 'static,
{
    // Latency, measured on real time, not the server's clock.
    let started = Instant::now();
    let method = req.method().to_string();
    let path = req.path().to_string();
    let response = service.call(req);
    Box::pin(async move {
        let response = response.await?;
        if log::log_enabled!(target: TARGET, log::Level::Info) {
            let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
            let status = response.status().as_u16();
            let extensions = response.request().extensions();
            let request_id = extensions.get::<RequestId>().map(|id| id.0.as_str()).unwrap_or("-");
            let client_id = extensions.get::<LoggedClient>().map(|client| client.0.as_str()).unwrap_or("-");
            log::info!(target: TARGET, method = method.as_str(), path = path.as_str(), status = status,
                latency_ms = (latency_ms * 1000.0).round() / 1000.0, client_id = client_id,
                request_id = request_id; "request");
        }
        Ok(response)
    })
}
