//! `private_key_jwt` (RFC 7523 section 2.2, as profiled by OpenID Connect Core section 9): a client
//! authenticates with a JWT it signed with one of its registered keys. The checks are plain functions of the
//! assertion, the keys and the time; the service around them finds the keys (the snapshot's, or a `jwks_uri`'s
//! through `remote_keys`) and makes each assertion single-use across instances (`store::used_assertions`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::NaiveDateTime;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::error::{AuthFailure, OAuthError};
use super::remote_keys::RemoteKeys;
use super::single_use::SingleUse;
use super::TokenSettings;
use crate::auth_methods::{key_algorithms, FederatedCredential, ASSERTION_ALGORITHMS};
use crate::readmodel::{ClientKeys, ClientSnapshot};
use crate::store::{DbPool, StoreError};

/// `client_assertion_type` of a JWT client assertion (RFC 7523 section 2.2).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Larger assertions are refused before any parsing (a few claims and an RSA-4096 signature fit easily).
pub const MAX_ASSERTION_BYTES: usize = 8 * 1024;
/// How far ahead `exp` may be: one hour, the default lifetime of authlib's assertions.
pub const MAX_LIFETIME_SECS: i64 = 3600;
/// Clock skew allowed between the client and us, on every time check.
pub const LEEWAY_SECS: i64 = 60;

/// What an assertion's audience must be: this server's issuer, or its token endpoint URL (what authlib sends).
#[derive(Debug, Clone)]
pub struct AssertionRules {
    pub audiences: [String; 2],
}

impl AssertionRules {
    pub fn for_issuer(settings: &TokenSettings) -> Self {
        AssertionRules { audiences: [settings.issuer.clone(), format!("{}/oauth2/token", settings.issuer)] }
    }
}

/// A checked assertion: what makes it single-use (a federated token may have no `jti`: its age is bounded
/// instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAssertion {
    pub jti: Option<String>,
    pub exp: i64,
}

/// How old a federated token without `jti` may be (Kubernetes refreshes its tokens at 80% of their hour).
pub const MAX_FEDERATED_AGE_SECS: i64 = 3600;

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct AssertionClaims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<OneOrMany>,
    exp: Option<serde_json::Number>,
    nbf: Option<serde_json::Number>,
    iat: Option<serde_json::Number>,
    jti: Option<String>,
}

fn seconds(number: &Option<serde_json::Number>) -> Option<i64> {
    let number = number.as_ref()?;
    number.as_i64().or_else(|| number.as_f64().filter(|f| f.is_finite()).map(|f| f.floor() as i64))
}

