//! Errors inside the crate. None of them reaches a client: requests see a [`crate::Rejection`].

/// Fetching the metadata or the JWKS.
#[derive(Debug, Clone)]
pub enum FetchError {
    Http(String),
    Status(u16),
    IssuerMismatch(String),
    /// Not tried: the last attempt was less than the minimum interval ago.
    TooSoon,
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Http(err) => write!(f, "{err}"),
            FetchError::Status(status) => write!(f, "answered {status}"),
            FetchError::IssuerMismatch(found) => write!(f, "the metadata names another issuer: {found}"),
            FetchError::TooSoon => write!(f, "the last attempt failed moments ago"),
        }
    }
}

impl std::error::Error for FetchError {}

impl From<reqwest::Error> for FetchError {
    fn from(err: reqwest::Error) -> Self {
        FetchError::Http(err.without_url().to_string())
    }
}

/// Why a token was refused (logged at debug level; the client only learns `invalid_token`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    Malformed,
    WrongType,
    NoKeyId,
    UnknownKey,
    AlgorithmMismatch,
    /// Signature, issuer, audience or a claim's shape, as `jsonwebtoken` reports it.
    Rejected(String),
    MissingClaim(&'static str),
    Expired,
    NotYetValid,
    /// No key known and the issuer unreachable.
    KeysUnavailable,
}

impl std::fmt::Display for VerifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VerifyError::Malformed => write!(f, "not a JWS"),
            VerifyError::WrongType => write!(f, "typ is not at+jwt"),
            VerifyError::NoKeyId => write!(f, "no kid"),
            VerifyError::UnknownKey => write!(f, "kid not in the issuer's JWKS"),
            VerifyError::AlgorithmMismatch => write!(f, "alg does not match the key"),
            VerifyError::Rejected(why) => write!(f, "{why}"),
            VerifyError::MissingClaim(claim) => write!(f, "claim {claim} missing or empty"),
            VerifyError::Expired => write!(f, "expired"),
            VerifyError::NotYetValid => write!(f, "not yet valid"),
            VerifyError::KeysUnavailable => write!(f, "no signing keys known and the issuer unreachable"),
        }
    }
}

impl std::error::Error for VerifyError {}
