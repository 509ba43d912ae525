//! `/admin/v1/clients` and their secrets. A partner admin sees and changes only its own partner's clients;
//! another partner's client answers 404, exactly like one that does not exist.

use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};

use super::{AdminCaller, Listing};
use crate::http::problem::Problem;
use crate::http::AppState;
use crate::registry::clients::{self, ClientFilter, ClientUpdate, NewClient};
use crate::registry::revocation;
use crate::registry::secrets::{self, NewSecret};

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
    let page = state.run(move |conn| clients::list(conn, &caller, &query)).await?;
    Ok(HttpResponse::Ok().json(Listing { items: page.items, next_cursor: page.next_cursor }))
}

async fn get(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let client = state.run(move |conn| clients::get(conn, &caller, &id)).await?;
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
    let deleted = id.clone();
    state.run(move |conn| clients::delete(conn, &caller, &id)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"deleted": deleted})))
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

/// Whether the request carries a body at all (a chunked one counts, even if it turns out empty).
fn has_body(req: &HttpRequest) -> bool {
    req.headers().contains_key(header::TRANSFER_ENCODING)
        || req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim() != "0")
}

/// The body is optional: none at all means the defaults. A body that is there must be a valid `NewSecret`;
/// a mistyped or unknown field must not silently rotate without the grace period the caller asked for.
async fn create_secret(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, actix_web::Error> {
    let input = if has_body(&req) {
        web::Json::<NewSecret>::from_request(&req, &mut payload.into_inner()).await?.into_inner()
    } else {
        NewSecret::default()
    };
    let issued = state.run(move |conn| secrets::create(conn, &caller, &id, &input)).await?;
    Ok(HttpResponse::Created().insert_header(("cache-control", "no-store")).json(issued))
}

async fn list_secrets(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let items = state.run(move |conn| secrets::list(conn, &caller, &id)).await?;
    Ok(HttpResponse::Ok().json(Listing::complete(items)))
}

async fn revoke_secret(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    path: web::Path<(String, String)>,
    query: web::Query<RevokeSecretQuery>,
) -> Result<HttpResponse, Problem> {
    let (id, secret_id) = path.into_inner();
    let revoke_tokens = query.revoke_tokens;
    let info = state.run(move |conn| revocation::revoke_secret(conn, &caller, &id, &secret_id, revoke_tokens)).await?;
    Ok(HttpResponse::Ok().json(info))
}

/// `?revoke_tokens=true`: the secret leaked, so every token issued to the client so far goes too.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeSecretQuery {
    #[serde(default)]
    revoke_tokens: bool,
}
