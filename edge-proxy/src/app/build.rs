//! The one place the edge is assembled: the configuration is split into its sections, the
//! secrets are read ([`Secrets::load`]), and every part is built from its own section and the
//! secret bytes it needs, then wired into the HTTP layer's [`Edge`] and the background
//! [`Tasks`] and [`Listeners`].

use std::sync::Arc;

use sha2::Digest;

use playback::token::cloudfront::CloudFrontVerifier;

use super::invalidation::Invalidations;
use super::listeners::Listeners;
use super::secrets::Secrets;
use super::tasks::Tasks;
use crate::access::entitlements::Entitlements;
use crate::access::limits::{RateLimiter, Streams};
use crate::access::Access;
use crate::config::{CloudFrontConfig, ConfigError, DrmConfig, EdgeConfig, EventsSink};
use crate::control_plane::ControlPlane;
use crate::core::metrics::Metrics;
use crate::core::redis::RedisLink;
use crate::delivery::cache::playlists::OriginPlaylists;
use crate::delivery::cache::SegmentCache;
use crate::delivery::origin::Origin;
use crate::delivery::Delivery;
use crate::gate::admission::CloudFront;
use crate::gate::cdn::CdnPull;
use crate::gate::cloudfront_memo::VerifiedSignatures;
use crate::gate::revocation::Revocations;
use crate::gate::sessions::Sessions;
use crate::gate::viewer::ViewerAuth;
use crate::gate::Gate;
use crate::http::{Edge, Ops};
use crate::licensing::fairplay::FairPlay;
use crate::licensing::keys::ContentKeys;
use crate::licensing::provider::{PlayReady, Widevine};
use crate::licensing::responses::ResponseCache;
use crate::licensing::Licensing;
use crate::records::analytics::{Analytics, AnalyticsSink};
use crate::records::ledger::LicenseLedger;
use crate::records::Records;
use crate::transport::perimeter::Perimeter;

/// The edge and what runs beside it.
pub struct App {
    pub edge: Edge,
    pub tasks: Tasks,
    pub listeners: Listeners,
}

impl App {
    /// Reads the secrets `config` names and builds everything; a problem names its key.
    pub fn build(config: &EdgeConfig) -> Result<App, ConfigError> {
        let secrets = Secrets::load(config)?;
        App::from_parts(config, secrets)
    }

