//! Reading the request log: records newest first with a cursor, and per-minute aggregates in buckets for
//! charts. A partner admin (`authz.audit.read`) sees only its own partner's records, whatever partner it
//! names (another partner's filter reads nothing), as in the audit trail; the operator sees everything.

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use super::StatusFilter;
use crate::registry::paging::PageRequest;
use crate::registry::{validate, Caller, Permission, RegistryError, RegistryResult, Tenancy};
use crate::store::request_log::{self as store, MinuteTotal, RequestRow, Selection};
use crate::store::DbConnection;

/// `GET /admin/v1/requests` and `partnergate requests`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RequestFilter {
    pub partner_id: Option<String>,
    pub client_id: Option<String>,
    /// A route pattern exactly as reported, e.g. `/orders/{id}`.
    pub route: Option<String>,
    /// A status code (`404`) or class (`4xx`).
    pub status: Option<String>,
    /// Requests at or after this time (RFC 3339).
    #[serde(default, with = "crate::store::utc::option")]
    #[param(value_type = Option<String>)]
    pub since: Option<NaiveDateTime>,
    /// Requests before this time.
    #[serde(default, with = "crate::store::utc::option")]
    #[param(value_type = Option<String>)]
    pub until: Option<NaiveDateTime>,
    /// The previous page's `next_cursor`: continue with older records.
    pub cursor: Option<String>,
    /// Records per page (1 to 500, default 50).
    pub limit: Option<i64>,
}

/// A reported request as the API and the CLI show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RequestRecord {
    /// When the resource server received the request.
    #[serde(serialize_with = "crate::store::utc::serialize")]
    #[schema(value_type = String)]
    pub time: NaiveDateTime,
    pub client_id: String,
    pub partner_id: String,
    pub method: String,
    /// The route pattern, never the raw path.
    pub route: String,
    pub status: i32,
    pub latency_ms: i32,
    /// The client id of the resource server that reported the request.
    pub reporter: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RequestPage {
    pub items: Vec<RequestRecord>,
    pub next_cursor: Option<String>,
}

/// The filters the listing and the summary share, checked, with the caller's tenancy folded in. `None`: the
/// caller named another partner than its own, which reads nothing.
fn selection(
    caller: &Caller,
    partner_id: &Option<String>,
    client_id: &Option<String>,
    route: &Option<String>,
    status: Option<StatusFilter>,
    since: Option<NaiveDateTime>,
    until: Option<NaiveDateTime>,
) -> RegistryResult<Option<Selection>> {
    caller.require(Permission::AuditRead)?;
    validate::filter("partner_id", partner_id.as_deref(), validate::is_partner_id)?;
    validate::filter("client_id", client_id.as_deref(), validate::is_client_id)?;
    if let Some(route) = route {
        super::record::check_route(route).map_err(|why| RegistryError::Invalid { field: "route", message: why })?;
    }
    let partner_id = match (&caller.tenancy, partner_id) {
        (Tenancy::Partner(own), Some(named)) if named != own => return Ok(None),
        (Tenancy::Partner(own), _) => Some(own.clone()),
        (Tenancy::Operator, named) => named.clone(),
    };
    Ok(Some(Selection {
        partner_id,
        client_id: client_id.clone(),
        route: route.clone(),
        status: status.map(StatusFilter::range),
        since,
        until,
    }))
}

/// Records matching `filter`, newest first.
pub fn list(conn: &mut DbConnection, caller: &Caller, filter: &RequestFilter) -> RegistryResult<RequestPage> {
    let page = PageRequest { cursor: filter.cursor.clone(), limit: filter.limit };
    let size = page.size()?;
    let after = filter.cursor.as_deref().map(parse_cursor).transpose()?;
    let status = filter.status.as_deref().map(StatusFilter::parse).transpose()?;
    let Some(selection) =
        selection(caller, &filter.partner_id, &filter.client_id, &filter.route, status, filter.since, filter.until)?
    else {
        return Ok(RequestPage { items: Vec::new(), next_cursor: None });
    };
    let rows = store::select(conn, &selection, after, size + 1)?;
    let page = crate::registry::paging::page(rows, size, cursor_of);
    Ok(RequestPage { items: page.items.into_iter().map(RequestRecord::from).collect(), next_cursor: page.next_cursor })
}

impl From<RequestRow> for RequestRecord {
    fn from(row: RequestRow) -> Self {
        RequestRecord {
            time: row.occurred_at,
            client_id: row.client_id,
            partner_id: row.partner_id,
            method: row.method,
            route: row.route,
            status: row.status,
            latency_ms: row.latency_ms,
            reporter: row.reporter,
        }
    }
}

