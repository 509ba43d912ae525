//! An orders API protected by the verifier (actix-web): each partner sees only its own orders, the partner
//! coming from the verified token, never from the request.
//!
//! ```sh
//! PARTNERGATE_ISSUER=http://127.0.0.1:8080 ORDERS_API_AUDIENCE=https://api.example.com \
//!   cargo run --release -p partnergate-verifier --example orders_api
//! ```
//!
//! Environment: `PARTNERGATE_ISSUER` (the issuer's URL, for discovery), `ORDERS_API_AUDIENCE` (default
//! `{issuer}/api`), `ORDERS_API_BIND` (default `127.0.0.1:8081`), `ORDERS_API_CLIENT_ID` and
//! `ORDERS_API_CLIENT_SECRET` (this API's own client, holding `authz.usage.report`: usage reports are sent
//! only when both are set).
//!
//! Routes: `GET /orders` needs `orders.read`, `POST /orders` needs `orders.write`, `GET /whoami` any valid
//! token; other paths `404`. Routes without a rule are refused (deny by default).
//!
//! `tests/resource_server.rs` at the repository root builds this same app (it includes this file).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use actix_web::{web, App, HttpResponse, HttpServer};
use partnergate_verifier::actix::RequireToken;
use partnergate_verifier::{
    Authorizer, FollowerTask, Principal, ReporterConfig, ReporterTask, RevocationConfig, RevocationFollower,
    RoutePolicy, StalePolicy, StartupPolicy, UsageReporter, Verifier, VerifierConfig,
};
use serde::Deserialize;
use serde_json::json;

/// The example's settings, from the environment.
pub struct Settings {
    pub issuer: String,
    pub audience: String,
    pub bind: String,
    /// This API's own client credentials, for usage reports.
    pub reporting: Option<(String, String)>,
}

impl Settings {
    pub fn from_env() -> Result<Self, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let issuer = var("PARTNERGATE_ISSUER").ok_or("PARTNERGATE_ISSUER is required (the issuer's URL)")?;
        let issuer = issuer.trim_end_matches('/').to_string();
        Ok(Settings {
            audience: var("ORDERS_API_AUDIENCE").unwrap_or_else(|| format!("{issuer}/api")),
            bind: var("ORDERS_API_BIND").unwrap_or_else(|| "127.0.0.1:8081".into()),
            reporting: var("ORDERS_API_CLIENT_ID").zip(var("ORDERS_API_CLIENT_SECRET")),
            issuer,
        })
    }
}

/// Which scopes each route needs.
pub fn policy() -> RoutePolicy {
    RoutePolicy::new()
        .route("GET", "/orders", ["orders.read"])
        .route("POST", "/orders", ["orders.write"])
        .route("GET", "/whoami", Vec::<String>::new())
        .deny_by_default(true)
}

/// The verifier and policy, plus the reporter when credentials are set (call within the runtime).
pub fn authorizer(settings: &Settings, config: VerifierConfig) -> (Authorizer, Option<ReporterTask>) {
    let verifier = Verifier::new(config);
    let authorizer = Authorizer::new(verifier.clone(), policy()).with_realm("orders");
    match &settings.reporting {
        Some((id, secret)) => {
            let (reporter, task) = UsageReporter::start(verifier.discovery(), ReporterConfig::new(id, secret));
            (authorizer.with_reporter(reporter), Some(task))
        }
        None => (authorizer, None),
    }
}

/// How to follow the revocation stream, from the environment (`None`: not at all); needs the API's own
/// client credentials.
pub fn revocation_from_env(settings: &Settings) -> Result<Option<RevocationConfig>, String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let Some((id, secret)) = &settings.reporting else { return Ok(None) };
    match var("ORDERS_API_REVOCATION").as_deref() {
        None | Some("follow") => {}
        Some("off") => return Ok(None),
        Some(other) => return Err(format!("ORDERS_API_REVOCATION: `follow` or `off`, not `{other}`")),
    }
    let mut config = RevocationConfig::new(id, secret);
    config.state_file = var("ORDERS_API_REVOCATION_STATE").map(Into::into);
    match var("ORDERS_API_REVOCATION_STARTUP").as_deref() {
        None | Some("catch-up") => {}
        Some("serve") => config.startup = StartupPolicy::ServeAtOnce,
        Some(other) => return Err(format!("ORDERS_API_REVOCATION_STARTUP: `catch-up` or `serve`, not `{other}`")),
    }
    match var("ORDERS_API_REVOCATION_WHEN_STALE").as_deref() {
        None | Some("serve") => {}
        Some("refuse") => config.when_stale = StalePolicy::Refuse,
        Some(other) => return Err(format!("ORDERS_API_REVOCATION_WHEN_STALE: `serve` or `refuse`, not `{other}`")),
    }
    Ok(Some(config))
}

