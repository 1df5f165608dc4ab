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

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::routing::{get, post, put};
use axum::Router;
use playback::jwt::Hs256Verifier;
use playback::token::session::SessionSigner;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::config::Config;
use crate::db::{now, Db, DbError};
use crate::invalidation::Invalidator;
use crate::keys::KeyCustody;
use crate::transcode::runner::JobRunner;

pub mod admin;
pub mod error;
pub mod extract;
pub mod health;
pub mod internal;
pub mod licenses;
pub mod media;
pub mod uploads;

/// Shared state of every handler.
pub type AppState = Arc<App>;

/// Everything handlers need, built once at start-up by [`crate::server::build`].
pub struct App {
    pub config: Config,
    pub db: Db,
    pub jwt: Hs256Verifier,
    pub url_signer: SessionSigner,
    /// SHA-256 of the service token; the token itself is not kept.
    pub service_token_digest: [u8; 32],
    pub transport_key: [u8; 32],
    pub custody: Arc<dyn KeyCustody>,
    pub runner: JobRunner,
    /// Tells edges about revoked keys and changed entitlements (no-op without `[redis]`).
    pub invalidator: Invalidator,
    known_users: Mutex<HashSet<String>>,
}

/// Users remembered as existing before the set is cleared (bounds memory).
const KNOWN_USERS_CAP: usize = 100_000;

impl App {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: Config,
        db: Db,
        jwt: Hs256Verifier,
        url_signer: SessionSigner,
        service_token_digest: [u8; 32],
        transport_key: [u8; 32],
        custody: Arc<dyn KeyCustody>,
        runner: JobRunner,
        invalidator: Invalidator,
    ) -> Self {
        App {
            config,
            db,
            jwt,
            url_signer,
            service_token_digest,
            transport_key,
            custody,
            runner,
            invalidator,
            known_users: Mutex::new(HashSet::new()),
        }
    }

    /// Creates the user row for a JWT subject the first time it is seen.
    pub async fn ensure_user(&self, user_id: &str) -> Result<(), DbError> {
        if self.known().contains(user_id) {
            return Ok(());
        }
        self.db.upsert_user(user_id, None, now()).await?;
        let mut known = self.known();
        if known.len() >= KNOWN_USERS_CAP {
            known.clear();
        }
        known.insert(user_id.to_string());
        Ok(())
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.known_users.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The router with every route, fallback and layer.
pub fn router(app: AppState) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route(
            "/files/upload",
            // The upload handler enforces storage.max_upload_bytes itself while streaming.
            post(uploads::upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/media/transcode", post(media::start_transcode))
        .route("/media/transcode/{file_id}", get(media::transcode_status))
        .route("/media/monitor-jobs", post(media::monitor_jobs))
        .route("/media/{file_id}/manifest", get(media::manifest))
        .route(
            "/internal/v1/entitlements/{video_id}",
            get(internal::entitlement),
        )
        .route(
            "/internal/v1/videos/{video_id}/keys/{key_id}",
            get(internal::content_key),
        )
        .route(
            "/internal/v1/licenses",
            post(licenses::record).layer(DefaultBodyLimit::max(licenses::MAX_BATCH_BYTES)),
        )
        .route(
            "/admin/v1/videos/{video_id}/keys/{key_id}/revoke",
            post(admin::revoke_key),
        )
        .route(
            "/admin/v1/users/{user_id}/subscription",
            put(admin::set_subscription),
        )
        .fallback(error::route_not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(
            TraceLayer::new_for_http()
                // The path only: query strings may carry user ids or tokens.
                .make_span_with(|req: &Request<_>| {
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path())
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .with_state(app)
}
