//! `partnergate client ...`: clients and their secrets.

use clap::{Args, Subcommand};

use super::{facts, joined, table, with_next, CliError, CliResult, Context, SECRET_NOTE};
use crate::auth_methods::{AuthMethod, FederatedCredential};
use crate::registry::clients::{self, Client, ClientFilter, ClientLimits, ClientUpdate, NewClient};

use crate::config::SecretPolicyArgs;
use crate::registry::secret_expiry::{self, ApplyMaxAge, ExpiringFilter};
use crate::registry::secrets::{self, NewSecret};
use crate::registry::{revocation, Caller};

/// How a client authenticates (`client create` and `client update`).
#[derive(Debug, Args)]
pub struct AuthArgs {
    /// A client authentication method it may use (repeatable): client_secret_basic, client_secret_post,
    /// private_key_jwt. Default at creation: both secret methods.
    #[arg(long = "auth-method", value_parser = auth_method)]
    auth_methods: Option<Vec<AuthMethod>>,
    /// Its public keys for private_key_jwt: a file holding a JWK set ({"keys": [...]}, each key with a kid).
    #[arg(long, value_name = "FILE", conflicts_with = "jwks_uri")]
    jwks: Option<std::path::PathBuf>,
    /// Or the https URL its JWK set is fetched from.
    #[arg(long, value_name = "URL")]
    jwks_uri: Option<String>,
    /// A token of ISSUER for SUBJECT with AUDIENCE authenticates the client (repeatable; on update, replaces the
    /// list). The issuer must be among its partner's trusted issuers.
    #[arg(long = "federated-credential", num_args = 3, value_names = ["ISSUER", "SUBJECT", "AUDIENCE"])]
    federated_credentials: Option<Vec<String>>,
}

fn auth_method(name: &str) -> Result<AuthMethod, String> {
    AuthMethod::parse(name).ok_or_else(|| {
        let names: Vec<&str> = AuthMethod::ALL.iter().map(|m| m.as_str()).collect();
        format!("unknown method {name:?}; one of: {}", names.join(", "))
    })
}

impl AuthArgs {
    fn federated(&self) -> Option<Vec<FederatedCredential>> {
        let values = self.federated_credentials.as_ref()?;
        let triple =
            |c: &[String]| FederatedCredential { issuer: c[0].clone(), subject: c[1].clone(), audience: c[2].clone() };
        Some(values.chunks_exact(3).map(triple).collect())
    }