/// The listing is ordered by time, then id: the cursor names the last record shown by both, as
/// `<microseconds since the epoch>.<id>`.
fn cursor_of(row: &RequestRow) -> String {
    format!("{}.{}", row.occurred_at.and_utc().timestamp_micros(), row.id)
}

fn parse_cursor(cursor: &str) -> RegistryResult<(NaiveDateTime, i64)> {
    let invalid = || RegistryError::Invalid { field: "cursor", message: "not a cursor of this listing".into() };
    let (micros, id) = cursor.split_once('.').ok_or_else(invalid)?;
    let micros: i64 = micros.parse().map_err(|_| invalid())?;
    let id: i64 = id.parse().map_err(|_| invalid())?;
    let time = chrono::DateTime::from_timestamp_micros(micros).ok_or_else(invalid)?.naive_utc();
    Ok((time, id))
}

/// `GET /admin/v1/requests/summary`: the listing's filters (repeated rather than shared through
/// `#[serde(flatten)]`, which cannot refuse unknown query parameters) (the status as a class only: the aggregates count
/// classes), a time window and a bucket size.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SummaryFilter {
    pub partner_id: Option<String>,
    pub client_id: Option<String>,
    pub route: Option<String>,
    /// A status class (`4xx`).
    pub status: Option<String>,
    /// Start of the window (RFC 3339); default: `until` minus one day.
    #[serde(default, with = "crate::store::utc::option")]
    #[param(value_type = Option<String>)]
    pub since: Option<NaiveDateTime>,
    /// End of the window; default: now.
    #[serde(default, with = "crate::store::utc::option")]
    #[param(value_type = Option<String>)]
    pub until: Option<NaiveDateTime>,
    /// Bucket size in minutes (1 to 1440, default 1); the window holds at most 1440 buckets.
    pub interval_minutes: Option<i64>,
}

/// The requests of one bucket to one method and route with one status class, over every matching client.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SummaryBucket {
    /// The bucket's first minute.
    #[serde(serialize_with = "crate::store::utc::serialize")]
    #[schema(value_type = String)]
    pub start: NaiveDateTime,
    pub method: String,
    pub route: String,
    /// `1xx` to `5xx`.
    pub status_class: String,
    pub requests: i64,
    pub latency_sum_ms: i64,
    pub latency_max_ms: i32,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Summary {
    #[serde(serialize_with = "crate::store::utc::serialize")]
    #[schema(value_type = String)]
    pub since: NaiveDateTime,
    #[serde(serialize_with = "crate::store::utc::serialize")]
    #[schema(value_type = String)]
    pub until: NaiveDateTime,
    pub interval_minutes: i64,
    /// Oldest first; buckets without requests are left out.
    pub buckets: Vec<SummaryBucket>,
}

pub const MAX_BUCKETS: i64 = 1440;
/// Most aggregate rows one summary reads; beyond, the caller narrows the window or the filters.
pub const MAX_SUMMARY_ROWS: i64 = 200_000;

pub fn summary(conn: &mut DbConnection, caller: &Caller, filter: &SummaryFilter) -> RegistryResult<Summary> {
    let invalid = |field, message: &str| RegistryError::Invalid { field, message: message.to_string() };
    let interval = filter.interval_minutes.unwrap_or(1);
    if !(1..=MAX_BUCKETS).contains(&interval) {
        return Err(invalid("interval_minutes", "must be between 1 and 1440"));
    }
    let until = filter.until.unwrap_or_else(|| caller.now());
    let since = filter.since.unwrap_or(until - chrono::Duration::days(1));
    if since >= until {
        return Err(invalid("since", "must be before until"));
    }
    if (until - since).num_minutes() > interval * MAX_BUCKETS {
        return Err(invalid("interval_minutes", "the window holds more than 1440 buckets: use a larger interval"));
    }
    let status = match filter.status.as_deref().map(StatusFilter::parse).transpose()? {
        Some(StatusFilter::Code(_)) => {
            return Err(invalid("status", "the summary counts status classes: use a class such as 4xx"));
        }
        other => other,
    };
    let mut summary = Summary { since, until, interval_minutes: interval, buckets: Vec::new() };
    let Some(selection) =
        selection(caller, &filter.partner_id, &filter.client_id, &filter.route, status, Some(since), Some(until))?
    else {
        return Ok(summary);
    };
    let totals = store::minute_totals(conn, &selection, MAX_SUMMARY_ROWS + 1)?;
    if totals.len() as i64 > MAX_SUMMARY_ROWS {
        return Err(invalid("since", "too many aggregates in this window: narrow the window or the filters"));
    }
    summary.buckets = buckets(totals, interval);
    Ok(summary)
}

