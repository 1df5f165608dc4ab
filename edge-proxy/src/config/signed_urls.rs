//! `[signed_urls]`: the EdgeAuth v2 tokens the edge mints for playlist, segment and key URLs.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::error::{check_positive, invalid, ConfigError};

/// `[signed_urls]`: the EdgeAuth v2 tokens on playlist, segment and key URLs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignedUrlConfig {
    /// Raw key bytes; an Akamai property needs the same bytes in hex (`edge-proxy explain`).
    pub signing_key_file: PathBuf,
    /// Lifetime of the manifest token (admits the master playlist only).
    pub manifest_ttl_secs: u64,
    /// Token name: query parameter, path-segment prefix and cookie name (`hdnts`, `__token__`).
    pub token_name: String,
    /// EdgeAuth HMAC: `sha256`, `sha1` or `md5`.
    pub algorithm: String,
    /// EdgeAuth field delimiter (`~`).
    pub field_delimiter: char,
    /// EdgeAuth escape-early (percent-encode `acl`/`data` values before hashing).
    pub escape_early: bool,
}

impl Default for SignedUrlConfig {
    fn default() -> Self {
        SignedUrlConfig {
            signing_key_file: "data/secrets/url-signing.key".into(),
            manifest_ttl_secs: 300,
            token_name: "hdnts".into(),
            algorithm: "sha256".into(),
            field_delimiter: '~',
            escape_early: false,
        }
    }
}

impl SignedUrlConfig {
    /// The manifest lifetime, the token name, the HMAC and the field delimiter.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_positive("signed_urls.manifest_ttl_secs", self.manifest_ttl_secs)?;
        let name = &self.token_name;
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(invalid(
                "signed_urls.token_name",
                format!("is {name:?}"),
                "use a plain name such as \"hdnts\" or \"__token__\" (letters, digits, `_`, `-`)",
            ));
        }
        if playback::token::edgeauth::Algorithm::from_name(&self.algorithm).is_none() {
            return Err(invalid(
                "signed_urls.algorithm",
                format!("is {:?}", self.algorithm),
                "use \"sha256\", \"sha1\" or \"md5\"",
            ));
        }
        let delimiter = self.field_delimiter;
        if !delimiter.is_ascii_punctuation() || matches!(delimiter, '=' | '&' | '/' | '%' | '!') {
            return Err(invalid(
                "signed_urls.field_delimiter",
                format!("is {delimiter:?}"),
                "use \"~\" (EdgeAuth's default)",
            ));
        }
        Ok(())
    }
}
