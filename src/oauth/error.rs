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
    /// the client may not use this authentication method
    AuthMethodNotAllowed,
    MalformedAssertion,
    /// `none`, HMAC, or an algorithm its key does not have
    AssertionAlgorithm,
    NoKeys,
    /// no registered key has the assertion's `kid`
    UnknownKey,
    AssertionSignature,
    /// `iss` or `sub` is not the client id
    AssertionIssuer,
    AssertionAudience,
    /// no `exp` or no `jti`
    AssertionClaimMissing,
    AssertionExpired,
    /// `nbf` or `iat` in the future
    AssertionNotYetValid,
    /// `exp` more than an hour ahead
    AssertionLifetime,
    AssertionReplayed,
    KeysTimeout,
    KeysRedirect,
    KeysTooLarge,
    KeysPrivateAddress,
    KeysNotHttps,
    /// not reachable, an error status, or not a JWK set
    KeysUnavailable,
    /// no federated credential of the client names this issuer
    FederationIssuerUnknown,
    /// the issuer is the client's, the subject is not
    FederationSubjectMismatch,
    /// the partner no longer trusts the issuer
    FederationIssuerNotTrusted,
    /// a federated token without `jti` issued too long ago
    AssertionTooOld,
}

impl AuthFailure {
    pub const ALL: [AuthFailure; 32] = [
        AuthFailure::NoCredentials,
        AuthFailure::MalformedCredentials,
        AuthFailure::UnknownClient,
        AuthFailure::MalformedSecret,
        AuthFailure::WrongSecret,
        AuthFailure::SecretExpired,
        AuthFailure::SecretRevoked,
        AuthFailure::ClientDisabled,
        AuthFailure::PartnerSuspended,
        AuthFailure::AuthMethodNotAllowed,
        AuthFailure::MalformedAssertion,
        AuthFailure::AssertionAlgorithm,
        AuthFailure::NoKeys,
        AuthFailure::UnknownKey,
        AuthFailure::AssertionSignature,
        AuthFailure::AssertionIssuer,
        AuthFailure::AssertionAudience,
        AuthFailure::AssertionClaimMissing,
        AuthFailure::AssertionExpired,
        AuthFailure::AssertionNotYetValid,
        AuthFailure::AssertionLifetime,
        AuthFailure::AssertionReplayed,
        AuthFailure::KeysTimeout,
        AuthFailure::KeysRedirect,
        AuthFailure::KeysTooLarge,
        AuthFailure::KeysPrivateAddress,
        AuthFailure::KeysNotHttps,
        AuthFailure::KeysUnavailable,
        AuthFailure::FederationIssuerUnknown,
        AuthFailure::FederationSubjectMismatch,
        AuthFailure::FederationIssuerNotTrusted,
        AuthFailure::AssertionTooOld,
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
            AuthFailure::AuthMethodNotAllowed => "auth_method_not_allowed",
            AuthFailure::MalformedAssertion => "malformed_assertion",
            AuthFailure::AssertionAlgorithm => "assertion_algorithm_not_allowed",
            AuthFailure::NoKeys => "no_keys_registered",
            AuthFailure::UnknownKey => "unknown_key",
            AuthFailure::AssertionSignature => "assertion_signature_invalid",
            AuthFailure::AssertionIssuer => "assertion_issuer_mismatch",
            AuthFailure::AssertionAudience => "assertion_audience_mismatch",
            AuthFailure::AssertionClaimMissing => "assertion_claim_missing",
            AuthFailure::AssertionExpired => "assertion_expired",
            AuthFailure::AssertionNotYetValid => "assertion_not_yet_valid",
            AuthFailure::AssertionLifetime => "assertion_lifetime_too_long",
            AuthFailure::AssertionReplayed => "assertion_replayed",
            AuthFailure::KeysTimeout => "jwks_uri_timeout",
            AuthFailure::KeysRedirect => "jwks_uri_redirect",
            AuthFailure::KeysTooLarge => "jwks_uri_too_large",
            AuthFailure::KeysPrivateAddress => "jwks_uri_private_address",
            AuthFailure::KeysNotHttps => "jwks_uri_not_https",
            AuthFailure::KeysUnavailable => "jwks_uri_unavailable",
            AuthFailure::FederationIssuerUnknown => "federation_issuer_unknown",
            AuthFailure::FederationSubjectMismatch => "federation_subject_mismatch",
            AuthFailure::FederationIssuerNotTrusted => "federation_issuer_not_trusted",
            AuthFailure::AssertionTooOld => "assertion_too_old",
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
