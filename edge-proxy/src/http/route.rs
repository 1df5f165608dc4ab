//! Where a request goes: the edge's whole URL space as one pure function of the path.
//!
//! Routing looks only at the raw (still percent-encoded) path. It checks the shape of ids so
//! that nothing downstream sees a malformed video or key id; the HLS remainder is handed on
//! untouched and proven safe by [`playback::hls::AssetPath`] before any origin is asked. The id
//! shapes are [`crate::core::ids`].

use crate::core::ids::{is_key_id, is_stream_id, is_video_id};
use crate::transport::perimeter::RouteGroup;

/// One of the edge's endpoints, with the ids parsed out of the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /health`: liveness.
    Health,
    /// `GET /ready`: readiness (origin and control plane reachable).
    Ready,
    /// `GET /metrics`: Prometheus text exposition.
    Metrics,
    /// `GET /playback/{videoId}/manifest`: trade a viewer JWT for a signed master-playlist URL.
    PlaybackManifest { video_id: String },
    /// `GET /hls/{videoId}/{rest}`: playlists and segments, admitted by a signed-URL token.
    Hls { video_id: String, rest: String },
    /// `GET /keys/{videoId}/{keyId}` (or `/keys/{videoId}/{token segment}/{keyId}` in path
    /// mode): the AES-128 content key, admitted by a session token. `token_segment` is the
    /// raw `name=value` segment, still escaped.
    Key {
        video_id: String,
        key_id: String,
        token_segment: Option<String>,
    },
    /// `POST /admin/revocations`: deny a session, JWT or user (admin JWT).
    AdminRevocations,
    /// `GET /internal/v1/revocations`: the current deny-list, for proxy-wasm filters and other
    /// edges (service token).
    InternalRevocations,
    /// `POST /drm/license`: the generic license endpoint, `{videoId, licenseRequest, drmSystem}`.
    DrmLicense,
    /// `POST /drm/clearkey/{videoId}`: W3C ClearKey license request in, JWK set out.
    ClearKey { video_id: String },
    /// `POST /drm/widevine/{videoId}`: a Widevine challenge, forwarded to the provider.
    Widevine { video_id: String },
    /// `POST /drm/playready/{videoId}`: a PlayReady challenge, forwarded to the provider.
    PlayReady { video_id: String },
    /// `GET /fps/certificate`: the FairPlay application certificate (public).
    FairPlayCertificate,
    /// `POST /fps/license?contentId={videoId}`: a FairPlay SPC in, a CKC out.
    FairPlayLicense,
    /// `DELETE /drm/streams/{streamId}`: the viewer stops a stream, freeing its slot.
    Stream { stream_id: String },
    /// Anything else.
    NotFound,
}

impl Route {
    /// Chooses the route for a raw request path (no query string).
    pub fn for_path(path: &str) -> Route {
        let Some(rest) = path.strip_prefix('/') else {
            return Route::NotFound;
        };
        match rest {
            "health" => return Route::Health,
            "ready" => return Route::Ready,
            "metrics" => return Route::Metrics,
            "admin/revocations" => return Route::AdminRevocations,
            "internal/v1/revocations" => return Route::InternalRevocations,
            "drm/license" => return Route::DrmLicense,
            "fps/certificate" => return Route::FairPlayCertificate,
            "fps/license" => return Route::FairPlayLicense,
            _ => {}
        }
        if let Some(drm) = rest.strip_prefix("drm/") {
            return Route::for_drm_path(drm);
        }
        let (section, rest) = rest.split_once('/').unwrap_or((rest, ""));
        let (video_id, tail) = rest.split_once('/').unwrap_or((rest, ""));
        if !is_video_id(video_id) {
            return Route::NotFound;
        }
        let video_id = video_id.to_string();
        match section {
            "playback" if tail == "manifest" => Route::PlaybackManifest { video_id },
            "hls" if !tail.is_empty() => Route::Hls {
                video_id,
                rest: tail.to_string(),
            },
            "keys" if is_key_id(tail) => Route::Key {
                video_id,
                key_id: tail.to_string(),
                token_segment: None,
            },
            "keys" => match tail.split_once('/') {
                Some((segment, key_id)) if segment.contains('=') && is_key_id(key_id) => {
                    Route::Key {
                        video_id,
                        key_id: key_id.to_string(),
                        token_segment: Some(segment.to_string()),
                    }
                }
                _ => Route::NotFound,
            },
            _ => Route::NotFound,
        }
    }

