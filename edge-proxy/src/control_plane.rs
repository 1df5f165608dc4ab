//! The control plane's internal API, as the edge sees it: entitlement answers (cached) and
//! wrapped content keys.
//!
//! Calls carry `Authorization: Bearer <service token>` and a timeout
//! (`control_plane.timeout_ms`). Entitlements are cached per (user, video) in two layers:
//! moka in process (L1) and, with `[redis]`, a hash `{prefix}l2:ent:{userId}` shared by every
//! edge (L2, field = video id, value = the answer and its expiry). Allowed answers live
//! `cache.entitlement_ttl_secs`, refusals the shorter `cache.negative_ttl_secs` so a fresh grant
//! is seen quickly. The control plane deletes the L2 hash and announces an invalidation when a
//! subscription changes; [`crate::invalidation`] then drops the L1 entries here. Failures to
//! reach the control plane are never cached. Log lines name the endpoint and the failure, never
//! the token.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::future::Cache;
use moka::Expiry;
use playback::license::policy::{LicenseKind, LicensePolicy};
use playback::Reason;
use serde::{Deserialize, Serialize};

use crate::config::{CacheConfig, ControlPlaneConfig};
use crate::edge::now_unix;
use crate::metrics::Metrics;
use crate::redis_link::RedisLink;

/// The control plane's answer to "may this user play this video?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entitlement {
    Allowed(Terms),
    Denied(Reason),
}

/// What an allowed viewer's tier grants on a title.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Terms {
    /// Concurrent streams the viewer may have open; 0 = no limit.
    pub max_streams: u32,
    pub license: LicensePolicy,
}

impl Terms {
    /// Terms when the control plane names none (an older control plane): no stream limit and
    /// the default one-hour rental.
    pub const UNSPECIFIED: Terms = Terms {
        max_streams: 0,
        license: LicensePolicy::DEFAULT,
    };
}

/// An entitlement as kept in the shared L2 hash.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SharedEntitlement {
    terms: Option<Terms>,
    reason: Option<String>,
    /// Unix time after which the entry is stale.
    until: u64,
}

/// The control plane's answer to "what is this content key?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WrappedKey {
    /// The key, wrapped for transport (`v1.<...>`).
    Found(String),
    NotFound,
    Revoked,
}

/// The control plane could not be asked, or answered outside the contract.
#[derive(Debug, Clone, thiserror::Error)]
#[error("control plane unavailable: {0}")]
pub struct Unavailable(pub String);

