//! The console's people: invitations to administer a partner, signed-in sessions, and sign-ins under way at
//! the identity provider. Rules live in `registry::invitations` and `console_auth`; here are the rows.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{console_invitations, console_sessions, console_sign_ins};
use super::{DbConnection, StoreError};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = console_invitations)]
pub struct InvitationRow {
    pub id: String,
    pub partner_id: String,
    pub email: String,
    /// Reserved scopes, space-separated.
    pub scopes: String,
    pub invited_by: String,
    pub created_at: NaiveDateTime,
    pub bound_issuer: Option<String>,
    pub bound_subject: Option<String>,
    pub bound_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = console_sessions)]
pub struct SessionRow {
    /// Hex SHA-256 of the session id in the cookie.
    pub id_hash: String,
    pub csrf_token: String,
    pub issuer: String,
    pub subject: String,
    pub email: String,
    /// The invitation a partner admin signed in by; `None` for an operator.
    pub invitation_id: Option<String>,
    pub partner_id: Option<String>,
    pub scopes: String,
    pub created_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = console_sign_ins)]
pub struct SignInRow {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub created_at: NaiveDateTime,
}

pub fn insert_invitation(conn: &mut DbConnection, row: &InvitationRow) -> Result<(), StoreError> {
    diesel::insert_into(console_invitations::table).values(row).execute(conn)?;
    Ok(())
}

pub fn invitations_of(conn: &mut DbConnection, partner_id: &str) -> Result<Vec<InvitationRow>, StoreError> {
    Ok(console_invitations::table
        .filter(console_invitations::partner_id.eq(partner_id))
        .order((console_invitations::created_at, console_invitations::id))
        .select(InvitationRow::as_select())
        .load(conn)?)
}

pub fn invitation(conn: &mut DbConnection, id: &str) -> Result<Option<InvitationRow>, StoreError> {
    Ok(console_invitations::table.find(id).select(InvitationRow::as_select()).first(conn).optional()?)
}

pub fn invitation_for_email(
    conn: &mut DbConnection,
    partner_id: &str,
    email: &str,
) -> Result<Option<InvitationRow>, StoreError> {
    Ok(console_invitations::table
        .filter(console_invitations::partner_id.eq(partner_id).and(console_invitations::email.eq(email)))
        .select(InvitationRow::as_select())
        .first(conn)
        .optional()?)
}

/// The invitation already bound to this person.
pub fn invitation_of_person(
    conn: &mut DbConnection,
    issuer: &str,
    subject: &str,
) -> Result<Option<InvitationRow>, StoreError> {
    Ok(console_invitations::table
        .filter(console_invitations::bound_issuer.eq(issuer).and(console_invitations::bound_subject.eq(subject)))
        .select(InvitationRow::as_select())
        .first(conn)
        .optional()?)
}

/// The oldest invitation to `email` that nobody has taken yet.
pub fn open_invitation_for(conn: &mut DbConnection, email: &str) -> Result<Option<InvitationRow>, StoreError> {
    Ok(console_invitations::table
        .filter(console_invitations::email.eq(email).and(console_invitations::bound_subject.is_null()))
        .order((console_invitations::created_at, console_invitations::id))
        .select(InvitationRow::as_select())
        .first(conn)
        .optional()?)
}

/// Binds an open invitation to a person; `false` when someone took it first.
pub fn bind_invitation(
    conn: &mut DbConnection,
    id: &str,
    issuer: &str,
    subject: &str,
    at: NaiveDateTime,
) -> Result<bool, StoreError> {
    let bound = diesel::update(
        console_invitations::table
            .filter(console_invitations::id.eq(id).and(console_invitations::bound_subject.is_null())),
    )
    .set((
        console_invitations::bound_issuer.eq(issuer),
        console_invitations::bound_subject.eq(subject),
        console_invitations::bound_at.eq(at),
    ))
    .execute(conn)?;
    Ok(bound == 1)
}

/// Deletes an invitation and the sessions opened with it.
pub fn delete_invitation(conn: &mut DbConnection, id: &str) -> Result<bool, StoreError> {
    diesel::delete(console_sessions::table.filter(console_sessions::invitation_id.eq(id))).execute(conn)?;
    Ok(diesel::delete(console_invitations::table.find(id)).execute(conn)? == 1)
}

pub fn insert_session(conn: &mut DbConnection, row: &SessionRow) -> Result<(), StoreError> {
    diesel::insert_into(console_sessions::table).values(row).execute(conn)?;
    Ok(())
}

pub fn session(conn: &mut DbConnection, id_hash: &str) -> Result<Option<SessionRow>, StoreError> {
    Ok(console_sessions::table.find(id_hash).select(SessionRow::as_select()).first(conn).optional()?)
}

/// Whether a partner admin's partner exists and is not suspended: a suspended partner's people act no more
/// than its clients do.
pub fn partner_active(conn: &mut DbConnection, partner_id: &str) -> Result<bool, StoreError> {
    use super::schema::partners;
    let suspended = partners::table.find(partner_id).select(partners::suspended).first::<bool>(conn).optional()?;
    Ok(suspended == Some(false))
}

pub fn touch_session(conn: &mut DbConnection, id_hash: &str, at: NaiveDateTime) -> Result<(), StoreError> {
    diesel::update(console_sessions::table.find(id_hash)).set(console_sessions::last_seen_at.eq(at)).execute(conn)?;
    Ok(())
}

pub fn delete_session(conn: &mut DbConnection, id_hash: &str) -> Result<bool, StoreError> {
    Ok(diesel::delete(console_sessions::table.find(id_hash)).execute(conn)? == 1)
}

pub fn insert_sign_in(conn: &mut DbConnection, row: &SignInRow) -> Result<(), StoreError> {
    diesel::insert_into(console_sign_ins::table).values(row).execute(conn)?;
    Ok(())
}

/// Takes a sign-in under way: it can complete once.
pub fn take_sign_in(conn: &mut DbConnection, state: &str) -> Result<Option<SignInRow>, StoreError> {
    super::write_transaction(conn, |conn| {
        let row = console_sign_ins::table.find(state).select(SignInRow::as_select()).first(conn).optional()?;
        if row.is_some() {
            diesel::delete(console_sign_ins::table.find(state)).execute(conn)?;
        }
        Ok(row)
    })
}

/// Forgets sessions that ended and sign-ins abandoned before `sign_ins_before`.
pub fn prune(conn: &mut DbConnection, now: NaiveDateTime, sign_ins_before: NaiveDateTime) -> Result<usize, StoreError> {
    let sessions =
        diesel::delete(console_sessions::table.filter(console_sessions::expires_at.le(now))).execute(conn)?;
    let sign_ins = diesel::delete(console_sign_ins::table.filter(console_sign_ins::created_at.lt(sign_ins_before)))
        .execute(conn)?;
    Ok(sessions + sign_ins)
}
