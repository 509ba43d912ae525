//! The secret lifecycle: several named secrets per client, rotation with a grace period, individual revocation.
//! A secret is shown once, when it is created; only its SHA-256 is stored.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::lookup;
use super::secret_expiry::{self, SecretPolicy};
use super::{not_found, validate, Caller, Permission, RegistryError, RegistryResult};
use crate::credentials::{new_secret_id, ClientSecret};
use crate::secevents::{self, SecurityEvent};
use crate::store::models::ClientSecretRow;
use crate::store::schema::client_secrets;
use crate::store::{DbConnection, Tx};

/// A secret as listings show it: never the secret itself.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SecretInfo {
    pub id: String,
    pub name: String,
    pub prefix: String,
    #[serde(serialize_with = "crate::store::utc::serialize")]
    pub created_at: NaiveDateTime,
    #[serde(serialize_with = "crate::store::utc::option::serialize")]
    pub expires_at: Option<NaiveDateTime>,
    #[serde(serialize_with = "crate::store::utc::option::serialize")]
    pub revoked_at: Option<NaiveDateTime>,
    #[serde(serialize_with = "crate::store::utc::option::serialize")]
    pub last_used_at: Option<NaiveDateTime>,
    pub active: bool,
    /// Whole days since it was created.
    pub age_days: i64,
    /// Whole days until it expires (0: within a day; negative: expired); `null` without an expiry.
    pub expires_in_days: Option<i64>,
}

impl SecretInfo {
    fn from_row(row: ClientSecretRow, at: NaiveDateTime) -> Self {
        let active = is_active(&row, at);
        SecretInfo {
            age_days: secret_expiry::whole_days(row.created_at, at),
            expires_in_days: row.expires_at.map(|expiry| secret_expiry::whole_days(at, expiry)),
            id: row.id,
            name: row.name,
            prefix: row.prefix,
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
            last_used_at: row.last_used_at,
            active,
        }
    }
}

/// A freshly created secret, the only time its clear text exists outside the client's hands.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IssuedSecret {
    pub id: String,
    pub name: String,
    #[serde(serialize_with = "expose_secret")]
    #[schema(value_type = String)]
    pub secret: ClientSecret,
    pub prefix: String,
    #[serde(serialize_with = "crate::store::utc::serialize")]
    pub created_at: NaiveDateTime,
    #[serde(serialize_with = "crate::store::utc::option::serialize")]
    pub expires_at: Option<NaiveDateTime>,
}

fn expose_secret<S: serde::Serializer>(secret: &ClientSecret, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose())
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSecret {
    /// A label such as `production` or `ci`; defaults to `secret-<n>`.
    pub name: Option<String>,
    /// Lifetime of the new secret in seconds; absent: it expires only by the maximum secret age (its
    /// partner's, else the server's), if there is one. The earlier of the two applies.
    pub expires_in_secs: Option<i64>,
    /// Rotation: the client's other active secrets expire this many seconds from now (0 = at once).
    /// Absent: they stay valid.
    pub grace_period_secs: Option<i64>,
}

pub fn is_active(row: &ClientSecretRow, at: NaiveDateTime) -> bool {
    row.revoked_at.is_none() && row.expires_at.is_none_or(|expiry| expiry > at)
}

fn duration_field(field: &'static str, secs: Option<i64>) -> RegistryResult<Option<Duration>> {
    match secs {
        None => Ok(None),
        Some(s) if (0..=10 * 365 * 86_400).contains(&s) => Ok(Some(Duration::seconds(s))),
        Some(_) => Err(RegistryError::Invalid { field, message: "must be between 0 and 315360000 seconds".into() }),
    }
}

/// Inserts a new secret for `client_id` (which the caller has already checked) inside the caller's transaction.
/// It expires at `asked`, or earlier if the maximum secret age of the client's partner (else `policy`'s) says so.
pub(crate) fn insert(
    conn: &mut DbConnection,
    client_id: &str,
    name: &str,
    created_at: NaiveDateTime,
    asked: Option<NaiveDateTime>,
    policy: SecretPolicy,
) -> RegistryResult<IssuedSecret> {
    let partner_days = secret_expiry::partner_max_age_days(conn, client_id)?;
    let expires_at = policy.expiry_at_creation(partner_days, created_at, asked);
    let secret = ClientSecret::generate();
    let row = ClientSecretRow {
        id: new_secret_id(),
        client_id: client_id.to_string(),
        name: name.to_string(),
        secret_hash: secret.hash(),
        prefix: secret.display_prefix(),
        created_at,
        expires_at,
        revoked_at: None,
        last_used_at: None,
    };
    diesel::insert_into(client_secrets::table).values(&row).execute(conn)?;
    Ok(IssuedSecret { id: row.id, name: row.name, secret, prefix: row.prefix, created_at: row.created_at, expires_at })
}

