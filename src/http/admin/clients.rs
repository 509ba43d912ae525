//! `/admin/v1/clients` and their secrets. A partner admin sees and changes only its own partner's clients;
//! another partner's client answers 404, exactly like one that does not exist.

use actix_web::{web, HttpResponse};

use super::{AdminCaller, Listing};
use crate::http::problem::Problem;
use crate::http::AppState;
use crate::registry::clients::{self, ClientFilter, ClientUpdate, NewClient};
use crate::registry::secrets::{self, NewSecret};
use crate::registry::Permission;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/clients", web::post().to(create))
        .route("/clients", web::get().to(list))
        .route("/clients/{id}", web::get().to(get))
        .route("/clients/{id}", web::patch().to(update))
        .route("/clients/{id}", web::delete().to(delete))
        .route("/clients/{id}/enable", web::post().to(enable))
        .route("/clients/{id}/disable", web::post().to(disable))
        .route("/clients/{id}/secrets", web::post().to(create_secret))
        .route("/clients/{id}/secrets", web::get().to(list_secrets))
        .route("/clients/{id}/secrets/{secret_id}", web::delete().to(revoke_secret));
}

async fn create(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    body: web::Json<NewClient>,
) -> Result<HttpResponse, Problem> {
    let limits = state.client_limits;
    let created = state.run(move |conn| clients::create(conn, &caller, &body, limits)).await?;
    Ok(HttpResponse::Created().insert_header(("cache-control", "no-store")).json(created))
}

async fn list(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    query: web::Query<ClientFilter>,
) -> Result<HttpResponse, Problem> {
    caller.require(Permission::ClientsRead)?;
    let page = state.run(move |conn| clients::list(conn, &caller.tenancy, &query)).await?;
    Ok(HttpResponse::Ok().json(Listing { items: page.items, next_cursor: page.next_cursor }))
}

async fn get(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    caller.require(Permission::ClientsRead)?;
    let client = state.run(move |conn| clients::get(conn, &caller.tenancy, &id)).await?;
    Ok(HttpResponse::Ok().json(client))
}

async fn update(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<String>,
    body: web::Json<ClientUpdate>,
) -> Result<HttpResponse, Problem> {
    let limits = state.client_limits;
    let client = state.run(move |conn| clients::update(conn, &caller, &id, &body, limits)).await?;
    Ok(HttpResponse::Ok().json(client))
}

async fn delete(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    state.run(move |conn| clients::delete(conn, &caller, &id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn enable(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let client = state.run(move |conn| clients::set_enabled(conn, &caller, &id, true)).await?;
    Ok(HttpResponse::Ok().json(client))
}

async fn disable(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let client = state.run(move |conn| clients::set_enabled(conn, &caller, &id, false)).await?;
    Ok(HttpResponse::Ok().json(client))
}

async fn create_secret(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<String>,
    body: Option<web::Json<NewSecret>>,
) -> Result<HttpResponse, Problem> {
    let input = body.map(|b| b.into_inner()).unwrap_or_default();
    let issued = state.run(move |conn| secrets::create(conn, &caller, &id, &input)).await?;
    Ok(HttpResponse::Created().insert_header(("cache-control", "no-store")).json(issued))
}

async fn list_secrets(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    caller.require(Permission::ClientsRead)?;
    let items = state.run(move |conn| secrets::list(conn, &caller.tenancy, &id)).await?;
    Ok(HttpResponse::Ok().json(Listing::complete(items)))
}

async fn revoke_secret(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    let (id, secret_id) = path.into_inner();
    let info = state.run(move |conn| secrets::revoke(conn, &caller, &id, &secret_id)).await?;
    Ok(HttpResponse::Ok().json(info))
}
