//! Roles: named bundles of scopes, defined once and shared across partners. A role may hold more than a
//! partner's ceiling; the ceiling is applied when a token is issued.

use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

use super::paging::{self, Page, PageRequest};
use super::{not_found, scopes, validate, Caller, RegistryError, RegistryResult};
use crate::store::models::RoleRow;
use crate::store::schema::{client_roles, role_scopes, roles};
use crate::store::{DbConnection, Tx};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Role {
    pub name: String,
    pub description: String,
    pub scopes: Vec<String>,
    #[serde(serialize_with = "crate::store::utc::serialize")]
    pub created_at: chrono::NaiveDateTime,
}

fn replace_scopes(conn: &mut DbConnection, role: &str, scope_names: &[String]) -> RegistryResult<()> {
    diesel::delete(role_scopes::table.filter(role_scopes::role.eq(role))).execute(conn)?;
    for scope in scope_names {
        diesel::insert_into(role_scopes::table)
            .values((role_scopes::role.eq(role), role_scopes::scope.eq(scope)))
            .execute(conn)?;
    }
    Ok(())
}

pub fn create(
    conn: &mut Tx,
    caller: &Caller,
    name: &str,
    description: &str,
    scope_names: &[String],
) -> RegistryResult<Role> {
    caller.require_operator("roles")?;
    validate::role_name(name)?;
    validate::text("description", description, 0, 500)?;
    crate::store::write_transaction(conn, |conn| {
        let scope_names = scopes::require_known(conn, scope_names)?;
        if roles::table.find(name).count().get_result::<i64>(conn.db())? > 0 {
            return Err(RegistryError::AlreadyExists { kind: "role", id: name.to_string() });
        }
        let row = RoleRow { name: name.to_string(), description: description.to_string(), created_at: caller.now() };
        diesel::insert_into(roles::table).values(&row).execute(conn.db())?;
        replace_scopes(conn, name, &scope_names)?;
        let role = get(conn, name)?;
        caller.audit(conn, "role.create", None, None, json!({"after": role}))?;
        Ok(role)
    })
}

pub fn get(conn: &mut DbConnection, name: &str) -> RegistryResult<Role> {
    validate::lookup("role", name, validate::is_role_name)?;
    let row: RoleRow = roles::table
        .find(name)
        .select(RoleRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| not_found("role", name))?;
    let scopes = role_scopes::table
        .filter(role_scopes::role.eq(name))
        .order(role_scopes::scope)
        .select(role_scopes::scope)
        .load(conn)?;
    Ok(Role { name: row.name, description: row.description, scopes, created_at: row.created_at })
}

/// Roles by name with their scopes, a page at a time.
pub fn list(conn: &mut DbConnection, request: &PageRequest) -> RegistryResult<Page<Role>> {
    let size = request.size()?;
    let mut query = roles::table.order(roles::name).select(RoleRow::as_select()).limit(size + 1).into_boxed();
    if let Some(cursor) = &request.cursor {
        query = query.filter(roles::name.gt(cursor.clone()));
    }
    let page = paging::page(query.load(conn)?, size, |r: &RoleRow| r.name.clone());
    let names: Vec<&str> = page.items.iter().map(|r| r.name.as_str()).collect();
    let pairs: Vec<(String, String)> = role_scopes::table
        .filter(role_scopes::role.eq_any(&names))
        .order((role_scopes::role, role_scopes::scope))
        .select((role_scopes::role, role_scopes::scope))
        .load(conn)?;
    page.try_map(|row| {
        let scopes = pairs.iter().filter(|(r, _)| *r == row.name).map(|(_, s)| s.clone()).collect();
        Ok(Role { name: row.name, description: row.description, scopes, created_at: row.created_at })
    })
}

pub fn update(
    conn: &mut Tx,
    caller: &Caller,
    name: &str,
    description: Option<&str>,
    scope_names: Option<&[String]>,
) -> RegistryResult<Role> {
    caller.require_operator("roles")?;
    if let Some(description) = description {
        validate::text("description", description, 0, 500)?;
    }
    crate::store::write_transaction(conn, |conn| {
        let before = get(conn, name)?;
        if let Some(description) = description {
            diesel::update(roles::table.find(name)).set(roles::description.eq(description)).execute(conn.db())?;
        }
        if let Some(scope_names) = scope_names {
            let scope_names = scopes::require_known(conn, scope_names)?;
            replace_scopes(conn, name, &scope_names)?;
        }
        let after = get(conn, name)?;
        caller.audit(conn, "role.update", None, None, json!({"before": before, "after": after}))?;
        Ok(after)
    })
}

/// Deletes a role. One still assigned to clients is refused unless `cascade`, which unassigns it.
pub fn delete(conn: &mut Tx, caller: &Caller, name: &str, cascade: bool) -> RegistryResult<()> {
    caller.require_operator("roles")?;
    crate::store::write_transaction(conn, |conn| {
        let before = get(conn, name)?;
        let holders: i64 = client_roles::table.filter(client_roles::role.eq(name)).count().get_result(conn.db())?;
        if holders > 0 && !cascade {
            return Err(RegistryError::InUse {
                kind: "role",
                id: name.to_string(),
                message: format!("assigned to {holders} client(s); unassign it first or delete with cascade"),
            });
        }
        diesel::delete(client_roles::table.filter(client_roles::role.eq(name))).execute(conn.db())?;
        diesel::delete(role_scopes::table.filter(role_scopes::role.eq(name))).execute(conn.db())?;
        diesel::delete(roles::table.find(name)).execute(conn.db())?;
        caller.audit(conn, "role.delete", None, None, json!({"before": before, "cascade": cascade}))?;
        Ok(())
    })
}

/// Checks names and that every role exists; returns them sorted and deduplicated.
pub fn require_known(conn: &mut DbConnection, names: &[String]) -> RegistryResult<Vec<String>> {
    let names = validate::list(names, validate::role_name)?;
    if names.is_empty() {
        return Ok(names);
    }
    let known: Vec<String> = roles::table.filter(roles::name.eq_any(&names)).select(roles::name).load(conn)?;
    let unknown: Vec<&str> = names.iter().filter(|n| !known.contains(n)).map(String::as_str).collect();
    if !unknown.is_empty() {
        return Err(RegistryError::Invalid {
            field: "roles",
            message: format!("unknown roles: {}", unknown.join(" ")),
        });
    }
    Ok(names)
}