/// Folds per-minute totals (oldest first) into buckets of `interval` minutes, aligned on the epoch (so that
/// daily buckets are UTC days), keeping the order: oldest first, then method, route and class.
fn buckets(totals: Vec<MinuteTotal>, interval: i64) -> Vec<SummaryBucket> {
    let mut folded: std::collections::BTreeMap<(NaiveDateTime, String, String, i32), SummaryBucket> =
        std::collections::BTreeMap::new();
    let width = interval * 60;
    for total in totals {
        let seconds = total.minute.and_utc().timestamp();
        let start = chrono::DateTime::from_timestamp(seconds - seconds.rem_euclid(width), 0)
            .map(|t| t.naive_utc())
            .unwrap_or(total.minute);
        let key = (start, total.method.clone(), total.route.clone(), total.status_class);
        let bucket = folded.entry(key).or_insert_with(|| SummaryBucket {
            start,
            method: total.method,
            route: total.route,
            status_class: format!("{}xx", total.status_class),
            requests: 0,
            latency_sum_ms: 0,
            latency_max_ms: 0,
        });
        bucket.requests += total.requests;
        bucket.latency_sum_ms += total.latency_sum_ms;
        bucket.latency_max_ms = bucket.latency_max_ms.max(total.latency_max_ms);
    }
    folded.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::RequestMeta;

    fn at(text: &str) -> NaiveDateTime {
        crate::store::utc::parse(text).unwrap()
    }

    fn total(minute: &str, route: &str, class: i32, requests: i64, max: i32) -> MinuteTotal {
        MinuteTotal {
            minute: at(minute),
            method: "GET".into(),
            route: route.into(),
            status_class: class,
            requests,
            latency_sum_ms: requests * 2,
            latency_max_ms: max,
        }
    }

    #[test]
    fn buckets_fold_minutes() {
        let totals = vec![
            total("2026-12-07T18:01:00Z", "/a", 2, 3, 4),
            total("2026-12-07T18:04:00Z", "/a", 2, 1, 9),
            total("2026-12-07T18:04:00Z", "/a", 5, 1, 1),
            total("2026-12-07T18:05:00Z", "/a", 2, 2, 1),
        ];
        let folded = buckets(totals, 5);
        let seen: Vec<(String, &str, i64, i64, i32)> = folded
            .iter()
            .map(|b| {
                (
                    crate::store::utc::format(&b.start),
                    b.status_class.as_str(),
                    b.requests,
                    b.latency_sum_ms,
                    b.latency_max_ms,
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                ("2026-12-07T18:00:00Z".into(), "2xx", 4, 8, 9),
                ("2026-12-07T18:00:00Z".into(), "5xx", 1, 2, 1),
                ("2026-12-07T18:05:00Z".into(), "2xx", 2, 4, 1),
            ]
        );
    }

    #[test]
    fn a_partner_admin_reads_its_own_partner_only() {
        let admin = Caller::from_token("pgc_admin", "acme", ["authz.audit.read"], RequestMeta::default());
        let none = &None;
        let own = selection(&admin, none, none, none, None, None, None).unwrap().unwrap();
        assert_eq!(own.partner_id.as_deref(), Some("acme"));
        let other = Some("globex".to_string());
        assert!(selection(&admin, &other, none, none, None, None, None).unwrap().is_none());
        let operator = Caller::cli();
        assert_eq!(selection(&operator, &other, none, none, None, None, None).unwrap().unwrap().partner_id, other);
        assert_eq!(selection(&operator, none, none, none, None, None, None).unwrap().unwrap().partner_id, None);
        // A reporter reads nothing.
        let reporter = Caller::from_token("pgc_rs", "acme", ["authz.usage.report"], RequestMeta::default());
        assert!(matches!(selection(&reporter, none, none, none, None, None, None), Err(RegistryError::Forbidden(_))));
    }

    #[test]
    fn cursors_round_trip() {
        let row = RequestRow {
            id: 42,
            occurred_at: at("2026-12-07T18:00:00.123456Z"),
            reporter: "r".into(),
            client_id: "c".into(),
            partner_id: "p".into(),
            method: "GET".into(),
            route: "/".into(),
            status: 200,
            latency_ms: 1,
        };
        assert_eq!(parse_cursor(&cursor_of(&row)).unwrap(), (row.occurred_at, 42));
        for bad in ["", "1", "x.1", "1.x", "1.2.3"] {
            assert!(parse_cursor(bad).is_err(), "{bad}");
        }
    }
}
