//! The edge as a Pingora [`ProxyHttp`]: one method per request phase, each delegating to the
//! domain modules.
//!
//! - `request_filter` reads the request's facts once ([`RequestFacts`]: the clock, the client
//!   address, the credentials), routes, and answers everything the edge serves itself (health,
//!   readiness, metrics, manifests, playlists, keys, licenses, directory-origin segments) via
//!   [`handlers::dispatch`].
//! - Only segments of an HTTP or S3 origin continue, admitted already, into pingora-cache
//!   (`request_cache_filter`, `cache_key_callback`, `response_cache_filter`; see [`crate::cache`]):
//!   a hit is answered from memory, concurrent misses wait on one origin fetch (the cache lock),
//!   and a stored copy answers while the origin fails (stale-if-error).
//! - Misses go to `upstream_peer` / `upstream_request_filter` (one retry per other backend on a
//!   connect failure, `fail_to_connect`) and stream back through `response_filter` /
//!   `response_body_filter`, where origin errors become the edge's JSON errors and
//!   `Cache-Control` is set for the audience (viewer or CDN).
//! - `logging` writes the request down, once ([`RequestLog`]): metrics, the denial counter,
//!   the `PlaybackError` event and the access-log line.

use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::cache::cache_control::CacheControl;
use pingora::cache::{CacheKey, CachePhase, NoCacheReason, RespCacheable};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorSource, ErrorType};

use super::facts::RequestFacts;
use super::handlers::{self, Outcome, UpstreamTarget};
use super::log::RequestLog;
use super::reply::Reply;
use super::route::Route;
use super::upstream;
use super::Edge;
use crate::core::clock::Now;
use crate::core::errors::{EdgeError, Failure};
use crate::delivery::cache::SegmentCache;
use crate::delivery::origin::OriginError;
use crate::delivery::segments::{segment_cache_control, Audience};
use crate::gate::propagation::redact_path;
use crate::transport::client_certificates::{is_tls, presented_certificate, tls_digest};
use playback::route_policy::ClientCertificate;

/// Per-request state shared across phases.
pub struct RequestCtx {
    /// The clock, read when the request arrived.
    now: Now,
    log: RequestLog,
    /// Set when the request is proxied to the HTTP or S3 origin.
    upstream: Option<UpstreamTarget>,
    /// The HTTP origin servers this request has tried, in order (a connect failure moves on).
    origin_servers: Vec<usize>,
    /// Set when an origin error response is replaced by the edge's JSON error body.
    replacement_body: Option<Bytes>,
    /// The byte range to cut from an origin body the cache did not keep (see `response_filter`).
    body_cut: Option<BodyCut>,
}

