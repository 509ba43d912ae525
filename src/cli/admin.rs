//! `partnergate admin bootstrap`: the operator's admin client on a fresh install.

use clap::Subcommand;

use super::{facts, joined, CliError, CliResult, Context, SECRET_NOTE};
use crate::config::TokenArgs;
use crate::registry::bootstrap;
use crate::registry::clients::ClientLimits;

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create the operator's admin client (scope authz.admin, audience = the admin audience) and print its
    /// secret once. Refuses if an admin client exists, unless --force.
    /// Give it the server's settings (the same PARTNERGATE_* variables or flags as `serve`).
    Bootstrap {
        /// The server's settings, from which the admin audience is derived exactly as `serve` derives it.
        #[command(flatten)]
        token: TokenArgs,
        /// Create another admin client even though one exists.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        secrets: crate::config::SecretPolicyArgs,
    },
}

pub fn run(ctx: &Context, command: AdminCommand) -> CliResult {
    match command {
        AdminCommand::Bootstrap { token, force, secrets } => {
            let settings = token.resolve().map_err(CliError)?;
            let limits =
                ClientLimits { max_token_lifetime_secs: settings.max_lifetime_secs, secret_policy: secrets.policy() };
            let created =
                bootstrap::admin_client(&mut ctx.registry()?.begin()?, &settings.admin_audience, limits, force)?;
            ctx.print(&created, |c| {
                let lines = [
                    ("client_id", c.client.id.clone()),
                    ("client_secret", c.secret.secret.expose().to_string()),
                    ("partner", c.client.partner_id.clone()),
                    ("scopes", joined(&c.client.scopes)),
                    ("audience", settings.admin_audience.clone()),
                ];
                format!("{}\n{SECRET_NOTE}", facts(&lines))
            });
            Ok(())
        }
    }
}