    fn read_jwks(&self) -> Result<Option<serde_json::Value>, CliError> {
        let Some(path) = &self.jwks else { return Ok(None) };
        let text =
            std::fs::read_to_string(path).map_err(|err| CliError(format!("cannot read {}: {err}", path.display())))?;
        let value =
            serde_json::from_str(&text).map_err(|err| CliError(format!("{} is not JSON: {err}", path.display())))?;
        Ok(Some(value))
    }
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints its id and first secret once.
    Create {
        /// The partner the client belongs to.
        #[arg(long)]
        partner: String,
        /// Display name (e.g. "Acme nightly sync").
        #[arg(long)]
        name: String,
        /// Keep an existing client id instead of generating a `pgc_` one (it may start with '-').
        #[arg(long, allow_hyphen_values = true)]
        client_id: Option<String>,
        /// What the integration does.
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
        /// Token requests per minute, on each instance (default: the server's --client-rate-limit-per-minute).
        #[arg(long)]
        rate_limit_per_minute: Option<i32>,
        /// An environment label for people, e.g. development, staging, production.
        #[arg(long)]
        environment: Option<String>,
        #[command(flatten)]
        auth: AuthArgs,
        /// Upper bound for --token-lifetime-secs; keep equal to the server's setting.
        #[arg(long, env = "PARTNERGATE_MAX_TOKEN_LIFETIME_SECS", default_value_t = 3600,
              value_parser = clap::value_parser!(i64).range(30..=crate::config::MAX_LIFETIME_SECS))]
        max_token_lifetime_secs: i64,
        #[command(flatten)]
        secrets: SecretPolicyArgs,
    },
    /// List clients.
    List {
        /// Only this partner's clients.
        #[arg(long)]
        partner: Option<String>,
        /// Only clients with this environment label.
        #[arg(long)]
        environment: Option<String>,
        /// Only clients whose name or id contains this text, ignoring case.
        #[arg(long)]
        search: Option<String>,
        /// Clients per page.
        #[arg(long, default_value_t = clients::DEFAULT_PAGE_SIZE)]
        limit: i64,
        /// Continue after this client id (the previous page's next_cursor).
        #[arg(long, allow_hyphen_values = true)]
        cursor: Option<String>,
    },
    /// Change a client; list options replace the whole list. `--clear-*` empties a list.
    Update {
        /// The client to change.
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// The new display name.
        #[arg(long)]
        name: Option<String>,
        /// The new description.
        #[arg(long)]
        description: Option<String>,
        /// A role of the client (repeatable); replaces the old list.
        #[arg(long = "role")]
        roles: Option<Vec<String>>,
        /// A direct scope (repeatable); replaces the old list; within the partner's ceiling.
        #[arg(long = "scope")]
        scopes: Option<Vec<String>>,
        /// An audience the client may request (repeatable); replaces the old list.
        #[arg(long = "audience")]
        audiences: Option<Vec<String>>,
        /// Remove every role.
        #[arg(long)]
        clear_roles: bool,
        /// Remove every direct scope.
        #[arg(long)]
        clear_scopes: bool,
        /// Remove every audience (the client then gets the server's default audience).
        #[arg(long)]
        clear_audiences: bool,
        /// Token lifetime in seconds (default: the server's).
        #[arg(long)]
        token_lifetime_secs: Option<i32>,
        /// Token requests per minute, on each instance.
        #[arg(long, conflicts_with = "default_rate_limit")]
        rate_limit_per_minute: Option<i32>,
        /// Drop the client's own rate limit: the server's default applies again.
        #[arg(long)]
        default_rate_limit: bool,
        /// The environment label, e.g. development, staging, production.
        #[arg(long, conflicts_with = "clear_environment")]
        environment: Option<String>,
        /// Remove the environment label.
        #[arg(long)]
        clear_environment: bool,
        #[command(flatten)]
        auth: AuthArgs,
        /// Upper bound for --token-lifetime-secs; keep equal to the server's setting.
        #[arg(long, env = "PARTNERGATE_MAX_TOKEN_LIFETIME_SECS", default_value_t = 3600,
              value_parser = clap::value_parser!(i64).range(30..=crate::config::MAX_LIFETIME_SECS))]
        max_token_lifetime_secs: i64,
    },
    /// Delete a client with its secrets.
    Delete {
        /// The client to delete.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Show a client with its secrets (never the secrets themselves).
    Show {
        /// The client to show.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Create a new secret; with --grace-period-secs the client's other secrets expire after that long.
    RotateSecret {
        /// The client that gets a new secret.
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// A name for the new secret (e.g. `2026-q4`).
        #[arg(long)]
        name: Option<String>,
        /// The client's other secrets expire this many seconds from now (0: at once).
        #[arg(long)]
        grace_period_secs: Option<i64>,
        /// The new secret itself expires this many seconds from now (or earlier, by the maximum secret age).
        #[arg(long)]
        expires_in_secs: Option<i64>,
        #[command(flatten)]
        secrets: SecretPolicyArgs,
    },
    /// List active secrets that expire within N days, soonest first (never the secrets themselves).
    ExpiringSecrets {
        /// Look this many days ahead (1 to 3650).
        #[arg(long, default_value_t = 30)]
        within_days: i64,
        /// Only this partner's secrets.
        #[arg(long)]
        partner: Option<String>,
    },
    /// Give existing secrets without an expiry the maximum secret age (idempotent, audited).
    ///
    /// Each active secret without an expiry, of a partner with a maximum age (its own, else
    /// --secret-max-age-days), expires at its creation plus that age, but no sooner than --min-days-left days
    /// from now. Secrets that already expire are left alone, so running it again changes nothing. Prints how
    /// many secrets changed.
    ApplySecretMaxAge {
        /// Only this partner's secrets.
        #[arg(long)]
        partner: Option<String>,
        /// A secret already older than the maximum expires this many days from now instead (0: at once).
        #[arg(long, default_value_t = 30)]
        min_days_left: i64,
        #[command(flatten)]
        secrets: SecretPolicyArgs,
    },
    /// Revoke one secret now; the client's other secrets keep working.
    RevokeSecret {
        /// The client whose secret to revoke.
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// The secret's id (from `client show`), not the secret itself.
        secret_id: String,
        /// Also revoke every token issued to the client so far (the secret leaked).
        #[arg(long)]
        revoke_tokens: bool,
    },
    /// Revoke every token issued to the client so far.
    RevokeTokens {
        /// The client whose tokens to revoke.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Disable a client: its next token request fails.
    Disable {
        /// The client to disable.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Enable a disabled client.
    Enable {
        /// The client to enable.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
}

/// A client, one fact per line.
fn client_facts(c: &Client) -> Vec<(&'static str, String)> {
    vec![
        ("client_id", c.id.clone()),
        ("partner", c.partner_id.clone()),
        ("name", c.name.clone()),
        ("state", state(c)),
        ("roles", joined(&c.roles)),
        ("scopes", joined(&c.scopes)),
        ("audiences", joined(&c.audiences)),
        ("token_lifetime", c.token_lifetime_secs.map_or("the server's default".to_string(), |s| format!("{s} s"))),
        ("rate_limit", c.rate_limit_per_minute.map_or("the server's default".to_string(), |n| format!("{n}/min"))),
        ("environment", c.environment.clone().unwrap_or_else(|| "-".to_string())),
        ("auth_methods", c.token_endpoint_auth_methods.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(" ")),
        ("keys", key_source(c)),
        (
            "federated",
            c.federated_credentials
                .iter()
                .map(|f| format!("{} {} (aud {})", f.issuer, f.subject, f.audience))
                .collect::<Vec<_>>()
                .join(", "),
        ),
    ]
}

fn key_source(c: &Client) -> String {
    match (&c.jwks, &c.jwks_uri) {
        (_, Some(uri)) => uri.clone(),
        (Some(jwks), None) => {
            let kids: Vec<&str> =
                jwks["keys"].as_array().into_iter().flatten().filter_map(|key| key["kid"].as_str()).collect();
            format!("inline, kid {}", kids.join(", "))
        }
        (None, None) => "-".to_string(),
    }
}

fn state(c: &Client) -> String {
    match (c.enabled, &c.disabled_by) {
        (true, _) => "enabled".to_string(),
        (false, Some(by)) => format!("disabled by {by}"),
        (false, None) => "disabled".to_string(),
    }
}

fn secret_state(s: &secrets::SecretInfo) -> String {
    match (s.active, s.expires_in_days) {
        (true, Some(days)) if days < 30 => format!("active, expires in {days} d"),
        (true, _) => "active".to_string(),
        (false, _) => "inactive".to_string(),
    }
}

fn time(at: &Option<chrono::NaiveDateTime>) -> String {
    at.as_ref().map_or("-".to_string(), crate::store::utc::format)
}

pub fn run(ctx: &Context, command: ClientCommand) -> CliResult {
    let mut conn = ctx.registry()?.begin()?;
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
            rate_limit_per_minute,
            environment,
            auth,
            max_token_lifetime_secs,
            secrets,
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
                rate_limit_per_minute,
                secret_name: None,
                environment,
                token_endpoint_auth_methods: auth.auth_methods.clone(),
                jwks: auth.read_jwks()?,
                jwks_uri: auth.jwks_uri.clone(),
                federated_credentials: auth.federated().unwrap_or_default(),
            };
            let limits = ClientLimits { max_token_lifetime_secs, secret_policy: secrets.policy() };
            let created = clients::register(&mut conn, &caller, &input, limits)?;
            ctx.print(&created, |c| {
                let mut lines = client_facts(&c.client);
                match &c.secret {
                    Some(secret) => {
                        lines.insert(1, ("client_secret", secret.secret.expose().to_string()));
                        lines.insert(2, ("secret_expires_at", time(&secret.expires_at)));
                        format!("{}\n{SECRET_NOTE}", facts(&lines))
                    }
                    None => facts(&lines),
                }
            });
        }
        ClientCommand::List { partner, environment, search, limit, cursor } => {
            let filter =
                ClientFilter { partner_id: partner, enabled: None, environment, search, cursor, limit: Some(limit) };
            let page = clients::list(&mut conn, &Caller::cli(), &filter)?;
            ctx.print(&page, |page| {
                let rows = page.items.iter().map(|c| {
                    [
                        c.id.clone(),
                        c.partner_id.clone(),
                        c.name.clone(),
                        c.environment.clone().unwrap_or_else(|| "-".to_string()),
                        state(c),
                        joined(&c.roles),
                        joined(&c.scopes),
                        joined(&c.audiences),
                    ]
                });
                with_next(
                    table(["ID", "PARTNER", "NAME", "ENVIRONMENT", "STATE", "ROLES", "SCOPES", "AUDIENCES"], rows),
                    &page.next_cursor,
                )
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
            rate_limit_per_minute,
            default_rate_limit,
            environment,
            clear_environment,
            auth,
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
                rate_limit_per_minute: if default_rate_limit { Some(None) } else { rate_limit_per_minute.map(Some) },
                environment: if clear_environment { Some(None) } else { environment.map(Some) },
                token_endpoint_auth_methods: auth.auth_methods.clone(),
                jwks: auth.read_jwks()?.map(Some),
                jwks_uri: auth.jwks_uri.clone().map(Some),
                federated_credentials: auth.federated(),
            };
            let limits = ClientLimits { max_token_lifetime_secs, secret_policy: Default::default() };
            let client = clients::update(&mut conn, &caller, &id, &input, limits)?;
            ctx.print(&client, |c| format!("updated client {}\n{}", c.id, facts(&client_facts(c))));
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
                let rows = secrets.iter().map(|s| {
                    [
                        s.id.clone(),
                        s.name.clone(),
                        format!("{}…", s.prefix),
                        crate::store::utc::format(&s.created_at),
                        time(&s.expires_at),
                        time(&s.revoked_at),
                        format!("{} d", s.age_days),
                        time(&s.last_used_at),
                        secret_state(s),
                    ]
                });
                let headers =
                    ["SECRET ID", "NAME", "PREFIX", "CREATED", "EXPIRES", "REVOKED", "AGE", "LAST USED", "STATE"];
                format!("{}\n\n{}", facts(&client_facts(&client)), table(headers, rows))
            });
        }
        ClientCommand::RotateSecret { id, name, grace_period_secs, expires_in_secs, secrets } => {
            let input = NewSecret { name, expires_in_secs, grace_period_secs };
            let issued = secrets::create(&mut conn, &caller, &id, &input, secrets.policy())?;
            ctx.print(&issued, |s| {
                let lines = [
                    ("client_id", id.clone()),
                    ("secret_id", s.id.clone()),
                    ("client_secret", s.secret.expose().to_string()),
                    ("expires_at", time(&s.expires_at)),
                ];
                format!("{}\n{SECRET_NOTE}", facts(&lines))
            });
        }
        ClientCommand::ExpiringSecrets { within_days, partner } => {
            let filter = ExpiringFilter { within_days: Some(within_days), partner_id: partner };
            let expiring = secret_expiry::expiring(&mut conn, &caller, &filter)?;
            ctx.print(&expiring, |list| {
                let rows = list.iter().map(|s| {
                    [
                        s.secret_id.clone(),
                        s.name.clone(),
                        s.client_id.clone(),
                        s.partner_id.clone(),
                        crate::store::utc::format(&s.expires_at),
                        format!("{} d", s.expires_in_days),
                        format!("{} d", s.age_days),
                    ]
                });
                table(["SECRET ID", "NAME", "CLIENT", "PARTNER", "EXPIRES", "LEFT", "AGE"], rows)
            });
        }
        ClientCommand::ApplySecretMaxAge { partner, min_days_left, secrets } => {
            let input = ApplyMaxAge { partner_id: partner, min_days_left: Some(min_days_left) };
            let applied = secret_expiry::apply_max_age(&mut conn, &caller, secrets.policy(), &input)?;
            ctx.print(&applied, |a| format!("{} secret(s) without an expiry got one", a.changed));
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
                |_| format!("revoked every token of {id} issued until {}", crate::store::utc::format(&cutoff)),
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
