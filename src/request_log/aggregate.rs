//! The per-minute aggregates of a batch: minute × partner × client × method × route × status class, with the
//! number of requests and their latencies' sum and maximum. Planned here without a database, so that the
//! store adds a batch's counts in one upsert statement whatever its size.

use std::collections::BTreeMap;

use chrono::{DurationRound, NaiveDateTime};

use crate::store::request_log::{MinuteRow, NewRequestRow};

/// The minute a time falls in.
pub fn minute_of(at: NaiveDateTime) -> NaiveDateTime {
    at.duration_trunc(chrono::Duration::minutes(1)).unwrap_or(at)
}

/// The batch's counts, sorted by their key (the order the store locks the aggregate rows in).
pub fn per_minute(rows: &[NewRequestRow]) -> Vec<MinuteRow> {
    type Key<'a> = (NaiveDateTime, &'a str, &'a str, &'a str, &'a str, i32);
    let mut counts: BTreeMap<Key, (i64, i64, i32)> = BTreeMap::new();
    for row in rows {
        let key = (
            minute_of(row.occurred_at),
            &*row.partner_id,
            &*row.client_id,
            &*row.method,
            &*row.route,
            row.status / 100,
        );
        let (requests, sum, max) = counts.entry(key).or_default();
        *requests += 1;
        *sum += i64::from(row.latency_ms);
        *max = (*max).max(row.latency_ms);
    }
    counts
        .into_iter()
        .map(
            |(
                (minute, partner_id, client_id, method, route, status_class),
                (requests, latency_sum_ms, latency_max_ms),
            )| {
                MinuteRow {
                    minute,
                    partner_id: partner_id.to_string(),
                    client_id: client_id.to_string(),
                    method: method.to_string(),
                    route: route.to_string(),
                    status_class,
                    requests,
                    latency_sum_ms,
                    latency_max_ms,
                }
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(time: &str, route: &str, status: i32, latency_ms: i32) -> NewRequestRow {
        NewRequestRow {
            occurred_at: crate::store::utc::parse(time).unwrap(),
            reporter: "r".into(),
            client_id: "pgc_c".into(),
            partner_id: "acme".into(),
            method: "GET".into(),
            route: route.into(),
            status,
            latency_ms,
            jti: None,
        }
    }

    #[test]
    fn counts_per_minute_route_and_class() {
        let rows = [
            row("2026-12-07T18:00:59.999Z", "/a", 200, 3),
            row("2026-12-07T18:00:00Z", "/a", 204, 5),
            row("2026-12-07T18:01:00Z", "/a", 200, 1),
            row("2026-12-07T18:00:10Z", "/a", 404, 2),
            row("2026-12-07T18:00:10Z", "/b", 200, 7),
        ];
        let minutes = per_minute(&rows);
        let summary: Vec<(String, &str, i32, i64, i64, i32)> = minutes
            .iter()
            .map(|m| {
                (
                    crate::store::utc::format(&m.minute),
                    m.route.as_str(),
                    m.status_class,
                    m.requests,
                    m.latency_sum_ms,
                    m.latency_max_ms,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("2026-12-07T18:00:00Z".to_string(), "/a", 2, 2, 8, 5),
                ("2026-12-07T18:00:00Z".to_string(), "/a", 4, 1, 2, 2),
                ("2026-12-07T18:00:00Z".to_string(), "/b", 2, 1, 7, 7),
                ("2026-12-07T18:01:00Z".to_string(), "/a", 2, 1, 1, 1),
            ]
        );
    }
}
