//! `partnergate audit`: read the audit trail (newest first), or prune it.

use clap::{Args, Subcommand};

use super::{CliResult, Context};
use crate::audit::query::{self, AuditFilter};
use crate::registry::Caller;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub action: Option<AuditAction>,
    #[arg(long)]
    pub partner: Option<String>,
    #[arg(long)]
    pub client: Option<String>,
    /// Event type, e.g. token.request, client.create, secret.revoke.
    #[arg(long = "type")]
    pub event_type: Option<String>,
    /// success or failure.
    #[arg(long)]
    pub outcome: Option<String>,
    /// Events at or after this UTC time (YYYY-MM-DDTHH:MM:SS).
    #[arg(long)]
    pub since: Option<chrono::NaiveDateTime>,
    /// Events before this UTC time.
    #[arg(long)]
    pub until: Option<chrono::NaiveDateTime>,
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
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=crate::config::MAX_RETENTION_DAYS))]
        older_than_days: u32,
    },
}

pub fn run(ctx: &Context, args: AuditArgs) -> CliResult {
    let mut conn = ctx.conn()?;
    if let Some(AuditAction::Prune { older_than_days }) = args.action {
        let deleted = query::prune_older_than(&mut conn, older_than_days)?;
        ctx.print(&serde_json::json!({"deleted": deleted}), |_| format!("deleted {deleted} event(s)"));
        return Ok(());
    }
    let filter = AuditFilter {
        partner_id: args.partner,
        client_id: args.client,
        event_type: args.event_type,
        outcome: args.outcome,
        since: args.since,
        until: args.until,
        cursor: args.cursor,
        limit: Some(args.limit),
    };
    let page = query::list(&mut conn, &Caller::cli(), &filter)?;
    ctx.print(&page, |page| {
        let mut lines: Vec<String> = page
            .items
            .iter()
            .map(|e| {
                format!(
                    "{} {} {:<20} {:<7} actor={} partner={} client={} {}",
                    e.id,
                    e.occurred_at.format("%Y-%m-%dT%H:%M:%S%.3f"),
                    e.event_type,
                    e.outcome,
                    e.actor.as_deref().unwrap_or("-"),
                    e.partner_id.as_deref().unwrap_or("-"),
                    e.client_id.as_deref().unwrap_or("-"),
                    e.reason.as_deref().unwrap_or("")
                )
            })
            .collect();
        if let Some(next) = page.next_cursor {
            lines.push(format!("(more: --cursor {next})"));
        }
        lines.join("\n")
    });
    Ok(())
}
