//! Security Event Tokens (RFC 8417): what each stored event looks like to a receiver. The README's "The
//! revocation stream" documents these formats for receivers written in any language; change both together.
//!
//! - Subjects (`sub_id`, OpenID Shared Signals 1.0 section 3.2, RFC 9493): the `complex` format, with the
//!   client as the `application` and its partner as the `tenant`, each `{"format": "opaque", "id": ...}`. A
//!   partner's event names the `tenant` alone. A receiver thus tells a client from a partner by the members
//!   present, without a format of our own.
//! - Event types: RISC `account-disabled` / `account-enabled` / `account-purged` for a client disabled /
//!   enabled / deleted and a partner suspended / resumed; CAEP `credential-change` (`change_type: revoke`,
//!   `credential_type: client_secret`) for a revoked secret; for a token revoked by `jti` and a bulk cut-off,
//!   which no standard event describes, [`TOKEN_REVOKED`] and [`TOKENS_CUT_OFF`].
//! - Every SET carries the event's sequence number (`partnergate_seq`), gapless and in commit order, so that a
//!   receiver can check it missed none, and `toe` (RFC 8417's time of event).

use chrono::NaiveDateTime;
use serde_json::{json, Map, Value};

use super::kind;
use crate::store::security_events::SecurityEventRow;

pub const RISC_ACCOUNT_DISABLED: &str = "https://schemas.openid.net/secevent/risc/event-type/account-disabled";
pub const RISC_ACCOUNT_ENABLED: &str = "https://schemas.openid.net/secevent/risc/event-type/account-enabled";
pub const RISC_ACCOUNT_PURGED: &str = "https://schemas.openid.net/secevent/risc/event-type/account-purged";
pub const CAEP_CREDENTIAL_CHANGE: &str = "https://schemas.openid.net/secevent/caep/event-type/credential-change";
/// One access token revoked: `{"jti": ..., "exp": ...}`; refuse it until its `exp`.
pub const TOKEN_REVOKED: &str = "https://partnergate.dev/secevent/token-revoked";
/// Bulk revocation: `{"issued_at_or_before": <seconds>}`; refuse the subject's tokens whose `iat` is at or
/// before it.
pub const TOKENS_CUT_OFF: &str = "https://partnergate.dev/secevent/tokens-cut-off";

/// Every event type the stream sends, for the transmitter metadata.
pub const EVENT_TYPES: [&str; 6] = [
    RISC_ACCOUNT_DISABLED,
    RISC_ACCOUNT_ENABLED,
    RISC_ACCOUNT_PURGED,
    CAEP_CREDENTIAL_CHANGE,
    TOKEN_REVOKED,
    TOKENS_CUT_OFF,
];

/// The JOSE `typ` of a SET (RFC 8417 section 2.3).
pub const SET_TYPE: &str = "secevent+jwt";

/// The SET's `jti`: the sequence number and the receiver, so that it is unique per SET (RFC 8417 section 2.2)
/// and an acknowledgement names both.
pub fn set_id(seq: i64, receiver: &str) -> String {
    format!("{seq}.{receiver}")
}

/// The sequence number that a `jti` of [`set_id`] acknowledges for `receiver`; `None` for anything else.
pub fn acknowledged_seq(jti: &str, receiver: &str) -> Option<i64> {
    let (seq, named) = jti.split_once('.')?;
    if named != receiver || seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    seq.parse().ok().filter(|seq| *seq > 0)
}

fn seconds(at: NaiveDateTime) -> i64 {
    at.and_utc().timestamp()
}

fn opaque(id: &str) -> Value {
    json!({"format": "opaque", "id": id})
}

/// The subject: the client as `application` (with its partner as `tenant`), or the partner alone.
fn subject(row: &SecurityEventRow) -> Value {
    let mut subject = Map::new();
    subject.insert("format".into(), "complex".into());
    if let Some(client_id) = &row.client_id {
        subject.insert("application".into(), opaque(client_id));
    }
    if let Some(partner_id) = &row.partner_id {
        subject.insert("tenant".into(), opaque(partner_id));
    }
    Value::Object(subject)
}

/// The event type and its members. A kind this version does not know (written by a later one) is sent as
/// `https://partnergate.dev/secevent/<kind>` without members, which receivers ignore as an unknown type
/// (RFC 8417 section 2.2), rather than held back: the stream must not stall on it.
fn event(row: &SecurityEventRow) -> (String, Value) {
    let toe = seconds(row.occurred_at);
    let unknown = || (format!("https://partnergate.dev/secevent/{}", row.kind), json!({}));
    let (event_type, members) = match row.kind.as_str() {
        kind::CLIENT_DISABLED | kind::PARTNER_SUSPENDED => (RISC_ACCOUNT_DISABLED, json!({})),
        kind::CLIENT_ENABLED | kind::PARTNER_RESUMED => (RISC_ACCOUNT_ENABLED, json!({})),
        kind::CLIENT_DELETED => (RISC_ACCOUNT_PURGED, json!({})),
        kind::TOKEN_REVOKED => match (&row.token_id, row.token_expires_at) {
            (Some(jti), Some(exp)) => (TOKEN_REVOKED, json!({"jti": jti, "exp": seconds(exp)})),
            _ => return unknown(),
        },
        kind::TOKENS_CUT_OFF => match row.cutoff {
            Some(cutoff) => (TOKENS_CUT_OFF, json!({"issued_at_or_before": seconds(cutoff)})),
            None => return unknown(),
        },
        kind::SECRET_REVOKED => {
            let payload: Value = serde_json::from_str(&row.payload).unwrap_or_default();
            (
                CAEP_CREDENTIAL_CHANGE,
                json!({
                    "credential_type": "client_secret",
                    "change_type": "revoke",
                    "initiating_entity": "admin",
                    "event_timestamp": toe,
                    "partnergate_secret_id": payload.get("secret_id").cloned().unwrap_or(Value::Null),
                }),
            )
        }
        _ => return unknown(),
    };
    (event_type.to_string(), members)
}

