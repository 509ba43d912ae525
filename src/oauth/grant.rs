//! The client-credentials grant (RFC 6749 section 4.4) as plain domain code: authenticate, resolve scopes and
//! audience, assemble the RFC 9068 claims, sign.

use std::collections::BTreeSet;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::NaiveDateTime;
use serde::Serialize;

use super::claims::{AccessTokenClaims, Audience};
use super::error::OAuthError;
use super::request::{self, OAuthRequest};
use super::{Recording, TokenService, TokenSettings};
use crate::audit::Effect;
use crate::credentials::random_bytes;
use crate::limits::quota::QuotaTerms;
use crate::limits::Rates;
use crate::readmodel::ClientSnapshot;

/// The successful token response body (RFC 6749 section 5.1).
#[derive(Clone, Serialize)]
pub struct IssuedToken {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// No `scope`: every allowed scope. With `scope`: every requested scope must be allowed; no silent narrowing.
pub fn resolve_scopes(allowed: &BTreeSet<String>, requested: Option<Vec<String>>) -> Result<Vec<String>, OAuthError> {
    match requested {
        None => Ok(allowed.iter().cloned().collect()),
        Some(requested) => {
            // Named back to the client that sent them (at most a few: the request body is bounded anyway).
            let refused: Vec<&str> = requested.iter().filter(|s| !allowed.contains(*s)).map(String::as_str).collect();
            match refused.len() {
                0 => Ok(requested),
                n @ ..=MAX_NAMED_SCOPES => Err(refused_scopes(&refused, n)),
                n => Err(refused_scopes(&refused[..MAX_NAMED_SCOPES], n)),
            }
        }
    }
}

const MAX_NAMED_SCOPES: usize = 10;

fn refused_scopes(named: &[&str], total: usize) -> OAuthError {
    let more = if total > named.len() { format!(" (and {} more)", total - named.len()) } else { String::new() };
    OAuthError::InvalidScope(format!("the client may not request these scopes: {}{more}", named.join(" ")))
}

/// The audiences a client may ask for: its own list, plus the server default unless it has exactly one
/// audience (a client with exactly one always gets that one when it asks for none).
pub fn resolve_audience(
    client_audiences: &[String],
    requested: Vec<String>,
    default: &str,
) -> Result<Vec<String>, OAuthError> {
    let default_allowed = client_audiences.len() != 1;
    if requested.is_empty() {
        return Ok(vec![if default_allowed { default.to_string() } else { client_audiences[0].clone() }]);
    }
    let allowed = |aud: &String| client_audiences.contains(aud) || (default_allowed && aud == default);
    if requested.iter().all(allowed) {
        Ok(requested)
    } else {
        Err(OAuthError::InvalidTarget("the client may not request a token for this audience".into()))
    }
}

/// Tokens whose `iat` (whole seconds) is at or before a bulk-revocation cut-off are dead, so a token issued in
/// the same second as a cut-off would be born revoked. Only in that case: how long until the next second.
pub fn wait_past_cutoff(now: NaiveDateTime, cutoff: Option<NaiveDateTime>) -> Option<std::time::Duration> {
    let cutoff_secs = cutoff?.and_utc().timestamp();
    if now.and_utc().timestamp() > cutoff_secs {
        return None;
    }
    let next_second = chrono::DateTime::from_timestamp(cutoff_secs + 1, 0)?.naive_utc();
    Some((next_second - now).to_std().unwrap_or_default())
}

/// What the client asked for, parsed.
#[derive(Debug, Clone, Default)]
pub struct TokenAsk {
    pub scopes: Option<Vec<String>>,
    pub audiences: Vec<String>,
}

/// The claims of the token `client` gets for `ask` at `now`: the grant's rules on the snapshot, no I/O.
pub fn claims_for(
    client: &ClientSnapshot,
    settings: &TokenSettings,
    ask: &TokenAsk,
    now: NaiveDateTime,
    jti: String,
) -> Result<AccessTokenClaims, OAuthError> {
    let scopes = resolve_scopes(&client.allowed_scopes, ask.scopes.clone())?;
    let audience =
        Audience::from_list(resolve_audience(&client.audiences, ask.audiences.clone(), &settings.default_audience)?);
    let lifetime = client
        .token_lifetime_secs
        .map(i64::from)
        .unwrap_or(settings.default_lifetime_secs)
        .min(settings.max_lifetime_secs);
    let issued_at = now.and_utc().timestamp();
    Ok(AccessTokenClaims {
        iss: settings.issuer.clone(),
        sub: client.client_id.clone(),
        client_id: client.client_id.clone(),
        aud: audience,
        iat: issued_at,
        nbf: issued_at,
        exp: issued_at + lifetime,
        jti,
        scope: scopes.join(" "),
        partner_id: client.partner_id.clone(),
        secret_id: None,
    })
}

/// Runs the grant. The audit event is filled in as facts become known, whether the grant succeeds or not.
pub(crate) async fn client_credentials(
    service: &TokenService,
    request: &OAuthRequest,
    recording: &mut Recording,
) -> Result<IssuedToken, OAuthError> {
    let params = request.params()?;
    let presented = request.credentials()?;
    let event = &mut recording.event;
    event.client_id = Some(presented.client_id.chars().take(64).collect());
    let grant_type =
        params.get("grant_type").ok_or_else(|| OAuthError::InvalidRequest("grant_type is required".into()))?;
    if grant_type != "client_credentials" {
        return Err(OAuthError::UnsupportedGrantType("only client_credentials is supported".into()));
    }
    let ask = TokenAsk { scopes: request::requested_scopes(params)?, audiences: request::requested_audiences(params)? };

    let mut now = service.clock.now();
    let mut authenticated = service.authenticate(&presented, now, event).await?;
    if let Some(wait) = wait_past_cutoff(now, authenticated.client.tokens_revoked_before) {
        // Issued now, the token would be dead on arrival: wait (holding no connection and no thread) for the
        // next second, and decide again on what is true then.
        tokio::time::sleep(wait).await;
        now = service.clock.now();
        authenticated = service.reauthenticate(&presented, now, event).await?;
        if wait_past_cutoff(now, authenticated.client.tokens_revoked_before).is_some() {
            return Err(OAuthError::TemporarilyUnavailable("the client's tokens were just revoked; retry".into()));
        }
    }
    let client = &authenticated.client;
    // The in-memory buckets (the default) stay a plain call; only a shared store is awaited, and its call is
    // boxed so that the grant's future (and every request's copy of it) does not grow by a Redis call's state.
    let rated = match &service.limits.rates {
        Rates::Local(local) => local.check(client),
        Rates::Shared(shared) => Box::pin(shared.check(client)).await,
    };
    rated.map_err(OAuthError::Limited)?;
    let jti = URL_SAFE_NO_PAD.encode(random_bytes::<16>());
    let mut claims = claims_for(client, &service.settings, &ask, now, jti)?;
    claims.secret_id = authenticated.secret_id.clone();
    // Last, so that only a token that would otherwise be issued meets the quota; the audit writer counts it
    // and decides exactly (see `limits::quota`).
    service.limits.quota.check(client, now).map_err(OAuthError::Limited)?;
    let access_token = service.keys().sign_jwt(&claims);
    event.scopes = Some(claims.scope.clone());
    event.audience = Some(claims.aud.joined());
    event.jti = Some(claims.jti.clone());
    recording.effects.push(Effect::CountToken(QuotaTerms::of(client)));
    let expires_in = claims.exp - claims.iat;
    Ok(IssuedToken { access_token, token_type: "Bearer", expires_in, scope: claims.scope })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::readmodel::snapshot::test_snapshot;

    fn settings() -> TokenSettings {
        TokenSettings {
            issuer: "https://issuer".into(),
            default_audience: "https://default".into(),
            admin_audience: "https://issuer/admin".into(),
            default_lifetime_secs: 600,
            max_lifetime_secs: 3600,
        }
    }

    #[test]
    fn claims_follow_the_snapshot_and_the_clock() {
        let clock = ManualClock::at(chrono::DateTime::from_timestamp(1_800_000_000, 250_000_000).unwrap().naive_utc());
        let mut client = test_snapshot("pgc_a", "acme", clock.now());
        client.allowed_scopes = set(&["orders.read", "orders.write"]);
        client.audiences = vec!["https://api.acme".into()];
        let claims = claims_for(&client, &settings(), &TokenAsk::default(), clock.now(), "j1".into()).unwrap();
        assert_eq!((claims.iat, claims.nbf, claims.exp), (1_800_000_000, 1_800_000_000, 1_800_000_600));
        assert_eq!(claims.scope, "orders.read orders.write");
        assert_eq!(claims.aud, Audience::One("https://api.acme".into()));
        assert_eq!((claims.sub.as_str(), claims.partner_id.as_str()), ("pgc_a", "acme"));

        client.token_lifetime_secs = Some(7200);
        clock.advance(chrono::Duration::seconds(10));
        let ask = TokenAsk { scopes: Some(vec!["orders.read".into()]), audiences: vec![] };
        let claims = claims_for(&client, &settings(), &ask, clock.now(), "j2".into()).unwrap();
        assert_eq!(claims.exp - claims.iat, 3600, "never above the server maximum");
        assert_eq!(claims.iat, 1_800_000_010);
        let ask = TokenAsk { scopes: Some(vec!["admin.all".into()]), audiences: vec![] };
        assert_eq!(
            claims_for(&client, &settings(), &ask, clock.now(), "j3".into()).unwrap_err().code(),
            "invalid_scope"
        );
    }

    #[test]
    fn a_token_waits_for_the_second_after_a_bulk_revocation() {
        let clock = ManualClock::at(chrono::DateTime::from_timestamp(1_800_000_000, 400_000_000).unwrap().naive_utc());
        let cutoff = Some(clock.now());
        assert_eq!(wait_past_cutoff(clock.now(), cutoff), Some(std::time::Duration::from_millis(600)));
        assert_eq!(wait_past_cutoff(clock.now(), None), None);
        clock.advance(chrono::Duration::milliseconds(600));
        assert_eq!(wait_past_cutoff(clock.now(), cutoff), None, "from the next second on, tokens outlive the cut-off");
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn scopes_are_all_allowed_or_exactly_the_requested() {
        let allowed = set(&["a.read", "a.write"]);
        assert_eq!(resolve_scopes(&allowed, None).unwrap(), ["a.read", "a.write"]);
        assert_eq!(resolve_scopes(&allowed, Some(vec!["a.read".into()])).unwrap(), ["a.read"]);
        let err = resolve_scopes(&allowed, Some(vec!["a.read".into(), "b.read".into()])).unwrap_err();
        assert_eq!(err.code(), "invalid_scope");
        assert_eq!(err.to_string(), "invalid_scope: the client may not request these scopes: b.read");
        let many: Vec<String> = (0..12).map(|i| format!("c{i:02}.read")).collect();
        let err = resolve_scopes(&allowed, Some(many)).unwrap_err();
        assert!(err.to_string().ends_with("c08.read c09.read (and 2 more)"), "{err}");
    }

    #[test]
    fn audience_rules() {
        let one = vec!["https://one".to_string()];
        let two = vec!["https://one".to_string(), "https://two".to_string()];
        assert_eq!(resolve_audience(&one, vec![], "https://default").unwrap(), ["https://one"]);
        assert_eq!(resolve_audience(&two, vec![], "https://default").unwrap(), ["https://default"]);
        assert_eq!(resolve_audience(&[], vec![], "https://default").unwrap(), ["https://default"]);
        assert!(resolve_audience(&one, vec!["https://default".into()], "https://default").is_err());
        assert_eq!(resolve_audience(&two, vec!["https://two".into()], "https://default").unwrap(), ["https://two"]);
        assert_eq!(resolve_audience(&two, vec!["https://evil".into()], "d").unwrap_err().code(), "invalid_target");
    }
}
