//! How a title is protected, and which pipeline that takes: the choice `transcode.protection`
//! sets as the default for DRM titles and `POST /media/transcode` may name per title.
//!
//! `cbcs` and `cenc` are CMAF (fMP4) titles made by ffmpeg + Shaka Packager with HLS and DASH
//! manifests and multi-DRM signaling ([`super::packager`]); `none` is the same CMAF layout
//! unencrypted; `aes-128` is the older ffmpeg-only MPEG-TS HLS with AES-128 segment
//! encryption ([`super::ffmpeg`]). Pure: parsing and the rules that tie a protection to
//! `enableDrm`.

use std::fmt;

use crate::config::TranscodeConfig;

/// A title's protection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    /// CMAF, common encryption `cbcs` (AES-CBC pattern; FairPlay, Widevine, PlayReady).
    Cbcs,
    /// CMAF, common encryption `cenc` (AES-CTR; Widevine, PlayReady, ClearKey).
    Cenc,
    /// MPEG-TS HLS with whole-segment AES-128 (ffmpeg alone).
    Aes128,
    /// CMAF, unencrypted.
    None,
}

/// Every protection name, as config and API spell them.
pub const PROTECTIONS: [&str; 4] = ["cbcs", "cenc", "aes-128", "none"];

/// Why a requested protection does not fit the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtectionRefusal {
    #[error("{0:?} is not a protection; use one of cbcs, cenc, aes-128 or none")]
    Unknown(String),
    #[error("protection {0} encrypts, but enableDrm is false; send enableDrm: true or protection \"none\"")]
    NeedsDrm(Protection),
    #[error("protection none does not encrypt, but enableDrm is true; pick cbcs, cenc or aes-128, or send enableDrm: false")]
    NoneWithDrm,
}

impl Protection {
    /// Parses a config or API name.
    pub fn parse(name: &str) -> Result<Self, ProtectionRefusal> {
        match name {
            "cbcs" => Ok(Protection::Cbcs),
            "cenc" => Ok(Protection::Cenc),
            "aes-128" => Ok(Protection::Aes128),
            "none" => Ok(Protection::None),
            other => Err(ProtectionRefusal::Unknown(other.to_string())),
        }
    }

    /// The name as config, API and the job row spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Protection::Cbcs => "cbcs",
            Protection::Cenc => "cenc",
            Protection::Aes128 => "aes-128",
            Protection::None => "none",
        }
    }

    /// `transcode.protection`: the default of DRM titles (validated at start-up to be one of
    /// [`crate::config::DRM_PROTECTIONS`]; anything else reads as `cbcs`).
    pub fn configured(config: &TranscodeConfig) -> Self {
        match Protection::parse(&config.protection) {
            Ok(p) if p.encrypts() => p,
            _ => Protection::Cbcs,
        }
    }

    /// Whether the title is encrypted under a content key.
    pub fn encrypts(self) -> bool {
        self != Protection::None
    }

    /// Whether the title is CMAF made by the packager (every protection but `aes-128`).
    pub fn is_cmaf(self) -> bool {
        self != Protection::Aes128
    }

    /// The protection of a title: the one asked for, checked against `enable_drm`, or else
    /// `default` (from `transcode.protection`) for a DRM title and `none` for a clear one.
    pub fn resolve(
        requested: Option<&str>,
        enable_drm: bool,
        default: Protection,
    ) -> Result<Self, ProtectionRefusal> {
        match requested.map(Protection::parse).transpose()? {
            None if enable_drm => Ok(default),
            None => Ok(Protection::None),
            Some(Protection::None) if enable_drm => Err(ProtectionRefusal::NoneWithDrm),
            Some(p) if p.encrypts() && !enable_drm => Err(ProtectionRefusal::NeedsDrm(p)),
            Some(p) => Ok(p),
        }
    }

    /// The protection stored with a job; rows written before the column existed (`None`)
    /// were made by the AES-128 pipeline when DRM was on.
    pub fn of_job(stored: Option<&str>, enable_drm: bool) -> Self {
        match stored.map(Protection::parse) {
            Some(Ok(p)) => p,
            _ if enable_drm => Protection::Aes128,
            _ => Protection::None,
        }
    }
}

impl fmt::Display for Protection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in PROTECTIONS {
            assert_eq!(Protection::parse(name).unwrap().as_str(), name);
        }
        for name in crate::config::DRM_PROTECTIONS {
            assert!(Protection::parse(name).unwrap().encrypts());
        }
        let mut config = TranscodeConfig::default();
        assert_eq!(Protection::configured(&config), Protection::Cbcs);
        config.protection = "aes-128".into();
        assert_eq!(Protection::configured(&config), Protection::Aes128);
        assert_eq!(
            Protection::parse("CBCS"),
            Err(ProtectionRefusal::Unknown("CBCS".into()))
        );
    }

    #[test]
    fn defaults_follow_enable_drm() {
        let r = |req, drm| Protection::resolve(req, drm, Protection::Cbcs);
        assert_eq!(r(None, true), Ok(Protection::Cbcs));
        assert_eq!(r(None, false), Ok(Protection::None));
        assert_eq!(r(Some("cenc"), true), Ok(Protection::Cenc));
        assert_eq!(r(Some("aes-128"), true), Ok(Protection::Aes128));
        assert_eq!(r(Some("none"), false), Ok(Protection::None));
        assert_eq!(
            Protection::resolve(None, true, Protection::Aes128),
            Ok(Protection::Aes128)
        );
    }

    #[test]
    fn mismatches_are_refused() {
        let r = |req, drm| Protection::resolve(req, drm, Protection::Cbcs);
        assert_eq!(r(Some("none"), true), Err(ProtectionRefusal::NoneWithDrm));
        assert_eq!(
            r(Some("cbcs"), false),
            Err(ProtectionRefusal::NeedsDrm(Protection::Cbcs))
        );
        assert_eq!(
            r(Some("aes-128"), false),
            Err(ProtectionRefusal::NeedsDrm(Protection::Aes128))
        );
        assert!(matches!(
            r(Some("widevine"), true),
            Err(ProtectionRefusal::Unknown(_))
        ));
    }

    #[test]
    fn old_job_rows() {
        assert_eq!(Protection::of_job(None, true), Protection::Aes128);
        assert_eq!(Protection::of_job(None, false), Protection::None);
        assert_eq!(Protection::of_job(Some("cenc"), true), Protection::Cenc);
        assert!(Protection::Cbcs.is_cmaf() && !Protection::Aes128.is_cmaf());
        assert!(Protection::Aes128.encrypts() && !Protection::None.encrypts());
    }
}
