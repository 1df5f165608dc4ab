//! The streaming edge: a Pingora server that admits entitled viewers, hands out short-lived
//! signed URLs, rewrites HLS playlists so every follow-up request carries proof, streams
//! segments from an origin, and serves AES-128 content keys from an in-memory cache.
//!
//! Where things happen:
//! - a request's route is chosen in [`route`]; its handler lives in [`serve`];
//! - viewer JWTs are verified in [`serve::manifest`], signed-URL tokens in [`serve`]
//!   (`admit_signed_url`), both with the rules of the `playback` crate;
//! - HLS paths are proven safe by `playback::hls::AssetPath`; files come from [`origin`];
//! - content keys are unwrapped in [`keys`]; entitlements come from [`control_plane`];
//! - the Pingora phases are in [`proxy`]; configuration in [`config`].

pub mod config;
pub mod control_plane;
pub mod credentials;
pub mod edge;
pub mod errors;
pub mod keys;
pub mod metrics;
pub mod origin;
pub mod proxy;
pub mod reply;
pub mod route;
pub mod serve;
