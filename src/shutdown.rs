//! Graceful shutdown on SIGTERM (what an orchestrator sends) and SIGINT (Ctrl-C) alike: the listeners close
//! at once, requests in flight get up to [`DEADLINE`] to finish, and the caller then flushes the audit queue
//! (every answered token request already has its event committed). A second signal stops without waiting.
//! actix-web's own handling would stop at once on SIGINT, so `start` disables it and `RunningServer::wait`
//! uses this instead.

use std::time::Duration;

use actix_web::dev::ServerHandle;

/// How long requests in flight may take to finish once shutdown begins.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Resolves at the next SIGTERM or SIGINT with its name; never, if the handlers cannot be installed.
pub async fn signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (mut term, mut int) = match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(term), Ok(int)) => (term, int),
        (Err(err), _) | (_, Err(err)) => {
            log::error!("cannot listen for SIGTERM and SIGINT, so they will not stop the server gracefully: {err}");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

/// Waits for a signal, then calls `stopping` (which ends what waits on purpose, like long polls) and stops
/// `server` gracefully; a second signal cuts the wait short.
pub async fn on_signal(server: ServerHandle, stopping: impl FnOnce()) {
    let name = signal().await;
    stopping();
    log::info!(
        "{name} received: no new connections; requests in flight have {} s to finish, then the audit queue is flushed",
        DEADLINE.as_secs()
    );
    tokio::select! {
        _ = server.stop(true) => {}
        name = signal() => {
            log::warn!("{name} received again: stopping without waiting for requests in flight");
            server.stop(false).await;
        }
    }
}
