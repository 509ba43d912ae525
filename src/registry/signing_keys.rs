//! Signing keys in the database, shared by every instance: their states and dates, the public JWK, and the
//! private key sealed under the key-encryption key ([`crate::keys::kek`]). Every change runs in one transaction that
//! also records its audit event and publishes [`Change::Keys`] on the change feed, so that every instance
//! reloads its key ring. On PostgreSQL each change first locks the table, so that two instances deciding at
//! once (two rotations, two first starts) take turns; SQLite's `BEGIN IMMEDIATE` does the same.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

use super::{Caller, RegistryError, RegistryResult};
use crate::audit::{AuditEvent, Outcome};
use crate::keys::kek::KeyEncryptionKey;
use crate::keys::policy::{self, KeyPolicy, KeyRecord, KeyState, RotationSchedule, RuleError, Step};
use crate::keys::{Algorithm, KeyError, KeyRing, PemKey, SigningKey};
use crate::store::changes::Change;
use crate::store::schema::signing_keys;
use crate::store::{DbConnection, StoreError, Tx};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = signing_keys)]
struct SigningKeyRow {
    kid: String,
    alg: String,
    public_jwk: String,
    sealed_private_key: Vec<u8>,
    nonce: Vec<u8>,
    state: String,
    published_at: NaiveDateTime,
    activated_at: Option<NaiveDateTime>,
    retired_at: Option<NaiveDateTime>,
    removed_at: Option<NaiveDateTime>,
}

impl SigningKeyRow {
    fn record(&self) -> Result<KeyRecord, KeyError> {
        let damaged = |message: &str| KeyError::Stored { kid: self.kid.clone(), message: message.to_string() };
        Ok(KeyRecord {
            kid: self.kid.clone(),
            alg: self.alg.parse().map_err(|_| damaged("unknown algorithm"))?,
            state: KeyState::parse(&self.state).ok_or_else(|| damaged("unknown state"))?,
            published_at: self.published_at,
            activated_at: self.activated_at,
            retired_at: self.retired_at,
            removed_at: self.removed_at,
        })
    }
}

fn rule(err: RuleError) -> RegistryError {
    RegistryError::Conflict(err.to_string())
}

fn rows(conn: &mut DbConnection) -> Result<Vec<SigningKeyRow>, StoreError> {
    Ok(signing_keys::table
        .select(SigningKeyRow::as_select())
        .order((signing_keys::published_at, signing_keys::kid))
        .load(conn)?)
}

/// Every key's state and dates, oldest first (removed ones too: their dates stay on record).
pub fn records(conn: &mut DbConnection) -> RegistryResult<Vec<KeyRecord>> {
    rows(conn)?.iter().map(|row| row.record().map_err(RegistryError::from)).collect()
}

/// The ring of every key that is not removed, private keys opened with `kek`.
pub fn load_ring(conn: &mut DbConnection, kek: &KeyEncryptionKey) -> RegistryResult<KeyRing> {
    let mut keys = Vec::new();
    let mut active_since = None;
    for row in rows(conn)? {
        let record = row.record()?;
        if record.state == KeyState::Removed {
            continue;
        }
        if record.state == KeyState::Active {
            // A key active from the start (the first one) has no activation date: it signs since publication.
            active_since = Some(record.activated_at.unwrap_or(record.published_at));
        }
        let der = kek.open(&row.kid, &row.nonce, &row.sealed_private_key)?;
        let key = SigningKey::from_pkcs8(&der).map_err(|message| KeyError::Stored { kid: row.kid.clone(), message })?;
        if key.kid() != row.kid {
            return Err(
                KeyError::Stored { kid: row.kid, message: "the private key does not match its kid".into() }.into()
            );
        }
        keys.push((key, record.state));
    }
    let ring = KeyRing::from_keys(keys)?;
    Ok(match active_since {
        Some(since) => ring.with_active_since(since),
        None => ring,
    })
}

/// One key-changing transaction: the table locked on PostgreSQL (SQLite's write transaction already is).
fn key_transaction<T>(conn: &mut Tx, work: impl FnOnce(&mut Tx) -> RegistryResult<T>) -> RegistryResult<T> {
    crate::store::write_transaction(conn, |conn| {
        if let DbConnection::Postgresql(pg) = conn.db() {
            diesel::sql_query("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE").execute(pg)?;
        }
        work(conn)
    })
}

