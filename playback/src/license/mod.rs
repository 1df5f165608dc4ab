//! License message formats: what a CDM sends and what the edge answers, per DRM system.
//!
//! Pure like the rest of the crate: parsers bound their input and never panic, builders take
//! keys, time and randomness as arguments. The edge (`edge-proxy/src/licensing/`) looks keys up and
//! enforces entitlement and limits; these modules only speak the wire formats.
//!
//! - [`policy`]: how long a license lasts and whether it may persist, derived from the tier.
//! - [`clearkey`]: W3C EME ClearKey license requests and JWK-set responses.
//! - [`fairplay`]: Apple FairPlay Streaming SPC parsing and CKC building.
//! - [`widevine`]: signed license-proxy requests to a Widevine license service.
//! - [`playready`]: custom data for a PlayReady license server.

pub mod clearkey;
pub mod fairplay;
pub mod playready;
pub mod policy;
pub mod widevine;
