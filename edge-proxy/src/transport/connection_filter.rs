//! Drops a connection before its TLS handshake (and before any HTTP is read) when its peer is
//! refused by every route group's address lists, so a scanner on a deny-list costs an accept
//! and a close. A trusted proxy's connections always pass: their clients are named per request
//! and judged there.

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use pingora::listeners::ConnectionFilter;
use playback::client_address::ClientAddressRule;

use super::perimeter::Perimeter;
use crate::core::metrics::Metrics;

/// Pingora's connection filter over the route groups' address lists.
pub struct AddressFilter {
    perimeter: Arc<Perimeter>,
    client_addresses: ClientAddressRule,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for AddressFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddressFilter").finish_non_exhaustive()
    }
}

impl AddressFilter {
    pub fn new(
        perimeter: Arc<Perimeter>,
        client_addresses: ClientAddressRule,
        metrics: Arc<Metrics>,
    ) -> AddressFilter {
        AddressFilter {
            perimeter,
            client_addresses,
            metrics,
        }
    }

    /// True when a connection from `peer` may go on to its handshake.
    pub fn admits(&self, peer: &SocketAddr) -> bool {
        let ip = peer.ip().to_canonical();
        self.client_addresses.trusts(ip) || !self.perimeter.refuses_everywhere(ip)
    }
}

#[async_trait]
impl ConnectionFilter for AddressFilter {
    async fn should_accept(&self, addr: Option<&SocketAddr>) -> bool {
        // A connection without an inet peer (a Unix socket) is local: nothing to judge.
        let Some(addr) = addr else {
            return true;
        };
        let admitted = self.admits(addr);
        if !admitted {
            self.metrics.connection_refused("ip_not_allowed");
        }
        admitted
    }
}
