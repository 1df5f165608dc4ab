//! One handler per route family. Each is a short function from the request's facts and the
//! parts it uses to an [`Answered`] (a reply, or a segment for Pingora to proxy) or a
//! [`Refused`], each carrying the ids the request turned out to be about, for the access log:
//! parse -> gate (who) -> access (may they) -> licensing or delivery -> records -> reply.
//!
//! - [`manifest`]: `GET /playback/{videoId}/manifest`.
//! - [`hls`]: `GET /hls/{videoId}/...`, playlists and segments.
//! - [`key`]: `GET /keys/{videoId}/{keyId}`, the AES-128 key.
//! - [`licenses`]: ClearKey, FairPlay, Widevine, PlayReady and the generic `POST /drm/license`.
//! - [`streams`]: `DELETE /drm/streams/{streamId}`.
//! - [`admin`]: revocations in, the deny-list out.
//! - [`ops`]: `/health`, `/ready`, `/metrics`, CORS preflights.

pub mod admin;
pub mod hls;
pub mod key;
pub mod licenses;
pub mod manifest;
pub mod ops;
mod outcome;
pub mod streams;
mod viewer;

pub use outcome::{Answered, Ids, Outcome, Refused, UpstreamTarget};

use bytes::Bytes;

use super::facts::RequestFacts;
use super::reply::Reply;
use super::route::Route;
use super::Edge;
use crate::core::errors::EdgeError;
use crate::licensing::System;

/// Answers `route`. `body` is the request body for routes that take one (admin and license
/// endpoints).
pub async fn dispatch(
    edge: &Edge,
    route: Route,
    facts: &RequestFacts<'_>,
    body: Option<Bytes>,
) -> Result<Answered, Refused> {
    let ids = route.video_id().map(Ids::video).unwrap_or_default();
    let method = facts.method;
    if route != Route::NotFound && method == http::Method::OPTIONS {
        return ops::preflight(&edge.ops)
            .map(|reply| ids.clone().answered(Outcome::Reply(reply)))
            .map_err(|e| ids.refused(e));
    }
    let body = body.unwrap_or_default();
    let is_get = matches!(*method, http::Method::GET | http::Method::HEAD);
    let is_post = method == http::Method::POST;
    let license = licenses::Parts {
        gate: &edge.gate,
        access: &edge.access,
        licensing: &edge.licensing,
        records: &edge.records,
    };
    let reply = |reply: Reply| Ok(ids.clone().answered(Outcome::Reply(reply)));
    match route {
        Route::AdminRevocations if is_post => admin::revoke(&edge.gate, facts, &body).await,
        Route::InternalRevocations if is_get => {
            admin::deny_list(&edge.gate.revocations, &edge.ops, facts)
        }
        Route::Health if is_get => reply(ops::health()),
        Route::Ready if is_get => reply(ops::ready(&edge.delivery, &edge.ops).await),
        Route::Metrics if is_get => reply(ops::metrics(edge)),
        Route::PlaybackManifest { video_id } if is_get => {
            let (gate, access, delivery) = (&edge.gate, &edge.access, &edge.delivery);
            manifest::serve(gate, access, delivery, &edge.ops, facts, &video_id).await
        }
        Route::Hls { video_id, .. } if is_get => {
            let parts = hls::Parts {
                gate: &edge.gate,
                access: &edge.access,
                delivery: &edge.delivery,
                analytics: &edge.records.analytics,
                public_base_url: &edge.ops.public_base_url,
            };
            hls::serve(&parts, facts, &video_id).await
        }
        Route::Key {
            video_id,
            key_id,
            token_segment,
        } if is_get => {
            key::serve(&license, facts, &video_id, &key_id, token_segment.is_some()).await
        }
        Route::DrmLicense if is_post => licenses::generic(&license, facts, &body).await,
        Route::ClearKey { video_id } if is_post => {
            licenses::clearkey(&license, facts, &video_id, &body).await
        }
        Route::Widevine { video_id } if is_post => {
            licenses::provider(&license, System::Widevine, facts, &video_id, &body).await
        }
        Route::PlayReady { video_id } if is_post => {
            licenses::provider(&license, System::PlayReady, facts, &video_id, &body).await
        }
        Route::FairPlayCertificate if is_get => licenses::fairplay_certificate(&edge.licensing)
            .map(|reply| ids.clone().answered(Outcome::Reply(reply)))
            .map_err(|e| ids.refused(e)),
        Route::FairPlayLicense if is_post => licenses::fairplay(&license, facts, &body).await,
        Route::Stream { stream_id } if method == http::Method::DELETE => {
            streams::stop(&edge.gate, &edge.access, facts, &stream_id).await
        }
        Route::NotFound => Err(ids.refused(EdgeError::NotFound)),
        _ => Err(ids.refused(EdgeError::MethodNotAllowed)),
    }
}

/// The largest body `route` accepts, or `None` when it takes no body.
pub fn body_limit(edge: &Edge, route: &Route, method: &http::Method) -> Option<usize> {
    match route {
        Route::AdminRevocations if method == http::Method::POST => Some(admin::MAX_BODY),
        route if route.is_license() && method == http::Method::POST => {
            Some(edge.licensing.max_request_bytes)
        }
        _ => None,
    }
}
