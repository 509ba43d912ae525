//! `partnergate serve`.

use super::{CliError, CliResult, Context, ServeCommand};
use crate::config::{LogFormat, ServerConfig};

pub async fn run(_ctx: &Context, args: ServeCommand, log_format: LogFormat) -> CliResult {
    let config = ServerConfig::from_args(&args.database, &args.keys, &args.serve).map_err(CliError)?;
    log::info!("database: {}", crate::store::redact_url(&config.database_url));
    let scheme = if config.tls.is_some() { "https" } else { "http" };
    let server = crate::start(config).await?;
    // The server's own log line says where it listens; when `RUST_LOG` hides it, this says it instead (in text
    // only: a JSON stream stays JSON).
    if log_format == LogFormat::Text && !log::log_enabled!(target: "partnergate", log::Level::Info) {
        eprintln!("partnergate listening on {scheme}://{}", server.addr);
    }
    server.wait().await?;
    Ok(())
}
