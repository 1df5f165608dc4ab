//! The edge's shared state: credential verifiers, the origin, the control-plane client, caches
//! and metrics, built once at start-up from the configuration and secrets.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use playback::jwt::{Hs256Verifier, JwtRules};
use playback::token::UrlSigner;

use crate::config::{ConfigError, EdgeConfig, Secrets};
use crate::control_plane::ControlPlane;
use crate::keys::ContentKeys;
use crate::metrics::Metrics;
use crate::origin::Origin;

/// Everything a request handler may need; one per process, shared by all requests.
pub struct Edge {
    /// Verifies viewer JWTs on manifest requests.
    pub jwt: Hs256Verifier,
    /// Mints and verifies signed-URL tokens.
    pub signer: UrlSigner,
    pub origin: Origin,
    pub control_plane: Arc<ControlPlane>,
    pub keys: ContentKeys,
    pub metrics: Arc<Metrics>,
    /// `server.public_base_url` without a trailing slash.
    pub public_base_url: String,
    /// `signed_urls.query_param`.
    pub token_param: String,
    /// `signed_urls.manifest_ttl_secs`.
    pub manifest_ttl_secs: u64,
    /// `signed_urls.child_ttl_secs`.
    pub child_ttl_secs: u64,
    /// `server.cors_allow_origin`; `None` sends no CORS headers.
    pub cors_allow_origin: Option<String>,
}

impl Edge {
    /// Builds the state from a validated configuration and its secrets.
    pub fn new(config: &EdgeConfig, secrets: Secrets) -> Result<Edge, ConfigError> {
        let metrics = Arc::new(Metrics::new());
        let control_plane = ControlPlane::new(
            &config.control_plane,
            &config.cache,
            &secrets.service_token,
            metrics.clone(),
        )
        .map_err(|e| ConfigError::Invalid {
            key: "control_plane.url",
            problem: format!("cannot build an HTTP client: {e}"),
            fix: "check the TLS setup of this machine".into(),
        })?;
        let control_plane = Arc::new(control_plane);
        let keys = ContentKeys::new(
            control_plane.clone(),
            secrets.key_transport_key,
            &config.cache,
            metrics.clone(),
        );
        Ok(Edge {
            jwt: Hs256Verifier::new(
                &secrets.jwt_hs256_secret,
                JwtRules {
                    issuer: config.jwt.issuer.clone(),
                    audience: config.jwt.audience.clone(),
                    leeway_secs: config.jwt.leeway_secs,
                },
            ),
            signer: UrlSigner::new(&secrets.url_signing_key),
            origin: Origin::from_config(&config.origin)?,
            control_plane,
            keys,
            metrics,
            public_base_url: config.public_base_url().to_string(),
            token_param: config.signed_urls.query_param.clone(),
            manifest_ttl_secs: config.signed_urls.manifest_ttl_secs,
            child_ttl_secs: config.signed_urls.child_ttl_secs,
            cors_allow_origin: Some(config.server.cors_allow_origin.clone())
                .filter(|origin| !origin.is_empty()),
        })
    }
}

/// Seconds since the Unix epoch, the clock every token check uses.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
