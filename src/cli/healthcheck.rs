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
    /// The server's TLS certificate, as `serve` takes it: when set, the default URL is https://.
    #[arg(long, env = "PARTNERGATE_TLS_CERT")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 3)]
    pub timeout_secs: u64,
}

pub async fn run(args: HealthcheckArgs) -> CliResult {
    let scheme = if args.tls_cert.is_some() { "https" } else { "http" };
    let loopback = args.url.is_none();
    let base = args.url.unwrap_or_else(|| format!("{scheme}://127.0.0.1:{}", args.bind.port()));
    let url = format!("{}/readyz", base.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.timeout_secs))
        // Our own server on loopback, asked whether it is ready and sent nothing secret: its certificate names
        // the public host, not 127.0.0.1, so it is not checked. A --url is checked as usual.
        .danger_accept_invalid_certs(loopback && scheme == "https")
        .build()
        .map_err(|err| CliError(err.to_string()))?;
    let response = client.get(&url).send().await.map_err(|err| CliError(format!("{url}: {err}")))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(CliError(format!("{url}: not ready ({})", response.status())))
    }
}
