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
use axum::http::{header, Request};
use axum::routing::get;
use axum::Router;
use playback::jwt::Hs256Verifier;
use playback::token::session::SessionSigner;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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
pub mod keys;
pub mod licenses;
pub mod media;
pub mod openapi;
pub mod orgs;
pub mod pagination;
pub mod speke;
pub mod tiers;
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

/// The router with every route, fallback and layer, and `GET /openapi.json`.
pub fn router(app: AppState) -> Router {
    let (routes, doc) = api_routes().split_for_parts();
    let doc = openapi::finish(doc);
    // Serialized once: the document does not change while the process runs.
    let doc_json = bytes::Bytes::from(serde_json::to_vec(&doc).unwrap_or_default());
    routes
        .route(
            "/openapi.json",
            get(move || {
                let body = doc_json.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], body) }
            }),
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

/// The OpenAPI document `GET /openapi.json` serves (no running server needed).
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    openapi::finish(api_routes().into_openapi())
}

/// Every route. A handler with a `#[utoipa::path]` is registered with `routes!` (documented);
/// path parameters are camelCase (`{fileId}`), the same at every position, as axum requires.
/// JSON bodies are held to their own limits by [`extract::ApiJson`] ([`extract::JsonBody`]);
/// the upload and SPEKE handlers read their bodies themselves, with their own limits.
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(health::health))
        .routes(routes!(health::ready))
        .routes({
            // The upload handler enforces storage.max_upload_bytes itself while streaming.
            let (schemas, paths, handler) = routes!(uploads::upload);
            (schemas, paths, handler.layer(DefaultBodyLimit::disable()))
        })
        .routes(routes!(tiers::my_files))
        .routes(routes!(orgs::share_file))
        .routes(routes!(media::start_transcode))
        .routes(routes!(media::transcode_status))
        .routes(routes!(media::monitor_jobs))
        .routes(routes!(media::manifest))
        .routes(routes!(internal::entitlement))
        .routes(routes!(internal::content_key))
        .routes(routes!(licenses::record))
        .routes(routes!(admin::revoke_key))
        .routes(routes!(keys::list_keys, keys::generate_key))
        .routes(routes!(keys::rotate_key))
        .routes(routes!(keys::retire_key))
        .routes(routes!(keys::list_key_events))
        .routes(routes!(speke::copy_protection))
        .routes(routes!(admin::set_subscription))
        .routes(routes!(tiers::list_users))
        .routes(routes!(tiers::list_jobs))
        .routes(routes!(tiers::list_tiers))
        .routes(routes!(tiers::create_tier))
        .routes(routes!(tiers::update_tier))
        .routes(routes!(tiers::my_subscription))
        .routes(routes!(orgs::create_org, orgs::my_orgs))
        .routes(routes!(orgs::all_orgs))
        .routes(routes!(orgs::get_org))
        .routes(routes!(orgs::list_members))
        .routes(routes!(orgs::set_member, orgs::remove_member))
        .routes(routes!(orgs::create_project, orgs::list_projects))
        .routes(routes!(orgs::get_project))
        .routes(routes!(orgs::list_project_members))
        .routes(routes!(
            orgs::add_project_member,
            orgs::remove_project_member
        ))
}
