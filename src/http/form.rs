//! Reading an OAuth endpoint's form body: content type checked, size bounded before it is buffered.

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;

use crate::oauth::{FormParams, OAuthError};

pub async fn read_form(req: &HttpRequest, mut payload: web::Payload, limit: usize) -> Result<FormParams, OAuthError> {
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(OAuthError::InvalidRequest("Content-Type must be application/x-www-form-urlencoded".into()));
    }
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(OAuthError::BodyTooLarge);
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|err| {
            let message = if super::body_timeout::is_timeout(&err) {
                super::body_timeout::TIMED_OUT
            } else {
                "the request body could not be read"
            };
            OAuthError::InvalidRequest(message.into())
        })?;
        if body.len() + chunk.len() > limit {
            return Err(OAuthError::BodyTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    FormParams::parse(&body)
}
