//! Client authentication: the presented secret against the client's snapshot, then the client's and its
//! partner's standing. Every failure is `invalid_client` to the caller; the reason goes to the audit trail, and
//! the audit event names the client, partner and secret as far as they are known.

use std::sync::Arc;

use chrono::NaiveDateTime;

use super::error::{AuthFailure, OAuthError};
use super::request::{AuthMethod, PresentedCredentials};
use super::TokenService;
use crate::audit::AuditEvent;
use crate::readmodel::{Barrier, ClientSnapshot};
use crate::registry::credentials::ClientSecret;

/// A client whose secret checked out, and which may receive tokens now.
#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    pub client: Arc<ClientSnapshot>,
    pub secret_id: String,
}

fn plausible_client_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

fn failure(presented: &PresentedCredentials, reason: AuthFailure) -> OAuthError {
    OAuthError::InvalidClient { reason, basic_challenge: presented.method == AuthMethod::ClientSecretBasic }
}

/// What can be refused before looking the client up: an implausible id, a secret whose checksum fails.
pub fn check_format(presented: &PresentedCredentials, event: &mut AuditEvent) -> Result<ClientSecret, OAuthError> {
    if !plausible_client_id(&presented.client_id) {
        return Err(failure(presented, AuthFailure::UnknownClient));
    }
    event.client_id = Some(presented.client_id.clone());
    ClientSecret::parse(&presented.secret).map_err(|_| failure(presented, AuthFailure::MalformedSecret))
}

/// The secret against the client's snapshot (`None`: no such client) at time `at`.
pub fn authenticate(
    snapshot: Option<Arc<ClientSnapshot>>,
    presented: &PresentedCredentials,
    secret: &ClientSecret,
    at: NaiveDateTime,
    event: &mut AuditEvent,
) -> Result<AuthenticatedClient, OAuthError> {
    let client = snapshot.ok_or_else(|| failure(presented, AuthFailure::UnknownClient))?;
    event.partner_id = Some(client.partner_id.clone());
    let stored = client.secret(&secret.digest()).ok_or_else(|| failure(presented, AuthFailure::WrongSecret))?;
    event.secret_id = Some(stored.id.clone());
    if !stored.is_active(at) {
        let reason = if stored.revoked_at.is_some() { AuthFailure::SecretRevoked } else { AuthFailure::SecretExpired };
        return Err(failure(presented, reason));
    }
    match client.barrier() {
        Some(Barrier::ClientDisabled) => return Err(failure(presented, AuthFailure::ClientDisabled)),
        Some(Barrier::PartnerSuspended) => return Err(failure(presented, AuthFailure::PartnerSuspended)),
        None => {}
    }
    let secret_id = stored.id.clone();
    Ok(AuthenticatedClient { client, secret_id })
}

impl TokenService {
    /// Authenticates the presented credentials against the read model at time `at`.
    pub(crate) async fn authenticate(
        &self,
        presented: &PresentedCredentials,
        at: NaiveDateTime,
        event: &mut AuditEvent,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let secret = check_format(presented, event)?;
        let snapshot = self.read_model.client(&presented.client_id).await.map_err(OAuthError::unavailable)?;
        authenticate(snapshot, presented, &secret, at, event)
    }
}
