//! The license endpoints. Every system runs the same steps: the viewer's JWT -> revocation ->
//! device binding -> rate limit, entitlement, a stream slot ([`admit_viewer`]) -> the system's
//! own work (`crate::licensing`) -> the license is recorded and announced
//! (`crate::records::Records::record_license`) -> the answer.
//!
//! - `POST /drm/clearkey/{videoId}`: W3C ClearKey, a JWK set.
//! - `GET /fps/certificate`, `POST /fps/license?contentId={videoId}`: FairPlay.
//! - `POST /drm/widevine/{videoId}`, `POST /drm/playready/{videoId}`: through the provider.
//! - `POST /drm/license`: the spec's `{videoId, licenseRequest, drmSystem}` for any of them,
//!   answered `{licenseId, drmSystem, expiresAt, license}`.

use base64::Engine;
use bytes::Bytes;
use playback::license::clearkey::LicenseRequest;
use playback::token::admission::Carriers;
use playback::token::query_param;
use playback::token::session::SessionSubject;
use playback::Reason;
use serde::Deserialize;
use serde_json::{json, Value};

use super::viewer::authenticate;
use super::{Answered, Ids, Outcome, Refused};
use crate::access::grant::stream_id;
use crate::access::{Access, Grant};
use crate::core::clock::{rfc3339, Now};
use crate::core::errors::EdgeError;
use crate::core::ids::is_video_id;
use crate::gate::Gate;
use crate::http::facts::RequestFacts;
use crate::http::reply::Reply;
use crate::licensing::clearkey::ClearKeyLicense;
use crate::licensing::fairplay::FairPlay;
use crate::licensing::{clearkey, fairplay, Licensing, System};
use crate::records::{new_license_id, Issued, Records};

/// The parts license and key requests use.
pub struct Parts<'a> {
    pub gate: &'a Gate,
    pub access: &'a Access,
    pub licensing: &'a Licensing,
    pub records: &'a Records,
}

/// Authenticates a license request's viewer (JWT, or the title's session token when the
/// request carries no JWT) and admits them for `video_id`; the ids come back with the user and
/// the stream as far as they were learned, on the grant or the refusal.
async fn admit_viewer(
    parts: &Parts<'_>,
    facts: &RequestFacts<'_>,
    video_id: &str,
    ids: Ids,
) -> Result<(Grant, Ids), Refused> {
    if facts.jwt.is_none() && query_param(facts.query, parts.gate.sessions.token_name()).is_some() {
        return admit_session_holder(parts, facts, video_id, ids).await;
    }
    let now = facts.now;
    let (claims, mut ids) = authenticate(parts.gate, facts, ids).await?;
    let stream = stream_id(facts.session_header, &claims, facts.jwt.unwrap_or_default())
        .map_err(|e| ids.refused(e))?;
    ids.session_id = Some(stream.clone());
    let session = SessionSubject {
        session_id: Some(stream.clone()),
        user_id: Some(claims.sub.clone()),
        jti: claims.jti.clone(),
    };
    if let Err(revoked) = parts.gate.revocations.check(&session, now.unix) {
        return Err(ids.refused(
            EdgeError::Denied(Reason::Revoked).because(format!("{} revoked", revoked.kind.label())),
        ));
    }
    let device_id = parts
        .access
        .device_binding(facts.device_header, &claims)
        .map_err(|f| ids.refused(f))?;
    match parts
        .access
        .admit(&claims.sub, video_id, stream, device_id, now)
        .await
    {
        Ok(grant) => Ok((grant, ids)),
        Err(e) => Err(ids.refused(e)),
    }
}

