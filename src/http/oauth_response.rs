//! OAuth endpoint responses: RFC 6749 section 5.1 successes and section 5.2 error bodies, with their status
//! codes and headers, decided here and nowhere else.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde::Serialize;

use crate::oauth::OAuthError;

/// Seconds a client should wait before retrying when the server is temporarily unavailable (a limit's
/// refusal says its own wait).
const RETRY_AFTER_SECS: &str = "5";

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: String,
}

/// Token responses must not be cached (RFC 6749 section 5.1).
fn no_store(builder: &mut actix_web::HttpResponseBuilder) -> &mut actix_web::HttpResponseBuilder {
    builder.insert_header((header::CACHE_CONTROL, "no-store")).insert_header((header::PRAGMA, "no-cache"))
}

pub fn json_no_store<T: Serialize>(body: &T) -> HttpResponse {
    no_store(&mut HttpResponse::Ok()).json(body)
}

pub fn status_of(err: &OAuthError) -> StatusCode {
    match err {
        OAuthError::InvalidClient { .. } => StatusCode::UNAUTHORIZED,
        OAuthError::UnauthorizedClient(_) => StatusCode::FORBIDDEN,

        OAuthError::TemporarilyUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        OAuthError::ServerError(_) => StatusCode::INTERNAL_SERVER_ERROR,
        OAuthError::Limited(_) => StatusCode::TOO_MANY_REQUESTS,
        // RFC 6749 section 5.2: every invalid_request is 400, an oversized body included.
        OAuthError::InvalidRequest(_)
        | OAuthError::BodyTooLarge
        | OAuthError::UnsupportedGrantType(_)
        | OAuthError::InvalidScope(_)
        | OAuthError::InvalidTarget(_) => StatusCode::BAD_REQUEST,
    }
}

pub fn error_response(err: &OAuthError) -> HttpResponse {
    let mut builder = HttpResponse::build(status_of(err));
    match err {
        OAuthError::InvalidClient { basic_challenge: true, .. } => {
            builder.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"partnergate\"")));
        }
        OAuthError::TemporarilyUnavailable(message) => {
            log::warn!("token endpoint unavailable: {message}");
            builder.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECS));
        }
        OAuthError::Limited(refusal) => {
            builder.insert_header((header::RETRY_AFTER, refusal.retry_after_secs().to_string()));
        }
        _ => {}
    }
    let description = match err {
        // The internal cause is logged (above, or with the request id by the token service); the caller gets a
        // stable sentence.
        OAuthError::TemporarilyUnavailable(_) => "the service is temporarily unavailable; retry later".to_string(),
        OAuthError::ServerError(_) => "internal error; the request id identifies it in the server's log".to_string(),
        other => other.description(),
    };
    error_body(&mut builder, err.code(), &description)
}

/// An RFC 6749 section 5.2 body with `code` and `description` on `builder`, for the grant's errors above and
/// for errors the framework raised before a handler ran (`super::errors`).
pub fn error_body(builder: &mut actix_web::HttpResponseBuilder, code: &str, description: &str) -> HttpResponse {
    // The one place a description is written: what the caller sent (a scope, a resource, a repeated
    // parameter's name) may be a secret or a token, and is not echoed (ARCHITECTURE.md, Credentials).
    let description = crate::redact::credentials(description).into_owned();
    no_store(builder).json(ErrorBody { error: code, error_description: description })
}
