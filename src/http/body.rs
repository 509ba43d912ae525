//! Reading a request body whole, bounded: refused by its declared length before any of it is read, and cut
//! off as soon as what arrived passes the limit.

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    TooLarge,
    /// Why the body could not be read (too slow, a broken connection), for the caller.
    Unreadable(&'static str),
}

pub async fn read_bounded(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::BytesMut, BodyError> {
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(BodyError::TooLarge);
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|err| {
            BodyError::Unreadable(if super::body_timeout::is_timeout(&err) {
                super::body_timeout::TIMED_OUT
            } else {
                "the request body could not be read"
            })
        })?;
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
