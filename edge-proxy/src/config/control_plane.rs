//! `[control_plane]`: the internal API that answers entitlement and key questions and takes
//! license records.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::error::{check_http_url, check_positive, ConfigError};

/// `[control_plane]`: the internal API that answers entitlement and key questions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControlPlaneConfig {
    pub url: String,
    pub service_token_file: PathBuf,
    pub key_transport_key_file: PathBuf,
    pub timeout_ms: u64,
}

impl Default for ControlPlaneConfig {
    fn default() -> Self {
        ControlPlaneConfig {
            url: "http://127.0.0.1:8081".into(),
            service_token_file: "data/secrets/service-token".into(),
            key_transport_key_file: "data/secrets/key-transport.key".into(),
            timeout_ms: 2_000,
        }
    }
}

impl ControlPlaneConfig {
    /// An http(s) URL and a positive timeout.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_http_url("control_plane.url", &self.url)?;
        check_positive("control_plane.timeout_ms", self.timeout_ms)
    }
}
