//! The edge as a Pingora [`ProxyHttp`]: one method per request phase, each delegating to the
//! domain modules.
//!
//! - `request_filter` routes and answers everything the edge serves itself (health, readiness,
//!   metrics, manifests, playlists, keys, directory-origin segments) via [`serve::dispatch`].
//! - Only segments of an HTTP origin continue to `upstream_peer` / `upstream_request_filter`,
//!   and stream back through `response_filter` / `response_body_filter`, where origin errors
//!   become the edge's JSON errors.
//! - `logging` records metrics and one JSON access-log line per request.

use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorSource, ErrorType};

use crate::analytics::Event;
use crate::edge::Edge;
use crate::errors::EdgeError;
use crate::origin::{Origin, OriginError};
use crate::reply::Reply;
use crate::route::Route;
use crate::serve::{self, Outcome, Subject, UpstreamTarget};
use crate::sessions::propagation::redact_path;

/// Per-request state shared across phases.
pub struct RequestCtx {
    started: Instant,
    route: &'static str,
    subject: Subject,
    /// Set when the request is proxied to the HTTP origin.
    upstream: Option<UpstreamTarget>,
    /// Set when an origin error response is replaced by the edge's JSON error body.
    replacement_body: Option<Bytes>,
    /// The refusal's reason code, for the access log.
    denial: Option<&'static str>,
}

#[async_trait]
impl ProxyHttp for Edge {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            started: Instant::now(),
            route: Route::NotFound.label(),
            subject: Subject::default(),
            upstream: None,
            replacement_body: None,
            denial: None,
        }
    }

    /// Routes the request and answers it unless it is a segment for the HTTP origin.
    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<bool> {
        let route = Route::for_path(session.req_header().uri.path());
        ctx.route = route.label();
        ctx.subject.client_ip = session
            .client_addr()
            .and_then(|addr| addr.as_inet())
            .map(|addr| addr.ip().to_canonical());
        let body = match serve::body_limit(self, &route, &session.req_header().method) {
            Some(limit) => read_body(session, limit).await,
            None => Ok(None),
        };
        let reports_errors = route.is_license()
            || matches!(route, Route::Key { .. } | Route::PlaybackManifest { .. });
        let outcome = match body {
            Ok(body) => {
                serve::dispatch(self, route, session.req_header(), body, &mut ctx.subject).await
            }
            Err(error) => Err(error),
        };
        let reply = match outcome {
            Ok(Outcome::Proxy(target)) => {
                ctx.upstream = Some(target);
                return Ok(false);
            }
            Ok(Outcome::Reply(reply)) => reply,
            Err(error) => {
                ctx.denial = error.denial().map(|r| r.code());
                if reports_errors {
                    self.drm.analytics.emit(Event::playback_error(
                        ctx.subject.user_id.as_deref(),
                        ctx.subject.video_id.as_deref(),
                        ctx.subject.session_id.as_deref(),
                        error.code(),
                        error.status(),
                    ));
                }
                self.refusal(&error, &mut ctx.subject)
            }
        };
        let reply = match &self.cors_allow_origin {
            Some(origin) => reply.header("access-control-allow-origin", origin.as_str()),
            None => reply,
        };
        let head_only = session.req_header().method == http::Method::HEAD;
        reply.send(session, head_only).await?;
        Ok(true)
    }

    /// The HTTP origin, resolved now.
    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut RequestCtx,
    ) -> pingora::Result<Box<HttpPeer>> {
        let Origin::Http(origin) = &self.origin else {
            return Error::e_explain(ErrorType::InternalError, "proxying without an HTTP origin");
        };
        match origin.peer().await {
            Ok(peer) => Ok(Box::new(peer)),
            Err(OriginError::Failed(cause)) => Error::e_explain(ErrorType::ConnectNoRoute, cause),
            Err(other) => Error::e_explain(ErrorType::ConnectNoRoute, other.to_string()),
        }
    }

    /// Rewrites the request for the origin: its path layout, its `Host`, no edge token.
    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        let (Some(target), Origin::Http(origin)) = (&ctx.upstream, &self.origin) else {
            return Ok(());
        };
        let uri = target
            .path_and_query
            .parse()
            .map_err(|e| Error::because(ErrorType::InternalError, "building the origin URI", e))?;
        upstream_request.set_uri(uri);
        upstream_request.insert_header(http::header::HOST, origin.authority())?;
        upstream_request.remove_header(&http::header::AUTHORIZATION);
        upstream_request.remove_header(&http::header::COOKIE);
        Ok(())
    }

    /// Sets the segment's `Content-Type`, or swaps an origin error for the edge's JSON error.
    async fn response_filter(
        &self,
        _session: &mut Session,
        response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        let Some(target) = &ctx.upstream else {
            return Ok(());
        };
        match response.status.as_u16() {
            200..=299 | 304 | 416 => {
                response.insert_header(http::header::CONTENT_TYPE, target.content_type)?;
            }
            404 | 410 => ctx.replacement_body = replace_with_error(response, &EdgeError::NotFound)?,
            status => {
                tracing::warn!(status, "origin answered a segment request with an error");
                ctx.replacement_body = replace_with_error(response, &EdgeError::OriginUnavailable)?;
            }
        }
        if let Some(origin) = &self.cors_allow_origin {
            response.insert_header("access-control-allow-origin", origin.as_str())?;
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
        }
        Ok(None)
    }

    /// Answers proxy failures (origin down, timeouts) with the JSON error, if still possible.
    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        _ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let error = match e.esource() {
            ErrorSource::Downstream => None,
            ErrorSource::Upstream => Some(EdgeError::OriginUnavailable),
            ErrorSource::Internal | ErrorSource::Unset => Some(EdgeError::Internal),
        };
        let mut error_code = 0;
        if let (Some(error), None) = (error, session.response_written()) {
            error_code = error.status();
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

    /// Records metrics and writes the access-log line (never tokens or query strings).
    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut RequestCtx) {
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let elapsed = ctx.started.elapsed();
        self.metrics.request(ctx.route, status, elapsed);
        tracing::info!(
            route = ctx.route,
            status,
            latencyMs = elapsed.as_secs_f64() * 1000.0,
            method = %session.req_header().method,
            path = %redact_path(session.req_header().uri.path(), self.sessions.token_name()),
            videoId = ctx.subject.video_id.as_deref(),
            userId = ctx.subject.user_id.as_deref(),
            sessionId = ctx.subject.session_id.as_deref(),
            licenseId = ctx.subject.license_id.as_deref(),
            denial = ctx.denial,
            denialDetail = ctx.subject.denial_detail.as_deref(),
            "request"
        );
    }

    /// Pingora's own error logs describe a request with this: no query string and no token
    /// path segment, so no tokens.
    fn request_summary(&self, session: &Session, _ctx: &RequestCtx) -> String {
        let req = session.req_header();
        format!(
            "{} {}",
            req.method,
            redact_path(req.uri.path(), self.sessions.token_name())
        )
    }
}

impl Edge {
    /// The error response for `error`, counting it as a denial when it is one; with
    /// `debug.denial_header`, refusals carry `X-Edge-Denial: <code>; <detail>`.
    fn refusal(&self, error: &EdgeError, subject: &mut Subject) -> Reply {
        let reply = Reply::error(error);
        let Some(reason) = error.denial() else {
            return reply;
        };
        self.metrics.denial(reason);
        if !self.denial_header {
            return reply;
        }
        let detail = subject
            .denial_detail
            .get_or_insert_with(|| reason.message().to_string());
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
