//! Refusals to start with an insecure configuration, each with the way out in its message. Key material is
//! checked where it is loaded (`keys`); the issuer here, before anything listens.

use std::net::SocketAddr;

/// An `http://` issuer on a non-loopback address means tokens and client secrets cross a network in clear
/// text, and verifiers fetch the JWKS over plain HTTP. That is refused unless the operator says it is meant
/// (a lab network, or TLS terminated in front under an `http://` name).
pub fn check_issuer(issuer: &str, bind: SocketAddr, allow_insecure: bool) -> Result<(), String> {
    let plain = issuer.get(..7).is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"));
    if plain && !bind.ip().is_loopback() && !allow_insecure {
        return Err(format!(
            "refusing to serve the http:// issuer {issuer} on {bind}, which is not a loopback address: clients would \
             send secrets and receive tokens in clear text. Use an https:// issuer (with TLS terminated in front \
             of partnergate), bind to 127.0.0.1, or pass --allow-insecure-issuer \
             (PARTNERGATE_ALLOW_INSECURE_ISSUER=true) if this is meant"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_issuer;

    #[test]
    fn plain_http_issuer_only_on_loopback_or_when_allowed() {
        let public = "0.0.0.0:8080".parse().unwrap();
        let loopback = "127.0.0.1:8080".parse().unwrap();
        let v6_loopback = "[::1]:8080".parse().unwrap();
        assert!(check_issuer("http://auth.example.com", public, false)
            .unwrap_err()
            .contains("--allow-insecure-issuer"));
        assert!(check_issuer("HTTP://auth.example.com", public, false).is_err());
        assert!(check_issuer("http://auth.example.com", public, true).is_ok());
        assert!(check_issuer("https://auth.example.com", public, false).is_ok());
        assert!(check_issuer("http://127.0.0.1:8080", loopback, false).is_ok());
        assert!(check_issuer("http://[::1]:8080", v6_loopback, false).is_ok());
    }
}
