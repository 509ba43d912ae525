//! What the token path counts (the counters are in `metrics.rs`): tokens issued, denials by reason, refusals by
//! limit.

use super::{AuthFailure, OAuthError};
use crate::limits::{Limit, Refusal};
use crate::metrics::Metrics;

impl Metrics {
    /// Every denial reason at zero from the first scrape: a query or an alert on a series that does not exist
    /// yet sees nothing rather than 0.
    pub fn register_token_denials(&self) {
        for err in known_denials() {
            self.token_denials.with_label_values(&[denial_reason(&err)]);
        }
    }

    /// A token request's final answer, as the caller got it.
    pub fn token_request<T>(&self, result: &Result<T, OAuthError>) {
        match result {
            Ok(_) => self.tokens_issued.inc(),
            Err(err) => self.token_denials.with_label_values(&[denial_reason(err)]).inc(),
        }
    }

    /// Any OAuth request's final answer: counts the ones a limit refused.
    pub fn oauth_request<T>(&self, result: &Result<T, OAuthError>) {
        if let Err(OAuthError::Limited(refusal)) = result {
            self.limit_refusals.with_label_values(&[refusal.limit.as_str()]).inc();
        }
    }
}

/// A bounded label: the audit reason code for authentication failures and limits, else the OAuth error code.
fn denial_reason(err: &OAuthError) -> &'static str {
    match err {
        OAuthError::InvalidClient { reason, .. } => reason.as_str(),
        OAuthError::Limited(refusal) => refusal.limit.as_str(),
        other => other.code(),
    }
}

/// One error of each kind a token request can be denied with, for the labels known in advance.
fn known_denials() -> impl Iterator<Item = OAuthError> {
    let codes = [
        OAuthError::InvalidRequest(String::new()),
        OAuthError::UnauthorizedClient(String::new()),
        OAuthError::UnsupportedGrantType(String::new()),
        OAuthError::InvalidScope(String::new()),
        OAuthError::InvalidTarget(String::new()),
        OAuthError::TemporarilyUnavailable(String::new()),
        OAuthError::ServerError(String::new()),
    ];
    let clients = AuthFailure::ALL.map(|reason| OAuthError::InvalidClient { reason, basic_challenge: false });
    let limits = Limit::ALL.map(|limit| OAuthError::Limited(Refusal { limit, retry_after: Default::default() }));
    codes.into_iter().chain(clients).chain(limits)
}
