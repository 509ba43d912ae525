//! The checks of how a client authenticates, as it is registered: its methods (RFC 7591 names), its public keys
//! for `private_key_jwt` (inline as a JWKS or by `jwks_uri`), its federated credentials (the types are in
//! `auth_methods.rs`; ARCHITECTURE.md, "Client authentication without a secret").

use jsonwebtoken::jwk::JwkSet;

use super::RegistryError;
use crate::auth_methods::{key_algorithms, AuthMethod, AuthMethods, FederatedCredential};

/// Checks a list of federated credentials: well-formed, and no (issuer, subject) twice.
pub fn check_federated(credentials: &[FederatedCredential]) -> Result<Vec<FederatedCredential>, RegistryError> {
    let field = "federated_credentials";
    if credentials.len() > 20 {
        return Err(invalid(field, "at most 20"));
    }
    for credential in credentials {
        check_url(field, &credential.issuer)?;
        for (name, value) in [("subject", &credential.subject), ("audience", &credential.audience)] {
            if value.is_empty() || value.len() > 400 || value.chars().any(char::is_control) {
                return Err(invalid(field, format!("{name} must be 1 to 400 characters")));
            }
        }
    }
    let mut sorted = credentials.to_vec();
    sorted.sort();
    if sorted.windows(2).any(|pair| (&pair[0].issuer, &pair[0].subject) == (&pair[1].issuer, &pair[1].subject)) {
        return Err(invalid(field, "an (issuer, subject) appears twice"));
    }
    Ok(sorted)
}

/// At most this many keys in a client's JWKS (a few for rotation), and this many bytes of it.
pub const MAX_KEYS: usize = 10;
pub const MAX_JWKS_BYTES: usize = 16 * 1024;

fn invalid(field: &'static str, message: impl Into<String>) -> RegistryError {
    RegistryError::Invalid { field, message: message.into() }
}

/// Private members of a JWK: a client registers public keys only.
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

/// Checks a JWKS as a client registers it (RFC 7591 `jwks`): public keys of the supported kinds, each with a
/// distinct `kid`. Returns it as the compact JSON stored.
pub fn check_jwks(value: &serde_json::Value) -> Result<String, RegistryError> {
    let text = value.to_string();
    if text.len() > MAX_JWKS_BYTES {
        return Err(invalid("jwks", format!("is larger than {MAX_JWKS_BYTES} bytes")));
    }
    let raw_keys = value
        .get("keys")
        .and_then(|keys| keys.as_array())
        .ok_or_else(|| invalid("jwks", "must be a JWK set: {\"keys\": [...]}"))?;
    if raw_keys.iter().any(|key| PRIVATE_MEMBERS.iter().any(|member| key.get(member).is_some())) {
        return Err(invalid("jwks", "holds a private or symmetric key: register public keys only"));
    }
    let set: JwkSet = serde_json::from_value(value.clone())
        .map_err(|err| invalid("jwks", format!("is not a valid JWK set: {err}")))?;
    if set.keys.is_empty() || set.keys.len() > MAX_KEYS {
        return Err(invalid("jwks", format!("must hold 1 to {MAX_KEYS} keys")));
    }
    let mut kids = Vec::new();
    for key in &set.keys {
        let kid = key.common.key_id.as_deref().filter(|kid| !kid.is_empty() && kid.len() <= 200);
        let kid = kid.ok_or_else(|| invalid("jwks", "every key needs a kid"))?;
        if kids.contains(&kid) {
            return Err(invalid("jwks", format!("kid {kid:?} appears twice")));
        }
        kids.push(kid);
        if key_algorithms(key).is_empty() {
            return Err(invalid(
                "jwks",
                format!("key {kid:?} is not an EC P-256, Ed25519 or RSA public key with a supported alg"),
            ));
        }
    }
    Ok(text)
}

