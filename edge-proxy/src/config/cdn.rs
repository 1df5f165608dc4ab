//! `[cdn]`: a CDN pulling from the edge with a shared secret, and `[debug]`: operator aids.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::error::{invalid, ConfigError};

/// `[cdn]`: a CDN pulling from the edge. A request carrying one of the shared secrets in
/// `header` skips viewer tokens and gets a token-free, publicly cacheable answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CdnConfig {
    /// File holding the shared secret(s), one per line (two during a rotation); `""` = off.
    pub shared_secret_file: PathBuf,
    /// The request header that carries the secret.
    pub header: String,
}

impl Default for CdnConfig {
    fn default() -> Self {
        CdnConfig {
            shared_secret_file: PathBuf::new(),
            header: "x-edge-cdn-auth".into(),
        }
    }
}

/// `[debug]`: operator aids, off in production.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DebugConfig {
    /// Adds `X-Edge-Denial: <code>; <detail>` to refusals.
    pub denial_header: bool,
}

impl CdnConfig {
    /// With a secret file, `header` must be a header name.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.shared_secret_file.as_os_str().is_empty()
            && http::HeaderName::from_bytes(self.header.as_bytes()).is_err()
        {
            return Err(invalid(
                "cdn.header",
                format!("{:?} is not a header name", self.header),
                "use a header name such as \"x-edge-cdn-auth\"",
            ));
        }
        Ok(())
    }
}
