//! Refuses request URIs that carry percent-encoded control characters (`%00` above all): no path segment or
//! query value of this API may contain one, and PostgreSQL refuses NUL in text, which would surface as a 500.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpResponse};
use futures_util::future::LocalBoxFuture;

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

/// The middleware body, for `App::wrap_fn`.
pub fn reject_control_characters<S, B>(
    req: ServiceRequest,
    service: &S,
) -> LocalBoxFuture<'static, Result<ServiceResponse<EitherBody<B>>, Error>>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    let raw = req.uri().path_and_query().map(|pq| pq.as_str()).unwrap_or("");
    if has_encoded_control(raw) {
        let response = HttpResponse::BadRequest().json(serde_json::json!({
            "error": "invalid_input",
            "message": "the request URI contains an encoded control character"
        }));
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
