//! Admin API errors: a JSON problem body `{"error": "<stable code>", "message": "..."}`, mapped from the
//! registry's errors in one place.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::registry::RegistryError;

/// The body of every admin API error, as the OpenAPI document describes it.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ProblemBody {
    /// A stable code: `invalid_input`, `invalid_token`, `forbidden`, `not_found`, `conflict`, ...
    pub error: String,
    /// For people.
    pub message: String,
}

#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub error: &'static str,
    pub message: String,
}

impl Problem {
    pub fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> Self {
        Problem { status, error, message: message.into() }
    }

    /// A missing, invalid or no longer valid bearer token (RFC 6750 section 3.1).
    pub fn invalid_token(message: impl Into<String>) -> Self {
        Problem::new(StatusCode::UNAUTHORIZED, "invalid_token", message)
    }

    pub fn bad_input(message: impl Into<String>) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, "invalid_input", message)
    }

    pub fn internal() -> Self {
        Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.message)
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header((actix_web::http::header::RETRY_AFTER, "5"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((
                actix_web::http::header::WWW_AUTHENTICATE,
                format!("Bearer realm=\"partnergate\", error=\"{}\"", self.error),
            ));
        }
        // The one place a problem body is written: messages quote what the caller sent (an id in the path,
        // serde's `unknown field` text), which may be a secret or a token (ARCHITECTURE.md, Credentials).
        let message = crate::redact::credentials(&self.message);
        response.json(json!({"error": self.error, "message": message}))
    }
}

impl From<RegistryError> for Problem {
    fn from(err: RegistryError) -> Self {
        let message = err.to_string();
        match err {
            RegistryError::Invalid { .. } => Problem::new(StatusCode::BAD_REQUEST, "invalid_input", message),
            RegistryError::NotFound { .. } => Problem::new(StatusCode::NOT_FOUND, "not_found", message),
            RegistryError::AlreadyExists { .. } => Problem::new(StatusCode::CONFLICT, "already_exists", message),
            RegistryError::InUse { .. } => Problem::new(StatusCode::CONFLICT, "in_use", message),
            RegistryError::OutsideCeiling(_) => Problem::new(StatusCode::FORBIDDEN, "scope_outside_ceiling", message),
            RegistryError::AudienceOutsideCeiling(_) => {
                Problem::new(StatusCode::FORBIDDEN, "audience_outside_ceiling", message)
            }
            RegistryError::Forbidden(_) => Problem::new(StatusCode::FORBIDDEN, "forbidden", message),
            RegistryError::Conflict(_) => Problem::new(StatusCode::CONFLICT, "conflict", message),
            RegistryError::TooLarge(_) => Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message),
            RegistryError::Protected(_) => Problem::new(StatusCode::CONFLICT, "protected", message),
            RegistryError::Keys(cause) => {
                log::error!("signing keys: {cause}");
                Problem::internal()
            }
            RegistryError::Store(store) if store.is_constraint_violation() => Problem::new(
                StatusCode::CONFLICT,
                "conflict",
                "the change conflicts with stored data; reload and retry",
            ),
            RegistryError::Store(cause) if cause.is_unavailable() => {
                log::warn!("database unavailable: {cause}");
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the database is unavailable; retry later")
            }
            RegistryError::Store(cause) => {
                log::error!("storage error: {cause}");
                Problem::internal()
            }
            RegistryError::Interrupted => Problem::internal(),
        }
    }
}