#[async_trait]
impl ProxyHttp for Edge {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            now: Now::read(),
            log: RequestLog::new(Instant::now()),
            upstream: None,
            origin_servers: Vec::new(),
            replacement_body: None,
            body_cut: None,
        }
    }

    /// Routes the request and answers it unless it is a segment for the HTTP origin.
    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<bool> {
        let route = Route::for_path(session.req_header().uri.path());
        ctx.log.route = route.label();
        ctx.log.reports_errors = route.is_license()
            || matches!(route, Route::Key { .. } | Route::PlaybackManifest { .. });
        let client_ip = self.client_ip(session);
        let tls = tls_digest(session.digest());
        let certificate = presented_certificate(tls.as_deref());
        ctx.log.client_certificate = certificate.map(identity_for_log);
        let cdn_pull =
            matches!(route, Route::Hls { .. }) && self.is_cdn_pull(session, client_ip, certificate);
        let admitted = self
            .ops
            .perimeter
            .check(route.group(cdn_pull), client_ip, certificate);
        let handled = match admitted {
            Ok(()) => {
                let body = match handlers::body_limit(self, &route, &session.req_header().method) {
                    Some(limit) => read_body(session, limit).await,
                    None => Ok(None),
                };
                let mut facts = RequestFacts::read(session.req_header(), client_ip, ctx.now);
                facts.cdn_pull = cdn_pull;
                match body {
                    Ok(body) => handlers::dispatch(self, route, &facts, body).await,
                    Err(error) => Err(error.into()),
                }
            }
            // Refused by address or certificate: no body is read and no handler runs.
            Err(reason) => Err(EdgeError::Denied(reason).into()),
        };
        let reply = match handled {
            Ok(answered) => {
                ctx.log.ids = answered.ids;
                match answered.outcome {
                    Outcome::Proxy(target) => {
                        ctx.upstream = Some(target);
                        return Ok(false);
                    }
                    Outcome::Reply(reply) => reply,
                }
            }
            Err(refused) => {
                ctx.log.ids = *refused.ids;
                let reply = self.refusal(&refused.failure);
                ctx.log.failure = Some(refused.failure);
                reply
            }
        };
        let reply = match &self.ops.cors_allow_origin {
            Some(origin) => reply.header("access-control-allow-origin", origin.as_str()),
            None => reply,
        };
        let reply = match (&self.ops.hsts, is_tls(session.digest())) {
            (Some(hsts), true) => reply.header("strict-transport-security", hsts.as_str()),
            _ => reply,
        };
        let head_only = session.req_header().method == http::Method::HEAD;
        reply.send(session, head_only).await?;
        Ok(true)
    }

    /// Admitted segment requests of a proxied origin go through the segment cache.
    fn request_cache_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        let cacheable_method = matches!(
            session.req_header().method,
            http::Method::GET | http::Method::HEAD
        );
        if let (Some(cache), Some(_), true) = (
            &self.delivery.segment_cache,
            &ctx.upstream,
            cacheable_method,
        ) {
            session
                .cache
                .enable(cache.storage(), None, None, Some(cache.lock()), None);
            // Pingora refuses by Content-Length before the storage is asked, and remembers.
            session
                .cache
                .set_max_file_size_bytes(cache.max_object_bytes());
        }
        Ok(())
    }

    /// The origin object's key: video id and proven asset path, nothing from the viewer.
    fn cache_key_callback(
        &self,
        _session: &Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<CacheKey> {
        match &ctx.upstream {
            Some(target) => Ok(SegmentCache::key(
                &target.video_id,
                &target.path,
                target.query.as_deref(),
            )),
            None => Error::e_explain(ErrorType::InternalError, "cache key without a segment"),
        }
    }

    /// What the origin's answer allows: see [`SegmentCache::cacheability`].
    fn response_cache_filter(
        &self,
        _session: &Session,
        response: &ResponseHeader,
        _ctx: &mut RequestCtx,
    ) -> pingora::Result<RespCacheable> {
        Ok(match &self.delivery.segment_cache {
            Some(cache) => cache.cacheability(response),
            None => RespCacheable::Uncacheable(NoCacheReason::NeverEnabled),
        })
    }

    /// The origin backend for this attempt.
    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<Box<HttpPeer>> {
        match self
            .delivery
            .origin
            .upstream_peer(&mut ctx.origin_servers)
            .await
        {
            Ok(peer) => Ok(Box::new(peer)),
            Err(OriginError::Failed(cause)) => Error::e_explain(ErrorType::ConnectNoRoute, cause),
            Err(other) => Error::e_explain(ErrorType::ConnectNoRoute, other.to_string()),
        }
    }

    /// A backend that cannot be reached is retried on the next one, while there is one.
    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        if ctx.origin_servers.len() < self.delivery.origin.max_attempts() {
            e.set_retry(true);
        }
        e
    }

    /// Rewrites the request for the origin: its path layout, its `Host` (and an S3 signature),
    /// no edge token, no viewer credentials. pingora-cache has already turned it into a
    /// whole-object GET (or a revalidation) when the segment cache is on.
    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        let Some(target) = &ctx.upstream else {
            return Ok(());
        };
        let request = self
            .delivery
            .origin
            .prepare_upstream_request(
                &upstream_request.method,
                &upstream_request.headers,
                &ctx.origin_servers,
                &target.video_id,
                &target.path,
                target.query.as_deref(),
                ctx.now.unix,
            )
            .map_err(|e| {
                Error::because(ErrorType::InternalError, "building the origin request", e)
            })?;
        upstream::apply(&request, upstream_request)
    }

    /// Sets the segment's `Content-Type` and `Cache-Control` (for a viewer or a CDN) and
    /// `X-Cache-Status`, or swaps an origin error for the edge's JSON error.
    async fn response_filter(
        &self,
        session: &mut Session,
        response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        let Some(target) = &ctx.upstream else {
            return Ok(());
        };
        let cache_status = cache_status(session.cache.phase());
        if let Some(status) = cache_status {
            self.ops.metrics.segment_cache(status);
        }
        if cache_status == Some("bypass") && response.status == 200 {
            // pingora-cache asked the origin for the whole object, then found it too large to
            // keep (or uncacheable): the viewer's range is cut here instead.
            ctx.body_cut = BodyCut::for_range(session.req_header(), response);
        }
        match response.status.as_u16() {
            200..=299 | 304 | 416 => {
                response.insert_header(http::header::CONTENT_TYPE, target.content_type)?;
                let cache_control = self.segment_cache_control(session, response, target.audience);
                response.insert_header(http::header::CACHE_CONTROL, cache_control)?;
                response.remove_header(&http::header::SET_COOKIE);
                if let Some(status) = cache_status {
                    response.insert_header("x-cache-status", status.to_ascii_uppercase())?;
                }
            }
            404 | 410 => ctx.replacement_body = replace_with_error(response, &EdgeError::NotFound)?,
            status => {
                tracing::warn!(status, "origin answered a segment request with an error");
                ctx.replacement_body = replace_with_error(response, &EdgeError::OriginUnavailable)?;
            }
        }
        if let Some(origin) = &self.ops.cors_allow_origin {
            response.insert_header("access-control-allow-origin", origin.as_str())?;
        }
        if let (Some(hsts), true) = (&self.ops.hsts, is_tls(session.digest())) {
            response.insert_header("strict-transport-security", hsts.as_str())?;
        }
        Ok(())
    }

    /// Streams segment bytes untouched, or emits the replacement error body.
    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<Option<std::time::Duration>> {
        if let Some(replacement) = &ctx.replacement_body {
            *body = end_of_stream.then(|| replacement.clone());
        } else if let Some(cut) = &mut ctx.body_cut {
            *body = body.take().and_then(|chunk| cut.apply(chunk));
        }
        Ok(None)
    }

    /// Answers proxy failures (origin down, timeouts) with the JSON error, if still possible.
    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let error = match e.esource() {
            ErrorSource::Downstream => None,
            ErrorSource::Upstream => Some(EdgeError::OriginUnavailable),
            ErrorSource::Internal | ErrorSource::Unset => Some(EdgeError::Internal),
        };
        let mut error_code = 0;
        if let (Some(error), None) = (error, session.response_written()) {
            error_code = error.status();
            ctx.log.failure = Some(error.clone().into());
            let head_only = session.req_header().method == http::Method::HEAD;
            if let Err(write_error) = Reply::error(&error).send(session, head_only).await {
                tracing::debug!(error = %write_error, "could not send the error response");
            }
        }
        FailToProxy {
            error_code,
            can_reuse_downstream: false,
        }
    }

    /// Writes the request down, once (metrics, the denial counter, the error event, the
    /// access-log line; never tokens or query strings).
    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut RequestCtx) {
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let req = session.req_header();
        let path = redact_path(req.uri.path(), self.gate.sessions.token_name());
        ctx.log.write(
            &self.ops.metrics,
            &self.records.analytics,
            &req.method,
            &path,
            status,
            ctx.now.unix_ms,
        );
    }

    /// Pingora's own error logs describe a request with this: no query string and no token
    /// path segment, so no tokens.
    fn request_summary(&self, session: &Session, _ctx: &RequestCtx) -> String {
        let req = session.req_header();
        format!(
            "{} {}",
            req.method,
            redact_path(req.uri.path(), self.gate.sessions.token_name())
        )
    }
}

