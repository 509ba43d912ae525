//! Parsing of token requests (RFC 6749 sections 2.3.1, 3.2 and 4.4.2) into domain values.
//! Works on already-decoded form parameters and the raw `Authorization` header value.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::error::{AuthFailure, OAuthError};

pub use crate::auth_methods::AuthMethod;

/// What the client presented. `credential` (the secret, or for `private_key_jwt` the signed client assertion)
/// is never printed by `Debug`.
#[derive(Clone)]
pub struct PresentedCredentials {
    /// For `private_key_jwt`, the client the assertion claims to be, until the assertion is verified.
    pub client_id: String,
    pub credential: String,
    pub method: AuthMethod,
}

impl std::fmt::Debug for PresentedCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresentedCredentials")
            .field("client_id", &self.client_id)
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

/// One request to an OAuth endpoint, as the HTTP layer hands it over. What later checks need (a rate-limit key,
/// a DPoP proof, a client assertion) is one more field here.
#[derive(Clone)]
pub struct OAuthRequest {
    /// The form body, or why it could not be read.
    pub params: Result<FormParams, OAuthError>,
    /// The raw `Authorization` header.
    pub authorization: Option<String>,
    pub meta: crate::audit::RequestMeta,
    /// Filled with the client id the request's audit event names, for the HTTP layer's access log.
    pub named_client: NamedClient,
}

/// The client id a request named (presented, not necessarily authenticated), readable after the answer.
#[derive(Debug, Clone, Default)]
pub struct NamedClient(std::sync::Arc<std::sync::OnceLock<String>>);

impl NamedClient {
    pub fn get(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }

    pub(crate) fn note(&self, client_id: Option<&str>) {
        if let Some(id) = client_id {
            let _ = self.0.set(id.to_string());
        }
    }
}

/// Never prints the `Authorization` header: it carries the client secret.
impl std::fmt::Debug for OAuthRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthRequest")
            .field("params", &self.params)
            .field("authorization", &self.authorization.as_ref().map(|_| "<redacted>"))
            .field("meta", &self.meta)
            .finish()
    }
}

impl OAuthRequest {
    pub fn params(&self) -> Result<&FormParams, OAuthError> {
        self.params.as_ref().map_err(Clone::clone)
    }

    /// The client credentials presented, from the header or the body.
    pub fn credentials(&self) -> Result<PresentedCredentials, OAuthError> {
        credentials(self.params()?, self.authorization.as_deref())
    }
}

/// The parameters of a request to an OAuth endpoint, each at most once (RFC 6749 section 3.2).
#[derive(Clone, Default)]
pub struct FormParams(Vec<(String, String)>);

/// Names only: values include client secrets and tokens.
impl std::fmt::Debug for FormParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(|(name, _)| name)).finish()
    }
}

/// Parameters that may legitimately repeat (RFC 8707 `resource`).
const REPEATABLE: &[&str] = &["resource"];

impl FormParams {
    pub fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|_| OAuthError::InvalidRequest("body is not application/x-www-form-urlencoded".into()))?;
        for (i, (name, _)) in pairs.iter().enumerate() {
            if !REPEATABLE.contains(&name.as_str()) && pairs[..i].iter().any(|(earlier, _)| earlier == name) {
                // Echo the name only when it is plain text; the caller chose it.
                let plain = name.len() <= 40 && name.bytes().all(|b| b.is_ascii_graphic());
                let name = if plain { name.as_str() } else { "(a parameter)" };
                return Err(OAuthError::InvalidRequest(format!("parameter {name} is repeated")));
            }
        }
        Ok(FormParams(pairs))
    }

    /// A parameter's value; an empty value counts as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, v)| n == name && !v.is_empty()).map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(n, v)| n == name && !v.is_empty()).map(|(_, v)| v.as_str()).collect()
    }
}

fn malformed() -> OAuthError {
    OAuthError::InvalidClient { reason: AuthFailure::MalformedCredentials, basic_challenge: true }
}

/// Decodes `Authorization: Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 section 2.3.1).
pub fn parse_basic(header: &str) -> Result<(String, String), OAuthError> {
    let (scheme, encoded) = header.trim().split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(malformed());
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let id = form_decode(id).ok_or_else(malformed)?;
    let secret = form_decode(secret).ok_or_else(malformed)?;
    if id.is_empty() {
        return Err(malformed());
    }
    Ok((id, secret))
}

/// `application/x-www-form-urlencoded` decoding of one value (`+` is a space, `%XX` a byte).
fn form_decode(value: &str) -> Option<String> {
    // An encoded value has no raw `&`; parsed as a form it would end there and the rest would be dropped,
    // so that `id&junk` authenticated as `id`.
    if value.contains('&') {
        return None;
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&format!("v={value}")).ok()?;
    Some(pairs.into_iter().next().map(|(_, v)| v).unwrap_or_default())
}

