//! The audit event type and the request metadata every event carries.

use chrono::NaiveDateTime;
use serde::Serialize;

use crate::store::models::NewAuditEventRow;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

/// Who sent a request and through what: stored with every event.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub request_id: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
}

/// One audit event. Never holds a secret, a token or a private key: callers put ids and names here only.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub occurred_at: NaiveDateTime,
    pub event_type: &'static str,
    pub outcome: Outcome,
    pub reason: Option<String>,
    pub actor: Option<String>,
    pub partner_id: Option<String>,
    pub client_id: Option<String>,
    pub secret_id: Option<String>,
    pub scopes: Option<String>,
    pub audience: Option<String>,
    pub jti: Option<String>,
    pub details: Option<serde_json::Value>,
    pub meta: RequestMeta,
}

impl AuditEvent {
    pub fn new(event_type: &'static str, outcome: Outcome, meta: RequestMeta) -> Self {
        AuditEvent {
            occurred_at: crate::store::now(),
            event_type,
            outcome,
            reason: None,
            actor: None,
            partner_id: None,
            client_id: None,
            secret_id: None,
            scopes: None,
            audience: None,
            jti: None,
            details: None,
            meta,
        }
    }

    /// The row to insert. The caller-supplied text columns (client id, request id, user agent) pass through
    /// `scrub`: a partner who swaps its client id and secret must not find the secret in the audit trail.
    pub fn into_row(self) -> NewAuditEventRow {
        NewAuditEventRow {
            occurred_at: self.occurred_at,
            event_type: self.event_type.to_string(),
            outcome: self.outcome.as_str().to_string(),
            reason: text(self.reason),
            request_id: scrub(self.meta.request_id),
            actor: self.actor,
            partner_id: self.partner_id,
            client_id: scrub(self.client_id),
            secret_id: self.secret_id,
            scopes: self.scopes,
            audience: self.audience,
            jti: self.jti,
            source_ip: self.meta.source_ip,
            user_agent: scrub(self.meta.user_agent),
            details: self.details.map(|d| d.to_string()),
        }
    }
}

/// What a scrubbed value is stored as.
pub const REDACTED: &str = "<redacted: looks like a credential>";

/// Replaces a value that looks like a client secret or an access token. Callers type into id fields whatever
/// they have at hand; the audit trail records ids and names only (DESIGN.md 4.4).
fn scrub(value: Option<String>) -> Option<String> {
    text(value).map(|v| if looks_like_credential(&v) { REDACTED.to_string() } else { v })
}

/// Longest free-text value stored; longer ones are cut.
const MAX_TEXT_CHARS: usize = 512;

/// Free text as it may be stored: control characters (NUL above all, which PostgreSQL refuses in text and
/// which would fail a whole group-commit batch) replaced, and the length bounded.
fn text(value: Option<String>) -> Option<String> {
    value.map(|v| v.chars().take(MAX_TEXT_CHARS).map(|c| if c.is_control() { '\u{fffd}' } else { c }).collect())
}

/// A client secret (`pgs_` and at least 20 base62 characters, so a truncated one too), or a compact JWS
/// (a word of three dot-separated parts, the first a base64url JSON header `eyJ...`).
fn looks_like_credential(value: &str) -> bool {
    let prefix = crate::registry::credentials::SECRET_PREFIX;
    let secret = value
        .match_indices(prefix)
        .any(|(at, _)| value[at + prefix.len()..].bytes().take_while(u8::is_ascii_alphanumeric).count() >= 20);
    let jws = value.split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')).any(|word| {
        let parts: Vec<&str> = word.split('.').collect();
        parts.len() == 3 && parts[0].starts_with("eyJ") && parts.iter().all(|p| !p.is_empty())
    });
    secret || jws
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_scrubbed_from_caller_supplied_columns() {
        let secret = crate::registry::credentials::ClientSecret::generate().expose().to_string();
        let jws = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        let mut event = AuditEvent::new(
            "token.request",
            Outcome::Failure,
            RequestMeta {
                request_id: Some(secret.clone()),
                source_ip: None,
                user_agent: Some(format!("curl/8 Bearer {jws}")),
            },
        );
        event.client_id = Some(format!(" {secret}"));
        let row = event.clone().into_row();
        assert_eq!(row.client_id.as_deref(), Some(REDACTED));
        assert_eq!(row.request_id.as_deref(), Some(REDACTED));
        assert_eq!(row.user_agent.as_deref(), Some(REDACTED));

        event.client_id = Some("pgc_0123456789abcdefghijABCD".into());
        event.meta.request_id = Some("req-1.2:3".into());
        event.meta.user_agent = Some("partner-sync/1.2.3 (linux; pgs_ok)".into());
        let row = event.into_row();
        assert_eq!(row.client_id.as_deref(), Some("pgc_0123456789abcdefghijABCD"));
        assert_eq!(row.request_id.as_deref(), Some("req-1.2:3"));
        assert_eq!(row.user_agent.as_deref(), Some("partner-sync/1.2.3 (linux; pgs_ok)"));

        let mut event = AuditEvent::new("token.request", Outcome::Failure, RequestMeta::default());
        event.client_id = Some("a\0b".into());
        event.reason = Some(format!("x\0{}", "y".repeat(600)));
        let row = event.into_row();
        assert_eq!(row.client_id.as_deref(), Some("a\u{fffd}b"), "no NUL reaches the database");
        assert_eq!(row.reason.as_ref().map(|r| r.chars().count()), Some(512));
        assert!(!row.reason.unwrap().contains('\0'));
    }
}
