//! The read model of the token path (ARCHITECTURE.md, "The read model and the change feed"): per client, a [`ClientSnapshot`] of everything a
//! token request, an introspection and an admin-token check need, loaded once and cached in memory.
//!
//! A warm cache answers without any database read or blocking-pool hop. The cache is kept true by the change
//! feed (`store::changes`): a change made by this instance is applied as soon as its transaction commits,
//! changes made by other instances or by `partnergate` commands arrive through the [`listener`] within a
//! second (see the README's "Caching and staleness"), and a lost listener connection empties the cache.

pub mod cache;
pub mod listener;
pub mod snapshot;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use cache::{Found, Generations};

pub use snapshot::{Barrier, ClientKeys, ClientSnapshot, SecretDigest, SecretState};

use crate::clock::SharedClock;
use crate::store::changes::{Change, ChangeSink};
use crate::store::{DbPool, StoreError};

/// At most this many clients' snapshots are cached; beyond it the least recently used go (see [`cache`]).
const MAX_CLIENTS: usize = 100_000;
/// At most this many "no such client" answers are cached, apart from the real clients: made-up ids cannot
/// evict a real client's snapshot.
const MAX_UNKNOWN: usize = 10_000;

/// How long a cache miss waits for a pooled connection.
const LOAD_WAIT: std::time::Duration = std::time::Duration::from_millis(800);

struct Entries {
    known: Generations<String, Arc<ClientSnapshot>>,
    unknown: Generations<String, ()>,
    /// Counts every applied change. A load that saw another generation at its start may have read data older
    /// than a change applied meanwhile: its result serves its own request but is not cached.
    generation: u64,
}

impl Default for Entries {
    fn default() -> Self {
        Entries { known: Generations::new(MAX_CLIENTS), unknown: Generations::new(MAX_UNKNOWN), generation: 0 }
    }
}

/// The cache's counts, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub clients: usize,
    pub unknown: usize,
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
}

pub struct ReadModel {
    pool: DbPool,
    clock: SharedClock,
    entries: RwLock<Entries>,
    counters: Counters,
}

impl ReadModel {
    pub fn new(pool: DbPool, clock: SharedClock) -> Arc<Self> {
        Arc::new(ReadModel { pool, clock, entries: RwLock::default(), counters: Counters::default() })
    }

    /// The client's snapshot, `None` if there is no such client. Loads it on the blocking pool on a miss.
    pub async fn client(&self, client_id: &str) -> Result<Option<Arc<ClientSnapshot>>, StoreError> {
        let (cached, generation) = self.lookup(client_id);
        if let Some(cached) = cached {
            self.counters.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(cached);
        }
        self.counters.misses.fetch_add(1, Ordering::Relaxed);
        let (pool, id, at) = (self.pool.clone(), client_id.to_string(), self.clock.now());
        // Well within `oauth::REQUEST_DEADLINE`, which the audit record of the failure shares.
        let loaded = tokio::task::spawn_blocking(move || snapshot::load(&mut *pool.get_timeout(LOAD_WAIT)?, &id, at))
            .await
            .map_err(|_| StoreError::Unavailable("the registry read was interrupted".into()))??
            .map(Arc::new);
        let mut entries = self.write();
        if entries.generation == generation {
            let evicted = match &loaded {
                Some(snapshot) => entries.known.insert(client_id.to_string(), snapshot.clone()),
                None => entries.unknown.insert(client_id.to_string(), ()),
            };
            self.counters.evictions.fetch_add(evicted as u64, Ordering::Relaxed);
        }
        Ok(loaded)
    }

    /// The client's snapshot if the cache holds an answer for it (`Some(None)`: known not to exist), without
    /// any database read.
    pub fn cached(&self, client_id: &str) -> Option<Option<Arc<ClientSnapshot>>> {
        self.lookup(client_id).0
    }

    /// [`cached`](Self::cached), and the generation of the cache it looked at.
    fn lookup(&self, client_id: &str) -> (Option<Option<Arc<ClientSnapshot>>>, u64) {
        {
            let entries = self.read();
            let generation = entries.generation;
            let known = entries.known.find(client_id);
            if let Found::Young(snapshot) = known {
                return (Some(Some(snapshot.clone())), generation);
            }
            match (known, entries.unknown.find(client_id)) {
                (_, Found::Young(())) => return (Some(None), generation),
                (Found::Missing, Found::Missing) => return (None, generation),
                _ => {}
            }
        }
        // Among the least recently used: move it up, under the write lock.
        let mut entries = self.write();
        let generation = entries.generation;
        let (known, evicted) = entries.known.promote(client_id);
        let (unknown, evicted_unknown) = entries.unknown.promote(client_id);
        self.counters.evictions.fetch_add((evicted + evicted_unknown) as u64, Ordering::Relaxed);
        let found = match (known, unknown) {
            (Some(snapshot), _) => Some(Some(snapshot)),
            (None, Some(())) => Some(None),
            (None, None) => None,
        };
        (found, generation)
    }

    pub fn stats(&self) -> CacheStats {
        let entries = self.read();
        CacheStats {
            clients: entries.known.len(),
            unknown: entries.unknown.len(),
            hits: self.counters.hits.load(Ordering::Relaxed),
            misses: self.counters.misses.load(Ordering::Relaxed),
            evictions: self.counters.evictions.load(Ordering::Relaxed),
        }
    }

    /// Drops everything cached (a lost change feed, or a change that touches every client).
    pub fn clear(&self) {
        let mut entries = self.write();
        entries.generation += 1;
        entries.known.clear();
        entries.unknown.clear();
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
                    entries.known.remove(id.as_str());
                    entries.unknown.remove(id.as_str());
                }
                Change::Partner(partner_id) => {
                    entries.known.retain(|_, snapshot| &snapshot.partner_id != partner_id);
                }
                Change::Catalog => {
                    entries.known.clear();
                    entries.unknown.clear();
                }
                // The key ring and the stream's long polls hear these; no client snapshot depends on them.
                Change::Keys | Change::SecurityEvents => {}
            }
        }
    }
}
