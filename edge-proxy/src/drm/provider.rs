//! Widevine and PlayReady: the edge enforces entitlement and limits, then forwards the CDM's
//! challenge to the configured license service and relays its license.
//!
//! - Widevine (`POST /drm/widevine/{videoId}`): the challenge is wrapped in a license-proxy
//!   request signed with the provider's AES key and IV, with `policy_overrides` from the
//!   viewer's terms ([`playback::license::widevine`]); the service's JSON answer is unwrapped
//!   and the raw license bytes returned to the CDM.
//! - PlayReady (`POST /drm/playready/{videoId}`): the SOAP challenge is forwarded unchanged (the
//!   CDM signed it) with `SOAPAction` and signed custom data in the `customdata` query
//!   parameter ([`playback::license::playready`]); the SOAP answer is relayed.
//!
//! Failures map to client errors: a challenge the service calls malformed is 400
//! (`invalid_license_challenge`); a service that fails, refuses our credentials or answers
//! nonsense is 502 with the service's code (`signature_failed`, `provider_error`, ...); one
//! that cannot be reached is 502 `drm_provider_unavailable` or `drm_provider_timeout`. The
//! license is recorded only once the service has issued it.

use bytes::Bytes;
use pingora::http::RequestHeader;
use playback::license::playready::{self, CustomDataClaims};
use playback::license::widevine::{self, WidevineCredentials};

use super::grant::{admit_viewer, issue, new_license_id, Grant, Issued};
use super::upstream::ProviderUpstream;
use crate::config::{read_secret, ConfigError, PlayReadyConfig, WidevineConfig};
use crate::edge::Edge;
use crate::errors::EdgeError;
use crate::reply::Reply;
use crate::serve::Subject;

/// `SOAPAction` of a PlayReady license acquisition.
const PLAYREADY_SOAP_ACTION: &str =
    "\"http://schemas.microsoft.com/DRM/2007/03/protocols/AcquireLicense\"";

/// The Widevine license service and the provider's signing credentials.
pub struct Widevine {
    credentials: WidevineCredentials,
    upstream: ProviderUpstream,
}

/// The PlayReady license server and the key signing its custom data.
pub struct PlayReady {
    custom_data_key: Vec<u8>,
    upstream: ProviderUpstream,
}

impl Widevine {
    /// Exchanges with the service on new and on pooled connections.
    pub fn connection_counts(&self) -> (u64, u64) {
        self.upstream.connection_counts()
    }

    /// `None` when `drm.widevine.url` is empty.
    pub fn from_config(config: &WidevineConfig) -> Result<Option<Widevine>, ConfigError> {
        if config.url.is_empty() {
            return Ok(None);
        }
        let key = read_hex_file("drm.widevine.signing_key_file", &config.signing_key_file)?;
        let iv = read_hex_file("drm.widevine.signing_iv_file", &config.signing_iv_file)?;
        let credentials =
            WidevineCredentials::from_hex(&config.provider, &key, &iv).map_err(|_| {
                ConfigError::Invalid {
                    key: "drm.widevine.signing_key_file",
                    problem: "the signing key must be 64 hex characters and the IV 32".into(),
                    fix: "use the AES key and IV your Widevine provider issued, hex-encoded".into(),
                }
            })?;
        Ok(Some(Widevine {
            credentials,
            upstream: ProviderUpstream::new("drm.widevine.url", &config.url, config.timeout_ms)?,
        }))
    }
}

impl PlayReady {
    /// Exchanges with the server on new and on pooled connections.
    pub fn connection_counts(&self) -> (u64, u64) {
        self.upstream.connection_counts()
    }

    /// `None` when `drm.playready.url` is empty.
    pub fn from_config(config: &PlayReadyConfig) -> Result<Option<PlayReady>, ConfigError> {
        if config.url.is_empty() {
            return Ok(None);
        }
        Ok(Some(PlayReady {
            custom_data_key: read_secret(
                "drm.playready.custom_data_key_file",
                &config.custom_data_key_file,
            )?,
            upstream: ProviderUpstream::new("drm.playready.url", &config.url, config.timeout_ms)?,
        }))
    }
}

/// A license system served through a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderSystem {
    Widevine,
    PlayReady,
}

