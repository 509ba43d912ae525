//! The registry service: one object that owns the pool, the sinks that hear of committed changes (this
//! instance's read model and key ring) and the key lifecycle. Every change to the registry goes through a
//! unit of work it opens ([`Registry::begin`], [`Registry::run`], [`Registry::run_blocking`]): the work gets a
//! [`Tx`], never a bare connection, and the changes it committed are applied to this instance's sinks before
//! the caller hears of the result, so that the next request here already sees them (other instances hear
//! through the change feed).

use std::sync::Arc;

use super::signing_keys::{self as stored, RotationReport};
use super::{Caller, RegistryError, RegistryResult};
use crate::keys::{Algorithm, KeyManager, KeyRecord, RotationSchedule};
use crate::store::changes::{ChangeSink, Sinks};
use crate::store::{DbPool, StoreError, Tx};

#[derive(Clone)]
pub struct Registry {
    pool: DbPool,
    sinks: Arc<dyn ChangeSink>,
    keys: Option<KeyManager>,
}

impl Registry {
    /// A registry on `pool` whose changes nobody on this process caches (the command line).
    pub fn new(pool: DbPool) -> Registry {
        Registry { pool, sinks: Arc::new(Sinks(Vec::new())), keys: None }
    }

    /// The same registry, applying committed changes to `sinks`.
    pub fn with_sinks(self, sinks: Arc<dyn ChangeSink>) -> Registry {
        Registry { sinks, ..self }
    }

    /// The same registry, managing the signing keys with `keys`.
    pub fn with_keys(self, keys: KeyManager) -> Registry {
        Registry { keys: Some(keys), ..self }
    }

    pub fn pool(&self) -> &DbPool {
        &self.pool
    }

    /// What hears of this instance's committed changes.
    pub fn sinks(&self) -> &Arc<dyn ChangeSink> {
        &self.sinks
    }

    /// What changing the signing keys needs, if this registry manages them.
    pub fn keys(&self) -> RegistryResult<&KeyManager> {
        self.keys.as_ref().ok_or_else(unmanaged)
    }

    /// A unit of work on a pooled connection (blocking): its committed changes are applied to this
    /// instance's sinks when it is dropped.
    pub fn begin(&self) -> Result<Tx, StoreError> {
        Ok(Tx::applying_to(self.pool.get()?, self.sinks.clone()))
    }

    /// Runs `work` in a unit of work, here (the command line, a blocking task), and applies what it committed.
    pub fn run_blocking<T>(&self, work: impl FnOnce(&mut Tx) -> RegistryResult<T>) -> RegistryResult<T> {
        let mut tx = self.begin()?;
        let result = work(&mut tx);
        // Applied here, off the async workers: a key change reloads the key ring from the database.
        drop(tx);
        result
    }

    /// Runs `work` in a unit of work on the blocking pool; [`RegistryError::Interrupted`] if the task did not
    /// complete (it panicked, or the runtime is shutting down).
    pub async fn run<T, F>(&self, work: F) -> RegistryResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx) -> RegistryResult<T> + Send + 'static,
    {
        let registry = self.clone();
        tokio::task::spawn_blocking(move || registry.run_blocking(work))
            .await
            .map_err(|_| RegistryError::Interrupted)?
    }

    /// Generates a signing key; it is published, not yet signing.
    pub async fn generate_key(&self, caller: Caller, alg: Algorithm) -> RegistryResult<KeyRecord> {
        let keys = self.keys.clone();
        self.run(move |tx| {
            let keys = managed(keys)?;
            stored::generate(tx, &caller, &keys.kek, alg, keys.clock.now())
        })
        .await
    }

    /// Makes a published key the signing key (`force`: before it has been published long enough).
    pub async fn activate_key(&self, caller: Caller, kid: String, force: bool) -> RegistryResult<KeyRecord> {
        let keys = self.keys.clone();
        self.run(move |tx| {
            let keys = managed(keys)?;
            stored::activate(tx, &caller, &keys.policy, &kid, force, keys.clock.now())
        })
        .await
    }

    /// Retires a key: it stays in the JWKS until its tokens expire.
    pub async fn retire_key(&self, caller: Caller, kid: String) -> RegistryResult<KeyRecord> {
        let keys = self.keys.clone();
        self.run(move |tx| stored::retire(tx, &caller, &kid, managed(keys)?.clock.now())).await
    }

    /// Removes the retired keys whose tokens have expired; their ids.
    pub async fn prune_keys(&self, caller: Caller) -> RegistryResult<Vec<String>> {
        let keys = self.keys.clone();
        self.run(move |tx| {
            let keys = managed(keys)?;
            stored::prune(tx, &caller, &keys.policy, keys.clock.now())
        })
        .await
    }

    /// One step of the safe rotation sequence.
    pub async fn rotate_keys(&self, caller: Caller, force: bool) -> RegistryResult<RotationReport> {
        let keys = self.keys.clone();
        self.run(move |tx| {
            let keys = managed(keys)?;
            stored::rotate(tx, &caller, &keys.kek, &keys.policy, force, keys.clock.now())
        })
        .await
    }

    /// One tick of the automatic rotation (blocking): whether this instance, as `holder`, holds the schedule's
    /// lease, and if so what it changed.
    pub fn key_schedule_step(
        &self,
        schedule: &RotationSchedule,
        holder: &str,
        tick: std::time::Duration,
    ) -> RegistryResult<bool> {
        let keys = self.keys()?.clone();
        self.run_blocking(|tx| {
            let now = keys.clock.now();
            if !crate::store::leases::hold_for_ticks(tx, crate::store::leases::KEY_SCHEDULE, holder, now, tick)? {
                return Ok(false);
            }
            let caller = Caller::system(&format!("key-schedule:{holder}"));
            stored::run_schedule(tx, &caller, &keys.kek, &keys.policy, schedule, now)
        })
    }
}

