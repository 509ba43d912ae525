//! Following the issuer's revocation stream (RFC 8936 poll delivery of RFC 8417 Security Event Tokens), so
//! that a disabled client, a suspended partner, a revoked token or a bulk cut-off is refused here within a
//! second, not when the token expires.
//!
//! A background task gets a token for the resource server's own client (scope `authz.events.read`),
//! long-polls the poll endpoint named at `/.well-known/ssf-configuration`, checks each SET against the
//! issuer's JWKS (the verifier's own cache), applies it to a denylist, saves the denylist (if a state file is
//! configured) and only then acknowledges it. [`crate::Authorizer`] consults the denylist on every request,
//! tokens answered from the verified-token cache included. Start-up and staleness policies:
//! [`StartupPolicy`], [`StalePolicy`].

mod denylist;
mod set;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::principal::Principal;
use crate::token_source::ClientToken;
use crate::verifier::Verifier;
use denylist::{DenyState, Denylist};
use set::{Event, SetChecker};

/// The reserved scope a receiver's token must hold.
pub const EVENTS_READ_SCOPE: &str = "authz.events.read";

/// Before the follower has caught up with the stream once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartupPolicy {
    /// Refuse requests (`503`) until the events that happened meanwhile are applied, for at most `bound`;
    /// after it the [`StalePolicy`] decides. The default, with a bound of 10 s.
    CatchUp { bound: Duration },
    /// Serve at once; events are applied as they arrive.
    ServeAtOnce,
}

/// When the stream has not answered for longer than [`RevocationConfig::stale_after`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StalePolicy {
    /// Keep serving with what is known, and say so ([`RevocationStats::stale`], a warning in the log). The
    /// default: an issuer outage does not take every API down with it.
    KeepServing,
    /// Refuse every protected request with `503` until the stream answers again.
    Refuse,
}

/// How the follower follows; [`RevocationConfig::new`] has the defaults.
#[derive(Clone)]
pub struct RevocationConfig {
    /// The resource server's own client, holding `authz.events.read`.
    pub client_id: String,
    pub client_secret: String,
    /// The transmitter metadata; default `{issuer}/.well-known/ssf-configuration`.
    pub configuration_url: Option<String>,
    /// Where to poll, when not the metadata's `partnergate_poll_endpoint` (e.g. one instance's own address).
    pub poll_endpoint: Option<String>,
    pub startup: StartupPolicy,
    /// How long without an answer from the stream before it counts as unreachable. Above the server's
    /// 25 s long poll, which answers even when nothing happens.
    pub stale_after: Duration,
    pub when_stale: StalePolicy,
    /// Where the denylist and position are kept across restarts (the server resumes after the last
    /// acknowledged event, so what was acknowledged before a restart is known only from here).
    pub state_file: Option<PathBuf>,
    /// `maxEvents` per poll.
    pub max_events: u32,
    /// The longest wait between retries while the stream cannot be reached.
    pub max_backoff: Duration,
    /// Timeout of one poll (above the server's long poll).
    pub poll_timeout: Duration,
}

impl RevocationConfig {
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        RevocationConfig {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            configuration_url: None,
            poll_endpoint: None,
            startup: StartupPolicy::CatchUp { bound: Duration::from_secs(10) },
            stale_after: Duration::from_secs(60),
            when_stale: StalePolicy::KeepServing,
            state_file: None,
            max_events: 100,
            max_backoff: Duration::from_secs(5),
            poll_timeout: Duration::from_secs(40),
        }
    }
}

impl std::fmt::Debug for RevocationConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationConfig")
            .field("client_id", &self.client_id)
            .field("poll_endpoint", &self.poll_endpoint)
            .field("startup", &self.startup)
            .field("when_stale", &self.when_stale)
            .finish()
    }
}

/// What the follower has done, for metrics and health checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevocationStats {
    /// Caught up with the stream at least once.
    pub ready: bool,
    /// No answer from the stream for longer than `stale_after`.
    pub stale: bool,
    /// Since the last answer from the stream (`None`: none yet).
    pub since_contact: Option<Duration>,
    /// The highest sequence number applied.
    pub last_seq: i64,
    pub events_applied: u64,
    /// SETs not applied: unsigned, forged, signed with a key not in the JWKS, for another issuer or receiver.
    pub sets_refused: u64,
    /// Times a sequence number came more than one after the last one applied.
    pub sequence_gaps: u64,
    pub poll_failures: u64,
    /// Requests refused because the stream named their token, client or partner.
    pub requests_refused: u64,
    pub revoked_tokens: usize,
    pub disabled_clients: usize,
    pub suspended_partners: usize,
    pub cutoffs: usize,
}