/// One base64url segment of a compact JWS, as JSON.
fn segment(assertion: &str, index: usize) -> Option<serde_json::Value> {
    if assertion.len() > MAX_ASSERTION_BYTES {
        return None;
    }
    let part = assertion.split('.').nth(index)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

/// The client an assertion claims to come from (`sub`, which must equal `iss`), read before any check so that
/// the client's keys can be found; nothing is believed until `verify` has passed.
pub fn claimed_client_id(assertion: &str) -> Option<String> {
    claimed(assertion, "sub")
}

/// An unverified claim, to find what to verify the assertion with.
pub fn claimed(assertion: &str, name: &str) -> Option<String> {
    let claims = segment(assertion, 1)?;
    claims.get(name)?.as_str().map(str::to_string)
}

/// Checks `assertion` for `client_id` against `keys` at `now` (seconds).
pub fn verify(
    assertion: &str,
    keys: &JwkSet,
    client_id: &str,
    rules: &AssertionRules,
    now: i64,
) -> Result<VerifiedAssertion, AuthFailure> {
    let claims = signed_claims(assertion, keys)?;
    if claims.iss.as_deref() != Some(client_id) || claims.sub.as_deref() != Some(client_id) {
        return Err(AuthFailure::AssertionIssuer);
    }
    // Every audience must be ours: an assertion also meant for another server could be replayed here.
    let audience_ok = match &claims.aud {
        Some(OneOrMany::One(aud)) => rules.audiences.contains(aud),
        Some(OneOrMany::Many(auds)) => !auds.is_empty() && auds.iter().all(|aud| rules.audiences.contains(aud)),
        None => false,
    };
    if !audience_ok {
        return Err(AuthFailure::AssertionAudience);
    }
    let exp = seconds(&claims.exp).ok_or(AuthFailure::AssertionClaimMissing)?;
    let jti =
        claims.jti.clone().filter(|jti| (1..=256).contains(&jti.len())).ok_or(AuthFailure::AssertionClaimMissing)?;
    check_times(&claims, exp, now)?;
    if exp - now > MAX_LIFETIME_SECS + LEEWAY_SECS {
        return Err(AuthFailure::AssertionLifetime);
    }
    Ok(VerifiedAssertion { jti: Some(jti), exp })
}

/// Checks a token of another identity provider against the federated credential it claims and the provider's
/// keys: `iss` and `sub` are the credential's, `aud` holds its audience; `exp` is the provider's to choose
/// (Kubernetes may issue year-long tokens), so a token without `jti` must be recent instead.
pub fn verify_federated(
    assertion: &str,
    keys: &JwkSet,
    credential: &FederatedCredential,
    now: i64,
) -> Result<VerifiedAssertion, AuthFailure> {
    let claims = signed_claims(assertion, keys)?;
    if claims.iss.as_deref() != Some(credential.issuer.as_str())
        || claims.sub.as_deref() != Some(credential.subject.as_str())
    {
        return Err(AuthFailure::AssertionIssuer);
    }
    let audience_ok = match &claims.aud {
        Some(OneOrMany::One(aud)) => *aud == credential.audience,
        Some(OneOrMany::Many(auds)) => auds.contains(&credential.audience),
        None => false,
    };
    if !audience_ok {
        return Err(AuthFailure::AssertionAudience);
    }
    let exp = seconds(&claims.exp).ok_or(AuthFailure::AssertionClaimMissing)?;
    check_times(&claims, exp, now)?;
    let jti = claims.jti.clone().filter(|jti| (1..=256).contains(&jti.len()));
    if jti.is_none() {
        let iat = seconds(&claims.iat).ok_or(AuthFailure::AssertionClaimMissing)?;
        if now - iat > MAX_FEDERATED_AGE_SECS {
            return Err(AuthFailure::AssertionTooOld);
        }
    }
    Ok(VerifiedAssertion { jti, exp })
}

/// `exp` not passed, `nbf` and `iat` (if present) not in the future, with the leeway.
fn check_times(claims: &AssertionClaims, exp: i64, now: i64) -> Result<(), AuthFailure> {
    if exp + LEEWAY_SECS <= now {
        return Err(AuthFailure::AssertionExpired);
    }
    let in_future = |at: Option<i64>| at.is_some_and(|at| at > now + LEEWAY_SECS);
    if in_future(seconds(&claims.nbf)) || in_future(seconds(&claims.iat)) {
        return Err(AuthFailure::AssertionNotYetValid);
    }
    Ok(())
}

/// The assertion's claims, once its signature checks out with the key its `kid` names, under an algorithm that
/// key has and that is allowed at all.
fn signed_claims(assertion: &str, keys: &JwkSet) -> Result<AssertionClaims, AuthFailure> {
    // The algorithm is checked on the raw header first: `none` is not even a `jsonwebtoken::Algorithm`.
    let header = segment(assertion, 0).ok_or(AuthFailure::MalformedAssertion)?;
    let named = header.get("alg").and_then(|alg| alg.as_str()).unwrap_or_default();
    let alg = ASSERTION_ALGORITHMS
        .into_iter()
        .find(|alg| format!("{alg:?}") == named)
        .ok_or(AuthFailure::AssertionAlgorithm)?;
    let kid = header.get("kid").and_then(|kid| kid.as_str()).ok_or(AuthFailure::UnknownKey)?;
    let key = keys.find(kid).ok_or(AuthFailure::UnknownKey)?;
    if !key_algorithms(key).contains(&alg) {
        return Err(AuthFailure::AssertionAlgorithm);
    }
    let decoding_key = DecodingKey::from_jwk(key).map_err(|_| AuthFailure::UnknownKey)?;
    decode(assertion, &decoding_key, alg)
}

/// The signature with `alg` only; the claims are checked by `verify` against the injected time.
fn decode(assertion: &str, key: &DecodingKey, alg: Algorithm) -> Result<AssertionClaims, AuthFailure> {
    use jsonwebtoken::errors::ErrorKind;
    let mut validation = Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    match jsonwebtoken::decode::<AssertionClaims>(assertion, key, &validation) {
        Ok(data) => Ok(data.claims),
        Err(err) => Err(match err.kind() {
            ErrorKind::InvalidSignature | ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidRsaKey(_) => {
                AuthFailure::AssertionSignature
            }
            ErrorKind::InvalidAlgorithm => AuthFailure::AssertionAlgorithm,
            _ => AuthFailure::MalformedAssertion,
        }),
    }
}

/// The service: keys from the snapshot or the client's `jwks_uri`, and single use across instances.
pub struct Assertions {
    single_use: SingleUse,
    remote: RemoteKeys,
    rules: AssertionRules,
}

/// Why an assertion did not authenticate: the client's fault, or the database's.
pub enum AssertionError {
    Refused(AuthFailure),
    Store(StoreError),
}

impl From<AuthFailure> for AssertionError {
    fn from(failure: AuthFailure) -> Self {
        AssertionError::Refused(failure)
    }
}

impl Assertions {
    /// `clock`: the server's, which the remote key sets' cache follows.
    pub fn new(
        pool: DbPool,
        settings: &TokenSettings,
        allow_private_key_urls: bool,
        clock: crate::clock::SharedClock,
    ) -> Self {
        Assertions {
            single_use: SingleUse::start(pool),
            remote: RemoteKeys::new(allow_private_key_urls, clock),
            rules: AssertionRules::for_issuer(settings),
        }
    }

    /// Verifies `assertion` for `client` at `at`, then uses it up.
    pub async fn check(
        &self,
        client: &ClientSnapshot,
        assertion: &str,
        at: NaiveDateTime,
    ) -> Result<VerifiedAssertion, AssertionError> {
        let now = at.and_utc().timestamp();
        let verified = match &client.keys {
            ClientKeys::None => return Err(AuthFailure::NoKeys.into()),
            ClientKeys::Inline(keys) => verify(assertion, keys, &client.client_id, &self.rules, now)?,
            ClientKeys::Remote(url) => {
                let keys = self.remote.keys(url).await?;
                match verify(assertion, &keys, &client.client_id, &self.rules, now) {
                    // The client may have rotated its keys since they were fetched: fetch once more.
                    Err(AuthFailure::UnknownKey) => match self.remote.refreshed(url).await? {
                        Some(keys) => verify(assertion, &keys, &client.client_id, &self.rules, now)?,
                        None => return Err(AuthFailure::UnknownKey.into()),
                    },
                    other => other?,
                }
            }
        };
        self.consume(&format!("client:{}", client.client_id), &verified).await?;
        Ok(verified)
    }

    /// Verifies a token of another identity provider against the client's federated credential for the
    /// issuer and subject it claims, with the provider's keys (its discovery document's `jwks_uri`), then uses
    /// it up if it has a `jti`. Returns the credential.
    pub async fn check_federated<'a>(
        &self,
        client: &'a ClientSnapshot,
        assertion: &str,
        at: NaiveDateTime,
    ) -> Result<&'a FederatedCredential, AssertionError> {
        let (issuer, subject) = (claimed(assertion, "iss"), claimed(assertion, "sub"));
        let of_issuer: Vec<&FederatedCredential> =
            client.federated_credentials.iter().filter(|c| Some(&c.issuer) == issuer.as_ref()).collect();
        if of_issuer.is_empty() {
            return Err(AuthFailure::FederationIssuerUnknown.into());
        }
        let credential = of_issuer
            .into_iter()
            .find(|c| Some(&c.subject) == subject.as_ref())
            .ok_or(AuthFailure::FederationSubjectMismatch)?;
        // The operator may have withdrawn the partner's trust since the credential was registered.
        if !client.partner_trusted_issuers.contains(&credential.issuer) {
            return Err(AuthFailure::FederationIssuerNotTrusted.into());
        }
        let now = at.and_utc().timestamp();
        let jwks_uri = self.remote.issuer_jwks_uri(&credential.issuer).await?;
        let keys = self.remote.keys(&jwks_uri).await?;
        let verified = match verify_federated(assertion, &keys, credential, now) {
            Err(AuthFailure::UnknownKey) => match self.remote.refreshed(&jwks_uri).await? {
                Some(keys) => verify_federated(assertion, &keys, credential, now)?,
                None => return Err(AuthFailure::UnknownKey.into()),
            },
            other => other?,
        };
        self.consume(&format!("federated:{}", credential.issuer), &verified).await?;
        Ok(credential)
    }

    /// Marks the assertion used (`scope` names whose `jti`s they are); one without `jti` (a federated token) is
    /// not tracked.
    async fn consume(&self, scope: &str, verified: &VerifiedAssertion) -> Result<(), AssertionError> {
        let Some(jti) = &verified.jti else { return Ok(()) };
        let key = format!("{scope}:{jti}");
        let expires_at = chrono::DateTime::from_timestamp(verified.exp + LEEWAY_SECS, 0)
            .ok_or(AuthFailure::AssertionLifetime)?
            .naive_utc();
        let fresh = self.single_use.consume(key, expires_at).await.map_err(AssertionError::Store)?;
        if fresh {
            Ok(())
        } else {
            Err(AuthFailure::AssertionReplayed.into())
        }
    }
}

