//! Console sign-in for people: the operator's OpenID provider names a person, role mapping makes them the
//! operator (by a group or a verified email domain) or a partner admin (by invitation), and a session in the
//! database carries that into the admin API. The cookie holds a random session id; only its SHA-256 is
//! stored. Time comes from the injected clock, so tests move it instead of sleeping.

pub mod oidc;

use std::sync::Arc;

use chrono::{Duration, NaiveDateTime};
use serde::Serialize;
use serde_json::json;

use crate::audit::RequestMeta;
use crate::clock::SharedClock;
use crate::credentials::random_base62;
use crate::registry::invitations::{normalize_email, split_scopes};
use crate::registry::{Caller, Registry};
use crate::store::console::{self as rows, InvitationRow, SessionRow, SignInRow};
use crate::store::{DbConnection, StoreError, Tx};

/// Where the provider sends people back, under the server's issuer URL.
pub const CALLBACK_PATH: &str = "/console/oidc/callback";
/// A sign-in must come back from the provider within this time.
const SIGN_IN_WINDOW_MINUTES: i64 = 10;

/// The operator's identity provider and how its people map to the operator role.
#[derive(Clone)]
pub struct ProviderSettings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// `<issuer of this server>/console/oidc/callback`.
    pub redirect_uri: String,
    pub operator_groups: Vec<String>,
    pub operator_email_domains: Vec<String>,
}

/// The client secret never reaches a log.
impl std::fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSettings")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .field("operator_groups", &self.operator_groups)
            .field("operator_email_domains", &self.operator_email_domains)
            .finish_non_exhaustive()
    }
}

/// How long a session lives, and whether its cookie is `Secure` (the server is reached over HTTPS).
#[derive(Debug, Clone)]
pub struct SessionPolicy {
    pub lifetime: Duration,
    pub idle_timeout: Duration,
    pub secure_cookie: bool,
}

/// The console's sign-in settings (`serve --console-*`).
#[derive(Clone)]
pub struct ConsoleSettings {
    pub provider: Option<ProviderSettings>,
    /// Whether the console offers sign-in with an admin client's id and secret.
    pub client_sign_in: bool,
    pub sessions: SessionPolicy,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings {
            provider: None,
            client_sign_in: true,
            sessions: SessionPolicy {
                lifetime: Duration::hours(8),
                idle_timeout: Duration::minutes(30),
                secure_cookie: false,
            },
        }
    }
}

/// A person as the provider's verified ID token names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub groups: Vec<String>,
}

impl Person {
    /// The address, only if the provider verified it: an unverified one proves nothing.
    pub fn verified_email(&self) -> Option<String> {
        self.email.as_deref().filter(|_| self.email_verified).map(normalize_email)
    }
}

/// How a person maps to the operator role.
#[derive(Debug, Clone, Default)]
pub struct OperatorRule {
    pub groups: Vec<String>,
    pub email_domains: Vec<String>,
}

impl OperatorRule {
    pub fn admits(&self, person: &Person) -> bool {
        let by_group = person.groups.iter().any(|group| self.groups.contains(group));
        let by_domain = person
            .verified_email()
            .and_then(|email| email.rsplit_once('@').map(|(_, d)| d.to_string()))
            .is_some_and(|domain| {
                self.email_domains.iter().any(|allowed| allowed.trim_start_matches('@').eq_ignore_ascii_case(&domain))
            });
        by_group || by_domain
    }
}

/// What a signed-in person may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    Operator,
    PartnerAdmin { invitation_id: String, partner_id: String, scopes: Vec<String> },
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// The provider signed the person in, but no role maps to them.
    #[error("{0} has no role in this console: ask the operator for an invitation")]
    NoRole(String),
    /// The callback names no sign-in under way (replayed, too late, or forged).
    #[error("this sign-in is unknown or has expired; start again")]
    UnknownSignIn,
    #[error("identity provider: {0}")]
    Provider(String),
    #[error("console sign-in with an identity provider is not configured")]
    NotConfigured,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<diesel::result::Error> for SignInError {
    fn from(err: diesel::result::Error) -> Self {
        SignInError::Store(StoreError::Query(err))
    }
}

