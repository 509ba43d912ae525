//! Finding a client's row as a caller may see it: shared by the registry's files that change a client or what
//! belongs to it (its secrets, its tokens' revocation).

use diesel::prelude::*;

use super::{not_found, validate, Caller, Permission, RegistryResult, Tenancy};
use crate::store::models::ClientRow;
use crate::store::schema::clients;
use crate::store::DbConnection;

/// The client row, if the caller's tenancy may see it; otherwise `NotFound`, exactly as if it did not exist.
pub(crate) fn get_row(conn: &mut DbConnection, tenancy: &Tenancy, id: &str) -> RegistryResult<ClientRow> {
    validate::lookup("client", id, validate::is_client_id)?;
    let row: ClientRow = clients::table
        .find(id)
        .select(ClientRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| not_found("client", id))?;
    if !tenancy.allows_partner(&row.partner_id) {
        return Err(not_found("client", id));
    }
    Ok(row)
}

/// Changing a client needs `authz.clients.write` (or the operator); tenancy is checked by `get_row`.
pub(crate) fn require_writable(caller: &Caller, client: &ClientRow) -> RegistryResult<()> {
    caller.require(Permission::ClientsWrite)?;
    if !caller.tenancy.allows_partner(&client.partner_id) {
        return Err(not_found("client", &client.id));
    }
    Ok(())
}