/// A license request carrying the title's session token in its query: the license URL an MPD
/// names, so a player with nothing but the MPD gets its license. The token proves the viewer
/// and the session (its ACL covers `/drm/{system}/{v}`; revocations apply), and the session is
/// the stream, as for an AES-128 key. Device binding needs the JWT's device claim, so a tier
/// that binds devices refuses these.
async fn admit_session_holder(
    parts: &Parts<'_>,
    facts: &RequestFacts<'_>,
    video_id: &str,
    mut ids: Ids,
) -> Result<(Grant, Ids), Refused> {
    let carriers = Carriers {
        path_token: None,
        raw_path: facts.path,
        query: facts.query,
        cookie_header: None,
    };
    let now = facts.now;
    let proof = parts
        .gate
        .admission()
        .admit(carriers, facts.path, facts.client_ip, now.unix)
        .map_err(|f| ids.refused(f))?;
    let subject = &proof
        .session()
        .ok_or_else(|| {
            ids.refused(EdgeError::Denied(Reason::NotEntitled).because(
                "a CloudFront signature names no viewer; send the viewer's JWT or the session token",
            ))
        })?
        .subject;
    ids.user_id.clone_from(&subject.user_id);
    ids.session_id.clone_from(&subject.session_id);
    let Some(user_id) = subject.user_id.clone() else {
        return Err(ids.refused(
            EdgeError::Denied(Reason::NotEntitled).because("the session token names no viewer"),
        ));
    };
    let stream = subject
        .session_id
        .clone()
        .unwrap_or_else(|| format!("license-{user_id}"));
    let device_id = parts
        .access
        .device_binding_without_claims()
        .map_err(|f| ids.refused(f))?;
    match parts
        .access
        .admit(&user_id, video_id, stream, device_id, now)
        .await
    {
        Ok(grant) => Ok((grant, ids)),
        Err(e) => Err(ids.refused(e)),
    }
}

/// Records the license `system` built for `grant`; the ids then name it.
fn answer(
    parts: &Parts<'_>,
    mut ids: Ids,
    grant: &Grant,
    system: System,
    key_id: Option<&str>,
    license_id: String,
    now: Now,
) -> Result<(Ids, Issued), Refused> {
    let issued = parts
        .records
        .record_license(grant, system.label(), key_id, license_id, now)
        .map_err(|e| ids.refused(e))?;
    ids.license_id = Some(issued.license_id.clone());
    Ok((ids, issued))
}

fn license_reply(content_type: &str, body: impl Into<Bytes>) -> Outcome {
    Outcome::Reply(
        Reply::bytes(200, content_type, body.into()).header("cache-control", "no-store, private"),
    )
}

/// `POST /drm/clearkey/{videoId}`.
pub async fn clearkey(
    parts: &Parts<'_>,
    facts: &RequestFacts<'_>,
    video_id: &str,
    body: &[u8],
) -> Result<Answered, Refused> {
    let ids = Ids::video(video_id);
    let request = clearkey::parse(body).map_err(|e| ids.refused(e))?;
    let (license, ids, _) = clearkey_license(parts, facts, video_id, ids, &request).await?;
    Ok(ids.answered(license_reply("application/json", license.body)))
}

/// A ClearKey license for `request` to an admitted viewer of `video_id`, recorded.
async fn clearkey_license(
    parts: &Parts<'_>,
    facts: &RequestFacts<'_>,
    video_id: &str,
    ids: Ids,
    request: &LicenseRequest,
) -> Result<(ClearKeyLicense, Ids, Issued), Refused> {
    let (grant, ids) = admit_viewer(parts, facts, video_id, ids).await?;
    let licensing = parts.licensing;
    let license = clearkey::license(
        &licensing.keys,
        &licensing.responses,
        &parts.records.metrics,
        &grant,
        request,
    )
    .await
    .map_err(|f| ids.refused(f))?;
    let (ids, issued) = answer(
        parts,
        ids,
        &grant,
        System::ClearKey,
        license.key_id.as_deref(),
        new_license_id(),
        facts.now,
    )?;
    Ok((license, ids, issued))
}

