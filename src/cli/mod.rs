//! The command line: one file per command group. Operator commands work directly on the database through
//! the same registry functions as the admin API.

mod admin;
mod audit;
mod catalog;
mod client;
mod keys;
pub mod logging;
mod partner;
mod serve;
mod token;

use clap::{Parser, Subcommand};
use serde::Serialize;

use crate::config::{DatabaseArgs, KeysArgs};
use crate::store::{self, DbPool};

#[derive(Debug, Parser)]
#[command(
    name = "partnergate",
    version,
    about = "OAuth2 client-credentials authorization server for partner integrations"
)]
pub struct Cli {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub keys: KeysArgs,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (migrates the database and creates a signing key first if needed).
    Serve(crate::config::ServeArgs),
    /// Apply pending database migrations.
    Migrate,
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Manage the scope catalog.
    #[command(subcommand)]
    Scope(catalog::ScopeCommand),
    /// Manage roles (named bundles of scopes).
    #[command(subcommand)]
    Role(catalog::RoleCommand),
    /// Manage partners.
    #[command(subcommand)]
    Partner(partner::PartnerCommand),
    /// Manage clients and their secrets.
    #[command(subcommand)]
    Client(client::ClientCommand),
    /// Read or prune the audit trail.
    Audit(audit::AuditArgs),
    /// Operator administration.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Fetch a token with the client-credentials grant (with the `oauth2` crate) and print its claims.
    Token(token::TokenArgs),
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CliError(pub String);

macro_rules! cli_error_from {
    ($($source:ty),*) => {$(
        impl From<$source> for CliError {
            fn from(err: $source) -> Self {
                CliError(err.to_string())
            }
        }
    )*};
}
cli_error_from!(
    crate::registry::RegistryError,
    crate::store::StoreError,
    crate::keys::KeyError,
    crate::StartError,
    std::io::Error
);

pub type CliResult = Result<(), CliError>;

/// Shared by every command: how to reach the database and how to print.
pub struct Context {
    pub database: DatabaseArgs,
    pub keys: KeysArgs,
    pub json: bool,
}

impl Context {
    /// A pool on the configured database, migrated.
    pub fn database(&self) -> Result<DbPool, CliError> {
        let pool = store::connect(&self.database.database_url, &self.database.pool_options())?;
        store::run_migrations(&mut *pool.get().map_err(store::StoreError::from)?)?;
        Ok(pool)
    }

    pub fn conn(&self) -> Result<store::PooledDb, CliError> {
        Ok(self.database()?.get().map_err(store::StoreError::from)?)
    }

    /// JSON when `--json` was given, otherwise the human rendering.
    pub fn print<T: Serialize>(&self, value: &T, human: impl FnOnce(&T) -> String) {
        if self.json {
            println!("{}", serde_json::to_string_pretty(value).expect("output serializes"));
        } else {
            println!("{}", human(value));
        }
    }
}

pub async fn run(cli: Cli) -> CliResult {
    let ctx = Context { database: cli.database, keys: cli.keys, json: cli.json };
    match cli.command {
        Command::Serve(args) => serve::run(&ctx, args).await,
        Command::Migrate => {
            let pool = store::connect(&ctx.database.database_url, &ctx.database.pool_options())?;
            let applied = store::run_migrations(&mut *pool.get().map_err(store::StoreError::from)?)?;
            ctx.print(&serde_json::json!({"applied": applied}), |_| format!("applied {applied} migration(s)"));
            Ok(())
        }
        Command::Keys(command) => keys::run(&ctx, command),
        Command::Scope(command) => catalog::run_scope(&ctx, command),
        Command::Role(command) => catalog::run_role(&ctx, command),
        Command::Partner(command) => partner::run(&ctx, command),
        Command::Client(command) => client::run(&ctx, command),
        Command::Token(args) => token::run(&ctx, args).await,
        Command::Admin(command) => admin::run(&ctx, command),
        Command::Audit(args) => audit::run(&ctx, args),
    }
}

/// A list of names for human output.
pub(crate) fn joined(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_string()
    } else {
        items.join(" ")
    }
}
