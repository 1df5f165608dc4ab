//! `[tls]`: the HTTPS listener (certificates chosen by SNI, HTTP/2 by ALPN, optional client
//! certificates, HSTS) and whether the plain HTTP listener stays open beside it.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::error::{invalid, ConfigError};

/// Most certificates one listener serves.
pub const MAX_CERTIFICATES: usize = 64;

/// `[tls]`: off unless `listen` is set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Address of the HTTPS listener (`"0.0.0.0:8443"`); `""` (the default) = no TLS.
    pub listen: String,
    /// Certificate chains and keys (PEM). The first one answers clients that send no SNI or a
    /// name no certificate covers; the others are chosen by the DNS names in their SANs.
    pub certificates: Vec<CertificateFiles>,
    /// PEM bundle of the CAs whose client certificates are accepted; `""` = clients are not
    /// asked for one. Certificates stay optional at the handshake: route groups require them
    /// (`[route_groups.*] client_certificate = "required"`).
    pub client_ca_file: PathBuf,
    /// `Strict-Transport-Security: max-age=…` on HTTPS responses; 0 = none.
    pub hsts_max_age_secs: u64,
    /// Keep the plain HTTP listener (`server.listen`) open beside the HTTPS one.
    pub plain_http: bool,
    /// How often the certificate and CA files are checked for changes (SIGHUP reloads at
    /// once); 0 = only on SIGHUP.
    pub reload_check_secs: u64,
}

/// One certificate: its chain and its private key, both PEM files.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CertificateFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            listen: String::new(),
            certificates: Vec::new(),
            client_ca_file: PathBuf::new(),
            hsts_max_age_secs: 0,
            plain_http: true,
            reload_check_secs: 2,
        }
    }
}

impl TlsConfig {
    /// True when the HTTPS listener is configured.
    pub fn enabled(&self) -> bool {
        !self.listen.is_empty()
    }

    /// The HTTPS listener's address, `None` when TLS is off.
    pub fn listen_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        if !self.enabled() {
            return Ok(None);
        }
        match self.listen.parse::<SocketAddr>() {
            Ok(addr) if addr.port() != 0 => Ok(Some(addr)),
            _ => Err(invalid(
                "tls.listen",
                format!("is {:?}, not an address with a port", self.listen),
                "write IP:port, e.g. \"0.0.0.0:8443\", or \"\" for no HTTPS listener",
            )),
        }
    }

    /// Certificates are given when TLS is on; plain HTTP may only be turned off then.
    pub fn validate(&self, plain_listen: &str) -> Result<(), ConfigError> {
        let Some(addr) = self.listen_addr()? else {
            if !self.plain_http {
                return Err(invalid(
                    "tls.plain_http",
                    "is false but tls.listen is empty, so the edge would listen nowhere",
                    "set tls.listen (and tls.certificates), or keep plain_http = true",
                ));
            }
            return Ok(());
        };
        if self.plain_http && plain_listen == addr.to_string() {
            return Err(invalid(
                "tls.listen",
                "is the same address as server.listen",
                "give the HTTPS listener its own port, e.g. 8443",
            ));
        }
        if self.certificates.is_empty() {
            return Err(invalid(
                "tls.certificates",
                "is empty while tls.listen is set",
                "add [[tls.certificates]] with cert_file and key_file (PEM)",
            ));
        }
        if self.certificates.len() > MAX_CERTIFICATES {
            return Err(invalid(
                "tls.certificates",
                format!("has more than {MAX_CERTIFICATES} entries"),
                "serve fewer names per listener, or use wildcard certificates",
            ));
        }
        for files in &self.certificates {
            if files.cert_file.as_os_str().is_empty() || files.key_file.as_os_str().is_empty() {
                return Err(invalid(
                    "tls.certificates",
                    "has an entry without cert_file or key_file",
                    "give each entry both PEM files",
                ));
            }
        }
        Ok(())
    }
}
