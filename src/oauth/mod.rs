//! The token grant and the service that runs it: client authentication, scope and audience resolution,
//! claims, signing, and the audit record without which no token leaves.

pub mod claims;
pub mod client_auth;
pub mod error;
pub mod grant;
pub mod request;
pub mod verify;

use std::sync::Arc;

pub use claims::{AccessTokenClaims, Audience};
pub use error::{AuthFailure, OAuthError};
pub use grant::IssuedToken;
pub use request::FormParams;

use crate::audit::{AuditEvent, AuditWriter, Outcome, RequestMeta};
use crate::config::TokenSettings;
use crate::keys::KeyRing;
use crate::store::DbPool;

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

    /// Verifies one of this server's tokens and its current standing. `audience`: required audience, if any.
    pub async fn check_token(
        &self,
        token: String,
        audience: Option<String>,
    ) -> Result<Result<(AccessTokenClaims, verify::Standing), verify::Rejection>, crate::store::StoreError> {
        let claims = match verify::verify_signature(&self.keys, &self.settings, &token, audience.as_deref()) {
            Ok(claims) => claims,
            Err(rejection) => return Ok(Err(rejection)),
        };
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get()?;
            Ok(verify::check_standing(&mut conn, &claims)?.map(|standing| (claims, standing)))
        })
        .await
        .map_err(|_| crate::store::StoreError::Unavailable("token check interrupted".into()))?
    }

    /// The client-credentials grant for a parsed form body (or the error its parsing produced) and the
    /// request's `Authorization` header. Answers only after the request's audit event is committed.
    pub async fn issue(
        &self,
        params: Result<FormParams, OAuthError>,
        authorization: Option<String>,
        meta: RequestMeta,
    ) -> Result<IssuedToken, OAuthError> {
        let mut event = AuditEvent::new("token.request", Outcome::Failure, meta);
        let (result, mut event) = match params {
            Err(err) => (Err(err), event),
            Ok(params) => {
                let (pool, keys, settings) = (self.pool.clone(), self.keys.clone(), self.settings.clone());
                let joined = tokio::task::spawn_blocking(move || {
                    let result = match pool.get() {
                        Ok(mut conn) => grant::client_credentials(
                            &mut conn,
                            &settings,
                            &keys,
                            &params,
                            authorization.as_deref(),
                            &mut event,
                        ),
                        Err(err) => Err(OAuthError::TemporarilyUnavailable(format!("database unavailable: {err}"))),
                    };
                    (result, event)
                })
                .await;
                joined.map_err(|_| OAuthError::TemporarilyUnavailable("the grant was interrupted".into()))?
            }
        };
        let used_secret = match &result {
            Ok(_) => {
                event.outcome = Outcome::Success;
                event.secret_id.clone()
            }
            Err(err) => {
                event.reason = Some(err.audit_reason());
                None
            }
        };
        self.audit
            .record_with_secret_use(event, used_secret)
            .await
            .map_err(|err| OAuthError::TemporarilyUnavailable(format!("cannot record the request: {err}")))?;
        result
    }
}
