//! Which address a request comes from when proxies may stand in front of the edge or the
//! filter: the rule IP-bound tokens, CloudFront `IpAddress` policies and logs all use.
//!
//! The client is the connection's peer, unless the peer is a trusted proxy (the operator's
//! `trusted_proxies` CIDRs). Then the forwarding header the operator named (`X-Forwarded-For`
//! or RFC 7239 `Forwarded`) is walked from the right, across every instance of the header in
//! order, skipping trusted proxies: the first address that is not trusted is the client. A
//! client can prepend anything to that header, but it cannot write to the right of what the
//! proxies appended, so the rightmost untrusted address is the only one worth believing.
//!
//! If every hop is trusted, the leftmost one is the client (a request from inside the trusted
//! network). An entry that is not an address (`unknown`, an obfuscated `Forwarded` identifier,
//! garbage) ends the walk: the last trusted hop walked is the client, because nothing to its
//! left was written by a proxy that vouches for it. At most [`MAX_HOPS`] hops are walked.
//!
//! With no trusted proxies (the default) forwarding headers are ignored entirely. The Pingora
//! edge (`server.trusted_proxies`) and the proxy-wasm filter (`client_address`) both call
//! [`ClientAddressRule::client_address`], so they bind tokens to the same address.

use std::net::{IpAddr, SocketAddr};

use crate::token::ip::Network;

/// Most hops of the forwarding header walked (from the right).
pub const MAX_HOPS: usize = 32;

/// Most trusted networks configured.
pub const MAX_TRUSTED_PROXIES: usize = 256;

