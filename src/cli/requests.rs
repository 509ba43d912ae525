//! `partnergate requests`: read the request log (newest first), as the operator.

use clap::Args;

use super::listing::{self, PartyAndTime};
use super::{table, CliResult, Context};
use crate::registry::paging::PageRequest;
use crate::registry::Caller;
use crate::request_log::query::{self, RequestFilter};

#[derive(Debug, Args)]
pub struct RequestsArgs {
    #[command(flatten)]
    pub database: crate::config::DatabaseArgs,
    #[command(flatten)]
    pub filters: PartyAndTime,
    /// Only requests to this route pattern, e.g. /orders/{id}.
    #[arg(long)]
    pub route: Option<String>,
    /// A status code (404) or class (4xx).
    #[arg(long)]
    pub status: Option<String>,
    #[command(flatten)]
    pub page: PageRequest,
}

pub fn run(ctx: &Context, args: RequestsArgs) -> CliResult {
    let mut conn = ctx.registry()?.begin()?;
    let filter = RequestFilter {
        partner_id: args.filters.partner,
        client_id: args.filters.client,
        route: args.route,
        status: args.status,
        since: args.filters.since,
        until: args.filters.until,
        cursor: args.page.cursor,
        limit: args.page.limit,
    };
    let page = query::list(&mut conn, &Caller::cli(), &filter)?;
    ctx.print(&page, |page| {
        let rows = page.items.iter().map(|r| {
            [
                listing::time(&r.time),
                r.method.clone(),
                r.route.clone(),
                r.status.to_string(),
                format!("{} ms", r.latency_ms),
                r.partner_id.clone(),
                r.client_id.clone(),
                r.reporter.clone(),
            ]
        });
        let rows = table(["TIME (UTC)", "METHOD", "ROUTE", "STATUS", "LATENCY", "PARTNER", "CLIENT", "REPORTER"], rows);
        listing::with_next(rows, page.next_cursor.as_ref())
    });
    Ok(())
}
