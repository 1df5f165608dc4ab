//! The edge's shared state: credential verifiers, the origin, the control-plane client, caches
//! and metrics, built once at start-up from the configuration and secrets.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::Digest;

use playback::client_address::ClientAddressRule;
use playback::token::cloudfront::CloudFrontVerifier;

use crate::sessions::cloudfront_memo::VerifiedSignatures;

use crate::cache::playlists::OriginPlaylists;
use crate::cache::SegmentCache;
use crate::cdn::CdnPull;
use crate::config::{ConfigError, EdgeConfig, Secrets};
use crate::control_plane::ControlPlane;
use crate::drm::Drm;
use crate::invalidation::Invalidations;
use crate::keys::ContentKeys;
use crate::metrics::Metrics;
use crate::origin::Origin;
use crate::redis_link::RedisLink;
use crate::revocation::Revocations;
use crate::sessions::Sessions;
use crate::viewer::ViewerAuth;

/// Everything a request handler may need; one per process, shared by all requests.
pub struct Edge {
    /// Verifies viewer JWTs on manifest requests (keys, JWKS, verified-token cache).
    pub jwt: ViewerAuth,
    /// Manifest and session tokens (EdgeAuth v2) and how they travel.
    pub sessions: Sessions,
    /// The deny-list of sessions, JWT ids and users (shared through Redis when configured).
    pub revocations: Arc<Revocations>,
    /// CloudFront signed URLs and cookies, when `[cloudfront]` names public keys.
    pub cloudfront: Option<CloudFrontVerifier>,
    /// CloudFront signatures already verified (one public-key operation per signature).
    pub cloudfront_signatures: VerifiedSignatures,
    /// `debug.denial_header`: add `X-Edge-Denial` to refusals.
    pub denial_header: bool,
    pub origin: Origin,
    /// pingora-cache for segments of HTTP and S3 origins (`None` when `cache.segment_cache_bytes` is 0).
    pub segment_cache: Option<SegmentCache>,
    /// Origin copies of playlists, before the per-viewer rewrite.
    pub playlists: OriginPlaylists,
    /// CDN origin pulls (`None` unless `[cdn] shared_secret_file` is set).
    pub cdn: Option<CdnPull>,
    /// `cache.segment_max_age_secs`: a segment's freshness when its origin says nothing.
    pub segment_max_age_secs: u64,
    pub control_plane: Arc<ControlPlane>,
    pub keys: Arc<ContentKeys>,
    /// License endpoints: limits, events, the license outbox, DRM systems.
    pub drm: Drm,
    /// The shared Redis for L2 caches, limits and events (`None` without `[redis] url`).
    pub redis: Option<Arc<RedisLink>>,
    /// What invalidation messages from the control plane reach.
    pub invalidations: Arc<Invalidations>,
    pub metrics: Arc<Metrics>,
    /// `server.public_base_url` without a trailing slash.
    pub public_base_url: String,
    /// `server.cors_allow_origin`; `None` sends no CORS headers.
    pub cors_allow_origin: Option<String>,
    /// Who a request's client is behind trusted proxies (`server.trusted_proxies`).
    pub client_addresses: ClientAddressRule,
    /// SHA-256 of the service token (`control_plane.service_token_file`), which internal
    /// endpoints require; compared in constant time.
    pub service_token_digest: [u8; 32],
}

impl Edge {
    /// Builds the state from a validated configuration and its secrets.
    pub fn new(config: &EdgeConfig, secrets: Secrets) -> Result<Edge, ConfigError> {
        let metrics = Arc::new(Metrics::new());
        let redis = RedisLink::from_config(&config.redis)
            .map_err(|e| ConfigError::Invalid {
                key: "redis.url",
                problem: format!("is not usable: {e}"),
                fix: "write e.g. \"redis://127.0.0.1:6379\", or \"\" to run without Redis".into(),
            })?
            .map(Arc::new);
        let control_plane = ControlPlane::new(
            &config.control_plane,
            &config.cache,
            &secrets.service_token,
            redis.clone(),
            metrics.clone(),
        )
        .map_err(|e| ConfigError::Invalid {
            key: "control_plane.url",
            problem: format!("cannot build an HTTP client: {e}"),
            fix: "check the TLS setup of this machine".into(),
        })?;
        let control_plane = Arc::new(control_plane);
        let keys = Arc::new(ContentKeys::new(
            control_plane.clone(),
            secrets.key_transport_key,
            &config.cache,
            redis.clone(),
            metrics.clone(),
        ));
        let drm = Drm::new(config, redis.clone(), &secrets.service_token)?;
        let invalidations = Arc::new(Invalidations {
            control_plane: control_plane.clone(),
            keys: keys.clone(),
            responses: drm.responses.clone(),
        });
        let service_token_digest = sha2::Sha256::digest(secrets.service_token.as_bytes()).into();
        Ok(Edge {
            service_token_digest,
            jwt: ViewerAuth::new(&config.jwt, &secrets.jwt_hs256_secret, metrics.clone())?,
            sessions: Sessions::new(config, &secrets.url_signing_key),
            revocations: Arc::new(Revocations::new(config).map_err(|e| ConfigError::Invalid {
                key: "redis.url",
                problem: format!("is not usable: {e}"),
                fix: "write e.g. \"redis://127.0.0.1:6379\", or \"\" for process-local revocation".into(),
            })?),
            cloudfront: cloudfront_verifier(config)?,
            cloudfront_signatures: VerifiedSignatures::new(metrics.clone()),
            denial_header: config.debug.denial_header,
            origin: Origin::from_config(&config.origin)?,
            segment_cache: SegmentCache::from_config(config)?,
            playlists: OriginPlaylists::new(&config.cache),
            cdn: CdnPull::new(&config.cdn.header, &secrets.cdn_secrets),
            segment_max_age_secs: config.cache.segment_max_age_secs,
            control_plane,
            keys,
            drm,
            redis,
            invalidations,
            metrics,
            public_base_url: config.public_base_url().to_string(),
            cors_allow_origin: Some(config.server.cors_allow_origin.clone())
                .filter(|origin| !origin.is_empty()),
            client_addresses: config.client_address_rule()?,
        })
    }
}

/// The CloudFront verifier with every public key `[cloudfront] public_keys` names; `None`
/// when it names none.
pub fn cloudfront_verifier(config: &EdgeConfig) -> Result<Option<CloudFrontVerifier>, ConfigError> {
    if config.cloudfront.public_keys.is_empty() {
        return Ok(None);
    }
    let mut verifier = CloudFrontVerifier::new();
    for (key_pair_id, path) in &config.cloudfront.public_keys {
        let pem = std::fs::read_to_string(path).map_err(|e| ConfigError::SecretFile {
            key: "cloudfront.public_keys",
            path: path.display().to_string(),
            cause: e.to_string(),
        })?;
        verifier
            .add_public_key_pem(key_pair_id, &pem)
            .map_err(|_| ConfigError::Invalid {
                key: "cloudfront.public_keys",
                problem: format!(
                    "{} ({key_pair_id}) is not an RSA or P-256 public key in PEM",
                    path.display()
                ),
                fix: "use the PEM public key uploaded to CloudFront for this Key-Pair-Id".into(),
            })?;
    }
    Ok(Some(verifier))
}

/// Seconds since the Unix epoch, the clock every token check uses.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
