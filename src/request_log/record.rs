//! What a reported record must be: every field checked, with the index and the field named in the error, and
//! a batch refused whole when one record is wrong (a reporter's bug shows at once instead of as gaps).

use std::ops::RangeInclusive;

use chrono::{NaiveDateTime, Timelike};
use serde_json::{Map, Value};

use crate::registry::validate;
use crate::registry::{RegistryError, RegistryResult};
use crate::store::request_log::NewRequestRow;

pub const STATUS_RANGE: RangeInclusive<i32> = 100..=599;
/// Latencies above a day are a unit mistake (microseconds, nanoseconds), not a slow request.
pub const MAX_LATENCY_MS: i64 = 86_400_000;
/// Longest route pattern, in bytes.
pub const MAX_ROUTE_BYTES: usize = 256;
/// Longest method name (the registered ones have at most 7 letters; extensions a few more).
pub const MAX_METHOD_LEN: usize = 16;
/// How far ahead of the server's clock a record's time may be: the reporter's clock may run ahead a little.
pub const MAX_CLOCK_AHEAD: chrono::Duration = chrono::Duration::minutes(5);

const FIELDS: [&str; 8] = ["time", "method", "route", "status", "latency_ms", "client_id", "partner_id", "jti"];

/// The rows of a batch from `reporter`, or the first record's error.
pub fn validate_batch(records: &[Value], reporter: &str, now: NaiveDateTime) -> RegistryResult<Vec<NewRequestRow>> {
    records
        .iter()
        .enumerate()
        .map(|(index, record)| {
            validate_record(record, reporter, now).map_err(|(field, why)| RegistryError::Invalid {
                field: "records",
                message: format!("record {index}: {field} {why}"),
            })
        })
        .collect()
}

type FieldError = (&'static str, String);

fn validate_record(record: &Value, reporter: &str, now: NaiveDateTime) -> Result<NewRequestRow, FieldError> {
    let record = record.as_object().ok_or(("record", "must be a JSON object".to_string()))?;
    if let Some(unknown) = record.keys().find(|key| !FIELDS.contains(&key.as_str())) {
        return Err(("record", format!("has an unknown field {:?}", truncated(unknown))));
    }
    let time = text(record, "time")?;
    let occurred_at = chrono::DateTime::parse_from_rfc3339(time)
        .map_err(|_| ("time", "must be an RFC 3339 time, e.g. 2026-12-07T18:00:00.123Z".to_string()))?
        .naive_utc();
    if occurred_at > now + MAX_CLOCK_AHEAD {
        return Err((
            "time",
            format!("is more than {} minutes ahead of the server's clock", MAX_CLOCK_AHEAD.num_minutes()),
        ));
    }
    // Microseconds, as PostgreSQL stores them: a listing cursor names a record by its time exactly.
    let occurred_at = occurred_at.with_nanosecond(occurred_at.nanosecond() / 1000 * 1000).unwrap_or(occurred_at);
    let method = text(record, "method")?;
    if !(1..=MAX_METHOD_LEN).contains(&method.len()) || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(("method", format!("must be 1 to {MAX_METHOD_LEN} ASCII letters")));
    }
    let route = text(record, "route")?;
    if let Err(why) = check_route(route) {
        return Err(("route", why));
    }
    let status = integer(record, "status", i64::from(*STATUS_RANGE.start())..=i64::from(*STATUS_RANGE.end()))?;
    let latency_ms = integer(record, "latency_ms", 0..=MAX_LATENCY_MS)?;
    let client_id = text(record, "client_id")?;
    if !validate::is_client_id(client_id) {
        return Err(("client_id", "must be a client id (3-64 visible ASCII characters)".to_string()));
    }
    let partner_id = text(record, "partner_id")?;
    if !validate::is_partner_id(partner_id) {
        return Err(("partner_id", "must be a partner id (2-63 of a-z, 0-9 and '-')".to_string()));
    }
    let jti = match record.get("jti") {
        None | Some(Value::Null) => None,
        Some(Value::String(jti)) if validate::is_key(jti) => Some(jti.clone()),
        Some(_) => return Err(("jti", "must be 1-128 visible ASCII characters, or null".to_string())),
    };
    Ok(NewRequestRow {
        occurred_at,
        reporter: reporter.to_string(),
        client_id: client_id.to_string(),
        partner_id: partner_id.to_string(),
        method: method.to_string(),
        route: route.to_string(),
        // Both ranges fit an i32.
        status: status as i32,
        latency_ms: latency_ms as i32,
        jti,
    })
}

