//! The token grant and the service that runs it: client authentication, scope and audience resolution,
//! claims, signing, and the audit record without which no token leaves.

pub mod assertion;
pub mod claims;
pub mod client_auth;
pub mod error;
pub mod grant;
pub mod introspection;
pub mod metrics;
pub mod remote_keys;
pub mod request;
pub mod single_use;
pub mod verified;
pub mod verify;

use std::sync::Arc;

pub use claims::{AccessTokenClaims, Audience};
pub use error::{AuthFailure, OAuthError};
pub use grant::IssuedToken;
pub use request::{FormParams, OAuthRequest};

use crate::audit::{AuditEvent, AuditWriter, Effect, Outcome, Recorded, RequestMeta};
use crate::clock::SharedClock;
use crate::keys::KeyRing;
use crate::limits::{Limit, Limits, Refusal};
use crate::metrics::Metrics;
use crate::readmodel::ReadModel;
use crate::registry::live_keys::LiveKeys;
use crate::registry::{scopes, Caller};
use crate::store::StoreError;

/// Why a revocation stream receiver's token is refused (RFC 6750 section 3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiverRefusal {
    /// `invalid_token`: not a good token of this server for the issuer as audience.
    Invalid(verify::Rejection),
    /// `insufficient_scope`: a good token without `authz.events.read`.
    InsufficientScope,
}

/// Token settings after defaults are resolved.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub issuer: String,
    pub default_audience: String,
    pub admin_audience: String,
    pub default_lifetime_secs: i64,
    pub max_lifetime_secs: i64,
}

/// The OAuth endpoints over the registry's read model: with a warm cache a request reads nothing from the
/// database, and its only database work is its share of the group-committed audit insert.
#[derive(Clone)]
pub struct TokenService {
    read_model: Arc<ReadModel>,
    keys: Arc<LiveKeys>,
    settings: Arc<TokenSettings>,
    clock: SharedClock,
    audit: AuditWriter,
    limits: Arc<Limits>,
    metrics: Arc<Metrics>,
    assertions: Arc<assertion::Assertions>,
    /// The revocation stream receivers' tokens, whose signature is checked once rather than on every poll.
    receiver_tokens: Arc<verified::VerifiedTokens>,
}

/// Every OAuth request answers within this, the database reachable or not: a registry read and the audit
/// commit share it, and what does not make it answers `503 temporarily_unavailable` with `Retry-After`.
pub const REQUEST_DEADLINE: std::time::Duration = std::time::Duration::from_millis(1800);

/// What one request leaves for the audit writer: its event, filled in as facts become known, and the changes
/// (`effects`) that must commit together with it.
pub struct Recording {
    pub event: AuditEvent,
    pub effects: Vec<Effect>,
    deadline: tokio::time::Instant,
    named_client: request::NamedClient,
}

