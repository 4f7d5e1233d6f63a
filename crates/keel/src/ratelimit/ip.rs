//! The client's IP address: the socket peer, or, when the peer is a trusted proxy
//! (`TRUSTED_PROXIES`), the right-most `X-Forwarded-For` entry that is not itself trusted.
//! A client can write anything into `X-Forwarded-For`; only what trusted proxies appended counts.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use axum::http::HeaderMap;

pub const FORWARDED_FOR: &str = "x-forwarded-for";

/// An IP network: an address and a prefix length (`10.0.0.0/8`, `fd00::/8`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpNet {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not an IP address or CIDR range");
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr = canonical(addr.trim().parse::<IpAddr>().map_err(|_| bad())?);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(bad)?,
        };
        Ok(IpNet { addr, prefix })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Parses a comma-separated `TRUSTED_PROXIES` list; every bad entry is reported.
pub fn parse_list(entries: &[String]) -> Result<Vec<IpNet>, Vec<String>> {
    let (mut nets, mut errors) = (Vec::new(), Vec::new());
    for entry in entries {
        match entry.parse() {
            Ok(net) => nets.push(net),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(nets)
    } else {
        Err(errors)
    }
}

/// The client address of a request whose socket peer is `peer`.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = canonical(peer?);
    if trusted.is_empty() || !is_trusted(peer, trusted) {
        return Some(peer);
    }
    // Every X-Forwarded-For line, in order, as one list; walk it from the right (the entry our
    // nearest proxy appended) past the trusted hops.
    let mut hops: Vec<&str> = Vec::new();
    for value in headers.get_all(FORWARDED_FOR) {
        let Ok(value) = value.to_str() else {
            return Some(peer);
        };
        hops.extend(value.split(',').map(str::trim).filter(|h| !h.is_empty()));
    }
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            // Garbage written by a trusted hop's client: the last trusted hop is the best we know.
            break;
        };
        client = ip;
        if !is_trusted(ip, trusted) {
            break;
        }
    }
    Some(client)
}

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|net| net.contains(ip))
}

/// `1.2.3.4`, `1.2.3.4:5678`, `::1` or `[::1]:5678`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(canonical)
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) as the IPv4 address they are.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// The rate-limit key of an address. An IPv6 client usually holds a whole /64, so it is keyed by
/// its /64 network; one host cannot multiply its quota by changing its interface identifier.
pub fn key(ip: IpAddr) -> String {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            // Written octet by octet: this runs on every request under an IP-keyed policy.
            let mut key = String::with_capacity(18);
            key.push_str("ip:");
            let mut digits = itoa::Buffer::new();
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    key.push('.');
                }
                key.push_str(digits.format(octet));
            }
            key
        }
        IpAddr::V6(v6) => {
            let net = u128::from(v6) & (u128::MAX << 64);
            format!("ip:{}/64", Ipv6Addr::from(net))
        }
    }
}

/// The key used when no address is known (a request not served through a socket).
pub fn unknown_key() -> String {
    format!("ip:{}", Ipv4Addr::UNSPECIFIED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        parse_list(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(FORWARDED_FOR, HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_ranges() {
        let n = nets(&["10.0.0.0/8", "192.168.1.7", "fd00::/8", "0.0.0.0/0"]);
        assert!(n[0].contains(ip("10.200.3.4")));
        assert!(!n[0].contains(ip("11.0.0.1")));
        assert!(n[1].contains(ip("192.168.1.7")));
        assert!(!n[1].contains(ip("192.168.1.8")));
        assert!(n[2].contains(ip("fd12::1")));
        assert!(!n[2].contains(ip("10.0.0.1")));
        assert!(n[3].contains(ip("8.8.8.8")));
        assert!(n[0].contains(ip("::ffff:10.1.1.1")), "mapped IPv4");
        let bad = parse_list(&["10.0.0.0/33".into(), "proxy".into(), "::1/64".into()]);
        assert_eq!(bad.unwrap_err().len(), 2);
    }

    #[test]
    fn forwarded_for_is_ignored_without_trusted_proxies() {
        let headers = xff(&["6.6.6.6"]);
        assert_eq!(
            client_ip(Some(ip("127.0.0.1")), &headers, &[]),
            Some(ip("127.0.0.1"))
        );
        // Trusted proxies configured, but this peer is not one of them.
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_ip(Some(ip("9.9.9.9")), &headers, &trusted),
            Some(ip("9.9.9.9"))
        );
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let trusted = nets(&["10.0.0.0/8", "127.0.0.1"]);
        let peer = Some(ip("127.0.0.1"));
        // The client forged the first entry; the proxies appended the rest.
        let headers = xff(&["1.1.1.1, 203.0.113.9", "10.0.0.2"]);
        assert_eq!(client_ip(peer, &headers, &trusted), Some(ip("203.0.113.9")));
        let headers = xff(&["203.0.113.9:4711"]);
        assert_eq!(client_ip(peer, &headers, &trusted), Some(ip("203.0.113.9")));
        // Every hop trusted: the left-most one.
        let headers = xff(&["10.0.0.5, 10.0.0.6"]);
        assert_eq!(client_ip(peer, &headers, &trusted), Some(ip("10.0.0.5")));
        // No header: the proxy itself.
        assert_eq!(
            client_ip(peer, &HeaderMap::new(), &trusted),
            Some(ip("127.0.0.1"))
        );
        // Garbage behind a trusted hop stops the walk there.
        let headers = xff(&["junk, 10.0.0.7"]);
        assert_eq!(client_ip(peer, &headers, &trusted), Some(ip("10.0.0.7")));
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        assert_eq!(key(ip("2001:db8:1:2:aaaa::1")), "ip:2001:db8:1:2::/64");
        assert_eq!(key(ip("2001:db8:1:2:bbbb::9")), "ip:2001:db8:1:2::/64");
        assert_eq!(key(ip("::ffff:1.2.3.4")), "ip:1.2.3.4");
        assert_eq!(key(ip("1.2.3.4")), "ip:1.2.3.4");
    }
}
