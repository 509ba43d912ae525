//! Token introspection (RFC 7662) for resource servers holding `authz.introspect`, and token revocation
//! (RFC 7009) by the client a token was issued to.

use serde::Serialize;

use super::claims::Audience;
use super::client_auth::AuthenticatedClient;
use super::error::OAuthError;
use super::request::{FormParams, OAuthRequest};
use super::verify::{standing, verify_signature};
use super::{Recording, TokenService};
use crate::audit::{AuditEvent, Effect};
use crate::registry::scopes;
use crate::store::models::RevokedTokenRow;

/// The introspection answer: `{"active": false}` alone, or the token's claims.
#[derive(Debug, Clone, Serialize)]
pub struct Introspection {
    pub active: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub token: Option<ActiveToken>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActiveToken {
    pub scope: String,
    pub client_id: String,
    pub sub: String,
    pub aud: Audience,
    pub iss: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    pub token_type: &'static str,
    pub partner_id: String,
}

/// Authenticates the calling client; the audit event names it.
async fn authenticate_caller(
    service: &TokenService,
    request: &OAuthRequest,
    event: &mut AuditEvent,
) -> Result<AuthenticatedClient, OAuthError> {
    let presented = request.credentials()?;
    service.authenticate(&presented, service.clock.now(), event).await
}

fn required_token(params: &FormParams) -> Result<&str, OAuthError> {
    params.get("token").ok_or_else(|| OAuthError::InvalidRequest("token is required".into()))
}

pub(crate) async fn introspect(
    service: &TokenService,
    request: &OAuthRequest,
    recording: &mut Recording,
) -> Result<Introspection, OAuthError> {
    let event = &mut recording.event;
    let caller = authenticate_caller(service, request, event).await?;
    if !caller.client.allowed_scopes.contains(scopes::INTROSPECT) {
        return Err(OAuthError::UnauthorizedClient(format!("the client needs scope {}", scopes::INTROSPECT)));
    }
    let token = required_token(request.params()?)?;
    let inactive = |event: &mut AuditEvent, reason: &str| {
        event.reason = Some(reason.to_string());
        Ok(Introspection { active: false, token: None })
    };
    let claims = match verify_signature(&service.keys(), &service.settings, token, None, service.clock.now()) {
        Ok(claims) => claims,
        Err(rejection) => return inactive(event, rejection.as_str()),
    };
    event.jti = Some(claims.jti.clone());
    event.details =
        Some(serde_json::json!({"token_client_id": claims.client_id, "token_partner_id": claims.partner_id}));
    let token_client = service.read_model.client(&claims.client_id).await.map_err(OAuthError::registry)?;
    if let Err(rejection) = standing(token_client.as_deref(), &claims) {
        return inactive(event, rejection.as_str());
    }
    event.scopes = Some(claims.scope.clone());
    event.audience = Some(claims.aud.joined());
    Ok(Introspection {
        active: true,
        token: Some(ActiveToken {
            scope: claims.scope,
            client_id: claims.client_id,
            sub: claims.sub,
            aud: claims.aud,
            iss: claims.iss,
            exp: claims.exp,
            iat: claims.iat,
            nbf: claims.nbf,
            jti: claims.jti,
            token_type: "Bearer",
            partner_id: claims.partner_id,
        }),
    })
}

/// Revokes a token of the calling client. Unknown, invalid, expired and other clients' tokens answer success
/// as RFC 7009 requires, but only the caller's own tokens are revoked; the audit event says which case it was.
pub(crate) async fn revoke(
    service: &TokenService,
    request: &OAuthRequest,
    recording: &mut Recording,
) -> Result<(), OAuthError> {
    let event = &mut recording.event;
    let caller = authenticate_caller(service, request, event).await?;
    let token = required_token(request.params()?)?;
    let claims = match verify_signature(&service.keys(), &service.settings, token, None, service.clock.now()) {
        Ok(claims) => claims,
        Err(rejection) => {
            event.reason = Some(format!("not revoked: {}", rejection.as_str()));
            return Ok(());
        }
    };
    event.jti = Some(claims.jti.clone());
    if claims.client_id != caller.client.client_id {
        event.reason = Some("not revoked: the token belongs to another client".into());
        event.details = Some(serde_json::json!({"token_client_id": claims.client_id}));
        return Ok(());
    }
    let expires_at = chrono::DateTime::from_timestamp(claims.exp, 0).map(|t| t.naive_utc()).unwrap_or_default();
    let already_revoked = caller.client.revoked_jtis.contains(&claims.jti);
    event.details = Some(serde_json::json!({"already_revoked": already_revoked}));
    // Stored by the audit writer in the same commit as this request's event: never one without the other.
    recording.effects.push(Effect::RevokeToken(RevokedTokenRow {
        jti: claims.jti,
        client_id: caller.client.client_id.clone(),
        expires_at,
        revoked_at: service.clock.now(),
    }));
    Ok(())
}
