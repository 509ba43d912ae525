//! Invitations to administer a partner from the console: the operator invites an email address to any
//! partner; a partner admin to its own partner, passing on at most the scopes it holds. The first sign-in with
//! that verified email binds the invitation to the person (README, "Console sign-in with your identity
//! provider").

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{not_found, partners, scopes, validate, Caller, Permission, RegistryError, RegistryResult};
use crate::credentials;
use crate::store::console::{self as rows, InvitationRow};
use crate::store::{DbConnection, Tx};

/// The scopes an invitation may give: a partner admin's, never the operator's `authz.admin`.
pub const INVITABLE_SCOPES: [&str; 3] = [scopes::CLIENTS_READ, scopes::CLIENTS_WRITE, scopes::AUDIT_READ];

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInvitation {
    /// The address the person's identity provider must assert as verified.
    pub email: String,
    /// Reserved scopes the partner admin gets: any of `authz.clients.read`, `authz.clients.write`,
    /// `authz.audit.read`.
    pub scopes: Vec<String>,
}

/// The person an invitation was taken by.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BoundPerson {
    pub issuer: String,
    pub subject: String,
    pub at: NaiveDateTime,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Invitation {
    pub id: String,
    pub partner_id: String,
    pub email: String,
    pub scopes: Vec<String>,
    /// The audit actor who invited.
    pub invited_by: String,
    pub created_at: NaiveDateTime,
    /// `null` until the first sign-in with the address.
    pub bound: Option<BoundPerson>,
}

impl From<InvitationRow> for Invitation {
    fn from(row: InvitationRow) -> Self {
        let bound = match (row.bound_issuer, row.bound_subject, row.bound_at) {
            (Some(issuer), Some(subject), Some(at)) => Some(BoundPerson { issuer, subject, at }),
            _ => None,
        };
        Invitation {
            id: row.id,
            partner_id: row.partner_id,
            email: row.email,
            scopes: split_scopes(&row.scopes),
            invited_by: row.invited_by,
            created_at: row.created_at,
            bound,
        }
    }
}

pub fn split_scopes(scopes: &str) -> Vec<String> {
    scopes.split_whitespace().map(str::to_string).collect()
}

/// Email addresses compare case-insensitively (as providers treat them); stored lowercased.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_ascii_lowercase()
}

fn check_email(email: &str) -> RegistryResult<()> {
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    if valid {
        Ok(())
    } else {
        Err(RegistryError::Invalid { field: "email", message: "must be an email address".into() })
    }
}

/// The caller may manage its partner's invitations: the operator any partner's, a partner admin its own.
fn partner_in_reach(conn: &mut DbConnection, caller: &Caller, partner_id: &str) -> RegistryResult<()> {
    partners::get(conn, caller, partner_id).map(|_| ())
}

pub fn create(conn: &mut Tx, caller: &Caller, partner_id: &str, input: &NewInvitation) -> RegistryResult<Invitation> {
    caller.require(Permission::ClientsWrite)?;
    let email = normalize_email(&input.email);
    check_email(&email)?;
    let mut granted: Vec<String> = Vec::new();
    for scope in &input.scopes {
        if !INVITABLE_SCOPES.contains(&scope.as_str()) {
            return Err(RegistryError::Invalid {
                field: "scopes",
                message: format!("{scope} cannot be given by invitation (use {})", INVITABLE_SCOPES.join(", ")),
            });
        }
        if !caller.holds_reserved(scope) {
            return Err(RegistryError::Forbidden(format!("you cannot give {scope}: you do not hold it")));
        }
        if !granted.contains(scope) {
            granted.push(scope.clone());
        }
    }
    if granted.is_empty() {
        return Err(RegistryError::Invalid { field: "scopes", message: "give at least one scope".into() });
    }
    crate::store::write_transaction(conn, |conn| {
        partner_in_reach(conn, caller, partner_id)?;
        if rows::invitation_for_email(conn, partner_id, &email)?.is_some() {
            return Err(RegistryError::AlreadyExists { kind: "invitation for", id: email.clone() });
        }
        let row = InvitationRow {
            id: format!("inv_{}", credentials::random_base62(16)),
            partner_id: partner_id.to_string(),
            email: email.clone(),
            scopes: granted.join(" "),
            invited_by: caller.actor.clone(),
            created_at: caller.now(),
            bound_issuer: None,
            bound_subject: None,
            bound_at: None,
        };
        rows::insert_invitation(conn, &row)?;
        let invitation = Invitation::from(row);
        caller.audit(conn, "invitation.create", Some(partner_id), None, json!({"after": invitation}))?;
        Ok(invitation)
    })
}

pub fn list(conn: &mut DbConnection, caller: &Caller, partner_id: &str) -> RegistryResult<Vec<Invitation>> {
    caller.require(Permission::ClientsRead)?;
    partner_in_reach(conn, caller, partner_id)?;
    Ok(rows::invitations_of(conn, partner_id)?.into_iter().map(Invitation::from).collect())
}

/// Withdraws an invitation; the person it was bound to is signed out at once.
pub fn delete(conn: &mut Tx, caller: &Caller, partner_id: &str, id: &str) -> RegistryResult<()> {
    caller.require(Permission::ClientsWrite)?;
    validate::lookup("invitation", id, |id| id.starts_with("inv_") && id.len() <= 64)?;
    crate::store::write_transaction(conn, |conn| {
        partner_in_reach(conn, caller, partner_id)?;
        let row = rows::invitation(conn, id)?.filter(|row| row.partner_id == partner_id);
        let row = row.ok_or_else(|| not_found("invitation", id))?;
        rows::delete_invitation(conn, id)?;
        caller.audit(conn, "invitation.delete", Some(partner_id), None, json!({"before": Invitation::from(row)}))?;
        Ok(())
    })
}
