//! The streaming edge: a Pingora server that admits entitled viewers, hands out short-lived
//! signed URLs, rewrites HLS playlists so every follow-up request carries proof, streams
//! segments from an origin, and serves AES-128 content keys from an in-memory cache.
//!
//! Where things happen:
//! - a request's route is chosen in [`route`]; its handler lives in [`serve`];
//! - viewer JWTs are verified in [`serve::manifest`]; manifest and session tokens (EdgeAuth v2),
//!   CloudFront signatures and revocations in [`sessions::admission`], with the rules of the
//!   `playback` crate; how session tokens travel (query, path segment, cookie) is
//!   [`sessions::propagation`]; the deny-list is [`revocation`];
//! - `edge-proxy explain` ([`explain`]) says why a token or URL passes or fails;
//! - HLS paths are proven safe by `playback::hls::AssetPath`; files come from [`origin`];
//! - content keys are unwrapped in [`keys`]; entitlements come from [`control_plane`];
//! - licenses are built in [`drm`] (ClearKey, FairPlay, Widevine/PlayReady via a provider),
//!   with limits in [`limits`], events in [`analytics`], license records in
//!   [`license_ledger`]; the shared Redis is [`redis_link`], and [`invalidation`] applies the
//!   control plane's key and entitlement invalidations;
//! - origin objects are cached in [`cache`] (pingora-cache over a bounded in-memory storage);
//! - the Pingora phases are in [`proxy`]; configuration in [`config`].

pub mod analytics;
pub mod cache;
pub mod cdn;
pub mod config;
pub mod control_plane;
pub mod credentials;
pub mod drm;
pub mod edge;
pub mod errors;
pub mod explain;
pub mod invalidation;
pub mod keys;
pub mod license_ledger;
pub mod limits;
pub mod metrics;
pub mod origin;
pub mod proxy;
pub mod redis_link;
pub mod reply;
pub mod revocation;
pub mod route;
pub mod serve;
pub mod sessions;
pub mod viewer;