/// Client for the internal API.
pub struct ControlPlane {
    base_url: String,
    bearer: String,
    http: reqwest::Client,
    entitlements: Cache<(String, String), Entitlement>,
    shared: Option<Arc<RedisLink>>,
    allowed_ttl: Duration,
    denied_ttl: Duration,
    metrics: Arc<Metrics>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EntitlementBody {
    allowed: bool,
    reason: Option<String>,
    max_concurrent_streams: Option<u32>,
    license_duration_secs: Option<u64>,
    license_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyBody {
    wrapped_key: String,
}

/// Per-entry lifetimes: allowed answers live longer than refusals.
struct EntitlementExpiry {
    allowed: Duration,
    denied: Duration,
}

impl Expiry<(String, String), Entitlement> for EntitlementExpiry {
    fn expire_after_create(
        &self,
        _key: &(String, String),
        value: &Entitlement,
        _now: Instant,
    ) -> Option<Duration> {
        Some(match value {
            Entitlement::Allowed(_) => self.allowed,
            Entitlement::Denied(_) => self.denied,
        })
    }
}

impl ControlPlane {
    /// A client for `config.url`, authenticating with `service_token`.
    pub fn new(
        config: &ControlPlaneConfig,
        cache: &CacheConfig,
        service_token: &str,
        shared: Option<Arc<RedisLink>>,
        metrics: Arc<Metrics>,
    ) -> Result<ControlPlane, reqwest::Error> {
        let timeout = Duration::from_millis(config.timeout_ms);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let allowed_ttl = Duration::from_secs(cache.entitlement_ttl_secs);
        let denied_ttl = Duration::from_secs(cache.negative_ttl_secs);
        let entitlements = Cache::builder()
            .max_capacity(cache.max_entries)
            .expire_after(EntitlementExpiry {
                allowed: allowed_ttl,
                denied: denied_ttl,
            })
            .support_invalidation_closures()
            .build();
        Ok(ControlPlane {
            base_url: config.url.trim_end_matches('/').to_string(),
            bearer: format!("Bearer {service_token}"),
            http,
            entitlements,
            shared,
            allowed_ttl,
            denied_ttl,
            metrics,
        })
    }

    /// Drops cached answers for `user_id` (one title, or all of them) from L1.
    pub fn forget_entitlements(&self, user_id: &str, video_id: Option<&str>) {
        match video_id {
            Some(video) => {
                let key = (user_id.to_string(), video.to_string());
                self.entitlements
                    .invalidate_entries_if(move |k, _| *k == key)
            }
            None => {
                let user = user_id.to_string();
                self.entitlements
                    .invalidate_entries_if(move |k, _| k.0 == user)
            }
        }
        .map(|_| ())
        .unwrap_or_else(|e| tracing::error!(error = %e, "could not drop cached entitlements"));
    }

    /// Drops every cached answer from L1 (after missing invalidations while Redis was away).
    pub fn forget_all_entitlements(&self) {
        self.entitlements.invalidate_all();
    }

    /// Whether `user_id` may play `video_id`, from the cache or the control plane.
    pub async fn entitlement(
        &self,
        user_id: &str,
        video_id: &str,
    ) -> Result<Entitlement, Unavailable> {
        let key = (user_id.to_string(), video_id.to_string());
        if let Some(hit) = self.entitlements.get(&key).await {
            self.metrics.cache_lookup("entitlement", true);
            return Ok(hit);
        }
        self.metrics.cache_lookup("entitlement", false);
        if let Some(hit) = self.shared_entitlement(user_id, video_id).await {
            self.entitlements.insert(key, hit).await;
            return Ok(hit);
        }
        let answer = self.fetch_entitlement(user_id, video_id).await?;
        self.entitlements.insert(key, answer).await;
        self.share_entitlement(user_id, video_id, answer);
        Ok(answer)
    }

    /// The L2 answer, when Redis has a fresh one.
    async fn shared_entitlement(&self, user_id: &str, video_id: &str) -> Option<Entitlement> {
        let link = self.shared.as_ref()?;
        let hash = link.key(&format!("l2:ent:{user_id}"));
        let field = video_id.to_string();
        let raw: Option<String> = link
            .run("entitlement l2", |mut c| async move {
                redis::cmd("HGET")
                    .arg(hash)
                    .arg(field)
                    .query_async(&mut c)
                    .await
            })
            .await
            .ok()
            .flatten();
        let entry = raw.and_then(|raw| serde_json::from_str::<SharedEntitlement>(&raw).ok());
        let answer = match entry {
            Some(entry) if entry.until > now_unix() => match (entry.terms, entry.reason) {
                (Some(terms), _) => Some(Entitlement::Allowed(terms)),
                (None, Some(code)) => Reason::from_code(&code).map(Entitlement::Denied),
                (None, None) => None,
            },
            _ => None,
        };
        self.metrics
            .cache_lookup("entitlement_l2", answer.is_some());
        answer
    }

    /// Writes `answer` to L2 in the background (the response does not wait for Redis).
    fn share_entitlement(&self, user_id: &str, video_id: &str, answer: Entitlement) {
        let Some(link) = self.shared.clone() else {
            return;
        };
        let ttl = match answer {
            Entitlement::Allowed(_) => self.allowed_ttl,
            Entitlement::Denied(_) => self.denied_ttl,
        };
        let entry = match answer {
            Entitlement::Allowed(terms) => SharedEntitlement {
                terms: Some(terms),
                reason: None,
                until: now_unix() + ttl.as_secs(),
            },
            Entitlement::Denied(reason) => SharedEntitlement {
                terms: None,
                reason: Some(reason.code().to_string()),
                until: now_unix() + ttl.as_secs(),
            },
        };
        let Ok(value) = serde_json::to_string(&entry) else {
            return;
        };
        let hash = link.key(&format!("l2:ent:{user_id}"));
        let field = video_id.to_string();
        // The hash outlives its longest entry; each entry carries its own expiry.
        let hash_ttl = self.allowed_ttl.max(self.denied_ttl).as_secs().max(1);
        tokio::spawn(async move {
            let _ = link
                .run("entitlement l2", |mut c| async move {
                    redis::pipe()
                        .hset(&hash, field, value)
                        .ignore()
                        .expire(&hash, hash_ttl as i64)
                        .ignore()
                        .query_async::<()>(&mut c)
                        .await
                })
                .await;
        });
    }

    async fn fetch_entitlement(
        &self,
        user_id: &str,
        video_id: &str,
    ) -> Result<Entitlement, Unavailable> {
        let url = format!("{}/internal/v1/entitlements/{video_id}", self.base_url);
        let response = self
            .http
            .get(url)
            .query(&[("userId", user_id)])
            .header(http::header::AUTHORIZATION, &self.bearer)
            .send()
            .await
            .map_err(|e| unavailable("entitlements", &e))?;
        match response.status().as_u16() {
            200 => {}
            404 => return Ok(Entitlement::Denied(Reason::NotFound)),
            status => return Err(unexpected("entitlements", status)),
        }
        let body: EntitlementBody = response
            .json()
            .await
            .map_err(|e| unavailable("entitlements", &e))?;
        if body.allowed {
            let license = LicensePolicy {
                kind: body
                    .license_type
                    .as_deref()
                    .and_then(LicenseKind::parse)
                    .unwrap_or(LicensePolicy::DEFAULT.kind),
                duration_secs: body
                    .license_duration_secs
                    .filter(|secs| *secs > 0)
                    .unwrap_or(LicensePolicy::DEFAULT.duration_secs),
            };
            return Ok(Entitlement::Allowed(Terms {
                max_streams: body.max_concurrent_streams.unwrap_or(0),
                license,
            }));
        }
        let reason = body
            .reason
            .as_deref()
            .and_then(Reason::from_code)
            .unwrap_or(Reason::NotEntitled);
        Ok(Entitlement::Denied(reason))
    }

    /// The transport-wrapped content key `key_id` of `video_id`. Never cached here: the
    /// plaintext cache in [`crate::keys`] sits in front of this.
    pub async fn wrapped_key(
        &self,
        video_id: &str,
        key_id: &str,
    ) -> Result<WrappedKey, Unavailable> {
        let url = format!(
            "{}/internal/v1/videos/{video_id}/keys/{key_id}",
            self.base_url
        );
        let response = self
            .http
            .get(url)
            .header(http::header::AUTHORIZATION, &self.bearer)
            .send()
            .await
            .map_err(|e| unavailable("keys", &e))?;
        match response.status().as_u16() {
            200 => {}
            404 => return Ok(WrappedKey::NotFound),
            410 => return Ok(WrappedKey::Revoked),
            status => return Err(unexpected("keys", status)),
        }
        let body: KeyBody = response.json().await.map_err(|e| unavailable("keys", &e))?;
        Ok(WrappedKey::Found(body.wrapped_key))
    }

    /// `Ok` when `GET {url}/health` answers 200; otherwise a sentence naming the control plane.
    pub async fn check_healthy(&self) -> Result<(), String> {
        let url = format!("{}/health", self.base_url);
        match self.http.get(&url).send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!(
                "control plane at {} answered {} on /health",
                self.base_url,
                r.status().as_u16()
            )),
            Err(e) => Err(format!(
                "control plane at {} is unreachable ({})",
                self.base_url,
                describe(&e)
            )),
        }
    }
}

fn describe(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_decode() {
        "unexpected response body"
    } else {
        "request failed"
    }
}

fn unavailable(endpoint: &str, e: &reqwest::Error) -> Unavailable {
    let cause = describe(e);
    tracing::warn!(endpoint, cause, "control plane call failed");
    Unavailable(format!("{endpoint}: {cause}"))
}

fn unexpected(endpoint: &str, status: u16) -> Unavailable {
    if status == 401 || status == 403 {
        tracing::error!(
            endpoint,
            status,
            "control plane refused the service token; check control_plane.service_token_file"
        );
    } else {
        tracing::warn!(
            endpoint,
            status,
            "control plane answered with an unexpected status"
        );
    }
    Unavailable(format!("{endpoint}: status {status}"))
}
