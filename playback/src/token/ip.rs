//! Client-address rules that bind a token to an IP address or network.
//!
//! A rule is an IPv4 or IPv6 address (`203.0.113.7`, `2001:db8::1`) or a CIDR network
//! (`203.0.113.0/24`, `2001:db8:1:2::/64`). Clients are compared in canonical form, so an
//! IPv4-mapped IPv6 client (`::ffff:203.0.113.7`, as dual-stack sockets report IPv4 peers) matches
//! IPv4 rules, and IPv6 rules see IPv4 clients in their mapped form (`::ffff:203.0.113.0/120`
//! matches `203.0.113.7`). Host bits set in a CIDR rule are ignored (`203.0.113.7/24` is the
//! network `203.0.113.0/24`), as CloudFront does.

use std::net::IpAddr;

use crate::Reason;

/// Longest rule accepted (the longest IPv6 text form plus a prefix length fits comfortably).
const MAX_RULE_LEN: usize = 64;

/// True when `client` lies inside `rule` (an address or a CIDR network).
///
/// A rule that is not an address or a CIDR with a valid prefix length is `Err(Malformed)`.
pub fn ip_matches(rule: &str, client: IpAddr) -> Result<bool, Reason> {
    Ok(Network::parse(rule)?.contains(client))
}

/// An address or CIDR network, parsed once (trusted-proxy lists, allow-lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses `rule` (`203.0.113.7`, `203.0.113.0/24`, `2001:db8::/32`); anything else is
    /// `Err(Malformed)`.
    pub fn parse(rule: &str) -> Result<Network, Reason> {
        let (address, prefix) = parse_rule(rule)?;
        Ok(Network { address, prefix })
    }

    /// True when `client` lies inside the network (IPv4-mapped IPv6 clients match IPv4 rules).
    pub fn contains(&self, client: IpAddr) -> bool {
        match (self.address, client.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(
                u128::from(u32::from(net)) << 96,
                u128::from(u32::from(ip)) << 96,
                self.prefix,
            ),
            (IpAddr::V4(_), IpAddr::V6(_)) => false,
            // An IPv6 rule sees IPv4 clients in their mapped form (`::ffff:0:0/96` holds them all).
            (IpAddr::V6(net), IpAddr::V4(ip)) => prefix_eq(
                u128::from(net),
                u128::from(ip.to_ipv6_mapped()),
                self.prefix,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(u128::from(net), u128::from(ip), self.prefix)
            }
        }
    }
}

/// Parses `rule` into a canonical network address and prefix length (in bits of that family).
pub(crate) fn parse_rule(rule: &str) -> Result<(IpAddr, u8), Reason> {
    if rule.is_empty() || rule.len() > MAX_RULE_LEN {
        return Err(Reason::Malformed);
    }
    let (addr, prefix) = match rule.split_once('/') {
        Some((addr, bits)) => (addr, Some(parse_prefix(bits)?)),
        None => (rule, None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| Reason::Malformed)?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = prefix.unwrap_or(max);
    if prefix > max {
        return Err(Reason::Malformed);
    }
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            // `::ffff:a.b.c.d/n` with n >= 96 is the IPv4 network a.b.c.d/(n - 96).
            Some(v4) if prefix >= 96 => Ok((IpAddr::V4(v4), prefix - 96)),
            _ => Ok((addr, prefix)),
        },
        IpAddr::V4(_) => Ok((addr, prefix)),
    }
}

fn parse_prefix(bits: &str) -> Result<u8, Reason> {
    if bits.is_empty() || bits.len() > 3 || !bits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Reason::Malformed);
    }
    bits.parse().map_err(|_| Reason::Malformed)
}

