//! The streaming edge: a Pingora server that admits entitled viewers, hands out short-lived
//! signed URLs, rewrites playlists so every follow-up request carries proof, streams segments
//! from an origin through its cache, and answers DRM license and key requests from its caches.
//!
//! ## Where things happen
//!
//! - a request's route is chosen in [`http::route`], its phases are [`http::proxy`], its
//!   handler is in [`http::handlers`] (one file per route family);
//! - a token is verified in `playback::token` and admitted in [`gate::admission`]; viewer JWTs
//!   in [`gate::viewer`]; revocation in [`gate::revocation`];
//! - entitlements and limits are decided in [`access`];
//! - a playlist is rewritten by `playback::hls` through [`delivery::rewrite`]; origins and
//!   caches are [`delivery`];
//! - a key is unwrapped in [`licensing::keys`]; a license is built by `playback::license`
//!   through [`licensing`]; it is recorded in [`records`];
//! - TLS certificates, client certificates and who may use each route group are
//!   [`transport`];
//! - secrets are read in [`app::secrets`] and everything is assembled in [`app::build`].
//!
//! ## Layers
//!
//! Top to bottom; a module uses only its own files and modules of lower layers, never a
//! peer on its own line (checked by `tests/architecture.rs`):
//!
//! 1. `explain` — the `edge-proxy explain` CLI (`main.rs` is the binary beside it)
//! 2. `app` — assembly: reads the secrets, builds every part, background tasks
//! 3. `http` — Pingora's phases, routes, request facts, handlers, replies, the access log
//! 4. `licensing`, `records` — keys and licenses; the license ledger and events
//! 5. `access` — entitlements, rate and stream limits, the grant
//! 6. `gate`, `delivery`, `control_plane`, `transport` — who is asking; origins and caches; the control plane's client; TLS certificates, client certificates and route-group policies
//! 7. `core` — clock, errors, id shapes, metrics, the Redis link
//! 8. `config` — the configuration, data only

pub mod access;
pub mod app;
pub mod config;
pub mod control_plane;
pub mod core;
pub mod delivery;
pub mod explain;
pub mod gate;
pub mod http;
pub mod licensing;
pub mod records;
pub mod transport;
