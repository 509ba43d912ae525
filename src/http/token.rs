//! The OAuth endpoints: `POST /oauth2/token`, `/oauth2/introspect` and `/oauth2/revoke`. Each reads the
//! form body and the `Authorization` header, calls the token service, and maps the result.

use actix_web::http::header;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};

use super::access_log::LoggedClient;
use super::form::read_form;
use super::oauth_response::{error_response, json_no_store};
use super::request_id::request_meta;
use super::AppState;
use crate::oauth::OAuthRequest;

/// A header that is not valid text is passed on as garbage, so that it fails as malformed credentials.
fn authorization(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().map(str::to_string).unwrap_or_else(|_| "invalid".to_string()))
}

async fn oauth_request(req: &HttpRequest, payload: web::Payload, state: &AppState) -> OAuthRequest {
    OAuthRequest {
        params: read_form(req, payload, state.max_body_bytes).await,
        authorization: authorization(req),
        meta: request_meta(req),
        named_client: Default::default(),
    }
}

/// Runs one OAuth endpoint and attributes the request to the client it named, for the access log.
async fn answer<T, F>(req: &HttpRequest, request: OAuthRequest, endpoint: impl FnOnce(OAuthRequest) -> F) -> F::Output
where
    F: std::future::Future<Output = T>,
{
    let named = request.named_client.clone();
    let answer = endpoint(request).await;
    if let Some(id) = named.get() {
        req.extensions_mut().insert(LoggedClient(id.to_string()));
    }
    answer
}

pub async fn token(req: HttpRequest, payload: web::Payload, state: web::Data<AppState>) -> HttpResponse {
    match answer(&req, oauth_request(&req, payload, &state).await, |r| state.tokens.issue(r)).await {
        Ok(token) => json_no_store(&token),
        Err(err) => error_response(&err),
    }
}

pub async fn introspect(req: HttpRequest, payload: web::Payload, state: web::Data<AppState>) -> HttpResponse {
    match answer(&req, oauth_request(&req, payload, &state).await, |r| state.tokens.introspect(r)).await {
        Ok(answer) => json_no_store(&answer),
        Err(err) => error_response(&err),
    }
}

pub async fn revoke(req: HttpRequest, payload: web::Payload, state: web::Data<AppState>) -> HttpResponse {
    match answer(&req, oauth_request(&req, payload, &state).await, |r| state.tokens.revoke(r)).await {
        Ok(()) => HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).finish(),
        Err(err) => error_response(&err),
    }
}
