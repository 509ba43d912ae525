//! One signing key: parsed once into a `ring` key pair, reused for every signature.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub enum Algorithm {
    ES256,
    EdDSA,
    RS256,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::ES256 => "ES256",
            Algorithm::EdDSA => "EdDSA",
            Algorithm::RS256 => "RS256",
        }
    }
}

impl std::str::FromStr for Algorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ES256" => Ok(Algorithm::ES256),
            "EdDSA" | "Ed25519" => Ok(Algorithm::EdDSA),
            "RS256" => Ok(Algorithm::RS256),
            other => Err(format!("unknown algorithm {other:?}: use ES256, EdDSA or RS256")),
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The public half of a key as a JWK (RFC 7517). Always carries `kid`, `alg` and `use`, which PyJWT, node
/// `jose` and Go `jwx` need to pick the key; never a private parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicJwk {
    pub kty: &'static str,
    #[serde(rename = "use")]
    pub key_use: &'static str,
    pub alg: &'static str,
    pub kid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crv: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
}

enum KeyPairKind {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

pub struct SigningKey {
    alg: Algorithm,
    kid: String,
    jwk: PublicJwk,
    /// The public key for `jsonwebtoken`, built once, to verify this server's own tokens.
    decoding_key: jsonwebtoken::DecodingKey,
    key_pair: KeyPairKind,
    rng: SystemRandom,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("alg", &self.alg).field("kid", &self.kid).finish_non_exhaustive()
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl SigningKey {
    /// Generates a PKCS#8 document for `alg`. RSA keys cannot be generated with `ring`: create one with
    /// `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048` and `partnergate keys import` it.
    pub fn generate_pkcs8(alg: Algorithm) -> Result<Vec<u8>, String> {
        let rng = SystemRandom::new();
        let document = match alg {
            Algorithm::ES256 => EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng),
            Algorithm::EdDSA => Ed25519KeyPair::generate_pkcs8(&rng),
            Algorithm::RS256 => {
                // A running installation reads PEM files only when imported (the first start excepted).
                return Err("RS256 keys are not generated here: run `openssl genpkey -algorithm RSA \
                            -pkeyopt rsa_keygen_bits:2048 -out rsa.pem`, `chmod 600 rsa.pem`, then \
                            `partnergate keys import rsa.pem` (published; `keys activate KID` makes it sign)"
                    .into());
            }
        };
        document.map(|doc| doc.as_ref().to_vec()).map_err(|_| "key generation failed".to_string())
    }