fn managed(keys: Option<KeyManager>) -> RegistryResult<KeyManager> {
    keys.ok_or_else(unmanaged)
}

fn unmanaged() -> RegistryError {
    RegistryError::Keys(crate::keys::KeyError::Kek("this registry does not manage the signing keys".into()))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::registry::partners::{self, NewPartner};
    use crate::store::changes::Change;

    #[derive(Default)]
    struct Heard(Mutex<Vec<Change>>);

    impl ChangeSink for Heard {
        fn apply(&self, changes: &[Change]) {
            self.0.lock().unwrap().extend_from_slice(changes);
        }
    }

    impl Heard {
        fn take(&self) -> Vec<Change> {
            std::mem::take(&mut *self.0.lock().unwrap())
        }
    }

    /// A registry on a fresh SQLite database, with a sink that keeps what it hears.
    fn listened_registry() -> (tempfile::TempDir, Registry, Arc<Heard>) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("service.db").display());
        let pool = crate::store::connect(&url, &Default::default()).unwrap();
        crate::store::run_migrations(&mut pool.get().unwrap()).unwrap();
        let heard = Arc::new(Heard::default());
        (dir, Registry::new(pool).with_sinks(heard.clone()), heard)
    }

    /// The sinks hear what a unit of work committed, once it has ended, and nothing that rolled back.
    #[test]
    fn a_unit_of_work_applies_what_it_committed_and_only_that() {
        let (_dir, registry, heard) = listened_registry();
        let caller = Caller::cli();

        let acme = NewPartner { id: "acme".into(), name: "Acme".into(), ..Default::default() };
        registry.run_blocking(|tx| partners::create(tx, &caller, &acme)).unwrap();
        assert_eq!(heard.take(), [Change::Partner("acme".into())]);

        let refused: RegistryResult<()> = registry.run_blocking(|tx| {
            crate::store::write_transaction(tx, |tx| {
                partners::set_suspended(tx, &caller, "acme", true)?;
                Err(RegistryError::Conflict("changed my mind".into()))
            })
        });
        assert!(matches!(refused, Err(RegistryError::Conflict(_))));
        assert!(heard.take().is_empty(), "a rolled-back change is not applied");
        assert!(!partners::get(&mut registry.begin().unwrap(), &caller, "acme").unwrap().suspended);

        let mut tx = registry.begin().unwrap();
        partners::set_suspended(&mut tx, &caller, "acme", true).unwrap();
        // A suspension is also a security event: the stream's receivers hear of it.
        let suspended = [Change::SecurityEvents, Change::Partner("acme".into())];
        assert_eq!(tx.published(), suspended);
        assert!(heard.take().is_empty(), "applied when the unit of work ends, not before");
        drop(tx);
        assert_eq!(heard.take(), suspended);
    }

    /// The async runner hands the work a unit of work on the blocking pool and applies its changes before
    /// the caller hears of the result.
    #[tokio::test]
    async fn the_async_runner_applies_before_it_answers() {
        let (_dir, registry, heard) = listened_registry();
        let acme = NewPartner { id: "acme".into(), name: "Acme".into(), ..Default::default() };
        let created = registry.run(move |tx| partners::create(tx, &Caller::cli(), &acme)).await.unwrap();
        assert_eq!(created.id, "acme");
        assert_eq!(heard.take(), [Change::Partner("acme".into())]);
        let missing = registry.run(|tx| partners::set_suspended(tx, &Caller::cli(), "nobody", true)).await;
        assert!(matches!(missing, Err(RegistryError::NotFound { .. })));
        assert!(heard.take().is_empty());
    }
}
