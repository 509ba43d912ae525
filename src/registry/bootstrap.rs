//! `admin bootstrap`: the operator's own partner and admin client on a fresh install.

use diesel::prelude::*;

use super::clients::{self, ClientLimits, CreatedClient, NewClient};
use super::partners::{self, NewPartner};
use super::{scopes, Caller, RegistryError, RegistryResult};
use crate::store::schema::client_scopes;
use crate::store::{DbConnection, Tx};

pub use super::partners::OPERATOR_PARTNER;

/// Creates the `operator` partner (ceiling: every reserved scope) and an admin client holding `authz.admin`
/// whose only audience is the admin audience, so a plain client-credentials request yields an admin token.
/// Refuses when an admin client exists already, unless `force` (which adds another one, audited).
pub fn admin_client(
    conn: &mut Tx,
    admin_audience: &str,
    limits: ClientLimits,
    force: bool,
) -> RegistryResult<CreatedClient> {
    let caller = Caller::cli();
    crate::store::write_transaction(conn, |conn| {
        let existing = admin_client_ids(conn)?;
        if !existing.is_empty() && !force {
            return Err(RegistryError::AlreadyExists {
                kind: "admin client",
                id: format!("{} (run with --force to create another)", existing.join(", ")),
            });
        }
        if partners::get(conn, &caller, OPERATOR_PARTNER).is_err() {
            let reserved = [
                scopes::ADMIN,
                scopes::CLIENTS_READ,
                scopes::CLIENTS_WRITE,
                scopes::AUDIT_READ,
                scopes::INTROSPECT,
                scopes::USAGE_REPORT,
                scopes::EVENTS_READ,
            ];
            let input = NewPartner {
                id: OPERATOR_PARTNER.into(),
                name: "Operator".into(),
                scope_ceiling: reserved.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            };
            partners::create(conn, &caller, &input)?;
        }
        let input = NewClient {
            partner_id: Some(OPERATOR_PARTNER.into()),
            name: "operator admin".into(),
            description: "created by partnergate admin bootstrap".into(),
            scopes: vec![scopes::ADMIN.to_string()],
            audiences: vec![admin_audience.to_string()],
            ..Default::default()
        };
        clients::create(conn, &caller, &input, limits)
    })
}

/// The clients holding `authz.admin` directly (as `admin bootstrap` makes them).
pub fn admin_client_ids(conn: &mut DbConnection) -> RegistryResult<Vec<String>> {
    Ok(client_scopes::table
        .filter(client_scopes::scope.eq(scopes::ADMIN))
        .select(client_scopes::client_id)
        .load(conn)?)
}