/// `authorizer` following the revocation stream with `config` (call within the runtime).
pub fn with_revocation(authorizer: Authorizer, config: RevocationConfig) -> (Authorizer, FollowerTask) {
    let (follower, task) = RevocationFollower::start(authorizer.verifier(), config);
    (authorizer.with_revocation(follower), task)
}

#[derive(Default)]
pub struct Orders {
    by_partner: Mutex<HashMap<String, Vec<serde_json::Value>>>,
}

#[derive(Deserialize)]
struct NewOrder {
    item: String,
    quantity: u32,
}

async fn list_orders(principal: Principal, orders: web::Data<Orders>) -> HttpResponse {
    let by_partner = orders.by_partner.lock().unwrap();
    let mine = by_partner.get(&principal.partner_id).cloned().unwrap_or_default();
    HttpResponse::Ok().json(json!({ "partner_id": principal.partner_id, "orders": mine }))
}

async fn create_order(principal: Principal, orders: web::Data<Orders>, order: web::Json<NewOrder>) -> HttpResponse {
    let mut by_partner = orders.by_partner.lock().unwrap();
    let mine = by_partner.entry(principal.partner_id.clone()).or_default();
    let created = json!({
        "id": mine.len() + 1, "item": order.item, "quantity": order.quantity, "created_by": principal.client_id,
    });
    mine.push(created.clone());
    HttpResponse::Created().json(created)
}

async fn whoami(principal: Principal) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "partner_id": principal.partner_id, "client_id": principal.client_id, "scopes": principal.scopes,
    }))
}

/// Binds the API and returns its address and the server to await (or stop).
pub fn serve(
    authorizer: Authorizer,
    bind: &str,
    workers: usize,
) -> std::io::Result<(SocketAddr, actix_web::dev::Server)> {
    let orders = web::Data::new(Orders::default());
    let server = HttpServer::new(move || {
        App::new()
            .wrap(RequireToken::new(authorizer.clone()))
            .app_data(orders.clone())
            .route("/orders", web::get().to(list_orders))
            .route("/orders", web::post().to(create_order))
            .route("/whoami", web::get().to(whoami))
    })
    .workers(workers)
    .bind(bind)?;
    let addr = server.addrs()[0];
    Ok((addr, server.run()))
}

#[allow(dead_code)]
#[actix_web::main]
async fn main() -> std::io::Result<()> {
    env_logger::init();
    let settings = Settings::from_env().map_err(std::io::Error::other)?;
    let config = VerifierConfig::new(&settings.issuer, &settings.audience);
    let (authorizer, reporter) = authorizer(&settings, config);
    let revocation = revocation_from_env(&settings).map_err(std::io::Error::other)?;
    let (authorizer, follower) = match revocation {
        Some(revocation) => {
            let bound = match revocation.startup {
                StartupPolicy::CatchUp { bound } => bound,
                StartupPolicy::ServeAtOnce => std::time::Duration::ZERO,
            };
            let (authorizer, task) = with_revocation(authorizer, revocation);
            // Caught up before listening, so that the first requests see every event missed while down.
            let follower = authorizer.revocation().expect("just set").clone();
            if !bound.is_zero() && !follower.wait_ready(bound).await {
                eprintln!("orders_api: the revocation stream did not answer within {bound:?}; serving anyway");
            }
            (authorizer, Some(task))
        }
        None => (authorizer, None),
    };
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (addr, server) = serve(authorizer, &settings.bind, workers)?;
    let reporting = if reporter.is_some() { "on" } else { "off (ORDERS_API_CLIENT_ID/SECRET unset)" };
    let following = if follower.is_some() { "followed" } else { "not followed" };
    println!(
        "orders_api on http://{addr} for audience {}; usage reports {reporting}; revocation stream {following}",
        settings.audience
    );
    server.await?;
    if let Some(reporter) = reporter {
        reporter.shutdown().await;
    }
    if let Some(follower) = follower {
        follower.stop().await;
    }
    Ok(())
}
