//! Security headers on every response: `X-Content-Type-Options: nosniff` (a JSON error that quotes the
//! caller's input must never be sniffed as HTML), `Cache-Control: no-store` wherever a response does not
//! choose its own caching (tokens, admin data, errors; the JWKS and the metadata document say `public`),
//! and no `Server` banner that would name the software and its version.

use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::Error;
use futures_util::future::LocalBoxFuture;

/// Applies the headers to a response, whoever built it.
pub fn apply(headers: &mut header::HeaderMap) {
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    headers.remove(header::SERVER);
}

/// The middleware body, for `App::wrap_fn`; outermost, so that it sees every answer.
pub fn secure<S, B>(req: ServiceRequest, service: &S) -> LocalBoxFuture<'static, Result<ServiceResponse<B>, Error>>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    S::Future: 'static,
    B: 'static,
{
    let response = service.call(req);
    Box::pin(async move {
        let mut response = response.await?;
        apply(response.headers_mut());
        Ok(response)
    })
}
