//! `partnergate client ...`: clients and their secrets.

use clap::Subcommand;

use super::{joined, CliResult, Context};
use crate::registry::clients::{self, Client, ClientFilter, ClientLimits, ClientUpdate, NewClient};

use crate::registry::secrets::{self, NewSecret};
use crate::registry::{revocation, Caller};

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints its id and first secret once.
    Create {
        #[arg(long)]
        partner: String,
        #[arg(long)]
        name: String,
        /// Keep an existing client id instead of generating a `pgc_` one.
        #[arg(long)]
        client_id: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
        /// A role of the client (repeatable).
        #[arg(long = "role")]
        roles: Vec<String>,
        /// A direct scope of the client (repeatable); must lie within the partner's ceiling.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// An audience the client may request (repeatable).
        #[arg(long = "audience")]
        audiences: Vec<String>,
        /// Token lifetime in seconds (default: the server's).
        #[arg(long)]
        token_lifetime_secs: Option<i32>,
        /// Upper bound for --token-lifetime-secs; keep equal to the server's setting.
        #[arg(long, env = "PARTNERGATE_MAX_TOKEN_LIFETIME_SECS", default_value_t = 3600,
              value_parser = clap::value_parser!(i64).range(30..=crate::config::MAX_LIFETIME_SECS))]
        max_token_lifetime_secs: i64,
    },
    /// List clients.
    List {
        #[arg(long)]
        partner: Option<String>,
        #[arg(long, default_value_t = clients::DEFAULT_PAGE_SIZE)]
        limit: i64,
        /// Continue after this client id (the previous page's next_cursor).
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Change a client; list options replace the whole list. `--clear-*` empties a list.
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long = "role")]
        roles: Option<Vec<String>>,
        #[arg(long = "scope")]
        scopes: Option<Vec<String>>,
        #[arg(long = "audience")]
        audiences: Option<Vec<String>>,
        #[arg(long)]
        clear_roles: bool,
        #[arg(long)]
        clear_scopes: bool,
        #[arg(long)]
        clear_audiences: bool,
        #[arg(long)]
        token_lifetime_secs: Option<i32>,
        #[arg(long, env = "PARTNERGATE_MAX_TOKEN_LIFETIME_SECS", default_value_t = 3600,
              value_parser = clap::value_parser!(i64).range(30..=crate::config::MAX_LIFETIME_SECS))]
        max_token_lifetime_secs: i64,
    },
    /// Delete a client with its secrets.
    Delete { id: String },
    /// Show a client with its secrets (never the secrets themselves).
    Show { id: String },
    /// Create a new secret; with --grace-period-secs the client's other secrets expire after that long.
    RotateSecret {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        grace_period_secs: Option<i64>,
        #[arg(long)]
        expires_in_secs: Option<i64>,
    },
    /// Revoke one secret now; the client's other secrets keep working.
    RevokeSecret {
        id: String,
        secret_id: String,
        /// Also revoke every token issued to the client so far (the secret leaked).
        #[arg(long)]
        revoke_tokens: bool,
    },
    /// Revoke every token issued to the client so far.
    RevokeTokens { id: String },
    /// Disable a client: its next token request fails.
    Disable { id: String },
    /// Enable a disabled client.
    Enable { id: String },
}

fn describe(c: &Client) -> String {
    format!(
        "{}  partner={} name={:?} {}\n  roles: {}\n  scopes: {}\n  audiences: {}",
        c.id,
        c.partner_id,
        c.name,
        match (c.enabled, &c.disabled_by) {
            (true, _) => "enabled".to_string(),
            (false, Some(by)) => format!("disabled by {by}"),
            (false, None) => "disabled".to_string(),
        },
        joined(&c.roles),
        joined(&c.scopes),
        joined(&c.audiences)
    )
}

