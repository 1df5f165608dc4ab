//! `[jwt]`: how viewer JWTs are verified: the keys (files and a JWKS URL, each pinned to one
//! algorithm), the registered-claim rules and the verified-token cache.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::error::{check_http_url, check_positive, invalid, ConfigError};

/// `[jwt]`: how viewer JWTs presented to `/playback/{videoId}/manifest` are checked.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtConfig {
    /// An unnamed HS256 key shared with the control plane; `""` for none.
    pub hs256_secret_file: PathBuf,
    pub issuer: String,
    pub audience: String,
    pub leeway_secs: u64,
    /// Longest viewer JWT accepted, bytes.
    pub max_token_bytes: usize,
    /// More verification keys, each pinned to one algorithm (`[[jwt.keys]]`).
    pub keys: Vec<JwtKeyConfig>,
    /// A JWKS document of the auth service (`""` for none), fetched at start-up and refetched
    /// when a token names an unknown `kid`.
    pub jwks_url: String,
    /// At most one JWKS refetch per this many seconds.
    pub jwks_min_refetch_secs: u64,
    pub jwks_timeout_ms: u64,
    /// Longest a verified token stays in the verified-token cache (never past its `exp`).
    pub verified_cache_ttl_secs: u64,
    pub verified_cache_max_entries: u64,
}

/// One `[[jwt.keys]]` entry: an algorithm and exactly one of `secret_file` (HS256),
/// `public_key_file` (PEM; RS256, ES256, EdDSA) or `jwk_file`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtKeyConfig {
    /// The `kid` tokens select this key by; `""` for an unnamed key.
    pub kid: String,
    /// `HS256`, `RS256`, `ES256` or `EdDSA`.
    pub alg: String,
    pub secret_file: PathBuf,
    pub public_key_file: PathBuf,
    pub jwk_file: PathBuf,
}

impl Default for JwtConfig {
    fn default() -> Self {
        JwtConfig {
            hs256_secret_file: "data/secrets/jwt-hs256.key".into(),
            issuer: "streaming-dev".into(),
            audience: "streaming-edge".into(),
            leeway_secs: 30,
            max_token_bytes: playback::jwt::MAX_JWT_LEN,
            keys: Vec::new(),
            jwks_url: String::new(),
            jwks_min_refetch_secs: 30,
            jwks_timeout_ms: 2_000,
            verified_cache_ttl_secs: 300,
            verified_cache_max_entries: 100_000,
        }
    }
}

impl JwtConfig {
    /// Issuer and audience, the key sources, sizes and cache bounds.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.issuer.is_empty() {
            return Err(invalid(
                "jwt.issuer",
                "is empty",
                "set the issuer your JWTs carry in `iss`",
            ));
        }
        if self.audience.is_empty() {
            return Err(invalid(
                "jwt.audience",
                "is empty",
                "set the audience your JWTs carry in `aud`",
            ));
        }
        let jwt = self;
        if !(512..=65_536).contains(&jwt.max_token_bytes) {
            return Err(invalid(
                "jwt.max_token_bytes",
                format!("is {}", jwt.max_token_bytes),
                "choose between 512 and 65536 (default 8192)",
            ));
        }
        if jwt.hs256_secret_file.as_os_str().is_empty()
            && jwt.keys.is_empty()
            && jwt.jwks_url.is_empty()
        {
            return Err(invalid(
                "jwt",
                "names no verification key",
                "set `hs256_secret_file`, add `[[jwt.keys]]`, or set `jwks_url`",
            ));
        }
        for key in &jwt.keys {
            let alg = playback::jwt::Algorithm::from_name(&key.alg).ok_or_else(|| {
                invalid(
                    "jwt.keys.alg",
                    format!("is {:?}", key.alg),
                    "use \"HS256\", \"RS256\", \"ES256\" or \"EdDSA\"",
                )
            })?;
            if !key.kid.is_empty() && !playback::jwt::kid_is_valid(&key.kid) {
                return Err(invalid(
                    "jwt.keys.kid",
                    format!("is {:?}", key.kid),
                    "use 1-128 characters of A-Z a-z 0-9 - _ . : + / =",
                ));
            }
            let sources = [&key.secret_file, &key.public_key_file, &key.jwk_file]
                .iter()
                .filter(|p| !p.as_os_str().is_empty())
                .count();
            let hs = alg == playback::jwt::Algorithm::Hs256;
            let right_kind = if hs {
                key.public_key_file.as_os_str().is_empty()
            } else {
                key.secret_file.as_os_str().is_empty()
            };
            if sources != 1 || !right_kind {
                return Err(invalid(
                    "jwt.keys",
                    format!("entry for {} (kid {:?}) names {sources} key files", key.alg, key.kid),
                    "give HS256 keys one `secret_file` (or `jwk_file`) and RS256/ES256/EdDSA keys one `public_key_file` (PEM) or `jwk_file`",
                ));
            }
        }
        if !jwt.jwks_url.is_empty() {
            check_http_url("jwt.jwks_url", &jwt.jwks_url)?;
        }
        check_positive("jwt.jwks_min_refetch_secs", jwt.jwks_min_refetch_secs)?;
        check_positive("jwt.jwks_timeout_ms", jwt.jwks_timeout_ms)?;
        check_positive("jwt.verified_cache_ttl_secs", jwt.verified_cache_ttl_secs)?;
        check_positive(
            "jwt.verified_cache_max_entries",
            jwt.verified_cache_max_entries,
        )?;
        Ok(())
    }
}
