//! `partnergate admin bootstrap`: the operator's admin client on a fresh install.

use clap::Subcommand;

use super::{CliError, CliResult, Context};
use crate::config::TokenArgs;
use crate::registry::bootstrap;
use crate::registry::clients::ClientLimits;

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create the operator's admin client (scope authz.admin, audience = the admin audience) and print its
    /// secret once. Refuses if an admin client exists, unless --force.
    Bootstrap {
        /// The address the server listens on, from which the default issuer is derived.
        #[arg(long, env = "PARTNERGATE_BIND", default_value = "127.0.0.1:8080")]
        bind: std::net::SocketAddr,
        #[command(flatten)]
        token: TokenArgs,
        /// Create another admin client even though one exists.
        #[arg(long)]
        force: bool,
    },
}

pub fn run(ctx: &Context, command: AdminCommand) -> CliResult {
    match command {
        AdminCommand::Bootstrap { bind, token, force } => {
            let settings = token.resolve(bind).map_err(CliError)?;
            let limits = ClientLimits { max_token_lifetime_secs: settings.max_lifetime_secs };
            let created = bootstrap::admin_client(&mut *ctx.conn()?, &settings.admin_audience, limits, force)?;
            ctx.print(&created, |c| {
                format!(
                    "admin client_id:     {}\nadmin client_secret: {}\naudience: {}\n(the secret is shown only now; store it safely)",
                    c.client.id,
                    c.secret.secret.expose(),
                    settings.admin_audience
                )
            });
            Ok(())
        }
    }
}