    /// Parses a PKCS#8 private key of any supported kind; the algorithm follows from the key type.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, String> {
        let rng = SystemRandom::new();
        let (alg, key_pair) = if let Ok(kp) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            (Algorithm::EdDSA, KeyPairKind::Ed25519(kp))
        } else if let Ok(kp) = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng) {
            (Algorithm::ES256, KeyPairKind::Ecdsa(kp))
        } else if let Ok(kp) = RsaKeyPair::from_pkcs8(der) {
            if kp.public().modulus_len() < 256 {
                return Err("RSA keys must have at least 2048 bits".into());
            }
            (Algorithm::RS256, KeyPairKind::Rsa(kp))
        } else {
            return Err("unsupported private key: expected PKCS#8 P-256, Ed25519 or RSA".into());
        };
        let (kty, crv, x, y, n, e) = match &key_pair {
            KeyPairKind::Ecdsa(kp) => {
                // Uncompressed point: 0x04 || x (32 bytes) || y (32 bytes).
                let point = kp.public_key().as_ref();
                ("EC", Some("P-256"), Some(b64(&point[1..33])), Some(b64(&point[33..65])), None, None)
            }
            KeyPairKind::Ed25519(kp) => ("OKP", Some("Ed25519"), Some(b64(kp.public_key().as_ref())), None, None, None),
            KeyPairKind::Rsa(kp) => {
                let public: ring::rsa::PublicKeyComponents<Vec<u8>> = kp.public().into();
                ("RSA", None, None, None, Some(b64(&public.n)), Some(b64(&public.e)))
            }
        };
        let mut jwk = PublicJwk { kty, key_use: "sig", alg: alg.as_str(), kid: String::new(), crv, x, y, n, e };
        jwk.kid = thumbprint(&jwk);
        let component = |value: &Option<String>| value.clone().unwrap_or_default();
        let decoding_key = match alg {
            Algorithm::ES256 => jsonwebtoken::DecodingKey::from_ec_components(&component(&jwk.x), &component(&jwk.y)),
            Algorithm::EdDSA => jsonwebtoken::DecodingKey::from_ed_components(&component(&jwk.x)),
            Algorithm::RS256 => jsonwebtoken::DecodingKey::from_rsa_components(&component(&jwk.n), &component(&jwk.e)),
        }
        .map_err(|err| format!("cannot build the verification key: {err}"))?;
        Ok(SigningKey { alg, kid: jwk.kid.clone(), jwk, decoding_key, key_pair, rng })
    }

    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn jwk(&self) -> &PublicJwk {
        &self.jwk
    }

    pub fn decoding_key(&self) -> &jsonwebtoken::DecodingKey {
        &self.decoding_key
    }

    pub fn jsonwebtoken_algorithm(&self) -> jsonwebtoken::Algorithm {
        match self.alg {
            Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
            Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
        }
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match &self.key_pair {
            KeyPairKind::Ecdsa(kp) => kp.sign(&self.rng, message).expect("ECDSA signing failed").as_ref().to_vec(),
            KeyPairKind::Ed25519(kp) => kp.sign(message).as_ref().to_vec(),
            KeyPairKind::Rsa(kp) => {
                let mut signature = vec![0u8; kp.public().modulus_len()];
                kp.sign(&signature::RSA_PKCS1_SHA256, &self.rng, message, &mut signature).expect("RSA signing failed");
                signature
            }
        }
    }
}

/// RFC 7638 JWK thumbprint: SHA-256 over the required members in lexicographic order, no whitespace.
pub fn thumbprint(jwk: &PublicJwk) -> String {
    let canonical = match jwk.kty {
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk.crv.unwrap_or_default(),
            jwk.x.as_deref().unwrap_or_default(),
            jwk.y.as_deref().unwrap_or_default()
        ),
        "OKP" => format!(
            r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
            jwk.crv.unwrap_or_default(),
            jwk.x.as_deref().unwrap_or_default()
        ),
        _ => format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            jwk.e.as_deref().unwrap_or_default(),
            jwk.n.as_deref().unwrap_or_default()
        ),
    };
    b64(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_example_thumbprint() {
        // The RSA key of RFC 7638 section 3.1 and its published thumbprint.
        let jwk = PublicJwk {
            kty: "RSA",
            key_use: "sig",
            alg: "RS256",
            kid: String::new(),
            crv: None,
            x: None,
            y: None,
            n: Some("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw".into()),
            e: Some("AQAB".into()),
        };
        assert_eq!(thumbprint(&jwk), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn generated_keys_sign_and_verify() {
        for alg in [Algorithm::ES256, Algorithm::EdDSA] {
            let der = SigningKey::generate_pkcs8(alg).unwrap();
            let key = SigningKey::from_pkcs8(&der).unwrap();
            assert_eq!(key.alg(), alg);
            assert_eq!(key.kid(), thumbprint(key.jwk()));
            let signature = key.sign(b"message");
            let (verify_alg, public): (&dyn signature::VerificationAlgorithm, Vec<u8>) = match alg {
                Algorithm::ES256 => {
                    let jwk = key.jwk();
                    let mut point = vec![4u8];
                    point.extend(URL_SAFE_NO_PAD.decode(jwk.x.as_ref().unwrap()).unwrap());
                    point.extend(URL_SAFE_NO_PAD.decode(jwk.y.as_ref().unwrap()).unwrap());
                    (&signature::ECDSA_P256_SHA256_FIXED, point)
                }
                _ => (&signature::ED25519, URL_SAFE_NO_PAD.decode(key.jwk().x.as_ref().unwrap()).unwrap()),
            };
            signature::UnparsedPublicKey::new(verify_alg, public).verify(b"message", &signature).unwrap();
        }
        assert!(SigningKey::generate_pkcs8(Algorithm::RS256).is_err());
    }
}
