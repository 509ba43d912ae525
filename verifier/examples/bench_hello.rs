//! bench/run's resource server (bench/scenarios/verifier.sh): `GET /hello` answers `hello`, guarded one of five
//! ways so that the verifier's cost is measured against the same endpoint without it. Not an example to copy:
//! `orders_api` is.
//!
//! Environment: `BENCH_HELLO_MODE`, one of
//! - `bare`: no check at all;
//! - `verifier`: the [`RequireToken`] middleware, `GET /hello` needing `bench.read` (a token seen before is
//!   answered from the verified-token cache);
//! - `verifier-cold`: the same with the verified-token cache off, so that every request costs what a token
//!   seen for the first time costs (one signature verification);
//! - `verifier-reporter`: `verifier` plus usage reports to the issuer's request log
//!   (`BENCH_HELLO_CLIENT_ID`, `BENCH_HELLO_CLIENT_SECRET`);
//! - `jsonwebtoken`: what a resource server without this crate writes: a plain `jsonwebtoken::decode` of every
//!   request against the issuer's keys (fetched once at start), `iss`, `aud`, `exp` and the scope checked.
//!
//! `PARTNERGATE_ISSUER`, `BENCH_HELLO_AUDIENCE`, `BENCH_HELLO_BIND` (default `127.0.0.1:0`; the bound address is
//! printed), `BENCH_HELLO_WORKERS` (default: the number of cores). `GET /probe` is `/hello` under another route
//! pattern, for timing how soon one request reaches the request log.

use std::collections::HashMap;

use actix_web::http::header;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use partnergate_verifier::actix::RequireToken;
use partnergate_verifier::{Authorizer, ReporterConfig, RoutePolicy, UsageReporter, Verifier, VerifierConfig};
use serde::Deserialize;

const SCOPE: &str = "bench.read";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Bare,
    Verifier,
    VerifierCold,
    VerifierReporter,
    Jsonwebtoken,
}

impl Mode {
    fn parse(text: &str) -> Result<Self, String> {
        Ok(match text {
            "bare" => Mode::Bare,
            "verifier" => Mode::Verifier,
            "verifier-cold" => Mode::VerifierCold,
            "verifier-reporter" => Mode::VerifierReporter,
            "jsonwebtoken" => Mode::Jsonwebtoken,
            other => return Err(format!("BENCH_HELLO_MODE: unknown mode {other:?}")),
        })
    }
}

/// The plain-decode baseline: the issuer's keys by `kid`, and one `Validation` per algorithm.
struct PlainDecoder {
    keys: HashMap<String, (DecodingKey, Validation)>,
}

#[derive(Deserialize)]
struct PlainClaims {
    scope: String,
}

impl PlainDecoder {
    async fn fetch(issuer: &str, audience: &str) -> Result<Self, String> {
        let http = reqwest::Client::new();
        let metadata: serde_json::Value = http
            .get(format!("{issuer}/.well-known/oauth-authorization-server"))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|err| format!("metadata: {err}"))?
            .json()
            .await
            .map_err(|err| format!("metadata: {err}"))?;
        let jwks_uri = metadata["jwks_uri"].as_str().ok_or("metadata without jwks_uri")?;
        let set: jsonwebtoken::jwk::JwkSet = http
            .get(jwks_uri)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|err| format!("JWKS: {err}"))?
            .json()
            .await
            .map_err(|err| format!("JWKS: {err}"))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let (Some(kid), Some(alg)) = (&jwk.common.key_id, jwk.common.key_algorithm) else { continue };
            let Ok(algorithm) = alg.to_string().parse::<Algorithm>() else { continue };
            let Ok(key) = DecodingKey::from_jwk(jwk) else { continue };
            let mut validation = Validation::new(algorithm);
            validation.set_issuer(&[issuer]);
            validation.set_audience(&[audience]);
            keys.insert(kid.clone(), (key, validation));
        }
        if keys.is_empty() {
            return Err("the JWKS has no usable key".into());
        }
        Ok(PlainDecoder { keys })
    }

    fn admits(&self, request: &HttpRequest) -> bool {
        let Some(token) = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
        else {
            return false;
        };
        let Some((key, validation)) =
            jsonwebtoken::decode_header(token).ok().and_then(|h| h.kid).and_then(|kid| self.keys.get(&kid))
        else {
            return false;
        };
        jsonwebtoken::decode::<PlainClaims>(token, key, validation)
            .is_ok_and(|data| data.claims.scope.split(' ').any(|scope| scope == SCOPE))
    }
}

