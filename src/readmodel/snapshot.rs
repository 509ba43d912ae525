//! A client's snapshot: everything a token request, an introspection and an admin-token check need to know about
//! one client, built by one loader from the registry tables.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::auth_methods::{AuthMethods, FederatedCredential};
use crate::store::models::{ClientRow, ClientSecretRow, PartnerRow};
use crate::store::schema::{
    client_audiences, client_roles, client_scopes, client_secrets, clients, federated_credentials, partner_scopes,
    partner_trusted_issuers, partners, revoked_tokens, role_scopes,
};
use crate::store::{DbConnection, StoreError};

/// The SHA-256 of a client secret, the key secrets are found by.
pub type SecretDigest = [u8; 32];

/// One stored secret, as authentication needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretState {
    pub id: String,
    pub expires_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

impl SecretState {
    pub fn is_active(&self, at: NaiveDateTime) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|expiry| expiry > at)
    }
}

/// Where a client's public keys for `private_key_jwt` are: parsed once into the snapshot, so that verifying
/// an assertion reads no database; keys at a URL are cached by `oauth::remote_keys`.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientKeys {
    None,
    Inline(std::sync::Arc<jsonwebtoken::jwk::JwkSet>),
    Remote(String),
}

/// Why a client may not use tokens now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Barrier {
    ClientDisabled,
    PartnerSuspended,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClientSnapshot {
    pub client_id: String,
    pub partner_id: String,
    pub enabled: bool,
    pub partner_suspended: bool,
    /// When this registration of the client id was created: older tokens belong to a deleted namesake.
    pub created_at: NaiveDateTime,
    pub token_lifetime_secs: Option<i32>,
    /// (the client's roles' scopes ∪ its direct scopes) ∩ its partner's ceiling.
    pub allowed_scopes: BTreeSet<String>,
    pub audiences: Vec<String>,
    /// The latest bulk revocation of the client's or its partner's tokens: tokens issued at or before it
    /// (whole seconds) are dead.
    pub tokens_revoked_before: Option<NaiveDateTime>,
    /// Secrets by the SHA-256 of their clear text. Finding a secret by its hash reveals, through timing, at
    /// most something about the hash of what the caller sent, which is useless without a preimage.
    pub secrets: HashMap<SecretDigest, SecretState>,
    /// Individually revoked token ids of this client that may still verify.
    pub revoked_jtis: HashSet<String>,
    /// Token requests per minute; `None`: the server's default.
    pub rate_limit_per_minute: Option<i32>,
    /// The partner's limits, shared by all its clients.
    pub partner_rate_limit_per_minute: Option<i32>,
    pub partner_token_quota_per_day: Option<i32>,
    pub partner_quota_log_only: bool,
    /// The client authentication methods it may use.
    pub auth_methods: AuthMethods,
    pub keys: ClientKeys,
    /// Tokens of other identity providers that authenticate it, and the issuers its partner trusts now.
    pub federated_credentials: Vec<FederatedCredential>,
    pub partner_trusted_issuers: BTreeSet<String>,
}

impl ClientSnapshot {
    /// The one rule of whether a client may use tokens now, for new tokens and for the tokens it holds.
    pub fn barrier(&self) -> Option<Barrier> {
        if !self.enabled {
            Some(Barrier::ClientDisabled)
        } else if self.partner_suspended {
            Some(Barrier::PartnerSuspended)
        } else {
            None
        }
    }

    pub fn secret(&self, digest: &SecretDigest) -> Option<&SecretState> {
        self.secrets.get(digest)
    }

    /// Whether a token issued at `iat` (seconds) with the secret `secret_id` was obtained at or after that
    /// secret's revocation, or with a secret this client never had. `iat` has whole seconds: a token of the
    /// second in which its secret was revoked counts as obtained after it.
    pub fn obtained_after_revocation(&self, secret_id: &str, iat: i64) -> bool {
        match self.secrets.values().find(|secret| secret.id == secret_id) {
            Some(secret) => secret.revoked_at.is_some_and(|revoked| iat >= revoked.and_utc().timestamp()),
            None => true,
        }
    }

    /// Whether a token issued at `iat` (seconds) is revoked in bulk.
    pub fn revoked_in_bulk(&self, iat: i64) -> bool {
        self.tokens_revoked_before.is_some_and(|cutoff| iat <= cutoff.and_utc().timestamp())
    }
}

