//! How a client authenticates: the methods it may use (RFC 7591 names), its federated credentials, and the
//! algorithms its assertions may be signed with (ARCHITECTURE.md, "Client authentication without a secret").
//! Plain types and pure functions, shared by the registry (which checks them, `registry/client_keys.rs`), the
//! read model and the token path.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm};
use serde::{Deserialize, Serialize};

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

/// The signature algorithms a client assertion may use: asymmetric only, never `none` or HMAC.
pub const ASSERTION_ALGORITHMS: [jsonwebtoken::Algorithm; 4] = [
    jsonwebtoken::Algorithm::ES256,
    jsonwebtoken::Algorithm::EdDSA,
    jsonwebtoken::Algorithm::PS256,
    jsonwebtoken::Algorithm::RS256,
];

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_round_trip_through_their_stored_form() {
        let methods = AuthMethods::of(&[AuthMethod::PrivateKeyJwt, AuthMethod::ClientSecretPost]);
        assert_eq!(methods.stored(), "client_secret_post private_key_jwt");
        assert_eq!(AuthMethods::parse_stored(&methods.stored()), methods);
        assert!(AuthMethods::SECRETS.allows(AuthMethod::ClientSecretBasic));
        assert!(!AuthMethods::SECRETS.allows(AuthMethod::PrivateKeyJwt));
    }
}
