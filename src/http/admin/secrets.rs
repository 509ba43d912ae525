//! `/admin/v1/secrets`: secrets across clients. The expiring listing (a partner admin: its own partner's),
//! and the operator's command that gives existing secrets without an expiry the maximum secret age.

use actix_web::{web, HttpResponse};

use super::{AdminCaller, Listing, RouteTable};
use crate::http::problem::{Problem, ProblemBody};
use crate::http::AppState;
use crate::registry::secret_expiry::{self, AppliedMaxAge, ApplyMaxAge, ExpiringFilter, ExpiringSecret};

pub fn routes(routes: &mut RouteTable) {
    routes.get("/secrets/expiring", expiring).post("/secrets/apply-max-age", apply_max_age);
}

#[utoipa::path(
    get,
    path = "/admin/v1/secrets/expiring",
    operation_id = "list_expiring_secrets",
    tag = "secrets",
    summary = "List active secrets that expire within N days, soonest first (a partner admin: its own partner's)",
    params(ExpiringFilter),
    responses((status = 200, body = Listing<ExpiringSecret>), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn expiring(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    query: web::Query<ExpiringFilter>,
) -> Result<HttpResponse, Problem> {
    let items = state.registry.run(move |tx| secret_expiry::expiring(tx, &caller, &query)).await?;
    Ok(HttpResponse::Ok().json(Listing::complete(items)))
}

#[utoipa::path(
    post,
    path = "/admin/v1/secrets/apply-max-age",
    operation_id = "apply_secret_max_age",
    tag = "secrets",
    summary = "Operator: give existing secrets without an expiry the maximum secret age (idempotent, audited)",
    description = "Each active secret without an expiry, of partners with a maximum secret age (their own, else \
                   the server's `--secret-max-age-days`), expires at its creation plus that age, but no sooner \
                   than `min_days_left` days from now. Secrets that already expire are left alone, so a second \
                   call changes nothing. Answers how many secrets changed.",
    request_body = ApplyMaxAge,
    responses((status = 200, body = AppliedMaxAge), (status = "4XX", description = "a problem: invalid input, token, permission (operator only), or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn apply_max_age(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    body: web::Json<ApplyMaxAge>,
) -> Result<HttpResponse, Problem> {
    let policy = state.client_limits.secret_policy;
    let applied = state.registry.run(move |tx| secret_expiry::apply_max_age(tx, &caller, policy, &body)).await?;
    Ok(HttpResponse::Ok().json(applied))
}