async fn hello() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("hello")
}

async fn hello_plain(request: HttpRequest, decoder: web::Data<PlainDecoder>) -> HttpResponse {
    if decoder.admits(&request) {
        hello().await
    } else {
        HttpResponse::Unauthorized().insert_header((header::WWW_AUTHENTICATE, "Bearer")).finish()
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    env_logger::init();
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let fail = |message: String| std::io::Error::other(message);
    let mode = Mode::parse(&var("BENCH_HELLO_MODE").unwrap_or_default()).map_err(fail)?;
    let bind = var("BENCH_HELLO_BIND").unwrap_or_else(|| "127.0.0.1:0".into());
    let workers = match var("BENCH_HELLO_WORKERS") {
        Some(n) => n.parse().map_err(|_| fail(format!("BENCH_HELLO_WORKERS: {n:?} is not a number")))?,
        None => std::thread::available_parallelism().map_or(2, |n| n.get()),
    };
    let issuer = || var("PARTNERGATE_ISSUER").ok_or_else(|| fail("PARTNERGATE_ISSUER is required".into()));
    let audience = || var("BENCH_HELLO_AUDIENCE").ok_or_else(|| fail("BENCH_HELLO_AUDIENCE is required".into()));

    let mut authorizer = None;
    let mut plain = None;
    let mut reporter_task = None;
    match mode {
        Mode::Bare => {}
        Mode::Jsonwebtoken => {
            plain = Some(web::Data::new(PlainDecoder::fetch(&issuer()?, &audience()?).await.map_err(fail)?));
        }
        Mode::Verifier | Mode::VerifierCold | Mode::VerifierReporter => {
            let mut config = VerifierConfig::new(issuer()?, audience()?);
            if mode == Mode::VerifierCold {
                config.token_cache_capacity = 0;
            }
            let verifier = Verifier::new(config);
            let policy = RoutePolicy::new().route("GET", "/hello", [SCOPE]).route("GET", "/probe", [SCOPE]);
            let mut guard = Authorizer::new(verifier.clone(), policy);
            if mode == Mode::VerifierReporter {
                let id =
                    var("BENCH_HELLO_CLIENT_ID").ok_or_else(|| fail("BENCH_HELLO_CLIENT_ID is required".into()))?;
                let secret = var("BENCH_HELLO_CLIENT_SECRET")
                    .ok_or_else(|| fail("BENCH_HELLO_CLIENT_SECRET is required".into()))?;
                let (reporter, task) = UsageReporter::start(verifier.discovery(), ReporterConfig::new(id, secret));
                guard = guard.with_reporter(reporter);
                reporter_task = Some(task);
            }
            authorizer = Some(guard);
        }
    }

    // One `App` per guard: the bare mode has no middleware at all, not a disabled one.
    macro_rules! bind {
        ($app:expr) => {{
            let server = HttpServer::new($app).workers(workers).bind(&bind)?;
            println!("bench_hello listening on http://{}", server.addrs()[0]);
            server.run()
        }};
    }
    let server = match (authorizer, plain) {
        (Some(authorizer), _) => bind!(move || {
            App::new()
                .wrap(RequireToken::new(authorizer.clone()))
                .route("/hello", web::get().to(hello))
                .route("/probe", web::get().to(hello))
        }),
        (None, Some(decoder)) => bind!(move || {
            App::new()
                .app_data(decoder.clone())
                .route("/hello", web::get().to(hello_plain))
                .route("/probe", web::get().to(hello_plain))
        }),
        (None, None) => {
            bind!(|| App::new().route("/hello", web::get().to(hello)).route("/probe", web::get().to(hello)))
        }
    };
    server.await?;
    if let Some(task) = reporter_task {
        task.shutdown().await;
    }
    Ok(())
}
