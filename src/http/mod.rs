//! The HTTP surface (actix-web): routes, extractors, one file per endpoint group, and the mapping from
//! domain errors to RFC 6749 bodies and admin problems. Handlers parse, call one domain function, map.

pub mod access_log;
pub mod admin;
mod body;
pub mod body_timeout;
pub mod client_address;
mod console;
mod discovery;
pub mod errors;
mod form;
pub mod guard;
pub mod headers;
mod health;
mod home;
pub mod metrics;
mod oauth_response;
pub mod problem;
pub mod request_id;
mod ssf;
mod token;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};

use crate::oauth::TokenService;
use crate::registry::clients::ClientLimits;
use crate::registry::Registry;
pub use health::Readiness;

/// Shared by every worker.
#[derive(Clone)]
pub struct AppState {
    /// The registry service: every admin read and change goes through it.
    pub registry: Registry,
    pub tokens: TokenService,
    pub audit: crate::audit::AuditWriter,
    /// `public, max-age=<JWKS max-age>`, built once: the JWKS is the busiest response.
    pub jwks_cache_control: actix_web::http::header::HeaderValue,
    pub max_body_bytes: usize,
    pub client_limits: ClientLimits,
    /// What `/readyz` answers.
    pub readiness: std::sync::Arc<Readiness>,
    /// The revocation stream's poll delivery.
    pub stream: crate::stream::StreamService,
    /// The console's sign-in for people and their sessions.
    pub console: crate::console_auth::ConsoleAuth,
    /// The server's clock (`ServerConfig::clock`): what the admin API stamps and decides at.
    pub clock: crate::clock::SharedClock,
}

/// Every route of the server.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(post_only("/oauth2/token").route(web::post().to(token::token)))
        .service(post_only("/oauth2/introspect").route(web::post().to(token::introspect)))
        .service(post_only("/oauth2/revoke").route(web::post().to(token::revoke)))
        .service(post_only(ssf::POLL_PATH).route(web::post().to(ssf::poll)))
        .route("/.well-known/ssf-configuration", web::get().to(ssf::configuration))
        .route("/.well-known/jwks.json", web::get().to(discovery::jwks))
        .route("/.well-known/oauth-authorization-server", web::get().to(discovery::metadata))
        .route("/.well-known/openid-configuration", web::get().to(discovery::metadata))
        .route("/", web::get().to(home::home))
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .configure(admin::routes)
        .configure(console::routes)
        .default_service(web::to(not_found));
}

/// An OAuth endpoint answers other methods with 405 and `Allow: POST`.
fn post_only(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(|req: HttpRequest| async move {
        let mut response = errors::error_for(req.path(), StatusCode::METHOD_NOT_ALLOWED, "use POST");
        response.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static("POST"));
        response
    }))
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    errors::error_for(req.path(), StatusCode::NOT_FOUND, "no such endpoint")
}
