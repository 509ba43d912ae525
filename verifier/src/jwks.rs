//! The issuer's signing keys: cached for the `max-age` of the JWKS response, refreshed in the background when
//! stale, refreshed at once (one fetch however many requests wait, at most once per minimum interval) for an
//! unknown `kid`, and kept as they were while the issuer cannot be reached.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures_util::future::{BoxFuture, FutureExt, Shared};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

use crate::clock::Clock;
use crate::discovery::Discovery;
use crate::error::FetchError;

/// One usable key and the algorithms it may verify: from the JWK, never from a token alone.
pub(crate) struct Key {
    pub decoding: DecodingKey,
    pub algorithms: Vec<Algorithm>,
}

#[derive(Default)]
pub(crate) struct KeySet {
    keys: HashMap<String, Key>,
}

impl KeySet {
    pub fn from_jwks(set: &JwkSet) -> Self {
        let keys = set
            .keys
            .iter()
            .filter(|jwk| !matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)))
            .filter_map(|jwk| {
                let kid = jwk.common.key_id.clone()?;
                let algorithms = algorithms_of(jwk);
                let decoding = DecodingKey::from_jwk(jwk).ok()?;
                (!algorithms.is_empty()).then_some((kid, Key { decoding, algorithms }))
            })
            .collect();
        KeySet { keys }
    }

    pub fn get(&self, kid: &str) -> Option<&Key> {
        self.keys.get(kid)
    }
}

/// The JWK's `alg`, or for a key without one, what its type and curve allow (an RSA key without `alg`: the
/// RSA algorithms only, so a token still cannot pick HMAC or another family).
fn algorithms_of(jwk: &Jwk) -> Vec<Algorithm> {
    use Algorithm::*;
    if let Some(alg) = jwk.common.key_algorithm {
        let alg = match alg {
            KeyAlgorithm::ES256 => ES256,
            KeyAlgorithm::ES384 => ES384,
            KeyAlgorithm::RS256 => RS256,
            KeyAlgorithm::RS384 => RS384,
            KeyAlgorithm::RS512 => RS512,
            KeyAlgorithm::PS256 => PS256,
            KeyAlgorithm::PS384 => PS384,
            KeyAlgorithm::PS512 => PS512,
            KeyAlgorithm::EdDSA => EdDSA,
            // Symmetric or encryption algorithms have no place in a public JWKS.
            _ => return Vec::new(),
        };
        return vec![alg];
    }
    match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => vec![ES256],
            EllipticCurve::P384 => vec![ES384],
            _ => Vec::new(),
        },
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => vec![EdDSA],
        AlgorithmParameters::RSA(_) => vec![RS256, RS384, RS512, PS256, PS384, PS512],
        _ => Vec::new(),
    }
}

/// Why [`JwksCache::decode`] did not decode a JWS.
#[derive(Debug)]
pub(crate) enum DecodeError {
    /// Not a JWS, or an unsigned one.
    Malformed,
    /// The `typ` is not the one expected.
    WrongType,
    NoKeyId,
    UnknownKey,
    AlgorithmMismatch,
    /// No key known and the issuer unreachable.
    KeysUnavailable,
    /// Signature, `iss`, `aud` or a claim's shape, as `jsonwebtoken` reports it.
    Rejected(String),
}

/// Whether a JOSE `typ` is `expected` or `application/<expected>`, compared without case (RFC 7515 4.1.9).
fn is_type(typ: Option<&str>, expected: &str) -> bool {
    let typ = typ.unwrap_or("");
    let typ = typ.get(..12).filter(|p| p.eq_ignore_ascii_case("application/")).map_or(typ, |_| &typ[12..]);
    typ.eq_ignore_ascii_case(expected)
}

/// How the cache behaves.
#[derive(Debug, Clone)]
pub struct JwksSettings {
    /// At most one fetch per this interval (an unknown `kid`, a failing issuer).
    pub min_refresh_interval: Duration,
    /// When the response has no `max-age`.
    pub default_max_age: Duration,
    /// A `max-age` above this is cut to it, so that a new key is found within this time anyway.
    pub max_max_age: Duration,
}

