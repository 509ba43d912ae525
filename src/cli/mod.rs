//! The command line: one file per command group. Operator commands work directly on the database through
//! the same registry functions as the admin API.

mod admin;
mod audit;
mod catalog;
mod client;
mod healthcheck;
mod keys;
mod listing;
pub mod logging;
mod partner;
mod requests;
mod serve;
mod token;

use clap::{Args, CommandFactory, Parser, Subcommand};
use serde::Serialize;

use crate::config::{DatabaseArgs, KeysArgs, ServeArgs};
use crate::store::{self, DbPool};

/// Each command takes only the options it uses: the database options belong to the commands that work on
/// the database, the keys directory to `serve` and `keys`, and `token` (a partner's tool) has neither.
#[derive(Debug, Parser)]
#[command(
    name = "partnergate",
    version,
    about = "OAuth2 client-credentials authorization server for partner integrations"
)]
pub struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// How the process log (stderr) is written.
    #[arg(long, env = "PARTNERGATE_LOG_FORMAT", value_enum, default_value_t, global = true)]
    pub log_format: crate::config::LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// A command group that works on the database; the database options apply to each of its commands.
#[derive(Debug, Args)]
pub struct OnDatabase<C: Subcommand> {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(subcommand)]
    pub command: C,
}

#[derive(Debug, Args)]
pub struct ServeCommand {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub keys: KeysArgs,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (creates and migrates the database and creates a signing key first if needed).
    // Boxed: by far the largest variant (every server setting), parsed once.
    Serve(Box<ServeCommand>),
    /// Create the database if needed and apply pending migrations.
    Migrate(DatabaseArgs),
    /// Manage signing keys.
    Keys(keys::KeysGroup),
    /// Manage the scope catalog.
    Scope(OnDatabase<catalog::ScopeCommand>),
    /// Manage roles (named bundles of scopes).
    Role(OnDatabase<catalog::RoleCommand>),
    /// Manage partners.
    Partner(OnDatabase<partner::PartnerCommand>),
    /// Manage clients and their secrets.
    Client(OnDatabase<client::ClientCommand>),
    /// Read or prune the audit trail.
    Audit(audit::AuditArgs),
    /// Read the request log: the requests resource servers reported.
    Requests(requests::RequestsArgs),
    /// Operator administration.
    Admin(OnDatabase<admin::AdminCommand>),
    /// Fetch a token with the client-credentials grant (with the `oauth2` crate) and print its claims.
    Token(token::TokenArgs),
    /// Exit 0 when a running server's /readyz answers 200 (the container health check).
    Healthcheck(healthcheck::HealthcheckArgs),
    /// Print a shell completion script, e.g. `partnergate completions bash > ~/.local/share/bash-completion/completions/partnergate`.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
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

/// Shared by every command: how to print, and how to reach the database for the commands that have one.
pub struct Context {
    pub json: bool,
    database: Option<DatabaseArgs>,
}

impl Context {
    pub fn new(json: bool) -> Self {
        Context { json, database: None }
    }

    pub fn with_database(json: bool, database: DatabaseArgs) -> Self {
        Context { json, database: Some(database) }
    }

    /// A pool on the configured database, which must exist, migrated.
    pub fn database(&self) -> Result<DbPool, CliError> {
        let database = self.database.as_ref().ok_or_else(|| CliError("this command has no database".into()))?;
        let pool = store::connect(&database.database_url, &one_connection(database.pool_options()))?;
        store::run_migrations(&mut *pool.get().map_err(store::StoreError::from)?)?;
        Ok(pool)
    }

    /// The registry service on the configured database; the command line caches nothing, so the changes of
    /// its units of work reach the servers through the change feed only.
    pub fn registry(&self) -> Result<crate::registry::Registry, CliError> {
        Ok(crate::registry::Registry::new(self.database()?))
    }

    /// JSON when `--json` was given, otherwise the human rendering.
    pub fn print<T: Serialize>(&self, value: &T, human: impl FnOnce(&T) -> String) {
        let mut text =
            if self.json { serde_json::to_string_pretty(value).expect("output serializes") } else { human(value) };
        text.push('\n');
        write_stdout(text.as_bytes());
    }
}

/// Writes command output. When the reader has gone (`partnergate ... | head`), the command ends quietly with
/// status 0, as a Unix filter does; `println!` would panic with "failed printing to stdout: Broken pipe".
pub(crate) fn write_stdout(bytes: &[u8]) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(err) => {
            print_error(false, &format!("cannot write the output: {err}"));
            std::process::exit(1);
        }
    }
}

