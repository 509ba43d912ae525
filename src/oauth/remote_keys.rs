//! JWK sets fetched from a client's `jwks_uri`: with connect and total timeouts that fit the token request's
//! deadline, a size limit, no redirects, and (unless the operator allows them) no private or loopback
//! addresses; cached per `Cache-Control`, refreshed on an unknown `kid` at most once per few seconds.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;

use super::error::AuthFailure;
use crate::clock::SharedClock;

/// A reading of the server clock's monotonic time ([`crate::clock::Clock::monotonic`]): a cached set's
/// freshness and the refresh pacing follow the server's clock (a test's manual clock moves them); the fetch's
/// own timeouts are real time.
type Moment = Duration;

/// Within `REQUEST_DEADLINE` (1.8 s), leaving room for the audit commit.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const TOTAL_TIMEOUT: Duration = Duration::from_millis(1000);
/// A JWK set of a few keys is a few kilobytes.
pub const MAX_BYTES: usize = 64 * 1024;
/// A refresh for an unknown `kid` happens at most this often per URL, so that made-up `kid`s cannot make the
/// server hammer a partner's key server.
const MIN_REFRESH: Duration = Duration::from_secs(5);
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);
const MIN_MAX_AGE: Duration = Duration::from_secs(30);
const MAX_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// More URLs than this (one per `jwks_uri` client) and the cache starts over.
const MAX_ENTRIES: usize = 10_000;

#[derive(Default)]
struct Entry {
    keys: Option<Arc<JwkSet>>,
    fresh_until: Option<Moment>,
    /// The last fetch for an unknown `kid` (the first fetch and fetches of an expired set do not count).
    last_refresh: Option<Moment>,
}

/// The fetched key sets by URL, and identity providers' `jwks_uri` by issuer, shared by every request of an
/// instance.
pub struct RemoteKeys {
    allow_private: bool,
    clock: SharedClock,
    entries: Mutex<HashMap<String, Entry>>,
    issuers: Mutex<HashMap<String, (String, Moment)>>,
}

impl RemoteKeys {
    /// `allow_private`: the operator's `PARTNERGATE_ALLOW_PRIVATE_KEY_URLS` (private and loopback addresses, and
    /// plain http, for tests and closed networks).
    pub fn new(allow_private: bool, clock: SharedClock) -> Self {
        RemoteKeys { allow_private, clock, entries: Mutex::default(), issuers: Mutex::default() }
    }

    /// The `jwks_uri` of an identity provider, from its OpenID discovery document (cached like a key set).
    pub async fn issuer_jwks_uri(&self, issuer: &str) -> Result<String, AuthFailure> {
        if let Some((uri, fresh_until)) = self.issuers.lock().expect("issuers lock").get(issuer) {
            if *fresh_until > self.clock.monotonic() {
                return Ok(uri.clone());
            }
        }
        let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
        let (body, max_age) = fetch(&url, self.allow_private).await.inspect_err(|failure| {
            log::warn!("cannot fetch the discovery document of {issuer}: {}", failure.as_str());
        })?;
        let document: serde_json::Value = serde_json::from_slice(&body).map_err(|_| AuthFailure::KeysUnavailable)?;
        // OpenID Connect Discovery section 4.3: the document must name the issuer it was fetched for.
        if document["issuer"].as_str() != Some(issuer) {
            return Err(AuthFailure::KeysUnavailable);
        }
        let uri = document["jwks_uri"].as_str().ok_or(AuthFailure::KeysUnavailable)?.to_string();
        let mut issuers = self.issuers.lock().expect("issuers lock");
        if issuers.len() >= MAX_ENTRIES {
            issuers.clear();
        }
        issuers.insert(issuer.to_string(), (uri.clone(), self.clock.monotonic() + max_age));
        Ok(uri)
    }

    /// The key set at `url`, from the cache while fresh. A failed fetch serves the last good set, if any.
    pub async fn keys(&self, url: &str) -> Result<Arc<JwkSet>, AuthFailure> {
        let now = self.clock.monotonic();
        let stale = {
            let entries = self.entries.lock().expect("remote keys lock");
            match entries.get(url) {
                Some(Entry { keys: Some(keys), fresh_until: Some(until), .. }) if *until > now => {
                    return Ok(keys.clone())
                }
                Some(entry) => entry.keys.clone(),
                None => None,
            }
        };
        match self.fetch_and_store(url).await {
            Ok(keys) => Ok(keys),
            Err(failure) => stale.ok_or(failure),
        }
    }

    /// The set fetched again, for a `kid` the cached one lacks; `None` when the last fetch was too recent.
    pub async fn refreshed(&self, url: &str) -> Result<Option<Arc<JwkSet>>, AuthFailure> {
        {
            // Noted before the fetch, so that concurrent requests with unknown kids do not all refetch.
            let mut entries = self.entries.lock().expect("remote keys lock");
            let entry = entries.entry(url.to_string()).or_default();
            let now = self.clock.monotonic();
            if entry.last_refresh.is_some_and(|at| now.saturating_sub(at) < MIN_REFRESH) {
                return Ok(None);
            }
            entry.last_refresh = Some(now);
        }
        self.fetch_and_store(url).await.map(Some)
    }