fn find(conn: &mut DbConnection, kid: &str) -> RegistryResult<KeyRecord> {
    crate::registry::validate::lookup("signing key", kid, crate::registry::validate::is_key)?;
    let row = signing_keys::table
        .find(kid)
        .select(SigningKeyRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| crate::registry::not_found("signing key", kid))?;
    Ok(row.record()?)
}

fn audit(
    conn: &mut Tx,
    caller: &Caller,
    event_type: &'static str,
    now: NaiveDateTime,
    details: serde_json::Value,
) -> RegistryResult<()> {
    let event = AuditEvent::new(event_type, Outcome::Success, caller.meta.clone(), now);
    Ok(caller.audit_change(conn, event, Change::Keys, details)?)
}

fn has_active(conn: &mut DbConnection) -> RegistryResult<bool> {
    let count: i64 = signing_keys::table.filter(signing_keys::state.eq("active")).count().get_result(conn)?;
    Ok(count > 0)
}

/// Refuses a KEK that does not open every stored key: a key sealed under it is one that the instances (which
/// hold the KEK the stored keys open with) could not load, and once active they would keep signing with the
/// key it retired and fail at their next start.
fn check_opens_stored(conn: &mut DbConnection, kek: &KeyEncryptionKey) -> RegistryResult<()> {
    for row in rows(conn)? {
        if row.state != KeyState::Removed.as_str() {
            kek.open(&row.kid, &row.nonce, &row.sealed_private_key).map_err(|err| {
                KeyError::Kek(format!("refusing to store a key that the instances could not open: {err}"))
            })?;
        }
    }
    Ok(())
}

/// Stores `der` sealed (under a KEK that opens the stored keys); active only when nothing signs yet.
fn insert(
    conn: &mut DbConnection,
    kek: &KeyEncryptionKey,
    der: &[u8],
    key: &SigningKey,
    state: KeyState,
    now: NaiveDateTime,
) -> RegistryResult<KeyRecord> {
    check_opens_stored(conn, kek)?;
    let (nonce, sealed) = kek.seal(key.kid(), der)?;
    let row = SigningKeyRow {
        kid: key.kid().to_string(),
        alg: key.alg().as_str().to_string(),
        public_jwk: serde_json::to_string(key.jwk()).expect("a JWK serializes"),
        sealed_private_key: sealed,
        nonce,
        state: state.as_str().to_string(),
        published_at: now,
        activated_at: (state == KeyState::Active).then_some(now),
        retired_at: None,
        removed_at: None,
    };
    diesel::insert_into(signing_keys::table).values(&row).execute(conn)?;
    Ok(row.record()?)
}

/// Stores a key generated for a rotation as published (not yet signing), and audits it.
fn publish_generated(
    conn: &mut Tx,
    caller: &Caller,
    kek: &KeyEncryptionKey,
    (der, key): (&[u8], &SigningKey),
    now: NaiveDateTime,
) -> RegistryResult<KeyRecord> {
    let record = insert(conn, kek, der, key, KeyState::Published, now)?;
    audit(conn, caller, "key.generate", now, json!({"kid": record.kid, "alg": record.alg, "state": "published"}))?;
    Ok(record)
}

fn generated(alg: Algorithm) -> RegistryResult<(Vec<u8>, SigningKey)> {
    let der = SigningKey::generate_pkcs8(alg).map_err(KeyError::Generation)?;
    let key = SigningKey::from_pkcs8(&der).map_err(KeyError::Generation)?;
    Ok((der, key))
}

/// Generates a key and publishes it. When no key signs yet (nothing has been published, so no verifier can be
/// caught out) it becomes the active key at once.
pub fn generate(
    conn: &mut Tx,
    caller: &Caller,
    kek: &KeyEncryptionKey,
    alg: Algorithm,
    now: NaiveDateTime,
) -> RegistryResult<KeyRecord> {
    caller.require_operator("signing keys")?;
    let (der, key) = generated(alg)?;
    key_transaction(conn, |conn| {
        let state = if has_active(conn)? { KeyState::Published } else { KeyState::Active };
        let record = insert(conn, kek, &der, &key, state, now)?;
        audit(conn, caller, "key.generate", now, json!({"kid": record.kid, "alg": alg, "state": state}))?;
        Ok(record)
    })
}

/// Imports PEM keys (skipping kids already stored) as published keys; when no key signs yet, the one the
/// directory marks active signs.
pub fn import(
    conn: &mut Tx,
    caller: &Caller,
    kek: &KeyEncryptionKey,
    keys: &[PemKey],
    now: NaiveDateTime,
) -> RegistryResult<Vec<KeyRecord>> {
    caller.require_operator("signing keys")?;
    key_transaction(conn, |conn| import_in(conn, caller, kek, keys, now))
}

