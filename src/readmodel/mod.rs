//! The read model of the token path (DESIGN.md section 6): per client, a [`ClientSnapshot`] of everything a
//! token request, an introspection and an admin-token check need, loaded once and cached in memory.
//!
//! A warm cache answers without any database read or blocking-pool hop. The cache is kept true by the change
//! feed (`store::changes`): a change made by this instance is applied as soon as its transaction commits,
//! changes made by other instances or by `partnergate` commands arrive through the [`listener`] within a
//! second (see the README's "Caching and staleness"), and a lost listener connection empties the cache.

pub mod listener;
pub mod snapshot;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

pub use snapshot::{Barrier, ClientSnapshot, SecretDigest, SecretState};

use crate::clock::SharedClock;
use crate::store::changes::{Change, ChangeSink};
use crate::store::{DbPool, StoreError};

/// Beyond this many cached client ids (unknown ones included, which anybody can make up) the cache starts over.
const MAX_ENTRIES: usize = 100_000;

/// How long a cache miss waits for a pooled connection.
const LOAD_WAIT: std::time::Duration = std::time::Duration::from_millis(800);

/// The cached snapshots. `None` caches "no such client".
#[derive(Default)]
struct Entries {
    by_client: HashMap<String, Option<Arc<ClientSnapshot>>>,
    /// Counts every applied change. A load that saw another generation at its start may have read data older
    /// than a change applied meanwhile: its result serves its own request but is not cached.
    generation: u64,
}

pub struct ReadModel {
    pool: DbPool,
    clock: SharedClock,
    entries: RwLock<Entries>,
}

impl ReadModel {
    pub fn new(pool: DbPool, clock: SharedClock) -> Arc<Self> {
        Arc::new(ReadModel { pool, clock, entries: RwLock::default() })
    }

    /// The client's snapshot, `None` if there is no such client. Loads it on the blocking pool on a miss.
    pub async fn client(&self, client_id: &str) -> Result<Option<Arc<ClientSnapshot>>, StoreError> {
        let generation = {
            let entries = self.read();
            if let Some(cached) = entries.by_client.get(client_id) {
                return Ok(cached.clone());
            }
            entries.generation
        };
        let (pool, id, at) = (self.pool.clone(), client_id.to_string(), self.clock.now());
        // Well within `oauth::REQUEST_DEADLINE`, which the audit record of the failure shares.
        let loaded = tokio::task::spawn_blocking(move || snapshot::load(&mut *pool.get_timeout(LOAD_WAIT)?, &id, at))
            .await
            .map_err(|_| StoreError::Unavailable("the registry read was interrupted".into()))??
            .map(Arc::new);
        let mut entries = self.write();
        if entries.generation == generation {
            if entries.by_client.len() >= MAX_ENTRIES {
                entries.by_client.clear();
            }
            entries.by_client.insert(client_id.to_string(), loaded.clone());
        }
        Ok(loaded)
    }

    /// The client's snapshot if the cache holds an answer for it (`Some(None)`: known not to exist), without
    /// any database read.
    pub fn cached(&self, client_id: &str) -> Option<Option<Arc<ClientSnapshot>>> {
        self.read().by_client.get(client_id).cloned()
    }

    /// Drops everything cached (a lost change feed, or a change that touches every client).
    pub fn clear(&self) {
        let mut entries = self.write();
        entries.generation += 1;
        entries.by_client.clear();
    }

    // A panic while holding the lock leaves a map that is still consistent (every update is a single call).
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Entries> {
        self.entries.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Entries> {
        self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ChangeSink for ReadModel {
    fn apply(&self, changes: &[Change]) {
        if changes.is_empty() {
            return;
        }
        let mut entries = self.write();
        entries.generation += 1;
        for change in changes {
            match change {
                Change::Client(id) => {
                    entries.by_client.remove(id);
                }
                Change::Partner(partner_id) => entries
                    .by_client
                    .retain(|_, cached| cached.as_ref().is_none_or(|snapshot| &snapshot.partner_id != partner_id)),
                Change::Catalog => entries.by_client.clear(),
                // The key ring hears these; no client snapshot depends on the keys.
                Change::Keys => {}
            }
        }
    }
}
