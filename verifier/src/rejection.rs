//! Refusals as RFC 6750 section 3 puts them, and the `Authorization` header's parsing.

/// Why a request is refused. What a client sees says no more than RFC 6750 asks: never which check failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// No bearer token (no `Authorization` header, or another scheme): `401` with a bare challenge.
    Missing,
    /// A token that is malformed, badly signed, expired, for someone else...: `401 invalid_token`.
    InvalidToken,
    /// A valid token without the route's scopes (`scope`: what the route needs, empty when it is refused to
    /// everyone): `403 insufficient_scope`.
    InsufficientScope { scope: String },
    /// No key is known yet and the issuer cannot be reached: `503`, the token may well be good.
    Unavailable,
}

impl Rejection {
    pub fn status(&self) -> u16 {
        match self {
            Rejection::Missing | Rejection::InvalidToken => 401,
            Rejection::InsufficientScope { .. } => 403,
            Rejection::Unavailable => 503,
        }
    }

    /// The `WWW-Authenticate` value (`None` for `503`).
    pub fn challenge(&self, realm: &str) -> Option<String> {
        let realm = quoted(realm);
        match self {
            Rejection::Missing => Some(format!("Bearer realm={realm}")),
            Rejection::InvalidToken => Some(format!("Bearer realm={realm}, error=\"invalid_token\"")),
            Rejection::InsufficientScope { scope } if scope.is_empty() => {
                Some(format!("Bearer realm={realm}, error=\"insufficient_scope\""))
            }
            Rejection::InsufficientScope { scope } => {
                Some(format!("Bearer realm={realm}, error=\"insufficient_scope\", scope={}", quoted(scope)))
            }
            Rejection::Unavailable => None,
        }
    }
}

/// A quoted-string with only characters that need no escaping (RFC 6750's attributes exclude `"` and `\`).
fn quoted(value: &str) -> String {
    let clean: String = value.chars().filter(|c| *c != '"' && *c != '\\' && !c.is_control()).collect();
    format!("\"{clean}\"")
}

/// Longer than any token partnergate issues by far; a bound on what is hashed and parsed.
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The bearer token of a request, from all of its `Authorization` header values.
pub fn bearer_token<'a>(mut values: impl Iterator<Item = &'a [u8]>) -> Result<&'a str, Rejection> {
    let Some(value) = values.next() else { return Err(Rejection::Missing) };
    if values.next().is_some() {
        return Err(Rejection::InvalidToken);
    }
    let value = std::str::from_utf8(value).map_err(|_| Rejection::InvalidToken)?;
    let value = value.trim_matches(|c| c == ' ' || c == '\t');
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Rejection::Missing);
    }
    let token = rest.trim_start_matches(' ');
    if !is_token68(token) || token.len() > MAX_TOKEN_LEN {
        return Err(Rejection::InvalidToken);
    }
    Ok(token)
}

/// RFC 6750 section 2.1's `b64token`. Every request's token goes through it: the bytes are checked without an
/// early exit and with comparisons only, which the compiler turns into SIMD over many bytes at a time (a table
/// lookup per byte, and before it a `contains` per byte, were each the verifier's costliest check; measured in
/// bench/NOTES.md).
fn is_token68(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty() && body.bytes().fold(true, |ok, b| ok & is_token68_byte(b))
}

/// A byte of a `b64token` but its trailing `=`: a letter, a digit or one of `-._~+/`.
#[inline]
fn is_token68_byte(b: u8) -> bool {
    // Setting bit 5 folds upper case onto lower case and moves no other byte into `a..=z`.
    let folded = b | 0x20;
    folded.is_ascii_lowercase()
        | b.is_ascii_digit()
        | (b == b'-')
        | (b == b'.')
        | (b == b'_')
        | (b == b'~')
        | (b == b'+')
        | (b == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(values: &[&[u8]]) -> Result<&'static str, Rejection> {
        let owned: Vec<&'static [u8]> = values.iter().map(|v| &*Box::leak(v.to_vec().into_boxed_slice())).collect();
        bearer_token(owned.into_iter())
    }

    #[test]
    fn the_b64token_bytes_are_letters_digits_and_six_marks() {
        for b in 0..=255u8 {
            let expected = b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
            assert_eq!(is_token68_byte(b), expected, "byte {b:#04x}");
        }
    }

    #[test]
    fn parses_bearer_tokens_and_refuses_the_rest() {
        assert_eq!(parse(&[b"Bearer abc.def-_~+/="]), Ok("abc.def-_~+/="));
        assert_eq!(parse(&[b"bearer   abc"]), Ok("abc"));
        assert_eq!(parse(&[]), Err(Rejection::Missing));
        assert_eq!(parse(&[b"Basic dXNlcjpwdw=="]), Err(Rejection::Missing));
        assert_eq!(parse(&[b"Bearer"]), Err(Rejection::InvalidToken));
        assert_eq!(parse(&[b"Bearer a b"]), Err(Rejection::InvalidToken));
        assert_eq!(parse(&[b"Bearer =abc"]), Err(Rejection::InvalidToken));
        assert_eq!(parse(&[b"Bearer \xff\xfe"]), Err(Rejection::InvalidToken));
        assert_eq!(parse(&[b"Bearer a", b"Bearer b"]), Err(Rejection::InvalidToken));
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN + 1));
        assert_eq!(parse(&[long.as_bytes()]), Err(Rejection::InvalidToken));
    }

    #[test]
    fn challenges_follow_rfc_6750() {
        assert_eq!(Rejection::Missing.challenge("api").unwrap(), r#"Bearer realm="api""#);
        assert_eq!(Rejection::InvalidToken.challenge("api").unwrap(), r#"Bearer realm="api", error="invalid_token""#);
        let scope = Rejection::InsufficientScope { scope: "orders.write orders.read".into() };
        assert_eq!(scope.status(), 403);
        assert_eq!(
            scope.challenge("a\"pi").unwrap(),
            r#"Bearer realm="api", error="insufficient_scope", scope="orders.write orders.read""#
        );
        assert_eq!(Rejection::Unavailable.status(), 503);
    }
}
