//! How a client authenticates: the methods it may use (RFC 7591 names) and, for `private_key_jwt`, its public
//! keys, inline as a JWKS or by `jwks_uri` (ARCHITECTURE.md, "Client authentication without a secret").

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use serde::{Deserialize, Serialize};

use super::RegistryError;

/// A client authentication method at the token endpoint, by its RFC 7591 name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
}

impl AuthMethod {
    pub const ALL: [AuthMethod; 3] =
        [AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost, AuthMethod::PrivateKeyJwt];

    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|method| method.as_str() == name)
    }

    pub fn uses_secret(self) -> bool {
        self != AuthMethod::PrivateKeyJwt
    }
}

/// The methods a client may use; clients registered before methods existed may use both secret methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuthMethods(u8);

impl AuthMethods {
    pub const SECRETS: AuthMethods = AuthMethods(0b011);

    pub fn of(methods: &[AuthMethod]) -> Self {
        AuthMethods(methods.iter().fold(0, |bits, m| bits | 1 << *m as u8))
    }

    pub fn allows(self, method: AuthMethod) -> bool {
        self.0 & (1 << method as u8) != 0
    }

    pub fn list(self) -> Vec<AuthMethod> {
        AuthMethod::ALL.into_iter().filter(|m| self.allows(*m)).collect()
    }

    /// The stored form: names separated by spaces. Unknown names (written by a newer version) are ignored.
    pub fn parse_stored(text: &str) -> Self {
        Self::of(&text.split(' ').filter_map(AuthMethod::parse).collect::<Vec<_>>())
    }

    pub fn stored(self) -> String {
        self.list().iter().map(|m| m.as_str()).collect::<Vec<_>>().join(" ")
    }
}

/// A token of `issuer` for `subject` with `audience` authenticates the client (workload identity federation,
/// in the model of Entra's federated credentials).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FederatedCredential {
    /// The identity provider, e.g. `https://token.actions.githubusercontent.com`.
    pub issuer: String,
    /// Its subject, e.g. `repo:acme/sync:ref:refs/heads/main`.
    pub subject: String,
    /// The audience its tokens must carry for this server.
    pub audience: String,
}

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

/// The signature algorithms a client assertion may use: asymmetric only, never `none` or HMAC.
pub const ASSERTION_ALGORITHMS: [jsonwebtoken::Algorithm; 4] = [
    jsonwebtoken::Algorithm::ES256,
    jsonwebtoken::Algorithm::EdDSA,
    jsonwebtoken::Algorithm::PS256,
    jsonwebtoken::Algorithm::RS256,
];

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

/// The assertion algorithms a registered key can verify: its own `alg` if it names one, else those of its type.
pub fn key_algorithms(key: &Jwk) -> Vec<jsonwebtoken::Algorithm> {
    use jsonwebtoken::Algorithm;
    let by_type: Vec<Algorithm> = match &key.algorithm {
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => vec![Algorithm::ES256],
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => vec![Algorithm::EdDSA],
        // RSA keys under 2048 bits are refused by ring when verifying.
        AlgorithmParameters::RSA(_) => vec![Algorithm::RS256, Algorithm::PS256],
        _ => vec![],
    };
    match key.common.key_algorithm {
        None => by_type,
        Some(named) => {
            let named = match named {
                KeyAlgorithm::ES256 => Some(Algorithm::ES256),
                KeyAlgorithm::EdDSA => Some(Algorithm::EdDSA),
                KeyAlgorithm::RS256 => Some(Algorithm::RS256),
                KeyAlgorithm::PS256 => Some(Algorithm::PS256),
                _ => None,
            };
            named.filter(|alg| by_type.contains(alg)).into_iter().collect()
        }
    }
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
    fn methods_round_trip_through_their_stored_form() {
        let methods = AuthMethods::of(&[AuthMethod::PrivateKeyJwt, AuthMethod::ClientSecretPost]);
        assert_eq!(methods.stored(), "client_secret_post private_key_jwt");
        assert_eq!(AuthMethods::parse_stored(&methods.stored()), methods);
        assert!(AuthMethods::SECRETS.allows(AuthMethod::ClientSecretBasic));
        assert!(!AuthMethods::SECRETS.allows(AuthMethod::PrivateKeyJwt));
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
