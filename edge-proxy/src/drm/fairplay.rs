//! FairPlay Streaming: `GET /fps/certificate` and `POST /fps/license?contentId={videoId}`.
//!
//! The viewer is admitted first (JWT, limits, entitlement), so an anonymous caller cannot make
//! the edge spend an RSA private-key operation. The SPC arrives raw (as AVFoundation and the
//! seed's web client send it), or as `spc=<base64>` form data (Safari sample players); the CKC
//! goes back raw, or as `<ckc>base64</ckc>` for form requests, as Apple's reference server does.
//! The SPC's asset id names the content key (the key's UUID); it must belong to `contentId`.
//!
//! The R2 -> session-key step is [`SessionKeyDerivation`]: only the documented development
//! stand-in is built in. A production deployment links Apple's D function (from the FPS
//! deployment package) as another implementation; see the README's FairPlay section.

use base64::Engine;
use pingora::http::RequestHeader;
use playback::license::fairplay::{
    self, DevelopmentDerivation, FairPlayCredentials, SessionKeyDerivation, Spc,
};
use playback::Reason;
use rand::RngCore;

use super::grant::{admit_viewer, issue, new_license_id, Grant, Issued};
use crate::config::{read_secret, ConfigError, FairPlayConfig};
use crate::credentials::query_param;
use crate::edge::Edge;
use crate::errors::EdgeError;
use crate::reply::Reply;
use crate::route::is_video_id;
use crate::serve::Subject;

/// The FPS credentials and the session-key derivation.
pub struct FairPlay {
    credentials: FairPlayCredentials,
    derivation: Box<dyn SessionKeyDerivation>,
}

impl FairPlay {
    /// `None` when `[drm.fairplay]` names no files (validated: all three or none).
    pub fn from_config(config: &FairPlayConfig) -> Result<Option<FairPlay>, ConfigError> {
        if config.certificate_file.as_os_str().is_empty() {
            return Ok(None);
        }
        let certificate = read_secret("drm.fairplay.certificate_file", &config.certificate_file)?;
        let private_key = read_secret("drm.fairplay.private_key_file", &config.private_key_file)?;
        let private_key = String::from_utf8(private_key).map_err(|_| ConfigError::Invalid {
            key: "drm.fairplay.private_key_file",
            problem: "is not PEM text".into(),
            fix: "use the FPS private key in PEM form".into(),
        })?;
        let ask_hex = read_secret("drm.fairplay.ask_file", &config.ask_file)?;
        let ask: [u8; 16] = std::str::from_utf8(&ask_hex)
            .ok()
            .and_then(|text| hex::decode(text.trim()).ok())
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| ConfigError::Invalid {
                key: "drm.fairplay.ask_file",
                problem: "does not hold 32 hex characters".into(),
                fix: "write the Application Secret Key from Apple's deployment package as hex"
                    .into(),
            })?;
        let credentials = FairPlayCredentials::from_pem_and_der(&private_key, &certificate, ask)
            .map_err(|_| ConfigError::Invalid {
                key: "drm.fairplay.private_key_file",
                problem: "the private key or certificate could not be read".into(),
                fix: "use the FPS private key (PEM) and certificate (DER) Apple issued together"
                    .into(),
            })?;
        tracing::warn!(
            "FairPlay uses the development session-key derivation; real Apple devices need Apple's D function (see README)"
        );
        Ok(Some(FairPlay {
            credentials,
            derivation: Box::new(DevelopmentDerivation),
        }))
    }
}

/// `GET /fps/certificate`: the application certificate players fetch before the SPC.
pub fn certificate(edge: &Edge) -> Result<Reply, EdgeError> {
    let fairplay = edge
        .drm
        .fairplay
        .as_ref()
        .ok_or(EdgeError::DrmSystemUnavailable("FairPlay"))?;
    Ok(Reply::bytes(
        200,
        "application/octet-stream",
        fairplay.credentials.certificate().to_vec(),
    )
    .header("cache-control", "public, max-age=86400"))
}