/// `GET /fps/certificate`: the application certificate players fetch before the SPC.
pub fn fairplay_certificate(licensing: &Licensing) -> Result<Reply, EdgeError> {
    let fairplay = licensing
        .fairplay
        .as_ref()
        .ok_or(EdgeError::DrmSystemUnavailable(System::FairPlay.name()))?;
    Ok(Reply::bytes(
        200,
        "application/octet-stream",
        fairplay.certificate().to_vec(),
    )
    .header("cache-control", "public, max-age=86400"))
}

/// `POST /fps/license?contentId={videoId}`.
pub async fn fairplay(
    parts: &Parts<'_>,
    facts: &RequestFacts<'_>,
    body: &[u8],
) -> Result<Answered, Refused> {
    let mut ids = Ids::default();
    let Some(fairplay) = &parts.licensing.fairplay else {
        return Err(ids.refused(EdgeError::DrmSystemUnavailable(System::FairPlay.name())));
    };
    let video_id = query_param(facts.query, "contentId")
        .filter(|id| is_video_id(id))
        .ok_or_else(|| {
            ids.refused(EdgeError::InvalidRequest(
                "?contentId= must name the video (a UUID)".into(),
            ))
        })?;
    ids.video_id = Some(video_id.to_string());
    let (spc, as_form) =
        fairplay::spc_bytes(facts.header("content-type"), body).map_err(|e| ids.refused(e))?;
    let (grant, ids) = admit_viewer(parts, facts, video_id, ids).await?;
    let (ckc, ids, _) = fairplay_license(parts, ids, fairplay, &grant, &spc, facts.now).await?;
    let (body, content_type) = fairplay::ckc_answer(&ckc, as_form);
    Ok(ids.answered(license_reply(content_type, body)))
}

/// `POST /drm/widevine/{videoId}` and `POST /drm/playready/{videoId}`.
pub async fn provider(
    parts: &Parts<'_>,
    system: System,
    facts: &RequestFacts<'_>,
    video_id: &str,
    body: &[u8],
) -> Result<Answered, Refused> {
    let ids = Ids::video(video_id);
    let content_type = match system {
        System::PlayReady => "text/xml; charset=utf-8",
        _ => "application/octet-stream",
    };
    let configured = match system {
        System::Widevine => parts.licensing.widevine.is_some(),
        System::PlayReady => parts.licensing.playready.is_some(),
        _ => false,
    };
    if !configured {
        return Err(ids.refused(EdgeError::DrmSystemUnavailable(system.name())));
    }
    let (grant, ids) = admit_viewer(parts, facts, video_id, ids).await?;
    let (license, ids, _) = provider_license(parts, ids, system, &grant, body, facts.now).await?;
    Ok(ids.answered(license_reply(content_type, license)))
}

/// A FairPlay CKC for an admitted viewer's SPC, recorded.
async fn fairplay_license(
    parts: &Parts<'_>,
    ids: Ids,
    fairplay: &FairPlay,
    grant: &Grant,
    spc: &[u8],
    now: Now,
) -> Result<(Vec<u8>, Ids, Issued), Refused> {
    let (ckc, key_id) = fairplay
        .ckc(&parts.licensing.keys, grant, spc)
        .await
        .map_err(|f| ids.refused(f))?;
    let (ids, issued) = answer(
        parts,
        ids,
        grant,
        System::FairPlay,
        Some(&key_id),
        new_license_id(),
        now,
    )?;
    Ok((ckc, ids, issued))
}

