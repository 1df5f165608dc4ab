//! The control plane: uploads, transcoding, key custody, entitlements and the internal API the
//! edge calls. It owns the slow, sensitive work; the edge owns the hot path.
//!
//! Where things are:
//! - [`api`]: the axum routes (one module per area) and their error type;
//! - [`entitlements`]: database facts for the `playback` crate's entitlement rule;
//! - [`keys`]: key custody ([`keys::KeyCustody`], local master-key backend);
//! - [`transcode`]: the transcoder seam, the local ffmpeg backend and the job runner;
//! - [`db`]: SQLite/Postgres repositories; [`config`], [`secrets`]: start-up inputs;
//! - [`invalidation`]: telling every edge (through Redis) that cached keys or decisions are
//!   stale; [`admin`]: the changes that trigger it (key revocation, subscriptions);
//! - [`import`]: recording titles packaged elsewhere (`control-plane import`);
//! - [`server`], [`cli`]: assembling and running it.

pub mod admin;
pub mod api;
pub mod cli;
pub mod config;
pub mod db;
pub mod entitlements;
pub mod import;
pub mod invalidation;
pub mod keys;
pub mod logging;
pub mod secrets;
pub mod server;
pub mod transcode;