    /// Builds everything from a validated configuration and its secrets.
    pub fn from_parts(config: &EdgeConfig, secrets: Secrets) -> Result<App, ConfigError> {
        let metrics = Arc::new(Metrics::new());
        let redis = crate::core::redis::from_config(&config.redis)
            .map_err(|e| ConfigError::Invalid {
                key: "redis.url",
                problem: format!("is not usable: {e}"),
                fix: "write e.g. \"redis://127.0.0.1:6379\", or \"\" to run without Redis".into(),
            })?
            .map(Arc::new);
        let control_plane = Arc::new(
            ControlPlane::new(&config.control_plane, &secrets.service_token).map_err(|e| {
                ConfigError::Invalid {
                    key: "control_plane.url",
                    problem: format!("cannot build an HTTP client: {e}"),
                    fix: "check the TLS setup of this machine".into(),
                }
            })?,
        );

        let revocations = Arc::new(Revocations::new(&config.revocation, redis.clone()));
        let gate = Gate {
            viewers: ViewerAuth::new(&config.jwt, secrets.jwt_keys.clone(), metrics.clone())?,
            sessions: Sessions::new(
                &config.signed_urls,
                &config.sessions,
                &config.cookies,
                &secrets.url_signing_key,
            ),
            revocations: revocations.clone(),
            cloudfront: cloudfront(
                &config.cloudfront,
                &secrets.cloudfront_keys,
                config.server.public_base_url(),
                metrics.clone(),
            )?,
            cdn: CdnPull::new(&config.cdn.header, &secrets.cdn_secrets),
        };

        let entitlements = Arc::new(Entitlements::new(
            control_plane.clone(),
            &config.cache,
            redis.clone(),
            metrics.clone(),
        ));
        let streams = Arc::new(Streams::new(config.drm.stream_timeout_secs, redis.clone()));
        let access = Access {
            entitlements: entitlements.clone(),
            rate: RateLimiter::new(config.drm.rate_limit_per_sec, redis.clone()),
            streams: streams.clone(),
            require_device_id: config.drm.require_device_id,
        };

        let s3_credentials = secrets
            .s3
            .map(|s3| (s3.secret_access_key, s3.session_token));
        let origin = Origin::from_config(&config.origin, s3_credentials)?;
        let origin_health = origin.health_service();
        let delivery = Delivery {
            origin,
            segment_cache: SegmentCache::from_config(&config.cache)?,
            playlists: OriginPlaylists::new(&config.cache),
            segment_max_age_secs: config.cache.segment_max_age_secs,
        };

        let keys = Arc::new(ContentKeys::new(
            control_plane.clone(),
            secrets.key_transport_key,
            &config.cache,
            redis.clone(),
            metrics.clone(),
        ));
        let responses = Arc::new(ResponseCache::new(
            config.drm.response_ttl_secs,
            config.cache.max_entries,
        ));
        let licensing = Licensing {
            keys: keys.clone(),
            responses: responses.clone(),
            fairplay: match &secrets.fairplay {
                Some(fps) => Some(FairPlay::new(
                    &fps.certificate_der,
                    &fps.private_key_pem,
                    fps.ask,
                )?),
                None => None,
            },
            widevine: match &secrets.widevine {
                Some((key, iv)) => Some(Widevine::new(&config.drm.widevine, key, iv)?),
                None => None,
            },
            playready: match &secrets.playready_custom_data_key {
                Some(key) => Some(PlayReady::new(&config.drm.playready, key.clone())?),
                None => None,
            },
            max_request_bytes: config.drm.max_request_bytes,
        };

        let ledger = Arc::new(
            LicenseLedger::open(&config.drm.license_outbox_dir, control_plane.clone()).map_err(
                |e| ConfigError::Invalid {
                    key: "drm.license_outbox_dir",
                    problem: format!(
                        "{} cannot be used: {e}",
                        config.drm.license_outbox_dir.display()
                    ),
                    fix: "point it at a writable directory on persistent storage".into(),
                },
            )?,
        );
        let analytics = Analytics::new(events_sink(&config.drm, &redis), edge_id());
        let records = Records {
            ledger: ledger.clone(),
            analytics: analytics.clone(),
            metrics: metrics.clone(),
        };

        let perimeter = Arc::new(Perimeter::new(&config.route_groups)?);
        let client_addresses = config.server.client_address_rule()?;
        let listeners = Listeners::build(
            config,
            perimeter.clone(),
            client_addresses.clone(),
            metrics.clone(),
        )?;
        let ops = Ops {
            metrics,
            redis: redis.clone(),
            control_plane,
            public_base_url: config.server.public_base_url().to_string(),
            cors_allow_origin: Some(config.server.cors_allow_origin.clone())
                .filter(|origin| !origin.is_empty()),
            client_addresses,
            perimeter,
            hsts: (config.tls.hsts_max_age_secs > 0)
                .then(|| format!("max-age={}", config.tls.hsts_max_age_secs)),
            draining: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            denial_header: config.debug.denial_header,
            service_token_digest: sha2::Sha256::digest(secrets.service_token.as_bytes()).into(),
        };
        let tasks = Tasks {
            revocations,
            streams,
            analytics,
            ledger,
            invalidations: Arc::new(Invalidations {
                entitlements,
                keys,
                responses,
            }),
            redis,
            origin_health,
        };
        Ok(App {
            edge: Edge {
                gate,
                access,
                delivery,
                licensing,
                records,
                ops,
            },
            tasks,
            listeners,
        })
    }
}

/// The CloudFront verifier for `[cloudfront] public_keys` (PEM text read by
/// [`Secrets::load`]); `None` when it names none.
pub fn cloudfront_verifier(
    keys: &[(String, String, String)],
) -> Result<Option<CloudFrontVerifier>, ConfigError> {
    if keys.is_empty() {
        return Ok(None);
    }
    let mut verifier = CloudFrontVerifier::new();
    for (key_pair_id, pem, path) in keys {
        verifier
            .add_public_key_pem(key_pair_id, pem)
            .map_err(|_| ConfigError::Invalid {
                key: "cloudfront.public_keys",
                problem: format!("{path} ({key_pair_id}) is not an RSA or P-256 public key in PEM"),
                fix: "use the PEM public key uploaded to CloudFront for this Key-Pair-Id".into(),
            })?;
    }
    Ok(Some(verifier))
}

/// CloudFront checking, when `[cloudfront]` names keys.
fn cloudfront(
    config: &CloudFrontConfig,
    keys: &[(String, String, String)],
    public_base_url: &str,
    metrics: Arc<Metrics>,
) -> Result<Option<CloudFront>, ConfigError> {
    debug_assert_eq!(config.public_keys.len(), keys.len());
    Ok(cloudfront_verifier(keys)?.map(|verifier| CloudFront {
        verifier,
        signatures: VerifiedSignatures::new(metrics),
        public_base_url: public_base_url.to_string(),
    }))
}

/// Where analytics events go: a Redis Stream or the JSON-lines file (`drm.events`).
fn events_sink(drm: &DrmConfig, redis: &Option<Arc<RedisLink>>) -> AnalyticsSink {
    match (drm.events, redis) {
        (EventsSink::Off, _) => AnalyticsSink::Off,
        (EventsSink::Redis | EventsSink::Auto, Some(link)) => AnalyticsSink::Redis {
            link: link.clone(),
            stream_key: link.key(&drm.events_stream),
            max_len: drm.events_max_len,
        },
        (EventsSink::Auto | EventsSink::File, _) | (EventsSink::Redis, None) => {
            AnalyticsSink::File(drm.events_file.clone())
        }
    }
}

/// This process's name in events (`edgeId`): the machine's name and the process id.
fn edge_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "edge".into());
    format!("{host}-{}", std::process::id())
}
