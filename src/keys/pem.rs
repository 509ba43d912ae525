//! Minimal PEM for PKCS#8 private keys (`-----BEGIN PRIVATE KEY-----`), the only format the key ring reads.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

const BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const END: &str = "-----END PRIVATE KEY-----";

pub fn decode_pkcs8(pem: &str) -> Result<Vec<u8>, String> {
    let start = pem.find(BEGIN).ok_or_else(|| {
        "not a PKCS#8 PEM file (no BEGIN PRIVATE KEY line; convert with `openssl pkcs8 -topk8 -nocrypt`)".to_string()
    })?;
    let body_start = start + BEGIN.len();
    let end = pem[body_start..].find(END).ok_or_else(|| "PEM has no END PRIVATE KEY line".to_string())? + body_start;
    let body: String = pem[body_start..end].chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(body).map_err(|err| format!("PEM body is not base64: {err}"))
}

pub fn encode_pkcs8(der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = String::with_capacity(body.len() + 80);
    out.push_str(BEGIN);
    out.push('\n');
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(END);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let der: Vec<u8> = (0..=255u8).collect();
        assert_eq!(decode_pkcs8(&encode_pkcs8(&der)).unwrap(), der);
        assert!(decode_pkcs8("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----").is_err());
    }
}
