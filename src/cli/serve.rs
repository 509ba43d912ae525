//! `partnergate serve`.

use super::{CliError, CliResult, Context, ServeCommand};
use crate::config::ServerConfig;

pub async fn run(_ctx: &Context, args: ServeCommand) -> CliResult {
    let config = ServerConfig::from_args(&args.database, &args.keys, &args.serve).map_err(CliError)?;
    log::info!("database: {}", crate::store::redact_url(&config.database_url));
    let server = crate::start(config).await?;
    eprintln!("partnergate listening on http://{}", server.addr);
    server.wait().await?;
    Ok(())
}
