//! `/admin/v1/audit`: the audit trail, newest first, with filters and a cursor.

use actix_web::{web, HttpResponse};

use super::AdminCaller;
use crate::audit::query::{self, AuditFilter};
use crate::http::problem::Problem;
use crate::http::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/audit", web::get().to(list));
}

async fn list(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    filter: web::Query<AuditFilter>,
) -> Result<HttpResponse, Problem> {
    let page = state.run(move |conn| query::list(conn, &caller, &filter)).await?;
    Ok(HttpResponse::Ok().json(page))
}
