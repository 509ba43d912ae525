//! `/admin/v1/keys`: the operator manages the signing keys (the same functions as `partnergate keys`).

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::{AdminCaller, Listing, RouteTable};
use crate::http::problem::Problem;
use crate::http::problem::ProblemBody;
use crate::http::AppState;
use crate::keys::policy::KeyRecord;
use crate::keys::Algorithm;
use crate::registry::signing_keys::{self as stored, RotationReport};

pub fn routes(routes: &mut RouteTable) {
    routes
        .get("/keys", list)
        .post("/keys", generate)
        .post("/keys/prune", prune)
        .post("/keys/rotate", rotate)
        .post("/keys/{kid}/activate", activate)
        .post("/keys/{kid}/retire", retire);
}

/// The kids a prune removed.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Pruned {
    pub removed: Vec<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    #[serde(default)]
    alg: Option<String>,
}

/// `?force=true`: activate a key that has not been published long enough.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ForceQuery {
    #[serde(default)]
    force: bool,
}

#[utoipa::path(
    get,
    path = "/admin/v1/keys",
    operation_id = "list_keys",
    tag = "keys",
    summary = "The signing keys with their states and dates (operator)",
    responses((status = 200, body = Listing<KeyRecord>), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn list(state: web::Data<AppState>, AdminCaller(caller): AdminCaller) -> Result<HttpResponse, Problem> {
    let keys = state
        .registry
        .run(move |tx| {
            caller.require_operator("signing keys")?;
            stored::records(tx)
        })
        .await?;
    Ok(HttpResponse::Ok().json(Listing::complete(keys)))
}

#[utoipa::path(
    post,
    path = "/admin/v1/keys",
    operation_id = "generate_key",
    tag = "keys",
    summary = "Generate a key; it is published, not yet signing (operator)",
    request_body = Option<NewKey>,
    responses((status = 201, body = KeyRecord), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn generate(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    body: Option<web::Json<NewKey>>,
) -> Result<HttpResponse, Problem> {
    let alg: Algorithm = match body.and_then(|b| b.into_inner().alg) {
        Some(alg) => alg.parse().map_err(Problem::bad_input)?,
        None => Algorithm::ES256,
    };
    let key = state.registry.generate_key(caller, alg).await?;
    Ok(HttpResponse::Created().json(key))
}

#[utoipa::path(
    post,
    path = "/admin/v1/keys/{kid}/activate",
    operation_id = "activate_key",
    tag = "keys",
    summary = "Make a published key the signing key (operator)",
    params(("kid" = String, Path, description = "the key id (RFC 7638 thumbprint)"), ForceQuery),
    responses((status = 200, body = KeyRecord), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn activate(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    kid: web::Path<String>,
    query: web::Query<ForceQuery>,
) -> Result<HttpResponse, Problem> {
    let key = state.registry.activate_key(caller, kid.into_inner(), query.force).await?;
    Ok(HttpResponse::Ok().json(key))
}

#[utoipa::path(
    post,
    path = "/admin/v1/keys/{kid}/retire",
    operation_id = "retire_key",
    tag = "keys",
    summary = "Retire a key: it stays in the JWKS until its tokens expire (operator)",
    params(("kid" = String, Path, description = "the key id (RFC 7638 thumbprint)")),
    responses((status = 200, body = KeyRecord), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn retire(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    kid: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let key = state.registry.retire_key(caller, kid.into_inner()).await?;
    Ok(HttpResponse::Ok().json(key))
}

#[utoipa::path(
    post,
    path = "/admin/v1/keys/prune",
    operation_id = "prune_keys",
    tag = "keys",
    summary = "Remove retired keys whose tokens have expired (operator)",
    responses((status = 200, body = Pruned), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn prune(state: web::Data<AppState>, AdminCaller(caller): AdminCaller) -> Result<HttpResponse, Problem> {
    let removed = state.registry.prune_keys(caller).await?;
    Ok(HttpResponse::Ok().json(Pruned { removed }))
}

#[utoipa::path(
    post,
    path = "/admin/v1/keys/rotate",
    operation_id = "rotate_keys",
    tag = "keys",
    summary = "One step of the safe rotation sequence (operator)",
    params(ForceQuery),
    responses((status = 200, body = RotationReport), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn rotate(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    query: web::Query<ForceQuery>,
) -> Result<HttpResponse, Problem> {
    let report = state.registry.rotate_keys(caller, query.force).await?;
    Ok(HttpResponse::Ok().json(report))
}
