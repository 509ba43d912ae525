//! Client authentication: the presented secret (or, for `private_key_jwt`, the client assertion: see
//! `assertion`) against the client's snapshot, then the client's and its partner's standing. Every failure is `invalid_client` to the caller; the reason goes to the audit trail, and
//! the audit event names the client, partner and secret as far as they are known.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::NaiveDateTime;

use super::error::{AuthFailure, OAuthError};
use super::request::{AuthMethod, PresentedCredentials};
use super::TokenService;
use crate::audit::AuditEvent;
use crate::credentials::ClientSecret;
use crate::limits::throttle::{Admission, Verdict};
use crate::readmodel::{Barrier, ClientSnapshot};

/// A client whose secret or assertion checked out, and which may receive tokens now.
#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    pub client: Arc<ClientSnapshot>,
    /// The secret it authenticated with; `None` for a client assertion.
    pub secret_id: Option<String>,
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
    ClientSecret::parse(&presented.credential).map_err(|_| failure(presented, AuthFailure::MalformedSecret))
}

/// Whether the client may use the method it used, and may receive tokens now.
fn check_standing(client: &ClientSnapshot, presented: &PresentedCredentials) -> Result<(), OAuthError> {
    check_standing_for(client, presented, false)
}

/// `federated`: authenticated by a federated credential, which is its own permission (registered by the
/// partner for an issuer the operator trusts), whatever the client's methods.
fn check_standing_for(
    client: &ClientSnapshot,
    presented: &PresentedCredentials,
    federated: bool,
) -> Result<(), OAuthError> {
    if !federated && !client.auth_methods.allows(presented.method) {
        return Err(failure(presented, AuthFailure::AuthMethodNotAllowed));
    }
    match client.barrier() {
        Some(Barrier::ClientDisabled) => Err(failure(presented, AuthFailure::ClientDisabled)),
        Some(Barrier::PartnerSuspended) => Err(failure(presented, AuthFailure::PartnerSuspended)),
        None => Ok(()),
    }
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
    check_standing(&client, presented)?;
    let secret_id = Some(stored.id.clone());
    Ok(AuthenticatedClient { client, secret_id })
}

impl TokenService {
    /// Authenticates the presented credentials against the read model at time `at`, under the throttle of
    /// failed authentications (`limits::throttle`): a throttled attempt is refused before its secret is looked
    /// at (unless the throttle lets a suspect address prove itself against a cached client); the throttle's
    /// refusals are audited as `TokenService::record` says.
    pub(crate) async fn authenticate(
        &self,
        presented: &PresentedCredentials,
        at: NaiveDateTime,
        event: &mut AuditEvent,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let address: Option<IpAddr> = event.meta.source_ip.as_deref().and_then(|ip| ip.parse().ok());
        let throttle = &self.limits.throttle;
        let client_id = presented.client_id.as_str();
        let admission = match throttle.admit(address, client_id) {
            Verdict::Admitted(admission) => admission,
            Verdict::Refuse(refusal) => return Err(OAuthError::Limited(refusal)),
            Verdict::RefuseUnlessProven(refusal) => {
                // A secret can prove itself against the cached snapshot alone; an assertion would need the
                // database (its single use), which is what a suspect address is kept from.
                let cached = self.read_model.cached(client_id).filter(|_| presented.method.uses_secret());
                let proven = match (check_format(presented, event), cached) {
                    (Ok(secret), Some(snapshot)) => authenticate(snapshot, presented, &secret, at, event).ok(),
                    _ => None,
                };
                return match proven {
                    Some(authenticated) => {
                        throttle.succeeded(Admission::default(), address, client_id);
                        Ok(authenticated)
                    }
                    None => Err(OAuthError::Limited(refusal)),
                };
            }
        };
        let result = if presented.method.uses_secret() {
            match check_format(presented, event) {
                Ok(secret) => match self.read_model.client(client_id).await {
                    Ok(snapshot) => authenticate(snapshot, presented, &secret, at, event),
                    Err(err) => Err(OAuthError::registry(err)),
                },
                Err(err) => Err(err),
            }
        } else {
            self.authenticate_assertion(presented, at, event).await
        };
        match &result {
            Err(OAuthError::InvalidClient { .. }) => throttle.failed(admission, address, client_id),
            // The registry could not be read: the attempt proved nothing either way.
            Err(_) => throttle.abandoned(admission, address, client_id),
            Ok(_) => throttle.succeeded(admission, address, client_id),
        }
        result
    }

    /// A client assertion: signed by the client (`private_key_jwt`, `iss` is the client id) or issued by an
    /// identity provider of one of its federated credentials; used up if it verifies.
    async fn authenticate_assertion(
        &self,
        presented: &PresentedCredentials,
        at: NaiveDateTime,
        event: &mut AuditEvent,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let client = self.snapshot_of(presented, event).await?;
        let issuer = super::assertion::claimed(&presented.credential, "iss");
        if !client.federated_credentials.is_empty() && issuer.as_deref() != Some(client.client_id.as_str()) {
            let credential = self
                .assertions
                .check_federated(&client, &presented.credential, at)
                .await
                .map_err(|err| err.into_oauth(|reason| failure(presented, reason)))?;
            event.details = Some(serde_json::json!({
                "federated": {"issuer": credential.issuer, "subject": credential.subject},
            }));
            check_standing_for(&client, presented, true)?;
            return Ok(AuthenticatedClient { client, secret_id: None });
        }
        if !client.auth_methods.allows(AuthMethod::PrivateKeyJwt) {
            return Err(failure(presented, AuthFailure::AuthMethodNotAllowed));
        }
        self.assertions
            .check(&client, &presented.credential, at)
            .await
            .map_err(|err| err.into_oauth(|reason| failure(presented, reason)))?;
        check_standing(&client, presented)?;
        Ok(AuthenticatedClient { client, secret_id: None })
    }

