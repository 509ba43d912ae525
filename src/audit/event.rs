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

    pub fn into_row(self) -> NewAuditEventRow {
        NewAuditEventRow {
            occurred_at: self.occurred_at,
            event_type: self.event_type.to_string(),
            outcome: self.outcome.as_str().to_string(),
            reason: self.reason,
            request_id: self.meta.request_id,
            actor: self.actor,
            partner_id: self.partner_id,
            client_id: self.client_id,
            secret_id: self.secret_id,
            scopes: self.scopes,
            audience: self.audience,
            jti: self.jti,
            source_ip: self.meta.source_ip,
            user_agent: self.meta.user_agent,
            details: self.details.map(|d| d.to_string()),
        }
    }
}