/// `POST /drm/widevine/{videoId}` and `POST /drm/playready/{videoId}`.
pub async fn serve(
    edge: &Edge,
    system: ProviderSystem,
    req: &RequestHeader,
    video_id: &str,
    body: &[u8],
    subject: &mut Subject,
) -> Result<Reply, EdgeError> {
    let (configured, name, content_type) = match system {
        ProviderSystem::Widevine => (
            edge.drm.widevine.is_some(),
            "Widevine",
            "application/octet-stream",
        ),
        ProviderSystem::PlayReady => (
            edge.drm.playready.is_some(),
            "PlayReady",
            "text/xml; charset=utf-8",
        ),
    };
    if !configured {
        return Err(EdgeError::DrmSystemUnavailable(name));
    }
    let grant = admit_viewer(edge, req, video_id, subject).await?;
    let (license, issued) = match system {
        ProviderSystem::Widevine => widevine_license(edge, &grant, body).await?,
        ProviderSystem::PlayReady => playready_license(edge, &grant, body).await?,
    };
    subject.license_id = Some(issued.license_id);
    Ok(Reply::bytes(200, content_type, license).header("cache-control", "no-store, private"))
}

/// Forwards a Widevine challenge for an admitted viewer; returns the raw license.
pub async fn widevine_license(
    edge: &Edge,
    grant: &Grant,
    challenge: &[u8],
) -> Result<(Bytes, Issued), EdgeError> {
    let service = edge
        .drm
        .widevine
        .as_ref()
        .ok_or(EdgeError::DrmSystemUnavailable("Widevine"))?;
    let request = widevine::build_proxy_request(
        &service.credentials,
        challenge,
        grant.video_id.as_bytes(),
        &grant.terms.license,
    )
    .map_err(|e| EdgeError::BadLicenseRequest {
        code: e.code(),
        detail: e.to_string(),
    })?;
    let response = service
        .upstream
        .post(
            None,
            &[("content-type", "application/json")],
            Bytes::from(request),
        )
        .await?;
    if response.status != 200 {
        tracing::warn!(
            status = response.status,
            "Widevine license service answered with an error status"
        );
        return Err(EdgeError::ProviderFailed("drm_provider_error"));
    }
    let license = widevine::parse_proxy_response(&response.body).map_err(|e| {
        tracing::warn!(
            code = e.code(),
            "Widevine license service refused the request"
        );
        if e.is_client_fault() {
            EdgeError::ProviderRejected(e.code())
        } else {
            EdgeError::ProviderFailed(e.code())
        }
    })?;
    let issued = issue(edge, grant, "widevine", None, new_license_id())?;
    Ok((Bytes::from(license), issued))
}

/// Forwards a PlayReady challenge for an admitted viewer; returns the SOAP answer.
pub async fn playready_license(
    edge: &Edge,
    grant: &Grant,
    challenge: &[u8],
) -> Result<(Bytes, Issued), EdgeError> {
    let service = edge
        .drm
        .playready
        .as_ref()
        .ok_or(EdgeError::DrmSystemUnavailable("PlayReady"))?;
    playready::check_challenge(challenge).map_err(|e| EdgeError::BadLicenseRequest {
        code: e.code(),
        detail: e.to_string(),
    })?;
    let license_id = new_license_id();
    let now = crate::edge::now_unix();
    let claims = CustomDataClaims {
        user_id: grant.user_id.clone(),
        video_id: grant.video_id.clone(),
        license_id: license_id.clone(),
        license_type: grant.terms.license.kind,
        duration_secs: grant.terms.license.duration_secs,
        expires_at: grant.terms.license.expires_at(now),
    };
    let custom_data = playready::custom_data(&service.custom_data_key, &claims);
    let query = format!("customdata={custom_data}");
    let response = service
        .upstream
        .post(
            Some(&query),
            &[
                ("content-type", "text/xml; charset=utf-8"),
                ("soapaction", PLAYREADY_SOAP_ACTION),
            ],
            Bytes::copy_from_slice(challenge),
        )
        .await?;
    playready::classify_response(response.status, &response.body).map_err(|e| {
        tracing::warn!(
            status = response.status,
            code = e.code(),
            "PlayReady license server refused the request"
        );
        if e.is_client_fault() {
            EdgeError::ProviderRejected(e.code())
        } else {
            EdgeError::ProviderFailed(e.code())
        }
    })?;
    let issued = issue(edge, grant, "playready", None, license_id)?;
    Ok((response.body, issued))
}

/// Reads a secret file holding hex text (whitespace trimmed).
fn read_hex_file(key: &'static str, path: &std::path::Path) -> Result<String, ConfigError> {
    let bytes = read_secret(key, path)?;
    String::from_utf8(bytes)
        .map(|text| text.trim().to_string())
        .map_err(|_| ConfigError::Invalid {
            key,
            problem: format!("{} is not hex text", path.display()),
            fix: "write the value as hex characters".into(),
        })
}
