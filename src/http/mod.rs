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
use crate::registry::{RegistryError, RegistryResult};
use crate::store::changes::{self, ChangeSink};
use crate::store::{DbConnection, DbPool};
pub use health::Readiness;
use problem::Problem;

/// Shared by every worker.
#[derive(Clone)]
pub struct AppState {
    pub pool: DbPool,
    pub tokens: TokenService,
    pub audit: crate::audit::AuditWriter,
    /// Everything on this instance that hears of committed changes (the registry cache, the key ring).
    pub changes: std::sync::Arc<dyn ChangeSink>,
    /// What changing the signing keys needs.
    pub keys: crate::keys::KeyManager,
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
}

impl AppState {
    /// Runs a registry function on the blocking pool with a pooled connection. The registry changes it
    /// committed are applied to this instance's read model before the caller hears of them, so that the next
    /// request here already sees them (other instances hear through the change feed).
    pub async fn run<T, F>(&self, work: F) -> Result<T, Problem>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> RegistryResult<T> + Send + 'static,
    {
        let (pool, sinks) = (self.pool.clone(), self.changes.clone());
        let result = web::block(move || {
            // Notes a panicked or interrupted run may have left on this pooled thread are stale.
            changes::take_published();
            let result = pool.get().map_err(RegistryError::from).and_then(|mut conn| work(&mut conn));
            // Applied here, off the async workers: a key change reloads the key ring from the database. A
            // failed change rolled back; applying its notes anyway costs only a reload.
            sinks.apply(&changes::take_published());
            result
        })
        .await
        .map_err(|_| Problem::internal())?;
        result.map_err(Problem::from)
    }
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
