//! `partnergate partner ...`.

use clap::Subcommand;

use super::{facts, joined, table, with_next, CliResult, Context};
use crate::registry::paging::PageRequest;
use crate::registry::partners::{self, NewPartner, PartnerUpdate};

use crate::registry::invitations::{self, NewInvitation};
use crate::registry::{revocation, usage, Caller};

#[derive(Debug, Subcommand)]
pub enum PartnerCommand {
    /// Register a partner with its scope ceiling.
    Create {
        /// Partner id: a lowercase slug such as `acme`.
        id: String,
        /// Display name (e.g. "Acme Corp").
        #[arg(long)]
        name: String,
        /// A scope the partner's clients may hold (repeatable): the ceiling.
        #[arg(long = "ceiling")]
        ceiling: Vec<String>,
        /// An audience the partner's admin may give its clients (repeatable): the audience ceiling.
        #[arg(long = "audience")]
        audiences: Vec<String>,
        /// An identity provider the partner's clients may accept tokens of (repeatable; workload identity
        /// federation), e.g. https://token.actions.githubusercontent.com.
        #[arg(long = "trusted-issuer")]
        trusted_issuers: Vec<String>,
        /// Token requests per minute of all the partner's clients together, on each instance.
        #[arg(long)]
        rate_limit_per_minute: Option<i32>,
        /// Tokens per UTC day of all the partner's clients together, across instances.
        #[arg(long)]
        token_quota_per_day: Option<i32>,
        /// Over quota, issue anyway: count and audit, do not refuse.
        #[arg(long)]
        quota_log_only: bool,
        /// New secrets of the partner's clients expire after at most this many days (0: no maximum);
        /// default: the server's --secret-max-age-days.
        #[arg(long)]
        secret_max_age_days: Option<i32>,
    },
    /// List partners, a page at a time.
    List(PageRequest),
    /// Change a partner's name, ceiling (replaces the whole list) or limits.
    Update {
        /// The partner to change.
        id: String,
        /// The new display name.
        #[arg(long)]
        name: Option<String>,
        /// The new ceiling, repeatable; replaces the old one.
        #[arg(long = "ceiling")]
        ceiling: Option<Vec<String>>,
        /// The new audience ceiling, repeatable; replaces the old one.
        #[arg(long = "audience", conflicts_with = "clear_audiences")]
        audiences: Option<Vec<String>>,
        /// Empty the audience ceiling.
        #[arg(long)]
        clear_audiences: bool,
        /// The trusted identity providers, repeatable; replaces the old list.
        #[arg(long = "trusted-issuer", conflicts_with = "clear_trusted_issuers")]
        trusted_issuers: Option<Vec<String>>,
        /// Trust no identity provider (federated credentials stop working at once).
        #[arg(long)]
        clear_trusted_issuers: bool,
        /// Token requests per minute of all the partner's clients together, on each instance.
        #[arg(long, conflicts_with = "no_rate_limit")]
        rate_limit_per_minute: Option<i32>,
        /// Remove the partner's rate limit.
        #[arg(long)]
        no_rate_limit: bool,
        /// Tokens per UTC day of all the partner's clients together, across instances.
        #[arg(long, conflicts_with = "no_quota")]
        token_quota_per_day: Option<i32>,
        /// Remove the partner's daily quota.
        #[arg(long)]
        no_quota: bool,
        /// `true`: over quota, issue anyway (count and audit); `false`: refuse with 429.
        #[arg(long)]
        quota_log_only: Option<bool>,
        /// New secrets of the partner's clients expire after at most this many days (0: no maximum). Existing
        /// secrets keep their expiry (see `client apply-secret-max-age`).
        #[arg(long, conflicts_with = "default_secret_max_age")]
        secret_max_age_days: Option<i32>,
        /// Drop the partner's own maximum secret age: the server's --secret-max-age-days applies again.
        #[arg(long)]
        default_secret_max_age: bool,
    },
    /// Show today's token count against the partner's daily quota.
    Quota {
        /// The partner.
        id: String,
    },
    /// Suspend a partner: none of its clients gets a token until it is resumed.
    Suspend {
        /// The partner to suspend.
        id: String,
    },
    /// Delete a partner that has no clients (never the operator's own).
    Delete {
        /// The partner to delete.
        id: String,
    },
    /// Resume a suspended partner.
    Resume {
        /// The partner to resume.
        id: String,
    },
    /// Revoke every token issued so far to any client of the partner.
    RevokeTokens {
        /// The partner whose tokens to revoke.
        id: String,
    },
    /// Invite an email address to administer the partner from the console: the first sign-in through the
    /// identity provider with that verified address takes the invitation.
    Invite {
        /// The partner.
        id: String,
        /// The address the identity provider must assert as verified.
        email: String,
        /// A reserved scope the partner admin gets (repeatable): authz.clients.read, authz.clients.write,
        /// authz.audit.read.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
    },
    /// List the partner's invitations, open and taken.
    Invitations {
        /// The partner.
        id: String,
    },
    /// Withdraw an invitation; the person who took it is signed out at once.
    Uninvite {
        /// The partner.
        id: String,
        /// The invitation id (`inv_...`).
        invitation_id: String,
    },
}

