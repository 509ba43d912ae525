//! The verified caller, as handlers see it.

use serde::Serialize;

/// Who called, from a verified token: the tenant is `partner_id`, never anything the request says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub partner_id: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub jti: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Issue time (`iat`), seconds since the Unix epoch (0 when the token had none), for the revocation
    /// stream's cut-offs.
    pub iat: u64,
}

impl Principal {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|held| held == scope)
    }
}
