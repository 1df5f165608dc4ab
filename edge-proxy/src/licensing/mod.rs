//! Licenses and keys, built for a viewer already admitted: content keys ([`keys`]: plaintext
//! in process, wrapped in Redis, the control plane behind), ClearKey JWK sets ([`clearkey`],
//! with built answers reused from [`responses`]), FairPlay CKCs ([`fairplay`]), and Widevine
//! and PlayReady licenses from a provider ([`provider`], over Pingora's pooled connections in
//! [`upstream`]). The formats themselves are pure code in `playback::license`.
//!
//! [`System`] names the five systems; [`Licensing`] holds the parts for the handlers.

pub mod clearkey;
pub mod fairplay;
pub mod keys;
pub mod provider;
pub mod responses;
pub mod upstream;

use std::sync::Arc;

use fairplay::FairPlay;
use keys::ContentKeys;
use provider::{PlayReady, Widevine};
use responses::ResponseCache;

/// The license systems the edge answers for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    ClearKey,
    /// HLS AES-128: the key itself, to a session-token holder.
    Aes128,
    FairPlay,
    Widevine,
    PlayReady,
}

impl System {
    /// The label in license records, metrics and the generic endpoint (`clearkey`, ...).
    pub fn label(self) -> &'static str {
        match self {
            System::ClearKey => "clearkey",
            System::Aes128 => "aes128",
            System::FairPlay => "fairplay",
            System::Widevine => "widevine",
            System::PlayReady => "playready",
        }
    }

    /// The system a label names, among those a client may ask `POST /drm/license` for.
    pub fn for_license_request(label: &str) -> Option<System> {
        [
            System::ClearKey,
            System::FairPlay,
            System::Widevine,
            System::PlayReady,
        ]
        .into_iter()
        .find(|system| system.label() == label)
    }

    /// The name in sentences (`drm_system_unavailable`: "FairPlay licenses are not ...").
    pub fn name(self) -> &'static str {
        match self {
            System::ClearKey => "ClearKey",
            System::Aes128 => "AES-128",
            System::FairPlay => "FairPlay",
            System::Widevine => "Widevine",
            System::PlayReady => "PlayReady",
        }
    }
}

/// The key and license sources of this edge; one per process.
pub struct Licensing {
    pub keys: Arc<ContentKeys>,
    /// Built ClearKey answers per (user, video, kids), in process only (they hold plaintext).
    pub responses: Arc<ResponseCache>,
    pub fairplay: Option<FairPlay>,
    pub widevine: Option<Widevine>,
    pub playready: Option<PlayReady>,
    /// `drm.max_request_bytes`: the largest license request body read.
    pub max_request_bytes: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_for_license_requests() {
        for system in [
            System::ClearKey,
            System::FairPlay,
            System::Widevine,
            System::PlayReady,
        ] {
            assert_eq!(System::for_license_request(system.label()), Some(system));
        }
        assert_eq!(System::for_license_request("aes128"), None);
        assert_eq!(System::for_license_request("primetime"), None);
    }
}
