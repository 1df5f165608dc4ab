//! The control plane's internal API, as the edge sees it: entitlement answers (cached) and
//! wrapped content keys.
//!
//! Calls carry `Authorization: Bearer <service token>` and a timeout
//! (`control_plane.timeout_ms`). Entitlements are cached in moka per (user, video): allowed
//! answers for `cache.entitlement_ttl_secs`, refusals for the shorter
//! `cache.negative_ttl_secs` so a fresh grant is seen quickly. Failures to reach the control
//! plane are never cached. Log lines name the endpoint and the failure, never the token.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::future::Cache;
use moka::Expiry;
use playback::Reason;
use serde::Deserialize;

use crate::config::{CacheConfig, ControlPlaneConfig};
use crate::metrics::Metrics;

/// The control plane's answer to "may this user play this video?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entitlement {
    Allowed,
    Denied(Reason),
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
    metrics: Arc<Metrics>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EntitlementBody {
    allowed: bool,
    reason: Option<String>,
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
            Entitlement::Allowed => self.allowed,
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
        metrics: Arc<Metrics>,
    ) -> Result<ControlPlane, reqwest::Error> {
        let timeout = Duration::from_millis(config.timeout_ms);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let entitlements = Cache::builder()
            .max_capacity(cache.max_entries)
            .expire_after(EntitlementExpiry {
                allowed: Duration::from_secs(cache.entitlement_ttl_secs),
                denied: Duration::from_secs(cache.negative_ttl_secs),
            })
            .build();
        Ok(ControlPlane {
            base_url: config.url.trim_end_matches('/').to_string(),
            bearer: format!("Bearer {service_token}"),
            http,
            entitlements,
            metrics,
        })
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
        let answer = self.fetch_entitlement(user_id, video_id).await?;
        self.entitlements.insert(key, answer).await;
        Ok(answer)
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
            return Ok(Entitlement::Allowed);
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