/// Maps a person to a grant: the operator rule first, then an invitation already bound to them, then the
/// oldest open invitation to their verified email, which this sign-in binds.
pub fn map_person(
    conn: &mut Tx,
    rule: &OperatorRule,
    person: &Person,
    now: NaiveDateTime,
) -> Result<Grant, SignInError> {
    if rule.admits(person) {
        return Ok(Grant::Operator);
    }
    let refused = || SignInError::NoRole(person.email.clone().unwrap_or_else(|| person.subject.clone()));
    if let Some(bound) = rows::invitation_of_person(conn, &person.issuer, &person.subject)? {
        return Ok(partner_admin(bound));
    }
    let Some(email) = person.verified_email() else { return Err(refused()) };
    crate::store::write_transaction(conn, |conn| {
        let Some(open) = rows::open_invitation_for(conn, &email)? else { return Err(refused()) };
        if !rows::bind_invitation(conn, &open.id, &person.issuer, &person.subject, now)? {
            return Err(refused());
        }
        let grant = partner_admin(open.clone());
        let caller = caller_for(person, &grant, RequestMeta::default());
        caller.audit(
            conn,
            "invitation.accept",
            Some(&open.partner_id),
            None,
            json!({"invitation_id": open.id, "issuer": person.issuer, "subject": person.subject}),
        )?;
        Ok(grant)
    })
}

fn partner_admin(row: InvitationRow) -> Grant {
    Grant::PartnerAdmin { scopes: split_scopes(&row.scopes), invitation_id: row.id, partner_id: row.partner_id }
}

/// How the audit trail names a person: issuer and subject (who they are) and email (who people think they are).
pub fn actor_of(issuer: &str, subject: &str, email: &str) -> String {
    format!("person:{email} ({subject} at {issuer})")
}

fn caller_for(person: &Person, grant: &Grant, meta: RequestMeta) -> Caller {
    let actor = actor_of(&person.issuer, &person.subject, person.email.as_deref().unwrap_or(""));
    match grant {
        Grant::Operator => Caller::person(actor, None, [], meta),
        Grant::PartnerAdmin { partner_id, scopes, .. } => {
            Caller::person(actor, Some(partner_id), scopes.iter().map(String::as_str), meta)
        }
    }
}

/// A session just opened: the cookie's value is known only here and to the browser.
pub struct OpenedSession {
    pub cookie_value: String,
    pub session: ActiveSession,
}

/// A live session, as the admin API and the console page see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ActiveSession {
    pub issuer: String,
    pub subject: String,
    pub email: String,
    /// `operator` or `partner_admin`.
    pub role: &'static str,
    /// A partner admin's partner.
    pub partner_id: Option<String>,
    /// The reserved scopes the person holds (the operator: `authz.admin`).
    pub scopes: Vec<String>,
    /// Send it back in `X-CSRF-Token` with every change.
    pub csrf_token: String,
    pub expires_at: NaiveDateTime,
    /// When the session ends unless used before.
    pub idle_expires_at: NaiveDateTime,
}

impl ActiveSession {
    fn from_row(row: SessionRow, policy: &SessionPolicy) -> Self {
        let role = if row.partner_id.is_some() { "partner_admin" } else { "operator" };
        ActiveSession {
            idle_expires_at: (row.last_seen_at + policy.idle_timeout).min(row.expires_at),
            issuer: row.issuer,
            subject: row.subject,
            email: row.email,
            role,
            partner_id: row.partner_id,
            scopes: split_scopes(&row.scopes),
            csrf_token: row.csrf_token,
            expires_at: row.expires_at,
        }
    }