    async fn fetch_and_store(&self, url: &str) -> Result<Arc<JwkSet>, AuthFailure> {
        let (body, max_age) = fetch(url, self.allow_private).await.inspect_err(|failure| {
            log::warn!("cannot fetch the JWK set at {url}: {}", failure.as_str());
        })?;
        let keys: JwkSet = serde_json::from_slice(&body).map_err(|_| AuthFailure::KeysUnavailable)?;
        let keys = Arc::new(keys);
        let mut entries = self.entries.lock().expect("remote keys lock");
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(url) {
            entries.clear();
        }
        let entry = entries.entry(url.to_string()).or_default();
        entry.keys = Some(keys.clone());
        entry.fresh_until = Some(self.clock.monotonic() + max_age);
        Ok(keys)
    }
}

/// Whether an address is on the public internet: not loopback, private, link-local, shared, documentation,
/// multicast or unspecified.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_unspecified()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// One fetch of a JSON document (a JWK set, a discovery document) and how long it may be cached.
async fn fetch(url: &str, allow_private: bool) -> Result<(Vec<u8>, Duration), AuthFailure> {
    let parsed = reqwest::Url::parse(url).map_err(|_| AuthFailure::KeysUnavailable)?;
    let host = parsed.host_str().ok_or(AuthFailure::KeysUnavailable)?.to_string();
    let port = parsed.port_or_known_default().ok_or(AuthFailure::KeysUnavailable)?;
    let lookup_host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    let addresses: Vec<SocketAddr> =
        tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::lookup_host((lookup_host, port)))
            .await
            .map_err(|_| AuthFailure::KeysTimeout)?
            .map_err(|_| AuthFailure::KeysUnavailable)?
            .collect();
    if addresses.is_empty() {
        return Err(AuthFailure::KeysUnavailable);
    }
    if !allow_private && addresses.iter().any(|address| !is_public(address.ip())) {
        return Err(AuthFailure::KeysPrivateAddress);
    }
    if parsed.scheme() != "https" && !allow_private {
        return Err(AuthFailure::KeysNotHttps);
    }
    // The connection goes to the addresses just checked, not to what a second lookup might answer.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(TOTAL_TIMEOUT)
        .resolve_to_addrs(&host, &addresses)
        .build()
        .map_err(|_| AuthFailure::KeysUnavailable)?;
    let sent = client.get(parsed).header(reqwest::header::ACCEPT, "application/json").send().await;
    let mut response = sent.map_err(transport_failure)?;
    if response.status().is_redirection() {
        return Err(AuthFailure::KeysRedirect);
    }
    if !response.status().is_success() {
        return Err(AuthFailure::KeysUnavailable);
    }
    if response.content_length().is_some_and(|length| length > MAX_BYTES as u64) {
        return Err(AuthFailure::KeysTooLarge);
    }
    let max_age = max_age(response.headers().get(reqwest::header::CACHE_CONTROL));
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_failure)? {
        if body.len() + chunk.len() > MAX_BYTES {
            return Err(AuthFailure::KeysTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, max_age))
}

fn transport_failure(err: reqwest::Error) -> AuthFailure {
    if err.is_timeout() {
        AuthFailure::KeysTimeout
    } else {
        AuthFailure::KeysUnavailable
    }
}

/// `max-age` of a `Cache-Control` header, within bounds; `no-store`/`no-cache` count as the shortest.
fn max_age(header: Option<&reqwest::header::HeaderValue>) -> Duration {
    let Some(value) = header.and_then(|h| h.to_str().ok()) else { return DEFAULT_MAX_AGE };
    let directives = value.split(',').map(|d| d.trim().to_ascii_lowercase());
    let mut age = DEFAULT_MAX_AGE;
    for directive in directives {
        if directive == "no-store" || directive == "no-cache" {
            return MIN_MAX_AGE;
        }
        if let Some(secs) = directive.strip_prefix("max-age=").and_then(|s| s.parse::<u64>().ok()) {
            age = Duration::from_secs(secs);
        }
    }
    age.clamp(MIN_MAX_AGE, MAX_MAX_AGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_loopback_addresses_are_not_public() {
        for private in
            ["127.0.0.1", "10.1.2.3", "192.168.0.1", "172.16.0.1", "169.254.169.254", "100.64.0.1", "0.0.0.0"]
        {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for private in ["::1", "fd00::1", "fe80::1", "::ffff:127.0.0.1", "::"] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        assert!(is_public("93.184.216.34".parse().unwrap()));
        assert!(is_public("2606:2800:220:1::1".parse().unwrap()));
    }

    #[test]
    fn cache_control_sets_the_lifetime_within_bounds() {
        let value = |text: &str| reqwest::header::HeaderValue::from_str(text).unwrap();
        assert_eq!(max_age(None), DEFAULT_MAX_AGE);
        assert_eq!(max_age(Some(&value("public, max-age=600"))), Duration::from_secs(600));
        assert_eq!(max_age(Some(&value("max-age=1"))), MIN_MAX_AGE);
        assert_eq!(max_age(Some(&value("max-age=99999999"))), MAX_MAX_AGE);
        assert_eq!(max_age(Some(&value("no-store"))), MIN_MAX_AGE);
    }
}
