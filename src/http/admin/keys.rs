//! `/admin/v1/keys`: the operator manages the signing keys (the same functions as `partnergate keys`).

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::{AdminCaller, Listing};
use crate::http::problem::Problem;
use crate::http::AppState;
use crate::keys::{stored, Algorithm};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/keys", web::get().to(list))
        .route("/keys", web::post().to(generate))
        .route("/keys/prune", web::post().to(prune))
        .route("/keys/rotate", web::post().to(rotate))
        .route("/keys/{kid}/activate", web::post().to(activate))
        .route("/keys/{kid}/retire", web::post().to(retire));
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    #[serde(default)]
    alg: Option<String>,
}

/// `?force=true`: activate a key that has not been published long enough.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ForceQuery {
    #[serde(default)]
    force: bool,
}

async fn list(state: web::Data<AppState>, AdminCaller(caller): AdminCaller) -> Result<HttpResponse, Problem> {
    let keys = state
        .run(move |conn| {
            caller.require_operator("signing keys")?;
            stored::records(conn)
        })
        .await?;
    Ok(HttpResponse::Ok().json(Listing::complete(keys)))
}

async fn generate(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    body: Option<web::Json<NewKey>>,
) -> Result<HttpResponse, Problem> {
    let alg: Algorithm = match body.and_then(|b| b.into_inner().alg) {
        Some(alg) => alg.parse().map_err(Problem::bad_input)?,
        None => Algorithm::ES256,
    };
    let keys = state.keys.clone();
    let key = state.run(move |conn| stored::generate(conn, &caller, &keys.kek, alg, keys.clock.now())).await?;
    Ok(HttpResponse::Created().json(key))
}

async fn activate(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    kid: web::Path<String>,
    query: web::Query<ForceQuery>,
) -> Result<HttpResponse, Problem> {
    let keys = state.keys.clone();
    let key = state
        .run(move |conn| stored::activate(conn, &caller, &keys.policy, &kid, query.force, keys.clock.now()))
        .await?;
    Ok(HttpResponse::Ok().json(key))
}

async fn retire(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    kid: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let now = state.keys.clock.now();
    let key = state.run(move |conn| stored::retire(conn, &caller, &kid, now)).await?;
    Ok(HttpResponse::Ok().json(key))
}

async fn prune(state: web::Data<AppState>, AdminCaller(caller): AdminCaller) -> Result<HttpResponse, Problem> {
    let keys = state.keys.clone();
    let removed = state.run(move |conn| stored::prune(conn, &caller, &keys.policy, keys.clock.now())).await?;
    Ok(HttpResponse::Ok().json(json!({"removed": removed})))
}

async fn rotate(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    query: web::Query<ForceQuery>,
) -> Result<HttpResponse, Problem> {
    let keys = state.keys.clone();
    let report = state
        .run(move |conn| stored::rotate(conn, &caller, &keys.kek, &keys.policy, query.force, keys.clock.now()))
        .await?;
    Ok(HttpResponse::Ok().json(report))
}
