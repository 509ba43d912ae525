//! RFC 9068 section 4: what a resource server checks of an access token, and nothing taken on the token's word.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::Validation;
use serde::Deserialize;

use crate::clock::{Clock, SystemClock};
use crate::discovery::Discovery;
use crate::error::VerifyError;
use crate::jwks::{DecodeError, JwksCache, JwksSettings};
use crate::principal::Principal;
use crate::token_cache::{self, TokenCache};

/// What the verifier needs to know; [`VerifierConfig::new`] has the defaults.
#[derive(Clone)]
pub struct VerifierConfig {
    /// The issuer as its tokens name it (`iss`), also the base of its metadata URL.
    pub issuer: String,
    /// This resource server's audience: a token's `aud` must contain it.
    pub audience: String,
    /// The metadata document's URL, when not `{issuer}/.well-known/oauth-authorization-server`.
    pub metadata_url: Option<String>,
    /// Tolerated clock skew for `exp` and `nbf`.
    pub leeway: Duration,
    /// How many verified tokens are remembered (0: none).
    pub token_cache_capacity: usize,
    pub jwks: JwksSettings,
    /// Timeout of each request to the issuer.
    pub http_timeout: Duration,
    pub clock: Arc<dyn Clock>,
}

impl VerifierConfig {
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        VerifierConfig {
            issuer: issuer.into(),
            audience: audience.into(),
            metadata_url: None,
            leeway: Duration::from_secs(30),
            token_cache_capacity: 10_000,
            jwks: JwksSettings::default(),
            http_timeout: Duration::from_secs(5),
            clock: Arc::new(SystemClock),
        }
    }
}

/// The claims RFC 9068 and partnergate require; a token without one of them is refused.
#[derive(Deserialize)]
struct AccessClaims {
    exp: u64,
    #[serde(default)]
    nbf: Option<u64>,
    #[serde(default)]
    iat: Option<u64>,
    client_id: String,
    partner_id: String,
    scope: String,
    jti: String,
}

/// What a verifier has done, for metrics and health checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifierStats {
    /// Tokens verified by signature (first sight).
    pub verified: u64,
    /// Tokens answered from the cache of verified tokens.
    pub cache_hits: u64,
    pub rejected: u64,
    /// Verified tokens remembered now.
    pub tokens_cached: usize,
    pub jwks_fetches: u64,
    pub jwks_fetch_failures: u64,
    /// The issuer could not be reached at the last try and keys older than their max-age are in use.
    pub serving_stale_jwks: bool,
}

/// Verifies access tokens of one issuer for one audience. Cheap to clone (shared state).
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

/// Numbers the verifiers of a process, for the per-thread front of the token cache.
static NEXT_VERIFIER_ID: AtomicU64 = AtomicU64::new(1);

struct Inner {
    id: u64,
    /// The token cache is on (capacity above 0).
    caching: bool,
    validation: Validation,
    leeway_secs: u64,
    clock: Arc<dyn Clock>,
    discovery: Arc<Discovery>,
    jwks: Arc<JwksCache>,
    tokens: TokenCache,
    verified: AtomicU64,
    cache_hits: AtomicU64,
    rejected: AtomicU64,
}

impl Verifier {
    pub fn new(config: VerifierConfig) -> Self {
        let discovery = Arc::new(Discovery::new(&config.issuer, config.metadata_url.clone(), config.http_timeout));
        let jwks = JwksCache::new(discovery.clone(), config.clock.clone(), config.jwks.clone());
        // Signature, `iss` and `aud` by jsonwebtoken; time by this crate's clock; the algorithm is set per key.
        let mut validation = Validation::default();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        validation.set_issuer(&[discovery.issuer()]);
        validation.set_audience(&[&config.audience]);
        validation.required_spec_claims = HashSet::from(["exp", "iss", "aud"].map(String::from));
        Verifier {
            inner: Arc::new(Inner {
                id: NEXT_VERIFIER_ID.fetch_add(1, Ordering::Relaxed),
                caching: config.token_cache_capacity > 0,
                validation,
                leeway_secs: config.leeway.as_secs(),
                clock: config.clock,
                discovery,
                jwks,
                tokens: TokenCache::new(config.token_cache_capacity),
                verified: AtomicU64::new(0),
                cache_hits: AtomicU64::new(0),
                rejected: AtomicU64::new(0),
            }),
        }
    }

    /// The issuer's metadata, shared with a [`crate::UsageReporter`].
    pub fn discovery(&self) -> Arc<Discovery> {
        self.inner.discovery.clone()
    }

    pub async fn verify(&self, token: &str) -> Result<Arc<Principal>, VerifyError> {
        let result = match self.verify_cached(token) {
            Some(answer) => return answer,
            None => self.verify_signature(token).await,
        };
        self.count_refusal(&result);
        result
    }

