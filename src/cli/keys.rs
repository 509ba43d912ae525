//! `partnergate keys ...`: signing keys in the keys directory.

use clap::{Args, Subcommand};

use super::{table, CliResult, Context};
use crate::config::KeysArgs;
use crate::keys::{self, Algorithm, KeyRing};

/// The keys commands with the keys directory they work on.
#[derive(Debug, Args)]
pub struct KeysGroup {
    #[command(flatten)]
    pub keys: KeysArgs,
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
            let has_keys = KeyRing::load(&dir.keys_dir).is_ok();
            // The first key of a directory signs; later ones are published first so verifiers can fetch them.
            let activate = activate || !has_keys;
            let kid = keys::generate(&dir.keys_dir, alg, activate)?;
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
