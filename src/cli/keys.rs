//! `partnergate keys ...`: signing keys in the keys directory.

use clap::{Args, Subcommand};

use super::{table, CliResult, Context};
use crate::audit::{self, AuditEvent, Outcome, RequestMeta};
use crate::config::KeysArgs;
use crate::keys::{self, Algorithm, KeyRing};
use crate::registry::Caller;

/// The keys commands with the keys directory they work on.
#[derive(Debug, Args)]
pub struct KeysGroup {
    #[command(flatten)]
    pub keys: KeysArgs,
    /// Key changes are recorded in the audit trail of this database.
    #[command(flatten)]
    pub database: crate::config::DatabaseArgs,
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a key (ES256 or EdDSA; RS256 keys come from openssl, see keys/README.md).
    Generate {
        /// Signature algorithm of the new key: ES256 or EdDSA.
        #[arg(long, default_value = "ES256")]
        alg: Algorithm,
        /// Make the new key the signing key at once (by default it is only published).
        #[arg(long)]
        activate: bool,
    },
    /// List the keys with their kid, algorithm and state.
    List,
}

pub fn run(ctx: &Context, dir: &KeysArgs, command: KeysCommand) -> CliResult {
    match command {
        KeysCommand::Generate { alg, activate } => {
            // The first key of a directory signs; later ones are published first so verifiers can fetch them.
            // A directory with keys that do not load (a wrong mode, a bad file) is not empty: a new key there
            // must not take over signing behind the operator's back.
            let activate = activate || !keys::has_keys(&dir.keys_dir)?;
            // The database first: a key change is recorded, so it is not made when it could not be.
            let mut conn = ctx.conn()?;
            let kid = keys::generate(&dir.keys_dir, alg, activate)?;
            let mut event = AuditEvent::new("key.generate", Outcome::Success, RequestMeta::default());
            event.actor = Some(Caller::cli().actor);
            event.details = Some(serde_json::json!({"kid": kid, "alg": alg, "active": activate}));
            audit::record_in(&mut conn, event)?;
            ctx.print(&serde_json::json!({"kid": kid, "alg": alg, "active": activate}), |_| {
                format!("generated {alg} key {kid}{}", if activate { " (active)" } else { " (published)" })
            });
        }
        KeysCommand::List => {
            let ring = KeyRing::load(&dir.keys_dir)?;
            ctx.print(&ring.list(), |keys| {
                let rows = keys.iter().map(|k| {
                    [
                        k.kid.clone(),
                        k.alg.to_string(),
                        if k.active { "active" } else { "published" }.to_string(),
                        k.file.clone(),
                    ]
                });
                table(["KID", "ALG", "STATE", "FILE"], rows)
            });
        }
    }
    Ok(())
}
