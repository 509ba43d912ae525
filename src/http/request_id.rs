//! Request ids: a valid incoming `X-Request-Id` is kept, otherwise one is generated; either way it is returned
//! in the response and stored in the request's audit events.

use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{Error, HttpMessage, HttpRequest};
use futures_util::future::LocalBoxFuture;

use crate::audit::RequestMeta;
use crate::registry::credentials::random_base62;

pub const HEADER: &str = "x-request-id";
const MAX_LEN: usize = 128;

#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Bounded length and a safe alphabet, so ids can be logged and stored as they are.
pub fn is_valid(id: &str) -> bool {
    (1..=MAX_LEN).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// The middleware body, for `App::wrap_fn`.
pub fn assign<S, B>(req: ServiceRequest, service: &S) -> LocalBoxFuture<'static, Result<ServiceResponse<B>, Error>>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    S::Future: 'static,
    B: 'static,
{
    let incoming = req.headers().get(HEADER).and_then(|v| v.to_str().ok()).filter(|id| is_valid(id));
    let id = incoming.map(str::to_string).unwrap_or_else(|| random_base62(22));
    req.extensions_mut().insert(RequestId(id.clone()));
    let response = service.call(req);
    Box::pin(async move {
        let mut response = response.await?;
        if let Ok(value) = HeaderValue::from_str(&id) {
            response.headers_mut().insert(HeaderName::from_static(HEADER), value);
        }
        Ok(response)
    })
}

/// What the audit trail records about the request.
pub fn request_meta(req: &HttpRequest) -> RequestMeta {
    let user_agent = req
        .headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(256).collect());
    RequestMeta {
        request_id: req.extensions().get::<RequestId>().map(|id| id.0.clone()),
        source_ip: super::client_address::of(req).map(|ip| ip.to_string()),
        user_agent,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn validity() {
        assert!(super::is_valid("abc-123_x.y:z"));
        assert!(!super::is_valid(""));
        assert!(!super::is_valid("a b"));
        assert!(!super::is_valid(&"a".repeat(129)));
    }
}
