//! `partnergate scope ...` and `partnergate role ...`: the catalog shared by every partner.

use clap::Subcommand;

use super::{facts, joined, table, with_next, CliResult, Context};
use crate::registry::paging::PageRequest;
use crate::registry::{roles, scopes, Caller};

#[derive(Debug, Subcommand)]
pub enum ScopeCommand {
    /// Register a scope (`resource.action`).
    Create {
        /// The scope name, `resource.action` (e.g. `orders.read`).
        name: String,
        /// What the scope allows, for people reading the catalog.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List the catalog, a page at a time.
    List(PageRequest),
    /// Change a scope's description.
    Update {
        /// The scope to change.
        name: String,
        /// The new description.
        #[arg(long)]
        description: String,
    },
    /// Delete a scope; refused while in use unless --cascade.
    Delete {
        /// The scope to delete.
        name: String,
        /// Also remove it from every role, ceiling and client that holds it.
        #[arg(long)]
        cascade: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Create a role bundling scopes.
    Create {
        /// The role name (e.g. `order-reader`).
        name: String,
        /// What the role is for.
        #[arg(long, default_value = "")]
        description: String,
        /// A scope of the role (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
    },
    /// List roles with their scopes, a page at a time.
    List(PageRequest),
    /// Change a role's description or scopes (the scopes replace the old list).
    Update {
        /// The role to change.
        name: String,
        /// The new description.
        #[arg(long)]
        description: Option<String>,
        /// A scope of the role (repeatable); replaces the old list.
        #[arg(long = "scope")]
        scopes: Option<Vec<String>>,
    },
    /// Delete a role; refused while assigned unless --cascade.
    Delete {
        /// The role to delete.
        name: String,
        /// Also take it away from every client that has it.
        #[arg(long)]
        cascade: bool,
    },
}

pub fn run_scope(ctx: &Context, command: ScopeCommand) -> CliResult {
    let mut conn = ctx.registry()?.begin()?;
    let caller = Caller::cli();
    match command {
        ScopeCommand::Create { name, description } => {
            let scope = scopes::create(&mut conn, &caller, &name, &description)?;
            ctx.print(&scope, |s| format!("created scope {}", s.name));
        }
        ScopeCommand::List(request) => {
            let page = scopes::list(&mut conn, &request)?;
            ctx.print(&page, |page| {
                let rows = page.items.iter().map(|s| [s.name.clone(), s.description.clone()]);
                with_next(table(["NAME", "DESCRIPTION"], rows), &page.next_cursor)
            });
        }
        ScopeCommand::Update { name, description } => {
            let scope = scopes::update(&mut conn, &caller, &name, &description)?;
            ctx.print(&scope, |s| format!("updated scope {}", s.name));
        }
        ScopeCommand::Delete { name, cascade } => {
            scopes::delete(&mut conn, &caller, &name, cascade)?;
            ctx.print(&serde_json::json!({"deleted": name}), |_| format!("deleted scope {name}"));
        }
    }
    Ok(())
}

pub fn run_role(ctx: &Context, command: RoleCommand) -> CliResult {
    let mut conn = ctx.registry()?.begin()?;
    let caller = Caller::cli();
    match command {
        RoleCommand::Create { name, description, scopes } => {
            let role = roles::create(&mut conn, &caller, &name, &description, &scopes)?;
            ctx.print(&role, |r| format!("created role {}\n{}", r.name, facts(&[("scopes", joined(&r.scopes))])));
        }
        RoleCommand::List(request) => {
            let page = roles::list(&mut conn, &request)?;
            ctx.print(&page, |page| {
                let rows = page.items.iter().map(|r| [r.name.clone(), joined(&r.scopes), r.description.clone()]);
                with_next(table(["NAME", "SCOPES", "DESCRIPTION"], rows), &page.next_cursor)
            });
        }
        RoleCommand::Update { name, description, scopes } => {
            let role = roles::update(&mut conn, &caller, &name, description.as_deref(), scopes.as_deref())?;
            ctx.print(&role, |r| format!("updated role {}\n{}", r.name, facts(&[("scopes", joined(&r.scopes))])));
        }
        RoleCommand::Delete { name, cascade } => {
            roles::delete(&mut conn, &caller, &name, cascade)?;
            ctx.print(&serde_json::json!({"deleted": name}), |_| format!("deleted role {name}"));
        }
    }
    Ok(())
}
