//! `/admin/v1/partners`: the operator manages partners; a partner admin may read its own.

use actix_web::{web, HttpResponse};

use super::AdminCaller;
use crate::http::problem::Problem;
use crate::http::AppState;
use crate::registry::paging::PageRequest;
use crate::registry::partners::{self, NewPartner, PartnerUpdate};
use crate::registry::usage as partner_usage;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/partners", web::post().to(create))
        .route("/partners", web::get().to(list))
        .route("/partners/{id}", web::get().to(get))
        .route("/partners/{id}", web::patch().to(update))
        .route("/partners/{id}/suspend", web::post().to(suspend))
        .route("/partners/{id}/resume", web::post().to(resume))
        .route("/partners/{id}/usage", web::get().to(usage));
}

async fn create(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    body: web::Json<NewPartner>,
) -> Result<HttpResponse, Problem> {
    let partner = state.run(move |conn| partners::create(conn, &caller, &body)).await?;
    Ok(HttpResponse::Created().json(partner))
}

async fn list(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    query: web::Query<PageRequest>,
) -> Result<HttpResponse, Problem> {
    let page = state.run(move |conn| partners::list(conn, &caller, &query)).await?;
    Ok(HttpResponse::Ok().json(page))
}

async fn get(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let partner = state.run(move |conn| partners::get(conn, &caller, &id)).await?;
    Ok(HttpResponse::Ok().json(partner))
}

async fn update(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<String>,
    body: web::Json<PartnerUpdate>,
) -> Result<HttpResponse, Problem> {
    let partner = state.run(move |conn| partners::update(conn, &caller, &id, &body)).await?;
    Ok(HttpResponse::Ok().json(partner))
}

async fn suspend(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let partner = state.run(move |conn| partners::set_suspended(conn, &caller, &id, true)).await?;
    Ok(HttpResponse::Ok().json(partner))
}

async fn resume(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let partner = state.run(move |conn| partners::set_suspended(conn, &caller, &id, false)).await?;
    Ok(HttpResponse::Ok().json(partner))
}

/// Today's token count against the partner's daily quota.
async fn usage(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let usage = state.run(move |conn| partner_usage::today(conn, &caller, &id)).await?;
    Ok(HttpResponse::Ok().json(usage))
}
