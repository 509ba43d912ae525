//! `POST /oauth2/token`: the client-credentials grant.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::form::read_form;
use super::oauth_response::{error_response, json_no_store};
use super::request_id::request_meta;
use super::AppState;

pub async fn token(req: HttpRequest, payload: web::Payload, state: web::Data<AppState>) -> HttpResponse {
    let params = read_form(&req, payload, state.max_body_bytes).await;
    // A header that is not valid text is passed on as garbage, so that it fails as malformed credentials.
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().map(str::to_string).unwrap_or_else(|_| "invalid".to_string()));
    match state.tokens.issue(params, authorization, request_meta(&req)).await {
        Ok(token) => json_no_store(&token),
        Err(err) => error_response(&err),
    }
}
