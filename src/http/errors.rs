//! One shape for every error answer, whoever raised it. The OAuth endpoints answer RFC 6749 section 5.2
//! bodies and everything else (the admin API above all) `{"error", "message"}` problems. Handlers and
//! their extractors already do; this module covers what actix-web answers by itself before or around them
//! (no route, a wrong method, an extractor without an error handler, an `Err` out of a middleware), whose
//! bodies are plain text or empty. Requests that are not valid HTTP/1.1 at all are answered by actix-http's
//! connection dispatcher before any of this runs, with an empty body; see the README.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{Error, HttpResponse, ResponseError};
use futures_util::future::LocalBoxFuture;

use super::oauth_response::error_body;
use super::problem::Problem;

/// Paths whose clients expect RFC 6749 error bodies.
pub fn is_oauth_path(path: &str) -> bool {
    path == "/oauth2" || path.starts_with("/oauth2/")
}

/// An error answer for `path` in the shape its clients expect, with `status` and a message for people.
pub fn error_for(path: &str, status: StatusCode, message: &str) -> HttpResponse {
    if is_oauth_path(path) {
        let code = match status {
            StatusCode::UNAUTHORIZED => "invalid_client",
            StatusCode::SERVICE_UNAVAILABLE => "temporarily_unavailable",
            s if s.is_server_error() => "server_error",
            _ => "invalid_request",
        };
        error_body(&mut HttpResponse::build(status), code, message)
    } else {
        let code = match status {
            StatusCode::UNAUTHORIZED => "invalid_token",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::CONFLICT => "conflict",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            s if s.is_server_error() => "internal",
            _ => "invalid_input",
        };
        Problem::new(status, code, message).error_response()
    }
}

/// What the caller is told about an error that actix-web raised: its own text for client errors (it names
/// the problem, e.g. "Content type error"), nothing internal for server errors.
fn message_for(status: StatusCode, error: Option<&Error>) -> String {
    if status.is_server_error() {
        return "internal error".to_string();
    }
    match error {
        Some(err) => format!("{}: {err}", status.canonical_reason().unwrap_or("error")),
        None => status.canonical_reason().unwrap_or("error").to_lowercase(),
    }
}

/// Marks an error answer a handler shaped for people on purpose (the console's sign-in refusal page).
pub struct ShapedForPeople;

/// Our handlers answer errors with `application/json` bodies (or a page marked [`ShapedForPeople`]);
/// anything else came from the framework.
fn is_shaped(response: &HttpResponse<impl MessageBody>) -> bool {
    response.headers().get(header::CONTENT_TYPE) == Some(&HeaderValue::from_static("application/json"))
        || response.extensions().contains::<ShapedForPeople>()
}

/// A framework error answer for `path`, in the right shape, keeping the headers that matter to the caller.
fn reshape(path: &str, status: StatusCode, error: Option<&Error>, old: &header::HeaderMap) -> HttpResponse {
    if status.is_server_error() {
        log::error!("{path} answered {status} by the framework: {error:?}");
    }
    let mut response = error_for(path, status, &message_for(status, error));
    for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(value) = old.get(&name) {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response
}

/// The middleware body, for `App::wrap_fn`: error responses without our JSON body are answered again in the
/// path's shape, and so is an `Err` that comes out of the service (actix-web answers it with the response it
/// carries, after every middleware, so the security headers are set here).
pub fn shape<S, B>(
    req: ServiceRequest,
    service: &S,
) -> LocalBoxFuture<'static, Result<ServiceResponse<EitherBody<B>>, Error>>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    // Not a clone of the request: routing needs to be its only owner.
    let path = req.path().to_string();
    let response = service.call(req);
    Box::pin(async move {
        match response.await {
            Ok(response) => {
                let status = response.status();
                if !(status.is_client_error() || status.is_server_error()) || is_shaped(response.response()) {
                    return Ok(response.map_into_left_body());
                }
                let (request, old) = response.into_parts();
                let reshaped = reshape(&path, status, old.error(), old.headers());
                Ok(ServiceResponse::new(request, reshaped).map_into_right_body())
            }
            Err(err) => {
                let status = err.as_response_error().status_code();
                let mut reshaped = reshape(&path, status, Some(&err), &header::HeaderMap::new());
                super::headers::apply(reshaped.headers_mut());
                Err(actix_web::error::InternalError::from_response(err.to_string(), reshaped).into())
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_paths() {
        assert!(is_oauth_path("/oauth2/token"));
        assert!(is_oauth_path("/oauth2/x/y"));
        assert!(!is_oauth_path("/oauth2x"));
        assert!(!is_oauth_path("/admin/v1/clients"));
    }

    #[test]
    fn server_errors_say_nothing_internal() {
        let err: Error = actix_web::error::ErrorInternalServerError("database password is hunter2");
        assert_eq!(message_for(StatusCode::INTERNAL_SERVER_ERROR, Some(&err)), "internal error");
    }
}
