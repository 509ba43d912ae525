//! The token grant and the service that runs it: client authentication, scope and audience resolution,
//! claims, signing, and the audit record without which no token leaves.

pub mod claims;
pub mod client_auth;
pub mod error;
pub mod grant;
pub mod introspection;
pub mod request;
pub mod verify;

use std::sync::Arc;

pub use claims::{AccessTokenClaims, Audience};
pub use error::{AuthFailure, OAuthError};
pub use grant::IssuedToken;
pub use request::FormParams;

use crate::audit::{AuditEvent, AuditWriter, Effect, Outcome, RequestMeta};
use crate::config::TokenSettings;
use crate::keys::KeyRing;
use crate::registry::Caller;
use crate::store::{DbPool, StoreError};

/// Runs token requests on the blocking pool and records each one before answering.
#[derive(Clone)]
pub struct TokenService {
    pool: DbPool,
    keys: Arc<KeyRing>,
    settings: Arc<TokenSettings>,
    audit: AuditWriter,
}

impl TokenService {
    pub fn new(pool: DbPool, keys: Arc<KeyRing>, settings: Arc<TokenSettings>, audit: AuditWriter) -> Self {
        TokenService { pool, keys, settings, audit }
    }

    pub fn settings(&self) -> &TokenSettings {
        &self.settings
    }

    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// Authenticates an admin API caller by its bearer token: one of this server's tokens whose only audience
    /// is the admin audience (a token also meant for a resource server could otherwise be replayed here), still
    /// standing, and with the permissions of the scopes it carries that its client is still allowed now (a
    /// scope removed since the token was issued no longer counts).
    pub async fn admin_caller(
        &self,
        token: String,
        meta: RequestMeta,
    ) -> Result<Result<Caller, verify::Rejection>, StoreError> {
        let admin_audience = &self.settings.admin_audience;
        let claims = match verify::verify_signature(&self.keys, &self.settings, &token, Some(admin_audience)) {
            Ok(claims) if claims.aud == Audience::One(admin_audience.clone()) => claims,
            Ok(_) => return Ok(Err(verify::Rejection::WrongAudience)),
            Err(rejection) => return Ok(Err(rejection)),
        };
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get()?;
            let standing = match verify::check_standing(&mut conn, &claims)? {
                Ok(standing) => standing,
                Err(rejection) => return Ok(Err(rejection)),
            };
            let allowed =
                crate::registry::clients::allowed_scopes(&mut conn, &standing.client.id, &standing.partner.id)?;
            let current = claims.scopes().filter(|scope| allowed.contains(*scope));
            Ok(Ok(Caller::from_token(&claims.client_id, &standing.partner.id, current, meta)))
        })
        .await
        .map_err(|_| StoreError::Unavailable("token check interrupted".into()))?
    }

    /// The client-credentials grant for a parsed form body (or the error its parsing produced) and the
    /// request's `Authorization` header. Answers only after the request's audit event is committed.
    pub async fn issue(
        &self,
        params: Result<FormParams, OAuthError>,
        authorization: Option<String>,
        meta: RequestMeta,
    ) -> Result<IssuedToken, OAuthError> {
        self.run_audited("token.request", params, authorization, meta, grant::client_credentials).await
    }

    /// Token introspection (RFC 7662).
    pub async fn introspect(
        &self,
        params: Result<FormParams, OAuthError>,
        authorization: Option<String>,
        meta: RequestMeta,
    ) -> Result<introspection::Introspection, OAuthError> {
        self.run_audited("token.introspect", params, authorization, meta, introspection::introspect).await
    }

    /// Token revocation (RFC 7009).
    pub async fn revoke(
        &self,
        params: Result<FormParams, OAuthError>,
        authorization: Option<String>,
        meta: RequestMeta,
    ) -> Result<(), OAuthError> {
        self.run_audited("token.revoke", params, authorization, meta, introspection::revoke).await
    }

    /// Runs an OAuth endpoint on the blocking pool and answers only after its audit event is committed; when
    /// the event cannot be recorded the caller gets `temporarily_unavailable`, never an unrecorded result.
    /// The endpoint fills the event in; an `Ok` that set a `reason` (a request served but not carried out,
    /// such as revoking another client's token) is recorded as a failure. Changes the endpoint decides on
    /// (`effects`, such as a revocation) are committed by the audit writer together with the event, so that
    /// neither lands without the other.
    async fn run_audited<T: Send + 'static>(
        &self,
        event_type: &'static str,
        params: Result<FormParams, OAuthError>,
        authorization: Option<String>,
        meta: RequestMeta,
        endpoint: Endpoint<T>,
    ) -> Result<T, OAuthError> {
        let (result, mut event, mut effects) = match params {
            Err(err) => (Err(err), AuditEvent::new(event_type, Outcome::Failure, meta), Vec::new()),
            Ok(params) => {
                let attempt = || {
                    let event = AuditEvent::new(event_type, Outcome::Failure, meta.clone());
                    self.run_endpoint(endpoint, params.clone(), authorization.clone(), event)
                };
                match attempt().await? {
                    // Only the second attempt is recorded: the first issued nothing and changed nothing.
                    (Err(OAuthError::IssueLater(wait)), _, _) => {
                        tokio::time::sleep(wait).await;
                        attempt().await?
                    }
                    done => done,
                }
            }
        };
        match &result {
            Ok(_) => {
                if event.reason.is_none() {
                    event.outcome = Outcome::Success;
                }
                effects.extend(event.secret_id.clone().map(Effect::SecretUsed));
            }
            Err(err) => {
                event.reason = Some(err.audit_reason());
                effects.clear();
            }
        }
        self.audit
            .record_with(event, effects)
            .await
            .map_err(|err| OAuthError::TemporarilyUnavailable(format!("cannot record the request: {err}")))?;
        result
    }

    /// One run of an endpoint on the blocking pool, with a pooled connection held only for that run.
    async fn run_endpoint<T: Send + 'static>(
        &self,
        endpoint: Endpoint<T>,
        params: FormParams,
        authorization: Option<String>,
        mut event: AuditEvent,
    ) -> Result<(Result<T, OAuthError>, AuditEvent, Vec<Effect>), OAuthError> {
        let (pool, keys, settings) = (self.pool.clone(), self.keys.clone(), self.settings.clone());
        tokio::task::spawn_blocking(move || {
            let mut effects = Vec::new();
            let result = match pool.get() {
                Ok(mut conn) => {
                    endpoint(&mut conn, &keys, &settings, &params, authorization.as_deref(), &mut event, &mut effects)
                }
                Err(err) => Err(OAuthError::TemporarilyUnavailable(format!("database unavailable: {err}"))),
            };
            (result, event, effects)
        })
        .await
        .map_err(|_| OAuthError::TemporarilyUnavailable("the request was interrupted".into()))
    }
}

/// An OAuth endpoint's domain function.
type Endpoint<T> = fn(
    &mut crate::store::DbConnection,
    &KeyRing,
    &TokenSettings,
    &FormParams,
    Option<&str>,
    &mut AuditEvent,
    &mut Vec<Effect>,
) -> Result<T, OAuthError>;