fn import_in(
    conn: &mut Tx,
    caller: &Caller,
    kek: &KeyEncryptionKey,
    keys: &[PemKey],
    now: NaiveDateTime,
) -> RegistryResult<Vec<KeyRecord>> {
    let activate = !has_active(conn)?;
    let mut imported = Vec::new();
    for pem in keys {
        let exists: i64 = signing_keys::table.find(pem.key.kid()).count().get_result(conn.db())?;
        if exists > 0 {
            continue;
        }
        let state = if activate && pem.active { KeyState::Active } else { KeyState::Published };
        let record = insert(conn, kek, &pem.der, &pem.key, state, now)?;
        let file = pem.path.file_name().map(|n| n.to_string_lossy().into_owned());
        audit(
            conn,
            caller,
            "key.import",
            now,
            json!({"kid": record.kid, "alg": record.alg, "state": state, "file": file}),
        )?;
        imported.push(record);
    }
    Ok(imported)
}

/// At a server's start: when the database holds no key at all, imports the keys directory's keys (the one it
/// marks active signs) or, without any, generates an active ES256 key. Returns what it created.
pub fn initialize(
    conn: &mut Tx,
    kek: &KeyEncryptionKey,
    directory: &[PemKey],
    now: NaiveDateTime,
) -> RegistryResult<Vec<KeyRecord>> {
    let caller = Caller::system("serve");
    key_transaction(conn, |conn| {
        let stored: i64 = signing_keys::table.count().get_result(conn.db())?;
        if stored > 0 {
            return Ok(Vec::new());
        }
        if !directory.is_empty() {
            return import_in(conn, &caller, kek, directory, now);
        }
        let (der, key) = generated(Algorithm::ES256)?;
        let record = insert(conn, kek, &der, &key, KeyState::Active, now)?;
        audit(conn, &caller, "key.generate", now, json!({"kid": record.kid, "alg": record.alg, "state": "active"}))?;
        Ok(vec![record])
    })
}

/// Makes a published key the signing key; the active one retires in the same transaction. Refused for a key
/// published less than the policy's bound, unless forced.
pub fn activate(
    conn: &mut Tx,
    caller: &Caller,
    policy: &KeyPolicy,
    kid: &str,
    force: bool,
    now: NaiveDateTime,
) -> RegistryResult<KeyRecord> {
    caller.require_operator("signing keys")?;
    key_transaction(conn, |conn| activate_in(conn, caller, policy, kid, force, now))
}

fn activate_in(
    conn: &mut Tx,
    caller: &Caller,
    policy: &KeyPolicy,
    kid: &str,
    force: bool,
    now: NaiveDateTime,
) -> RegistryResult<KeyRecord> {
    let key = find(conn, kid)?;
    policy::check_activation(policy, &key, force, now).map_err(rule)?;
    let previous: Option<String> = signing_keys::table
        .filter(signing_keys::state.eq("active"))
        .select(signing_keys::kid)
        .first(conn.db())
        .optional()?;
    diesel::update(signing_keys::table.filter(signing_keys::state.eq("active")))
        .set((signing_keys::state.eq("retired"), signing_keys::retired_at.eq(Some(now))))
        .execute(conn.db())?;
    diesel::update(signing_keys::table.find(kid))
        .set((signing_keys::state.eq("active"), signing_keys::activated_at.eq(Some(now))))
        .execute(conn.db())?;
    let forced = force && now < policy.ready_at(&key);
    audit(conn, caller, "key.activate", now, json!({"kid": kid, "retired": previous, "forced": forced}))?;
    find(conn, kid)
}

/// Retires a published key (it never signed). The active key retires only by another's activation.
pub fn retire(conn: &mut Tx, caller: &Caller, kid: &str, now: NaiveDateTime) -> RegistryResult<KeyRecord> {
    caller.require_operator("signing keys")?;
    key_transaction(conn, |conn| {
        let key = find(conn, kid)?;
        policy::check_retirement(&key).map_err(rule)?;
        diesel::update(signing_keys::table.find(kid))
            .set((signing_keys::state.eq("retired"), signing_keys::retired_at.eq(Some(now))))
            .execute(conn.db())?;
        audit(conn, caller, "key.retire", now, json!({"kid": kid}))?;
        find(conn, kid)
    })
}

