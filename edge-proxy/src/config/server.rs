//! `[server]`: where the edge listens, how it names itself in the URLs it hands out, and who a
//! request's client is behind trusted proxies.

use std::net::SocketAddr;

use playback::client_address::{ClientAddressRule, ForwardedHeader};
use serde::{Deserialize, Serialize};

use super::error::{check_http_url, invalid, ConfigError};

/// `[server]`: where the edge listens and how it names itself in URLs it hands out.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: String,
    pub public_base_url: String,
    pub threads: usize,
    pub shutdown_grace_secs: u64,
    /// `Access-Control-Allow-Origin` on every response (`*`, one origin, or empty for none), so
    /// browser players (hls.js, Shaka) on another origin can fetch manifests, playlists and keys.
    pub cors_allow_origin: String,
    /// Proxies (addresses or CIDRs) whose forwarding header is believed: when the peer is one,
    /// the client is the rightmost untrusted address of `forwarded_header`
    /// (`playback::client_address`). Empty (the default): the peer is the client and
    /// forwarding headers are ignored.
    pub trusted_proxies: Vec<String>,
    /// The header the trusted proxies write: `x-forwarded-for` or `forwarded` (RFC 7239).
    pub forwarded_header: String,
    /// Unix socket over which a new process (`edge-proxy --upgrade`) receives the listening
    /// sockets of the running one when that one gets SIGQUIT (Pingora's graceful upgrade).
    pub upgrade_sock: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            public_base_url: "http://127.0.0.1:8080".into(),
            threads: 2,
            shutdown_grace_secs: 1,
            cors_allow_origin: "*".into(),
            trusted_proxies: Vec::new(),
            forwarded_header: "x-forwarded-for".into(),
            upgrade_sock: "/tmp/edge-proxy-upgrade.sock".into(),
        }
    }
}

impl ServerConfig {
    /// The listen address, the thread count, CORS, the public URL and the trusted proxies.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        if self.threads == 0 {
            return Err(invalid("server.threads", "is 0", "set at least 1"));
        }
        if !self
            .cors_allow_origin
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b))
        {
            return Err(invalid(
                "server.cors_allow_origin",
                "is not a valid header value",
                "use \"*\", one origin such as \"https://player.example.com\", or \"\" to send none",
            ));
        }
        check_http_url("server.public_base_url", &self.public_base_url)?;
        if self.upgrade_sock.is_empty() || self.upgrade_sock.len() > 100 {
            return Err(invalid(
                "server.upgrade_sock",
                "is empty or longer than a Unix socket path may be",
                "give a path such as \"/run/streaming/edge-upgrade.sock\"",
            ));
        }
        self.client_address_rule()?;
        Ok(())
    }

    /// The socket address from `server.listen`.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        let addr: SocketAddr = self.listen.parse().map_err(|_| {
            invalid(
                "server.listen",
                format!("is {:?}, not an address", self.listen),
                "write IP:port, e.g. \"127.0.0.1:8080\"",
            )
        })?;
        if addr.port() == 0 {
            return Err(invalid(
                "server.listen",
                "has port 0",
                "choose a fixed port, e.g. 8080",
            ));
        }
        Ok(addr)
    }

    /// `server.public_base_url` without a trailing slash.
    pub fn public_base_url(&self) -> &str {
        self.public_base_url.trim_end_matches('/')
    }

    /// Who the client of a request is (`server.trusted_proxies`, `server.forwarded_header`).
    pub fn client_address_rule(&self) -> Result<ClientAddressRule, ConfigError> {
        let header = ForwardedHeader::from_name(&self.forwarded_header).ok_or_else(|| {
            invalid(
                "server.forwarded_header",
                format!("is {:?}", self.forwarded_header),
                "use \"x-forwarded-for\" or \"forwarded\": the header your trusted proxies write",
            )
        })?;
        ClientAddressRule::new(&self.trusted_proxies, header).map_err(|e| {
            invalid(
                "server.trusted_proxies",
                e.to_string(),
                "list the addresses or CIDR networks of the proxies in front of the edge, e.g. [\"10.0.0.0/8\"], or [] when clients connect directly",
            )
        })
    }
}
