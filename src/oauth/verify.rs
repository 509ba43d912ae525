//! Verification of this server's own access tokens, for the admin API and for introspection: signature with
//! the key named by `kid`, `iss`, `aud`, `exp` and `nbf` (5 s leeway), then the token's current standing
//! (revoked `jti`, bulk revocation of its client or partner, disabled client, suspended partner).
//!
//! `jsonwebtoken` 9.3 is used for verification because it is the last line built on `ring`, the crypto stack
//! the rest of the server uses; signing does not go through it (see `keys`).

use jsonwebtoken::Validation;

use super::claims::AccessTokenClaims;
use super::TokenSettings;
use crate::keys::KeyRing;
use crate::readmodel::{Barrier, ClientSnapshot};

pub const LEEWAY_SECS: u64 = 5;

// A revoked `jti` must be kept until its token no longer verifies: `exp` plus the leeway, plus the second that
// whole-second timestamps can add.
const _: () = assert!(crate::secevents::revoked::KEEP_AFTER_EXPIRY_SECS > LEEWAY_SECS as i64 + 1);

/// Why a token is not (or no longer) good. Callers outside see only "invalid" or `active: false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    Malformed,
    UnknownKey,
    BadSignatureOrClaims,
    Expired,
    WrongAudience,
    Revoked,
    RevokedInBulk,
    SecretRevoked,
    UnknownClient,
    ClientDisabled,
    PartnerSuspended,
}

impl Rejection {
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::Malformed => "malformed",
            Rejection::UnknownKey => "unknown_key",
            Rejection::BadSignatureOrClaims => "bad_signature_or_claims",
            Rejection::Expired => "expired",
            Rejection::WrongAudience => "wrong_audience",
            Rejection::Revoked => "revoked",
            Rejection::RevokedInBulk => "revoked_in_bulk",
            Rejection::SecretRevoked => "secret_revoked",
            Rejection::UnknownClient => "unknown_client",
            Rejection::ClientDisabled => "client_disabled",
            Rejection::PartnerSuspended => "partner_suspended",
        }
    }
}

/// Signature and claims. `audience`: the audience the token must carry, or `None` to accept any. `exp` and
/// `nbf` are judged at `now`, the server's clock (jsonwebtoken would read the system's).
pub fn verify_signature(
    keys: &KeyRing,
    settings: &TokenSettings,
    token: &str,
    audience: Option<&str>,
    now: chrono::NaiveDateTime,
) -> Result<AccessTokenClaims, Rejection> {
    if token.len() > 8192 {
        return Err(Rejection::Malformed);
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| Rejection::Malformed)?;
    // RFC 9068 section 4: the `typ` of an access token is `at+jwt` (or the full media type); a token without it
    // is some other JWT, perhaps one signed by a key we share with another purpose.
    if !header.typ.as_deref().is_some_and(is_access_token_type) {
        return Err(Rejection::Malformed);
    }
    let key = header.kid.as_deref().and_then(|kid| keys.find(kid)).ok_or(Rejection::UnknownKey)?;
    let mut validation = Validation::new(key.jsonwebtoken_algorithm());
    validation.leeway = LEEWAY_SECS;
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.set_issuer(&[&settings.issuer]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    match audience {
        Some(audience) => validation.set_audience(&[audience]),
        None => validation.validate_aud = false,
    }
    let claims = jsonwebtoken::decode::<AccessTokenClaims>(token, key.decoding_key(), &validation)
        .map(|data| data.claims)
        .map_err(|err| match err.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidAudience => Rejection::WrongAudience,
            _ => Rejection::BadSignatureOrClaims,
        })?;
    check_validity(&claims, now)?;
    Ok(claims)
}

/// Whether `now` lies within the token's validity (`nbf` to `exp`, with the leeway).
pub fn check_validity(claims: &AccessTokenClaims, now: chrono::NaiveDateTime) -> Result<(), Rejection> {
    let now = now.and_utc().timestamp();
    let leeway = LEEWAY_SECS as i64;
    if claims.exp < now - leeway {
        return Err(Rejection::Expired);
    }
    if claims.nbf > now + leeway {
        return Err(Rejection::BadSignatureOrClaims);
    }
    Ok(())
}