/// A route pattern as a router names it (`/orders/{id}`), never a raw path with a query.
pub fn check_route(route: &str) -> Result<(), String> {
    if route.is_empty() || route.len() > MAX_ROUTE_BYTES {
        return Err(format!("must be 1 to {MAX_ROUTE_BYTES} bytes"));
    }
    if !route.starts_with('/') {
        return Err("must start with '/'".to_string());
    }
    if route.contains(['?', '#']) {
        return Err("must be a route pattern, without a query or fragment".to_string());
    }
    if route.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("must not contain control characters or spaces".to_string());
    }
    Ok(())
}

fn text<'a>(record: &'a Map<String, Value>, field: &'static str) -> Result<&'a str, FieldError> {
    match record.get(field) {
        Some(Value::String(value)) => Ok(value),
        None | Some(Value::Null) => Err((field, "is missing".to_string())),
        Some(_) => Err((field, "must be a string".to_string())),
    }
}

fn integer(record: &Map<String, Value>, field: &'static str, range: RangeInclusive<i64>) -> Result<i64, FieldError> {
    let value = record.get(field).ok_or((field, "is missing".to_string()))?;
    value
        .as_i64()
        .filter(|n| range.contains(n))
        .ok_or_else(|| (field, format!("must be a whole number from {} to {}", range.start(), range.end())))
}

/// An unknown key quoted in an error, cut short: the caller chose its length.
fn truncated(text: &str) -> String {
    text.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn now() -> NaiveDateTime {
        crate::store::utc::parse("2026-12-07T18:00:00Z").unwrap()
    }

    fn good() -> Value {
        json!({"time": "2026-12-07T17:59:59.123456789Z", "method": "GET", "route": "/orders/{id}", "status": 200,
               "latency_ms": 3, "client_id": "pgc_abc", "partner_id": "acme", "jti": "j-1"})
    }

    fn error_of(record: Value) -> String {
        validate_batch(&[good(), record], "pgc_reporter", now()).unwrap_err().to_string()
    }

    fn with(field: &str, value: Value) -> Value {
        let mut record = good();
        record[field] = value;
        record
    }

    #[test]
    fn a_good_record() {
        let rows = validate_batch(&[good()], "pgc_reporter", now()).unwrap();
        assert_eq!(rows[0].reporter, "pgc_reporter");
        assert_eq!(rows[0].status, 200);
        assert_eq!(crate::store::utc::format(&rows[0].occurred_at), "2026-12-07T17:59:59.123456Z");
        let mut no_jti = good();
        no_jti.as_object_mut().unwrap().remove("jti");
        assert_eq!(validate_batch(&[no_jti], "r", now()).unwrap()[0].jti, None);
        // Within the allowed clock skew.
        assert!(validate_batch(&[with("time", json!("2026-12-07T18:04:00+00:00"))], "r", now()).is_ok());
    }

    #[test]
    fn each_bad_field_is_named_with_its_index() {
        let cases = [
            (with("time", json!("yesterday")), "time"),
            (with("time", json!("2026-12-07T18:06:00Z")), "time"),
            (with("method", json!("GE T")), "method"),
            (with("method", json!("")), "method"),
            (with("route", json!("/orders?id=1")), "route"),
            (with("route", json!("orders")), "route"),
            (with("route", json!("/a\u{0}b")), "route"),
            (with("route", json!(format!("/{}", "a".repeat(MAX_ROUTE_BYTES)))), "route"),
            (with("status", json!(99)), "status"),
            (with("status", json!(600)), "status"),
            (with("status", json!("200")), "status"),
            (with("latency_ms", json!(-1)), "latency_ms"),
            (with("latency_ms", json!(1.5)), "latency_ms"),
            (with("latency_ms", json!(MAX_LATENCY_MS + 1)), "latency_ms"),
            (with("client_id", json!("a b")), "client_id"),
            (with("partner_id", json!("ACME")), "partner_id"),
            (with("jti", json!(7)), "jti"),
            (with("extra", json!(1)), "record"),
            (json!([1]), "record"),
        ];
        for (record, field) in cases {
            let message = error_of(record.clone());
            assert!(message.starts_with(&format!("records: record 1: {field} ")), "{record}: {message}");
        }
    }
}
