//! Row types: one struct per table, used for both reads and inserts.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::*;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = partners)]
pub struct PartnerRow {
    pub id: String,
    pub name: String,
    pub suspended: bool,
    pub rate_limit_per_minute: Option<i32>,
    pub token_quota_per_day: Option<i32>,
    pub tokens_revoked_before: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// Over quota, tokens are still issued (and counted, and audited as over quota).
    pub quota_log_only: bool,
    /// The operator's maximum age of new secrets of the partner's clients: `None`, the server's default; 0, none.
    pub secret_max_age_days: Option<i32>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = scopes)]
pub struct ScopeRow {
    pub name: String,
    pub description: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = roles)]
pub struct RoleRow {
    pub name: String,
    pub description: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = clients)]
pub struct ClientRow {
    pub id: String,
    pub partner_id: String,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub token_lifetime_secs: Option<i32>,
    pub tokens_revoked_before: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// `operator` or `partner` while disabled (see `registry::clients::Holder`).
    pub disabled_by: Option<String>,
    /// Token requests per minute; `None`: the server's default.
    pub rate_limit_per_minute: Option<i32>,
    /// A label for people (`production`, `staging`); no rule reads it.
    pub environment: Option<String>,
    /// The client authentication methods it may use (RFC 7591 names, space-separated).
    pub auth_methods: String,
    /// Its public keys for `private_key_jwt`, a JWKS as JSON text, or where to fetch them.
    pub jwks: Option<String>,
    pub jwks_uri: Option<String>,
}

/// A stored secret. `secret_hash` is the hex SHA-256 of the secret; the secret itself is never stored.
#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = client_secrets)]
pub struct ClientSecretRow {
    pub id: String,
    pub client_id: String,
    pub name: String,
    pub secret_hash: String,
    pub prefix: String,
    pub created_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
    pub last_used_at: Option<NaiveDateTime>,
}

impl std::fmt::Debug for ClientSecretRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSecretRow")
            .field("id", &self.id)
            .field("client_id", &self.client_id)
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = revoked_tokens)]
pub struct RevokedTokenRow {
    pub jti: String,
    pub client_id: String,
    pub expires_at: NaiveDateTime,
    pub revoked_at: NaiveDateTime,
}

/// A stored audit event; it serializes as the API and CLI show it, with `details` as JSON.
#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize, utoipa::ToSchema)]
#[diesel(table_name = audit_events)]
pub struct AuditEventRow {
    pub id: i64,
    #[serde(with = "super::utc")]
    pub occurred_at: NaiveDateTime,

    pub event_type: String,
    pub outcome: String,
    pub reason: Option<String>,
    pub request_id: Option<String>,
    pub actor: Option<String>,
    pub partner_id: Option<String>,
    pub client_id: Option<String>,
    pub secret_id: Option<String>,
    pub scopes: Option<String>,
    pub audience: Option<String>,
    pub jti: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    #[serde(serialize_with = "json_text")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<String>,
}

/// Writes JSON stored as text as the JSON value itself.
fn json_text<S: serde::Serializer>(text: &Option<String>, serializer: S) -> Result<S::Ok, S::Error> {
    use serde::Serialize;
    let value =
        text.as_deref().map(|t| serde_json::from_str::<serde_json::Value>(t).unwrap_or(serde_json::Value::Null));
    value.serialize(serializer)
}

/// An audit event before insertion; the database assigns `id`.
#[derive(Debug, Clone, Default, Insertable)]
#[diesel(table_name = audit_events)]
pub struct NewAuditEventRow {
    pub occurred_at: NaiveDateTime,
    pub event_type: String,
    pub outcome: String,
    pub reason: Option<String>,
    pub request_id: Option<String>,
    pub actor: Option<String>,
    pub partner_id: Option<String>,
    pub client_id: Option<String>,
    pub secret_id: Option<String>,
    pub scopes: Option<String>,
    pub audience: Option<String>,
    pub jti: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub details: Option<String>,
}
