//! `partnergate healthcheck`: asks a running server's `/readyz` and exits 0 when it is ready, 1 otherwise. For
//! container health checks: slim images have no curl.

use std::time::Duration;

use clap::Args;

use super::{CliError, CliResult};
use crate::config::DEFAULT_BIND;

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// The server's base URL; defaults to http:// on the port of `PARTNERGATE_BIND`, on loopback.
    #[arg(long)]
    pub url: Option<String>,
    /// The server's listen address, as `serve` takes it.
    #[arg(long, env = "PARTNERGATE_BIND", default_value = DEFAULT_BIND)]
    pub bind: std::net::SocketAddr,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 3)]
    pub timeout_secs: u64,
}

pub async fn run(args: HealthcheckArgs) -> CliResult {
    let base = args.url.unwrap_or_else(|| format!("http://127.0.0.1:{}", args.bind.port()));
    let url = format!("{}/readyz", base.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.timeout_secs))
        .build()
        .map_err(|err| CliError(err.to_string()))?;
    let response = client.get(&url).send().await.map_err(|err| CliError(format!("{url}: {err}")))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(CliError(format!("{url}: not ready ({})", response.status())))
    }
}
