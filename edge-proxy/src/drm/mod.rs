//! DRM at the edge: license and key requests answered from caches, with entitlement, limits,
//! events and license records.
//!
//! Every system follows one path ([`grant`]): viewer JWT -> revocation -> rate limit (per user,
//! across edges) -> entitlement and tier terms (L1 -> L2 -> control plane) -> device binding ->
//! stream admission (concurrent streams, across edges) -> the system's own work -> the license
//! is recorded in the durable outbox and a `LicenseIssued` event is emitted ([`grant::issue`]).
//!
//! - [`clearkey`]: `POST /drm/clearkey/{videoId}`, W3C ClearKey, answered from the key caches.
//! - [`fairplay`]: `GET /fps/certificate`, `POST /fps/license`, SPC -> CKC in process.
//! - [`provider`]: `POST /drm/widevine|playready/{videoId}`, forwarded to the license service
//!   over [`upstream`] (Pingora's pooled connections) after the same checks.
//! - [`generic`]: `POST /drm/license`, the spec's `{videoId, licenseRequest, drmSystem}`.
//! - [`streams`]: `DELETE /drm/streams/{streamId}`, a player's stop.
//! - [`responses`]: built ClearKey answers per (user, video, kids), in process only because they
//!   hold plaintext keys.
//!
//! The pure formats live in [`playback::license`]; limits, events and the outbox in
//! [`crate::limits`], [`crate::analytics`] and [`crate::license_ledger`].

pub mod clearkey;
pub mod fairplay;
pub mod generic;
pub mod grant;
pub mod provider;
pub mod responses;
pub mod streams;
pub mod upstream;

use std::sync::Arc;

use crate::analytics::{Analytics, AnalyticsSink};
use crate::config::{ConfigError, EdgeConfig, EventsSink};
use crate::license_ledger::LicenseLedger;
use crate::limits::rate::RateLimiter;
use crate::limits::streams::Streams;
use crate::redis_link::RedisLink;

/// Everything the license endpoints share; one per process.
pub struct Drm {
    pub rate: RateLimiter,
    pub streams: Arc<Streams>,
    pub analytics: Analytics,
    pub ledger: Arc<LicenseLedger>,
    pub responses: Arc<responses::ResponseCache>,
    pub fairplay: Option<fairplay::FairPlay>,
    pub widevine: Option<provider::Widevine>,
    pub playready: Option<provider::PlayReady>,
    pub require_device_id: bool,
    pub max_request_bytes: usize,
}

impl Drm {
    /// Builds the DRM state from `[drm]`, reading credential files; `service_token` authenticates
    /// the outbox's calls to the control plane.
    pub fn new(
        config: &EdgeConfig,
        redis: Option<Arc<RedisLink>>,
        service_token: &str,
    ) -> Result<Drm, ConfigError> {
        let drm = &config.drm;
        let sink = match (drm.events, &redis) {
            (EventsSink::Off, _) => AnalyticsSink::Off,
            (EventsSink::Redis | EventsSink::Auto, Some(link)) => AnalyticsSink::Redis {
                link: link.clone(),
                stream_key: link.key(&drm.events_stream),
                max_len: drm.events_max_len,
            },
            (EventsSink::Auto | EventsSink::File, _) | (EventsSink::Redis, None) => {
                AnalyticsSink::File(drm.events_file.clone())
            }
        };
        let edge_id = format!("{}-{}", hostname(), std::process::id());
        let ledger = LicenseLedger::open(
            &drm.license_outbox_dir,
            config.control_plane.url.trim_end_matches('/').to_string(),
            service_token.to_string(),
            std::time::Duration::from_millis(config.control_plane.timeout_ms),
        )
        .map_err(|e| ConfigError::Invalid {
            key: "drm.license_outbox_dir",
            problem: format!("{} cannot be used: {e}", drm.license_outbox_dir.display()),
            fix: "point it at a writable directory on persistent storage".into(),
        })?;
        Ok(Drm {
            rate: RateLimiter::new(drm.rate_limit_per_sec, redis.clone()),
            streams: Arc::new(Streams::new(drm.stream_timeout_secs, redis)),
            analytics: Analytics::new(sink, edge_id),
            ledger: Arc::new(ledger),
            responses: Arc::new(responses::ResponseCache::new(
                drm.response_ttl_secs,
                config.cache.max_entries,
            )),
            fairplay: fairplay::FairPlay::from_config(&drm.fairplay)?,
            widevine: provider::Widevine::from_config(&drm.widevine)?,
            playready: provider::PlayReady::from_config(&drm.playready)?,
            require_device_id: drm.require_device_id,
            max_request_bytes: drm.max_request_bytes,
        })
    }
}

/// This machine's name for event `edgeId`s (falls back to "edge").
fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "edge".into())
}