struct Shared {
    denylist: Denylist,
    clock: Arc<dyn Clock>,
    started: Duration,
    startup: StartupPolicy,
    stale_after: Duration,
    when_stale: StalePolicy,
    /// Clock time of the last answer, in milliseconds (0: none yet).
    last_contact_ms: AtomicU64,
    ready: watch::Sender<bool>,
    stale_logged: AtomicBool,
    applied: AtomicU64,
    refused_sets: AtomicU64,
    gaps: AtomicU64,
    poll_failures: AtomicU64,
    refused_requests: AtomicU64,
}

/// The request path's handle on the follower: the denylist and the policies. Cheap to clone.
#[derive(Clone)]
pub struct RevocationFollower {
    shared: Arc<Shared>,
}

/// The background task; dropping it (or [`FollowerTask::stop`]) stops following. Events received but not
/// yet acknowledged are sent again to the next follower.
pub struct FollowerTask {
    handle: JoinHandle<()>,
}

impl FollowerTask {
    pub async fn stop(self) {
        self.handle.abort();
        let _ = (&mut { self }.handle).await;
    }
}

impl Drop for FollowerTask {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// The state file: the denylist, and whose stream it follows.
#[derive(serde::Serialize, Deserialize)]
struct StateFile {
    issuer: String,
    receiver: String,
    state: DenyState,
}

impl RevocationFollower {
    /// Starts following on the current tokio runtime, with `verifier`'s issuer, keys and clock.
    pub fn start(verifier: &Verifier, config: RevocationConfig) -> (RevocationFollower, FollowerTask) {
        let discovery = verifier.discovery();
        let issuer = discovery.issuer().to_string();
        let clock = verifier.clock();
        let state = config
            .state_file
            .as_ref()
            .map_or_else(DenyState::default, |path| load_state(path, &issuer, &config.client_id));
        let shared = Arc::new(Shared {
            denylist: Denylist::from_state(state),
            started: clock.now(),
            clock: clock.clone(),
            startup: config.startup,
            stale_after: config.stale_after,
            when_stale: config.when_stale,
            last_contact_ms: AtomicU64::new(0),
            ready: watch::Sender::new(false),
            stale_logged: AtomicBool::new(false),
            applied: AtomicU64::new(0),
            refused_sets: AtomicU64::new(0),
            gaps: AtomicU64::new(0),
            poll_failures: AtomicU64::new(0),
            refused_requests: AtomicU64::new(0),
        });
        let token =
            ClientToken::new(discovery.clone(), clock, &config.client_id, &config.client_secret, EVENTS_READ_SCOPE);
        let http = reqwest::Client::builder().timeout(config.poll_timeout).build().unwrap_or_default();
        let poller = Poller {
            shared: shared.clone(),
            checker: SetChecker::new(verifier.jwks(), &issuer, &config.client_id),
            discovery,
            issuer,
            http,
            token,
            config,
            target: None,
        };
        let handle = tokio::spawn(poller.run());
        (RevocationFollower { shared }, FollowerTask { handle })
    }

    /// Caught up with the stream at least once.
    pub fn ready(&self) -> bool {
        *self.shared.ready.borrow()
    }

    /// Waits until [`RevocationFollower::ready`], at most `timeout`; whether it is.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let mut ready = self.shared.ready.subscribe();
        tokio::time::timeout(timeout, ready.wait_for(|ready| *ready)).await.is_ok_and(|waited| waited.is_ok())
    }

    fn since_contact(&self) -> Option<Duration> {
        let last = self.shared.last_contact_ms.load(Ordering::Relaxed);
        (last > 0).then(|| self.shared.clock.now().saturating_sub(Duration::from_millis(last)))
    }

    fn stale(&self) -> bool {
        let shared = &*self.shared;
        let silent = self.since_contact().unwrap_or_else(|| shared.clock.now().saturating_sub(shared.started));
        silent > shared.stale_after
    }

