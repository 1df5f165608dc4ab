//! `POST /drm/license`: the spec's generic license endpoint.
//!
//! Body: `{"videoId": "<uuid>", "licenseRequest": <CDM message>, "drmSystem": "clearkey" |
//! "fairplay" | "widevine" | "playready"}`. `licenseRequest` is the ClearKey JSON (an object,
//! or its text) for ClearKey and base64 of the CDM's bytes for the others. Without `drmSystem`
//! a JSON-object request is ClearKey; anything else must name its system.
//!
//! Answer: `{"licenseId", "drmSystem", "expiresAt" (RFC 3339), "license"}` where `license` is
//! the JWK set object for ClearKey and base64 of the license bytes otherwise. Each system runs
//! the same code as its own endpoint.

use base64::Engine;
use pingora::http::RequestHeader;
use playback::license::clearkey;
use serde::Deserialize;
use serde_json::{json, Value};

use super::grant::admit_viewer;
use super::{fairplay, provider};
use crate::edge::Edge;
use crate::errors::EdgeError;
use crate::reply::Reply;
use crate::route::is_video_id;
use crate::serve::manifest::rfc3339;
use crate::serve::Subject;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenericRequest {
    video_id: String,
    license_request: Value,
    drm_system: Option<String>,
}

pub async fn serve(
    edge: &Edge,
    req: &RequestHeader,
    body: &[u8],
    subject: &mut Subject,
) -> Result<Reply, EdgeError> {
    let request: GenericRequest = serde_json::from_slice(body).map_err(|e| {
        EdgeError::InvalidRequest(format!(
            "the body must be {{\"videoId\", \"licenseRequest\", \"drmSystem\"}} ({})",
            match e.classify() {
                serde_json::error::Category::Data => "a field is missing or has the wrong type",
                _ => "not JSON",
            }
        ))
    })?;
    if !is_video_id(&request.video_id) {
        return Err(EdgeError::InvalidRequest(
            "videoId must be a lowercase UUID".into(),
        ));
    }
    let video_id = request.video_id.as_str();
    subject.video_id = Some(video_id.to_string());
    let system = match (request.drm_system.as_deref(), &request.license_request) {
        (Some(system), _) => system,
        (None, Value::Object(_)) => "clearkey",
        (None, _) => {
            return Err(EdgeError::InvalidRequest(
                "name the drmSystem (clearkey, fairplay, widevine or playready)".into(),
            ))
        }
    };
    let (license, issued) = match system {
        "clearkey" => {
            let parsed = clearkey::parse_request_value(&request.license_request).map_err(|e| {
                EdgeError::BadLicenseRequest {
                    code: e.code(),
                    detail: e.message(),
                }
            })?;
            let grant = admit_viewer(edge, req, video_id, subject).await?;
            let (answer, issued) = super::clearkey::answer(edge, &grant, &parsed, subject).await?;
            let answer: Value = serde_json::from_slice(&answer).map_err(|_| EdgeError::Internal)?;
            (answer, issued)
        }
        "fairplay" | "widevine" | "playready" => {
            let message = cdm_bytes(&request.license_request)?;
            let grant = admit_viewer(edge, req, video_id, subject).await?;
            let (bytes, issued) = match system {
                "fairplay" => {
                    let (ckc, issued) = fairplay::ckc(edge, &grant, &message, subject).await?;
                    (bytes::Bytes::from(ckc), issued)
                }
                "widevine" => provider::widevine_license(edge, &grant, &message).await?,
                _ => provider::playready_license(edge, &grant, &message).await?,
            };
            let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
            (Value::String(encoded), issued)
        }
        other => {
            return Err(EdgeError::InvalidRequest(format!(
                "drmSystem {:?} is not one of clearkey, fairplay, widevine, playready",
                other.chars().take(32).collect::<String>()
            )))
        }
    };
    subject.license_id = Some(issued.license_id.clone());
    Ok(Reply::json(
        200,
        &json!({
            "licenseId": issued.license_id,
            "drmSystem": system,
            "expiresAt": rfc3339(issued.expires_at),
            "license": license,
        }),
    )
    .header("cache-control", "no-store, private"))
}

/// A CDM message given as base64 (standard or URL-safe alphabet, padding optional).
fn cdm_bytes(value: &Value) -> Result<Vec<u8>, EdgeError> {
    let invalid = || EdgeError::BadLicenseRequest {
        code: "invalid_license_request",
        detail: "licenseRequest must be the CDM message in base64".into(),
    };
    let text = value.as_str().ok_or_else(invalid)?.trim();
    let engines = [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        &base64::engine::general_purpose::URL_SAFE,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    engines
        .iter()
        .find_map(|engine| engine.decode(text).ok())
        .filter(|bytes| !bytes.is_empty())
        .ok_or_else(invalid)
}
