//! Checks on the request head before routing: bounded sizes, and no percent-encoded control characters
//! (`%00` above all) in the URI: no path segment or query value of this API may contain one, and PostgreSQL
//! refuses NUL in text, which would surface as a 500. actix-http's own bounds (a head over 128 KiB, more than
//! 96 headers) are far above ours and answer with an empty body; these answer in the path's error shape.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::Error;
use futures_util::future::LocalBoxFuture;

use super::errors::error_for;

/// Longest request target (path and query): ids, cursors and filters fit many times over.
pub const MAX_URI_BYTES: usize = 4096;
/// Most bytes of header names and values together: an admin bearer token is under 2 KiB.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Most header fields in one request.
pub const MAX_HEADERS: usize = 64;

/// `%XX` with XX below 0x20 or equal to 0x7F, anywhere in the raw URI.
pub fn has_encoded_control(raw: &str) -> bool {
    raw.as_bytes().windows(3).any(|w| {
        w[0] == b'%'
            && std::str::from_utf8(&w[1..])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .is_some_and(|byte| byte < 0x20 || byte == 0x7f)
    })
}

/// Why the head is refused, if it is.
fn refusal(req: &ServiceRequest) -> Option<(StatusCode, &'static str)> {
    let raw = req.uri().path_and_query().map(|pq| pq.as_str()).unwrap_or("");
    if raw.len() > MAX_URI_BYTES {
        return Some((StatusCode::URI_TOO_LONG, "the request URI is too long"));
    }
    let headers = req.headers();
    let header_bytes: usize = headers.iter().map(|(name, value)| name.as_str().len() + value.len()).sum();
    if headers.len() > MAX_HEADERS || header_bytes > MAX_HEADER_BYTES {
        return Some((StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "the request headers are too large"));
    }
    if has_encoded_control(raw) {
        return Some((StatusCode::BAD_REQUEST, "the request URI contains an encoded control character"));
    }
    None
}

/// The middleware body, for `App::wrap_fn`.
pub fn check_head<S, B>(
    req: ServiceRequest,
    service: &S,
) -> LocalBoxFuture<'static, Result<ServiceResponse<EitherBody<B>>, Error>>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    if let Some((status, message)) = refusal(&req) {
        let response = error_for(req.path(), status, message);
        return Box::pin(async move { Ok(req.into_response(response).map_into_right_body()) });
    }
    let response = service.call(req);
    Box::pin(async move { Ok(response.await?.map_into_left_body()) })
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters() {
        assert!(super::has_encoded_control("/admin/v1/clients/%00"));
        assert!(super::has_encoded_control("/x?cursor=a%1Fb"));
        assert!(super::has_encoded_control("/x?y=%7f"));
        assert!(!super::has_encoded_control("/admin/v1/clients/acme%3Async?limit=2&x=%20"));
    }
}
