//! `partnergate keys ...`: signing keys in the keys directory.

use clap::Subcommand;

use super::{CliResult, Context};
use crate::keys::{self, Algorithm, KeyRing};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a key (ES256 or EdDSA; RS256 keys come from openssl, see keys/README.md).
    Generate {
        #[arg(long, default_value = "ES256")]
        alg: Algorithm,
        /// Make the new key the signing key at once (by default it is only published).
        #[arg(long)]
        activate: bool,
    },
    /// List the keys with their kid, algorithm and state.
    List,
}

pub fn run(ctx: &Context, command: KeysCommand) -> CliResult {
    match command {
        KeysCommand::Generate { alg, activate } => {
            let has_keys = KeyRing::load(&ctx.keys.keys_dir).is_ok();
            // The first key of a directory signs; later ones are published first so verifiers can fetch them.
            let activate = activate || !has_keys;
            let kid = keys::generate(&ctx.keys.keys_dir, alg, activate)?;
            ctx.print(&serde_json::json!({"kid": kid, "alg": alg, "active": activate}), |_| {
                format!("generated {alg} key {kid}{}", if activate { " (active)" } else { " (published)" })
            });
        }
        KeysCommand::List => {
            let ring = KeyRing::load(&ctx.keys.keys_dir)?;
            ctx.print(&ring.list(), |keys| {
                keys.iter()
                    .map(|k| {
                        format!(
                            "{}  {:<5}  {}  {}",
                            k.kid,
                            k.alg,
                            if k.active { "active   " } else { "published" },
                            k.file
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
    }
    Ok(())
}
