//! `partnergate serve`.

use super::{CliError, CliResult, Context, ServeCommand};
use crate::config::{LogFormat, ServerConfig};

pub async fn run(_ctx: &Context, args: ServeCommand, log_format: LogFormat) -> CliResult {
    let config = ServerConfig::from_args(&args.database, &args.keys, &args.serve).map_err(CliError)?;
    log::info!("database: {}", crate::store::redact_url(&config.database_url));
    let server = crate::start(config).await?;
    // Shown whatever `RUST_LOG` says; in JSON the stream stays JSON and the server's own log line says it.
    if log_format == LogFormat::Text {
        eprintln!("partnergate listening on http://{}", server.addr);
    }
    server.wait().await?;
    Ok(())
}
