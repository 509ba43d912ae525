//! The scope catalog: only registered scopes can be granted.

use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

use super::paging::{self, Page, PageRequest};
use super::{not_found, validate, Caller, RegistryError, RegistryResult};
use crate::store::models::ScopeRow;
use crate::store::schema::{client_scopes, partner_scopes, role_scopes, scopes};
use crate::store::{DbConnection, Tx};

/// Scopes that only the operator may grant; they open the admin API and introspection.
pub const RESERVED_PREFIX: &str = "authz.";
pub const ADMIN: &str = "authz.admin";
pub const CLIENTS_READ: &str = "authz.clients.read";
pub const CLIENTS_WRITE: &str = "authz.clients.write";
pub const AUDIT_READ: &str = "authz.audit.read";
pub const INTROSPECT: &str = "authz.introspect";
/// A resource server reporting its requests to the request log, and nothing else (not even reading it).
pub const USAGE_REPORT: &str = "authz.usage.report";
/// Following the revocation stream (`POST /ssf/poll`); nothing else.
pub const EVENTS_READ: &str = "authz.events.read";

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Scope {
    pub name: String,
    pub description: String,
    #[serde(serialize_with = "crate::store::utc::serialize")]
    pub created_at: chrono::NaiveDateTime,
}

impl From<ScopeRow> for Scope {
    fn from(row: ScopeRow) -> Self {
        Scope { name: row.name, description: row.description, created_at: row.created_at }
    }
}

pub fn create(conn: &mut Tx, caller: &Caller, name: &str, description: &str) -> RegistryResult<Scope> {
    caller.require_operator("the scope catalog")?;
    validate::scope_name(name)?;
    validate::text("description", description, 0, 500)?;
    crate::store::write_transaction(conn, |conn| {
        let exists = scopes::table.find(name).count().get_result::<i64>(conn.db())? > 0;
        if exists {
            return Err(RegistryError::AlreadyExists { kind: "scope", id: name.to_string() });
        }
        let row = ScopeRow { name: name.to_string(), description: description.to_string(), created_at: caller.now() };
        diesel::insert_into(scopes::table).values(&row).execute(conn.db())?;
        caller.audit(conn, "scope.create", None, None, json!({"after": {"name": name, "description": description}}))?;
        Ok(row.into())
    })
}

/// The whole catalog, for the server metadata's `scopes_supported`.
pub fn all(conn: &mut DbConnection) -> RegistryResult<Vec<Scope>> {
    let rows: Vec<ScopeRow> = scopes::table.order(scopes::name).select(ScopeRow::as_select()).load(conn)?;
    Ok(rows.into_iter().map(Scope::from).collect())
}

/// Scopes by name, a page at a time.
pub fn list(conn: &mut DbConnection, request: &PageRequest) -> RegistryResult<Page<Scope>> {
    let size = request.size()?;
    let mut query = scopes::table.order(scopes::name).select(ScopeRow::as_select()).limit(size + 1).into_boxed();
    if let Some(cursor) = &request.cursor {
        query = query.filter(scopes::name.gt(cursor.clone()));
    }
    paging::page(query.load(conn)?, size, |r: &ScopeRow| r.name.clone()).try_map(|row| Ok(Scope::from(row)))
}

pub fn get(conn: &mut DbConnection, name: &str) -> RegistryResult<Scope> {
    validate::lookup("scope", name, validate::is_scope_name)?;
    scopes::table
        .find(name)
        .select(ScopeRow::as_select())
        .first(conn)
        .optional()?
        .map(Scope::from)
        .ok_or_else(|| not_found("scope", name))
}

pub fn update(conn: &mut Tx, caller: &Caller, name: &str, description: &str) -> RegistryResult<Scope> {
    caller.require_operator("the scope catalog")?;
    validate::text("description", description, 0, 500)?;
    crate::store::write_transaction(conn, |conn| {
        let before = get(conn, name)?;
        diesel::update(scopes::table.find(name)).set(scopes::description.eq(description)).execute(conn.db())?;
        caller.audit(
            conn,
            "scope.update",
            None,
            None,
            json!({"scope": name, "before": {"description": before.description}, "after": {"description": description}}),
        )?;
        get(conn, name)
    })
}

/// Deletes a scope. One still held by a role, a client or a partner ceiling is refused unless `cascade`,
/// which removes those references in the same transaction.
pub fn delete(conn: &mut Tx, caller: &Caller, name: &str, cascade: bool) -> RegistryResult<()> {
    caller.require_operator("the scope catalog")?;
    if name.starts_with(RESERVED_PREFIX) {
        return Err(RegistryError::Forbidden(format!("{name} is reserved and cannot be deleted")));
    }
    crate::store::write_transaction(conn, |conn| {
        get(conn, name)?;
        let in_roles: i64 = role_scopes::table.filter(role_scopes::scope.eq(name)).count().get_result(conn.db())?;
        let in_clients: i64 =
            client_scopes::table.filter(client_scopes::scope.eq(name)).count().get_result(conn.db())?;
        let in_ceilings: i64 =
            partner_scopes::table.filter(partner_scopes::scope.eq(name)).count().get_result(conn.db())?;
        if in_roles + in_clients + in_ceilings > 0 && !cascade {
            return Err(RegistryError::InUse {
                kind: "scope",
                id: name.to_string(),
                message: format!(
                    "held by {in_roles} role(s), {in_clients} client(s) and {in_ceilings} partner ceiling(s); \
                     remove it there first or delete with cascade"
                ),
            });
        }
        diesel::delete(role_scopes::table.filter(role_scopes::scope.eq(name))).execute(conn.db())?;
        diesel::delete(client_scopes::table.filter(client_scopes::scope.eq(name))).execute(conn.db())?;
        diesel::delete(partner_scopes::table.filter(partner_scopes::scope.eq(name))).execute(conn.db())?;
        diesel::delete(scopes::table.find(name)).execute(conn.db())?;
        caller.audit(conn, "scope.delete", None, None, json!({"scope": name, "cascade": cascade}))?;
        Ok(())
    })
}

/// Checks names and that every one is in the catalog; returns them sorted and deduplicated.
pub fn require_known(conn: &mut DbConnection, names: &[String]) -> RegistryResult<Vec<String>> {
    let names = validate::list(names, validate::scope_name)?;
    if names.is_empty() {
        return Ok(names);
    }
    let known: Vec<String> = scopes::table.filter(scopes::name.eq_any(&names)).select(scopes::name).load(conn)?;
    let unknown: Vec<&str> = names.iter().filter(|n| !known.contains(n)).map(String::as_str).collect();
    if !unknown.is_empty() {
        return Err(RegistryError::Invalid {
            field: "scopes",
            message: format!("unknown scopes: {}", unknown.join(" ")),
        });
    }
    Ok(names)
}