    /// Whether protected requests may be served now, by the start-up and staleness policies.
    pub(crate) fn admits_requests(&self) -> bool {
        let shared = &*self.shared;
        if let StartupPolicy::CatchUp { bound } = shared.startup {
            if !self.ready() && shared.clock.now() < shared.started + bound {
                return false;
            }
        }
        if !self.stale() {
            return true;
        }
        if !shared.stale_logged.swap(true, Ordering::Relaxed) {
            log::warn!(
                "revocation stream: no answer for over {:?}; policy {:?}",
                shared.stale_after,
                shared.when_stale
            );
        }
        shared.when_stale == StalePolicy::KeepServing
    }

    /// Whether the stream has made `principal`'s token unacceptable (counted).
    pub(crate) fn refuses(&self, principal: &Principal) -> bool {
        let refused = self.shared.denylist.refuses(principal);
        if refused {
            self.shared.refused_requests.fetch_add(1, Ordering::Relaxed);
        }
        refused
    }

    pub fn stats(&self) -> RevocationStats {
        let shared = &*self.shared;
        let sizes = shared.denylist.sizes();
        RevocationStats {
            ready: self.ready(),
            stale: self.stale(),
            since_contact: self.since_contact(),
            last_seq: shared.denylist.last_seq(),
            events_applied: shared.applied.load(Ordering::Relaxed),
            sets_refused: shared.refused_sets.load(Ordering::Relaxed),
            sequence_gaps: shared.gaps.load(Ordering::Relaxed),
            poll_failures: shared.poll_failures.load(Ordering::Relaxed),
            requests_refused: shared.refused_requests.load(Ordering::Relaxed),
            revoked_tokens: sizes.revoked_tokens,
            disabled_clients: sizes.disabled_clients,
            suspended_partners: sizes.suspended_partners,
            cutoffs: sizes.cutoffs,
        }
    }
}

fn load_state(path: &std::path::Path, issuer: &str, receiver: &str) -> DenyState {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return DenyState::default(),
        Err(err) => {
            log::error!("revocation stream: cannot read the state file ({err}); starting empty");
            return DenyState::default();
        }
    };
    match serde_json::from_slice::<StateFile>(&text) {
        Ok(file) if file.issuer == issuer && file.receiver == receiver => file.state,
        Ok(_) => {
            log::warn!("revocation stream: the state file is another issuer's or receiver's; starting empty");
            DenyState::default()
        }
        Err(err) => {
            log::error!("revocation stream: the state file is unreadable ({err}); starting empty");
            DenyState::default()
        }
    }
}

/// The part of the transmitter metadata the follower uses.
#[derive(Deserialize)]
struct Transmitter {
    issuer: String,
    partnergate_poll_endpoint: String,
    #[serde(default)]
    partnergate_token_audience: Option<String>,
}

#[derive(Deserialize)]
struct PollAnswer {
    #[serde(default)]
    sets: BTreeMap<String, String>,
    #[serde(default, rename = "moreAvailable")]
    more_available: bool,
}

/// The pause before polling again when an answer held only refused SETs (which the server sends again).
const REFUSED_PAUSE: Duration = Duration::from_millis(250);

/// What one poll came to.
struct Polled {
    applied: usize,
    refused: usize,
}

struct Poller {
    shared: Arc<Shared>,
    checker: SetChecker,
    discovery: Arc<crate::Discovery>,
    issuer: String,
    http: reqwest::Client,
    token: ClientToken,
    config: RevocationConfig,
    /// The poll endpoint and the audience of its tokens, once read.
    target: Option<(String, String)>,
}

impl Poller {
    async fn run(mut self) {
        let mut acks: Vec<String> = Vec::new();
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.poll(&mut acks).await {
                Ok(Polled { applied, refused }) => {
                    backoff = Duration::from_millis(100);
                    // A refused SET is not acknowledged and comes again at once: do not spin on it (but send
                    // the acknowledgements of what was applied first).
                    if refused > 0 && applied == 0 {
                        tokio::time::sleep(REFUSED_PAUSE).await;
                    }
                }
                Err(reason) => {
                    self.shared.poll_failures.fetch_add(1, Ordering::Relaxed);
                    log::warn!("revocation stream: {reason}; retrying in {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.config.max_backoff);
                }
            }
        }
    }