/// A failed command's message on stderr: `error: ...`, or with `--json` one JSON object `{"error": "..."}`, so
/// that a script reads it as it reads results (which stay alone on stdout).
pub fn print_error(json: bool, message: &str) {
    // Errors quote what the operator typed (a secret where an id belongs) and database causes.
    let message = crate::redact::all(message);
    if json {
        eprintln!("{}", serde_json::json!({ "error": message }));
    } else {
        eprintln!("error: {message}");
    }
}

/// Arguments clap refused. With `--json` among them: the first line of clap's message as a JSON error (exit
/// status 2, as clap's); otherwise, and for `--help` and `--version`, clap's own output.
pub fn refused_arguments(err: clap::Error) -> ! {
    use clap::error::ErrorKind;
    let json = std::env::args_os().any(|arg| arg == "--json");
    let shown_as_is = matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if !json || shown_as_is {
        err.exit()
    }
    let text = err.render().to_string();
    let first = text.lines().next().unwrap_or_default();
    print_error(true, first.strip_prefix("error: ").unwrap_or(first));
    std::process::exit(err.exit_code())
}

/// A command uses one connection at a time. A larger pool opens the next ones on its own threads, and a
/// process that exits while one of them is inside libpq's connection setup can crash (SIGSEGV, seen on
/// PostgreSQL), turning a command that succeeded into a failure.
fn one_connection(options: store::PoolOptions) -> store::PoolOptions {
    store::PoolOptions { max_size: 1, ..options }
}

pub async fn run(cli: Cli) -> CliResult {
    let json = cli.json;
    match cli.command {
        Command::Serve(args) => serve::run(&Context::new(json), *args, cli.log_format).await,
        Command::Migrate(database) => {
            let ctx = Context::new(json);
            let pool = store::connect(&database.database_url, &one_connection(database.creating_pool_options()))?;
            let applied = store::run_migrations(&mut *pool.get().map_err(store::StoreError::from)?)?;
            ctx.print(&serde_json::json!({"applied": applied}), |_| format!("applied {applied} migration(s)"));
            Ok(())
        }
        Command::Keys(mut group) => {
            let ctx = Context::with_database(json, group.database.clone());
            let command = std::mem::replace(&mut group.command, keys::KeysCommand::List);
            keys::run(&ctx, &group, command)
        }
        Command::Scope(group) => catalog::run_scope(&Context::with_database(json, group.database), group.command),
        Command::Role(group) => catalog::run_role(&Context::with_database(json, group.database), group.command),
        Command::Partner(group) => partner::run(&Context::with_database(json, group.database), group.command),
        Command::Client(group) => client::run(&Context::with_database(json, group.database), group.command),
        Command::Admin(group) => admin::run(&Context::with_database(json, group.database), group.command),
        Command::Audit(args) => audit::run(&Context::with_database(json, args.database.clone()), args),
        Command::Requests(args) => requests::run(&Context::with_database(json, args.database.clone()), args),
        Command::Token(args) => token::run(&Context::new(json), args).await,
        Command::Healthcheck(args) => healthcheck::run(args).await,
        Command::Completions { shell } => {
            // Generated into memory: clap_complete panics on a write error (a closed pipe).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "partnergate", &mut script);
            write_stdout(&script);
            Ok(())
        }
    }
}

/// A table for human output: a header row, then one row per item, columns padded to their widest cell.
pub(crate) fn table<const N: usize>(headers: [&str; N], rows: impl IntoIterator<Item = [String; N]>) -> String {
    let rows: Vec<[String; N]> = rows.into_iter().collect();
    let mut widths = headers.map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells.iter().zip(widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut lines = vec![line(&headers.map(str::to_string))];
    if rows.is_empty() {
        lines.push("(none)".to_string());
    }
    lines.extend(rows.iter().map(|row| line(row)));
    lines.join("\n")
}

/// One fact per line, `name: value`, values aligned, for what a command created or changed.
pub(crate) fn facts(items: &[(&str, String)]) -> String {
    let width = items.iter().map(|(name, _)| name.len() + 1).max().unwrap_or(0);
    items.iter().map(|(name, value)| format!("{:<width$} {value}", format!("{name}:"))).collect::<Vec<_>>().join("\n")
}

/// Shown with every secret, the only time it is shown.
pub(crate) const SECRET_NOTE: &str = "(the secret is shown only now; store it safely)";

/// A page's table, with how to get the next page when there is one.
pub(crate) fn with_next(mut out: String, next_cursor: &Option<String>) -> String {
    if let Some(next) = next_cursor {
        out.push_str(&format!("\n(more: --cursor {next})"));
    }
    out
}

/// A list of names for human output.
pub(crate) fn joined(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_string()
    } else {
        items.join(" ")
    }
}