impl Edge {
    /// True when the request proves it comes from the CDN: with a `[cdn]` secret configured it
    /// must carry it (and, when `[route_groups.cdn]` requires one, a certificate as well —
    /// checked as the CDN group's policy); without a secret, a certificate the CDN group's
    /// policy requires and admits is the proof.
    fn is_cdn_pull(
        &self,
        session: &Session,
        client_ip: Option<std::net::IpAddr>,
        certificate: Option<&ClientCertificate>,
    ) -> bool {
        match &self.gate.cdn {
            Some(cdn) => cdn.admits(&session.req_header().headers),
            None => self.ops.perimeter.certifies_cdn(client_ip, certificate),
        }
    }

    /// The client's address: the TCP peer, or behind a trusted proxy the rightmost untrusted
    /// address of the forwarding header (`playback::client_address`).
    fn client_ip(&self, session: &Session) -> Option<std::net::IpAddr> {
        let rule = &self.ops.client_addresses;
        let peer = session.client_addr()?.as_inet()?.ip();
        if !rule.reads_header() {
            return Some(peer.to_canonical());
        }
        let header = rule.header().name();
        let values: Vec<&str> = session
            .req_header()
            .headers
            .get_all(header)
            .iter()
            // A value that is not text ends the walk there, like any unparseable hop.
            .map(|v| v.to_str().unwrap_or_default())
            .collect();
        Some(rule.client_address(peer, &values))
    }