    async fn target(&mut self) -> Result<(String, String), String> {
        if let Some(target) = &self.target {
            return Ok(target.clone());
        }
        let url = self
            .config
            .configuration_url
            .clone()
            .unwrap_or_else(|| format!("{}/.well-known/ssf-configuration", self.issuer));
        let response = self.discovery.http().get(&url).send().await;
        let response = response.map_err(|err| format!("transmitter metadata unreachable: {}", err.without_url()))?;
        if !response.status().is_success() {
            return Err(format!("transmitter metadata answered {}", response.status()));
        }
        let metadata: Transmitter = response.json().await.map_err(|err| format!("transmitter metadata: {err}"))?;
        if metadata.issuer.trim_end_matches('/') != self.issuer {
            return Err(format!("the transmitter metadata names another issuer: {}", metadata.issuer));
        }
        let endpoint = self.config.poll_endpoint.clone().unwrap_or(metadata.partnergate_poll_endpoint);
        let audience = metadata.partnergate_token_audience.unwrap_or_else(|| self.issuer.clone());
        self.target = Some((endpoint, audience));
        Ok(self.target.clone().expect("just set"))
    }

    /// One poll: sends `acks` (cleared once the server has them), applies what comes.
    async fn poll(&mut self, acks: &mut Vec<String>) -> Result<Polled, String> {
        let (endpoint, audience) = self.target().await?;
        let token = self.token.get(Some(&audience)).await?;
        let catching_up = !*self.shared.ready.borrow();
        let body = json!({"ack": acks, "maxEvents": self.config.max_events, "returnImmediately": catching_up});
        let response = self.http.post(&endpoint).bearer_auth(token).json(&body).send().await;
        let response = response.map_err(|err| format!("poll endpoint unreachable: {}", err.without_url()))?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            self.token.invalidate();
        }
        if !status.is_success() {
            let problem = response.text().await.unwrap_or_default();
            return Err(format!("the poll endpoint answered {status}: {problem:.300}"));
        }
        let answer: PollAnswer = response.json().await.map_err(|err| format!("poll answer: {err}"))?;
        acks.clear();
        let now = self.shared.clock.now();
        self.shared.last_contact_ms.store(now.as_millis().max(1) as u64, Ordering::Relaxed);
        if self.shared.stale_logged.swap(false, Ordering::Relaxed) {
            log::info!("revocation stream: reachable again");
        }

        let mut events: Vec<Event> = Vec::with_capacity(answer.sets.len());
        let mut refused = 0;
        for (jti, token) in &answer.sets {
            match self.checker.check(token).await {
                Ok(event) if event.jti == *jti => events.push(event),
                Ok(_) => refused += self.refuse(jti, "its jti is not the one it was sent under"),
                Err(why) => refused += self.refuse(jti, &why.to_string()),
            }
        }
        events.sort_by_key(|event| event.seq);
        for event in &events {
            let last = self.shared.denylist.last_seq();
            if last > 0 && event.seq > last + 1 {
                self.shared.gaps.fetch_add(1, Ordering::Relaxed);
                log::warn!("revocation stream: event {} follows {last}: a gap in the sequence", event.seq);
            }
            self.shared.denylist.apply(event.seq, &event.change, now.as_secs());
            self.shared.applied.fetch_add(1, Ordering::Relaxed);
            log::debug!("revocation stream: applied event {}: {:?}", event.seq, event.change);
        }
        // Saved before acknowledged: what the server forgets, the file remembers.
        if !events.is_empty() {
            self.save_state()?;
        }
        let applied = events.len();
        acks.extend(events.into_iter().map(|event| event.jti));
        if catching_up && !answer.more_available {
            self.shared.ready.send_replace(true);
            log::info!("revocation stream: caught up at event {}", self.shared.denylist.last_seq());
        }
        Ok(Polled { applied, refused })
    }

    fn refuse(&self, jti: &str, why: &str) -> usize {
        self.shared.refused_sets.fetch_add(1, Ordering::Relaxed);
        log::warn!("revocation stream: SET {jti:.80} ignored: {why}");
        1
    }

    fn save_state(&self) -> Result<(), String> {
        let Some(path) = &self.config.state_file else { return Ok(()) };
        let file = StateFile {
            issuer: self.issuer.clone(),
            receiver: self.config.client_id.clone(),
            state: self.shared.denylist.snapshot(),
        };
        let text = serde_json::to_vec(&file).map_err(|err| format!("state file: {err}"))?;
        let temporary = path.with_extension("tmp");
        std::fs::write(&temporary, text)
            .and_then(|()| std::fs::rename(&temporary, path))
            .map_err(|err| format!("cannot write the state file: {err}"))
    }
}
