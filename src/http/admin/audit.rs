//! `/admin/v1/audit`: the audit trail, newest first, with filters and a cursor.

use actix_web::{web, HttpResponse};

use super::{AdminCaller, RouteTable};
use crate::http::problem::Problem;
use crate::http::problem::ProblemBody;
use crate::http::AppState;
use crate::registry::audit_trail::{self as query, AuditFilter, AuditPage};

pub fn routes(routes: &mut RouteTable) {
    routes.get("/audit", list);
}

#[utoipa::path(
    get,
    path = "/admin/v1/audit",
    operation_id = "list_audit_events",
    tag = "audit",
    summary = "The audit trail, newest first (a partner admin: its own partner's events)",
    params(AuditFilter),
    responses((status = 200, body = AuditPage), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn list(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    filter: web::Query<AuditFilter>,
) -> Result<HttpResponse, Problem> {
    let page = state.registry.run(move |tx| query::list(tx, &caller, &filter)).await?;
    Ok(HttpResponse::Ok().json(page))
}
