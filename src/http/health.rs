//! Liveness and readiness.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, HttpResponse};
use serde_json::json;
use tokio::sync::watch;

use super::AppState;
use crate::metrics::Metrics;
use crate::store::DbPool;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// How long readiness waits for the database: a load balancer's probe must get an answer, not a timeout.
const DATABASE_WAIT: Duration = Duration::from_millis(1500);

/// How long a readiness answer is reused: however many callers ask, the database is probed at most once in
/// this period (unauthenticated probes must not compete with token requests for the pool).
const REFRESH: Duration = Duration::from_millis(250);

/// What readiness depends on, one field per fact; the instance is ready when every fact holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    /// The database answered within [`DATABASE_WAIT`].
    pub database: bool,
}

impl Facts {
    pub fn ready(&self) -> bool {
        self.database
    }
}

/// The readiness facts of this instance, probed at most once every [`REFRESH`] for all callers together.
pub struct Readiness {
    pool: DbPool,
    metrics: Arc<Metrics>,
    latest: Mutex<Latest>,
}

#[derive(Default)]
struct Latest {
    /// The last probe's facts and when it ended.
    answer: Option<(Instant, Facts)>,
    /// The probe under way: callers that find the answer stale wait for it instead of starting another.
    probing: Option<watch::Receiver<Option<Facts>>>,
}

impl Readiness {
    pub fn new(pool: DbPool, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Readiness { pool, metrics, latest: Mutex::default() })
    }

    /// Facts at most [`REFRESH`] old: the last answer, else the one probe under way (started here if there is
    /// none). The lock is never held across a probe.
    pub async fn facts(self: &Arc<Self>) -> Facts {
        let mut probing = {
            let mut latest = self.latest.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            match (&latest.answer, &latest.probing) {
                (Some((at, facts)), _) if at.elapsed() < REFRESH => return *facts,
                // A closed channel is a probe whose task ended unfinished (its runtime stopped): start anew.
                (_, Some(probing)) if probing.has_changed().is_ok() => probing.clone(),
                _ => {
                    let (done, probing) = watch::channel(None);
                    latest.probing = Some(probing.clone());
                    let this = self.clone();
                    // A task of its own: the probe ends and is recorded even if every caller went away.
                    tokio::spawn(async move {
                        let facts = this.probe().await;
                        let mut latest = this.latest.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                        // Real time, not the server's clock: it paces real probes of the database.
                        latest.answer = Some((Instant::now(), facts));
                        latest.probing = None;
                        drop(latest);
                        let _ = done.send(Some(facts));
                    });
                    probing
                }
            }
        };
        let answer = probing.wait_for(Option::is_some).await.map(|facts| *facts);
        answer.ok().flatten().unwrap_or(Facts { database: false })
    }

    /// Checks every fact now (the database on the blocking pool).
    async fn probe(&self) -> Facts {
        self.metrics.readiness_probe();
        let pool = self.pool.clone();
        let ping = web::block(move || pool.get().ok().is_some_and(|mut conn| crate::store::ping(&mut conn).is_ok()));
        let database = matches!(tokio::time::timeout(DATABASE_WAIT, ping).await, Ok(Ok(true)));
        Facts { database }
    }
}

/// Ready when every [`Facts`] holds and the stored signing keys open (a key that does not open leaves the
/// instance signing with an older one, and its next start would fail); the key ring cannot exist without an
/// active key. The keys' state is in memory, read at each answer.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let facts = state.readiness.facts().await;
    let kid = state.tokens.keys().active().kid().to_string();
    let database = if facts.database { "ok" } else { "unreachable" };
    match state.tokens.live_keys().unusable() {
        None if facts.ready() => {
            HttpResponse::Ok().json(json!({"status": "ready", "database": database, "active_kid": kid}))
        }
        None => HttpResponse::ServiceUnavailable()
            .json(json!({"status": "unavailable", "database": database, "active_kid": kid})),
        Some(keys) => HttpResponse::ServiceUnavailable()
            .json(json!({"status": "unavailable", "database": database, "keys": keys, "active_kid": kid})),
    }
}
