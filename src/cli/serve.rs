//! `partnergate serve`.

use super::{CliError, CliResult, Context};
use crate::config::{ServeArgs, ServerConfig};

pub async fn run(ctx: &Context, args: ServeArgs) -> CliResult {
    let config = ServerConfig::from_args(&ctx.database, &ctx.keys, &args).map_err(CliError)?;
    log::info!("database: {}", crate::store::redact_url(&config.database_url));
    let server = crate::start(config).await?;
    eprintln!("partnergate listening on http://{}", server.addr);
    server.wait().await?;
    Ok(())
}