/// `POST /fps/license?contentId={videoId}`.
pub async fn serve(
    edge: &Edge,
    req: &RequestHeader,
    body: &[u8],
    subject: &mut Subject,
) -> Result<Reply, EdgeError> {
    if edge.drm.fairplay.is_none() {
        return Err(EdgeError::DrmSystemUnavailable("FairPlay"));
    }
    let video_id = query_param(req.uri.query(), "contentId")
        .filter(|id| is_video_id(id))
        .ok_or_else(|| {
            EdgeError::InvalidRequest("?contentId= must name the video (a UUID)".into())
        })?;
    subject.video_id = Some(video_id.to_string());
    let (spc, as_form) = spc_bytes(req, body)?;
    let grant = admit_viewer(edge, req, video_id, subject).await?;
    let (ckc, issued) = ckc(edge, &grant, &spc, subject).await?;
    subject.license_id = Some(issued.license_id);
    if as_form {
        let text = format!(
            "<ckc>{}</ckc>",
            base64::engine::general_purpose::STANDARD.encode(&ckc)
        );
        return Ok(
            Reply::bytes(200, "text/plain", text).header("cache-control", "no-store, private")
        );
    }
    Ok(Reply::bytes(200, "application/octet-stream", ckc)
        .header("cache-control", "no-store, private"))
}

/// Parses `spc` and builds the CKC for an admitted viewer.
pub async fn ckc(
    edge: &Edge,
    grant: &Grant,
    spc: &[u8],
    subject: &mut Subject,
) -> Result<(Vec<u8>, Issued), EdgeError> {
    let fairplay = edge
        .drm
        .fairplay
        .as_ref()
        .ok_or(EdgeError::DrmSystemUnavailable("FairPlay"))?;
    let mut blinding_seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut blinding_seed);
    let parsed: Spc = fairplay::parse_spc(
        &fairplay.credentials,
        fairplay.derivation.as_ref(),
        spc,
        &blinding_seed,
    )
    .map_err(|e| EdgeError::BadLicenseRequest {
        code: e.code(),
        detail: e.to_string(),
    })?;
    let key_id = parsed
        .asset_id_str()
        .filter(|id| is_video_id(id))
        .ok_or_else(|| {
            subject.denial_detail = Some("the SPC's asset id is not a content key id".into());
            EdgeError::Denied(Reason::UnknownKid)
        })?
        .to_string();
    let key = match edge.keys.get(&grant.video_id, &key_id).await {
        Ok(key) => key,
        Err(EdgeError::Denied(Reason::NotFound)) => {
            subject.denial_detail = Some("the SPC's asset id is not a key of this video".into());
            return Err(EdgeError::Denied(Reason::UnknownKid));
        }
        Err(other) => return Err(other),
    };
    let mut ckc_iv = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut ckc_iv);
    // The content IV travels in the playlist (EXT-X-KEY IV) for this product's packaging, so the
    // CKC's IV field is zero.
    let ckc = fairplay::build_ckc(&parsed, &key.0, &[0u8; 16], &grant.terms.license, ckc_iv);
    let issued = issue(edge, grant, "fairplay", Some(&key_id), new_license_id())?;
    Ok((ckc, issued))
}

/// The SPC bytes and whether the request was form-encoded (`spc=<base64>`).
fn spc_bytes(req: &RequestHeader, body: &[u8]) -> Result<(Vec<u8>, bool), EdgeError> {
    let invalid = |detail: &str| EdgeError::BadLicenseRequest {
        code: "invalid_license_request",
        detail: detail.to_string(),
    };
    if body.is_empty() {
        return Err(invalid("the body holds no SPC"));
    }
    let is_form = req
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
        || body.starts_with(b"spc=");
    if !is_form {
        return Ok((body.to_vec(), false));
    }
    let form = std::str::from_utf8(body).map_err(|_| invalid("the form is not text"))?;
    let encoded = form
        .split('&')
        .find_map(|pair| pair.strip_prefix("spc="))
        .ok_or_else(|| invalid("the form has no spc field"))?;
    let spaced = encoded.replace('+', " ");
    let decoded = percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map_err(|_| invalid("the spc field is not valid percent-encoding"))?;
    // Form encoding turns base64's '+' into ' ' when the client did not escape it.
    let compact: String = decoded.replace(' ', "+").split_whitespace().collect();
    let spc = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| invalid("the spc field is not base64"))?;
    Ok((spc, true))
}