    /// A proxied segment's `Cache-Control`: its remaining freshness in the cache (or the
    /// origin's own lifetime, or the default), `public` for a CDN and `private` for a viewer;
    /// `immutable` when the origin set no policy of its own. An origin's `no-store` or
    /// `private` is passed on as it is, whoever asks.
    fn segment_cache_control(
        &self,
        session: &Session,
        response: &ResponseHeader,
        audience: Audience,
    ) -> String {
        if let Some(control) = CacheControl::from_resp_headers(response) {
            if control.no_store() {
                return "no-store".into();
            }
            if control.private() {
                return "private, no-cache".into();
            }
        }
        let origin_policy = response.headers.contains_key(http::header::CACHE_CONTROL)
            || response.headers.contains_key(http::header::EXPIRES);
        let max_age = match session.cache.maybe_cache_meta() {
            Some(meta) => meta
                .fresh_until()
                .duration_since(std::time::SystemTime::now())
                .map_or(0, |left| left.as_secs()),
            None if origin_policy => 0,
            None => self.delivery.segment_max_age_secs,
        };
        segment_cache_control(audience, max_age, !origin_policy)
    }

    /// The error response for `failure`; with `debug.denial_header`, refusals carry
    /// `X-Edge-Denial: <code>; <detail>` (counting happens once, in `logging`).
    fn refusal(&self, failure: &Failure) -> Reply {
        let reply = Reply::error(&failure.error);
        let Some(reason) = failure.error.denial() else {
            return reply;
        };
        if !self.ops.denial_header {
            return reply;
        }
        let detail = failure.detail.as_deref().unwrap_or(reason.message());
        let value: String = format!("{}; {detail}", reason.code())
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        reply.header("x-edge-denial", value)
    }
}

/// The part of a streamed body a single-range request wants, `start..end` of the whole.
struct BodyCut {
    start: usize,
    end: usize,
    /// Body offset of the next chunk.
    offset: usize,
}

impl BodyCut {
    /// Turns `response` (a whole 200) into the 206 or 416 that `req`'s `Range` asks for;
    /// `None` when there is no single satisfiable-or-not range to apply (then it stays 200).
    fn for_range(req: &RequestHeader, response: &mut ResponseHeader) -> Option<BodyCut> {
        req.headers.get(http::header::RANGE)?;
        // Pingora refuses as soon as the count of ranges reaches the limit: 2 = one range only.
        match pingora::proxy::range_header_filter(req, response, Some(2)) {
            pingora::proxy::RangeType::Single(range) => Some(BodyCut {
                start: range.start,
                end: range.end,
                offset: 0,
            }),
            pingora::proxy::RangeType::Invalid => Some(BodyCut {
                start: 0,
                end: 0,
                offset: 0,
            }),
            _ => None,
        }
    }

    /// The slice of `chunk` inside the range, if any.
    fn apply(&mut self, chunk: Bytes) -> Option<Bytes> {
        let chunk_start = self.offset;
        self.offset += chunk.len();
        let from = self.start.max(chunk_start).min(self.offset) - chunk_start;
        let to = self.end.min(self.offset).max(chunk_start) - chunk_start;
        (from < to).then(|| chunk.slice(from..to))
    }
}

