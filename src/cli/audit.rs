//! `partnergate audit`: read the audit trail (newest first), or prune it.

use clap::{Args, Subcommand};

use super::listing::{self, PartyAndTime};
use super::{table, CliResult, Context};
use crate::registry::audit_trail::{self as query, AuditFilter};
use crate::registry::Caller;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    #[command(flatten)]
    pub database: crate::config::DatabaseArgs,
    #[command(subcommand)]
    pub action: Option<AuditAction>,
    #[command(flatten)]
    pub filters: PartyAndTime,
    /// Event type, e.g. token.request, client.create, secret.revoke.
    #[arg(long = "type")]
    pub event_type: Option<String>,
    /// success or failure.
    #[arg(long)]
    pub outcome: Option<String>,
    /// Events per page.
    #[arg(long, default_value_t = 50)]
    pub limit: i64,
    /// Continue with events older than this cursor (the previous page's next_cursor).
    #[arg(long)]
    pub cursor: Option<i64>,
}

#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Delete events older than N days.
    Prune {
        /// Delete the events older than this many days.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=crate::config::MAX_RETENTION_DAYS))]
        older_than_days: u32,
    },
}

pub fn run(ctx: &Context, args: AuditArgs) -> CliResult {
    let mut conn = ctx.registry()?.begin()?;
    if let Some(AuditAction::Prune { older_than_days }) = args.action {
        let deleted = query::prune_by(&mut conn, &Caller::cli(), older_than_days)?;
        ctx.print(&serde_json::json!({"deleted": deleted}), |_| format!("deleted {deleted} event(s)"));
        return Ok(());
    }
    let filter = AuditFilter {
        partner_id: args.filters.partner,
        client_id: args.filters.client,
        event_type: args.event_type,
        outcome: args.outcome,
        since: args.filters.since,
        until: args.filters.until,
        cursor: args.cursor,
        limit: Some(args.limit),
    };
    let page = query::list(&mut conn, &Caller::cli(), &filter)?;
    ctx.print(&page, |page| {
        let rows = page.items.iter().map(|e| {
            let or_dash = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".to_string());
            [
                e.id.to_string(),
                listing::time(&e.occurred_at),
                e.event_type.clone(),
                e.outcome.clone(),
                or_dash(&e.actor),
                or_dash(&e.partner_id),
                or_dash(&e.client_id),
                e.reason.clone().unwrap_or_default(),
            ]
        });
        let out = table(["ID", "TIME (UTC)", "TYPE", "OUTCOME", "ACTOR", "PARTNER", "CLIENT", "REASON"], rows);
        listing::with_next(out, page.next_cursor)
    });
    Ok(())
}
