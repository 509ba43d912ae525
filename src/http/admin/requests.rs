//! `/admin/v1/requests`: resource servers report the requests they served; operators and partner admins read
//! them back, and the per-minute aggregates for charts.

use actix_web::http::StatusCode;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::{AdminCaller, RouteTable};
use crate::http::body::{read_bounded, BodyError};
use crate::http::problem::{Problem, ProblemBody};
use crate::http::AppState;
use crate::request_log::query::{self, RequestFilter, RequestPage, Summary, SummaryFilter};
use crate::request_log::{self, MAX_BATCH_BYTES};

const REQUESTS: &str = "/requests";

pub fn routes(routes: &mut RouteTable) {
    routes.post(REQUESTS, report).get(REQUESTS, list).get("/requests/summary", summary);
}

/// Whether `req` is the ingestion route, the one route a reporting token may call.
pub(super) fn is_ingestion(req: &HttpRequest) -> bool {
    req.method() == actix_web::http::Method::POST && req.path().strip_prefix(super::BASE_PATH) == Some(REQUESTS)
}

/// A batch of reported requests. Records are read as JSON values and checked one by one by the request log,
/// so that an error names the record's index and field.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportBatch {
    /// At most 1000.
    #[schema(value_type = Vec<ReportedRequest>)]
    records: Vec<serde_json::Value>,
}

/// One request as a resource server reports it (the rules: README, "Request log"); for the document only.
#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
pub struct ReportedRequest {
    /// RFC 3339, when the request was received; at most 5 minutes ahead of the server's clock.
    time: String,
    /// 1 to 16 ASCII letters.
    method: String,
    /// The route pattern (`/orders/{id}`): starts with `/`, no query, at most 256 bytes.
    route: String,
    /// 100 to 599.
    status: i32,
    /// 0 to 86400000.
    latency_ms: i64,
    client_id: String,
    partner_id: String,
    jti: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Accepted {
    /// How many records were stored: all of the batch.
    accepted: usize,
}

#[utoipa::path(
    post,
    path = "/admin/v1/requests",
    operation_id = "report_requests",
    tag = "requests",
    summary = "Report served requests to the request log (a token with authz.usage.report); all or nothing",
    request_body = ReportBatch,
    responses(
        (status = 202, body = Accepted),
        (status = 413, description = "more than 1000 records, or a body over 1 MiB", body = ProblemBody),
        (status = "4XX", description = "a problem: an invalid record (its index and field named), token or permission", body = ProblemBody),
        (status = 503, description = "the database is unavailable", body = ProblemBody)
    )
)]
async fn report(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    if !req.mime_type().ok().flatten().is_some_and(super::is_json) {
        return Err(Problem::bad_input("Content-Type must be application/json"));
    }
    let body = read_bounded(&req, payload, MAX_BATCH_BYTES).await.map_err(|err| match err {
        BodyError::TooLarge => Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body is larger than {MAX_BATCH_BYTES} bytes: send smaller batches"),
        ),
        BodyError::Unreadable(message) => Problem::bad_input(message),
    })?;
    let batch: ReportBatch =
        serde_json::from_slice(&body).map_err(|err| Problem::bad_input(format!("invalid JSON body: {err}")))?;
    let accepted = state.registry.run(move |tx| request_log::ingest(tx, &caller, &batch.records)).await?;
    Ok(HttpResponse::Accepted().json(Accepted { accepted }))
}

#[utoipa::path(
    get,
    path = "/admin/v1/requests",
    operation_id = "list_requests",
    tag = "requests",
    summary = "The request log, newest first (a partner admin: its own partner's records)",
    params(RequestFilter),
    responses((status = 200, body = RequestPage), (status = "4XX", description = "a problem: invalid input, token or permission", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn list(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    filter: web::Query<RequestFilter>,
) -> Result<HttpResponse, Problem> {
    let page = state.registry.run(move |tx| query::list(tx, &caller, &filter)).await?;
    Ok(HttpResponse::Ok().json(page))
}

#[utoipa::path(
    get,
    path = "/admin/v1/requests/summary",
    operation_id = "summarize_requests",
    tag = "requests",
    summary = "Requests per bucket, method, route and status class, from the per-minute aggregates (kept longer than the records)",
    params(SummaryFilter),
    responses((status = 200, body = Summary), (status = "4XX", description = "a problem: invalid input, token or permission", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn summary(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    filter: web::Query<SummaryFilter>,
) -> Result<HttpResponse, Problem> {
    let summary = state.registry.run(move |tx| query::summary(tx, &caller, &filter)).await?;
    Ok(HttpResponse::Ok().json(summary))
}
