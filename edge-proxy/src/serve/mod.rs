//! What each route serves. Every handler is a short async function from the request to a
//! [`Reply`] (or, for segments of an HTTP origin, an [`UpstreamTarget`] for Pingora to proxy),
//! failing with an [`EdgeError`] that becomes the JSON error response.

pub mod admin;
pub mod hls;
pub mod key;
pub mod manifest;
pub mod ops;

use std::net::IpAddr;

use bytes::Bytes;
use pingora::http::RequestHeader;

use crate::control_plane::{Entitlement, Terms};
use crate::drm;
use crate::drm::provider::ProviderSystem::{PlayReady, Widevine};
use crate::edge::Edge;
use crate::errors::EdgeError;
use crate::reply::Reply;
use crate::route::Route;
use playback::hls::AssetPath;

/// How a request is answered.
pub enum Outcome {
    /// The edge answers itself.
    Reply(Reply),
    /// Pingora proxies the request to the HTTP origin.
    Proxy(UpstreamTarget),
}

/// A segment request for Pingora to proxy to the HTTP or S3 origin, through the segment cache.
#[derive(Debug, Clone)]
pub struct UpstreamTarget {
    pub video_id: String,
    /// The proven asset path; with the video id, the whole cache key.
    pub path: AssetPath,
    /// The viewer's query without the edge's token (forwarded to HTTP origins, never cached on).
    pub query: Option<String>,
    /// `Content-Type` the edge sets on the response (by extension).
    pub content_type: &'static str,
    pub audience: Audience,
}

/// Who a response is for, which decides its `Cache-Control`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// A viewer admitted by a token: caches on the way may keep it only privately.
    Viewer,
    /// A CDN pulling with the `[cdn]` secret: token-free and publicly cacheable.
    Cdn,
}

/// Who and what a request was about, filled in by handlers for logs and metrics.
#[derive(Debug, Default)]
pub struct Subject {
    pub video_id: Option<String>,
    pub user_id: Option<String>,
    /// The session id of the token that admitted the request.
    pub session_id: Option<String>,
    /// The license issued by this request (license and key endpoints).
    pub license_id: Option<String>,
    /// The client's address: the TCP peer, or behind `server.trusted_proxies` the address
    /// they forwarded (`playback::client_address`).
    pub client_ip: Option<IpAddr>,
    /// Why the request was refused, naming the failing field (never a token): logged, and sent
    /// in `X-Edge-Denial` when `debug.denial_header` is on.
    pub denial_detail: Option<String>,
}

/// Answers `route` for `req`, recording the subject as it becomes known. `body` is the request
/// body for routes that take one (admin and license endpoints).
pub async fn dispatch(
    edge: &Edge,
    route: Route,
    req: &RequestHeader,
    body: Option<Bytes>,
    subject: &mut Subject,
) -> Result<Outcome, EdgeError> {
    subject.video_id = route.video_id().map(str::to_string);
    let method = &req.method;
    if route != Route::NotFound && method == http::Method::OPTIONS {
        return ops::preflight(edge).map(Outcome::Reply);
    }
    let body = body.unwrap_or_default();
    let is_get = matches!(*method, http::Method::GET | http::Method::HEAD);
    let is_post = method == http::Method::POST;
    let reply = match route {
        Route::AdminRevocations if is_post => {
            admin::revoke(edge, req, Some(&body), subject).await?
        }
        Route::InternalRevocations if is_get => admin::deny_list(edge, req).await?,
        Route::Health if is_get => ops::health(),
        Route::Ready if is_get => ops::ready(edge).await,
        Route::Metrics if is_get => ops::metrics(edge),
        Route::PlaybackManifest { video_id } if is_get => {
            manifest::serve(edge, req, &video_id, subject).await?
        }
        Route::Hls { video_id, rest } if is_get => {
            return hls::serve(edge, req, &video_id, &rest, subject).await
        }
        Route::Key {
            video_id,
            key_id,
            token_segment,
        } if is_get => key::serve(edge, req, &video_id, &key_id, token_segment, subject).await?,
        Route::DrmLicense if is_post => drm::generic::serve(edge, req, &body, subject).await?,
        Route::ClearKey { video_id } if is_post => {
            drm::clearkey::serve(edge, req, &video_id, &body, subject).await?
        }
        Route::Widevine { video_id } if is_post => {
            drm::provider::serve(edge, Widevine, req, &video_id, &body, subject).await?
        }
        Route::PlayReady { video_id } if is_post => {
            drm::provider::serve(edge, PlayReady, req, &video_id, &body, subject).await?
        }
        Route::FairPlayCertificate if is_get => drm::fairplay::certificate(edge)?,
        Route::FairPlayLicense if is_post => {
            drm::fairplay::serve(edge, req, &body, subject).await?
        }
        Route::Stream { stream_id } if method == http::Method::DELETE => {
            drm::streams::stop(edge, req, &stream_id, subject).await?
        }
        Route::NotFound => return Err(EdgeError::NotFound),
        _ => return Err(EdgeError::MethodNotAllowed),
    };
    Ok(Outcome::Reply(reply))
}

/// The largest body `route` accepts, or `None` when it takes no body.
pub fn body_limit(edge: &Edge, route: &Route, method: &http::Method) -> Option<usize> {
    match route {
        Route::AdminRevocations if method == http::Method::POST => Some(admin::MAX_BODY),
        route if route.is_license() && method == http::Method::POST => {
            Some(edge.drm.max_request_bytes)
        }
        _ => None,
    }
}

/// Fails unless the control plane (or its cached answer) lets `user_id` play `video_id`;
/// returns the viewer's terms.
pub async fn require_entitlement(
    edge: &Edge,
    user_id: &str,
    video_id: &str,
) -> Result<Terms, EdgeError> {
    match edge.control_plane.entitlement(user_id, video_id).await {
        Ok(Entitlement::Allowed(terms)) => Ok(terms),
        Ok(Entitlement::Denied(reason)) => Err(EdgeError::Denied(reason)),
        Err(_) => Err(EdgeError::ControlPlaneUnavailable),
    }
}