    /// The admin caller this session acts as.
    pub fn caller(&self, meta: RequestMeta, clock: SharedClock) -> Caller {
        let actor = actor_of(&self.issuer, &self.subject, &self.email);
        Caller::person(actor, self.partner_id.as_deref(), self.scopes.iter().map(String::as_str), meta)
            .with_clock(clock)
    }

    /// Whether `presented` is this session's CSRF token (compared in constant time).
    pub fn csrf_matches(&self, presented: &str) -> bool {
        let (presented, expected) = (presented.as_bytes(), self.csrf_token.as_bytes());
        presented.len() == expected.len()
            && presented.iter().zip(expected).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
    }
}

fn session_hash(cookie_value: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, cookie_value.as_bytes());
    digest.as_ref().iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Opens a session for a mapped person.
pub fn open_session(
    conn: &mut DbConnection,
    person: &Person,
    grant: &Grant,
    policy: &SessionPolicy,
    now: NaiveDateTime,
) -> Result<OpenedSession, StoreError> {
    let cookie_value = random_base62(43);
    let (invitation_id, partner_id, scopes) = match grant {
        Grant::Operator => (None, None, crate::registry::scopes::ADMIN.to_string()),
        Grant::PartnerAdmin { invitation_id, partner_id, scopes } => {
            (Some(invitation_id.clone()), Some(partner_id.clone()), scopes.join(" "))
        }
    };
    let row = SessionRow {
        id_hash: session_hash(&cookie_value),
        csrf_token: random_base62(32),
        issuer: person.issuer.clone(),
        subject: person.subject.clone(),
        email: person.email.clone().unwrap_or_default(),
        invitation_id,
        partner_id,
        scopes,
        created_at: now,
        last_seen_at: now,
        expires_at: now + policy.lifetime,
    };
    rows::insert_session(conn, &row)?;
    Ok(OpenedSession { cookie_value, session: ActiveSession::from_row(row, policy) })
}

/// The live session a cookie names, used now (which moves its idle deadline); `None` when it is unknown,
/// past its lifetime or idle too long (such a session is deleted).
pub fn resume_session(
    conn: &mut DbConnection,
    cookie_value: &str,
    policy: &SessionPolicy,
    now: NaiveDateTime,
) -> Result<Option<ActiveSession>, StoreError> {
    let id_hash = session_hash(cookie_value);
    let Some(mut row) = rows::session(conn, &id_hash)? else { return Ok(None) };
    if now >= row.expires_at || now >= row.last_seen_at + policy.idle_timeout {
        rows::delete_session(conn, &id_hash)?;
        return Ok(None);
    }
    if let Some(partner_id) = &row.partner_id {
        if !rows::partner_active(conn, partner_id)? {
            return Ok(None);
        }
    }
    rows::touch_session(conn, &id_hash, now)?;
    row.last_seen_at = now;
    Ok(Some(ActiveSession::from_row(row, policy)))
}

/// Ends a session server-side: its cookie opens nothing afterwards.
pub fn end_session(conn: &mut DbConnection, cookie_value: &str) -> Result<bool, StoreError> {
    rows::delete_session(conn, &session_hash(cookie_value))
}

/// The console's sign-in service, shared by the workers.
#[derive(Clone)]
pub struct ConsoleAuth {
    /// Sign-ins bind invitations, which changes the registry: its units of work apply that here.
    registry: Registry,
    settings: Arc<ConsoleSettings>,
    provider: Option<Arc<oidc::Provider>>,
    /// The server's clock (`ServerConfig::clock`): sessions expire on the time everything else uses.
    clock: SharedClock,
}

impl ConsoleAuth {
    pub fn new(registry: Registry, settings: ConsoleSettings, clock: SharedClock) -> Self {
        let provider = settings.provider.clone().map(|p| Arc::new(oidc::Provider::new(p)));
        ConsoleAuth { registry, settings: Arc::new(settings), provider, clock }
    }

