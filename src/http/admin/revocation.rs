//! Bulk revocation: every token issued so far to a client, or to a whole partner.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::AdminCaller;
use crate::http::problem::Problem;
use crate::http::AppState;
use crate::registry::revocation;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/clients/{id}/revoke-tokens", web::post().to(revoke_client_tokens))
        .route("/partners/{id}/revoke-tokens", web::post().to(revoke_partner_tokens));
}

async fn revoke_client_tokens(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let cutoff = state.run(move |conn| revocation::revoke_client_tokens(conn, &caller, &id)).await?;
    Ok(HttpResponse::Ok().json(json!({"tokens_revoked_before": crate::store::utc::format(&cutoff)})))
}

async fn revoke_partner_tokens(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let cutoff = state.run(move |conn| revocation::revoke_partner_tokens(conn, &caller, &id)).await?;
    Ok(HttpResponse::Ok().json(json!({"tokens_revoked_before": crate::store::utc::format(&cutoff)})))
}