impl Default for JwksSettings {
    fn default() -> Self {
        JwksSettings {
            min_refresh_interval: Duration::from_secs(5),
            default_max_age: Duration::from_secs(300),
            max_max_age: Duration::from_secs(3_600),
        }
    }
}

#[derive(Default)]
struct Snapshot {
    keys: Option<Arc<KeySet>>,
    /// When the keys stop being fresh (clock time).
    fresh_until: Duration,
}

type Refresh = Shared<BoxFuture<'static, Result<Arc<KeySet>, FetchError>>>;

/// Counters of the cache, for a metric or a health check.
#[derive(Debug, Default)]
pub(crate) struct JwksCounters {
    pub fetches: AtomicU64,
    pub failures: AtomicU64,
    /// The last fetch failed and the keys served are older than their max-age.
    pub serving_stale: AtomicBool,
}

pub(crate) struct JwksCache {
    discovery: Arc<Discovery>,
    clock: Arc<dyn Clock>,
    settings: JwksSettings,
    snapshot: RwLock<Snapshot>,
    /// The refresh under way, if any, and when the last one started. Held only to look or to start one.
    refresh: Mutex<(Option<Refresh>, Option<Duration>)>,
    pub counters: JwksCounters,
}

impl JwksCache {
    pub fn new(discovery: Arc<Discovery>, clock: Arc<dyn Clock>, settings: JwksSettings) -> Arc<Self> {
        Arc::new(JwksCache {
            discovery,
            clock,
            settings,
            snapshot: RwLock::default(),
            refresh: Mutex::new((None, None)),
            counters: JwksCounters::default(),
        })
    }

