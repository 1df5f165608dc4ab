//! `[cloudfront]`: the public keys CloudFront signed URLs and cookies are verified with.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::error::{invalid, ConfigError};

/// `[cloudfront]`: accept CloudFront signed URLs and cookies. Empty = off.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CloudFrontConfig {
    /// Key-Pair-Id -> PEM public key file (RSA-2048 or ECDSA P-256).
    pub public_keys: std::collections::BTreeMap<String, PathBuf>,
}

impl CloudFrontConfig {
    /// Key-Pair-Ids are CloudFront's alphanumeric ids.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for id in self.public_keys.keys() {
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(invalid(
                    "cloudfront.public_keys",
                    format!("has the Key-Pair-Id {id:?}"),
                    "use the alphanumeric id CloudFront shows for the public key (e.g. \"K2JCJMDEHXQW5F\")",
                ));
            }
        }
        Ok(())
    }
}
