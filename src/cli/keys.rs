//! `partnergate keys ...`: the signing keys in the database, shared by every instance (see `keys::policy`
//! for the rules). The instances hear of each change through the change feed and reload their key ring.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{table, CliError, CliResult, Context};
use crate::clock::Clock;
use crate::config::{KeyPolicyArgs, KeysArgs};
use crate::keys::kek::{KeyEncryptionKey, WhenMissing};
use crate::keys::{self, Algorithm, KeyRecord};
use crate::registry::signing_keys as stored;
use crate::registry::Caller;
use crate::store::utc;

/// The keys commands with the keys directory (imports, the default key-encryption key file) they work on.
#[derive(Debug, Args)]
pub struct KeysGroup {
    #[command(flatten)]
    pub keys: KeysArgs,
    #[command(flatten)]
    pub policy: KeyPolicyArgs,
    /// The signing keys live in this database.
    #[command(flatten)]
    pub database: crate::config::DatabaseArgs,
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a key and publish it (ES256 or EdDSA; RS256 keys come from openssl and `keys import`). The first
    /// key of an empty database signs at once; later ones sign after `keys activate`.
    Generate {
        /// Signature algorithm of the new key: ES256 or EdDSA.
        #[arg(long, default_value = "ES256")]
        alg: Algorithm,
    },
    /// Import PKCS#8 PEM keys as published keys (kids already stored are skipped).
    Import {
        /// Key files or directories of `*.pem` files; the keys directory when none is given.
        paths: Vec<PathBuf>,
    },
    /// List the keys with their state, algorithm and dates.
    List,
    /// Make a published key the signing key; the active key retires. Refused for a key published for less
    /// than max(JWKS max-age, 10 minutes), since verifiers may not have it yet.
    Activate {
        /// The published key's kid (see `keys list`); one may start with '-' (a kid is base64url).
        #[arg(allow_hyphen_values = true)]
        kid: String,
        /// Activate even if the key has not been published long enough (verifiers may refuse its tokens).
        #[arg(long)]
        force: bool,
    },
    /// Retire a published key that should never sign (the active key retires when another is activated).
    Retire {
        /// The published key's kid (see `keys list`); one may start with '-' (a kid is base64url).
        #[arg(allow_hyphen_values = true)]
        kid: String,
    },
    /// Remove the retired keys whose tokens have all expired (out of the JWKS, private key erased).
    Prune,
    /// The safe rotation: remove what is due, publish a new key, and activate it once it has been published
    /// long enough. Without --wait, run it again after the time it prints to finish.
    Rotate {
        /// Wait for the new key to be ready and activate it (this can take 10 minutes or more).
        #[arg(long)]
        wait: bool,
        /// Activate the new key at once (verifiers that cached the JWKS may refuse its tokens).
        #[arg(long)]
        force: bool,
    },
}

pub fn run(ctx: &Context, group: &KeysGroup, command: KeysCommand) -> CliResult {
    let policy = group.policy.policy();
    let caller = Caller::cli();
    let clock = crate::clock::SystemClock;
    let mut conn = ctx.registry()?.begin()?;
    let kek = || -> Result<KeyEncryptionKey, CliError> {
        let (backend, _) = crate::store::parse_database_url(&group.database.database_url)?;
        let when_missing =
            if backend == crate::store::Backend::Sqlite { WhenMissing::Generate } else { WhenMissing::Refuse };
        Ok(KeyEncryptionKey::load(&group.keys.kek_source(), &group.keys.keys_dir, when_missing)?)
    };
    match command {
        KeysCommand::Generate { alg } => {
            let key = stored::generate(&mut conn, &caller, &kek()?, alg, clock.now())?;
            ctx.print(&key, |k| format!("generated {} key {} ({})", k.alg, k.kid, k.state.as_str()));
        }
        KeysCommand::Import { paths } => {
            let paths = if paths.is_empty() { vec![group.keys.keys_dir.clone()] } else { paths };
            let mut found = Vec::new();
            for path in &paths {
                if path.is_dir() {
                    found.extend(keys::read_dir_keys(path)?);
                } else {
                    found.push(keys::read_key_file(path)?);
                }
            }
            let imported = stored::import(&mut conn, &caller, &kek()?, &found, clock.now())?;
            ctx.print(&imported, |keys| {
                let mut out = format!("imported {} key(s) of {} found", keys.len(), found.len());
                for k in keys {
                    out.push_str(&format!("\n{} {} ({})", k.kid, k.alg, k.state.as_str()));
                }
                out
            });
        }
        KeysCommand::List => {
            let keys = stored::records(&mut conn)?;
            ctx.print(&keys, |keys| list_table(keys));
        }
        KeysCommand::Activate { kid, force } => {
            let key = stored::activate(&mut conn, &caller, &policy, &kid, force, clock.now())?;
            ctx.print(&key, |k| format!("{} is the signing key now", k.kid));
        }
        KeysCommand::Retire { kid } => {
            let key = stored::retire(&mut conn, &caller, &kid, clock.now())?;
            ctx.print(&key, |k| format!("{} retired", k.kid));
        }
        KeysCommand::Prune => {
            let removed = stored::prune(&mut conn, &caller, &policy, clock.now())?;
            ctx.print(&serde_json::json!({"removed": removed}), |_| format!("removed {} key(s)", removed.len()));
        }
        KeysCommand::Rotate { wait, force } => {
            let kek = kek()?;
            let mut report = stored::rotate(&mut conn, &caller, &kek, &policy, force, clock.now())?;
            while let (true, Some(ready_at)) = (wait, report.ready_at) {
                let pause = (ready_at - clock.now()).to_std().unwrap_or_default() + std::time::Duration::from_secs(1);
                eprintln!("waiting until {} for verifiers to fetch the new key", utc::format(&ready_at));
                std::thread::sleep(pause);
                report = stored::rotate(&mut conn, &caller, &kek, &policy, false, clock.now())?;
            }
            ctx.print(&report, |r| {
                let mut lines = Vec::new();
                lines.extend(r.removed.iter().map(|kid| format!("removed {kid}")));
                if let Some(k) = &r.published {
                    lines.push(format!("published {}", k.kid));
                }
                if let Some(k) = &r.activated {
                    lines.push(format!("{} is the signing key now", k.kid));
                }
                if let (Some(k), Some(at)) = (&r.waiting, &r.ready_at) {
                    lines.push(format!(
                        "{} signs from {}: run `partnergate keys rotate` again then",
                        k.kid,
                        utc::format(at)
                    ));
                }
                lines.join("\n")
            });
        }
    }
    Ok(())
}

fn list_table(keys: &[KeyRecord]) -> String {
    let date = |at: &Option<chrono::NaiveDateTime>| at.as_ref().map(utc::format).unwrap_or_else(|| "-".into());
    table(
        ["KID", "ALG", "STATE", "PUBLISHED", "ACTIVATED", "RETIRED", "REMOVED"],
        keys.iter().map(|k| {
            [
                k.kid.clone(),
                k.alg.to_string(),
                k.state.as_str().to_string(),
                utc::format(&k.published_at),
                date(&k.activated_at),
                date(&k.retired_at),
                date(&k.removed_at),
            ]
        }),
    )
}