/// Creates a secret (rotation). With a grace period, every other active secret of the client expires then.
pub fn create(
    conn: &mut Tx,
    caller: &Caller,
    client_id: &str,
    input: &NewSecret,
    policy: SecretPolicy,
) -> RegistryResult<IssuedSecret> {
    if let Some(name) = &input.name {
        validate::text("name", name, 1, 100)?;
    }
    let lifetime = duration_field("expires_in_secs", input.expires_in_secs)?;
    let grace = duration_field("grace_period_secs", input.grace_period_secs)?;
    crate::store::write_transaction(conn, |conn| {
        let client = lookup::get_row(conn, &caller.tenancy, client_id)?;
        lookup::require_writable(caller, &client)?;
        let at = caller.now();
        let count: i64 =
            client_secrets::table.filter(client_secrets::client_id.eq(client_id)).count().get_result(conn.db())?;
        let name = input.name.clone().unwrap_or_else(|| format!("secret-{}", count + 1));
        let issued = insert(conn, client_id, &name, at, lifetime.map(|d| at + d), policy)?;
        let mut expired_others = Vec::new();
        if let Some(grace) = grace {
            let deadline = at + grace;
            let others: Vec<ClientSecretRow> = client_secrets::table
                .filter(client_secrets::client_id.eq(client_id))
                .filter(client_secrets::id.ne(&issued.id))
                .select(ClientSecretRow::as_select())
                .load(conn.db())?;
            for other in others.iter().filter(|s| is_active(s, at)) {
                if other.expires_at.is_none_or(|e| e > deadline) {
                    diesel::update(client_secrets::table.find(&other.id))
                        .set(client_secrets::expires_at.eq(Some(deadline)))
                        .execute(conn.db())?;
                    expired_others.push(other.id.clone());
                }
            }
        }
        caller.audit(
            conn,
            "secret.create",
            Some(&client.partner_id),
            Some(client_id),
            json!({"secret_id": issued.id, "name": issued.name, "expires_at": issued.expires_at,
                   "grace_period_secs": input.grace_period_secs, "older_secrets_expiring": expired_others}),
        )?;
        Ok(issued)
    })
}

pub fn list(conn: &mut DbConnection, caller: &Caller, client_id: &str) -> RegistryResult<Vec<SecretInfo>> {
    caller.require(Permission::ClientsRead)?;
    lookup::get_row(conn, &caller.tenancy, client_id)?;
    let at = caller.now();
    let rows: Vec<ClientSecretRow> = client_secrets::table
        .filter(client_secrets::client_id.eq(client_id))
        .order((client_secrets::created_at, client_secrets::id))
        .select(ClientSecretRow::as_select())
        .load(conn)?;
    Ok(rows.into_iter().map(|row| SecretInfo::from_row(row, at)).collect())
}

/// Revokes one secret now; the client's other secrets keep working.
pub fn revoke(conn: &mut Tx, caller: &Caller, client_id: &str, secret_id: &str) -> RegistryResult<SecretInfo> {
    crate::store::write_transaction(conn, |conn| {
        let client = lookup::get_row(conn, &caller.tenancy, client_id)?;
        lookup::require_writable(caller, &client)?;
        validate::lookup("secret", secret_id, validate::is_key)?;
        let row: ClientSecretRow = client_secrets::table
            .find(secret_id)
            .filter(client_secrets::client_id.eq(client_id))
            .select(ClientSecretRow::as_select())
            .first(conn.db())
            .optional()?
            .ok_or_else(|| not_found("secret", secret_id))?;
        let at = caller.now();
        if row.revoked_at.is_none() {
            let event = SecurityEvent::SecretRevoked {
                partner_id: client.partner_id.clone(),
                client_id: client_id.to_string(),
                secret_id: secret_id.to_string(),
            };
            secevents::record(conn, event, at)?;
            diesel::update(client_secrets::table.find(secret_id))
                .set(client_secrets::revoked_at.eq(Some(at)))
                .execute(conn.db())?;
            caller.audit(
                conn,
                "secret.revoke",
                Some(&client.partner_id),
                Some(client_id),
                json!({"secret_id": secret_id}),
            )?;
        }
        let row = ClientSecretRow { revoked_at: row.revoked_at.or(Some(at)), ..row };
        Ok(SecretInfo::from_row(row, at))
    })
}
