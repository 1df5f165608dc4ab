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

use crate::control_plane::Entitlement;
use crate::edge::Edge;
use crate::errors::EdgeError;
use crate::reply::Reply;
use crate::route::Route;

/// How a request is answered.
pub enum Outcome {
    /// The edge answers itself.
    Reply(Reply),
    /// Pingora proxies the request to the HTTP origin.
    Proxy(UpstreamTarget),
}

/// A segment request to forward to the HTTP origin.
#[derive(Debug, Clone)]
pub struct UpstreamTarget {
    /// Request target on the origin: `{base_path}/{videoId}/{path}?{query without tokens}`.
    pub path_and_query: String,
    /// `Content-Type` the edge sets on the response (by extension).
    pub content_type: &'static str,
}

/// Who and what a request was about, filled in by handlers for logs and metrics.
#[derive(Debug, Default)]
pub struct Subject {
    pub video_id: Option<String>,
    pub user_id: Option<String>,
    /// The session id of the token that admitted the request.
    pub session_id: Option<String>,
    /// The client's address (the TCP peer).
    pub client_ip: Option<IpAddr>,
    /// Why the request was refused, naming the failing field (never a token): logged, and sent
    /// in `X-Edge-Denial` when `debug.denial_header` is on.
    pub denial_detail: Option<String>,
}

/// Answers `route` for `req`, recording the subject as it becomes known.
pub async fn dispatch(
    edge: &Edge,
    route: Route,
    req: &RequestHeader,
    body: Option<Bytes>,
    subject: &mut Subject,
) -> Result<Outcome, EdgeError> {
    subject.video_id = route.video_id().map(str::to_string);
    if route == Route::AdminRevocations {
        if req.method != http::Method::POST {
            return Err(EdgeError::MethodNotAllowed);
        }
        return admin::revoke(edge, req, body.as_deref(), subject)
            .await
            .map(Outcome::Reply);
    }
    if route == Route::InternalRevocations {
        if !matches!(req.method, http::Method::GET | http::Method::HEAD) {
            return Err(EdgeError::MethodNotAllowed);
        }
        return admin::deny_list(edge, req).await.map(Outcome::Reply);
    }
    if route != Route::NotFound && req.method == http::Method::OPTIONS {
        return ops::preflight(edge).map(Outcome::Reply);
    }
    if route != Route::NotFound && !matches!(req.method, http::Method::GET | http::Method::HEAD) {
        return Err(EdgeError::MethodNotAllowed);
    }
    let reply = match route {
        Route::Health => ops::health(),
        Route::Ready => ops::ready(edge).await,
        Route::Metrics => ops::metrics(edge),
        Route::PlaybackManifest { video_id } => {
            manifest::serve(edge, req, &video_id, subject).await?
        }
        Route::Hls { video_id, rest } => {
            return hls::serve(edge, req, &video_id, &rest, subject).await
        }
        Route::Key {
            video_id,
            key_id,
            token_segment,
        } => key::serve(edge, req, &video_id, &key_id, token_segment, subject).await?,
        Route::AdminRevocations | Route::InternalRevocations | Route::NotFound => {
            return Err(EdgeError::NotFound)
        }
    };
    Ok(Outcome::Reply(reply))
}

/// Fails unless the control plane (or its cached answer) lets `user_id` play `video_id`.
pub async fn require_entitlement(
    edge: &Edge,
    user_id: &str,
    video_id: &str,
) -> Result<(), EdgeError> {
    match edge.control_plane.entitlement(user_id, video_id).await {
        Ok(Entitlement::Allowed) => Ok(()),
        Ok(Entitlement::Denied(reason)) => Err(EdgeError::Denied(reason)),
        Err(_) => Err(EdgeError::ControlPlaneUnavailable),
    }
}