/// Client credentials from the `Authorization` header or the body; using two methods at once is refused.
pub fn credentials(params: &FormParams, authorization: Option<&str>) -> Result<PresentedCredentials, OAuthError> {
    let body_id = params.get("client_id");
    let body_secret = params.get("client_secret");
    if params.get("client_assertion").is_some() || params.get("client_assertion_type").is_some() {
        if authorization.is_some() || body_secret.is_some() {
            return Err(OAuthError::InvalidRequest(
                "use one client authentication method: a client assertion, HTTP Basic or client_secret".into(),
            ));
        }
        return assertion_credentials(params, body_id);
    }
    match authorization {
        Some(header) => {
            if body_secret.is_some() {
                return Err(OAuthError::InvalidRequest(
                    "use one client authentication method: HTTP Basic or client_secret in the body, not both".into(),
                ));
            }
            let (client_id, secret) = parse_basic(header)?;
            if body_id.is_some_and(|id| id != client_id) {
                return Err(OAuthError::InvalidRequest(
                    "client_id in the body differs from the Basic credentials".into(),
                ));
            }
            Ok(PresentedCredentials { client_id, credential: secret, method: AuthMethod::ClientSecretBasic })
        }
        None => match (body_id, body_secret) {
            (Some(id), Some(secret)) => Ok(PresentedCredentials {
                client_id: id.to_string(),
                credential: secret.to_string(),
                method: AuthMethod::ClientSecretPost,
            }),
            (Some(id), None) => Ok(PresentedCredentials {
                client_id: id.to_string(),
                credential: String::new(),
                method: AuthMethod::ClientSecretPost,
            }),
            _ => Err(OAuthError::InvalidClient { reason: AuthFailure::NoCredentials, basic_challenge: true }),
        },
    }
}

/// `client_assertion_type` and `client_assertion` (RFC 7523 section 2.2). The client is the `client_id` sent
/// along, else the one the assertion names (`sub`); a token of another identity provider (workload identity
/// federation) names an external subject, so it comes with `client_id`, as with Entra.
fn assertion_credentials(params: &FormParams, body_id: Option<&str>) -> Result<PresentedCredentials, OAuthError> {
    let refused = |reason| OAuthError::InvalidClient { reason, basic_challenge: false };
    if params.get("client_assertion_type") != Some(super::assertion::JWT_BEARER) {
        return Err(refused(AuthFailure::MalformedCredentials));
    }
    let assertion = params.get("client_assertion").ok_or_else(|| refused(AuthFailure::MalformedCredentials))?;
    let client_id = match body_id {
        Some(id) => id.to_string(),
        None => {
            super::assertion::claimed_client_id(assertion).ok_or_else(|| refused(AuthFailure::MalformedAssertion))?
        }
    };
    Ok(PresentedCredentials { client_id, credential: assertion.to_string(), method: AuthMethod::PrivateKeyJwt })
}

/// `scope` as a sorted, deduplicated list; `None` when absent or empty. Characters are checked against
/// RFC 6749 section 3.3 (`%x21 / %x23-5B / %x5D-7E`).
pub fn requested_scopes(params: &FormParams) -> Result<Option<Vec<String>>, OAuthError> {
    let Some(raw) = params.get("scope") else {
        return Ok(None);
    };
    let mut scopes = Vec::new();
    for token in raw.split(' ').filter(|t| !t.is_empty()) {
        if token.len() > 128
            || !token.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
        {
            return Err(OAuthError::InvalidScope("scope is malformed".into()));
        }
        scopes.push(token.to_string());
    }
    scopes.sort();
    scopes.dedup();
    Ok(if scopes.is_empty() { None } else { Some(scopes) })
}

/// Requested audiences from `resource` (RFC 8707: absolute URIs without fragment, repeatable) and `audience`.
pub fn requested_audiences(params: &FormParams) -> Result<Vec<String>, OAuthError> {
    let mut audiences = Vec::new();
    for resource in params.all("resource") {
        let absolute = resource.split_once("://").is_some_and(|(scheme, rest)| {
            !scheme.is_empty()
                && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
                && !rest.is_empty()
        });
        if !absolute || resource.contains('#') {
            return Err(OAuthError::InvalidTarget("resource must be an absolute URI without a fragment".into()));
        }
        audiences.push(resource.to_string());
    }
    audiences.extend(params.get("audience").map(str::to_string));
    if audiences.iter().any(|a| a.len() > 512 || !a.bytes().all(|b| b.is_ascii_graphic())) {
        return Err(OAuthError::InvalidTarget("audience is malformed".into()));
    }
    audiences.sort();
    audiences.dedup();
    Ok(audiences)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(body: &str) -> FormParams {
        FormParams::parse(body.as_bytes()).unwrap()
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        // id "a b:c", secret "x%y+" form-encoded, then base64.
        let header = format!("Basic {}", STANDARD.encode("a+b%3Ac:x%25y%2B"));
        assert_eq!(parse_basic(&header).unwrap(), ("a b:c".to_string(), "x%y+".to_string()));
        assert!(parse_basic("Bearer abc").is_err());
        assert!(parse_basic("Basic !!!").is_err());
        assert!(parse_basic(&format!("Basic {}", STANDARD.encode("no-colon"))).is_err());
        assert!(parse_basic(&format!("Basic {}", STANDARD.encode("id&x=y:secret"))).is_err());
        assert!(parse_basic(&format!("Basic {}", STANDARD.encode("id:secret&x=y"))).is_err());
    }

    #[test]
    fn both_methods_at_once_is_invalid_request() {
        let header = format!("Basic {}", STANDARD.encode("id:secret"));
        let err = credentials(&params("client_id=id&client_secret=s"), Some(&header)).unwrap_err();
        assert_eq!(err.code(), "invalid_request");
        assert_eq!(credentials(&params("client_id=id"), Some(&header)).unwrap().method, AuthMethod::ClientSecretBasic);
    }

    #[test]
    fn repeated_parameters_are_refused_except_resource() {
        assert!(FormParams::parse(b"scope=a.b&scope=c.d").is_err());
        assert_eq!(requested_audiences(&params("resource=https://a&resource=https://b")).unwrap().len(), 2);
        assert_eq!(requested_scopes(&params("scope=")).unwrap(), None);
        assert_eq!(requested_scopes(&params("scope=b.x+a.x+b.x")).unwrap(), Some(vec!["a.x".into(), "b.x".into()]));
        assert!(requested_scopes(&params("scope=a%22b")).is_err());
        assert!(requested_audiences(&params("resource=not-a-uri")).is_err());
    }
}
