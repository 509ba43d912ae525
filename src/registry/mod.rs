//! Partners, clients, secrets, roles and scopes: the rules (ceilings, rotation, revocation, tenant isolation).
//!
//! Functions here are synchronous. Those that change the registry take a [`Tx`] (a unit of work that collects
//! the changes it publishes), those that only read take a connection (a `Tx` derefs to one); the
//! [`Registry`] service opens the units of work, for the HTTP layer on the blocking pool and for the CLI
//! directly. Every multi-step change runs in one transaction.

pub mod audit_trail;
pub mod bootstrap;
pub mod client_keys;
pub mod clients;
pub mod invitations;
pub mod key_schedule;
pub mod live_keys;
pub mod lookup;
pub mod paging;
pub mod partners;
pub mod revocation;
pub mod roles;
pub mod scopes;
pub mod secret_expiry;
pub mod secrets;
pub mod service;
pub mod signing_keys;
pub mod usage;
pub(crate) mod validate;

pub use service::Registry;

use chrono::NaiveDateTime;

use crate::audit::{self, AuditEvent, Outcome, RequestMeta};
use crate::clock::SharedClock;
use crate::store::changes::{self, Change};
use crate::store::{StoreError, Tx};

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

/// What an admin caller may do, from the reserved scopes of its token (the reserved scopes: README, "Endpoints").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    ClientsRead,
    ClientsWrite,
    AuditRead,
    /// Reporting requests to the request log (`authz.usage.report`): never implied by another scope, not
    /// even `authz.admin`, so that what a reporter states is always a reporter's statement.
    UsageReport,
}

/// Who performs an admin action: what they may touch, and how the audit trail names them.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenancy: Tenancy,
    /// `cli` for operator commands, `client:<id>` for admin API callers.
    pub actor: String,
    pub meta: RequestMeta,
    permissions: Vec<Permission>,
    /// The reserved `authz.*` scopes of the caller's token: the only ones a partner admin may pass on.
    reserved_scopes: Vec<String>,
    /// The time every rule of the caller's actions is decided at (creation times, expiries, cut-offs).
    clock: SharedClock,
}

impl Caller {
    /// The operator at the command line: works directly on the database.
    pub fn cli() -> Self {
        Caller {
            tenancy: Tenancy::Operator,
            actor: "cli".to_string(),
            meta: RequestMeta::default(),
            permissions: vec![Permission::ClientsRead, Permission::ClientsWrite, Permission::AuditRead],
            reserved_scopes: Vec::new(),
            clock: crate::clock::system(),
        }
    }

    /// The same caller on another clock (the server's; a test's `ManualClock`).
    pub fn with_clock(self, clock: SharedClock) -> Self {
        Caller { clock, ..self }
    }

    /// Now, by the caller's clock: the one source of time for registry changes.
    pub fn now(&self) -> NaiveDateTime {
        self.clock.now()
    }

    /// The operator acting through the server itself (the key rotation schedule), named `actor` in the audit.
    pub fn system(actor: &str) -> Self {
        Caller { actor: actor.to_string(), ..Caller::cli() }
    }

