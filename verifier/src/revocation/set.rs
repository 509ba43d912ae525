//! Security Event Tokens (RFC 8417) from the issuer's revocation stream: checked as strictly as access tokens
//! (the key and its algorithm from the issuer's JWKS, `typ: secevent+jwt`, `iss`, `aud` = this receiver),
//! then read into the one change each names. The formats are the README's ("The revocation stream").

use std::collections::HashSet;
use std::sync::Arc;

use jsonwebtoken::Validation;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::jwks::{DecodeError, JwksCache};

const RISC_ACCOUNT_DISABLED: &str = "https://schemas.openid.net/secevent/risc/event-type/account-disabled";
const RISC_ACCOUNT_ENABLED: &str = "https://schemas.openid.net/secevent/risc/event-type/account-enabled";
const RISC_ACCOUNT_PURGED: &str = "https://schemas.openid.net/secevent/risc/event-type/account-purged";
const TOKEN_REVOKED: &str = "https://partnergate.dev/secevent/token-revoked";
const TOKENS_CUT_OFF: &str = "https://partnergate.dev/secevent/tokens-cut-off";

/// What one event changes at a resource server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    ClientDisabled(String),
    ClientEnabled(String),
    ClientDeleted(String),
    PartnerSuspended(String),
    PartnerResumed(String),
    /// A token by `jti`, until its `exp`.
    TokenRevoked {
        jti: String,
        exp: u64,
    },
    /// The client's tokens issued at or before the time (seconds).
    ClientCutOff {
        client_id: String,
        issued_at_or_before: u64,
    },
    PartnerCutOff {
        partner_id: String,
        issued_at_or_before: u64,
    },
    /// Nothing to do here: a revoked secret (the issuer stops issuing to it; its tokens stand unless a
    /// cut-off comes with it), or an event type this version does not know (RFC 8417 section 2.2: ignored).
    Nothing(String),
}

/// A verified event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    pub seq: i64,
    /// The SET's `jti`, which acknowledges it.
    pub jti: String,
    pub change: Change,
}

/// Why a SET was not applied (logged and counted; the SET is not acknowledged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SetRefusal {
    /// Not a JWS, or an unsigned one (`alg: none`).
    Malformed,
    WrongType,
    /// No `kid`, or one not in the issuer's JWKS.
    UnknownKey,
    AlgorithmMismatch,
    KeysUnavailable,
    /// Signature, `iss` or `aud`, as `jsonwebtoken` reports it.
    Rejected(String),
    /// Signed, but not an event of the documented shape.
    NotAnEvent(&'static str),
}

impl std::fmt::Display for SetRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SetRefusal::Malformed => write!(f, "not a signed JWS"),
            SetRefusal::WrongType => write!(f, "typ is not secevent+jwt"),
            SetRefusal::UnknownKey => write!(f, "kid missing or not in the issuer's JWKS"),
            SetRefusal::AlgorithmMismatch => write!(f, "alg does not match the key"),
            SetRefusal::KeysUnavailable => write!(f, "the issuer's keys cannot be fetched"),
            SetRefusal::Rejected(why) => write!(f, "{why}"),
            SetRefusal::NotAnEvent(why) => write!(f, "{why}"),
        }
    }
}

#[derive(Deserialize)]
struct SetClaims {
    jti: String,
    partnergate_seq: i64,
    events: Map<String, Value>,
    #[serde(default)]
    sub_id: Value,
}

/// Checks the SETs sent to one receiver (`audience`: its client id) by one issuer.
pub(crate) struct SetChecker {
    jwks: Arc<JwksCache>,
    audience: String,
    validation: Validation,
}

impl SetChecker {
    pub fn new(jwks: Arc<JwksCache>, issuer: &str, audience: &str) -> Self {
        let mut validation = Validation::default();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.required_spec_claims = HashSet::from(["iss", "aud"].map(String::from));
        SetChecker { jwks, audience: audience.to_string(), validation }
    }

