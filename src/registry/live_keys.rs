//! The key ring an instance signs and verifies with, swapped whole when the keys change: a token request
//! clones an `Arc` under a read lock and signs with that snapshot, so a reload never blocks it for longer than
//! the swap of a pointer.
//!
//! [`LiveKeys`] hears the change feed: on [`Change::Keys`] (or a catalog-wide change, which is also what a
//! lost feed connection or an unknown change kind becomes) it reloads the ring from the database. A reload
//! that fails keeps the current ring and marks it stale; [`LiveKeys::reload_if_stale`] retries. A reload that
//! fails because a stored key does not open (stored under another key-encryption key) is also a fact that
//! readiness reports ([`LiveKeys::unusable`]): the ring may be signing with a key the database has retired.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use super::signing_keys as stored;
use super::{RegistryError, RegistryResult};
use crate::keys::kek::KeyEncryptionKey;
use crate::keys::KeyRing;
use crate::store::changes::{Change, ChangeSink};
use crate::store::DbPool;

pub struct LiveKeys {
    current: RwLock<Arc<KeyRing>>,
    source: Option<(DbPool, Arc<KeyEncryptionKey>)>,
    stale: AtomicBool,
    /// Why the last reload could not open the stored keys; `None` once one succeeds.
    unusable: Mutex<Option<String>>,
}

impl LiveKeys {
    /// A ring reloaded from the database whenever the keys change.
    pub fn stored(pool: DbPool, kek: Arc<KeyEncryptionKey>) -> RegistryResult<Arc<Self>> {
        let ring = stored::load_ring(&mut *pool.get()?, &kek)?;
        Ok(Arc::new(LiveKeys {
            current: RwLock::new(Arc::new(ring)),
            source: Some((pool, kek)),
            stale: false.into(),
            unusable: Mutex::default(),
        }))
    }

    /// A ring that never changes (tests, tools).
    pub fn fixed(ring: KeyRing) -> Arc<Self> {
        Arc::new(LiveKeys {
            current: RwLock::new(Arc::new(ring)),
            source: None,
            stale: false.into(),
            unusable: Mutex::default(),
        })
    }

    /// The ring to sign or verify with now.
    pub fn current(&self) -> Arc<KeyRing> {
        self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Reads the keys again (blocking: call it off the async workers).
    pub fn reload(&self) -> RegistryResult<()> {
        let Some((pool, kek)) = &self.source else { return Ok(()) };
        match pool.get().map_err(Into::into).and_then(|mut conn| stored::load_ring(&mut conn, kek)) {
            Ok(ring) => {
                let active = ring.active().kid().to_string();
                let previous = std::mem::replace(
                    &mut *self.current.write().unwrap_or_else(|poisoned| poisoned.into_inner()),
                    Arc::new(ring),
                );
                self.stale.store(false, Ordering::SeqCst);
                *self.unusable.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
                if previous.active().kid() != active {
                    log::info!("signing keys reloaded: {active} signs now (was {})", previous.active().kid());
                }
                Ok(())
            }
            Err(err) => {
                self.stale.store(true, Ordering::SeqCst);
                // A database that does not answer is readiness's own check; keys that do not open are ours.
                if let RegistryError::Keys(keys) = &err {
                    *self.unusable.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(keys.to_string());
                }
                log::warn!("cannot reload the signing keys (the current ones stay in use): {err}");
                Err(err)
            }
        }
    }

    /// Why this instance cannot sign with the database's keys: the last reload found a stored key that does
    /// not open with this instance's key-encryption key (or is damaged), so the ring in use may not hold the
    /// active key. `None` when the last reload succeeded.
    pub fn unusable(&self) -> Option<String> {
        self.unusable.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Retries a reload that failed.
    pub fn reload_if_stale(&self) {
        if self.stale.load(Ordering::SeqCst) {
            let _ = self.reload();
        }
    }
}

impl ChangeSink for LiveKeys {
    fn apply(&self, changes: &[Change]) {
        if changes.iter().any(|c| matches!(c, Change::Keys | Change::Catalog)) {
            let _ = self.reload();
        }
    }
}