    /// An admin API caller authenticated by a token of `client_id` (of `partner_id`) carrying `token_scopes`.
    /// `authz.admin` makes it the operator; otherwise it acts within its own partner only.
    pub fn from_token<'a>(
        client_id: &str,
        partner_id: &str,
        token_scopes: impl IntoIterator<Item = &'a str>,
        meta: RequestMeta,
    ) -> Self {
        Caller::from_scopes(format!("client:{client_id}"), partner_id, token_scopes, meta)
    }

    /// A person signed in to the console (`console_auth`), named `actor` in the audit: an operator holds
    /// every operator scope, a partner admin its invitation's scopes on its partner.
    pub fn person<'a>(
        actor: String,
        partner_id: Option<&str>,
        scopes: impl IntoIterator<Item = &'a str>,
        meta: RequestMeta,
    ) -> Self {
        match partner_id {
            None => Caller { actor, meta, ..Caller::cli() },
            Some(partner_id) => Caller::from_scopes(actor, partner_id, scopes, meta),
        }
    }

    /// A caller named `actor` whose rights come from reserved scopes (a token's or an invitation's).
    fn from_scopes<'a>(
        actor: String,
        partner_id: &str,
        token_scopes: impl IntoIterator<Item = &'a str>,
        meta: RequestMeta,
    ) -> Self {
        let token_scopes: Vec<&str> = token_scopes.into_iter().collect();
        let reports = token_scopes.contains(&scopes::USAGE_REPORT);
        if token_scopes.contains(&scopes::ADMIN) {
            let mut operator = Caller { actor, meta, ..Caller::cli() };
            if reports {
                operator.permissions.push(Permission::UsageReport);
            }
            return operator;
        }
        let mut permissions = Vec::new();
        if token_scopes.contains(&scopes::CLIENTS_READ) || token_scopes.contains(&scopes::CLIENTS_WRITE) {
            permissions.push(Permission::ClientsRead);
        }
        if token_scopes.contains(&scopes::CLIENTS_WRITE) {
            permissions.push(Permission::ClientsWrite);
        }
        if token_scopes.contains(&scopes::AUDIT_READ) {
            permissions.push(Permission::AuditRead);
        }
        if reports {
            permissions.push(Permission::UsageReport);
        }
        let reserved_scopes =
            token_scopes.iter().filter(|s| s.starts_with(scopes::RESERVED_PREFIX)).map(|s| s.to_string()).collect();
        Caller {
            tenancy: Tenancy::Partner(partner_id.to_string()),
            actor,
            meta,
            permissions,
            reserved_scopes,
            clock: crate::clock::system(),
        }
    }

    /// Whether the caller's token carries this reserved scope (the operator holds them all).
    pub fn holds_reserved(&self, scope: &str) -> bool {
        matches!(self.tenancy, Tenancy::Operator) || self.reserved_scopes.iter().any(|s| s == scope)
    }

    /// Refuses a caller whose token lacks the scope for an operation.
    pub fn require(&self, permission: Permission) -> RegistryResult<()> {
        if self.permissions.contains(&permission) {
            Ok(())
        } else {
            Err(RegistryError::Forbidden(format!("the token lacks the scope for this operation ({permission:?})")))
        }
    }

    /// A resource server's reporting token (`authz.usage.report` and no other admin permission): it may report
    /// requests to the request log and do nothing else, not even read the catalog that every admin token reads.
    pub fn reports_only(&self) -> bool {
        self.permissions == [Permission::UsageReport]
    }

    /// The client a token-authenticated caller acts as (`None` at the command line and for the server itself).
    pub fn client_id(&self) -> Option<&str> {
        self.actor.strip_prefix("client:")
    }

    /// Catalog-wide objects (scopes, roles, partners) are the operator's alone.
    pub(crate) fn require_operator(&self, what: &str) -> RegistryResult<()> {
        match self.tenancy {
            Tenancy::Operator => Ok(()),
            Tenancy::Partner(_) => Err(RegistryError::Forbidden(format!("only the operator manages {what}"))),
        }
    }

    /// Records a successful admin action on `conn`, inside the caller's transaction, and publishes it on the
    /// change feed: every admin action changes the registry. It names the client it touched, else the partner,
    /// else the catalog (scopes and roles), which touches every client.
    pub(crate) fn audit(
        &self,
        conn: &mut Tx,
        event_type: &'static str,
        partner_id: Option<&str>,
        client_id: Option<&str>,
        details: serde_json::Value,
    ) -> Result<(), StoreError> {
        let change = match (client_id, partner_id) {
            (Some(client_id), _) => Change::Client(client_id.to_string()),
            (None, Some(partner_id)) => Change::Partner(partner_id.to_string()),
            (None, None) => Change::Catalog,
        };
        let mut event = AuditEvent::new(event_type, Outcome::Success, self.meta.clone(), self.now());
        event.partner_id = partner_id.map(str::to_string);
        event.client_id = client_id.map(str::to_string);
        self.audit_change(conn, event, change, details)
    }

    /// Records a successful action described by `event` and publishes `change` on the change feed, inside
    /// the caller's transaction (for changes that are not a client's, a partner's or the catalog's: the keys).
    pub(crate) fn audit_change(
        &self,
        conn: &mut Tx,
        mut event: AuditEvent,
        change: Change,
        details: serde_json::Value,
    ) -> Result<(), StoreError> {
        event.actor = Some(self.actor.clone());
        event.details = Some(details);
        changes::publish(conn, change, event.occurred_at)?;
        audit::record_in(conn, event)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: String },
    #[error("{kind} {id} already exists")]
    AlreadyExists { kind: &'static str, id: String },
    #[error("{kind} {id} is in use: {message}")]
    InUse { kind: &'static str, id: String, message: String },
    #[error("scopes outside the partner's ceiling: {}", .0.join(" "))]
    OutsideCeiling(Vec<String>),
    #[error("audiences outside the partner's audience ceiling: {}", .0.join(" "))]
    AudienceOutsideCeiling(Vec<String>),
    #[error("{0}")]
    Forbidden(String),
    /// The request is well-formed but larger than the server accepts (a batch of too many records).
    #[error("{0}")]
    TooLarge(String),
    /// The request is valid but the current state refuses it (a signing key not published long enough).
    #[error("{0}")]
    Conflict(String),
    /// The change would lock every admin out (suspending or deleting the operator's own partner).
    #[error("{0}")]
    Protected(String),
    /// Key material that cannot be used (a wrong key-encryption key, a damaged stored key).
    #[error(transparent)]
    Keys(#[from] crate::keys::KeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A unit of work that did not complete: its task panicked, or the runtime is shutting down.
    #[error("the registry's unit of work did not complete")]
    Interrupted,
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
    RegistryError::NotFound { kind, id: id.to_string() }
}