    /// The key set that holds `kid`: the cached one if it does (refreshed in the background once stale),
    /// else a fresh one if a fetch is allowed now (`Ok(None)`: the `kid` is unknown).
    pub async fn keys_for(self: &Arc<Self>, kid: &str) -> Result<Option<Arc<KeySet>>, FetchError> {
        let now = self.clock.now();
        let (cached, stale) = {
            let snapshot = self.snapshot.read().expect("jwks lock");
            (snapshot.keys.clone(), now >= snapshot.fresh_until)
        };
        if let Some(keys) = cached.as_ref().filter(|keys| keys.get(kid).is_some()) {
            if stale {
                if let Some(refresh) = self.start_or_join(now) {
                    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                        runtime.spawn(refresh);
                    }
                }
            }
            return Ok(Some(keys.clone()));
        }
        match self.start_or_join(now) {
            Some(refresh) => match refresh.await {
                Ok(keys) => Ok(keys.get(kid).is_some().then_some(keys)),
                // Unreachable issuer: the last good keys, if any, still answer (without this kid).
                Err(err) if cached.is_none() => Err(err),
                Err(_) => Ok(None),
            },
            None if cached.is_none() => Err(FetchError::TooSoon),
            None => Ok(None),
        }
    }

    /// Decodes a JWS of type `typ` signed by one of the issuer's keys: the key named by its `kid`, the
    /// algorithm from the JWK (never from the token alone), then `validation` (given without algorithms).
    pub async fn decode<T: serde::de::DeserializeOwned>(
        self: &Arc<Self>,
        token: &str,
        typ: &str,
        validation: &jsonwebtoken::Validation,
    ) -> Result<T, DecodeError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| DecodeError::Malformed)?;
        if !is_type(header.typ.as_deref(), typ) {
            return Err(DecodeError::WrongType);
        }
        let kid = header.kid.as_deref().ok_or(DecodeError::NoKeyId)?;
        let keys = match self.keys_for(kid).await {
            Ok(Some(keys)) => keys,
            Ok(None) => return Err(DecodeError::UnknownKey),
            Err(_) => return Err(DecodeError::KeysUnavailable),
        };
        let key = keys.get(kid).ok_or(DecodeError::UnknownKey)?;
        if !key.algorithms.contains(&header.alg) {
            return Err(DecodeError::AlgorithmMismatch);
        }
        let mut validation = validation.clone();
        validation.algorithms = vec![header.alg];
        jsonwebtoken::decode::<T>(token, &key.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|err| DecodeError::Rejected(err.to_string()))
    }

    /// The refresh under way, or a new one if the minimum interval since the last has passed.
    fn start_or_join(self: &Arc<Self>, now: Duration) -> Option<Refresh> {
        let mut refresh = self.refresh.lock().expect("refresh lock");
        if let Some(running) = &refresh.0 {
            return Some(running.clone());
        }
        if refresh.1.is_some_and(|last| now < last + self.settings.min_refresh_interval) {
            return None;
        }
        let this = self.clone();
        let future: BoxFuture<'static, _> = Box::pin(async move {
            let result = this.fetch().await;
            this.refresh.lock().expect("refresh lock").0 = None;
            result
        });
        let shared = future.shared();
        *refresh = (Some(shared.clone()), Some(now));
        Some(shared)
    }

    async fn fetch(&self) -> Result<Arc<KeySet>, FetchError> {
        self.counters.fetches.fetch_add(1, Ordering::Relaxed);
        match self.download().await {
            Ok((set, max_age)) => {
                let keys = Arc::new(KeySet::from_jwks(&set));
                let max_age = max_age
                    .unwrap_or(self.settings.default_max_age)
                    .min(self.settings.max_max_age)
                    .max(self.settings.min_refresh_interval);
                let mut snapshot = self.snapshot.write().expect("jwks lock");
                *snapshot = Snapshot { keys: Some(keys.clone()), fresh_until: self.clock.now() + max_age };
                if self.counters.serving_stale.swap(false, Ordering::Relaxed) {
                    log::info!("the issuer's JWKS is reachable again");
                }
                Ok(keys)
            }
            Err(err) => {
                self.counters.failures.fetch_add(1, Ordering::Relaxed);
                let have_keys = self.snapshot.read().expect("jwks lock").keys.is_some();
                if have_keys {
                    self.counters.serving_stale.store(true, Ordering::Relaxed);
                    log::warn!("fetching the issuer's JWKS failed ({err}); keeping the last good key set");
                } else {
                    log::warn!("fetching the issuer's JWKS failed ({err}); no keys known yet");
                }
                Err(err)
            }
        }
    }

    async fn download(&self) -> Result<(JwkSet, Option<Duration>), FetchError> {
        let metadata = self.discovery.metadata().await?;
        let response = self.discovery.http().get(&metadata.jwks_uri).send().await?;
        if !response.status().is_success() {
            return Err(FetchError::Status(response.status().as_u16()));
        }
        let max_age = response
            .headers()
            .get_all(reqwest::header::CACHE_CONTROL)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find_map(max_age_of);
        Ok((response.json().await?, max_age))
    }
}

/// `max-age` of a `Cache-Control` value (`no-store`/`no-cache`: zero, which the minimum interval raises).
fn max_age_of(cache_control: &str) -> Option<Duration> {
    cache_control.split(',').map(str::trim).find_map(|directive| {
        if directive.eq_ignore_ascii_case("no-store") || directive.eq_ignore_ascii_case("no-cache") {
            return Some(Duration::ZERO);
        }
        let (name, value) = directive.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("max-age")
            .then(|| value.trim().trim_matches('"').parse().ok())?
            .map(Duration::from_secs)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_max_age() {
        assert_eq!(max_age_of("public, max-age=300"), Some(Duration::from_secs(300)));
        assert_eq!(max_age_of("Max-Age=\"7\""), Some(Duration::from_secs(7)));
        assert_eq!(max_age_of("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age_of("public"), None);
        assert_eq!(max_age_of("max-age=abc"), None);
    }
}
