//! Liveness and readiness.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// How long readiness waits for the database: a load balancer's probe must get an answer, not a timeout.
const DATABASE_WAIT: std::time::Duration = std::time::Duration::from_millis(1500);

/// Ready when the database answers within [`DATABASE_WAIT`] and the stored signing keys open (the key ring
/// cannot exist without an active key; one that does not open leaves the instance signing with an older one).
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let ping = state.run(|conn| crate::store::ping(conn).map_err(crate::registry::RegistryError::from));
    let database = tokio::time::timeout(DATABASE_WAIT, ping).await.unwrap_or(Err(super::problem::Problem::internal()));
    let kid = state.tokens.keys().active().kid().to_string();
    match (database, state.tokens.live_keys().unusable()) {
        (Ok(()), None) => HttpResponse::Ok().json(json!({"status": "ready", "database": "ok", "active_kid": kid})),
        (Ok(()), Some(keys)) => HttpResponse::ServiceUnavailable()
            .json(json!({"status": "unavailable", "database": "ok", "keys": keys, "active_kid": kid})),
        (Err(_), _) => HttpResponse::ServiceUnavailable()
            .json(json!({"status": "unavailable", "database": "unreachable", "active_kid": kid})),
    }
}
