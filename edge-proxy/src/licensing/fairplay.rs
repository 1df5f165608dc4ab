//! FairPlay Streaming: the application certificate, and an SPC in, a CKC out, for a viewer
//! already admitted (so an anonymous caller cannot make the edge spend an RSA private-key
//! operation). The SPC arrives raw (as AVFoundation and the seed's web client send it), or as
//! `spc=<base64>` form data (Safari sample players); [`spc_bytes`] reads both. The SPC's asset
//! id names the content key (the key's UUID); it must belong to the title.
//!
//! The R2 -> session-key step is [`SessionKeyDerivation`]: only the documented development
//! stand-in is built in. A production deployment links Apple's D function (from the FPS
//! deployment package) as another implementation; see the README's FairPlay section.

use base64::Engine;
use playback::license::fairplay::{
    self, DevelopmentDerivation, FairPlayCredentials, SessionKeyDerivation, Spc,
};
use playback::Reason;
use rand::RngCore;

use super::keys::ContentKeys;
use crate::access::Grant;
use crate::config::ConfigError;
use crate::core::errors::{EdgeError, Failure};
use crate::core::ids::is_video_id;

/// The FPS credentials and the session-key derivation.
pub struct FairPlay {
    credentials: FairPlayCredentials,
    derivation: Box<dyn SessionKeyDerivation>,
}

impl FairPlay {
    /// The FairPlay key server from the deployment's files (`[drm.fairplay]`, read by the
    /// application's builder): the certificate (DER), its private key (PEM) and the ASK.
    pub fn new(
        certificate_der: &[u8],
        private_key_pem: &str,
        ask: [u8; 16],
    ) -> Result<FairPlay, ConfigError> {
        let credentials = FairPlayCredentials::from_pem_and_der(
            private_key_pem,
            certificate_der,
            ask,
        )
        .map_err(|_| ConfigError::Invalid {
            key: "drm.fairplay.private_key_file",
            problem: "the private key or certificate could not be read".into(),
            fix: "use the FPS private key (PEM) and certificate (DER) Apple issued together".into(),
        })?;
        tracing::warn!(
            "FairPlay uses the development session-key derivation; real Apple devices need Apple's D function (see README)"
        );
        Ok(FairPlay {
            credentials,
            derivation: Box::new(DevelopmentDerivation),
        })
    }

    /// The application certificate (DER) players fetch before the SPC.
    pub fn certificate(&self) -> &[u8] {
        self.credentials.certificate()
    }

    /// Parses `spc` and builds the CKC for an admitted viewer; returns it with the key id it
    /// carries.
    pub async fn ckc(
        &self,
        keys: &ContentKeys,
        grant: &Grant,
        spc: &[u8],
    ) -> Result<(Vec<u8>, String), Failure> {
        let mut blinding_seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut blinding_seed);
        let parsed: Spc = fairplay::parse_spc(
            &self.credentials,
            self.derivation.as_ref(),
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
                EdgeError::Denied(Reason::UnknownKid)
                    .because("the SPC's asset id is not a content key id")
            })?
            .to_string();
        let key = match keys.get(&grant.video_id, &key_id).await {
            Ok(key) => key,
            Err(EdgeError::Denied(Reason::NotFound)) => {
                return Err(EdgeError::Denied(Reason::UnknownKid)
                    .because("the SPC's asset id is not a key of this video"));
            }
            Err(other) => return Err(other.into()),
        };
        let mut ckc_iv = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut ckc_iv);
        // The content IV travels in the playlist (EXT-X-KEY IV) for this product's packaging,
        // so the CKC's IV field is zero.
        let ckc = fairplay::build_ckc(&parsed, &key.0, &[0u8; 16], &grant.terms.license, ckc_iv);
        Ok((ckc, key_id))
    }
}

/// A CKC as the request wants it back: raw, or `<ckc>base64</ckc>` for form requests, as
/// Apple's reference server answers.
pub fn ckc_answer(ckc: &[u8], as_form: bool) -> (Vec<u8>, &'static str) {
    match as_form {
        true => (
            format!(
                "<ckc>{}</ckc>",
                base64::engine::general_purpose::STANDARD.encode(ckc)
            )
            .into_bytes(),
            "text/plain",
        ),
        false => (ckc.to_vec(), "application/octet-stream"),
    }
}

/// The SPC bytes and whether the request was form-encoded (`spc=<base64>`).
pub fn spc_bytes(content_type: Option<&str>, body: &[u8]) -> Result<(Vec<u8>, bool), EdgeError> {
    let invalid = |detail: &str| EdgeError::BadLicenseRequest {
        code: "invalid_license_request",
        detail: detail.to_string(),
    };
    if body.is_empty() {
        return Err(invalid("the body holds no SPC"));
    }
    let is_form = content_type.is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
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