    /// What can be answered without a signature verification: a token this process has verified before (the
    /// warm path: no future, no lock on the per-thread front), or one it has seen expire. `None`: the token
    /// needs [`Verifier::verify`].
    pub fn verify_cached(&self, token: &str) -> Option<Result<Arc<Principal>, VerifyError>> {
        let result = self.cached(token)?;
        self.count_refusal(&result);
        Some(result)
    }

    fn count_refusal(&self, result: &Result<Arc<Principal>, VerifyError>) {
        if let Err(err) = result {
            self.inner.rejected.fetch_add(1, Ordering::Relaxed);
            log::debug!("token refused: {err}");
        }
    }

    fn cached(&self, token: &str) -> Option<Result<Arc<Principal>, VerifyError>> {
        let inner = &*self.inner;
        if !inner.caching {
            return None;
        }
        let now = inner.clock.now().as_secs();
        if let Some(principal) = token_cache::front_get(inner.id, token) {
            if now < principal.exp + inner.leeway_secs {
                inner.cache_hits.fetch_add(1, Ordering::Relaxed);
                return Some(Ok(principal));
            }
            // Expired: the shared cache below drops it too and says so.
            token_cache::front_remove(token);
        }
        let digest = token_cache::digest(token);
        let principal = inner.tokens.get(&digest)?;
        if now >= principal.exp + inner.leeway_secs {
            inner.tokens.remove(&digest);
            return Some(Err(VerifyError::Expired));
        }
        token_cache::front_insert(inner.id, token, &principal);
        inner.cache_hits.fetch_add(1, Ordering::Relaxed);
        Some(Ok(principal))
    }

    async fn verify_signature(&self, token: &str) -> Result<Arc<Principal>, VerifyError> {
        let inner = &*self.inner;
        let now = inner.clock.now().as_secs();
        let digest = token_cache::digest(token);

        // RFC 9068 section 4: "at+jwt" or "application/at+jwt".
        let claims: AccessClaims =
            inner.jwks.decode(token, "at+jwt", &inner.validation).await.map_err(|err| match err {
                DecodeError::Malformed => VerifyError::Malformed,
                DecodeError::WrongType => VerifyError::WrongType,
                DecodeError::NoKeyId => VerifyError::NoKeyId,
                DecodeError::UnknownKey => VerifyError::UnknownKey,
                DecodeError::AlgorithmMismatch => VerifyError::AlgorithmMismatch,
                DecodeError::KeysUnavailable => VerifyError::KeysUnavailable,
                DecodeError::Rejected(why) => VerifyError::Rejected(why),
            })?;

        if now >= claims.exp + inner.leeway_secs {
            return Err(VerifyError::Expired);
        }
        if claims.nbf.is_some_and(|nbf| now + inner.leeway_secs < nbf) {
            return Err(VerifyError::NotYetValid);
        }
        for (name, value) in
            [("client_id", &claims.client_id), ("partner_id", &claims.partner_id), ("jti", &claims.jti)]
        {
            if value.is_empty() {
                return Err(VerifyError::MissingClaim(name));
            }
        }
        let principal = Arc::new(Principal {
            scopes: claims.scope.split(' ').filter(|s| !s.is_empty()).map(String::from).collect(),
            partner_id: claims.partner_id,
            client_id: claims.client_id,
            jti: claims.jti,
            exp: claims.exp,
            iat: claims.iat.unwrap_or(0),
        });
        if inner.caching {
            token_cache::front_insert(inner.id, token, &principal);
        }
        inner.tokens.insert(digest, principal.clone(), now);
        inner.verified.fetch_add(1, Ordering::Relaxed);
        Ok(principal)
    }

    /// The issuer's keys, shared with a [`crate::RevocationFollower`] (SETs are signed with the same keys).
    pub(crate) fn jwks(&self) -> Arc<JwksCache> {
        self.inner.jwks.clone()
    }

    pub(crate) fn clock(&self) -> Arc<dyn Clock> {
        self.inner.clock.clone()
    }

    pub fn stats(&self) -> VerifierStats {
        let inner = &*self.inner;
        let jwks = &inner.jwks.counters;
        VerifierStats {
            verified: inner.verified.load(Ordering::Relaxed),
            cache_hits: inner.cache_hits.load(Ordering::Relaxed),
            rejected: inner.rejected.load(Ordering::Relaxed),
            tokens_cached: inner.tokens.len(),
            jwks_fetches: jwks.fetches.load(Ordering::Relaxed),
            jwks_fetch_failures: jwks.failures.load(Ordering::Relaxed),
            serving_stale_jwks: jwks.serving_stale.load(Ordering::Relaxed),
        }
    }
}