/// The forwarding header trusted proxies write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2`.
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for="[2001:db8::1]:443";proto=https`.
    Forwarded,
}

impl ForwardedHeader {
    /// The header's name in lower case (`x-forwarded-for`, `forwarded`).
    pub fn name(self) -> &'static str {
        match self {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        }
    }

    /// The header for a (case-insensitive) name, as configuration spells it.
    pub fn from_name(name: &str) -> Option<ForwardedHeader> {
        [ForwardedHeader::XForwardedFor, ForwardedHeader::Forwarded]
            .into_iter()
            .find(|h| h.name().eq_ignore_ascii_case(name))
    }
}

/// Why a trusted-proxy list cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAddressError {
    /// Entry `index` is not an address or CIDR network.
    BadNetwork { index: usize },
    /// More than [`MAX_TRUSTED_PROXIES`] entries.
    TooMany,
}

impl std::fmt::Display for ClientAddressError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientAddressError::BadNetwork { index } => write!(
                f,
                "entry {index} is not an IPv4/IPv6 address or CIDR network (e.g. \"10.0.0.0/8\")"
            ),
            ClientAddressError::TooMany => {
                write!(f, "more than {MAX_TRUSTED_PROXIES} networks")
            }
        }
    }
}

/// The trusted proxies and the header they write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddressRule {
    trusted: Vec<Network>,
    header: ForwardedHeader,
}

impl Default for ClientAddressRule {
    /// No trusted proxies: the peer is the client.
    fn default() -> Self {
        ClientAddressRule {
            trusted: Vec::new(),
            header: ForwardedHeader::XForwardedFor,
        }
    }
}

impl ClientAddressRule {
    /// Trusts the networks `trusted` (addresses or CIDRs) to write `header`.
    pub fn new<S: AsRef<str>>(
        trusted: &[S],
        header: ForwardedHeader,
    ) -> Result<ClientAddressRule, ClientAddressError> {
        if trusted.len() > MAX_TRUSTED_PROXIES {
            return Err(ClientAddressError::TooMany);
        }
        let trusted = trusted
            .iter()
            .enumerate()
            .map(|(index, rule)| {
                Network::parse(rule.as_ref().trim())
                    .map_err(|_| ClientAddressError::BadNetwork { index })
            })
            .collect::<Result<_, _>>()?;
        Ok(ClientAddressRule { trusted, header })
    }

    /// The header to read (only consulted when the peer is trusted).
    pub fn header(&self) -> ForwardedHeader {
        self.header
    }

    /// True when some proxy is trusted, so the header is worth reading.
    pub fn reads_header(&self) -> bool {
        !self.trusted.is_empty()
    }

    /// True when `address` is a trusted proxy (its requests name their client in a header).
    pub fn trusts(&self, address: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(address))
    }

    /// The client of a request from `peer` carrying `header_values` (every instance of
    /// [`Self::header`], in the order received).
    pub fn client_address(&self, peer: IpAddr, header_values: &[&str]) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.trusts(client) {
            return client;
        }
        let hops = header_values
            .iter()
            .rev()
            .flat_map(|value| value.rsplit(','))
            .take(MAX_HOPS);
        for hop in hops {
            let parsed = match self.header {
                ForwardedHeader::XForwardedFor => parse_node(hop.trim()),
                ForwardedHeader::Forwarded => forwarded_for(hop),
            };
            let Some(address) = parsed else {
                return client;
            };
            client = address.to_canonical();
            if !self.trusts(client) {
                return client;
            }
        }
        client
    }
}

/// An address as proxies write it: `203.0.113.7`, `203.0.113.7:5555`, `2001:db8::1`,
/// `[2001:db8::1]`, `[2001:db8::1]:443`.
fn parse_node(text: &str) -> Option<IpAddr> {
    if let Ok(address) = text.parse::<IpAddr>() {
        return Some(address);
    }
    if let Ok(socket) = text.parse::<SocketAddr>() {
        return Some(socket.ip());
    }
    text.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

/// The `for=` node of one `Forwarded` element (`for=192.0.2.60;proto=http;by=…`), quoted or
/// not; `None` for `unknown`, obfuscated identifiers and elements without `for`.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("for") {
            return None;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        parse_node(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(trusted: &[&str]) -> ClientAddressRule {
        ClientAddressRule::new(trusted, ForwardedHeader::XForwardedFor).unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client() {
        let rule = ClientAddressRule::default();
        assert!(!rule.reads_header());
        assert_eq!(
            rule.client_address(ip("127.0.0.1"), &["203.0.113.7"]),
            ip("127.0.0.1")
        );
        assert_eq!(
            rule.client_address(ip("::ffff:198.51.100.2"), &[]),
            ip("198.51.100.2"),
            "mapped peers are canonical"
        );
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_sends() {
        let rule = xff(&["10.0.0.0/8"]);
        assert_eq!(
            rule.client_address(ip("203.0.113.9"), &["10.1.1.1, 198.51.100.1"]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let rule = xff(&["10.0.0.0/8", "2001:db8:ffff::/48"]);
        let peer = ip("10.0.0.2");
        assert_eq!(
            rule.client_address(peer, &["203.0.113.7"]),
            ip("203.0.113.7")
        );
        // What the client prepended is ignored; trusted hops are skipped.
        assert_eq!(
            rule.client_address(peer, &["198.51.100.66, 203.0.113.7, 10.9.9.9"]),
            ip("203.0.113.7")
        );
        // Several headers are one list, in order.
        assert_eq!(
            rule.client_address(peer, &["198.51.100.66", "203.0.113.7", "10.9.9.9"]),
            ip("203.0.113.7")
        );
        // Ports and brackets, as some proxies write them.
        assert_eq!(
            rule.client_address(peer, &["203.0.113.7:5555"]),
            ip("203.0.113.7")
        );
        assert_eq!(
            rule.client_address(peer, &["[2001:db8::7]:443, 2001:db8:ffff::1"]),
            ip("2001:db8::7")
        );
        assert_eq!(
            rule.client_address(peer, &["::ffff:203.0.113.7"]),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn all_trusted_or_unparseable_stops_at_the_last_trusted_hop() {
        let rule = xff(&["10.0.0.0/8"]);
        let peer = ip("10.0.0.2");
        assert_eq!(rule.client_address(peer, &[]), peer, "no header");
        assert_eq!(
            rule.client_address(peer, &["10.1.1.1, 10.2.2.2"]),
            ip("10.1.1.1"),
            "every hop trusted: the leftmost"
        );
        assert_eq!(
            rule.client_address(peer, &["203.0.113.7, junk, 10.2.2.2"]),
            ip("10.2.2.2"),
            "junk ends the walk"
        );
        assert_eq!(
            rule.client_address(peer, &["unknown"]),
            peer,
            "nothing parseable"
        );
        assert_eq!(rule.client_address(peer, &[""]), peer);
    }

    #[test]
    fn the_walk_is_bounded() {
        let rule = xff(&["10.0.0.0/8"]);
        let mut hops = vec!["203.0.113.7".to_string()];
        hops.extend((0..100).map(|i| format!("10.0.0.{}", i % 250)));
        let header = hops.join(",");
        let client = rule.client_address(ip("10.0.0.1"), &[&header]);
        assert!(
            rule.trusts(client),
            "stopped after {MAX_HOPS} hops: {client}"
        );
    }

    #[test]
    fn forwarded_elements() {
        let rule = ClientAddressRule::new(&["10.0.0.0/8"], ForwardedHeader::Forwarded).unwrap();
        let peer = ip("10.0.0.2");
        assert_eq!(
            rule.client_address(peer, &["for=192.0.2.60;proto=http;by=203.0.113.43"]),
            ip("192.0.2.60")
        );
        assert_eq!(
            rule.client_address(
                peer,
                &["for=198.51.100.1, for=\"[2001:db8:cafe::17]:4711\", For=10.3.3.3"]
            ),
            ip("2001:db8:cafe::17")
        );
        assert_eq!(
            rule.client_address(peer, &["for=192.0.2.60, for=_hidden"]),
            peer,
            "an obfuscated node ends the walk"
        );
        assert_eq!(rule.client_address(peer, &["proto=https"]), peer, "no for=");
        // X-Forwarded-For is not read when Forwarded is the configured header (and vice versa).
        assert_eq!(rule.client_address(peer, &["192.0.2.60"]), peer);
    }

    #[test]
    fn configuration() {
        assert_eq!(
            ClientAddressRule::new(&["10.0.0.0/8", "nope"], ForwardedHeader::XForwardedFor),
            Err(ClientAddressError::BadNetwork { index: 1 })
        );
        let many = vec!["10.0.0.1"; MAX_TRUSTED_PROXIES + 1];
        assert_eq!(
            ClientAddressRule::new(&many, ForwardedHeader::XForwardedFor),
            Err(ClientAddressError::TooMany)
        );
        assert_eq!(
            ForwardedHeader::from_name("X-Forwarded-For"),
            Some(ForwardedHeader::XForwardedFor)
        );
        assert_eq!(
            ForwardedHeader::from_name("forwarded"),
            Some(ForwardedHeader::Forwarded)
        );
        assert_eq!(ForwardedHeader::from_name("x-real-ip"), None);
    }
}
