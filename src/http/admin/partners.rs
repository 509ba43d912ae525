//! `/admin/v1/partners`: the operator manages partners; a partner admin may read its own.

use actix_web::{web, HttpResponse};

use super::{AdminCaller, Deleted, RouteTable};
use crate::http::problem::Problem;
use crate::http::problem::ProblemBody;
use crate::http::AppState;
use crate::registry::paging::{Page, PageRequest};
use crate::registry::partners::{self, NewPartner, Partner, PartnerUpdate};
use crate::registry::usage::{self as partner_usage, Usage};

pub fn routes(routes: &mut RouteTable) {
    routes
        .post("/partners", create)
        .get("/partners", list)
        .get("/partners/{id}", get)
        .patch("/partners/{id}", update)
        .delete("/partners/{id}", delete)
        .post("/partners/{id}/suspend", suspend)
        .post("/partners/{id}/resume", resume)
        .get("/partners/{id}/usage", usage);
}

#[utoipa::path(
    post,
    path = "/admin/v1/partners",
    operation_id = "create_partner",
    tag = "partners",
    summary = "Create a partner (operator)",
    request_body = NewPartner,
    responses((status = 201, body = Partner), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn create(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    body: web::Json<NewPartner>,
) -> Result<HttpResponse, Problem> {
    let partner = state.registry.run(move |tx| partners::create(tx, &caller, &body)).await?;
    Ok(HttpResponse::Created().json(partner))
}

#[utoipa::path(
    get,
    path = "/admin/v1/partners",
    operation_id = "list_partners",
    tag = "partners",
    summary = "List partners (a partner admin: its own)",
    params(PageRequest),
    responses((status = 200, body = Page<Partner>), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn list(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    query: web::Query<PageRequest>,
) -> Result<HttpResponse, Problem> {
    let page = state.registry.run(move |tx| partners::list(tx, &caller, &query)).await?;
    Ok(HttpResponse::Ok().json(page))
}

#[utoipa::path(
    get,
    path = "/admin/v1/partners/{id}",
    operation_id = "get_partner",
    tag = "partners",
    summary = "Get a partner",
    params(("id" = String, Path, description = "the partner id")),
    responses((status = 200, body = Partner), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn get(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let partner = state.registry.run(move |tx| partners::get(tx, &caller, &id)).await?;
    Ok(HttpResponse::Ok().json(partner))
}

#[utoipa::path(
    patch,
    path = "/admin/v1/partners/{id}",
    operation_id = "update_partner",
    tag = "partners",
    summary = "Update a partner's name, ceilings and limits (operator)",
    params(("id" = String, Path, description = "the partner id")),
    request_body = PartnerUpdate,
    responses((status = 200, body = Partner), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn update(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<String>,
    body: web::Json<PartnerUpdate>,
) -> Result<HttpResponse, Problem> {
    let partner = state.registry.run(move |tx| partners::update(tx, &caller, &id, &body)).await?;
    Ok(HttpResponse::Ok().json(partner))
}

#[utoipa::path(
    delete,
    path = "/admin/v1/partners/{id}",
    operation_id = "delete_partner",
    tag = "partners",
    summary = "Delete a partner without clients (operator; never the operator's own partner: 409 protected)",
    params(("id" = String, Path, description = "the partner id")),
    responses((status = 200, body = Deleted), (status = "4XX", description = "a problem: invalid input, token, permission, not found, in use (it has clients) or protected", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn delete(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let deleted = id.clone();
    state.registry.run(move |tx| partners::delete(tx, &caller, &id)).await?;
    Ok(HttpResponse::Ok().json(Deleted { deleted }))
}

#[utoipa::path(
    post,
    path = "/admin/v1/partners/{id}/suspend",
    operation_id = "suspend_partner",
    tag = "partners",
    summary = "Suspend a partner (operator; never the operator's own partner: 409 protected)",
    params(("id" = String, Path, description = "the partner id")),
    responses((status = 200, body = Partner), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn suspend(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let partner = state.registry.run(move |tx| partners::set_suspended(tx, &caller, &id, true)).await?;
    Ok(HttpResponse::Ok().json(partner))
}

#[utoipa::path(
    post,
    path = "/admin/v1/partners/{id}/resume",
    operation_id = "resume_partner",
    tag = "partners",
    summary = "Resume a partner (operator)",
    params(("id" = String, Path, description = "the partner id")),
    responses((status = 200, body = Partner), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn resume(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let partner = state.registry.run(move |tx| partners::set_suspended(tx, &caller, &id, false)).await?;
    Ok(HttpResponse::Ok().json(partner))
}

/// Today's token count against the partner's daily quota.
#[utoipa::path(
    get,
    path = "/admin/v1/partners/{id}/usage",
    operation_id = "partner_usage",
    tag = "partners",
    summary = "Today's token count against the daily quota",
    params(("id" = String, Path, description = "the partner id")),
    responses((status = 200, body = Usage), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn usage(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let usage = state.registry.run(move |tx| partner_usage::today(tx, &caller, &id)).await?;
    Ok(HttpResponse::Ok().json(usage))
}