fn is_access_token_type(typ: &str) -> bool {
    typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt")
}

/// Whether a verified token still stands, judged on its client's snapshot (`None`: no such client): the
/// registration it was issued to, not revoked alone or in bulk, its client enabled and its partner not
/// suspended. Returns the client.
pub fn standing<'a>(
    client: Option<&'a ClientSnapshot>,
    claims: &AccessTokenClaims,
) -> Result<&'a ClientSnapshot, Rejection> {
    let client = client.ok_or(Rejection::UnknownClient)?;
    // A token older than its client belongs to a deleted client whose id was registered again.
    if client.partner_id != claims.partner_id || claims.iat < client.created_at.and_utc().timestamp() {
        return Err(Rejection::UnknownClient);
    }
    if client.revoked_jtis.contains(&claims.jti) {
        return Err(Rejection::Revoked);
    }
    if client.revoked_in_bulk(claims.iat) {
        return Err(Rejection::RevokedInBulk);
    }
    if let Some(secret_id) = &claims.secret_id {
        if client.obtained_after_revocation(secret_id, claims.iat) {
            return Err(Rejection::SecretRevoked);
        }
    }
    match client.barrier() {
        Some(Barrier::ClientDisabled) => Err(Rejection::ClientDisabled),
        Some(Barrier::PartnerSuspended) => Err(Rejection::PartnerSuspended),
        None => Ok(client),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::Audience;
    use crate::readmodel::snapshot::test_snapshot;

    const CREATED: i64 = 1_800_000_000;

    fn claims(iat: i64) -> AccessTokenClaims {
        AccessTokenClaims {
            iss: "https://issuer".into(),
            sub: "pgc_a".into(),
            client_id: "pgc_a".into(),
            aud: Audience::One("https://api".into()),
            iat,
            nbf: iat,
            exp: iat + 600,
            jti: "jti-1".into(),
            scope: String::new(),
            partner_id: "acme".into(),
            secret_id: None,
        }
    }

    fn client() -> ClientSnapshot {
        test_snapshot("pgc_a", "acme", chrono::DateTime::from_timestamp(CREATED, 0).unwrap().naive_utc())
    }

    #[test]
    fn a_token_stands_while_its_client_does() {
        let client = client();
        assert!(standing(Some(&client), &claims(CREATED + 5)).is_ok());
        assert_eq!(standing(None, &claims(CREATED + 5)).unwrap_err(), Rejection::UnknownClient);
        assert_eq!(
            standing(Some(&client), &claims(CREATED - 1)).unwrap_err(),
            Rejection::UnknownClient,
            "older than its client"
        );
        let mut other_partner = claims(CREATED + 5);
        other_partner.partner_id = "evil".into();
        assert_eq!(standing(Some(&client), &other_partner).unwrap_err(), Rejection::UnknownClient);
    }

    #[test]
    fn revocations_and_standing_end_a_token() {
        let mut revoked = client();
        revoked.revoked_jtis.insert("jti-1".into());
        assert_eq!(standing(Some(&revoked), &claims(CREATED + 5)).unwrap_err(), Rejection::Revoked);
        let mut bulk = client();
        bulk.tokens_revoked_before = chrono::DateTime::from_timestamp(CREATED + 5, 500_000_000).map(|t| t.naive_utc());
        assert_eq!(standing(Some(&bulk), &claims(CREATED + 5)).unwrap_err(), Rejection::RevokedInBulk);
        assert!(standing(Some(&bulk), &claims(CREATED + 6)).is_ok(), "issued after the cut-off's second");
        let mut disabled = client();
        disabled.enabled = false;
        assert_eq!(standing(Some(&disabled), &claims(CREATED + 5)).unwrap_err(), Rejection::ClientDisabled);
        let mut suspended = client();
        suspended.partner_suspended = true;
        assert_eq!(standing(Some(&suspended), &claims(CREATED + 5)).unwrap_err(), Rejection::PartnerSuspended);
    }

    #[test]
    fn the_type_must_be_an_access_token() {
        assert!(is_access_token_type("at+jwt"));
        assert!(is_access_token_type("AT+JWT"));
        assert!(is_access_token_type("application/at+jwt"));
        assert!(!is_access_token_type("JWT"));
        assert!(!is_access_token_type(""));
    }
}