/// Removes the retired keys whose tokens have all expired: out of the JWKS, private key erased.
pub fn prune(conn: &mut Tx, caller: &Caller, policy: &KeyPolicy, now: NaiveDateTime) -> RegistryResult<Vec<String>> {
    caller.require_operator("signing keys")?;
    key_transaction(conn, |conn| {
        let keys = records(conn)?;
        let due: Vec<String> = policy::due_for_removal(policy, &keys, now).into_iter().map(|k| k.kid.clone()).collect();
        remove(conn, caller, &due, now)?;
        Ok(due)
    })
}

fn remove(conn: &mut Tx, caller: &Caller, kids: &[String], now: NaiveDateTime) -> RegistryResult<()> {
    for kid in kids {
        diesel::update(signing_keys::table.find(kid).filter(signing_keys::state.eq("retired")))
            .set((
                signing_keys::state.eq("removed"),
                signing_keys::removed_at.eq(Some(now)),
                signing_keys::sealed_private_key.eq(Vec::<u8>::new()),
                signing_keys::nonce.eq(Vec::<u8>::new()),
            ))
            .execute(conn.db())?;
        audit(conn, caller, "key.remove", now, json!({"kid": kid}))?;
    }
    Ok(())
}

/// What one `keys rotate` did, and what is left to do.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RotationReport {
    pub removed: Vec<String>,
    pub published: Option<KeyRecord>,
    pub activated: Option<KeyRecord>,
    /// The published key that waits to be ready, and from when it may sign (run `keys rotate` again then).
    pub waiting: Option<KeyRecord>,
    #[serde(with = "crate::store::utc::option")]
    pub ready_at: Option<NaiveDateTime>,
}

/// One run of the safe sequence: remove what is due; publish a new key if none is published; activate the
/// published key once it has been published long enough (at once with `force`). Run it again after
/// `ready_at` to finish a rotation it started.
pub fn rotate(
    conn: &mut Tx,
    caller: &Caller,
    kek: &KeyEncryptionKey,
    policy: &KeyPolicy,
    force: bool,
    now: NaiveDateTime,
) -> RegistryResult<RotationReport> {
    caller.require_operator("signing keys")?;
    let (der, key) = generated(Algorithm::ES256)?;
    key_transaction(conn, |conn| {
        let keys = records(conn)?;
        let removed: Vec<String> =
            policy::due_for_removal(policy, &keys, now).into_iter().map(|k| k.kid.clone()).collect();
        remove(conn, caller, &removed, now)?;
        let mut report = RotationReport { removed, published: None, activated: None, waiting: None, ready_at: None };
        let keys = records(conn)?;
        match policy::rotation_step(policy, &keys, force, now) {
            Step::Publish => {
                let record = publish_generated(conn, caller, kek, (&der, &key), now)?;
                if force {
                    report.activated = Some(activate_in(conn, caller, policy, &record.kid, true, now)?);
                } else {
                    report.ready_at = Some(policy.ready_at(&record));
                    report.waiting = Some(record.clone());
                }
                report.published = Some(record);
            }
            Step::Activate(kid) => report.activated = Some(activate_in(conn, caller, policy, &kid, force, now)?),
            Step::WaitUntil(at) => {
                report.waiting =
                    keys.into_iter().filter(|k| k.state == KeyState::Published).min_by_key(|k| k.published_at);
                report.ready_at = Some(at);
            }
        }
        Ok(report)
    })
}

/// One tick of the automatic schedule (run by the instance holding the schedule's lease); whether it changed
/// anything.
pub fn run_schedule(
    conn: &mut Tx,
    caller: &Caller,
    kek: &KeyEncryptionKey,
    policy: &KeyPolicy,
    schedule: &RotationSchedule,
    now: NaiveDateTime,
) -> RegistryResult<bool> {
    let (der, key) = generated(Algorithm::ES256)?;
    key_transaction(conn, |conn| {
        let keys = records(conn)?;
        let (step, removals) = policy::scheduled_steps(policy, schedule, &keys, now);
        remove(conn, caller, &removals, now)?;
        let changed = !removals.is_empty() || step.is_some();
        match step {
            Some(Step::Publish) => {
                publish_generated(conn, caller, kek, (&der, &key), now)?;
            }
            Some(Step::Activate(kid)) => {
                activate_in(conn, caller, policy, &kid, false, now)?;
            }
            Some(Step::WaitUntil(_)) | None => {}
        }
        Ok(changed)
    })
}
