//! The control plane's internal API, as the edge sees it: the one client for entitlement
//! answers, transport-wrapped content keys and license records (`POST
//! /internal/v1/licenses`), and the control plane's health.
//!
//! Calls carry `Authorization: Bearer <service token>` and a timeout
//! (`control_plane.timeout_ms`). Nothing is cached here: entitlements are cached by
//! `access::entitlements`, plaintext keys by `licensing::keys`, and records wait in the
//! durable outbox of `records::ledger`. Failures are never cached. Log lines name the endpoint
//! and the failure, never the token.

use std::time::Duration;

use playback::license::policy::{LicenseKind, LicensePolicy};
use playback::Reason;
use serde::{Deserialize, Serialize};

use crate::config::ControlPlaneConfig;

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

/// One issued license, as `POST /internal/v1/licenses` takes it.
///
/// Fields are kept as the edge has them (strings); the control plane validates them, and a
/// record it refuses never blocks the others (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseRecord {
    /// A UUID, the `media_licenses` primary key.
    pub id: String,
    /// A UUID.
    pub video_id: String,
    pub user_id: String,
    /// A UUID (`content_keys.id`), when the license carries one identified key.
    pub key_id: Option<String>,
    /// `clearkey`, `aes128`, `fairplay`, `widevine` or `playready`.
    pub drm_system: String,
    /// `rental` or `persistent` ([`playback::license::policy::LicenseKind::as_str`]).
    pub license_type: String,
    /// Unix seconds.
    pub issued_at: u64,
    /// Unix seconds.
    pub expires_at: u64,
    pub device_id: Option<String>,
}

/// The control plane's answer to a batch.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LicenseBatchAnswer {
    pub recorded: u64,
    pub duplicates: u64,
    pub rejected: Vec<Rejection>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Rejection {
    pub id: String,
    pub reason: String,
}

impl Rejection {
    /// True when this rejection names `record`.
    pub fn is(&self, record: &LicenseRecord) -> bool {
        self.id.eq_ignore_ascii_case(&record.id)
    }
}

/// Why a POST did not go through.
pub enum PostFailure {
    /// Try the same records again later.
    Retry(String),
    /// The control plane refuses this batch as such (400, 413, 422).
    Unacceptable(u16),
}

/// Client for the internal API.
pub struct ControlPlane {
    base_url: String,
    bearer: String,
    http: reqwest::Client,
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

impl ControlPlane {
    /// A client for `config.url`, authenticating with `service_token`.
    pub fn new(
        config: &ControlPlaneConfig,
        service_token: &str,
    ) -> Result<ControlPlane, reqwest::Error> {
        let timeout = Duration::from_millis(config.timeout_ms);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(ControlPlane {
            base_url: config.url.trim_end_matches('/').to_string(),
            bearer: format!("Bearer {service_token}"),
            http,
        })
    }

    /// Whether `user_id` may play `video_id`, asked now.
    pub async fn entitlement(
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

    /// The transport-wrapped content key `key_id` of `video_id`.
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

    /// Sends a batch of license records (idempotent by id on the control plane's side).
    pub async fn post_licenses(
        &self,
        records: &[&LicenseRecord],
    ) -> Result<LicenseBatchAnswer, PostFailure> {
        #[derive(Serialize)]
        struct Body<'a> {
            licenses: Vec<&'a LicenseRecord>,
        }
        let body = Body {
            licenses: records.to_vec(),
        };
        let response = self
            .http
            .post(format!("{}/internal/v1/licenses", self.base_url))
            .header(http::header::AUTHORIZATION, &self.bearer)
            .json(&body)
            .send()
            .await
            .map_err(|e| PostFailure::Retry(describe(&e).into()))?;
        let status = response.status().as_u16();
        match status {
            200 => {}
            400 | 413 | 422 => return Err(PostFailure::Unacceptable(status)),
            401 | 403 => {
                tracing::error!(
                    status,
                    "control plane refused the service token for license records; check \
                     control_plane.service_token_file"
                );
                return Err(PostFailure::Retry(format!("status {status}")));
            }
            _ => return Err(PostFailure::Retry(format!("status {status}"))),
        }
        match response.json::<LicenseBatchAnswer>().await {
            Ok(answer) => Ok(answer),
            Err(e) => {
                // The batch was taken (200); an unreadable summary only loses the rejections.
                tracing::warn!(cause = describe(&e), "unreadable answer to license records");
                Ok(LicenseBatchAnswer::default())
            }
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
