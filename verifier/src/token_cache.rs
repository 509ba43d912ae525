//! Verified tokens by the SHA-256 of the token, until their `exp`: a token seen before costs a hash and a
//! lookup, not a signature verification. Bounded: when full, expired entries go first, then the oldest.
//! In front of it, per thread, [`front_get`]/[`front_insert`]: a token this thread has answered before costs
//! an FxHash of it and a comparison, with no lock and no memory another thread writes.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};

use rustc_hash::FxBuildHasher;

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

/// Tokens per thread in the front cache; when full it is emptied (the shared cache still has them).
const FRONT_CAPACITY: usize = 512;

struct FrontEntry {
    /// Which [`crate::Verifier`] verified it: a thread may serve several, for other issuers or audiences.
    verifier: u64,
    /// This thread's own `Arc`, so that its count is not a cache line the other workers write too.
    principal: Arc<Principal>,
}

thread_local! {
    static FRONT: RefCell<HashMap<Box<str>, FrontEntry, FxBuildHasher>> = RefCell::default();
}

/// What this thread remembers of `token` for `verifier` (the caller still checks `exp`).
pub(crate) fn front_get(verifier: u64, token: &str) -> Option<Arc<Principal>> {
    FRONT.with_borrow(|front| {
        front.get(token).filter(|entry| entry.verifier == verifier).map(|entry| entry.principal.clone())
    })
}

pub(crate) fn front_insert(verifier: u64, token: &str, principal: &Principal) {
    FRONT.with_borrow_mut(|front| {
        if front.len() >= FRONT_CAPACITY {
            front.clear();
        }
        front.insert(token.into(), FrontEntry { verifier, principal: Arc::new(principal.clone()) });
    })
}

pub(crate) fn front_remove(token: &str) {
    FRONT.with_borrow_mut(|front| front.remove(token));
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
    fn the_front_answers_only_the_verifier_that_put_a_token_there_and_stays_bounded() {
        front_insert(1, "t", &principal("j", 100));
        assert_eq!(front_get(1, "t").map(|p| p.jti.clone()), Some("j".into()));
        assert!(front_get(2, "t").is_none(), "another verifier's token");
        assert!(front_get(1, "u").is_none());
        front_remove("t");
        assert!(front_get(1, "t").is_none());
        for n in 0..3 * FRONT_CAPACITY {
            front_insert(1, &format!("t{n}"), &principal("j", 100));
        }
        assert!(FRONT.with_borrow(HashMap::len) <= FRONT_CAPACITY);
    }

    #[test]
    fn a_zero_capacity_caches_nothing() {
        let cache = TokenCache::new(0);
        cache.insert(digest("t"), principal("j", 100), 0);
        assert!(cache.get(&digest("t")).is_none());
    }
}
