//! The control plane: uploads, transcoding, key custody, entitlements and the internal API the
//! edge calls. It owns the slow, sensitive work; the edge owns the hot path.
//!
//! Where things are:
//! - [`api`]: the axum routes (one module per area, the route table in [`api::routes`], the
//!   shared state in [`api::state`]) and their error type;
//! - [`admin`]: administrative changes shared by the admin API and the CLI (the content-key
//!   lifecycle, subscriptions); [`import`]: recording titles packaged elsewhere
//!   (`control-plane import`); [`entitlements`]: database facts for the `playback` crate's
//!   entitlement rule; [`transcode`]: transcoding jobs on ffmpeg or MediaConvert (the steps
//!   both share in [`transcode::job`]);
//! - [`keys`]: key custody ([`keys::KeyCustody`] and its backends); [`db`]: SQLite/Postgres
//!   repositories; [`invalidation`]: telling every edge (through Redis) that cached keys or
//!   decisions are stale; [`origin`]: the origin tree titles are published into and the
//!   manifest URL viewers get;
//! - [`config`], [`secrets`]: start-up inputs (the configuration; secret file formats);
//! - [`server`], [`cli`], [`logging`]: assembling and running it.
//!
//! ## Layers
//!
//! Top to bottom; a module uses only modules of the layers below its own, never a peer on its
//! line, and no file reaches itself through imports (`tests/architecture.rs` checks both).
//!
//! 1. [`cli`], [`logging`]: the binary's commands and its log output (`main.rs` calls them)
//! 2. [`server`]: the wiring: reads the service's secrets, builds each part from its own
//!    configuration section and serves the API
//! 3. [`api`]: the HTTP handlers, their extractors, errors and route table
//! 4. [`admin`], [`import`], [`entitlements`], [`transcode`]: the domain services, independent
//!    of each other and of HTTP
//! 5. [`keys`], [`db`], [`invalidation`], [`origin`]: key custody, the database, telling edges,
//!    the origin tree
//! 6. [`config`], [`secrets`]: data and formats only, used by everything above

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
pub mod origin;
pub mod secrets;
pub mod server;
pub mod transcode;