/// The claims of the SET that tells `receiver` of `row`, issued by `issuer` at `iat`.
pub fn claims(row: &SecurityEventRow, issuer: &str, receiver: &str, iat: NaiveDateTime) -> Value {
    let (event_type, members) = event(row);
    json!({
        "iss": issuer,
        "iat": seconds(iat),
        "jti": set_id(row.seq, receiver),
        "aud": receiver,
        "toe": seconds(row.occurred_at),
        "sub_id": subject(row),
        "events": { event_type: members },
        "partnergate_seq": row.seq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(secs, 250_000).unwrap().naive_utc()
    }

    fn row(kind: &str) -> SecurityEventRow {
        SecurityEventRow {
            seq: 42,
            kind: kind.into(),
            partner_id: Some("acme".into()),
            client_id: Some("pgc_a".into()),
            token_id: None,
            token_expires_at: None,
            cutoff: None,
            occurred_at: at(1_900_000_000),
            payload: "{}".into(),
        }
    }

    #[test]
    fn a_set_names_its_subject_event_and_sequence() {
        let claims = claims(&row(kind::CLIENT_DISABLED), "https://issuer", "pgc_rs", at(1_900_000_005));
        assert_eq!(
            claims,
            json!({
                "iss": "https://issuer",
                "iat": 1_900_000_005,
                "jti": "42.pgc_rs",
                "aud": "pgc_rs",
                "toe": 1_900_000_000,
                "sub_id": {
                    "format": "complex",
                    "application": {"format": "opaque", "id": "pgc_a"},
                    "tenant": {"format": "opaque", "id": "acme"},
                },
                "events": {RISC_ACCOUNT_DISABLED: {}},
                "partnergate_seq": 42,
            })
        );
    }

    #[test]
    fn each_kind_has_its_event() {
        let partner = SecurityEventRow { client_id: None, ..row(kind::PARTNER_RESUMED) };
        let claims_of = |row: &SecurityEventRow| claims(row, "i", "r", at(0));
        assert_eq!(claims_of(&partner)["sub_id"], json!({"format": "complex", "tenant": opaque("acme")}));
        assert_eq!(claims_of(&partner)["events"], json!({RISC_ACCOUNT_ENABLED: {}}));
        let revoked = SecurityEventRow {
            token_id: Some("abc".into()),
            token_expires_at: Some(at(1_900_000_600)),
            ..row(kind::TOKEN_REVOKED)
        };
        assert_eq!(claims_of(&revoked)["events"], json!({TOKEN_REVOKED: {"jti": "abc", "exp": 1_900_000_600}}));
        let cut = SecurityEventRow { cutoff: Some(at(1_900_000_001)), ..row(kind::TOKENS_CUT_OFF) };
        assert_eq!(claims_of(&cut)["events"], json!({TOKENS_CUT_OFF: {"issued_at_or_before": 1_900_000_001}}));
        let secret = SecurityEventRow { payload: r#"{"secret_id":"s1"}"#.into(), ..row(kind::SECRET_REVOKED) };
        let change = &claims_of(&secret)["events"][CAEP_CREDENTIAL_CHANGE];
        assert_eq!(change["change_type"], "revoke");
        assert_eq!(change["partnergate_secret_id"], "s1");
        assert_eq!(claims_of(&row(kind::CLIENT_DELETED))["events"], json!({RISC_ACCOUNT_PURGED: {}}));
        let later = claims(&row("from_a_later_version"), "i", "r", at(0));
        assert_eq!(later["events"], json!({"https://partnergate.dev/secevent/from_a_later_version": {}}));
    }

    #[test]
    fn acknowledgements_name_the_sequence_and_the_receiver() {
        assert_eq!(acknowledged_seq(&set_id(7, "pgc_r"), "pgc_r"), Some(7));
        assert_eq!(acknowledged_seq("7.pgc_other", "pgc_r"), None);
        for bad in ["", "7", ".pgc_r", "x.pgc_r", "-7.pgc_r", "0.pgc_r", "99999999999999999999.pgc_r"] {
            assert_eq!(acknowledged_seq(bad, "pgc_r"), None, "{bad}");
        }
    }
}
