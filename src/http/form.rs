//! Reading an OAuth endpoint's form body, strictly: the content type is `application/x-www-form-urlencoded`
//! (UTF-8, uncompressed), the size is bounded before the body is buffered, and the body is well-formed:
//! every parameter `name=value`, every `%` a valid escape, everything UTF-8 without control characters.
//! Lenient decoders turn `%zz` into itself and invalid UTF-8 into U+FFFD, so that a malformed request could
//! still name a client; here it is `invalid_request`. Unknown parameters pass (RFC 6749 section 3.2), a
//! repeated one is refused by [`FormParams::parse`].

use actix_web::http::header;
use actix_web::{web, HttpMessage, HttpRequest};

use crate::oauth::{FormParams, OAuthError};

const FORM: &str = "application/x-www-form-urlencoded";

fn invalid(message: &str) -> OAuthError {
    OAuthError::InvalidRequest(message.to_string())
}

/// The content type and coding of the body, before any of it is read.
fn check_content_type(req: &HttpRequest) -> Result<(), OAuthError> {
    let mime = match req.mime_type() {
        Ok(Some(mime)) => mime,
        Ok(None) => return Err(invalid("Content-Type must be application/x-www-form-urlencoded")),
        Err(_) => return Err(invalid("the Content-Type header is malformed")),
    };
    if mime.essence_str() != FORM {
        return Err(invalid("Content-Type must be application/x-www-form-urlencoded"));
    }
    if mime.get_param(actix_web::mime::CHARSET).is_some_and(|charset| charset != actix_web::mime::UTF_8) {
        return Err(invalid("the form body must be UTF-8 (charset=utf-8 or none)"));
    }
    let identity = match req.headers().get(header::CONTENT_ENCODING) {
        None => true,
        Some(coding) => coding.to_str().is_ok_and(|c| c.trim().eq_ignore_ascii_case("identity")),
    };
    if !identity {
        return Err(invalid("Content-Encoding is not supported; send the form uncompressed"));
    }
    Ok(())
}

/// Percent-decodes one name or value (`+` is a space), or says why it cannot be.
fn decode(part: &[u8]) -> Result<String, OAuthError> {
    let mut bytes = Vec::with_capacity(part.len());
    let mut i = 0;
    while i < part.len() {
        match part[i] {
            b'%' => {
                let hex = part.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
                let byte = hex
                    .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| invalid("the form body has a malformed percent-escape"))?;
                bytes.push(byte);
                i += 3;
            }
            b'+' => {
                bytes.push(b' ');
                i += 1;
            }
            other => {
                bytes.push(other);
                i += 1;
            }
        }
    }
    let text = String::from_utf8(bytes).map_err(|_| invalid("the form body is not UTF-8"))?;
    if text.chars().any(char::is_control) {
        return Err(invalid("form parameters must not contain control characters"));
    }
    Ok(text)
}

/// Checks the body's syntax; [`FormParams::parse`] then reads it (the checked body decodes the same way).
fn check_syntax(body: &[u8]) -> Result<(), OAuthError> {
    // Empty pieces (`a=b&&c=d`, a trailing `&`) are harmless and some clients send them.
    for pair in body.split(|b| *b == b'&').filter(|pair| !pair.is_empty()) {
        let eq = pair.iter().position(|b| *b == b'=').ok_or_else(|| invalid("every form parameter needs a '='"))?;
        let (name, value) = (&pair[..eq], &pair[eq + 1..]);
        if decode(name)?.is_empty() {
            return Err(invalid("a form parameter has no name"));
        }
        decode(value)?;
    }
    Ok(())
}

pub async fn read_form(req: &HttpRequest, payload: web::Payload, limit: usize) -> Result<FormParams, OAuthError> {
    check_content_type(req)?;
    let body = super::body::read_bounded(req, payload, limit).await.map_err(|err| match err {
        super::body::BodyError::TooLarge => OAuthError::BodyTooLarge,
        super::body::BodyError::Unreadable(message) => OAuthError::InvalidRequest(message.into()),
    })?;
    check_syntax(&body)?;
    FormParams::parse(&body)
}

#[cfg(test)]
mod tests {
    use super::check_syntax;

    #[test]
    fn well_formed_bodies_pass() {
        for body in
            ["", "grant_type=client_credentials", "a=&b=c+d%20e&", "scope=a.b&&resource=https%3A%2F%2Fx", "x=%C3%A9"]
        {
            assert!(check_syntax(body.as_bytes()).is_ok(), "{body}");
        }
    }

    #[test]
    fn malformed_bodies_fail() {
        for body in ["grant_type", "=x", "a=%zz", "a=%4", "a=%ff", "a=%0A", "a=b%00", "a=\u{7f}"] {
            assert!(check_syntax(body.as_bytes()).is_err(), "{body}");
        }
        assert!(check_syntax(&[b'a', b'=', 0xff]).is_err());
    }
}
