//! The key ring an instance signs and verifies with, swapped whole when the keys change: a token request
//! clones an `Arc` under a read lock and signs with that snapshot, so a reload never blocks it for longer than
//! the swap of a pointer.
//!
//! [`LiveKeys`] hears the change feed: on [`Change::Keys`] (or a catalog-wide change, which is also what a
//! lost feed connection or an unknown change kind becomes) it reloads the ring from the database. A reload
//! that fails keeps the current ring and marks it stale; [`LiveKeys::reload_if_stale`] retries.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use super::kek::KeyEncryptionKey;
use super::{stored, KeyRing};
use crate::registry::RegistryResult;
use crate::store::changes::{Change, ChangeSink};
use crate::store::DbPool;

pub struct LiveKeys {
    current: RwLock<Arc<KeyRing>>,
    source: Option<(DbPool, Arc<KeyEncryptionKey>)>,
    stale: AtomicBool,
}

impl LiveKeys {
    /// A ring reloaded from the database whenever the keys change.
    pub fn stored(pool: DbPool, kek: Arc<KeyEncryptionKey>) -> RegistryResult<Arc<Self>> {
        let ring = stored::load_ring(&mut *pool.get()?, &kek)?;
        Ok(Arc::new(LiveKeys { current: RwLock::new(Arc::new(ring)), source: Some((pool, kek)), stale: false.into() }))
    }

    /// A ring that never changes (tests, tools).
    pub fn fixed(ring: KeyRing) -> Arc<Self> {
        Arc::new(LiveKeys { current: RwLock::new(Arc::new(ring)), source: None, stale: false.into() })
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
                if previous.active().kid() != active {
                    log::info!("signing keys reloaded: {active} signs now (was {})", previous.active().kid());
                }
                Ok(())
            }
            Err(err) => {
                self.stale.store(true, Ordering::SeqCst);
                log::warn!("cannot reload the signing keys (the current ones stay in use): {err}");
                Err(err)
            }
        }
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
