//! One request's check, shared by the integrations: the route's requirement, the bearer token, the
//! verification, the scopes; and its usage record afterwards.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::VerifyError;
use crate::policy::{Requirement, RoutePolicy};
use crate::principal::Principal;
use crate::rejection::Rejection;
use crate::reporter::{UsageRecord, UsageReporter};
use crate::revocation::RevocationFollower;
use crate::verifier::Verifier;

/// A refused request, with the caller when the token itself was good (a `403`), for the usage record.
#[derive(Debug)]
pub struct Refusal {
    pub rejection: Rejection,
    pub principal: Option<Arc<Principal>>,
}

impl From<Rejection> for Refusal {
    fn from(rejection: Rejection) -> Self {
        Refusal { rejection, principal: None }
    }
}

/// What [`Authorizer::authorize_now`] came to.
#[derive(Debug)]
pub enum Decision<'t> {
    /// Decided without waiting.
    Decided(Result<Option<Arc<Principal>>, Refusal>),
    /// The token needs a signature verification: [`Authorizer::authorize_verified`].
    Verify(&'t str),
}

/// When a reported request arrived: its time for the record and a timer for its latency.
#[derive(Debug, Clone, Copy)]
pub struct ReportStart {
    time: Duration,
    timer: Instant,
}

/// The verifier, the route policy and (optionally) the usage reporter of one resource server. Cheap to clone.
#[derive(Clone)]
pub struct Authorizer {
    verifier: Verifier,
    policy: Arc<RoutePolicy>,
    realm: Arc<str>,
    reporter: Option<UsageReporter>,
    revocation: Option<RevocationFollower>,
}

impl Authorizer {
    pub fn new(verifier: Verifier, policy: RoutePolicy) -> Self {
        Authorizer { verifier, policy: Arc::new(policy), realm: Arc::from("api"), reporter: None, revocation: None }
    }

    /// The `realm` of the `WWW-Authenticate` challenges (default `api`).
    pub fn with_realm(mut self, realm: &str) -> Self {
        self.realm = Arc::from(realm);
        self
    }

    /// Every authenticated request on a matched route goes to `reporter`.
    pub fn with_reporter(mut self, reporter: UsageReporter) -> Self {
        self.reporter = Some(reporter);
        self
    }

    /// Every request is checked against what `follower` has heard on the revocation stream, and served or
    /// not by its start-up and staleness policies.
    pub fn with_revocation(mut self, follower: RevocationFollower) -> Self {
        self.revocation = Some(follower);
        self
    }

    pub fn revocation(&self) -> Option<&RevocationFollower> {
        self.revocation.as_ref()
    }

    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Checks a request to `method` on the matched `route` pattern (`None`: no route matched) with `token`,
    /// the result of [`crate::bearer_token`]. `Ok(None)`: a public route.
    pub async fn authorize(
        &self,
        method: &str,
        route: Option<&str>,
        token: Result<&str, Rejection>,
    ) -> Result<Option<Arc<Principal>>, Refusal> {
        match self.authorize_now(method, route, token) {
            Decision::Decided(decision) => decision,
            Decision::Verify(token) => self.authorize_verified(method, route, token).await,
        }
    }

