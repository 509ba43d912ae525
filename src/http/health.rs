//! Liveness and readiness.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Ready when the database answers and a signing key is loaded (the key ring cannot exist without one).
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let database = state.run(|conn| crate::store::ping(conn).map_err(crate::registry::RegistryError::from)).await;
    let kid = state.tokens.keys().active().kid().to_string();
    match database {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ready", "database": "ok", "active_kid": kid})),
        Err(_) => HttpResponse::ServiceUnavailable()
            .json(json!({"status": "unavailable", "database": "unreachable", "active_kid": kid})),
    }
}
