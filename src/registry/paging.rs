//! Cursor pagination, the same for every listing: ordered by the object's key, `?limit=` items after
//! `?cursor=` (the previous page's `next_cursor`, the last key it showed), `next_cursor` null on the last page.

use clap::Args;
use serde::{Deserialize, Serialize};

use super::{RegistryError, RegistryResult};

pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 500;

/// `?limit=&cursor=` of a listing, and `--limit`/`--cursor` of the CLI's list commands.
#[derive(Debug, Clone, Default, Deserialize, Args, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageRequest {
    /// Continue after this key (the previous page's next_cursor).
    #[arg(long)]
    pub cursor: Option<String>,
    /// Items per page (1 to 500, default 50).
    #[arg(long)]
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl PageRequest {
    /// The page size, checked, after checking the cursor: a key as the previous page showed it, not any text.
    pub fn size(&self) -> RegistryResult<i64> {
        super::validate::filter("cursor", self.cursor.as_deref(), super::validate::is_key)?;
        let limit = self.limit.unwrap_or(DEFAULT_PAGE_SIZE);
        if (1..=MAX_PAGE_SIZE).contains(&limit) {
            Ok(limit)
        } else {
            Err(RegistryError::Invalid { field: "limit", message: format!("must be between 1 and {MAX_PAGE_SIZE}") })
        }
    }
}

/// A page from `rows` loaded with `LIMIT size + 1`: the extra row only says that there is a next page.
pub fn page<T>(mut rows: Vec<T>, size: i64, key: impl Fn(&T) -> String) -> Page<T> {
    let next_cursor = if rows.len() as i64 > size {
        rows.truncate(size as usize);
        rows.last().map(key)
    } else {
        None
    };
    Page { items: rows, next_cursor }
}

impl<T> Page<T> {
    pub fn try_map<U>(self, f: impl FnMut(T) -> RegistryResult<U>) -> RegistryResult<Page<U>> {
        Ok(Page { items: self.items.into_iter().map(f).collect::<RegistryResult<_>>()?, next_cursor: self.next_cursor })
    }
}