/// A partner, one fact per line.
fn partner_facts(p: &partners::Partner) -> String {
    let limit = |value: Option<i32>| value.map_or("-".to_string(), |v| v.to_string());
    facts(&[
        ("partner", p.id.clone()),
        ("name", p.name.clone()),
        ("state", state(p).to_string()),
        ("ceiling", joined(&p.scope_ceiling)),
        ("audience_ceiling", joined(&p.audience_ceiling)),
        ("rate_limit_per_minute", limit(p.rate_limit_per_minute)),
        ("token_quota_per_day", limit(p.token_quota_per_day)),
        ("quota_mode", if p.quota_log_only { "log only" } else { "enforced" }.to_string()),
        (
            "secret_max_age",
            p.secret_max_age_days.map_or("the server's default".to_string(), |d| match d {
                0 => "none".to_string(),
                d => format!("{d} days"),
            }),
        ),
    ])
}

fn state(p: &partners::Partner) -> &'static str {
    if p.suspended {
        "suspended"
    } else {
        "active"
    }
}

pub fn run(ctx: &Context, command: PartnerCommand) -> CliResult {
    let mut conn = ctx.registry()?.begin()?;
    let caller = Caller::cli();
    match command {
        PartnerCommand::Create {
            id,
            name,
            ceiling,
            audiences,
            trusted_issuers,
            rate_limit_per_minute,
            token_quota_per_day,
            quota_log_only,
            secret_max_age_days,
        } => {
            let input = NewPartner {
                id,
                name,
                scope_ceiling: ceiling,
                audience_ceiling: audiences,
                trusted_issuers,
                rate_limit_per_minute,
                token_quota_per_day,
                quota_log_only,
                secret_max_age_days,
            };
            let partner = partners::create(&mut conn, &caller, &input)?;
            ctx.print(&partner, |p| format!("created partner {}\n{}", p.id, partner_facts(p)));
        }
        PartnerCommand::List(request) => {
            let page = partners::list(&mut conn, &Caller::cli(), &request)?;
            ctx.print(&page, |page| {
                let rows = page
                    .items
                    .iter()
                    .map(|p| [p.id.clone(), p.name.clone(), state(p).to_string(), joined(&p.scope_ceiling)]);
                with_next(table(["ID", "NAME", "STATE", "CEILING"], rows), &page.next_cursor)
            });
        }
        PartnerCommand::Update {
            id,
            name,
            ceiling,
            audiences,
            clear_audiences,
            trusted_issuers,
            clear_trusted_issuers,
            rate_limit_per_minute,
            no_rate_limit,
            token_quota_per_day,
            no_quota,
            quota_log_only,
            secret_max_age_days,
            default_secret_max_age,
        } => {
            let limit = |value: Option<i32>, clear: bool| if clear { Some(None) } else { value.map(Some) };
            let input = PartnerUpdate {
                name,
                scope_ceiling: ceiling,
                audience_ceiling: if clear_audiences { Some(Vec::new()) } else { audiences },
                trusted_issuers: if clear_trusted_issuers { Some(Vec::new()) } else { trusted_issuers },
                rate_limit_per_minute: limit(rate_limit_per_minute, no_rate_limit),
                token_quota_per_day: limit(token_quota_per_day, no_quota),
                quota_log_only,
                secret_max_age_days: limit(secret_max_age_days, default_secret_max_age),
            };
            let partner = partners::update(&mut conn, &caller, &id, &input)?;
            ctx.print(&partner, |p| format!("updated partner {}\n{}", p.id, partner_facts(p)));
        }
        PartnerCommand::Invite { id, email, scopes } => {
            let invitation = invitations::create(&mut conn, &caller, &id, &NewInvitation { email, scopes })?;
            ctx.print(&invitation, |i| {
                format!("invited {} to administer {} with {} ({})", i.email, i.partner_id, joined(&i.scopes), i.id)
            });
        }
        PartnerCommand::Invitations { id } => {
            let items = invitations::list(&mut conn, &caller, &id)?;
            ctx.print(&items, |items| {
                let rows = items.iter().map(|i| {
                    let status = i
                        .bound
                        .as_ref()
                        .map_or("open".to_string(), |b| format!("taken by {} at {}", b.subject, b.issuer));
                    [i.id.clone(), i.email.clone(), joined(&i.scopes), status]
                });
                table(["ID", "EMAIL", "SCOPES", "STATUS"], rows)
            });
        }
        PartnerCommand::Uninvite { id, invitation_id } => {
            invitations::delete(&mut conn, &caller, &id, &invitation_id)?;
            ctx.print(&serde_json::json!({"deleted": invitation_id}), |_| {
                format!("withdrew invitation {invitation_id}")
            });
        }
        PartnerCommand::Quota { id } => {
            let usage = usage::today(&mut conn, &caller, &id)?;
            ctx.print(&usage, |u| {
                let quota = u.token_quota_per_day.map_or("none".to_string(), |q| q.to_string());
                facts(&[
                    ("partner", u.partner_id.clone()),
                    ("day", u.day.clone()),
                    ("tokens", u.tokens.to_string()),
                    ("quota", quota),
                    ("quota_mode", if u.quota_log_only { "log only" } else { "enforced" }.to_string()),
                    ("resets_at", crate::store::utc::format(&u.resets_at)),
                ])
            });
        }
        PartnerCommand::Suspend { id } => {
            let partner = partners::set_suspended(&mut conn, &caller, &id, true)?;
            ctx.print(&partner, |p| format!("suspended {}", p.id));
        }
        PartnerCommand::Delete { id } => {
            partners::delete(&mut conn, &caller, &id)?;
            ctx.print(&serde_json::json!({"deleted": id}), |_| format!("deleted partner {id}"));
        }
        PartnerCommand::Resume { id } => {
            let partner = partners::set_suspended(&mut conn, &caller, &id, false)?;
            ctx.print(&partner, |p| format!("resumed {}", p.id));
        }
        PartnerCommand::RevokeTokens { id } => {
            let cutoff = revocation::revoke_partner_tokens(&mut conn, &caller, &id)?;
            ctx.print(
                &serde_json::json!({"partner_id": id, "tokens_revoked_before": crate::store::utc::format(&cutoff)}),
                |_| format!("revoked every token of partner {id} issued until {}", crate::store::utc::format(&cutoff)),
            );
        }
    }
    Ok(())
}
