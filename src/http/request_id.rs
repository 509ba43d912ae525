//! Request ids: a valid incoming `X-Request-Id` is kept, otherwise one is generated; either way it is returned
//! in the response and stored in the request's audit events.

use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{Error, HttpMessage, HttpRequest};
use futures_util::future::LocalBoxFuture;

use crate::audit::RequestMeta;
use crate::credentials::{base62_digits, random_bytes};

pub const HEADER: &str = "x-request-id";
const MAX_LEN: usize = 128;

#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Bounded length and a safe alphabet, so ids can be logged and stored as they are.
pub fn is_valid(id: &str) -> bool {
    (1..=MAX_LEN).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// Odd, so that multiplying by it permutes the 128-bit values: distinct counters give distinct ids.
const SCRAMBLE: u128 = 0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835;
/// Base62 digits of one 64-bit half (62^11 > 2^64).
const HALF_DIGITS: usize = 11;

thread_local! {
    /// This thread's next id, from a random 128-bit start.
    static NEXT_ID: std::cell::Cell<u128> = std::cell::Cell::new(u128::from_le_bytes(random_bytes::<16>()));
}

/// A new request id: a 128-bit value in 22 base62 characters. Ids are logged and handed out, not secret,
/// and need only be unique; a per-thread counter from a random start gives that without a system call per
/// request (the OS generator was one `getrandom(2)` for every request). Two threads' ranges of a billion
/// ids each overlap with odds under 2^-90.
fn generate() -> String {
    let counter = NEXT_ID.with(|next| {
        let value = next.get();
        next.set(value.wrapping_add(1));
        value
    });
    // Two 64-bit halves: 128-bit division is a library call, and this runs for every request.
    let value = counter.wrapping_mul(SCRAMBLE);
    base62_digits::<HALF_DIGITS>((value >> 64) as u64) + &base62_digits::<HALF_DIGITS>(value as u64)
}

/// The middleware body, for `App::wrap_fn`.
pub fn assign<S, B>(req: ServiceRequest, service: &S) -> LocalBoxFuture<'static, Result<ServiceResponse<B>, Error>>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    S::Future: 'static,
    B: 'static,
{
    let incoming = req.headers().get(HEADER).and_then(|v| v.to_str().ok()).filter(|id| is_valid(id));
    let id = incoming.map(str::to_string).unwrap_or_else(generate);
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

    #[test]
    fn generated_ids_are_valid_and_distinct() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| super::generate()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids.iter().all(|id| id.len() == 22 && super::is_valid(id)));
        let other_thread = std::thread::spawn(super::generate).join().unwrap();
        assert!(!ids.contains(&other_thread));
    }
}
