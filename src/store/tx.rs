//! The unit of work on the registry: [`Tx`] holds a pooled connection and the changes published through it
//! (ARCHITECTURE.md, "The read model and the change feed"). A change published inside a transaction that
//! rolls back is dropped with it; what remains once the work is done was committed, and is applied to the
//! sinks the value was opened for (this instance's read model and key ring) when it is dropped, or handed to
//! whoever asks with [`Tx::take_published`].

use std::sync::Arc;

use super::changes::{Change, ChangeSink};
use super::{DbConnection, PooledDb};

/// A connection and the registry changes published through it. It derefs to the connection, so reads take it
/// where they take a `&mut DbConnection`; whatever publishes a change takes the `Tx` itself.
pub struct Tx {
    conn: PooledDb,
    published: Vec<Change>,
    sink: Option<Arc<dyn ChangeSink>>,
}

impl Tx {
    /// A unit of work whose changes nobody on this process hears (the command line, a test without server):
    /// other instances hear them through the change feed.
    pub fn new(conn: PooledDb) -> Tx {
        Tx { conn, published: Vec::new(), sink: None }
    }

    /// A unit of work whose committed changes are applied to `sink` when it is dropped.
    pub fn applying_to(conn: PooledDb, sink: Arc<dyn ChangeSink>) -> Tx {
        Tx { conn, published: Vec::new(), sink: Some(sink) }
    }

    /// The connection, for queries written against it directly.
    pub fn db(&mut self) -> &mut DbConnection {
        &mut self.conn
    }

    /// The changes published so far and not rolled back.
    pub fn published(&self) -> &[Change] {
        &self.published
    }

    /// Takes the changes published so far: the caller applies them (they are no longer applied on drop).
    pub fn take_published(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.published)
    }

    pub(super) fn note(&mut self, change: Change) {
        self.published.push(change);
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        if let Some(sink) = &self.sink {
            if !self.published.is_empty() {
                sink.apply(&std::mem::take(&mut self.published));
            }
        }
    }
}

impl std::ops::Deref for Tx {
    type Target = DbConnection;
    fn deref(&self) -> &DbConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut DbConnection {
        &mut self.conn
    }
}

/// What [`super::write_transaction`] runs on: a plain connection, or a [`Tx`], which forgets the changes
/// published in a transaction that rolled back.
pub trait Transactional {
    fn db(&mut self) -> &mut DbConnection;
    /// How many changes were published so far: where to roll back to.
    fn published_mark(&self) -> usize {
        0
    }
    /// Forgets the changes published after `mark`: their transaction rolled back.
    fn roll_back_published(&mut self, _mark: usize) {}
}

impl Transactional for DbConnection {
    fn db(&mut self) -> &mut DbConnection {
        self
    }
}

impl Transactional for PooledDb {
    fn db(&mut self) -> &mut DbConnection {
        self
    }
}

impl Transactional for Tx {
    fn db(&mut self) -> &mut DbConnection {
        &mut self.conn
    }

    fn published_mark(&self) -> usize {
        self.published.len()
    }

    fn roll_back_published(&mut self, mark: usize) {
        self.published.truncate(mark);
    }
}
