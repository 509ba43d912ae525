//! The revocation stream's endpoints (OpenID Shared Signals 1.0 in its poll form): `POST /ssf/poll` (RFC 8936
//! poll delivery, authenticated by a bearer token carrying `authz.events.read`) and the transmitter metadata
//! at `GET /.well-known/ssf-configuration`. Token errors follow RFC 6750 section 3 (`WWW-Authenticate`);
//! error bodies follow RFC 8935 section 2.3 (`{"err", "description"}`), the shape SET receivers expect.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use serde_json::json;

use super::access_log::LoggedClient;
use super::AppState;
use crate::oauth::ReceiverRefusal;
use crate::registry::scopes;
use crate::secevents::set;
use crate::stream::{PollRequest, StreamError};

pub const POLL_PATH: &str = "/ssf/poll";
/// RFC 8936's delivery method URN.
const POLL_DELIVERY: &str = "urn:ietf:rfc:8936";

fn error(status: StatusCode, err: &str, description: &str) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.insert_header((header::RETRY_AFTER, "5"));
    }
    response.json(json!({"err": err, "description": crate::redact::credentials(description)}))
}

/// An RFC 6750 refusal: `401` with the `invalid_token` challenge (or none when no token was sent), `403` with
/// `insufficient_scope` and the scope needed.
fn refusal(status: StatusCode, challenge: String, description: &str) -> HttpResponse {
    let mut response = error(
        status,
        if status == StatusCode::FORBIDDEN { "access_denied" } else { "authentication_failed" },
        description,
    );
    let value = HeaderValue::from_str(&challenge).expect("the challenges are ASCII");
    response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    response
}

/// The bearer token of the request; `None` when it has none, `Some(Err)` when the header is not a bearer one.
fn bearer(req: &HttpRequest) -> Option<Result<String, ()>> {
    let value = req.headers().get(header::AUTHORIZATION)?;
    Some(match value.to_str().ok().and_then(|value| value.split_once(' ')) {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(token.trim().to_string())
        }
        _ => Err(()),
    })
}

fn invalid_token(description: &str) -> HttpResponse {
    let challenge =
        format!("Bearer realm=\"partnergate\", error=\"invalid_token\", error_description=\"{description}\"");
    refusal(StatusCode::UNAUTHORIZED, challenge, description)
}

/// `POST /ssf/poll`.
pub async fn poll(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    let token = match bearer(&req) {
        Some(Ok(token)) => token,
        Some(Err(())) => return invalid_token("use Authorization: Bearer <token>"),
        None => {
            let description = "a bearer token with scope authz.events.read is required";
            return refusal(StatusCode::UNAUTHORIZED, "Bearer realm=\"partnergate\"".into(), description);
        }
    };
    let receiver = match state.tokens.event_receiver(&token).await {
        Ok(Ok(receiver)) => receiver,
        Ok(Err(ReceiverRefusal::Invalid(rejection))) => {
            log::info!("revocation stream: token refused: {}", rejection.as_str());
            return invalid_token("the token is invalid, expired or revoked, or not for this issuer as audience");
        }
        Ok(Err(ReceiverRefusal::InsufficientScope)) => {
            let challenge = format!(
                "Bearer realm=\"partnergate\", error=\"insufficient_scope\", scope=\"{}\"",
                scopes::EVENTS_READ
            );
            return refusal(StatusCode::FORBIDDEN, challenge, "the token lacks scope authz.events.read");
        }
        Err(err) => return store_error(&err),
    };
    req.extensions_mut().insert(LoggedClient(receiver.clone()));
    let request = match parse(&req, &body) {
        Ok(request) => request,
        Err(message) => return error(StatusCode::BAD_REQUEST, "invalid_request", &message),
    };
    match state.stream.poll(&receiver, request).await {
        Ok(answer) => HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(answer),
        Err(StreamError::Invalid(message)) => error(StatusCode::BAD_REQUEST, "invalid_request", &message),
        Err(StreamError::Store(err)) => store_error(&err),
        Err(StreamError::Interrupted(cause)) => {
            log::error!("revocation stream: {cause}");
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
        }
    }
}

/// The body: a JSON object (`application/json`); an empty body is a poll with every default.
fn parse(req: &HttpRequest, body: &[u8]) -> Result<PollRequest, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(PollRequest::default());
    }
    let json = req.mime_type().ok().flatten().is_some_and(|mime| mime.essence_str() == "application/json");
    if !json {
        return Err("Content-Type must be application/json".into());
    }
    // Through a `Value`: serde would read a struct from an array too.
    match serde_json::from_slice(body) {
        Ok(value @ serde_json::Value::Object(_)) => {
            serde_json::from_value(value).map_err(|err| format!("invalid poll request: {err}"))
        }
        Ok(_) => Err("the poll request must be a JSON object".into()),
        Err(err) => Err(format!("invalid poll request: {err}")),
    }
}

fn store_error(err: &crate::store::StoreError) -> HttpResponse {
    if err.is_unavailable() {
        log::warn!("revocation stream: database unavailable: {err}");
        error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", "the database is unavailable; retry later")
    } else {
        log::error!("revocation stream: storage error: {err}");
        error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
    }
}

/// `GET /.well-known/ssf-configuration`: the transmitter metadata (OpenID Shared Signals 1.0 section 7.1).
/// Streams are not managed through an API here (no `configuration_endpoint`): every client holding
/// `authz.events.read` has one stream of every event, polled at `partnergate_poll_endpoint`.
pub async fn configuration(state: web::Data<AppState>) -> HttpResponse {
    let issuer = &state.tokens.settings().issuer;
    HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "public, max-age=300")).json(json!({
        "spec_version": "1_0",
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "delivery_methods_supported": [POLL_DELIVERY],
        "authorization_schemes": [{"spec_urn": "urn:ietf:rfc:6749"}],
        "default_subjects": "ALL",
        "partnergate_poll_endpoint": format!("{issuer}{POLL_PATH}"),
        "partnergate_events_supported": set::EVENT_TYPES,
        "partnergate_token_scope": scopes::EVENTS_READ,
        "partnergate_token_audience": issuer,
    }))
}
