//! Clients: one integration of one partner, with its roles, direct scopes, audiences and lifetime.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::client_keys;
use super::lookup::{get_row, require_writable};
use super::paging::{self, PageRequest};
use super::secrets::{self, IssuedSecret};
use super::{not_found, partners, roles, scopes, validate, Caller, Permission, RegistryError, RegistryResult, Tenancy};

use crate::auth_methods::{AuthMethod, AuthMethods, FederatedCredential};
use crate::credentials::new_client_id;
use crate::secevents::{self, SecurityEvent};
use crate::store::models::ClientRow;
use crate::store::schema::{
    client_audiences, client_roles, client_scopes, clients, federated_credentials, role_scopes,
};
use crate::store::{DbConnection, Tx};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Client {
    pub id: String,
    pub partner_id: String,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    /// Who disabled it (`operator` or `partner`), `null` while enabled. A client the operator disabled is
    /// held: only the operator enables it again.
    pub disabled_by: Option<String>,
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
    pub audiences: Vec<String>,
    pub token_lifetime_secs: Option<i32>,
    /// Token requests per minute on each instance; `null`: the server's default.
    pub rate_limit_per_minute: Option<i32>,
    /// A label for people such as `development`, `staging` or `production`; `null`: none.
    pub environment: Option<String>,
    /// How it may authenticate at the token endpoint (RFC 7591 names).
    pub token_endpoint_auth_methods: Vec<AuthMethod>,
    /// Its public keys for `private_key_jwt` (RFC 7591 `jwks`), or where they are fetched from.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    pub jwks_uri: Option<String>,
    /// Tokens of other identity providers that authenticate it (workload identity federation).
    pub federated_credentials: Vec<FederatedCredential>,
    #[serde(serialize_with = "crate::store::utc::serialize")]
    pub created_at: chrono::NaiveDateTime,
    #[serde(serialize_with = "crate::store::utc::serialize")]
    pub updated_at: chrono::NaiveDateTime,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClient {
    /// Operator only: keep an existing client id (e.g. when migrating from another server). Otherwise a
    /// `pgc_` id is generated.
    pub client_id: Option<String>,
    /// Required for the operator; a partner admin's clients always belong to its own partner.
    pub partner_id: Option<String>,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub audiences: Vec<String>,
    pub token_lifetime_secs: Option<i32>,
    /// Token requests per minute on each instance; absent: the server's default.
    pub rate_limit_per_minute: Option<i32>,
    /// Name of the first secret; defaults to `secret-1`. A client that may use no secret method gets none.
    pub secret_name: Option<String>,
    /// An environment label (1-32 of a-z, 0-9, '-', starting with a letter), e.g. `production`.
    pub environment: Option<String>,
    /// Absent: `client_secret_basic` and `client_secret_post`.
    pub token_endpoint_auth_methods: Option<Vec<AuthMethod>>,
    /// Public keys for `private_key_jwt`: a JWK set whose keys each have a `kid`.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// Or the https URL of the client's JWK set.
    pub jwks_uri: Option<String>,
    /// Issuers must be among the partner's `trusted_issuers`.
    #[serde(default)]
    pub federated_credentials: Vec<FederatedCredential>,
}

/// A partial update: absent fields stay as they are; lists replace the whole list.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub roles: Option<Vec<String>>,
    pub scopes: Option<Vec<String>>,
    pub audiences: Option<Vec<String>>,
    /// `null` clears it (the server default applies).
    #[serde(default, deserialize_with = "validate::nullable")]
    pub token_lifetime_secs: Option<Option<i32>>,
    /// `null` clears it (the server default applies).
    #[serde(default, deserialize_with = "validate::nullable")]
    pub rate_limit_per_minute: Option<Option<i32>>,
    /// `null` removes the label.
    #[serde(default, deserialize_with = "validate::nullable")]
    pub environment: Option<Option<String>>,
    pub token_endpoint_auth_methods: Option<Vec<AuthMethod>>,
    /// Replaces the client's keys (and drops its `jwks_uri`); `null` removes them.
    #[serde(default, deserialize_with = "validate::nullable")]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<Option<serde_json::Value>>,
    /// Replaces the client's keys by this URL (and drops its inline `jwks`); `null` removes it.
    #[serde(default, deserialize_with = "validate::nullable")]
    pub jwks_uri: Option<Option<String>>,
    /// Replaces the whole list; issuers must be among the partner's `trusted_issuers`.
    pub federated_credentials: Option<Vec<FederatedCredential>>,
}

