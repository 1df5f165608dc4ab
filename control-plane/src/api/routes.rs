//! The route table: every handler registered with its OpenAPI description, the JSON
//! fallbacks for unknown routes and wrong methods, request tracing, and `GET /openapi.json`.

use axum::extract::DefaultBodyLimit;
use axum::http::{header, Request};
use axum::routing::get;
use axum::Router;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::state::AppState;
use super::{
    admin, error, health, internal, keys, licenses, media, openapi, orgs, speke, tiers, uploads,
};

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
/// JSON bodies are held to their own limits by [`super::extract::ApiJson`]
/// ([`super::extract::JsonBody`]);
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
