//! The change feed (ARCHITECTURE.md, "The read model and the change feed"): every registry change names what changed, written in the change's own
//! transaction, so that every instance can drop what it caches about it.
//!
//! - On PostgreSQL, [`publish`] sends `NOTIFY partnergate_changes` (delivered to every listener on commit, never
//!   for a transaction that rolls back) and writes a row to `registry_changes`.
//! - On SQLite (one host), it writes the row only; instances poll the table ([`changes_after`]), which also
//!   carries the changes that `partnergate` commands make from another process.
//!
//! The instance that made a change applies it at once, after the commit: [`publish`] also notes the change on
//! the [`Tx`] it was published through, which forgets it if its transaction rolls back; whoever opened the
//! `Tx` (the registry service, the audit writer, the key schedule) applies the changes it holds once the work
//! is done.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::registry_changes;
use super::{DbConnection, StoreError, Tx};

/// The NOTIFY channel of the change feed.
pub const CHANNEL: &str = "partnergate_changes";

/// What changed: everything cached about it is dropped.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Change {
    /// A client, its secrets, grants, audiences or revoked tokens.
    Client(String),
    /// A partner: its standing, ceiling, limits or bulk revocation; touches every client of the partner.
    Partner(String),
    /// The scope or role catalog: touches every client.
    Catalog,
    /// The signing keys: a key published, activated, retired or removed; every instance reloads its key ring.
    Keys,
    /// New events on the revocation stream: wakes the receivers' long polls (`secevents`); nothing cached.
    SecurityEvents,
}

impl Change {
    fn kind_and_target(&self) -> (&'static str, &str) {
        match self {
            Change::Client(id) => ("client", id),
            Change::Partner(id) => ("partner", id),
            Change::Catalog => ("catalog", ""),
            Change::Keys => ("keys", ""),
            Change::SecurityEvents => ("events", ""),
        }
    }

    /// The feed's text form, `client:<id>`, `partner:<id>`, `catalog:`, `keys:` or `events:` (the NOTIFY
    /// payload).
    pub fn encode(&self) -> String {
        let (kind, target) = self.kind_and_target();
        format!("{kind}:{target}")
    }

    /// Reads the text form back; an unknown kind is read as a catalog change, so that whatever an instance
    /// of a later version publishes at worst empties this one's cache.
    pub fn decode(text: &str) -> Change {
        Change::from_parts(text.split_once(':').unwrap_or((text, "")))
    }

    fn from_parts((kind, target): (&str, &str)) -> Change {
        match kind {
            "client" => Change::Client(target.to_string()),
            "partner" => Change::Partner(target.to_string()),
            "keys" => Change::Keys,
            "events" => Change::SecurityEvents,
            _ => Change::Catalog,
        }
    }
}

/// Who wants to hear about committed changes (the read model's cache, the key ring).
pub trait ChangeSink: Send + Sync {
    fn apply(&self, changes: &[Change]);
}

/// Several sinks that hear the same changes, in order.
pub struct Sinks(pub Vec<std::sync::Arc<dyn ChangeSink>>);

impl ChangeSink for Sinks {
    fn apply(&self, changes: &[Change]) {
        for sink in &self.0 {
            sink.apply(changes);
        }
    }
}

/// Records `change` in the current transaction on `tx`, and notes it on `tx` (see the module documentation).
pub fn publish(tx: &mut Tx, change: Change, at: NaiveDateTime) -> Result<(), StoreError> {
    let conn = tx.db();
    let (kind, target) = change.kind_and_target();
    diesel::insert_into(registry_changes::table)
        .values((
            registry_changes::kind.eq(kind),
            registry_changes::target.eq(target),
            registry_changes::changed_at.eq(at),
        ))
        .execute(conn)?;
    if let DbConnection::Postgresql(pg) = conn {
        diesel::sql_query("SELECT pg_notify($1, $2)")
            .bind::<diesel::sql_types::Text, _>(CHANNEL)
            .bind::<diesel::sql_types::Text, _>(change.encode())
            .execute(pg)?;
    }
    tx.note(change);
    Ok(())
}

/// The newest change's sequence number (0 when there is none): where a poller starts.
pub fn latest_seq(conn: &mut DbConnection) -> Result<i64, StoreError> {
    let latest: Option<i64> = registry_changes::table.select(diesel::dsl::max(registry_changes::seq)).first(conn)?;
    Ok(latest.unwrap_or(0))
}

/// Changes after `seq`, oldest first, at most `limit`, with their sequence numbers.
pub fn changes_after(conn: &mut DbConnection, seq: i64, limit: i64) -> Result<Vec<(i64, Change)>, StoreError> {
    let rows: Vec<(i64, String, String)> = registry_changes::table
        .filter(registry_changes::seq.gt(seq))
        .order(registry_changes::seq)
        .limit(limit)
        .select((registry_changes::seq, registry_changes::kind, registry_changes::target))
        .load(conn)?;
    Ok(rows.into_iter().map(|(seq, kind, target)| (seq, Change::from_parts((&kind, &target)))).collect())
}

/// Forgets changes older than `before`; every poller has long read them.
pub fn prune(conn: &mut DbConnection, before: NaiveDateTime) -> Result<usize, StoreError> {
    Ok(diesel::delete(registry_changes::table.filter(registry_changes::changed_at.lt(before))).execute(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips() {
        for change in [
            Change::Client("pgc_1".into()),
            Change::Partner("acme".into()),
            Change::Catalog,
            Change::Keys,
            Change::SecurityEvents,
        ] {
            assert_eq!(Change::decode(&change.encode()), change);
        }
        assert_eq!(Change::decode("later-kind:whatever"), Change::Catalog);
        assert_eq!(Change::decode("client:id:with:colons"), Change::Client("id:with:colons".into()));
    }
}
