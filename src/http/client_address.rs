//! The source address of a request: the TCP peer, or, when the peer is a trusted reverse proxy, the
//! address that proxy saw, from `X-Forwarded-For`. The header is read from the right: each trusted proxy
//! appends the address it received from, so the rightmost entry that is not a trusted proxy is the first
//! address no trusted party vouches beyond. An untrusted peer's header is ignored: anybody can send one.

use std::net::IpAddr;

use actix_web::HttpRequest;

/// One trusted address or range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    network: IpAddr,
    prefix: u8,
}

impl Range {
    fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("trusted proxy {text:?} is not an IP address or CIDR range (e.g. 10.0.0.0/8)");
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix.parse::<u8>().map_err(|_| bad())?)),
            None => (text, None),
        };
        let network: IpAddr = address.trim().parse().map_err(|_| bad())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(Range { network, prefix })
    }

    fn contains(&self, address: IpAddr) -> bool {
        let bits = |ip: IpAddr| match ip {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)) << 96, true),
            IpAddr::V6(v6) => (u128::from(v6), false),
        };
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(address),
            v4 => v4,
        };
        let ((network, network_v4), (candidate, candidate_v4)) = (bits(self.network), bits(address));
        if network_v4 != candidate_v4 {
            return false;
        }
        let prefix = u32::from(self.prefix);
        let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix) };
        network & mask == candidate & mask
    }
}

/// The reverse proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Range>);

impl TrustedProxies {
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        entries
            .iter()
            .filter(|e| !e.trim().is_empty())
            .map(|e| Range::parse(e.trim()))
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    fn trusts(&self, address: IpAddr) -> bool {
        self.0.iter().any(|range| range.contains(address))
    }

    /// The source address of a request from `peer` with these `X-Forwarded-For` values.
    pub fn source(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let hops = forwarded_for.iter().flat_map(|value| value.split(',')).map(str::trim);
        let mut source = peer;
        for hop in hops.rev() {
            match hop.parse::<IpAddr>() {
                Ok(address) if self.trusts(address) => source = address,
                Ok(address) => return address,
                // A hop that is not an address cannot be followed; the last trusted one is the source.
                Err(_) => return source,
            }
        }
        source
    }
}

/// The request's source address (see the module docs); `TrustedProxies` comes from the app data.
pub fn of(req: &HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let Some(trusted) = req.app_data::<actix_web::web::Data<TrustedProxies>>() else { return Some(peer) };
    let values: Vec<&str> = req.headers().get_all("x-forwarded-for").filter_map(|value| value.to_str().ok()).collect();
    Some(trusted.source(peer, &values))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn only_a_trusted_peer_is_believed_and_the_header_is_read_from_the_right() {
        let trusted = TrustedProxies::parse(&["10.0.0.0/8".into(), "192.0.2.7".into()]).unwrap();
        assert_eq!(trusted.source(ip("203.0.113.9"), &["198.51.100.1"]), ip("203.0.113.9"), "untrusted peer");
        assert_eq!(trusted.source(ip("10.1.2.3"), &["198.51.100.1"]), ip("198.51.100.1"));
        // A client may put anything at the left; the proxies' own entries are at the right.
        assert_eq!(trusted.source(ip("10.1.2.3"), &["6.6.6.6, 198.51.100.1, 192.0.2.7"]), ip("198.51.100.1"));
        assert_eq!(trusted.source(ip("10.1.2.3"), &["6.6.6.6", "198.51.100.1"]), ip("198.51.100.1"));
        assert_eq!(trusted.source(ip("10.1.2.3"), &[]), ip("10.1.2.3"));
        assert_eq!(trusted.source(ip("10.1.2.3"), &["garbage, 10.9.9.9"]), ip("10.9.9.9"));
        assert_eq!(trusted.source(ip("::ffff:10.0.0.1"), &["198.51.100.1"]), ip("198.51.100.1"), "v4-mapped");
    }

    #[test]
    fn ranges_parse_strictly() {
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(TrustedProxies::parse(&["proxy.local".into()]).is_err());
        assert!(TrustedProxies::parse(&["::1".into(), "fd00::/8".into()]).is_ok());
        let v6 = TrustedProxies::parse(&["fd00::/8".into()]).unwrap();
        assert!(v6.trusts(ip("fd12::1")));
        assert!(!v6.trusts(ip("fe80::1")));
        assert!(!v6.trusts(ip("10.0.0.1")));
    }
}