/// A `jwks_uri`: an absolute http(s) URL without credentials or fragment. Where it may point (public
/// addresses, https) is decided when it is fetched, by the server's settings.
pub fn check_jwks_uri(uri: &str) -> Result<(), RegistryError> {
    check_url("jwks_uri", uri)
}

/// An absolute http(s) URL without credentials or fragment (a `jwks_uri`, an issuer).
pub fn check_url(field: &'static str, uri: &str) -> Result<(), RegistryError> {
    let rest = uri.strip_prefix("https://").or_else(|| uri.strip_prefix("http://"));
    let host = rest.and_then(|rest| rest.split(['/', '?']).next()).unwrap_or_default();
    if uri.len() > 2000
        || host.is_empty()
        || host.contains('@')
        || uri.contains('#')
        || !uri.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(invalid(field, "must be an absolute https URL without credentials or fragment"));
    }
    Ok(())
}

/// The stored methods and keys of a client after a change, checked together: at least one method;
/// `private_key_jwt` needs keys, or federated credentials (a client authenticated only by federation has
/// `private_key_jwt` alone and no keys); keys come inline or from a URL, not both.
pub fn check_registration(
    methods: AuthMethods,
    jwks: Option<&str>,
    jwks_uri: Option<&str>,
    federated: bool,
) -> Result<(), RegistryError> {
    let field = "token_endpoint_auth_methods";
    if methods.list().is_empty() {
        return Err(invalid(field, "must name at least one method"));
    }
    if jwks.is_some() && jwks_uri.is_some() {
        return Err(invalid("jwks", "give jwks or jwks_uri, not both"));
    }
    if methods.allows(AuthMethod::PrivateKeyJwt) && jwks.is_none() && jwks_uri.is_none() && !federated {
        return Err(invalid(
            field,
            "private_key_jwt needs the client's public keys (jwks or jwks_uri) or federated credentials",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ec_key(kid: &str) -> serde_json::Value {
        json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256",
               "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"})
    }

    #[test]
    fn a_jwks_holds_public_keys_with_distinct_kids() {
        assert!(check_jwks(&json!({"keys": [ec_key("a"), ec_key("b")]})).is_ok());
        assert!(check_jwks(&json!({"keys": [ec_key("a"), ec_key("a")]})).is_err());
        let mut no_kid = ec_key("a");
        no_kid.as_object_mut().unwrap().remove("kid");
        assert!(check_jwks(&json!({"keys": [no_kid]})).is_err());
        let mut private = ec_key("a");
        private["d"] = json!("secret");
        assert!(check_jwks(&json!({"keys": [private]})).is_err());
        assert!(check_jwks(&json!({"keys": [{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}]})).is_err());
        let mut wrong_alg = ec_key("a");
        wrong_alg["alg"] = json!("RS256");
        assert!(check_jwks(&json!({"keys": [wrong_alg]})).is_err());
        assert!(check_jwks(&json!({"keys": []})).is_err());
        assert!(check_jwks(&json!([ec_key("a")])).is_err());
    }

    #[test]
    fn registrations_need_keys_for_private_key_jwt() {
        let jwt = AuthMethods::of(&[AuthMethod::PrivateKeyJwt]);
        assert!(check_registration(jwt, None, None, false).is_err());
        assert!(check_registration(jwt, None, None, true).is_ok(), "federation alone");
        assert!(check_registration(jwt, Some("{}"), None, false).is_ok());
        assert!(check_registration(jwt, Some("{}"), Some("https://x"), false).is_err());
        assert!(check_registration(AuthMethods::of(&[]), None, None, false).is_err());
        assert!(check_registration(AuthMethods::SECRETS, None, None, false).is_ok());
        assert!(check_jwks_uri("https://keys.example.com/jwks.json").is_ok());
        assert!(check_jwks_uri("https://user:pw@keys.example.com/").is_err());
        assert!(check_jwks_uri("ftp://keys.example.com/").is_err());
    }
}