    pub async fn check(&self, token: &str) -> Result<Event, SetRefusal> {
        // RFC 8417 section 2.3: "secevent+jwt" or "application/secevent+jwt".
        let claims: SetClaims =
            self.jwks.decode(token, "secevent+jwt", &self.validation).await.map_err(|err| match err {
                DecodeError::Malformed => SetRefusal::Malformed,
                DecodeError::WrongType => SetRefusal::WrongType,
                DecodeError::NoKeyId | DecodeError::UnknownKey => SetRefusal::UnknownKey,
                DecodeError::AlgorithmMismatch => SetRefusal::AlgorithmMismatch,
                DecodeError::KeysUnavailable => SetRefusal::KeysUnavailable,
                DecodeError::Rejected(why) => SetRefusal::Rejected(why),
            })?;
        // The `jti` names the sequence number and this receiver (`<seq>.<receiver>`): a SET replayed from
        // another receiver's stream or renumbered does not pass.
        if claims.jti != format!("{}.{}", claims.partnergate_seq, self.audience) || claims.partnergate_seq <= 0 {
            return Err(SetRefusal::NotAnEvent("jti does not match the sequence number and receiver"));
        }
        let change = change_of(&claims)?;
        Ok(Event { seq: claims.partnergate_seq, jti: claims.jti, change })
    }
}

fn opaque_id(subject: &Value, member: &str) -> Option<String> {
    subject.get(member)?.get("id")?.as_str().filter(|id| !id.is_empty()).map(str::to_string)
}

fn seconds(members: &Value, name: &str) -> Result<u64, SetRefusal> {
    members.get(name).and_then(Value::as_u64).ok_or(SetRefusal::NotAnEvent("an event member is missing"))
}

/// The change a SET's single event names; the subject is a client (`application`, with its partner as
/// `tenant`) or a partner (`tenant` alone).
fn change_of(claims: &SetClaims) -> Result<Change, SetRefusal> {
    if claims.events.len() != 1 {
        return Err(SetRefusal::NotAnEvent("a SET must carry exactly one event"));
    }
    let (event_type, members) = claims.events.iter().next().expect("one event");
    let client = opaque_id(&claims.sub_id, "application");
    let partner = opaque_id(&claims.sub_id, "tenant");
    let no_subject = SetRefusal::NotAnEvent("the event has no subject");
    Ok(match (event_type.as_str(), client, partner) {
        (RISC_ACCOUNT_DISABLED, Some(client), _) => Change::ClientDisabled(client),
        (RISC_ACCOUNT_DISABLED, None, Some(partner)) => Change::PartnerSuspended(partner),
        (RISC_ACCOUNT_ENABLED, Some(client), _) => Change::ClientEnabled(client),
        (RISC_ACCOUNT_ENABLED, None, Some(partner)) => Change::PartnerResumed(partner),
        (RISC_ACCOUNT_PURGED, Some(client), _) => Change::ClientDeleted(client),
        (TOKEN_REVOKED, _, _) => {
            let jti = members.get("jti").and_then(Value::as_str).filter(|jti| !jti.is_empty());
            let jti = jti.ok_or(SetRefusal::NotAnEvent("a revoked token without jti"))?;
            Change::TokenRevoked { jti: jti.to_string(), exp: seconds(members, "exp")? }
        }
        (TOKENS_CUT_OFF, Some(client_id), _) => {
            Change::ClientCutOff { client_id, issued_at_or_before: seconds(members, "issued_at_or_before")? }
        }
        (TOKENS_CUT_OFF, None, Some(partner_id)) => {
            Change::PartnerCutOff { partner_id, issued_at_or_before: seconds(members, "issued_at_or_before")? }
        }
        (RISC_ACCOUNT_DISABLED | RISC_ACCOUNT_ENABLED | RISC_ACCOUNT_PURGED | TOKENS_CUT_OFF, _, _) => {
            return Err(no_subject)
        }
        (other, _, _) => Change::Nothing(other.to_string()),
    })
}
