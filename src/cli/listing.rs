//! What the listing commands (`audit`, `requests`) share: the partner, client and time filters, and how a
//! page's time and continuation are printed.

use chrono::NaiveDateTime;
use clap::Args;

#[derive(Debug, Args)]
pub struct PartyAndTime {
    /// Only this partner's.
    #[arg(long)]
    pub partner: Option<String>,
    /// Only this client's.
    #[arg(long, allow_hyphen_values = true)]
    pub client: Option<String>,
    /// At or after this UTC time (RFC 3339, or YYYY-MM-DDTHH:MM:SS).
    #[arg(long, value_parser = crate::store::utc::parse)]
    pub since: Option<NaiveDateTime>,
    /// Before this UTC time.
    #[arg(long, value_parser = crate::store::utc::parse)]
    pub until: Option<NaiveDateTime>,
}

/// A time in a table: UTC, to the millisecond.
pub fn time(at: &NaiveDateTime) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The table, and how to ask for the next page when there is one.
pub fn with_next(mut table: String, next_cursor: Option<impl std::fmt::Display>) -> String {
    if let Some(next) = next_cursor {
        table.push_str(&format!("\n(more: --cursor {next})"));
    }
    table
}
