//! The token grant's errors. The variants are the RFC 6749 section 5.2 codes; the HTTP layer maps them to
//! status codes and bodies. Authentication failures carry their real reason for the audit trail only.

use crate::limits::Refusal;

/// Why client authentication failed. The caller always sees the same `invalid_client`; the audit event
/// records this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    NoCredentials,
    MalformedCredentials,
    UnknownClient,
    MalformedSecret,
    WrongSecret,
    SecretExpired,
    SecretRevoked,
    ClientDisabled,
    PartnerSuspended,
}

impl AuthFailure {
    pub const ALL: [AuthFailure; 9] = [
        AuthFailure::NoCredentials,
        AuthFailure::MalformedCredentials,
        AuthFailure::UnknownClient,
        AuthFailure::MalformedSecret,
        AuthFailure::WrongSecret,
        AuthFailure::SecretExpired,
        AuthFailure::SecretRevoked,
        AuthFailure::ClientDisabled,
        AuthFailure::PartnerSuspended,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailure::NoCredentials => "no_credentials",
            AuthFailure::MalformedCredentials => "malformed_credentials",
            AuthFailure::UnknownClient => "unknown_client",
            AuthFailure::MalformedSecret => "malformed_secret",
            AuthFailure::WrongSecret => "wrong_secret",
            AuthFailure::SecretExpired => "secret_expired",
            AuthFailure::SecretRevoked => "secret_revoked",
            AuthFailure::ClientDisabled => "client_disabled",
            AuthFailure::PartnerSuspended => "partner_suspended",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    /// `basic_challenge`: answer with `WWW-Authenticate: Basic` (the client used, or could use, Basic).
    #[error("invalid_client: {}", .reason.as_str())]
    InvalidClient { reason: AuthFailure, basic_challenge: bool },
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(String),
    #[error("unsupported_grant_type: {0}")]
    UnsupportedGrantType(String),
    #[error("invalid_scope: {0}")]
    InvalidScope(String),
    #[error("invalid_target: {0}")]
    InvalidTarget(String),
    #[error("request body too large")]
    BodyTooLarge,
    #[error("temporarily_unavailable: {0}")]
    TemporarilyUnavailable(String),
    /// Refused by a rate limit, the quota or the authentication throttle: `429` with `Retry-After`.
    #[error("temporarily_unavailable: {}", .0.limit.as_str())]
    Limited(Refusal),
    /// A fault of ours (a failing statement, a violated constraint the code should have checked), not an
    /// outage: `500 server_error` without `Retry-After`, logged at error level.
    #[error("server_error: {0}")]
    ServerError(String),
}

impl OAuthError {
    /// The registry could not be read: an outage the caller may retry, or a fault of ours.
    pub fn registry(err: crate::store::StoreError) -> Self {
        if err.is_unavailable() {
            OAuthError::TemporarilyUnavailable(format!("registry unavailable: {err}"))
        } else {
            OAuthError::ServerError(format!("registry read failed: {err}"))
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) | OAuthError::BodyTooLarge => "invalid_request",
            OAuthError::InvalidClient { .. } => "invalid_client",
            OAuthError::UnsupportedGrantType(_) => "unsupported_grant_type",
            OAuthError::UnauthorizedClient(_) => "unauthorized_client",
            OAuthError::InvalidScope(_) => "invalid_scope",
            OAuthError::InvalidTarget(_) => "invalid_target",
            OAuthError::TemporarilyUnavailable(_) | OAuthError::Limited(_) => "temporarily_unavailable",
            OAuthError::ServerError(_) => "server_error",
        }
    }

    /// The `error_description` shown to the caller; never says why authentication failed.
    pub fn description(&self) -> String {
        match self {
            OAuthError::InvalidRequest(message)
            | OAuthError::UnsupportedGrantType(message)
            | OAuthError::UnauthorizedClient(message)
            | OAuthError::InvalidScope(message)
            | OAuthError::InvalidTarget(message)
            | OAuthError::TemporarilyUnavailable(message)
            | OAuthError::ServerError(message) => message.clone(),
            OAuthError::InvalidClient { .. } => "client authentication failed".to_string(),
            OAuthError::BodyTooLarge => "request body too large".to_string(),
            OAuthError::Limited(refusal) => refusal.description(),
        }
    }

    /// The reason stored in the audit event.
    pub fn audit_reason(&self) -> String {
        match self {
            OAuthError::InvalidClient { reason, .. } => reason.as_str().to_string(),
            OAuthError::Limited(refusal) => refusal.limit.as_str().to_string(),
            other => format!("{}: {}", other.code(), other.description()),
        }
    }
}
