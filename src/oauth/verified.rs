//! Tokens whose signature this instance has already checked, by the SHA-256 of the token, so that a client
//! presenting the same token again and again (a revocation stream receiver polls with one token until it
//! expires) costs one signature check instead of one per request. Only the signature and the fixed claims are
//! remembered: the validity window is checked again on every hit, and the token's standing (revoked, client
//! disabled, partner suspended) is the caller's to judge on the read model each time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use super::verify::{self, Rejection};
use super::AccessTokenClaims;
use crate::keys::KeyRing;

/// The most tokens remembered; past it, expired ones are dropped, and if none is, everything is.
const CAPACITY: usize = 1024;

type TokenHash = [u8; 32];

#[derive(Default)]
pub struct VerifiedTokens {
    inner: Mutex<Verified>,
}

/// What was verified with one key ring: a reload (a key removed, say) starts afresh.
#[derive(Default)]
struct Verified {
    ring: Weak<KeyRing>,
    claims: HashMap<TokenHash, Arc<AccessTokenClaims>>,
}

impl VerifiedTokens {
    /// `verify::verify_signature` with `audience`, remembered per token, audience and key ring.
    pub fn verify(
        &self,
        keys: &Arc<KeyRing>,
        settings: &super::TokenSettings,
        token: &str,
        audience: &str,
        now: chrono::NaiveDateTime,
    ) -> Result<Arc<AccessTokenClaims>, Rejection> {
        let hash = token_hash(audience, token);
        if let Some(claims) = self.lookup(keys, &hash) {
            verify::check_validity(&claims, now)?;
            return Ok(claims);
        }
        let claims = Arc::new(verify::verify_signature(keys, settings, token, Some(audience), now)?);
        self.remember(keys, hash, claims.clone(), now);
        Ok(claims)
    }

    fn lookup(&self, keys: &Arc<KeyRing>, hash: &TokenHash) -> Option<Arc<AccessTokenClaims>> {
        let verified = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !Weak::ptr_eq(&verified.ring, &Arc::downgrade(keys)) {
            return None;
        }
        verified.claims.get(hash).cloned()
    }

    fn remember(
        &self,
        keys: &Arc<KeyRing>,
        hash: TokenHash,
        claims: Arc<AccessTokenClaims>,
        now: chrono::NaiveDateTime,
    ) {
        let mut verified = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !Weak::ptr_eq(&verified.ring, &Arc::downgrade(keys)) {
            verified.ring = Arc::downgrade(keys);
            verified.claims.clear();
        }
        if verified.claims.len() >= CAPACITY {
            verified.claims.retain(|_, claims| verify::check_validity(claims, now) != Err(Rejection::Expired));
            if verified.claims.len() >= CAPACITY {
                verified.claims.clear();
            }
        }
        verified.claims.insert(hash, claims);
    }
}

/// The audience is part of the key: a token verified for one audience says nothing about another.
fn token_hash(audience: &str, token: &str) -> TokenHash {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [audience, "\n", token] {
        context.update(part.as_bytes());
    }
    let digest = context.finish();
    digest.as_ref().try_into().expect("a SHA-256 digest is 32 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Algorithm, KeyState, SigningKey};
    use crate::oauth::Audience;
    use crate::oauth::TokenSettings;

    const NOW: i64 = 1_800_000_000;

    fn ring() -> Arc<KeyRing> {
        let key = SigningKey::from_pkcs8(&SigningKey::generate_pkcs8(Algorithm::ES256).unwrap()).unwrap();
        Arc::new(KeyRing::from_keys(vec![(key, KeyState::Active)]).unwrap())
    }

    fn settings() -> TokenSettings {
        TokenSettings {
            issuer: "https://issuer".into(),
            default_audience: "https://default".into(),
            admin_audience: "https://issuer/admin".into(),
            default_lifetime_secs: 600,
            max_lifetime_secs: 3600,
        }
    }

    fn token(ring: &KeyRing) -> String {
        ring.sign_jwt(&AccessTokenClaims {
            iss: "https://issuer".into(),
            sub: "pgc_a".into(),
            client_id: "pgc_a".into(),
            aud: Audience::One("https://issuer".into()),
            iat: NOW,
            nbf: NOW,
            exp: NOW + 600,
            jti: "j1".into(),
            scope: "authz.events.read".into(),
            partner_id: "operator".into(),
            secret_id: None,
        })
    }

    fn at(secs: i64) -> chrono::NaiveDateTime {
        chrono::DateTime::from_timestamp(secs, 0).unwrap().naive_utc()
    }

    #[test]
    fn a_token_is_verified_once_per_ring_and_expires_on_time() {
        let (verified, ring, settings) = (VerifiedTokens::default(), ring(), settings());
        let token = token(&ring);
        let first = verified.verify(&ring, &settings, &token, "https://issuer", at(NOW)).unwrap();
        let again = verified.verify(&ring, &settings, &token, "https://issuer", at(NOW + 1)).unwrap();
        assert!(Arc::ptr_eq(&first, &again), "the second presentation is answered from what was verified");

        let late = at(NOW + 600 + verify::LEEWAY_SECS as i64 + 1);
        assert_eq!(verified.verify(&ring, &settings, &token, "https://issuer", late), Err(Rejection::Expired));

        // Another ring (a reload that dropped the key): verified afresh, and refused.
        let other = self::ring();
        assert_eq!(verified.verify(&other, &settings, &token, "https://issuer", at(NOW)), Err(Rejection::UnknownKey));
    }

    #[test]
    fn refused_tokens_are_not_remembered() {
        let (verified, ring, settings) = (VerifiedTokens::default(), ring(), settings());
        let token = token(&ring);
        assert!(verified.verify(&ring, &settings, &token, "https://issuer", at(NOW)).is_ok());
        let wrong_audience = verified.verify(&ring, &settings, &token, "https://elsewhere", at(NOW));
        assert_eq!(wrong_audience, Err(Rejection::WrongAudience));
        let mut tampered = token.clone();
        tampered.pop();
        assert!(verified.verify(&ring, &settings, &tampered, "https://issuer", at(NOW)).is_err());
        assert!(verified.verify(&ring, &settings, &token, "https://issuer", at(NOW)).is_ok());
    }
}