    /// `/drm/{system}/{videoId}` and `/drm/streams/{streamId}`.
    fn for_drm_path(rest: &str) -> Route {
        let Some((section, id)) = rest.split_once('/') else {
            return Route::NotFound;
        };
        if section == "streams" {
            return match is_stream_id(id) {
                true => Route::Stream {
                    stream_id: id.to_string(),
                },
                false => Route::NotFound,
            };
        }
        if !is_video_id(id) {
            return Route::NotFound;
        }
        let video_id = id.to_string();
        match section {
            "clearkey" => Route::ClearKey { video_id },
            "widevine" => Route::Widevine { video_id },
            "playready" => Route::PlayReady { video_id },
            _ => Route::NotFound,
        }
    }

    /// True for the license endpoints (POST bodies, rate limits, events).
    pub fn is_license(&self) -> bool {
        matches!(
            self,
            Route::DrmLicense
                | Route::ClearKey { .. }
                | Route::Widevine { .. }
                | Route::PlayReady { .. }
                | Route::FairPlayLicense
        )
    }

    /// The label used in metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Route::Health => "health",
            Route::Ready => "ready",
            Route::Metrics => "metrics",
            Route::PlaybackManifest { .. } => "manifest",
            Route::Hls { .. } => "hls",
            Route::Key { .. } => "key",
            Route::AdminRevocations | Route::InternalRevocations => "admin",
            Route::DrmLicense => "drm_license",
            Route::ClearKey { .. } => "drm_clearkey",
            Route::Widevine { .. } => "drm_widevine",
            Route::PlayReady { .. } => "drm_playready",
            Route::FairPlayCertificate => "fps_certificate",
            Route::FairPlayLicense => "fps_license",
            Route::Stream { .. } => "drm_stream",
            Route::NotFound => "not_found",
        }
    }

    /// The group whose `[route_groups]` policy admits the request; `cdn_pull` when an HLS or
    /// DASH request proved it comes from the CDN. Unknown paths count as playback, so a
    /// refused address learns nothing about which paths exist.
    pub fn group(&self, cdn_pull: bool) -> RouteGroup {
        match self {
            Route::Health | Route::Ready | Route::Metrics => RouteGroup::Ops,
            Route::AdminRevocations => RouteGroup::Admin,
            Route::InternalRevocations => RouteGroup::Internal,
            Route::Key { .. }
            | Route::DrmLicense
            | Route::ClearKey { .. }
            | Route::Widevine { .. }
            | Route::PlayReady { .. }
            | Route::FairPlayCertificate
            | Route::FairPlayLicense
            | Route::Stream { .. } => RouteGroup::License,
            Route::Hls { .. } if cdn_pull => RouteGroup::Cdn,
            Route::PlaybackManifest { .. } | Route::Hls { .. } | Route::NotFound => {
                RouteGroup::Playback
            }
        }
    }

    /// The video the request is about, if any.
    pub fn video_id(&self) -> Option<&str> {
        match self {
            Route::PlaybackManifest { video_id }
            | Route::Hls { video_id, .. }
            | Route::Key { video_id, .. }
            | Route::ClearKey { video_id }
            | Route::Widevine { video_id }
            | Route::PlayReady { video_id } => Some(video_id),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: &str = "0b6f2a8e-3c1d-4e5f-9a7b-112233445566";

    #[test]
    fn operational_routes() {
        assert_eq!(Route::for_path("/health"), Route::Health);
        assert_eq!(Route::for_path("/ready"), Route::Ready);
        assert_eq!(Route::for_path("/metrics"), Route::Metrics);
        assert_eq!(Route::for_path("/health/"), Route::NotFound);
        assert_eq!(Route::for_path(""), Route::NotFound);
        assert_eq!(Route::for_path("/"), Route::NotFound);
    }

    #[test]
    fn manifest_route() {
        assert_eq!(
            Route::for_path(&format!("/playback/{V}/manifest")),
            Route::PlaybackManifest { video_id: V.into() }
        );
        assert_eq!(
            Route::for_path(&format!("/playback/{V}/manifest/")),
            Route::NotFound
        );
        assert_eq!(Route::for_path(&format!("/playback/{V}")), Route::NotFound);
    }

    #[test]
    fn hls_route_keeps_the_raw_rest() {
        assert_eq!(
            Route::for_path(&format!("/hls/{V}/720p/seg%20001.ts")),
            Route::Hls {
                video_id: V.into(),
                rest: "720p/seg%20001.ts".into()
            }
        );
        assert_eq!(Route::for_path(&format!("/hls/{V}/")), Route::NotFound);
        assert_eq!(Route::for_path(&format!("/hls/{V}")), Route::NotFound);
    }

    #[test]
    fn key_route() {
        assert_eq!(
            Route::for_path(&format!("/keys/{V}/k1")),
            Route::Key {
                video_id: V.into(),
                key_id: "k1".into(),
                token_segment: None,
            }
        );
        assert_eq!(
            Route::for_path(&format!("/keys/{V}/hdnts=exp=1~acl=%2Fkeys*/k1")),
            Route::Key {
                video_id: V.into(),
                key_id: "k1".into(),
                token_segment: Some("hdnts=exp=1~acl=%2Fkeys*".into()),
            }
        );
        assert_eq!(Route::for_path(&format!("/keys/{V}/a/b")), Route::NotFound);
        assert_eq!(
            Route::for_path(&format!("/keys/{V}/a=1/b/c")),
            Route::NotFound
        );
        assert_eq!(
            Route::for_path("/admin/revocations"),
            Route::AdminRevocations
        );
        assert_eq!(
            Route::for_path("/internal/v1/revocations"),
            Route::InternalRevocations
        );
        assert_eq!(Route::for_path(&format!("/keys/{V}/..")), Route::NotFound);
        assert_eq!(Route::for_path(&format!("/keys/{V}/")), Route::NotFound);
    }

    #[test]
    fn drm_routes() {
        assert_eq!(Route::for_path("/drm/license"), Route::DrmLicense);
        assert_eq!(
            Route::for_path(&format!("/drm/clearkey/{V}")),
            Route::ClearKey { video_id: V.into() }
        );
        assert_eq!(
            Route::for_path(&format!("/drm/widevine/{V}")),
            Route::Widevine { video_id: V.into() }
        );
        assert_eq!(
            Route::for_path(&format!("/drm/playready/{V}")),
            Route::PlayReady { video_id: V.into() }
        );
        assert_eq!(
            Route::for_path("/fps/certificate"),
            Route::FairPlayCertificate
        );
        assert_eq!(Route::for_path("/fps/license"), Route::FairPlayLicense);
        assert_eq!(
            Route::for_path("/drm/streams/s-1"),
            Route::Stream {
                stream_id: "s-1".into()
            }
        );
        assert_eq!(Route::for_path("/drm/clearkey/abc"), Route::NotFound);
        assert_eq!(Route::for_path(&format!("/drm/other/{V}")), Route::NotFound);
        assert_eq!(Route::for_path("/drm/streams/.."), Route::NotFound);
        assert_eq!(Route::for_path("/drm/clearkey"), Route::NotFound);
        assert!(Route::for_path("/fps/license").is_license());
        assert!(!Route::for_path("/fps/certificate").is_license());
    }

    #[test]
    fn video_ids_must_be_uuid_shaped() {
        assert!(is_video_id(V));
        assert!(!is_video_id(&V.to_uppercase()));
        assert!(!is_video_id("0b6f2a8e3c1d4e5f9a7b112233445566"));
        assert!(!is_video_id("0b6f2a8e-3c1d-4e5f-9a7b-11223344556g"));
        assert!(!is_video_id("------------------------------------"));
        assert!(!is_video_id(".."));
        assert_eq!(Route::for_path("/hls/../etc/passwd"), Route::NotFound);
        assert_eq!(Route::for_path("/playback/abc/manifest"), Route::NotFound);
    }

    #[test]
    fn labels_and_video_ids() {
        let route = Route::for_path(&format!("/hls/{V}/master.m3u8"));
        assert_eq!(route.label(), "hls");
        assert_eq!(route.video_id(), Some(V));
        assert_eq!(Route::NotFound.video_id(), None);
    }
}
