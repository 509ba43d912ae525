//! The admin API's OpenAPI 3.1 document at `/admin/v1/openapi.json`, derived by `utoipa` from the handlers'
//! `#[utoipa::path]` annotations and the request and response types. tests/openapi.rs checks that it lists
//! exactly the routes of the route table and that it validates against the OpenAPI 3.1 schema.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{audit, catalog, clients, invitations, keys, partners, requests, revocation, secrets, RouteTable};
use crate::http::problem::ProblemBody;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "partnergate admin API",
        description = "Partners, clients and their secrets, the scope and role catalogs, the audit trail and the \
                       request log. \
                       Callers present a bearer token issued by this server for the admin audience (see \
                       `partnergate_admin_audience` in the metadata document), or the console's session: the \
                       `partnergate_session` cookie of a person signed in through the operator's identity provider, \
                       with its CSRF token (from `GET /console/session`) in `X-CSRF-Token` on every change.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    paths(
        partners::create, partners::list, partners::get, partners::update, partners::delete, partners::suspend, partners::resume,
        partners::usage,
        invitations::create, invitations::list, invitations::delete,
        catalog::create_scope, catalog::list_scopes, catalog::get_scope, catalog::update_scope, catalog::delete_scope,
        catalog::create_role, catalog::list_roles, catalog::get_role, catalog::update_role, catalog::delete_role,
        clients::create, clients::list, clients::get, clients::update, clients::delete, clients::enable,
        clients::disable, clients::create_secret, clients::list_secrets, clients::revoke_secret,
        secrets::expiring, secrets::apply_max_age,
        revocation::revoke_client_tokens, revocation::revoke_partner_tokens, revocation::event_receivers,
        audit::list,
        requests::report, requests::list, requests::summary,
        keys::list, keys::generate, keys::activate, keys::retire, keys::prune, keys::rotate,
        document,
    ),
    components(schemas(ProblemBody)),
    modifiers(&BearerAuth),
    security(("bearer" = []), ("console_session" = [])),
)]
struct AdminApi;

/// Admin tokens are bearer JWTs from this server's token endpoint.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".to_string());
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
        let cookie = ApiKey::Cookie(ApiKeyValue::with_description(
            crate::http::console::session::COOKIE,
            "a console session (README, \"Console sign-in with your identity provider\"); changes also need X-CSRF-Token",
        ));
        components.add_security_scheme("console_session", SecurityScheme::ApiKey(cookie));
    }
}

pub fn routes(routes: &mut RouteTable) {
    routes.get("/openapi.json", document);
}

/// The document, rendered once.
pub fn json() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| AdminApi::openapi().to_pretty_json().expect("the OpenAPI document serializes"))
}

#[utoipa::path(
    get,
    path = "/admin/v1/openapi.json",
    operation_id = "openapi_document",
    tag = "meta",
    summary = "This document",
    security(()),
    responses((status = 200, description = "the OpenAPI 3.1 document of the admin API", content_type = "application/json"))
)]
async fn document() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(json())
}
