//! The orders API of `orders_api.rs` on axum, with the verifier's tower layer. Same environment:
//!
//! ```sh
//! PARTNERGATE_ISSUER=http://127.0.0.1:8080 ORDERS_API_AUDIENCE=https://api.example.com \
//!   cargo run --release -p partnergate-verifier --example orders_axum
//! ```
//!
//! `tests/resource_server.rs` at the repository root builds this same app (it includes this file).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::MatchedPath;
use axum::routing::get;
use axum::{Extension, Json, Router};
use partnergate_verifier::tower::AuthorizeLayer;
use partnergate_verifier::{Authorizer, Principal, RoutePolicy, Verifier, VerifierConfig};
use serde_json::{json, Value};

/// The same rules as the actix example.
pub fn policy() -> RoutePolicy {
    RoutePolicy::new()
        .route("GET", "/orders", ["orders.read"])
        .route("GET", "/whoami", Vec::<String>::new())
        .deny_by_default(true)
}

/// The layer reads the route pattern that axum matched (present because the layer is added with
/// `Router::layer`, which runs it after routing).
fn matched_path(extensions: &axum::http::Extensions) -> Option<&str> {
    extensions.get::<MatchedPath>().map(MatchedPath::as_str)
}

async fn list_orders(Extension(principal): Extension<Arc<Principal>>) -> Json<Value> {
    Json(json!({ "partner_id": principal.partner_id, "orders": [] }))
}

async fn whoami(Extension(principal): Extension<Arc<Principal>>) -> Json<Value> {
    Json(json!({
        "partner_id": principal.partner_id, "client_id": principal.client_id, "scopes": principal.scopes,
    }))
}

pub fn app(authorizer: Authorizer) -> Router {
    Router::new()
        .route("/orders", get(list_orders))
        .route("/whoami", get(whoami))
        .layer(AuthorizeLayer::new(authorizer, matched_path))
}

/// Binds the API and serves it on the current runtime; returns its address.
pub async fn serve(authorizer: Authorizer, bind: &str) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app(authorizer)).await });
    Ok(addr)
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> std::io::Result<()> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let issuer = var("PARTNERGATE_ISSUER").ok_or_else(|| std::io::Error::other("PARTNERGATE_ISSUER is required"))?;
    let issuer = issuer.trim_end_matches('/');
    let audience = var("ORDERS_API_AUDIENCE").unwrap_or_else(|| format!("{issuer}/api"));
    let bind = var("ORDERS_API_BIND").unwrap_or_else(|| "127.0.0.1:8081".into());
    let verifier = Verifier::new(VerifierConfig::new(issuer, &audience));
    let addr = serve(Authorizer::new(verifier, policy()).with_realm("orders"), &bind).await?;
    println!("orders_axum on http://{addr} for audience {audience}");
    std::future::pending::<()>().await;
    Ok(())
}
