//! Client assertions already used, each until it expires: the primary key makes an assertion single-use
//! across every instance on one database (RFC 7523 section 3, `jti`).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error};

use super::schema::used_assertions;
use super::{DbConnection, StoreError};

/// Records `key` as used until `expires_at`; `false` when it already was.
pub fn consume(conn: &mut DbConnection, key: &str, expires_at: NaiveDateTime) -> Result<bool, StoreError> {
    let inserted = diesel::insert_into(used_assertions::table)
        .values((used_assertions::assertion_key.eq(key), used_assertions::expires_at.eq(expires_at)))
        .execute(conn);
    match inserted {
        Ok(_) => Ok(true),
        Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(false),
        Err(err) => Err(err.into()),
    }
}

/// Forgets the assertions that expired before `at`: they are refused by their `exp` anyway.
pub fn prune(conn: &mut DbConnection, at: NaiveDateTime) -> Result<usize, StoreError> {
    Ok(diesel::delete(used_assertions::table.filter(used_assertions::expires_at.lt(at))).execute(conn)?)
}
