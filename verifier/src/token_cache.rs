//! Verified tokens by the SHA-256 of the token, until their `exp`: a token seen before costs a hash and a
//! lookup, not a signature verification. Bounded: when full, expired entries go first, then the oldest.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};

use crate::principal::Principal;

pub(crate) type TokenDigest = [u8; 32];

pub(crate) fn digest(token: &str) -> TokenDigest {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    digest.as_ref().try_into().expect("SHA-256 is 32 bytes")
}

pub(crate) struct TokenCache {
    capacity: usize,
    inner: RwLock<Entries>,
}

#[derive(Default)]
struct Entries {
    by_digest: HashMap<TokenDigest, Arc<Principal>>,
    /// Insertion order, for eviction; may name entries already gone (skipped, and compacted now and then).
    order: VecDeque<TokenDigest>,
}

impl TokenCache {
    pub fn new(capacity: usize) -> Self {
        TokenCache { capacity, inner: RwLock::default() }
    }

    pub fn get(&self, digest: &TokenDigest) -> Option<Arc<Principal>> {
        self.inner.read().expect("token cache lock").by_digest.get(digest).cloned()
    }

    pub fn remove(&self, digest: &TokenDigest) {
        self.inner.write().expect("token cache lock").by_digest.remove(digest);
    }

    /// `now_secs`: for dropping what has expired when the cache is full.
    pub fn insert(&self, digest: TokenDigest, principal: Arc<Principal>, now_secs: u64) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.inner.write().expect("token cache lock");
        let entries = &mut *entries;
        if entries.by_digest.contains_key(&digest) {
            return;
        }
        if entries.by_digest.len() >= self.capacity {
            entries.by_digest.retain(|_, principal| principal.exp > now_secs);
        }
        while entries.by_digest.len() >= self.capacity {
            match entries.order.pop_front() {
                Some(oldest) => entries.by_digest.remove(&oldest),
                None => break,
            };
        }
        if entries.order.len() >= 2 * self.capacity {
            let by_digest = &entries.by_digest;
            entries.order.retain(|digest| by_digest.contains_key(digest));
        }
        entries.by_digest.insert(digest, principal);
        entries.order.push_back(digest);
    }

    pub fn len(&self) -> usize {
        self.inner.read().expect("token cache lock").by_digest.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(jti: &str, exp: u64) -> Arc<Principal> {
        Arc::new(Principal {
            partner_id: "p".into(),
            client_id: "c".into(),
            scopes: vec![],
            jti: jti.into(),
            exp,
            iat: 0,
        })
    }

    #[test]
    fn stays_within_its_bound_dropping_the_expired_then_the_oldest() {
        let cache = TokenCache::new(3);
        for (n, exp) in [(0, 100), (1, 10), (2, 100)] {
            cache.insert(digest(&format!("t{n}")), principal(&format!("j{n}"), exp), 50);
        }
        cache.insert(digest("t3"), principal("j3", 100), 50);
        assert_eq!(cache.len(), 3);
        assert!(cache.get(&digest("t1")).is_none(), "the expired one went first");
        assert!(cache.get(&digest("t0")).is_some());
        cache.insert(digest("t4"), principal("j4", 100), 50);
        assert!(cache.get(&digest("t0")).is_none(), "then the oldest");
        for n in 5..1_000 {
            cache.insert(digest(&format!("t{n}")), principal("j", 100), 50);
        }
        assert_eq!(cache.len(), 3);
        assert!(cache.get(&digest("t999")).is_some());
        assert!(cache.inner.read().unwrap().order.len() <= 6, "the order queue is bounded too");
    }

    #[test]
    fn a_zero_capacity_caches_nothing() {
        let cache = TokenCache::new(0);
        cache.insert(digest("t"), principal("j", 100), 0);
        assert!(cache.get(&digest("t")).is_none());
    }
}