/// A Widevine or PlayReady license from the provider for an admitted viewer, recorded.
async fn provider_license(
    parts: &Parts<'_>,
    ids: Ids,
    system: System,
    grant: &Grant,
    challenge: &[u8],
    now: Now,
) -> Result<(Bytes, Ids, Issued), Refused> {
    let unavailable = || ids.refused(EdgeError::DrmSystemUnavailable(system.name()));
    let license_id = new_license_id();
    let license = match system {
        System::Widevine => {
            let service = parts.licensing.widevine.as_ref().ok_or_else(unavailable)?;
            service.license(grant, challenge).await
        }
        System::PlayReady => {
            let service = parts.licensing.playready.as_ref().ok_or_else(unavailable)?;
            service
                .license(grant, challenge, &license_id, now.unix)
                .await
        }
        _ => return Err(unavailable()),
    }
    .map_err(|e| ids.refused(e))?;
    let (ids, issued) = answer(parts, ids, grant, system, None, license_id, now)?;
    Ok((license, ids, issued))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenericRequest {
    video_id: String,
    license_request: Value,
    drm_system: Option<String>,
}

/// `POST /drm/license`: `licenseRequest` is the ClearKey JSON (an object, or its text) for
/// ClearKey and base64 of the CDM's bytes for the others. Without `drmSystem` a JSON-object
/// request is ClearKey; anything else must name its system. Each system runs the same code as
/// its own endpoint.
pub async fn generic(
    parts: &Parts<'_>,
    facts: &RequestFacts<'_>,
    body: &[u8],
) -> Result<Answered, Refused> {
    let mut ids = Ids::default();
    let request: GenericRequest = serde_json::from_slice(body).map_err(|e| {
        ids.refused(EdgeError::InvalidRequest(format!(
            "the body must be {{\"videoId\", \"licenseRequest\", \"drmSystem\"}} ({})",
            match e.classify() {
                serde_json::error::Category::Data => "a field is missing or has the wrong type",
                _ => "not JSON",
            }
        )))
    })?;
    if !is_video_id(&request.video_id) {
        return Err(ids.refused(EdgeError::InvalidRequest(
            "videoId must be a lowercase UUID".into(),
        )));
    }
    let video_id = request.video_id.as_str();
    ids.video_id = Some(video_id.to_string());
    let label = match (request.drm_system.as_deref(), &request.license_request) {
        (Some(label), _) => label,
        (None, Value::Object(_)) => System::ClearKey.label(),
        (None, _) => {
            return Err(ids.refused(EdgeError::InvalidRequest(
                "name the drmSystem (clearkey, fairplay, widevine or playready)".into(),
            )))
        }
    };
    let Some(system) = System::for_license_request(label) else {
        return Err(ids.refused(EdgeError::InvalidRequest(format!(
            "drmSystem {:?} is not one of clearkey, fairplay, widevine, playready",
            label.chars().take(32).collect::<String>()
        ))));
    };
    let now = facts.now;
    let (license, ids, issued) = match system {
        System::ClearKey => {
            let parsed =
                clearkey::parse_value(&request.license_request).map_err(|e| ids.refused(e))?;
            let (license, ids, issued) =
                clearkey_license(parts, facts, video_id, ids, &parsed).await?;
            let as_json: Value = serde_json::from_slice(&license.body)
                .map_err(|_| ids.refused(EdgeError::Internal))?;
            (as_json, ids, issued)
        }
        System::FairPlay | System::Widevine | System::PlayReady => {
            let message = cdm_bytes(&request.license_request).map_err(|e| ids.refused(e))?;
            let (grant, ids) = admit_viewer(parts, facts, video_id, ids).await?;
            let (bytes, ids, issued) = match system {
                System::FairPlay => {
                    let fairplay = parts.licensing.fairplay.as_ref().ok_or_else(|| {
                        ids.refused(EdgeError::DrmSystemUnavailable(system.name()))
                    })?;
                    let (ckc, ids, issued) =
                        fairplay_license(parts, ids, fairplay, &grant, &message, now).await?;
                    (Bytes::from(ckc), ids, issued)
                }
                _ => provider_license(parts, ids, system, &grant, &message, now).await?,
            };
            let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
            (Value::String(encoded), ids, issued)
        }
        System::Aes128 => return Err(ids.refused(EdgeError::Internal)),
    };
    let reply = Reply::json(
        200,
        &json!({
            "licenseId": issued.license_id,
            "drmSystem": system.label(),
            "expiresAt": rfc3339(issued.expires_at),
            "license": license,
        }),
    )
    .header("cache-control", "no-store, private");
    Ok(ids.answered(Outcome::Reply(reply)))
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