    async fn snapshot_of(
        &self,
        presented: &PresentedCredentials,
        event: &mut AuditEvent,
    ) -> Result<Arc<ClientSnapshot>, OAuthError> {
        if !plausible_client_id(&presented.client_id) {
            return Err(failure(presented, AuthFailure::UnknownClient));
        }
        event.client_id = Some(presented.client_id.clone());
        let snapshot = self.read_model.client(&presented.client_id).await.map_err(OAuthError::registry)?;
        let client = snapshot.ok_or_else(|| failure(presented, AuthFailure::UnknownClient))?;
        event.partner_id = Some(client.partner_id.clone());
        Ok(client)
    }

    /// Authenticates again at `at` after a wait: a secret is checked anew; an assertion, already used up, is not
    /// presented again, so only the client's standing is.
    pub(crate) async fn reauthenticate(
        &self,
        presented: &PresentedCredentials,
        at: NaiveDateTime,
        event: &mut AuditEvent,
    ) -> Result<AuthenticatedClient, OAuthError> {
        if presented.method.uses_secret() {
            return self.authenticate(presented, at, event).await;
        }
        let client = self.snapshot_of(presented, event).await?;
        let federated = super::assertion::claimed(&presented.credential, "iss").as_deref() != Some(&client.client_id);
        check_standing_for(&client, presented, federated && !client.federated_credentials.is_empty())?;
        Ok(AuthenticatedClient { client, secret_id: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Outcome, RequestMeta};
    use crate::clock::{Clock, ManualClock};
    use crate::readmodel::snapshot::test_snapshot;
    use crate::readmodel::SecretState;

    struct Case {
        clock: ManualClock,
        client: ClientSnapshot,
        secret: ClientSecret,
    }

    /// A client with one secret that expires in an hour.
    fn case() -> Case {
        let clock = ManualClock::at(chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap().naive_utc());
        let mut client = test_snapshot("pgc_a", "acme", clock.now());
        let secret = ClientSecret::generate();
        let state = SecretState {
            id: "sec_1".into(),
            expires_at: Some(clock.now() + chrono::Duration::hours(1)),
            revoked_at: None,
        };
        client.secrets.insert(secret.digest(), state);
        Case { clock, client, secret }
    }

    fn run(case: &Case, presented_secret: &ClientSecret) -> Result<AuthenticatedClient, AuthFailure> {
        let presented = PresentedCredentials {
            client_id: case.client.client_id.clone(),
            credential: presented_secret.expose().to_string(),
            method: AuthMethod::ClientSecretBasic,
        };
        let mut event = AuditEvent::new("token.request", Outcome::Failure, RequestMeta::default(), case.clock.now());
        authenticate(Some(Arc::new(case.client.clone())), &presented, presented_secret, case.clock.now(), &mut event)
            .map_err(|err| match err {
                OAuthError::InvalidClient { reason, .. } => reason,
                other => panic!("not invalid_client: {other}"),
            })
    }

    #[test]
    fn the_matching_secret_authenticates_until_it_expires() {
        let case = case();
        assert_eq!(run(&case, &case.secret).unwrap().secret_id.as_deref(), Some("sec_1"));
        assert_eq!(run(&case, &ClientSecret::generate()).unwrap_err(), AuthFailure::WrongSecret);
        case.clock.advance(chrono::Duration::hours(1));
        assert_eq!(run(&case, &case.secret).unwrap_err(), AuthFailure::SecretExpired);
    }

    #[test]
    fn revoked_secrets_disabled_clients_and_suspended_partners_fail() {
        let mut revoked = case();
        revoked.client.secrets.values_mut().for_each(|s| s.revoked_at = Some(revoked.clock.now()));
        assert_eq!(run(&revoked, &revoked.secret).unwrap_err(), AuthFailure::SecretRevoked);
        let mut disabled = case();
        disabled.client.enabled = false;
        assert_eq!(run(&disabled, &disabled.secret).unwrap_err(), AuthFailure::ClientDisabled);
        let mut suspended = case();
        suspended.client.partner_suspended = true;
        assert_eq!(run(&suspended, &suspended.secret).unwrap_err(), AuthFailure::PartnerSuspended);
    }

    #[test]
    fn an_unknown_client_fails_like_a_wrong_secret_to_the_caller() {
        let case = case();
        let presented = PresentedCredentials {
            client_id: "pgc_missing".into(),
            credential: case.secret.expose().to_string(),
            method: AuthMethod::ClientSecretPost,
        };
        let mut event = AuditEvent::new("token.request", Outcome::Failure, RequestMeta::default(), case.clock.now());
        let err = authenticate(None, &presented, &case.secret, case.clock.now(), &mut event).unwrap_err();
        assert_eq!(err, OAuthError::InvalidClient { reason: AuthFailure::UnknownClient, basic_challenge: false });
    }
}
