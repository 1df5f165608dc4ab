//! Pure playback rules shared by the edge, the control plane and the proxy-wasm filter.
//!
//! This crate is the sans-IO core of the product (in the spirit of rustls and quinn-proto): it
//! decides, formats and verifies, but never reads a clock, a socket or a file. Time and
//! randomness are passed in, so every rule is unit-testable and the crate builds for
//! `wasm32-wasip1` as well as natively.
//!
//! - [`token`]: signed-URL tokens that admit HLS playlists, segments and keys.
//! - [`client_address`]: which address a request comes from behind trusted proxies.
//! - [`jwt`]: verification of the platform's viewer JWTs.
//! - [`entitlement`]: who may play a title; [`streams`]: how many streams they may hold.
//! - [`hls`]: playlist rewriting so every follow-up request carries proof; [`dash`]: the same
//!   for MPDs, with license URLs pointing at the edge.
//! - [`keywrap`]: the envelope format content keys travel and rest in.
//! - [`license`]: DRM license formats (ClearKey, FairPlay, Widevine, PlayReady).
//! - [`denial`]: the machine reason codes every refusal carries.
//! - [`conditional`]: HTTP conditional and byte-range requests for a file (RFC 9110).

pub mod client_address;
pub mod conditional;
pub mod dash;
pub mod denial;
pub mod entitlement;
pub mod hls;
pub mod jwt;
pub mod keywrap;
pub mod license;
pub mod route_policy;
pub mod speke;
pub mod streams;
pub mod token;

mod encoding;

pub use denial::Reason;
