//! Request extractors: the viewer's JWT (and the admin role), the edge's service token, JSON
//! bodies held to a per-type size limit ([`JsonBody`]) and path ids.
//!
//! Each one rejects with an [`ApiError`], so every refusal is JSON with a reason code.

use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use playback::jwt::Claims;
use playback::Reason;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::error::ApiError;
use super::AppState;
use crate::db::now;
use crate::db::users::valid_user_id;

/// An authenticated viewer (a verified HS256 JWT). Their user row exists once extracted.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub claims: Claims,
}

impl Viewer {
    /// The JWT subject: the user id.
    pub fn user_id(&self) -> &str {
        &self.claims.sub
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let token = bearer(&parts.headers).ok_or(ApiError::jwt(Reason::MissingToken))?;
        // The subject becomes a user row; verification already refused one that cannot name a
        // user (401 `invalid_subject`: empty, over 255 bytes, control characters).
        let claims = app.jwt.verify(token, unix_now()).map_err(ApiError::jwt)?;
        app.ensure_user(&claims.sub).await?;
        Ok(Viewer { claims })
    }
}

/// A viewer whose verified JWT carries the `admin` role (`roles` claim); others get 403
/// `admin_required` (401 without a valid JWT).
#[derive(Debug, Clone)]
pub struct Admin(pub Viewer);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let viewer = Viewer::from_request_parts(parts, app).await?;
        if viewer.claims.is_admin() {
            Ok(Admin(viewer))
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "admin_required",
                "This endpoint needs a JWT with the admin role.",
            ))
        }
    }
}

/// The edge, authenticated by the shared service token (compared in constant time).
#[derive(Debug, Clone, Copy)]
pub struct EdgeService;

impl FromRequestParts<AppState> for EdgeService {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let presented = bearer(&parts.headers).unwrap_or("");
        // Comparing digests keeps the comparison constant-time regardless of length.
        let digest = Sha256::digest(presented.as_bytes());
        if bool::from(digest.as_slice().ct_eq(&app.service_token_digest)) {
            Ok(EdgeService)
        } else {
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "The internal API needs the edge's service token in `Authorization: Bearer`.",
            ))
        }
    }
}

/// A JSON request body and the most bytes its endpoint reads. Every [`ApiJson`] body names
/// its limit, so a new JSON endpoint cannot fall back to axum's 2 MiB default.
pub trait JsonBody: DeserializeOwned {
    /// Larger bodies are refused with 413 `payload_too_large`, before any parsing.
    const MAX_BYTES: usize;
}

/// The limit of JSON bodies that hold a few ids, names or settings.
pub const SMALL_JSON_BODY: usize = 4 * 1024;

/// A JSON body held to [`JsonBody::MAX_BYTES`], whose rejections (too large, bad syntax, wrong
/// shape, wrong content type) are JSON errors.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: JsonBody,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let limit = T::MAX_BYTES;
        // A declared length over the limit is refused without reading a byte of the body.
        if content_length(req.headers()).is_some_and(|n| n > limit as u64) {
            return Err(ApiError::body_too_large(limit));
        }
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, limit)
            .await
            .map_err(|e| body_read_error(&e, limit))?;
        match Json::<T>::from_request(Request::from_parts(parts, Body::from(bytes)), state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// The `Content-Length` a request declares, if any.
pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn body_read_error(e: &axum::Error, limit: usize) -> ApiError {
    let over_limit =
        std::error::Error::source(e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
    if over_limit {
        ApiError::body_too_large(limit)
    } else {
        // The client stopped sending part-way (or sent a broken chunked body).
        ApiError::bad_request(
            "invalid_request",
            "The request body could not be read to its end.",
        )
    }
}

/// A query string whose rejections (wrong types, e.g. `limit=abc`) are 400 `invalid_query`.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(ApiError::bad_request(
                "invalid_query",
                format!("The query string is invalid: {}", rejection.body_text()),
            )),
        }
    }
}

/// A user id in a path (a JWT `sub`): 1..=255 bytes, no control characters; anything else is
/// an unknown user (404).
pub fn path_user_id(raw: &str) -> Result<&str, ApiError> {
    if !valid_user_id(raw) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_user",
            "No such user.",
        ));
    }
    Ok(raw)
}

/// A display name (organization, project, tier): trimmed, 1..=`max` characters, no control
/// characters; else 422 `invalid_name`.
pub fn valid_name(raw: &str, max: usize) -> Result<String, ApiError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > max || name.chars().any(char::is_control) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_name",
            format!("`name` must be 1 to {max} characters without control characters."),
        ));
    }
    Ok(name.to_string())
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send the body as JSON with `Content-Type: application/json`.",
        ),
        JsonRejection::JsonSyntaxError(e) => ApiError::bad_request(
            "invalid_json",
            format!("The request body is not valid JSON: {}", e.body_text()),
        ),
        JsonRejection::JsonDataError(e) => ApiError::bad_request(
            "invalid_request",
            format!("The request body has the wrong shape: {}", e.body_text()),
        ),
        other => ApiError::bad_request(
            "invalid_request",
            format!("The request body could not be read: {}", other.body_text()),
        ),
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    playback::jwt::bearer_token(headers.get(header::AUTHORIZATION)?.to_str().ok()?)
}

/// A path id that must be a UUID; anything else is an unknown resource (404).
pub fn path_uuid(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found())
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    u64::try_from(now().unix_timestamp()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn bearer_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  abc "),
        );
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&h), None);
    }

    #[test]
    fn path_ids() {
        assert!(path_uuid("not-a-uuid").is_err());
        assert!(path_uuid("6f1c7a8e-3b9f-4d3a-9c59-1f7f1d2f0a11").is_ok());
    }
}
