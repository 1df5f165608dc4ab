//! Widevine and PlayReady: for a viewer already admitted (entitlement, limits), the CDM's
//! challenge is forwarded to the configured license service and its license relayed.
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
//! license is recorded (by the caller) only once the service has issued it.

use bytes::Bytes;
use playback::license::playready::{self, CustomDataClaims};
use playback::license::widevine::{self, WidevineCredentials};

use super::upstream::ProviderUpstream;
use crate::access::Grant;
use crate::config::{ConfigError, PlayReadyConfig, WidevineConfig};
use crate::core::errors::EdgeError;

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
    /// The service `[drm.widevine]` names, signing with the provider's key and IV (hex text,
    /// read from their files by the application's builder).
    pub fn new(
        config: &WidevineConfig,
        key_hex: &str,
        iv_hex: &str,
    ) -> Result<Widevine, ConfigError> {
        let credentials = WidevineCredentials::from_hex(&config.provider, key_hex, iv_hex)
            .map_err(|_| ConfigError::Invalid {
                key: "drm.widevine.signing_key_file",
                problem: "the signing key must be 64 hex characters and the IV 32".into(),
                fix: "use the AES key and IV your Widevine provider issued, hex-encoded".into(),
            })?;
        Ok(Widevine {
            credentials,
            upstream: ProviderUpstream::new("drm.widevine.url", &config.url, config.timeout_ms)?,
        })
    }

    /// Exchanges with the service on new and on pooled connections.
    pub fn connection_counts(&self) -> (u64, u64) {
        self.upstream.connection_counts()
    }

    /// Forwards a Widevine challenge for an admitted viewer; returns the raw license.
    pub async fn license(&self, grant: &Grant, challenge: &[u8]) -> Result<Bytes, EdgeError> {
        let request = widevine::build_proxy_request(
            &self.credentials,
            challenge,
            grant.video_id.as_bytes(),
            &grant.terms.license,
        )
        .map_err(|e| EdgeError::BadLicenseRequest {
            code: e.code(),
            detail: e.to_string(),
        })?;
        let response = self
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
        Ok(Bytes::from(license))
    }
}

impl PlayReady {
    /// The server `[drm.playready]` names, with the custom-data key (read from its file by the
    /// application's builder).
    pub fn new(
        config: &PlayReadyConfig,
        custom_data_key: Vec<u8>,
    ) -> Result<PlayReady, ConfigError> {
        Ok(PlayReady {
            custom_data_key,
            upstream: ProviderUpstream::new("drm.playready.url", &config.url, config.timeout_ms)?,
        })
    }

    /// Exchanges with the server on new and on pooled connections.
    pub fn connection_counts(&self) -> (u64, u64) {
        self.upstream.connection_counts()
    }

    /// Forwards a PlayReady challenge for an admitted viewer, the terms and `license_id` signed
    /// into its custom data at `now_unix`; returns the SOAP answer.
    pub async fn license(
        &self,
        grant: &Grant,
        challenge: &[u8],
        license_id: &str,
        now_unix: u64,
    ) -> Result<Bytes, EdgeError> {
        playready::check_challenge(challenge).map_err(|e| EdgeError::BadLicenseRequest {
            code: e.code(),
            detail: e.to_string(),
        })?;
        let claims = CustomDataClaims {
            user_id: grant.user_id.clone(),
            video_id: grant.video_id.clone(),
            license_id: license_id.to_string(),
            license_type: grant.terms.license.kind,
            duration_secs: grant.terms.license.duration_secs,
            expires_at: grant.terms.license.expires_at(now_unix),
        };
        let custom_data = playready::custom_data(&self.custom_data_key, &claims);
        let query = format!("customdata={custom_data}");
        let response = self
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
        Ok(response.body)
    }
}
