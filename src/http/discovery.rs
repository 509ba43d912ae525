//! Discovery: the JWKS (RFC 7517) and the authorization server metadata (RFC 8414).

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde_json::json;

use super::problem::Problem;
use super::AppState;
use crate::auth_methods::{AuthMethod, ASSERTION_ALGORITHMS};
use crate::registry;

pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, state.jwks_cache_control.clone()))
        .content_type(actix_web::mime::APPLICATION_JSON)
        .body(state.tokens.keys().jwks_json())
}

pub async fn metadata(state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let scopes = state.registry.run(|tx| registry::scopes::all(tx)).await?;
    let settings = state.tokens.settings();
    let issuer = &settings.issuer;
    let algorithms: Vec<&str> = state.tokens.keys().algorithms().iter().map(|a| a.as_str()).collect();
    let auth_methods: Vec<&str> = AuthMethod::ALL.iter().map(|m| m.as_str()).collect();
    let assertion_algorithms: Vec<String> = ASSERTION_ALGORITHMS.iter().map(|alg| format!("{alg:?}")).collect();
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "public, max-age=300")).json(json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}/oauth2/token"),
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "introspection_endpoint": format!("{issuer}/oauth2/introspect"),
        "revocation_endpoint": format!("{issuer}/oauth2/revoke"),
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": assertion_algorithms,
        "introspection_endpoint_auth_signing_alg_values_supported": assertion_algorithms,
        "revocation_endpoint_auth_signing_alg_values_supported": assertion_algorithms,
        // The reserved authz.* scopes are the operator's business, not a partner's.
        "scopes_supported": scopes
            .iter()
            .map(|s| s.name.as_str())
            .filter(|name| !name.starts_with(registry::scopes::RESERVED_PREFIX))
            .collect::<Vec<_>>(),
        "access_token_signing_alg_values_supported": algorithms,
        "partnergate_default_audience": settings.default_audience,
        "partnergate_admin_audience": settings.admin_audience,
    })))
}