impl AssertionError {
    pub fn into_oauth(self, refuse: impl FnOnce(AuthFailure) -> OAuthError) -> OAuthError {
        match self {
            AssertionError::Refused(failure) => refuse(failure),
            AssertionError::Store(err) => OAuthError::registry(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    struct Signer {
        encoding: EncodingKey,
        jwks: JwkSet,
    }

    fn signer(kid: &str) -> Signer {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let point = pair.public_key().as_ref();
        let jwks = serde_json::from_value(json!({"keys": [{
            "kty": "EC", "crv": "P-256", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        }]}))
        .unwrap();
        Signer { encoding: EncodingKey::from_ec_der(pkcs8.as_ref()), jwks }
    }

    fn rules() -> AssertionRules {
        AssertionRules { audiences: ["https://as".into(), "https://as/oauth2/token".into()] }
    }

    fn claims() -> serde_json::Value {
        json!({"iss": "pgc_a", "sub": "pgc_a", "aud": "https://as/oauth2/token", "exp": NOW + 60, "iat": NOW, "jti": "j1"})
    }

    fn sign(signer: &Signer, kid: &str, claims: &serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, claims, &signer.encoding).unwrap()
    }

    fn check(signer: &Signer, claims: serde_json::Value) -> Result<VerifiedAssertion, AuthFailure> {
        verify(&sign(signer, "k1", &claims), &signer.jwks, "pgc_a", &rules(), NOW)
    }

    #[test]
    fn a_well_formed_assertion_verifies() {
        let signer = signer("k1");
        assert_eq!(check(&signer, claims()).unwrap(), VerifiedAssertion { jti: Some("j1".into()), exp: NOW + 60 });
        let mut to_issuer = claims();
        to_issuer["aud"] = json!(["https://as", "https://as/oauth2/token"]);
        assert!(check(&signer, to_issuer).is_ok());
        assert_eq!(claimed_client_id(&sign(&signer, "k1", &claims())).as_deref(), Some("pgc_a"));
    }

    #[test]
    fn each_claim_rule_refuses_with_its_reason() {
        let signer = signer("k1");
        let with = |name: &str, value: serde_json::Value| {
            let mut claims = claims();
            claims[name] = value;
            check(&signer, claims).unwrap_err()
        };
        let without = |name: &str| {
            let mut claims = claims();
            claims.as_object_mut().unwrap().remove(name);
            check(&signer, claims).unwrap_err()
        };
        assert_eq!(with("iss", json!("pgc_b")), AuthFailure::AssertionIssuer);
        assert_eq!(with("sub", json!("pgc_b")), AuthFailure::AssertionIssuer);
        assert_eq!(with("aud", json!("https://elsewhere")), AuthFailure::AssertionAudience);
        assert_eq!(with("aud", json!(["https://as", "https://elsewhere"])), AuthFailure::AssertionAudience);
        assert_eq!(with("exp", json!(NOW - LEEWAY_SECS)), AuthFailure::AssertionExpired);
        assert_eq!(with("exp", json!(NOW + 3600 + LEEWAY_SECS + 1)), AuthFailure::AssertionLifetime);
        assert_eq!(with("nbf", json!(NOW + 600)), AuthFailure::AssertionNotYetValid);
        assert_eq!(with("iat", json!(NOW + 600)), AuthFailure::AssertionNotYetValid);
        assert_eq!(without("exp"), AuthFailure::AssertionClaimMissing);
        assert_eq!(without("jti"), AuthFailure::AssertionClaimMissing);
        assert_eq!(without("aud"), AuthFailure::AssertionAudience);
    }

    #[test]
    fn keys_and_algorithms_are_the_registered_ones() {
        let (signer, other) = (signer("k1"), signer("k1"));
        let forged = sign(&other, "k1", &claims());
        assert_eq!(verify(&forged, &signer.jwks, "pgc_a", &rules(), NOW), Err(AuthFailure::AssertionSignature));
        let unknown = sign(&signer, "k2", &claims());
        assert_eq!(verify(&unknown, &signer.jwks, "pgc_a", &rules(), NOW), Err(AuthFailure::UnknownKey));
        let body = URL_SAFE_NO_PAD.encode(claims().to_string());
        let none = format!("{}.{body}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k1"}"#));
        assert_eq!(verify(&none, &signer.jwks, "pgc_a", &rules(), NOW), Err(AuthFailure::AssertionAlgorithm));
        let mut hmac_header = Header::new(Algorithm::HS256);
        hmac_header.kid = Some("k1".into());
        let hmac = jsonwebtoken::encode(&hmac_header, &claims(), &EncodingKey::from_secret(b"public")).unwrap();
        assert_eq!(verify(&hmac, &signer.jwks, "pgc_a", &rules(), NOW), Err(AuthFailure::AssertionAlgorithm));
        assert_eq!(verify("not a jwt", &signer.jwks, "pgc_a", &rules(), NOW), Err(AuthFailure::MalformedAssertion));
    }
}
