//! The control plane's HTTP API (axum).
//!
//! | route | who | module |
//! |---|---|---|
//! | `GET /health`, `GET /ready` | anyone | [`health`] |
//! | `POST /files/upload` | viewer JWT | [`uploads`] |
//! | `POST /media/transcode`, `GET /media/transcode/{fileId}` | viewer JWT (owner) | [`media`] |
//! | `POST /media/monitor-jobs` | viewer JWT with the admin role | [`media`] |
//! | `GET /media/{fileId}/manifest` | viewer JWT (entitled) | [`media`] |
//! | `GET /internal/v1/…` | edge service token | [`internal`] |
//! | `POST /internal/v1/licenses` | edge service token | [`licenses`] |
//! | `POST /admin/v1/videos/{videoId}/keys/{keyId}/revoke`, `PUT /admin/v1/users/{userId}/subscription` | viewer JWT with the admin role | [`admin`] |
//!
//! Every error is `{"error", "message"}` JSON ([`error::ApiError`]), including unknown routes,
//! wrong methods and malformed bodies.
//!
//! Every route is registered in [`routes`] (with `GET /openapi.json`, [`openapi`]); handlers
//! share [`state::App`] and extract their inputs with [`extract`]. This file only declares and
//! re-exports.

pub mod admin;
pub mod error;
pub mod extract;
pub mod health;
pub mod internal;
pub mod keys;
pub mod licenses;
pub mod media;
pub mod openapi;
pub mod orgs;
pub mod pagination;
pub mod routes;
pub mod speke;
pub mod state;
pub mod tiers;
pub mod uploads;

pub use routes::{openapi_document, router};
pub use state::{App, AppState};