    /// As much of [`Authorizer::authorize`] as needs no waiting: a public route, a missing or malformed
    /// token, a refused start-up, or a token verified before (the warm path, answered without a future).
    pub fn authorize_now<'t>(
        &self,
        method: &str,
        route: Option<&str>,
        token: Result<&'t str, Rejection>,
    ) -> Decision<'t> {
        let requirement = self.policy.requirement(method, route);
        if *requirement == Requirement::Public {
            return Decision::Decided(Ok(None));
        }
        if self.revocation.as_ref().is_some_and(|follower| !follower.admits_requests()) {
            return Decision::Decided(Err(Rejection::Unavailable.into()));
        }
        let token = match token {
            Ok(token) => token,
            Err(rejection) => return Decision::Decided(Err(rejection.into())),
        };
        match self.verifier.verify_cached(token) {
            Some(verified) => Decision::Decided(self.judge(requirement, verified)),
            None => Decision::Verify(token),
        }
    }

    /// The rest of [`Authorizer::authorize`] for a token [`Authorizer::authorize_now`] could not decide.
    pub async fn authorize_verified(
        &self,
        method: &str,
        route: Option<&str>,
        token: &str,
    ) -> Result<Option<Arc<Principal>>, Refusal> {
        let verified = self.verifier.verify(token).await;
        self.judge(self.policy.requirement(method, route), verified)
    }

    /// The verified (or refused) token against the revocation stream and the route's scopes.
    fn judge(
        &self,
        requirement: &Requirement,
        verified: Result<Arc<Principal>, VerifyError>,
    ) -> Result<Option<Arc<Principal>>, Refusal> {
        let principal = verified.map_err(|err| match err {
            VerifyError::KeysUnavailable => Rejection::Unavailable,
            _ => Rejection::InvalidToken,
        })?;
        // Also for a token answered from the verified-token cache: the stream may have spoken since.
        if self.revocation.as_ref().is_some_and(|follower| follower.refuses(&principal)) {
            return Err(Rejection::InvalidToken.into());
        }
        let scope = match requirement {
            Requirement::Denied => String::new(),
            Requirement::Scopes(needed) if !needed.iter().all(|scope| principal.scopes.contains(scope)) => {
                needed.join(" ")
            }
            _ => return Ok(Some(principal)),
        };
        Err(Refusal { rejection: Rejection::InsufficientScope { scope }, principal: Some(principal) })
    }

    /// One request for an integration: check it, then either pass `request` on (`forward`, with the caller)
    /// or answer the refusal (`refuse`, with the rejection and the realm); then report it, with the status
    /// `status_of` reads from the answer.
    #[allow(clippy::too_many_arguments)]
    pub async fn handle<Req, R, E, Fut>(
        &self,
        method: &str,
        route: Option<&str>,
        token: Result<&str, Rejection>,
        request: Req,
        forward: impl FnOnce(Req, Option<Arc<Principal>>) -> Fut,
        refuse: impl FnOnce(Req, &Rejection, &str) -> R,
        status_of: impl FnOnce(&R) -> u16,
    ) -> Result<R, E>
    where
        Fut: Future<Output = Result<R, E>>,
    {
        let started = self.start_report();
        let (answer, principal) = match self.authorize(method, route, token).await {
            Ok(principal) => (forward(request, principal.clone()).await?, principal),
            Err(refusal) => (refuse(request, &refusal.rejection, &self.realm), refusal.principal),
        };
        self.finish_report(started, method, route, status_of(&answer), principal.as_deref());
        Ok(answer)
    }

    /// When a request arrived, read only when it will be reported.
    pub fn start_report(&self) -> Option<ReportStart> {
        self.reporter.as_ref().map(|reporter| ReportStart { time: reporter.now(), timer: Instant::now() })
    }

    /// Reports a request begun at `started` (nothing when there is no reporter, no matched route or no
    /// verified caller).
    pub fn finish_report(
        &self,
        started: Option<ReportStart>,
        method: &str,
        route: Option<&str>,
        status: u16,
        principal: Option<&Principal>,
    ) {
        if let Some(started) = started {
            self.report(started.time, method, route, status, started.timer.elapsed(), principal);
        }
    }

    fn report(
        &self,
        started: Duration,
        method: &str,
        route: Option<&str>,
        status: u16,
        latency: Duration,
        principal: Option<&Principal>,
    ) {
        let (Some(reporter), Some(route), Some(principal)) = (&self.reporter, route, principal) else { return };
        reporter.record(UsageRecord {
            time: started,
            method: method.to_string(),
            route: route.to_string(),
            status,
            latency_ms: latency.as_millis() as u64,
            client_id: principal.client_id.clone(),
            partner_id: principal.partner_id.clone(),
            jti: principal.jti.clone(),
        });
    }
}
