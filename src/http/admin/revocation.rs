//! Bulk revocation: every token issued so far to a client, or to a whole partner; and the revocation stream's
//! receivers.

use actix_web::{web, HttpResponse};

use super::{AdminCaller, RouteTable};
use crate::http::problem::Problem;
use crate::http::problem::ProblemBody;
use crate::http::AppState;
use crate::registry::revocation;

pub fn routes(routes: &mut RouteTable) {
    routes
        .post("/clients/{id}/revoke-tokens", revoke_client_tokens)
        .post("/partners/{id}/revoke-tokens", revoke_partner_tokens)
        .get("/event-receivers", event_receivers);
}

/// The cut-off of a bulk revocation: tokens issued before it are refused.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct TokensRevoked {
    /// RFC 3339 UTC.
    pub tokens_revoked_before: String,
}

#[utoipa::path(
    post,
    path = "/admin/v1/clients/{id}/revoke-tokens",
    operation_id = "revoke_client_tokens",
    tag = "revocation",
    summary = "Revoke every token issued to a client so far",
    params(("id" = String, Path, description = "the client id")),
    responses((status = 200, body = TokensRevoked), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn revoke_client_tokens(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let cutoff = state.registry.run(move |tx| revocation::revoke_client_tokens(tx, &caller, &id)).await?;
    Ok(HttpResponse::Ok().json(TokensRevoked { tokens_revoked_before: crate::store::utc::format(&cutoff) }))
}

#[utoipa::path(
    post,
    path = "/admin/v1/partners/{id}/revoke-tokens",
    operation_id = "revoke_partner_tokens",
    tag = "revocation",
    summary = "Revoke every token issued to a partner's clients so far",
    params(("id" = String, Path, description = "the partner id")),
    responses((status = 200, body = TokensRevoked), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn revoke_partner_tokens(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let cutoff = state.registry.run(move |tx| revocation::revoke_partner_tokens(tx, &caller, &id)).await?;
    Ok(HttpResponse::Ok().json(TokensRevoked { tokens_revoked_before: crate::store::utc::format(&cutoff) }))
}

#[utoipa::path(
    get,
    path = "/admin/v1/event-receivers",
    operation_id = "event_receivers",
    tag = "revocation",
    summary = "The revocation stream's receivers: each one's acknowledged position and lag (operator only)",
    responses((status = 200, body = revocation::EventReceivers), (status = "4XX", description = "a problem: invalid token or permission", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn event_receivers(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
) -> Result<HttpResponse, Problem> {
    let receivers = state.registry.run(move |tx| revocation::event_receivers(tx, &caller)).await?;
    Ok(HttpResponse::Ok().json(receivers))
}