/// How the access log names a client certificate: its CN, its fingerprint, and whether it
/// verified (never the whole certificate).
fn identity_for_log(certificate: &ClientCertificate) -> String {
    let fingerprint = hex::encode(certificate.sha256);
    let verdict = match &certificate.verification {
        Ok(()) => "verified",
        Err(why) => why.as_str(),
    };
    format!(
        "cn={};sha256={fingerprint};{verdict}",
        certificate.common_name.as_deref().unwrap_or("-")
    )
}

/// `X-Cache-Status` and the metric label for a cache phase; `None` when the cache was never
/// on for the request.
fn cache_status(phase: CachePhase) -> Option<&'static str> {
    Some(match phase {
        CachePhase::Hit => "hit",
        CachePhase::Miss => "miss",
        CachePhase::Stale | CachePhase::StaleUpdating => "stale",
        CachePhase::Revalidated | CachePhase::RevalidatedNoCache(_) => "revalidated",
        CachePhase::Expired => "expired",
        CachePhase::Disabled(NoCacheReason::NeverEnabled) => return None,
        CachePhase::Disabled(_) | CachePhase::Bypass => "bypass",
        CachePhase::Uninit | CachePhase::CacheKey => return None,
    })
}

/// Reads a request body of at most `limit` bytes (admin and license endpoints only).
async fn read_body(session: &mut Session, limit: usize) -> Result<Option<Bytes>, EdgeError> {
    let mut body = bytes::BytesMut::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Err(EdgeError::BodyTooLarge { limit });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(Some(body.freeze())),
            Err(e) => {
                return Err(EdgeError::InvalidRequest(format!(
                    "the body could not be read ({})",
                    e.etype().as_str()
                )))
            }
        }
    }
}

/// Replaces an origin's error header with the edge's JSON error; returns the body to send
/// (none when the origin's response has no body to replace).
fn replace_with_error(
    response: &mut ResponseHeader,
    error: &EdgeError,
) -> pingora::Result<Option<Bytes>> {
    let origin_has_body = response
        .headers
        .get(http::header::CONTENT_LENGTH)
        .is_none_or(|len| len.as_bytes() != b"0");
    let body = if origin_has_body {
        Bytes::from(error.body())
    } else {
        Bytes::new()
    };
    let mut replaced = ResponseHeader::build(error.status(), Some(3))?;
    replaced.insert_header(http::header::CONTENT_TYPE, "application/json")?;
    replaced.insert_header(http::header::CACHE_CONTROL, "no-store")?;
    replaced.insert_header(http::header::CONTENT_LENGTH, body.len().to_string())?;
    *response = replaced;
    Ok(origin_has_body.then_some(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut_for(range: &str, len: usize) -> (Option<BodyCut>, ResponseHeader) {
        let mut req = RequestHeader::build("GET", b"/hls/v/seg.ts", None).unwrap();
        req.insert_header("range", range).unwrap();
        let mut response = ResponseHeader::build(200, None).unwrap();
        response.insert_header("content-length", len).unwrap();
        (BodyCut::for_range(&req, &mut response), response)
    }

    #[test]
    fn a_single_range_is_cut_across_chunks() {
        let (cut, response) = cut_for("bytes=3-8", 12);
        let mut cut = cut.expect("one range");
        assert_eq!(response.status, 206);
        assert_eq!(response.headers["content-range"], "bytes 3-8/12");
        let chunks: Vec<Option<Bytes>> = [&b"0123"[..], b"4567", b"89ab"]
            .into_iter()
            .map(|c| cut.apply(Bytes::copy_from_slice(c)))
            .collect();
        assert_eq!(
            chunks,
            vec![
                Some(Bytes::from_static(b"3")),
                Some(Bytes::from_static(b"4567")),
                Some(Bytes::from_static(b"8"))
            ]
        );
    }

    #[test]
    fn unsatisfiable_ranges_send_nothing_and_several_ranges_send_everything() {
        let (cut, response) = cut_for("bytes=50-60", 12);
        assert_eq!(response.status, 416);
        assert_eq!(cut.expect("a 416").apply(Bytes::from_static(b"0123")), None);
        let (cut, response) = cut_for("bytes=0-1,4-5", 12);
        assert!(cut.is_none());
        assert_eq!(response.status, 200);
    }
}
