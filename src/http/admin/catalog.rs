//! `/admin/v1/scopes` and `/admin/v1/roles`: the catalog. Anyone with an admin token may read it; only the
//! operator changes it.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::{AdminCaller, CascadeQuery};
use crate::http::problem::Problem;
use crate::http::AppState;
use crate::registry::paging::PageRequest;
use crate::registry::{roles, scopes};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/scopes", web::post().to(create_scope))
        .route("/scopes", web::get().to(list_scopes))
        .route("/scopes/{name}", web::get().to(get_scope))
        .route("/scopes/{name}", web::patch().to(update_scope))
        .route("/scopes/{name}", web::delete().to(delete_scope))
        .route("/roles", web::post().to(create_role))
        .route("/roles", web::get().to(list_roles))
        .route("/roles/{name}", web::get().to(get_role))
        .route("/roles/{name}", web::patch().to(update_role))
        .route("/roles/{name}", web::delete().to(delete_role));
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewScope {
    name: String,
    #[serde(default)]
    description: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopeUpdate {
    description: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRole {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    scopes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleUpdate {
    description: Option<String>,
    scopes: Option<Vec<String>>,
}

async fn create_scope(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    body: web::Json<NewScope>,
) -> Result<HttpResponse, Problem> {
    let scope = state.run(move |conn| scopes::create(conn, &caller, &body.name, &body.description)).await?;
    Ok(HttpResponse::Created().json(scope))
}

async fn list_scopes(
    state: web::Data<AppState>,
    _caller: AdminCaller,
    query: web::Query<PageRequest>,
) -> Result<HttpResponse, Problem> {
    let page = state.run(move |conn| scopes::list(conn, &query)).await?;
    Ok(HttpResponse::Ok().json(page))
}

async fn get_scope(
    state: web::Data<AppState>,
    _caller: AdminCaller,
    name: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let scope = state.run(move |conn| scopes::get(conn, &name)).await?;
    Ok(HttpResponse::Ok().json(scope))
}

async fn update_scope(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    name: web::Path<String>,
    body: web::Json<ScopeUpdate>,
) -> Result<HttpResponse, Problem> {
    let scope = state.run(move |conn| scopes::update(conn, &caller, &name, &body.description)).await?;
    Ok(HttpResponse::Ok().json(scope))
}

async fn delete_scope(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    name: web::Path<String>,
    query: web::Query<CascadeQuery>,
) -> Result<HttpResponse, Problem> {
    let deleted = name.clone();
    state.run(move |conn| scopes::delete(conn, &caller, &name, query.cascade)).await?;
    Ok(HttpResponse::Ok().json(json!({"deleted": deleted})))
}

async fn create_role(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    body: web::Json<NewRole>,
) -> Result<HttpResponse, Problem> {
    let role = state.run(move |conn| roles::create(conn, &caller, &body.name, &body.description, &body.scopes)).await?;
    Ok(HttpResponse::Created().json(role))
}

async fn list_roles(
    state: web::Data<AppState>,
    _caller: AdminCaller,
    query: web::Query<PageRequest>,
) -> Result<HttpResponse, Problem> {
    let page = state.run(move |conn| roles::list(conn, &query)).await?;
    Ok(HttpResponse::Ok().json(page))
}

async fn get_role(
    state: web::Data<AppState>,
    _caller: AdminCaller,
    name: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let role = state.run(move |conn| roles::get(conn, &name)).await?;
    Ok(HttpResponse::Ok().json(role))
}

async fn update_role(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    name: web::Path<String>,
    body: web::Json<RoleUpdate>,
) -> Result<HttpResponse, Problem> {
    let role = state
        .run(move |conn| roles::update(conn, &caller, &name, body.description.as_deref(), body.scopes.as_deref()))
        .await?;
    Ok(HttpResponse::Ok().json(role))
}

async fn delete_role(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    name: web::Path<String>,
    query: web::Query<CascadeQuery>,
) -> Result<HttpResponse, Problem> {
    let deleted = name.clone();
    state.run(move |conn| roles::delete(conn, &caller, &name, query.cascade)).await?;
    Ok(HttpResponse::Ok().json(json!({"deleted": deleted})))
}