    pub fn settings(&self) -> &ConsoleSettings {
        &self.settings
    }

    pub fn clock(&self) -> SharedClock {
        self.clock.clone()
    }

    async fn blocking<T, F>(&self, work: F) -> Result<T, SignInError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx) -> Result<T, SignInError> + Send + 'static,
    {
        let registry = self.registry.clone();
        tokio::task::spawn_blocking(move || {
            let mut tx = registry.begin()?;
            work(&mut tx)
        })
        .await
        .map_err(|err| SignInError::Store(StoreError::Unavailable(err.to_string())))?
    }

    /// Starts a sign-in: the provider URL to send the browser to, and the `state` that the callback must
    /// bring back to this same browser.
    pub async fn begin(&self) -> Result<(String, String), SignInError> {
        let provider = self.provider.as_ref().ok_or(SignInError::NotConfigured)?;
        let request = provider.authorization_request().await?;
        let state = request.state.clone();
        let row = SignInRow {
            state: request.state,
            nonce: request.nonce,
            pkce_verifier: request.pkce_verifier,
            created_at: self.clock.now(),
        };
        self.blocking(move |conn| Ok(rows::insert_sign_in(conn, &row)?)).await?;
        Ok((request.url, state))
    }

    /// Completes a sign-in at the callback: verifies the person, maps them, opens their session.
    pub async fn complete(&self, state: String, code: String) -> Result<OpenedSession, SignInError> {
        let provider = self.provider.clone().ok_or(SignInError::NotConfigured)?;
        let clock = self.clock();
        let window_start = clock.now() - Duration::minutes(SIGN_IN_WINDOW_MINUTES);
        let sign_in = self.blocking(move |conn| Ok(rows::take_sign_in(conn, &state)?)).await?;
        let sign_in = sign_in.filter(|row| row.created_at >= window_start).ok_or(SignInError::UnknownSignIn)?;
        let person = provider.person(&code, &sign_in.nonce, &sign_in.pkce_verifier).await?;
        let rule = OperatorRule {
            groups: provider.settings().operator_groups.clone(),
            email_domains: provider.settings().operator_email_domains.clone(),
        };
        let policy = self.settings.sessions.clone();
        self.blocking(move |conn| {
            let now = clock.now();
            let grant = map_person(conn, &rule, &person, now)?;
            Ok(open_session(conn, &person, &grant, &policy, now)?)
        })
        .await
    }

    pub async fn resume(&self, cookie_value: String) -> Result<Option<ActiveSession>, SignInError> {
        let (policy, clock) = (self.settings.sessions.clone(), self.clock());
        self.blocking(move |conn| Ok(resume_session(conn, &cookie_value, &policy, clock.now())?)).await
    }

    pub async fn end(&self, cookie_value: String) -> Result<bool, SignInError> {
        self.blocking(move |conn| Ok(end_session(conn, &cookie_value)?)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(email: &str, verified: bool, groups: &[&str]) -> Person {
        Person {
            issuer: "https://idp.example".into(),
            subject: "s-1".into(),
            email: Some(email.into()),
            email_verified: verified,
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    #[test]
    fn the_operator_rule_admits_by_group_or_by_a_verified_email_domain_only() {
        let rule = OperatorRule { groups: vec!["platform-ops".into()], email_domains: vec!["ops.example".into()] };
        assert!(rule.admits(&person("a@elsewhere.example", false, &["staff", "platform-ops"])));
        assert!(rule.admits(&person("A@Ops.Example", true, &[])));
        assert!(!rule.admits(&person("a@ops.example", false, &[])), "an unverified address proves nothing");
        assert!(!rule.admits(&person("a@evil-ops.example", true, &[])));
        assert!(!rule.admits(&person("a@ops.example.evil", true, &["platform"])));
        assert!(!OperatorRule::default().admits(&person("a@ops.example", true, &["platform-ops"])));
    }
}