impl TokenService {
    /// Every part of the token path, as `start` assembles it once.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        read_model: Arc<ReadModel>,
        keys: Arc<LiveKeys>,
        settings: Arc<TokenSettings>,
        clock: SharedClock,
        audit: AuditWriter,
        limits: Arc<Limits>,
        metrics: Arc<Metrics>,
        assertions: Arc<assertion::Assertions>,
    ) -> Self {
        let receiver_tokens = Arc::default();
        metrics.register_token_denials();
        TokenService { read_model, keys, settings, clock, audit, limits, metrics, assertions, receiver_tokens }
    }

    pub fn settings(&self) -> &TokenSettings {
        &self.settings
    }

    /// The key ring to sign or verify with now (a snapshot: a reload swaps in another).
    pub fn keys(&self) -> Arc<KeyRing> {
        self.keys.current()
    }

    /// The live key ring itself, for what it knows beyond the ring (readiness asks whether its keys open).
    pub fn live_keys(&self) -> &Arc<LiveKeys> {
        &self.keys
    }

    pub fn read_model(&self) -> &Arc<ReadModel> {
        &self.read_model
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
        let claims = match verify::verify_signature(
            &self.keys(),
            &self.settings,
            &token,
            Some(admin_audience),
            self.clock.now(),
        ) {
            Ok(claims) if claims.aud == Audience::One(admin_audience.clone()) => claims,
            Ok(_) => return Ok(Err(verify::Rejection::WrongAudience)),
            Err(rejection) => return Ok(Err(rejection)),
        };
        let snapshot = self.read_model.client(&claims.client_id).await?;
        let client = match verify::standing(snapshot.as_deref(), &claims) {
            Ok(client) => client,
            Err(rejection) => return Ok(Err(rejection)),
        };
        let current = claims.scopes().filter(|scope| client.allowed_scopes.contains(*scope));
        let caller = Caller::from_token(&claims.client_id, &client.partner_id, current, meta);
        Ok(Ok(caller.with_clock(self.clock.clone())))
    }

    /// Authenticates a revocation stream receiver by its bearer token: one of this server's tokens for the
    /// issuer itself as audience (a token meant for a resource server cannot be replayed here to acknowledge
    /// events in its client's name), still standing, carrying `authz.events.read` that its client still holds.
    /// Returns the receiver's client id.
    pub async fn event_receiver(&self, token: &str) -> Result<Result<String, ReceiverRefusal>, StoreError> {
        let issuer = &self.settings.issuer;
        let claims = match self.receiver_tokens.verify(&self.keys(), &self.settings, token, issuer, self.clock.now()) {
            Ok(claims) => claims,
            Err(rejection) => return Ok(Err(ReceiverRefusal::Invalid(rejection))),
        };
        let snapshot = self.read_model.client(&claims.client_id).await?;
        let client = match verify::standing(snapshot.as_deref(), &claims) {
            Ok(client) => client,
            Err(rejection) => return Ok(Err(ReceiverRefusal::Invalid(rejection))),
        };
        let reads_events = claims.scopes().any(|scope| scope == scopes::EVENTS_READ);
        if !reads_events || !client.allowed_scopes.contains(scopes::EVENTS_READ) {
            return Ok(Err(ReceiverRefusal::InsufficientScope));
        }
        Ok(Ok(claims.client_id.clone()))
    }

    /// The client-credentials grant. Answers only after the request's audit event is committed.
    pub async fn issue(&self, request: OAuthRequest) -> Result<IssuedToken, OAuthError> {
        let mut recording = self.recording("token.request", &request);
        let result = grant::client_credentials(self, &request, &mut recording).await;
        self.finish(result, recording).await
    }

    /// Token introspection (RFC 7662).
    pub async fn introspect(&self, request: OAuthRequest) -> Result<introspection::Introspection, OAuthError> {
        let mut recording = self.recording("token.introspect", &request);
        let result = introspection::introspect(self, &request, &mut recording).await;
        self.finish(result, recording).await
    }

    /// Token revocation (RFC 7009).
    pub async fn revoke(&self, request: OAuthRequest) -> Result<(), OAuthError> {
        let mut recording = self.recording("token.revoke", &request);
        let result = introspection::revoke(self, &request, &mut recording).await;
        self.finish(result, recording).await
    }

    /// Audits the throttle's refusals after the first of each address, client id and minute, for every minute
    /// that has ended (all of them with `everything`, at shutdown), as one `auth_throttled` failure each, with
    /// their number in `details.refusals`.
    pub async fn record_throttle_summaries(&self, everything: bool) {
        for summary in self.limits.throttle.take_summaries(self.clock.now(), everything) {
            let meta = RequestMeta { source_ip: summary.address.map(|ip| ip.to_string()), ..RequestMeta::default() };
            let mut event = AuditEvent::new(summary.kind, Outcome::Failure, meta, summary.last);
            event.client_id = Some(summary.client_id);
            event.reason = Some(Limit::Throttled.as_str().to_string());
            event.details = Some(serde_json::json!({
                "refusals": summary.refusals,
                "minute": crate::store::utc::format(&summary.minute),
            }));
            // Deadlines are on real time, not the server's clock: they bound real waiting.
            let deadline = tokio::time::Instant::now() + REQUEST_DEADLINE;
            if let Err(err) = self.audit.record_until(event, Vec::new(), deadline).await {
                log::warn!("cannot record {} throttled refusal(s): {err}", summary.refusals);
            }
        }
    }

    /// Records the throttle's summaries every few seconds, for as long as the server runs.
    pub async fn summarise_throttled_refusals(self) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            tick.tick().await;
            self.record_throttle_summaries(false).await;
        }
    }

    fn recording(&self, event_type: &'static str, request: &OAuthRequest) -> Recording {
        let event = AuditEvent::new(event_type, Outcome::Failure, request.meta.clone(), self.clock.now());
        Recording {
            event,
            effects: Vec::new(),
            deadline: tokio::time::Instant::now() + REQUEST_DEADLINE,
            named_client: request.named_client.clone(),
        }
    }

    /// Every OAuth request ends here, so the metrics count its final answer here and nowhere else.
    async fn finish<T>(&self, result: Result<T, OAuthError>, recording: Recording) -> Result<T, OAuthError> {
        let is_token_request = recording.event.event_type == "token.request";
        let request_id = recording.event.meta.request_id.clone();
        let answer = self.record(result, recording).await;
        if let Err(OAuthError::ServerError(cause)) = &answer {
            log::error!("internal error on the OAuth path (request {}): {cause}", request_id.as_deref().unwrap_or("-"));
        }
        if is_token_request {
            self.metrics.token_request(&answer);
        }
        self.metrics.oauth_request(&answer);
        answer
    }

    /// Records the request and only then answers; when the event cannot be recorded the caller gets
    /// `temporarily_unavailable`, never an unrecorded result. An `Ok` that set a `reason` (a request served but
    /// not carried out, such as revoking another client's token) is recorded as a failure. The effects an
    /// endpoint decided on (such as a revocation) are committed by the audit writer together with the event,
    /// so that neither lands without the other; a failed request's effects are dropped.
    async fn record<T>(&self, result: Result<T, OAuthError>, recording: Recording) -> Result<T, OAuthError> {
        let Recording { mut event, mut effects, deadline, named_client } = recording;
        named_client.note(event.client_id.as_deref());
        if let Err(OAuthError::Limited(Refusal { limit: Limit::Throttled, .. })) = &result {
            // The first refusal of an address for a client id in a minute is audited as it happens, the rest
            // of that minute are counted and audited as one event (`record_throttle_summaries`): a blocked
            // attacker does not get one audit row per request.
            let address = event.meta.source_ip.as_deref().and_then(|ip| ip.parse().ok());
            let client_id = event.client_id.as_deref().unwrap_or_default();
            if !self.limits.throttle.count_refusal(event.event_type, address, client_id, event.occurred_at) {
                return result;
            }
        }
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
        let recorded = self.audit.record_until(event, effects, deadline).await.map_err(|err| match err {
            crate::audit::AuditError::WriteFailed { fault: true, .. } => {
                OAuthError::ServerError(format!("cannot record the request: {err}"))
            }
            _ => OAuthError::TemporarilyUnavailable(format!("cannot record the request: {err}")),
        })?;
        match recorded {
            Recorded::Stored => result,
            // The writer found the partner's quota used up by the time this token would count: it is dropped.
            Recorded::OverQuota => Err(OAuthError::Limited(crate::limits::quota::refusal(self.clock.now()))),
        }
    }
}