pub fn run(ctx: &Context, command: ClientCommand) -> CliResult {
    let mut conn = ctx.conn()?;
    let caller = Caller::cli();
    match command {
        ClientCommand::Create {
            partner,
            name,
            client_id,
            description,
            roles,
            scopes,
            audiences,
            token_lifetime_secs,
            max_token_lifetime_secs,
        } => {
            let input = NewClient {
                client_id,
                partner_id: Some(partner),
                name,
                description,
                roles,
                scopes,
                audiences,
                token_lifetime_secs,
                secret_name: None,
            };
            let limits = ClientLimits { max_token_lifetime_secs };
            let created = clients::create(&mut conn, &caller, &input, limits)?;
            ctx.print(&created, |c| {
                format!(
                    "client_id:     {}\nclient_secret: {}\n(the secret is shown only now; store it safely)\n{}",
                    c.client.id,
                    c.secret.secret.expose(),
                    describe(&c.client)
                )
            });
        }
        ClientCommand::List { partner, limit, cursor } => {
            let filter = ClientFilter { partner_id: partner, enabled: None, cursor, limit: Some(limit) };
            let page = clients::list(&mut conn, &Caller::cli(), &filter)?;
            ctx.print(&page, |page| {
                let mut lines: Vec<String> = page.items.iter().map(describe).collect();
                if let Some(next) = &page.next_cursor {
                    lines.push(format!("(more: --cursor {next})"));
                }
                lines.join("\n")
            });
        }
        ClientCommand::Update {
            id,
            name,
            description,
            roles,
            scopes,
            audiences,
            clear_roles,
            clear_scopes,
            clear_audiences,
            token_lifetime_secs,
            max_token_lifetime_secs,
        } => {
            let list = |values: Option<Vec<String>>, clear: bool| if clear { Some(Vec::new()) } else { values };
            let input = ClientUpdate {
                name,
                description,
                roles: list(roles, clear_roles),
                scopes: list(scopes, clear_scopes),
                audiences: list(audiences, clear_audiences),
                token_lifetime_secs: token_lifetime_secs.map(Some),
            };
            let limits = ClientLimits { max_token_lifetime_secs };
            let client = clients::update(&mut conn, &caller, &id, &input, limits)?;
            ctx.print(&client, |c| format!("updated {}", describe(c)));
        }
        ClientCommand::Delete { id } => {
            clients::delete(&mut conn, &caller, &id)?;
            ctx.print(&serde_json::json!({"deleted": id}), |_| format!("deleted client {id}"));
        }
        ClientCommand::Show { id } => {
            let client = clients::get(&mut conn, &Caller::cli(), &id)?;
            let secrets = secrets::list(&mut conn, &Caller::cli(), &id)?;
            let value = serde_json::json!({"client": client, "secrets": secrets});
            ctx.print(&value, |_| {
                let mut out = describe(&client);
                for s in &secrets {
                    out.push_str(&format!(
                        "\n  secret {} {:?} {}… created {} {}",
                        s.id,
                        s.name,
                        s.prefix,
                        s.created_at,
                        if s.active { "active" } else { "inactive" }
                    ));
                }
                out
            });
        }
        ClientCommand::RotateSecret { id, name, grace_period_secs, expires_in_secs } => {
            let input = NewSecret { name, expires_in_secs, grace_period_secs };
            let issued = secrets::create(&mut conn, &caller, &id, &input)?;
            ctx.print(&issued, |s| {
                format!(
                    "secret_id:     {}\nclient_secret: {}\n(the secret is shown only now; store it safely)",
                    s.id,
                    s.secret.expose()
                )
            });
        }
        ClientCommand::RevokeSecret { id, secret_id, revoke_tokens } => {
            let info = revocation::revoke_secret(&mut conn, &caller, &id, &secret_id, revoke_tokens)?;
            ctx.print(&info, |s| {
                let tokens = if revoke_tokens { " and every token issued so far" } else { "" };
                format!("revoked secret {} of {id}{tokens}", s.id)
            });
        }
        ClientCommand::RevokeTokens { id } => {
            let cutoff = revocation::revoke_client_tokens(&mut conn, &caller, &id)?;
            ctx.print(
                &serde_json::json!({"client_id": id, "tokens_revoked_before": crate::store::utc::format(&cutoff)}),
                |_| format!("revoked every token of {id} issued until {cutoff}"),
            );
        }
        ClientCommand::Disable { id } => {
            let client = clients::set_enabled(&mut conn, &caller, &id, false)?;
            ctx.print(&client, |c| format!("disabled {}", c.id));
        }
        ClientCommand::Enable { id } => {
            let client = clients::set_enabled(&mut conn, &caller, &id, true)?;
            ctx.print(&client, |c| format!("enabled {}", c.id));
        }
    }
    Ok(())
}
