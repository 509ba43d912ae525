//! `/admin/v1/scopes` and `/admin/v1/roles`: the catalog. Anyone with an admin token may read it; only the
//! operator changes it.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::{AdminCaller, CascadeQuery, Deleted, RouteTable};
use crate::http::problem::Problem;
use crate::http::problem::ProblemBody;
use crate::http::AppState;
use crate::registry::paging::{Page, PageRequest};
use crate::registry::roles::{self, Role};
use crate::registry::scopes::{self, Scope};

pub fn routes(routes: &mut RouteTable) {
    routes
        .post("/scopes", create_scope)
        .get("/scopes", list_scopes)
        .get("/scopes/{name}", get_scope)
        .patch("/scopes/{name}", update_scope)
        .delete("/scopes/{name}", delete_scope)
        .post("/roles", create_role)
        .get("/roles", list_roles)
        .get("/roles/{name}", get_role)
        .patch("/roles/{name}", update_role)
        .delete("/roles/{name}", delete_role);
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewScope {
    name: String,
    #[serde(default)]
    description: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopeUpdate {
    description: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRole {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    scopes: Vec<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleUpdate {
    description: Option<String>,
    scopes: Option<Vec<String>>,
}

#[utoipa::path(
    post,
    path = "/admin/v1/scopes",
    operation_id = "create_scope",
    tag = "catalog",
    summary = "Register a scope (operator)",
    request_body = NewScope,
    responses((status = 201, body = Scope), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn create_scope(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    body: web::Json<NewScope>,
) -> Result<HttpResponse, Problem> {
    let scope = state.registry.run(move |tx| scopes::create(tx, &caller, &body.name, &body.description)).await?;
    Ok(HttpResponse::Created().json(scope))
}

#[utoipa::path(
    get,
    path = "/admin/v1/scopes",
    operation_id = "list_scopes",
    tag = "catalog",
    summary = "List the scope catalog",
    params(PageRequest),
    responses((status = 200, body = Page<Scope>), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn list_scopes(
    state: web::Data<AppState>,
    _caller: AdminCaller,
    query: web::Query<PageRequest>,
) -> Result<HttpResponse, Problem> {
    let page = state.registry.run(move |tx| scopes::list(tx, &query)).await?;
    Ok(HttpResponse::Ok().json(page))
}

#[utoipa::path(
    get,
    path = "/admin/v1/scopes/{name}",
    operation_id = "get_scope",
    tag = "catalog",
    summary = "Get a scope",
    params(("name" = String, Path, description = "the scope name")),
    responses((status = 200, body = Scope), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn get_scope(
    state: web::Data<AppState>,
    _caller: AdminCaller,
    name: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let scope = state.registry.run(move |tx| scopes::get(tx, &name)).await?;
    Ok(HttpResponse::Ok().json(scope))
}

#[utoipa::path(
    patch,
    path = "/admin/v1/scopes/{name}",
    operation_id = "update_scope",
    tag = "catalog",
    summary = "Change a scope's description (operator)",
    params(("name" = String, Path, description = "the scope name")),
    request_body = ScopeUpdate,
    responses((status = 200, body = Scope), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn update_scope(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    name: web::Path<String>,
    body: web::Json<ScopeUpdate>,
) -> Result<HttpResponse, Problem> {
    let scope = state.registry.run(move |tx| scopes::update(tx, &caller, &name, &body.description)).await?;
    Ok(HttpResponse::Ok().json(scope))
}

#[utoipa::path(
    delete,
    path = "/admin/v1/scopes/{name}",
    operation_id = "delete_scope",
    tag = "catalog",
    summary = "Delete a scope (operator)",
    params(("name" = String, Path, description = "the scope name"), CascadeQuery),
    responses((status = 200, body = Deleted), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn delete_scope(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    name: web::Path<String>,
    query: web::Query<CascadeQuery>,
) -> Result<HttpResponse, Problem> {
    let deleted = name.clone();
    state.registry.run(move |tx| scopes::delete(tx, &caller, &name, query.cascade)).await?;
    Ok(HttpResponse::Ok().json(Deleted { deleted }))
}

#[utoipa::path(
    post,
    path = "/admin/v1/roles",
    operation_id = "create_role",
    tag = "catalog",
    summary = "Define a role (operator)",
    request_body = NewRole,
    responses((status = 201, body = Role), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn create_role(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    body: web::Json<NewRole>,
) -> Result<HttpResponse, Problem> {
    let role =
        state.registry.run(move |tx| roles::create(tx, &caller, &body.name, &body.description, &body.scopes)).await?;
    Ok(HttpResponse::Created().json(role))
}

#[utoipa::path(
    get,
    path = "/admin/v1/roles",
    operation_id = "list_roles",
    tag = "catalog",
    summary = "List the role catalog",
    params(PageRequest),
    responses((status = 200, body = Page<Role>), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn list_roles(
    state: web::Data<AppState>,
    _caller: AdminCaller,
    query: web::Query<PageRequest>,
) -> Result<HttpResponse, Problem> {
    let page = state.registry.run(move |tx| roles::list(tx, &query)).await?;
    Ok(HttpResponse::Ok().json(page))
}

#[utoipa::path(
    get,
    path = "/admin/v1/roles/{name}",
    operation_id = "get_role",
    tag = "catalog",
    summary = "Get a role",
    params(("name" = String, Path, description = "the role name")),
    responses((status = 200, body = Role), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn get_role(
    state: web::Data<AppState>,
    _caller: AdminCaller,
    name: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let role = state.registry.run(move |tx| roles::get(tx, &name)).await?;
    Ok(HttpResponse::Ok().json(role))
}

#[utoipa::path(
    patch,
    path = "/admin/v1/roles/{name}",
    operation_id = "update_role",
    tag = "catalog",
    summary = "Change a role (operator)",
    params(("name" = String, Path, description = "the role name")),
    request_body = RoleUpdate,
    responses((status = 200, body = Role), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn update_role(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    name: web::Path<String>,
    body: web::Json<RoleUpdate>,
) -> Result<HttpResponse, Problem> {
    let role = state
        .registry
        .run(move |tx| roles::update(tx, &caller, &name, body.description.as_deref(), body.scopes.as_deref()))
        .await?;
    Ok(HttpResponse::Ok().json(role))
}

#[utoipa::path(
    delete,
    path = "/admin/v1/roles/{name}",
    operation_id = "delete_role",
    tag = "catalog",
    summary = "Delete a role (operator)",
    params(("name" = String, Path, description = "the role name"), CascadeQuery),
    responses((status = 200, body = Deleted), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn delete_role(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    name: web::Path<String>,
    query: web::Query<CascadeQuery>,
) -> Result<HttpResponse, Problem> {
    let deleted = name.clone();
    state.registry.run(move |tx| roles::delete(tx, &caller, &name, query.cascade)).await?;
    Ok(HttpResponse::Ok().json(Deleted { deleted }))
}