/// True when the top `prefix` bits of `a` and `b` are equal (`prefix` <= 128).
fn prefix_eq(a: u128, b: u128, prefix: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let mask = u128::MAX << (128 - u32::from(prefix));
    (a & mask) == (b & mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn single_addresses() {
        assert_eq!(ip_matches("203.0.113.7", ip("203.0.113.7")), Ok(true));
        assert_eq!(ip_matches("203.0.113.7", ip("203.0.113.8")), Ok(false));
        assert_eq!(ip_matches("2001:db8::1", ip("2001:db8::1")), Ok(true));
        assert_eq!(ip_matches("2001:db8::1", ip("2001:db8::2")), Ok(false));
        assert_eq!(ip_matches("203.0.113.7/32", ip("203.0.113.7")), Ok(true));
        assert_eq!(ip_matches("2001:db8::1/128", ip("2001:db8::1")), Ok(true));
    }

    #[test]
    fn ipv4_networks() {
        assert_eq!(ip_matches("203.0.113.0/24", ip("203.0.113.200")), Ok(true));
        assert_eq!(ip_matches("203.0.113.0/24", ip("203.0.114.1")), Ok(false));
        assert_eq!(ip_matches("203.0.113.77/24", ip("203.0.113.1")), Ok(true));
        assert_eq!(ip_matches("10.0.0.0/8", ip("10.255.0.1")), Ok(true));
        assert_eq!(ip_matches("10.0.0.0/9", ip("10.128.0.1")), Ok(false));
        assert_eq!(ip_matches("0.0.0.0/0", ip("198.51.100.1")), Ok(true));
    }

    #[test]
    fn ipv6_networks() {
        assert_eq!(
            ip_matches("2001:db8:1:2::/64", ip("2001:db8:1:2:aaaa::1")),
            Ok(true)
        );
        assert_eq!(
            ip_matches("2001:db8:1:2::/64", ip("2001:db8:1:3::1")),
            Ok(false)
        );
        assert_eq!(ip_matches("::/0", ip("2001:db8::1")), Ok(true));
        assert_eq!(
            ip_matches("2001:db8::/33", ip("2001:db8:8000::1")),
            Ok(false)
        );
    }

    #[test]
    fn families_do_not_mix_except_mapped_addresses() {
        assert_eq!(
            ip_matches("203.0.113.0/24", ip("::ffff:203.0.113.9")),
            Ok(true)
        );
        assert_eq!(
            ip_matches("203.0.113.0/24", ip("::ffff:203.0.114.9")),
            Ok(false)
        );
        assert_eq!(
            ip_matches("::ffff:203.0.113.0/120", ip("203.0.113.9")),
            Ok(true)
        );
        assert_eq!(
            ip_matches("::ffff:203.0.113.9", ip("203.0.113.9")),
            Ok(true)
        );
        assert_eq!(ip_matches("203.0.113.9", ip("2001:db8::1")), Ok(false));
        assert_eq!(ip_matches("2001:db8::/32", ip("203.0.113.9")), Ok(false));
        assert_eq!(ip_matches("0.0.0.0/0", ip("2001:db8::1")), Ok(false));
        assert_eq!(ip_matches("::ffff:0:0/96", ip("203.0.113.9")), Ok(true));
        assert_eq!(ip_matches("::ffff:0:0/50", ip("203.0.113.9")), Ok(true));
        assert_eq!(ip_matches("::/0", ip("203.0.113.9")), Ok(true));
        assert_eq!(
            ip_matches("2001:db8::/32", ip("::ffff:203.0.113.9")),
            Ok(false)
        );
    }

    #[test]
    fn bad_rules_are_malformed() {
        let client = ip("203.0.113.7");
        for rule in [
            "",
            "203.0.113",
            "203.0.113.7/33",
            "2001:db8::/129",
            "203.0.113.7/",
            "203.0.113.7/+8",
            "203.0.113.7/-1",
            "203.0.113.7/ 8",
            "203.0.113.7/0008",
            "/24",
            "host.example",
            "fe80::1%eth0",
            "203.0.113.7/24/8",
            &"1".repeat(MAX_RULE_LEN + 1),
        ] {
            assert_eq!(ip_matches(rule, client), Err(Reason::Malformed), "{rule:?}");
        }
    }
}
