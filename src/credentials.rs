//! Identifiers and client secrets (ARCHITECTURE.md, Credentials).
//!
//! Client ids are `pgc_` + 24 base62 characters. Secrets are `pgs_` + 43 base62 characters (256 bits from the
//! OS RNG) + a 6-character base62 CRC-32 of everything before it. The prefix lets secret scanners find leaked
//! secrets; the checksum rejects a mistyped or truncated secret before any database work. Only the SHA-256 of a
//! secret is stored: a slow password hash would protect nothing (the secret is not a human password) and would
//! cap throughput at tens of tokens per second.

use ring::rand::{SecureRandom, SystemRandom};

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

pub const CLIENT_ID_PREFIX: &str = "pgc_";
pub const SECRET_PREFIX: &str = "pgs_";
const CLIENT_ID_RANDOM_LEN: usize = 24;
const SECRET_ID_PREFIX: &str = "sec_";
const SECRET_ID_RANDOM_LEN: usize = 16;
const SECRET_RANDOM_LEN: usize = 43;
const CHECKSUM_LEN: usize = 6;
pub const SECRET_LEN: usize = SECRET_PREFIX.len() + SECRET_RANDOM_LEN + CHECKSUM_LEN;
/// How much of a secret may be shown in listings: the prefix and four random characters.
const DISPLAY_PREFIX_LEN: usize = SECRET_PREFIX.len() + 4;

/// `len` uniformly random base62 characters. Rejection sampling keeps the distribution uniform.
pub fn random_base62(len: usize) -> String {
    let rng = SystemRandom::new();
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        rng.fill(&mut buf).expect("the OS random number generator failed");
        for &byte in &buf {
            // 248 = 4 * 62: bytes at or above it would bias the first characters.
            if byte < 248 && out.len() < len {
                out.push(BASE62[(byte % 62) as usize] as char);
            }
        }
    }
    out
}

/// 16 random bytes, for token ids (`jti`).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    SystemRandom::new().fill(&mut bytes).expect("the OS random number generator failed");
    bytes
}

pub fn new_client_id() -> String {
    format!("{CLIENT_ID_PREFIX}{}", random_base62(CLIENT_ID_RANDOM_LEN))
}

pub fn new_secret_id() -> String {
    format!("{SECRET_ID_PREFIX}{}", random_base62(SECRET_ID_RANDOM_LEN))
}

/// A client secret in clear text. It exists only between generation and the one response that shows it, and
/// between a token request and its hash check. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(String);

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretFormatError {
    #[error("secret does not start with pgs_")]
    Prefix,
    #[error("secret has the wrong length")]
    Length,
    #[error("secret contains characters outside base62")]
    Alphabet,
    #[error("secret checksum does not match")]
    Checksum,
}

impl ClientSecret {
    pub fn generate() -> Self {
        let body = format!("{SECRET_PREFIX}{}", random_base62(SECRET_RANDOM_LEN));
        let checksum = checksum(&body);
        ClientSecret(body + &checksum)
    }

    /// Checks prefix, length, alphabet and checksum; no database work is needed to reject a bad secret.
    pub fn parse(candidate: &str) -> Result<Self, SecretFormatError> {
        if !candidate.starts_with(SECRET_PREFIX) {
            return Err(SecretFormatError::Prefix);
        }
        if candidate.len() != SECRET_LEN {
            return Err(SecretFormatError::Length);
        }
        if !candidate[SECRET_PREFIX.len()..].bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(SecretFormatError::Alphabet);
        }
        let (body, given) = candidate.split_at(SECRET_LEN - CHECKSUM_LEN);
        if checksum(body) != given {
            return Err(SecretFormatError::Checksum);
        }
        Ok(ClientSecret(candidate.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Hex SHA-256, the only form in which a secret is stored.
    pub fn hash(&self) -> String {
        hex(&self.digest())
    }

    /// The SHA-256 itself, the key by which authentication finds the stored secret.
    pub fn digest(&self) -> [u8; 32] {
        let digest = ring::digest::digest(&ring::digest::SHA256, self.0.as_bytes());
        digest.as_ref().try_into().expect("SHA-256 is 32 bytes")
    }

    /// The part of the secret safe to show in listings.
    pub fn display_prefix(&self) -> String {
        self.0[..DISPLAY_PREFIX_LEN].to_string()
    }
}

/// CRC-32 (IEEE) of `body` in base62, most significant digit first, zero-padded to six characters.
fn checksum(body: &str) -> String {
    base62_digits::<CHECKSUM_LEN>(crc32fast::hash(body.as_bytes()).into())
}

/// The last `N` base62 digits of `value`, most significant first, zero-padded (11 digits hold any `u64`).
pub fn base62_digits<const N: usize>(mut value: u64) -> String {
    let mut digits = [b'0'; N];
    for slot in digits.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    String::from_utf8(digits.to_vec()).expect("base62 is ASCII")
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secret_has_the_documented_shape() {
        let secret = ClientSecret::generate();
        let text = secret.expose();
        assert_eq!(text.len(), 53);
        assert!(text.starts_with("pgs_"));
        assert!(text[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(ClientSecret::parse(text).unwrap(), secret);
    }

    #[test]
    fn checksum_is_crc32_in_base62() {
        // The CRC-32 (IEEE) check value: CRC-32("123456789") = 0xCBF43926.
        let digits = checksum("123456789");
        assert_eq!(digits.len(), 6);
        let decoded =
            digits.bytes().fold(0u64, |acc, b| acc * 62 + BASE62.iter().position(|&c| c == b).unwrap() as u64);
        assert_eq!(decoded, 0xCBF43926);
        assert_eq!(checksum(""), "000000", "CRC-32 of nothing is 0, zero-padded");
    }

    #[test]
    fn mistyped_or_truncated_secrets_are_rejected() {
        let text = ClientSecret::generate().expose().to_string();
        assert_eq!(ClientSecret::parse(&text[..52]), Err(SecretFormatError::Length));
        assert_eq!(ClientSecret::parse(&text.replacen("pgs_", "pgx_", 1)), Err(SecretFormatError::Prefix));
        let mut flipped = text.clone().into_bytes();
        flipped[10] = if flipped[10] == b'a' { b'b' } else { b'a' };
        assert_eq!(ClientSecret::parse(&String::from_utf8(flipped).unwrap()), Err(SecretFormatError::Checksum));
        let mut bad_char = text.into_bytes();
        bad_char[10] = b'-';
        assert_eq!(ClientSecret::parse(&String::from_utf8(bad_char).unwrap()), Err(SecretFormatError::Alphabet));
    }

    #[test]
    fn hash_is_sha256_hex_and_compares() {
        let secret = ClientSecret::generate();
        let hash = secret.hash();
        assert_eq!(hash.len(), 64);
        assert_eq!(hash, hex(&secret.digest()));
        assert_ne!(ClientSecret::generate().hash(), hash);
        assert!(!format!("{secret:?}").contains(secret.expose()));
    }

    #[test]
    fn ids_have_their_prefixes() {
        let id = new_client_id();
        assert!(id.starts_with("pgc_") && id.len() == 28);
        assert!(new_secret_id().starts_with("sec_"));
        assert_ne!(new_client_id(), new_client_id());
    }
}
