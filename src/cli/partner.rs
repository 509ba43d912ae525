//! `partnergate partner ...`.

use clap::Subcommand;

use super::{joined, CliResult, Context};
use crate::registry::partners::{self, NewPartner, PartnerUpdate};

use crate::registry::{revocation, Caller};

#[derive(Debug, Subcommand)]
pub enum PartnerCommand {
    /// Register a partner with its scope ceiling.
    Create {
        /// Partner id: a lowercase slug such as `acme`.
        id: String,
        #[arg(long)]
        name: String,
        /// A scope the partner's clients may hold (repeatable): the ceiling.
        #[arg(long = "ceiling")]
        ceiling: Vec<String>,
        #[arg(long)]
        rate_limit_per_minute: Option<i32>,
        #[arg(long)]
        token_quota_per_day: Option<i32>,
    },
    /// List partners.
    List,
    /// Change a partner's name, ceiling (replaces the whole list) or limits.
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        /// The new ceiling, repeatable; replaces the old one.
        #[arg(long = "ceiling")]
        ceiling: Option<Vec<String>>,
        #[arg(long)]
        rate_limit_per_minute: Option<i32>,
        #[arg(long)]
        token_quota_per_day: Option<i32>,
    },
    /// Suspend a partner: none of its clients gets a token until it is resumed.
    Suspend { id: String },
    /// Resume a suspended partner.
    Resume { id: String },
    /// Revoke every token issued so far to any client of the partner.
    RevokeTokens { id: String },
}

fn describe(p: &partners::Partner) -> String {
    format!(
        "{:<20} {:<30} {:<9} ceiling: {}",
        p.id,
        p.name,
        if p.suspended { "suspended" } else { "active" },
        joined(&p.scope_ceiling)
    )
}

pub fn run(ctx: &Context, command: PartnerCommand) -> CliResult {
    let mut conn = ctx.conn()?;
    let caller = Caller::cli();
    match command {
        PartnerCommand::Create { id, name, ceiling, rate_limit_per_minute, token_quota_per_day } => {
            let input = NewPartner { id, name, scope_ceiling: ceiling, rate_limit_per_minute, token_quota_per_day };
            let partner = partners::create(&mut conn, &caller, &input)?;
            ctx.print(&partner, |p| format!("created partner {}", describe(p)));
        }
        PartnerCommand::List => {
            let list = partners::list(&mut conn, &Caller::cli())?;
            ctx.print(&list, |list| list.iter().map(describe).collect::<Vec<_>>().join("\n"));
        }
        PartnerCommand::Update { id, name, ceiling, rate_limit_per_minute, token_quota_per_day } => {
            let input = PartnerUpdate {
                name,
                scope_ceiling: ceiling,
                rate_limit_per_minute: rate_limit_per_minute.map(Some),
                token_quota_per_day: token_quota_per_day.map(Some),
            };
            let partner = partners::update(&mut conn, &caller, &id, &input)?;
            ctx.print(&partner, |p| format!("updated {}", describe(p)));
        }
        PartnerCommand::Suspend { id } => {
            let partner = partners::set_suspended(&mut conn, &caller, &id, true)?;
            ctx.print(&partner, |p| format!("suspended {}", p.id));
        }
        PartnerCommand::Resume { id } => {
            let partner = partners::set_suspended(&mut conn, &caller, &id, false)?;
            ctx.print(&partner, |p| format!("resumed {}", p.id));
        }
        PartnerCommand::RevokeTokens { id } => {
            let cutoff = revocation::revoke_partner_tokens(&mut conn, &caller, &id)?;
            ctx.print(
                &serde_json::json!({"partner_id": id, "tokens_revoked_before": crate::store::utc::format(&cutoff)}),
                |_| format!("revoked every token of partner {id} issued until {cutoff}"),
            );
        }
    }
    Ok(())
}