/// A new client and its first secret, shown once.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CreatedClient {
    pub client: Client,
    pub secret: IssuedSecret,
}

/// A new client and, if it may use a secret method, its first secret (shown once).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RegisteredClient {
    pub client: Client,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<IssuedSecret>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ClientFilter {
    pub partner_id: Option<String>,
    pub enabled: Option<bool>,
    /// Only clients with this environment label.
    pub environment: Option<String>,
    /// Only clients whose name or id contains this text, ignoring case (at most 200 characters).
    pub search: Option<String>,
    /// Return clients whose id sorts after this one (the previous page's `next_cursor`).
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

pub use super::paging::{Page, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};

/// Limits that come from server configuration rather than the database.
#[derive(Debug, Clone, Copy)]
pub struct ClientLimits {
    pub max_token_lifetime_secs: i64,
    /// The server's default maximum age of new secrets.
    pub secret_policy: super::secret_expiry::SecretPolicy,
}

fn assemble(conn: &mut DbConnection, row: ClientRow) -> RegistryResult<Client> {
    let roles = client_roles::table
        .filter(client_roles::client_id.eq(&row.id))
        .order(client_roles::role)
        .select(client_roles::role)
        .load(conn)?;
    let scopes = client_scopes::table
        .filter(client_scopes::client_id.eq(&row.id))
        .order(client_scopes::scope)
        .select(client_scopes::scope)
        .load(conn)?;
    let audiences = audiences(conn, &row.id)?;
    let federated_credentials = federated(conn, &row.id)?;
    Ok(Client {
        id: row.id,
        partner_id: row.partner_id,
        name: row.name,
        description: row.description,
        enabled: row.enabled,
        disabled_by: row.disabled_by,
        roles,
        scopes,
        audiences,
        token_lifetime_secs: row.token_lifetime_secs,
        rate_limit_per_minute: row.rate_limit_per_minute,
        environment: row.environment,
        token_endpoint_auth_methods: AuthMethods::parse_stored(&row.auth_methods).list(),
        jwks: row.jwks.as_deref().and_then(|text| serde_json::from_str(text).ok()),
        jwks_uri: row.jwks_uri,
        federated_credentials,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

pub fn federated(conn: &mut DbConnection, client_id: &str) -> RegistryResult<Vec<FederatedCredential>> {
    let rows: Vec<(String, String, String)> = federated_credentials::table
        .filter(federated_credentials::client_id.eq(client_id))
        .order((federated_credentials::issuer, federated_credentials::subject))
        .select((federated_credentials::issuer, federated_credentials::subject, federated_credentials::audience))
        .load(conn)?;
    Ok(rows.into_iter().map(|(issuer, subject, audience)| FederatedCredential { issuer, subject, audience }).collect())
}

/// Replaces a client's federated credentials: each issuer trusted by its partner (the operator's decision,
/// whoever registers the credential), each (issuer, subject) no other client's.
fn replace_federated(
    conn: &mut DbConnection,
    partner_id: &str,
    client_id: &str,
    credentials: &[FederatedCredential],
) -> RegistryResult<()> {
    let trusted = partners::trusted_issuers(conn, partner_id)?;
    if let Some(untrusted) = credentials.iter().find(|c| !trusted.contains(&c.issuer)) {
        return Err(RegistryError::Forbidden(format!(
            "the operator has not allowed issuer {} for partner {partner_id} (its trusted_issuers)",
            untrusted.issuer
        )));
    }
    diesel::delete(federated_credentials::table.filter(federated_credentials::client_id.eq(client_id)))
        .execute(conn)?;
    for credential in credentials {
        let taken = federated_credentials::table
            .find((&credential.issuer, &credential.subject))
            .count()
            .get_result::<i64>(conn)?;
        if taken > 0 {
            return Err(RegistryError::Conflict(format!(
                "issuer {} subject {} already authenticates another client: one subject, one client",
                credential.issuer, credential.subject
            )));
        }
        diesel::insert_into(federated_credentials::table)
            .values((
                federated_credentials::issuer.eq(&credential.issuer),
                federated_credentials::subject.eq(&credential.subject),
                federated_credentials::client_id.eq(client_id),
                federated_credentials::audience.eq(&credential.audience),
            ))
            .execute(conn)?;
    }
    Ok(())
}

pub fn audiences(conn: &mut DbConnection, client_id: &str) -> RegistryResult<Vec<String>> {
    Ok(client_audiences::table
        .filter(client_audiences::client_id.eq(client_id))
        .order(client_audiences::audience)
        .select(client_audiences::audience)
        .load(conn)?)
}

/// Direct grants must lie within the partner's ceiling. Reserved `authz.*` scopes, whether granted directly
/// or through a role (which would reach tokens whenever the ceiling allows them), are the operator's to give:
/// a partner admin may pass on only the reserved scopes its own token carries, and never `authz.admin`.
fn check_grants(
    conn: &mut DbConnection,
    caller: &Caller,
    partner_id: &str,
    role_names: &[String],
    scope_names: &[String],
) -> RegistryResult<()> {
    if !matches!(caller.tenancy, Tenancy::Operator) {
        let mut reserved: Vec<(String, Option<String>)> =
            scope_names.iter().filter(|s| s.starts_with(scopes::RESERVED_PREFIX)).map(|s| (s.clone(), None)).collect();
        if !role_names.is_empty() {
            let via_roles: Vec<(String, String)> = role_scopes::table
                .filter(role_scopes::role.eq_any(role_names))
                .filter(role_scopes::scope.like(format!("{}%", scopes::RESERVED_PREFIX)))
                .select((role_scopes::scope, role_scopes::role))
                .load(conn)?;
            reserved.extend(via_roles.into_iter().map(|(scope, role)| (scope, Some(role))));
        }
        for (scope, role) in reserved {
            if scope == scopes::ADMIN || !caller.holds_reserved(&scope) {
                let via = role.map(|r| format!(" (held by role {r})")).unwrap_or_default();
                return Err(RegistryError::Forbidden(format!(
                    "only the operator can grant {scope}{via}: a partner admin passes on only the reserved \
                     scopes it holds itself"
                )));
            }
        }
    }
    let ceiling = partners::ceiling(conn, partner_id)?;
    let outside: Vec<String> = scope_names.iter().filter(|s| !ceiling.contains(s)).cloned().collect();
    if outside.is_empty() {
        Ok(())
    } else {
        Err(RegistryError::OutsideCeiling(outside))
    }
}

/// A partner admin gives its clients only audiences of its partner's audience ceiling; an audience the client
/// already has (the operator may have given it one outside the ceiling) may stay. The operator gives any.
fn check_audiences(
    conn: &mut DbConnection,
    caller: &Caller,
    partner_id: &str,
    audiences: &[String],
    already: &[String],
) -> RegistryResult<()> {
    if matches!(caller.tenancy, Tenancy::Operator) {
        return Ok(());
    }
    let ceiling = partners::audience_ceiling(conn, partner_id)?;
    let outside: Vec<String> =
        audiences.iter().filter(|a| !ceiling.contains(a) && !already.contains(a)).cloned().collect();
    if outside.is_empty() {
        Ok(())
    } else {
        Err(RegistryError::AudienceOutsideCeiling(outside))
    }
}

fn replace_links(
    conn: &mut DbConnection,
    client_id: &str,
    roles: Option<&[String]>,
    scopes: Option<&[String]>,
    audiences: Option<&[String]>,
) -> RegistryResult<()> {
    if let Some(roles) = roles {
        diesel::delete(client_roles::table.filter(client_roles::client_id.eq(client_id))).execute(conn)?;
        for role in roles {
            diesel::insert_into(client_roles::table)
                .values((client_roles::client_id.eq(client_id), client_roles::role.eq(role)))
                .execute(conn)?;
        }
    }
    if let Some(scopes) = scopes {
        diesel::delete(client_scopes::table.filter(client_scopes::client_id.eq(client_id))).execute(conn)?;
        for scope in scopes {
            diesel::insert_into(client_scopes::table)
                .values((client_scopes::client_id.eq(client_id), client_scopes::scope.eq(scope)))
                .execute(conn)?;
        }
    }
    if let Some(audiences) = audiences {
        diesel::delete(client_audiences::table.filter(client_audiences::client_id.eq(client_id))).execute(conn)?;
        for audience in audiences {
            diesel::insert_into(client_audiences::table)
                .values((client_audiences::client_id.eq(client_id), client_audiences::audience.eq(audience)))
                .execute(conn)?;
        }
    }
    Ok(())
}

/// Creates a client that may use a secret method, and its first secret, in one transaction.
pub fn create(
    conn: &mut Tx,
    caller: &Caller,
    input: &NewClient,
    limits: ClientLimits,
) -> RegistryResult<CreatedClient> {
    if !methods_of(input).list().iter().any(|m| m.uses_secret()) {
        return Err(RegistryError::Invalid {
            field: "token_endpoint_auth_methods",
            message: "this way of creating a client needs a secret method".into(),
        });
    }
    let registered = register(conn, caller, input, limits)?;
    let secret = registered.secret.expect("a client with a secret method gets its first secret");
    Ok(CreatedClient { client: registered.client, secret })
}

fn methods_of(input: &NewClient) -> AuthMethods {
    input.token_endpoint_auth_methods.as_deref().map(AuthMethods::of).unwrap_or(AuthMethods::SECRETS)
}

/// The keys of a client as stored (`jwks` as compact JSON text), checked.
fn checked_keys(
    jwks: Option<&serde_json::Value>,
    jwks_uri: Option<&str>,
) -> RegistryResult<(Option<String>, Option<String>)> {
    let jwks = jwks.map(client_keys::check_jwks).transpose()?;
    if let Some(uri) = jwks_uri {
        client_keys::check_jwks_uri(uri)?;
    }
    Ok((jwks, jwks_uri.map(str::to_string)))
}

/// Creates a client in one transaction, with its first secret if it may use a secret method: a client that
/// authenticates only with its keys never has a secret that could leak.
pub fn register(
    conn: &mut Tx,
    caller: &Caller,
    input: &NewClient,
    limits: ClientLimits,
) -> RegistryResult<RegisteredClient> {
    caller.require(Permission::ClientsWrite)?;
    let methods = methods_of(input);
    let (jwks, jwks_uri) = checked_keys(input.jwks.as_ref(), input.jwks_uri.as_deref())?;
    let federated = client_keys::check_federated(&input.federated_credentials)?;
    client_keys::check_registration(methods, jwks.as_deref(), jwks_uri.as_deref(), !federated.is_empty())?;
    validate::text("name", &input.name, 1, 200)?;

    validate::text("description", &input.description, 0, 1000)?;
    validate::token_lifetime(input.token_lifetime_secs, limits.max_token_lifetime_secs)?;
    validate::rate_limit(input.rate_limit_per_minute)?;
    validate::environment(input.environment.as_deref())?;
    let audiences = validate::list(&input.audiences, validate::audience)?;
    let secret_name = input.secret_name.clone().unwrap_or_else(|| "secret-1".to_string());
    validate::text("secret_name", &secret_name, 1, 100)?;
    validate::filter("partner_id", input.partner_id.as_deref(), validate::is_partner_id)?;
    let partner_id = match (&caller.tenancy, &input.partner_id) {
        (Tenancy::Operator, Some(id)) => id.clone(),
        (Tenancy::Operator, None) => {
            return Err(RegistryError::Invalid { field: "partner_id", message: "is required".into() })
        }
        (Tenancy::Partner(own), None) => own.clone(),
        (Tenancy::Partner(own), Some(id)) if id == own => own.clone(),
        (Tenancy::Partner(_), Some(id)) => return Err(not_found("partner", id)),
    };
    let client_id = match &input.client_id {
        None => new_client_id(),
        Some(_) if caller.tenancy != Tenancy::Operator => {
            return Err(RegistryError::Forbidden("only the operator chooses client ids".into()))
        }
        Some(id) => {
            validate::client_id(id)?;
            id.clone()
        }
    };
    crate::store::write_transaction(conn, |conn| {
        partners::get(conn, caller, &partner_id)?;
        if clients::table.find(&client_id).count().get_result::<i64>(conn.db())? > 0 {
            return Err(RegistryError::AlreadyExists { kind: "client", id: client_id.clone() });
        }
        let role_names = roles::require_known(conn, &input.roles)?;
        let scope_names = scopes::require_known(conn, &input.scopes)?;
        check_grants(conn, caller, &partner_id, &role_names, &scope_names)?;
        check_audiences(conn, caller, &partner_id, &audiences, &[])?;
        let at = caller.now();
        let row = ClientRow {
            id: client_id.clone(),
            partner_id: partner_id.clone(),
            name: input.name.clone(),
            description: input.description.clone(),
            enabled: true,
            token_lifetime_secs: input.token_lifetime_secs,
            // A chosen id may have belonged to a deleted client, whose tokens may have been issued in this very
            // second: a cut-off at creation keeps them dead (new tokens wait for the next second).
            tokens_revoked_before: input.client_id.is_some().then_some(at),
            created_at: at,
            updated_at: at,
            disabled_by: None,
            rate_limit_per_minute: input.rate_limit_per_minute,
            environment: input.environment.clone(),
            auth_methods: methods.stored(),
            jwks: jwks.clone(),
            jwks_uri: jwks_uri.clone(),
        };
        diesel::insert_into(clients::table).values(&row).execute(conn.db())?;
        replace_links(conn, &row.id, Some(&role_names), Some(&scope_names), Some(&audiences))?;
        replace_federated(conn, &partner_id, &row.id, &federated)?;
        let uses_secret = methods.list().iter().any(|m| m.uses_secret());
        let secret = uses_secret
            .then(|| secrets::insert(conn, &row.id, &secret_name, at, None, limits.secret_policy))
            .transpose()?;
        let client = assemble(conn, row)?;
        caller.audit(
            conn,
            "client.create",
            Some(&partner_id),
            Some(&client.id),
            json!({"after": client, "secret_id": secret.as_ref().map(|s| s.id.clone())}),
        )?;
        Ok(RegisteredClient { client, secret })
    })
}

pub fn get(conn: &mut DbConnection, caller: &Caller, id: &str) -> RegistryResult<Client> {
    caller.require(Permission::ClientsRead)?;
    let row = get_row(conn, &caller.tenancy, id)?;
    assemble(conn, row)
}

diesel::define_sql_function!(fn lower(text: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// `text` with LIKE's wildcards and the escape character itself taken literally (escape character `\`).
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

pub fn list(conn: &mut DbConnection, caller: &Caller, filter: &ClientFilter) -> RegistryResult<Page<Client>> {
    caller.require(Permission::ClientsRead)?;
    let tenancy = &caller.tenancy;
    let limit = PageRequest { cursor: filter.cursor.clone(), limit: filter.limit }.size()?;
    validate::filter("partner_id", filter.partner_id.as_deref(), validate::is_partner_id)?;
    validate::filter("environment", filter.environment.as_deref(), validate::is_environment)?;
    let mut query = clients::table.select(ClientRow::as_select()).order(clients::id).limit(limit + 1).into_boxed();
    if let Tenancy::Partner(own) = tenancy {
        query = query.filter(clients::partner_id.eq(own.clone()));
    }
    if let Some(partner_id) = &filter.partner_id {
        query = query.filter(clients::partner_id.eq(partner_id.clone()));
    }
    if let Some(enabled) = filter.enabled {
        query = query.filter(clients::enabled.eq(enabled));
    }
    if let Some(environment) = &filter.environment {
        query = query.filter(clients::environment.eq(environment.clone()));
    }
    if let Some(search) = filter.search.as_deref().map(str::trim).filter(|search| !search.is_empty()) {
        validate::text("search", search, 1, 200)?;
        // Both backends' LIKE, on lowered text: SQLite's is case-blind for ASCII only, PostgreSQL's not at all.
        let pattern = format!("%{}%", escape_like(&search.to_lowercase()));
        query = query.filter(
            lower(clients::name).like(pattern.clone()).escape('\\').or(lower(clients::id).like(pattern).escape('\\')),
        );
    }
    if let Some(cursor) = &filter.cursor {
        query = query.filter(clients::id.gt(cursor.clone()));
    }
    paging::page(query.load(conn)?, limit, |r: &ClientRow| r.id.clone()).try_map(|row| assemble(conn, row))
}

pub fn update(
    conn: &mut Tx,
    caller: &Caller,
    id: &str,
    input: &ClientUpdate,
    limits: ClientLimits,
) -> RegistryResult<Client> {
    if let Some(name) = &input.name {
        validate::text("name", name, 1, 200)?;
    }
    if let Some(description) = &input.description {
        validate::text("description", description, 0, 1000)?;
    }
    if let Some(lifetime) = input.token_lifetime_secs {
        validate::token_lifetime(lifetime, limits.max_token_lifetime_secs)?;
    }
    if let Some(rate) = input.rate_limit_per_minute {
        validate::rate_limit(rate)?;
    }
    if let Some(environment) = &input.environment {
        validate::environment(environment.as_deref())?;
    }
    let audiences = input.audiences.as_deref().map(|a| validate::list(a, validate::audience)).transpose()?;
    let federated = input.federated_credentials.as_deref().map(client_keys::check_federated).transpose()?;
    crate::store::write_transaction(conn, |conn| {
        let row = get_row(conn, &caller.tenancy, id)?;
        require_writable(caller, &row)?;
        let before = assemble(conn, row.clone())?;
        if let Some(federated) = &federated {
            replace_federated(conn, &row.partner_id, id, federated)?;
        }
        let role_names = input.roles.as_deref().map(|r| roles::require_known(conn, r)).transpose()?;
        let scope_names = input.scopes.as_deref().map(|s| scopes::require_known(conn, s)).transpose()?;
        if role_names.is_some() || scope_names.is_some() {
            let (role_list, scope_list) = (role_names.as_deref().unwrap_or(&[]), scope_names.as_deref().unwrap_or(&[]));
            check_grants(conn, caller, &row.partner_id, role_list, scope_list)?;
        }
        if let Some(audiences) = &audiences {
            check_audiences(conn, caller, &row.partner_id, audiences, &before.audiences)?;
        }
        // Keys come inline or from a URL: setting one drops the other.
        let (jwks, jwks_uri) = match (&input.jwks, &input.jwks_uri) {
            (None, None) => (row.jwks.clone(), row.jwks_uri.clone()),
            (Some(jwks), None) => checked_keys(jwks.as_ref(), None)?,
            (None, Some(uri)) => checked_keys(None, uri.as_deref())?,
            (Some(jwks), Some(uri)) => checked_keys(jwks.as_ref(), uri.as_deref())?,
        };
        let methods = input
            .token_endpoint_auth_methods
            .as_deref()
            .map(AuthMethods::of)
            .unwrap_or_else(|| AuthMethods::parse_stored(&row.auth_methods));
        let has_federated = match &federated {
            Some(list) => !list.is_empty(),
            None => !before.federated_credentials.is_empty(),
        };
        client_keys::check_registration(methods, jwks.as_deref(), jwks_uri.as_deref(), has_federated)?;
        // Only the edited columns: a whole-row write would undo a concurrent disable or bulk revocation.
        let edit = ClientEdit {
            name: input.name.as_deref(),
            description: input.description.as_deref(),
            token_lifetime_secs: input.token_lifetime_secs,
            rate_limit_per_minute: input.rate_limit_per_minute,
            environment: input.environment.as_ref().map(Option::as_deref),
            auth_methods: methods.stored(),
            jwks: jwks.as_deref(),
            jwks_uri: jwks_uri.as_deref(),
            updated_at: caller.now(),
        };
        diesel::update(clients::table.find(id)).set(&edit).execute(conn.db())?;
        replace_links(conn, id, role_names.as_deref(), scope_names.as_deref(), audiences.as_deref())?;
        let updated = get_row(conn, &caller.tenancy, id)?;
        let after = assemble(conn, updated)?;
        caller.audit(
            conn,
            "client.update",
            Some(&after.partner_id),
            Some(id),
            json!({"before": before, "after": after}),
        )?;
        Ok(after)
    })
}

/// The columns a client update may write; `None` leaves a column as it is.
#[derive(AsChangeset)]
#[diesel(table_name = clients)]
struct ClientEdit<'a> {
    name: Option<&'a str>,
    description: Option<&'a str>,
    /// `Some(None)` clears it.
    token_lifetime_secs: Option<Option<i32>>,
    rate_limit_per_minute: Option<Option<i32>>,
    environment: Option<Option<&'a str>>,
    auth_methods: String,
    /// Always written (`None` as NULL): the update computes the whole pair.
    #[diesel(treat_none_as_null = true)]
    jwks: Option<&'a str>,
    #[diesel(treat_none_as_null = true)]
    jwks_uri: Option<&'a str>,
    updated_at: chrono::NaiveDateTime,
}

/// Who disabled a client. The operator's disabling is a hold: a partner admin cannot lift it, and a partner
/// admin disabling a held client leaves it the operator's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    Operator,
    Partner,
}

impl Holder {
    pub fn as_str(self) -> &'static str {
        match self {
            Holder::Operator => "operator",
            Holder::Partner => "partner",
        }
    }

    fn of(caller: &Caller) -> Self {
        match caller.tenancy {
            Tenancy::Operator => Holder::Operator,
            Tenancy::Partner(_) => Holder::Partner,
        }
    }
}

/// Enables or disables a client; takes effect on its very next token request.
pub fn set_enabled(conn: &mut Tx, caller: &Caller, id: &str, enabled: bool) -> RegistryResult<Client> {
    crate::store::write_transaction(conn, |conn| {
        let row = get_row(conn, &caller.tenancy, id)?;
        require_writable(caller, &row)?;
        let held = row.disabled_by.as_deref() == Some(Holder::Operator.as_str());
        let disabled_by = match (enabled, held) {
            (true, true) if Holder::of(caller) != Holder::Operator => {
                return Err(RegistryError::Forbidden(
                    "the operator disabled this client: only the operator can enable it".into(),
                ))
            }
            (true, _) => None,
            (false, true) => Some(Holder::Operator),
            (false, false) => Some(Holder::of(caller)),
        };
        let disabled_by = disabled_by.map(Holder::as_str);
        if row.enabled != enabled {
            let (partner_id, client_id) = (row.partner_id.clone(), id.to_string());
            let event = match enabled {
                true => SecurityEvent::ClientEnabled { partner_id, client_id },
                false => SecurityEvent::ClientDisabled { partner_id, client_id },
            };
            secevents::record(conn, event, caller.now())?;
        }
        diesel::update(clients::table.find(id))
            .set((
                clients::enabled.eq(enabled),
                clients::disabled_by.eq(disabled_by),
                clients::updated_at.eq(caller.now()),
            ))
            .execute(conn.db())?;
        let event = if enabled { "client.enable" } else { "client.disable" };
        caller.audit(
            conn,
            event,
            Some(&row.partner_id),
            Some(id),
            json!({
                "before": {"enabled": row.enabled, "disabled_by": row.disabled_by},
                "after": {"enabled": enabled, "disabled_by": disabled_by},
            }),
        )?;
        get(conn, caller, id)
    })
}

/// Deletes a client with its secrets and grants (the foreign keys cascade).
pub fn delete(conn: &mut Tx, caller: &Caller, id: &str) -> RegistryResult<()> {
    crate::store::write_transaction(conn, |conn| {
        let row = get_row(conn, &caller.tenancy, id)?;
        require_writable(caller, &row)?;
        let before = assemble(conn, row.clone())?;
        let event = SecurityEvent::ClientDeleted { partner_id: row.partner_id.clone(), client_id: id.to_string() };
        secevents::record(conn, event, caller.now())?;
        diesel::delete(clients::table.find(id)).execute(conn.db())?;
        caller.audit(conn, "client.delete", Some(&row.partner_id), Some(id), json!({"before": before}))?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::registry::partners::NewPartner;
    use crate::registry::secret_expiry::SecretPolicy;
    use crate::registry::secrets::{self, NewSecret};

    /// The caller's clock decides creation times and the grace period: an hour passes without waiting.
    #[test]
    fn rotation_grace_periods_run_on_the_callers_clock() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("clock.db").display());
        let pool = crate::store::connect(&url, &Default::default()).unwrap();
        let mut conn = crate::store::Tx::new(pool.get().unwrap());
        crate::store::run_migrations(&mut conn).unwrap();
        let start = chrono::DateTime::from_timestamp(1_900_000_000, 0).unwrap().naive_utc();
        let clock = ManualClock::at(start);
        let caller = Caller::cli().with_clock(std::sync::Arc::new(clock.clone()));
        partners::create(
            &mut conn,
            &caller,
            &NewPartner { id: "clock".into(), name: "Clock".into(), ..Default::default() },
        )
        .unwrap();
        let input = NewClient { partner_id: Some("clock".into()), name: "c".into(), ..Default::default() };
        let created = create(
            &mut conn,
            &caller,
            &input,
            ClientLimits { max_token_lifetime_secs: 60, secret_policy: SecretPolicy::default() },
        )
        .unwrap();
        assert_eq!(created.client.created_at, start);
        assert_eq!(created.secret.created_at, start);

        clock.advance(chrono::Duration::minutes(5));
        let rotation = NewSecret { grace_period_secs: Some(3600), ..Default::default() };
        let rotated =
            secrets::create(&mut conn, &caller, &created.client.id, &rotation, SecretPolicy::default()).unwrap();
        assert_eq!(rotated.created_at, clock.now());
        let old = |conn: &mut DbConnection| {
            secrets::list(conn, &caller, &created.client.id)
                .unwrap()
                .into_iter()
                .find(|s| s.id == created.secret.id)
                .unwrap()
        };
        assert_eq!(old(&mut conn).expires_at, Some(clock.now() + chrono::Duration::hours(1)));
        clock.advance(chrono::Duration::minutes(59));
        assert!(old(&mut conn).active, "within the grace period");
        clock.advance(chrono::Duration::minutes(1));
        assert!(!old(&mut conn).active, "expired at the end of the grace period, by the caller's clock");
    }
}
