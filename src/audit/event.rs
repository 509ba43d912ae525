//! The audit event type and the request metadata every event carries.

use chrono::NaiveDateTime;
use serde::Serialize;

use crate::redact;
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
    /// An event that occurred `at`, by the server's clock (never the system's: tests set the server's).
    pub fn new(event_type: &'static str, outcome: Outcome, meta: RequestMeta, at: NaiveDateTime) -> Self {
        AuditEvent {
            occurred_at: at,
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

    /// The row to insert: the one place an event becomes a record, so the one place credentials are taken
    /// out. Id-like columns that look like a credential are replaced whole (callers type into id fields
    /// whatever they have at hand); free text (reason, details such as a refused path) keeps its words with
    /// each credential in it replaced (ARCHITECTURE.md, Credentials).
    pub fn into_row(self) -> NewAuditEventRow {
        NewAuditEventRow {
            occurred_at: self.occurred_at,
            event_type: self.event_type.to_string(),
            outcome: self.outcome.as_str().to_string(),
            reason: text(self.reason),
            request_id: scrub(self.meta.request_id),
            actor: scrub(self.actor),
            partner_id: scrub(self.partner_id),
            client_id: scrub(self.client_id),
            secret_id: scrub(self.secret_id),
            scopes: text(self.scopes),
            audience: text(self.audience),
            jti: scrub(self.jti),
            source_ip: self.meta.source_ip,
            user_agent: scrub(self.meta.user_agent),
            details: self.details.map(|d| redact::credentials(&d.to_string()).into_owned()),
        }
    }
}

/// What a scrubbed value is stored as.
pub const REDACTED: &str = redact::REDACTED;

/// Replaces a value that looks like a client secret or an access token.
fn scrub(value: Option<String>) -> Option<String> {
    bounded(value.map(|v| if redact::has_credential(&v) { REDACTED.to_string() } else { v }))
}

/// Longest free-text value stored; longer ones are cut.
const MAX_TEXT_CHARS: usize = 512;

/// Free text as it may be stored: credentials replaced (before cutting, so no half-token survives),
/// control characters (NUL above all, which PostgreSQL refuses in text and which would fail a whole
/// group-commit batch) replaced, and the length bounded.
fn text(value: Option<String>) -> Option<String> {
    bounded(value.map(|v| redact::credentials(&v).into_owned()))
}

fn bounded(value: Option<String>) -> Option<String> {
    value.map(|v| v.chars().take(MAX_TEXT_CHARS).map(|c| if c.is_control() { '\u{fffd}' } else { c }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_scrubbed_from_caller_supplied_columns() {
        let secret = crate::credentials::ClientSecret::generate().expose().to_string();
        let jws = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        let mut event = AuditEvent::new(
            "token.request",
            Outcome::Failure,
            RequestMeta {
                request_id: Some(secret.clone()),
                source_ip: None,
                user_agent: Some(format!("curl/8 Bearer {jws}")),
            },
            crate::store::now(),
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

        let mut event = AuditEvent::new("token.request", Outcome::Failure, RequestMeta::default(), crate::store::now());
        event.client_id = Some("a\0b".into());
        event.reason = Some(format!("x\0{}", "y".repeat(600)));
        let row = event.into_row();
        assert_eq!(row.client_id.as_deref(), Some("a\u{fffd}b"), "no NUL reaches the database");
        assert_eq!(row.reason.as_ref().map(|r| r.chars().count()), Some(512));
        assert!(!row.reason.unwrap().contains('\0'));
    }
}
