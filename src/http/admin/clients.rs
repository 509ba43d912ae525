//! `/admin/v1/clients` and their secrets. A partner admin sees and changes only its own partner's clients;
//! another partner's client answers 404, exactly like one that does not exist.

use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};

use super::{AdminCaller, Deleted, Listing, RouteTable};
use crate::http::problem::Problem;
use crate::http::problem::ProblemBody;
use crate::http::AppState;
use crate::registry::clients::{self, Client, ClientFilter, ClientUpdate, NewClient, RegisteredClient};
use crate::registry::revocation;
use crate::registry::secrets::{self, IssuedSecret, NewSecret, SecretInfo};

pub fn routes(routes: &mut RouteTable) {
    routes
        .post("/clients", create)
        .get("/clients", list)
        .get("/clients/{id}", get)
        .patch("/clients/{id}", update)
        .delete("/clients/{id}", delete)
        .post("/clients/{id}/enable", enable)
        .post("/clients/{id}/disable", disable)
        .post("/clients/{id}/secrets", create_secret)
        .get("/clients/{id}/secrets", list_secrets)
        .delete("/clients/{id}/secrets/{secret_id}", revoke_secret);
}

#[utoipa::path(
    post,
    path = "/admin/v1/clients",
    operation_id = "create_client",
    tag = "clients",
    summary = "Create a client and, if it may use a secret method, its first secret (shown once)",
    request_body = NewClient,
    responses((status = 201, body = RegisteredClient), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn create(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    body: web::Json<NewClient>,
) -> Result<HttpResponse, Problem> {
    let limits = state.client_limits;
    let created = state.registry.run(move |tx| clients::register(tx, &caller, &body, limits)).await?;
    Ok(HttpResponse::Created().insert_header(("cache-control", "no-store")).json(created))
}

#[utoipa::path(
    get,
    path = "/admin/v1/clients",
    operation_id = "list_clients",
    tag = "clients",
    summary = "List clients (a partner admin: its own partner's)",
    params(ClientFilter),
    responses((status = 200, body = Listing<Client>), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn list(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    query: web::Query<ClientFilter>,
) -> Result<HttpResponse, Problem> {
    let page = state.registry.run(move |tx| clients::list(tx, &caller, &query)).await?;
    Ok(HttpResponse::Ok().json(Listing { items: page.items, next_cursor: page.next_cursor }))
}

#[utoipa::path(
    get,
    path = "/admin/v1/clients/{id}",
    operation_id = "get_client",
    tag = "clients",
    summary = "Get a client",
    params(("id" = String, Path, description = "the client id")),
    responses((status = 200, body = Client), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn get(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let client = state.registry.run(move |tx| clients::get(tx, &caller, &id)).await?;
    Ok(HttpResponse::Ok().json(client))
}

#[utoipa::path(
    patch,
    path = "/admin/v1/clients/{id}",
    operation_id = "update_client",
    tag = "clients",
    summary = "Update a client",
    params(("id" = String, Path, description = "the client id")),
    request_body = ClientUpdate,
    responses((status = 200, body = Client), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn update(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<String>,
    body: web::Json<ClientUpdate>,
) -> Result<HttpResponse, Problem> {
    let limits = state.client_limits;
    let client = state.registry.run(move |tx| clients::update(tx, &caller, &id, &body, limits)).await?;
    Ok(HttpResponse::Ok().json(client))
}

#[utoipa::path(
    delete,
    path = "/admin/v1/clients/{id}",
    operation_id = "delete_client",
    tag = "clients",
    summary = "Delete a client",
    params(("id" = String, Path, description = "the client id")),
    responses((status = 200, body = Deleted), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn delete(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let deleted = id.clone();
    state.registry.run(move |tx| clients::delete(tx, &caller, &id)).await?;
    Ok(HttpResponse::Ok().json(Deleted { deleted }))
}

#[utoipa::path(
    post,
    path = "/admin/v1/clients/{id}/enable",
    operation_id = "enable_client",
    tag = "clients",
    summary = "Enable a client",
    params(("id" = String, Path, description = "the client id")),
    responses((status = 200, body = Client), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn enable(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let client = state.registry.run(move |tx| clients::set_enabled(tx, &caller, &id, true)).await?;
    Ok(HttpResponse::Ok().json(client))
}

#[utoipa::path(
    post,
    path = "/admin/v1/clients/{id}/disable",
    operation_id = "disable_client",
    tag = "clients",
    summary = "Disable a client",
    params(("id" = String, Path, description = "the client id")),
    responses((status = 200, body = Client), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn disable(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let client = state.registry.run(move |tx| clients::set_enabled(tx, &caller, &id, false)).await?;
    Ok(HttpResponse::Ok().json(client))
}

/// Whether the request carries a body at all (a chunked one counts, even if it turns out empty).
fn has_body(req: &HttpRequest) -> bool {
    req.headers().contains_key(header::TRANSFER_ENCODING)
        || req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim() != "0")
}

/// The body is optional: none at all means the defaults. A body that is there must be a valid `NewSecret`;
/// a mistyped or unknown field must not silently rotate without the grace period the caller asked for.
#[utoipa::path(
    post,
    path = "/admin/v1/clients/{id}/secrets",
    operation_id = "create_secret",
    tag = "secrets",
    summary = "Create a secret (rotate), optionally expiring the others after a grace period",
    description = "The new secret expires at `expires_in_secs`, or earlier by the maximum secret age (the \
                   partner's `secret_max_age_days`, else the server's `--secret-max-age-days`).",
    params(("id" = String, Path, description = "the client id")),
    request_body = Option<NewSecret>,
    responses((status = 201, body = IssuedSecret), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
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
    let policy = state.client_limits.secret_policy;
    let issued =
        state.registry.run(move |tx| secrets::create(tx, &caller, &id, &input, policy)).await.map_err(Problem::from)?;
    Ok(HttpResponse::Created().insert_header(("cache-control", "no-store")).json(issued))
}

#[utoipa::path(
    get,
    path = "/admin/v1/clients/{id}/secrets",
    operation_id = "list_secrets",
    tag = "secrets",
    summary = "List a client's secrets with their expiry and age (never the secrets themselves)",
    params(("id" = String, Path, description = "the client id")),
    responses((status = 200, body = Listing<SecretInfo>), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn list_secrets(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let items = state.registry.run(move |tx| secrets::list(tx, &caller, &id)).await?;
    Ok(HttpResponse::Ok().json(Listing::complete(items)))
}

#[utoipa::path(
    delete,
    path = "/admin/v1/clients/{id}/secrets/{secret_id}",
    operation_id = "revoke_secret",
    tag = "secrets",
    summary = "Revoke one secret now",
    params(("id" = String, Path, description = "the client id"), ("secret_id" = String, Path, description = "the secret id"), RevokeSecretQuery),
    responses((status = 200, body = SecretInfo), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn revoke_secret(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    path: web::Path<(String, String)>,
    query: web::Query<RevokeSecretQuery>,
) -> Result<HttpResponse, Problem> {
    let (id, secret_id) = path.into_inner();
    let revoke_tokens = query.revoke_tokens;
    let info =
        state.registry.run(move |tx| revocation::revoke_secret(tx, &caller, &id, &secret_id, revoke_tokens)).await?;
    Ok(HttpResponse::Ok().json(info))
}

/// `?revoke_tokens=true`: the secret leaked, so every token issued to the client so far goes too.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct RevokeSecretQuery {
    #[serde(default)]
    revoke_tokens: bool,
}
