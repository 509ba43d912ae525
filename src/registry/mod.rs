//! Partners, clients, secrets, roles and scopes: the rules (ceilings, rotation, revocation, tenant isolation).
//!
//! Functions here are synchronous and take a database connection; the HTTP layer runs them on the blocking
//! pool and the CLI calls them directly. Every multi-step change runs in one transaction.

pub mod clients;
pub mod credentials;
pub mod partners;
pub mod roles;
pub mod scopes;
pub mod secrets;
mod validate;

use crate::audit::{self, AuditEvent, Outcome, RequestMeta};
use crate::store::{DbConnection, StoreError};

/// Whose objects a caller may see: the operator sees everything, a partner admin only its own partner's.
/// Objects outside the caller's tenancy are reported as `NotFound`, never as forbidden, so that their
/// existence does not leak.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tenancy {
    Operator,
    Partner(String),
}

impl Tenancy {
    pub fn allows_partner(&self, partner_id: &str) -> bool {
        match self {
            Tenancy::Operator => true,
            Tenancy::Partner(own) => own == partner_id,
        }
    }
}

/// Who performs an admin action: what they may touch, and how the audit trail names them.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenancy: Tenancy,
    /// `cli` for operator commands, `client:<id>` for admin API callers.
    pub actor: String,
    pub meta: RequestMeta,
}

impl Caller {
    /// The operator at the command line: works directly on the database.
    pub fn cli() -> Self {
        Caller {
            tenancy: Tenancy::Operator,
            actor: "cli".to_string(),
            meta: RequestMeta::default(),
        }
    }

    /// Catalog-wide objects (scopes, roles, partners) are the operator's alone.
    pub(crate) fn require_operator(&self, what: &str) -> RegistryResult<()> {
        match self.tenancy {
            Tenancy::Operator => Ok(()),
            Tenancy::Partner(_) => Err(RegistryError::Forbidden(format!(
                "only the operator manages {what}"
            ))),
        }
    }

    /// Records a successful admin action on `conn`, inside the caller's transaction.
    pub(crate) fn audit(
        &self,
        conn: &mut DbConnection,
        event_type: &'static str,
        partner_id: Option<&str>,
        client_id: Option<&str>,
        details: serde_json::Value,
    ) -> Result<(), StoreError> {
        let mut event = AuditEvent::new(event_type, Outcome::Success, self.meta.clone());
        event.actor = Some(self.actor.clone());
        event.partner_id = partner_id.map(str::to_string);
        event.client_id = client_id.map(str::to_string);
        event.details = Some(details);
        audit::record_in(conn, event)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: String },
    #[error("{kind} {id} already exists")]
    AlreadyExists { kind: &'static str, id: String },
    #[error("{kind} {id} is in use: {message}")]
    InUse {
        kind: &'static str,
        id: String,
        message: String,
    },
    #[error("scopes outside the partner's ceiling: {}", .0.join(" "))]
    OutsideCeiling(Vec<String>),
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<diesel::result::Error> for RegistryError {
    fn from(err: diesel::result::Error) -> Self {
        RegistryError::Store(StoreError::Query(err))
    }
}

impl From<diesel::r2d2::PoolError> for RegistryError {
    fn from(err: diesel::r2d2::PoolError) -> Self {
        RegistryError::Store(StoreError::from(err))
    }
}

pub type RegistryResult<T> = Result<T, RegistryError>;

pub(crate) fn not_found(kind: &'static str, id: &str) -> RegistryError {
    RegistryError::NotFound {
        kind,
        id: id.to_string(),
    }
}