/// Loads one client's snapshot, or `None` when no such client exists. `at` bounds which revoked token ids are
/// still worth keeping.
pub fn load(conn: &mut DbConnection, client_id: &str, at: NaiveDateTime) -> Result<Option<ClientSnapshot>, StoreError> {
    // One read transaction, so that the queries see one state of the registry.
    conn.transaction(|conn| {
        let found: Option<(ClientRow, PartnerRow)> = clients::table
            .inner_join(partners::table)
            .filter(clients::id.eq(client_id))
            .select((ClientRow::as_select(), PartnerRow::as_select()))
            .first(conn)
            .optional()?;
        let Some((client, partner)) = found else { return Ok(None) };
        let secrets: Vec<ClientSecretRow> = client_secrets::table
            .filter(client_secrets::client_id.eq(client_id))
            .select(ClientSecretRow::as_select())
            .load(conn)?;
        let audiences = client_audiences::table
            .filter(client_audiences::client_id.eq(client_id))
            .order(client_audiences::audience)
            .select(client_audiences::audience)
            .load(conn)?;
        let keep_after = at - chrono::Duration::seconds(crate::secevents::revoked::KEEP_AFTER_EXPIRY_SECS);
        let revoked_jtis: Vec<String> = revoked_tokens::table
            .filter(revoked_tokens::client_id.eq(client_id))
            .filter(revoked_tokens::expires_at.ge(keep_after))
            .select(revoked_tokens::jti)
            .load(conn)?;
        let federated: Vec<(String, String, String)> = federated_credentials::table
            .filter(federated_credentials::client_id.eq(client_id))
            .select((federated_credentials::issuer, federated_credentials::subject, federated_credentials::audience))
            .load(conn)?;
        let federated_credentials = federated
            .into_iter()
            .map(|(issuer, subject, audience)| FederatedCredential { issuer, subject, audience })
            .collect();
        let partner_trusted_issuers = partner_trusted_issuers::table
            .filter(partner_trusted_issuers::partner_id.eq(&partner.id))
            .select(partner_trusted_issuers::issuer)
            .load::<String>(conn)?
            .into_iter()
            .collect();
        Ok(Some(ClientSnapshot {
            federated_credentials,
            partner_trusted_issuers,
            allowed_scopes: allowed_scopes(conn, client_id, &partner.id)?,
            client_id: client.id,
            partner_id: partner.id,
            enabled: client.enabled,
            partner_suspended: partner.suspended,
            created_at: client.created_at,
            token_lifetime_secs: client.token_lifetime_secs,
            audiences,
            tokens_revoked_before: client.tokens_revoked_before.max(partner.tokens_revoked_before),
            secrets: secrets.into_iter().filter_map(secret_entry).collect(),
            revoked_jtis: revoked_jtis.into_iter().collect(),
            rate_limit_per_minute: client.rate_limit_per_minute,
            partner_rate_limit_per_minute: partner.rate_limit_per_minute,
            partner_token_quota_per_day: partner.token_quota_per_day,
            partner_quota_log_only: partner.quota_log_only,
            auth_methods: AuthMethods::parse_stored(&client.auth_methods),
            keys: client_keys(client.jwks.as_deref(), client.jwks_uri),
        }))
    })
}

/// A stored JWKS that no longer parses (it was checked when registered) holds no keys.
fn client_keys(jwks: Option<&str>, jwks_uri: Option<String>) -> ClientKeys {
    match (jwks, jwks_uri) {
        (_, Some(uri)) => ClientKeys::Remote(uri),
        (Some(text), None) => match serde_json::from_str(text) {
            Ok(set) => ClientKeys::Inline(std::sync::Arc::new(set)),
            Err(err) => {
                log::warn!("a client's stored jwks does not parse: {err}");
                ClientKeys::None
            }
        },
        (None, None) => ClientKeys::None,
    }
}

/// A stored hash that is not 64 hex digits matches nothing; it is left out.
fn secret_entry(row: ClientSecretRow) -> Option<(SecretDigest, SecretState)> {
    let digest = decode_hex_digest(&row.secret_hash)?;
    Some((digest, SecretState { id: row.id, expires_at: row.expires_at, revoked_at: row.revoked_at }))
}

fn decode_hex_digest(hex: &str) -> Option<SecretDigest> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let nibble = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut digest = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        digest[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(digest)
}

/// The scopes a client's tokens may carry: (its roles' scopes ∪ its direct scopes) ∩ its partner's ceiling.
fn allowed_scopes(conn: &mut DbConnection, client_id: &str, partner_id: &str) -> Result<BTreeSet<String>, StoreError> {
    let direct = client_scopes::table.filter(client_scopes::client_id.eq(client_id)).select(client_scopes::scope);
    let via_roles = role_scopes::table
        .inner_join(client_roles::table.on(client_roles::role.eq(role_scopes::role)))
        .filter(client_roles::client_id.eq(client_id))
        .select(role_scopes::scope);
    let scopes: Vec<String> = partner_scopes::table
        .filter(partner_scopes::partner_id.eq(partner_id))
        .filter(partner_scopes::scope.eq_any(direct).or(partner_scopes::scope.eq_any(via_roles)))
        .select(partner_scopes::scope)
        .load(conn)?;
    Ok(scopes.into_iter().collect())
}

/// A standing client with no secrets, scopes or audiences, created at `at`: a start for rule tests.
#[cfg(test)]
pub(crate) fn test_snapshot(client_id: &str, partner_id: &str, at: NaiveDateTime) -> ClientSnapshot {
    ClientSnapshot {
        client_id: client_id.to_string(),
        partner_id: partner_id.to_string(),
        enabled: true,
        partner_suspended: false,
        created_at: at,
        token_lifetime_secs: None,
        allowed_scopes: BTreeSet::new(),
        audiences: Vec::new(),
        tokens_revoked_before: None,
        secrets: HashMap::new(),
        revoked_jtis: HashSet::new(),
        rate_limit_per_minute: None,
        partner_rate_limit_per_minute: None,
        partner_token_quota_per_day: None,
        partner_quota_log_only: false,
        auth_methods: AuthMethods::SECRETS,
        keys: ClientKeys::None,
        federated_credentials: Vec::new(),
        partner_trusted_issuers: BTreeSet::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_hashes_decode_to_digests() {
        let hex = "00ff10ab".repeat(8);
        let digest = decode_hex_digest(&hex).unwrap();
        assert_eq!(&digest[..4], &[0x00, 0xff, 0x10, 0xab]);
        assert_eq!(decode_hex_digest("abc"), None);
        assert_eq!(decode_hex_digest(&"zz".repeat(32)), None);
    }
}
