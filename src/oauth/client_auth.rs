//! Client authentication: the presented secret against the client's stored hashes, then the client's and
//! its partner's state. Every failure is `invalid_client` to the caller; the reason goes to the audit trail,
//! and the audit event names the client, partner and secret as far as they are known.

use chrono::NaiveDateTime;

use crate::audit::AuditEvent;

use super::error::{AuthFailure, OAuthError};
use super::request::{AuthMethod, PresentedCredentials};
use crate::registry::clients::load_for_authentication;
use crate::registry::credentials::ClientSecret;
use crate::registry::secrets::is_active;
use crate::store::models::{ClientRow, PartnerRow};
use crate::store::DbConnection;

/// A client whose secret checked out, and which may receive tokens now.
#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    pub client: ClientRow,
    pub partner: PartnerRow,
    pub secret_id: String,
}

fn plausible_client_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

pub fn authenticate(
    conn: &mut DbConnection,
    presented: &PresentedCredentials,
    at: NaiveDateTime,
    event: &mut AuditEvent,
) -> Result<AuthenticatedClient, OAuthError> {
    let basic_challenge = presented.method == AuthMethod::ClientSecretBasic;
    let fail = |reason| OAuthError::InvalidClient { reason, basic_challenge };
    if !plausible_client_id(&presented.client_id) {
        return Err(fail(AuthFailure::UnknownClient));
    }
    event.client_id = Some(presented.client_id.clone());
    // The checksum rejects typos and truncation before any database work.
    let secret = ClientSecret::parse(&presented.secret).map_err(|_| fail(AuthFailure::MalformedSecret))?;
    let loaded = load_for_authentication(conn, &presented.client_id).map_err(OAuthError::unavailable)?;
    let Some((client, partner, secrets)) = loaded else {
        return Err(fail(AuthFailure::UnknownClient));
    };
    event.partner_id = Some(partner.id.clone());
    // Compare against every secret (constant time each) so that timing does not reveal which one matched.
    let mut matched = None;
    for stored in &secrets {
        if secret.matches_hash(&stored.secret_hash) {
            matched = Some(stored);
        }
    }
    let stored = matched.ok_or_else(|| fail(AuthFailure::WrongSecret))?;
    event.secret_id = Some(stored.id.clone());
    if !is_active(stored, at) {
        let reason = if stored.revoked_at.is_some() { AuthFailure::SecretRevoked } else { AuthFailure::SecretExpired };
        return Err(fail(reason));
    }
    if !client.enabled {
        return Err(fail(AuthFailure::ClientDisabled));
    }
    if partner.suspended {
        return Err(fail(AuthFailure::PartnerSuspended));
    }
    Ok(AuthenticatedClient { secret_id: stored.id.clone(), client, partner })
}
