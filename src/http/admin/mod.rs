//! The admin API under `/admin/v1`, authenticated by bearer tokens that this server issued for the admin
//! audience. Handlers parse, call one registry function with the caller, and map the result.

mod audit;
mod catalog;
mod clients;
mod failures;
mod invitations;
mod keys;
pub mod openapi;
mod partners;
mod requests;
mod revocation;
mod routes;
mod secrets;

pub use routes::{route_table, RouteTable, BASE_PATH};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{mime, web, FromRequest, HttpMessage, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::Serialize;

use super::problem::Problem;
use super::request_id::request_meta;
use super::AppState;
use crate::oauth::verify::Rejection;
use crate::registry::{Caller, RegistryError};

/// The authenticated admin caller of a request.
pub struct AdminCaller(pub Caller);

fn bearer_token(req: &HttpRequest) -> Result<String, Problem> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| Problem::invalid_token("an admin bearer token is required"))?;
    let value = value.to_str().map_err(|_| Problem::invalid_token("malformed Authorization header"))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(token.trim().to_string())
        }
        _ => Err(Problem::invalid_token("use Authorization: Bearer <token>")),
    }
}

impl FromRequest for AdminCaller {
    type Error = Problem;
    type Future = LocalBoxFuture<'static, Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(req);
        // A console session acts when no bearer token is given (the console's people; README, "Console
        // sign-in with your identity provider").
        let session = match req.headers().contains_key(header::AUTHORIZATION) {
            true => None,
            false => crate::http::console::session::cookie_value(req),
        };
        let meta = request_meta(req);
        let req = req.clone();
        Box::pin(async move {
            let state = state.ok_or_else(Problem::internal)?;
            if let Some(cookie) = session {
                let caller = crate::http::console::session::admin_caller(&state, &req, cookie, meta).await?;
                req.extensions_mut()
                    .insert(failures::Identified { actor: caller.actor.clone(), tenancy: caller.tenancy.clone() });
                return Ok(AdminCaller(caller));
            }
            let token = token?;
            let checked =
                state.tokens.admin_caller(token, meta).await.map_err(|err| Problem::from(RegistryError::Store(err)))?;
            let caller = checked.map_err(|rejection| {
                log::info!("admin token rejected: {}", rejection.as_str());
                req.extensions_mut().insert(failures::Rejected(rejection.as_str()));
                Problem::invalid_token(refusal_message(rejection, &state.tokens.settings().admin_audience))
            })?;
            req.extensions_mut()
                .insert(failures::Identified { actor: caller.actor.clone(), tenancy: caller.tenancy.clone() });
            if caller.reports_only() && !requests::is_ingestion(&req) {
                return Err(Problem::from(RegistryError::Forbidden(
                    "a token with authz.usage.report only reports requests (POST /admin/v1/requests)".into(),
                )));
            }
            if let Some(client_id) = caller.actor.strip_prefix("client:") {
                req.extensions_mut().insert(crate::http::access_log::LoggedClient(client_id.to_string()));
            }
            Ok(AdminCaller(caller))
        })
    }
}

/// What a refused caller is told. The audience is said outright: a token for another audience is the usual
/// mistake (a client registered for the wrong admin audience), and the expected one is public in the metadata.
/// The other reasons stay in the server log and the `admin.refused` event.
fn refusal_message(rejection: Rejection, admin_audience: &str) -> String {
    match rejection {
        Rejection::WrongAudience => format!("wrong audience: expected {admin_audience}"),
        _ => "the token is invalid, expired, revoked or not for the admin API".to_string(),
    }
}

/// A list response: `{"items": [...], "next_cursor": ...}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Listing<T> {
    /// A complete list (small catalogs are returned whole).
    pub fn complete(items: Vec<T>) -> Self {
        Listing { items, next_cursor: None }
    }
}

/// The answer to a deletion.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Deleted {
    /// The id or name of what was deleted.
    pub deleted: String,
}

/// Query string flag `?cascade=true` for deletions.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CascadeQuery {
    #[serde(default)]
    pub cascade: bool,
}

/// Strict: `application/json` (UTF-8, the only charset JSON has), not `text/json` or `+json` types.
fn is_json(mime: mime::Mime) -> bool {
    mime.essence_str() == "application/json"
        && mime.get_param(mime::CHARSET).is_none_or(|charset| charset == mime::UTF_8)
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    let json_config = web::JsonConfig::default().limit(64 * 1024).content_type(is_json).error_handler(|err, _| {
        let message = match err {
            actix_web::error::JsonPayloadError::ContentType => "Content-Type must be application/json".into(),
            other => format!("invalid JSON body: {other}"),
        };
        Problem::bad_input(message).into()
    });
    let query_config =
        web::QueryConfig::default().error_handler(|err, _| Problem::bad_input(format!("invalid query: {err}")).into());
    let path_config =
        web::PathConfig::default().error_handler(|err, _| Problem::bad_input(format!("invalid path: {err}")).into());
    cfg.service(
        web::scope(BASE_PATH)
            .wrap_fn(failures::record)
            .app_data(json_config)
            .app_data(query_config)
            .app_data(path_config)
            .configure(|cfg| register(&mut RouteTable::registering(cfg))),
    );
}

/// Every admin route, in one place: the router registers them and `route_table` lists them (the OpenAPI
/// test compares that list with the document's paths).
fn register(routes: &mut RouteTable) {
    partners::routes(routes);
    invitations::routes(routes);
    catalog::routes(routes);
    clients::routes(routes);
    revocation::routes(routes);
    secrets::routes(routes);
    audit::routes(routes);
    requests::routes(routes);
    keys::routes(routes);
    openapi::routes(routes);
}
