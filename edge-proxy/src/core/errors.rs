//! Every way a request can fail, as one type that knows its HTTP status, machine code and
//! human sentence.
//!
//! Clients always get `{"error": "<code>", "message": "<sentence>"}`. Denials carry the
//! [`playback::Reason`] code; the status depends on which credential failed: a bad viewer JWT
//! is 401, a bad signed-URL token 403, and entitlement outcomes map to 403/404/409/410.
//! Messages never contain tokens, keys or secrets. A [`Failure`] adds the refusal's detail.

use playback::denial::error_body;
use playback::token::admission::PathError;
use playback::Reason;

/// Why the edge refused or could not serve a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EdgeError {
    /// The viewer JWT on a manifest request is missing or invalid.
    #[error("viewer token refused: {}", .0.code())]
    Jwt(Reason),
    /// The signed-URL token on an HLS or key request is missing or invalid.
    #[error("signed URL refused: {}", .0.code())]
    UrlToken(Reason),
    /// The control plane said no (or does not know the title or key).
    #[error("access denied: {}", .0.code())]
    Denied(Reason),
    /// The HLS path is not a plain relative file path.
    #[error("bad path")]
    BadPath,
    /// No such route or file.
    #[error("not found")]
    NotFound,
    /// The route exists but not for this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The origin's playlist exceeds `origin.max_playlist_bytes`.
    #[error("playlist larger than {limit} bytes")]
    PlaylistTooLarge { limit: u64 },
    /// The origin's playlist could not be parsed or rewritten.
    #[error("origin playlist is invalid")]
    BadPlaylist,
    /// The origin's MPD could not be parsed or rewritten (not XML, a DTD, a bad template).
    #[error("origin MPD is invalid")]
    BadMpd,
    /// The origin failed or answered with an error.
    #[error("origin unavailable")]
    OriginUnavailable,
    /// The control plane could not be reached or answered unexpectedly.
    #[error("control plane unavailable")]
    ControlPlaneUnavailable,
    /// A wrapped content key from the control plane did not unwrap.
    #[error("content key unavailable")]
    KeyUnavailable,
    /// A bug or an unexpected internal failure.
    #[error("internal error")]
    Internal,
    /// An admin endpoint was called with a valid JWT that lacks the `admin` role.
    #[error("admin role required")]
    AdminRequired,
    /// An admin request body is not what the endpoint takes.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A revocation was applied on this edge but could not be persisted to Redis.
    #[error("revocation store unavailable")]
    RevocationStoreUnavailable,
    /// An internal endpoint was called without the service token.
    #[error("service token required")]
    ServiceTokenRequired,
    /// A rate or stream limit was hit; the client may retry after `retry_after_secs`.
    #[error("limited: {}", .reason.code())]
    Limited {
        reason: Reason,
        retry_after_secs: u64,
    },
    /// A license request (CDM message) is malformed; `code` names what, never the bytes.
    #[error("invalid license request: {code}")]
    BadLicenseRequest { code: &'static str, detail: String },
    /// The DRM system is not configured on this edge.
    #[error("{0} is not configured")]
    DrmSystemUnavailable(&'static str),
    /// The license provider refused the challenge as malformed (the client's fault).
    #[error("provider refused the challenge: {0}")]
    ProviderRejected(&'static str),
    /// The license provider failed, refused our credentials, or could not be reached.
    #[error("provider failed: {0}")]
    ProviderFailed(&'static str),
    /// The request body exceeds the endpoint's limit.
    #[error("body larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    /// The license could not be recorded in the outbox, so it is not issued.
    #[error("license record unavailable")]
    LicenseRecordUnavailable,
}

impl EdgeError {
    /// The HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            EdgeError::Jwt(_) => 401,
            EdgeError::UrlToken(_) => 403,
            EdgeError::Denied(reason) => denial_status(*reason),
            EdgeError::BadPath => 400,
            EdgeError::NotFound => 404,
            EdgeError::MethodNotAllowed => 405,
            EdgeError::PlaylistTooLarge { .. }
            | EdgeError::BadPlaylist
            | EdgeError::BadMpd
            | EdgeError::OriginUnavailable
            | EdgeError::KeyUnavailable => 502,
            EdgeError::ControlPlaneUnavailable => 503,
            EdgeError::Internal => 500,
            EdgeError::AdminRequired => 403,
            EdgeError::InvalidRequest(_) => 400,
            EdgeError::RevocationStoreUnavailable => 503,
            EdgeError::ServiceTokenRequired => 401,
            EdgeError::Limited { .. } => 429,
            EdgeError::BadLicenseRequest { .. } | EdgeError::ProviderRejected(_) => 400,
            EdgeError::DrmSystemUnavailable(_) => 404,
            EdgeError::ProviderFailed(_) => 502,
            EdgeError::LicenseRecordUnavailable => 503,
            EdgeError::BodyTooLarge { .. } => 413,
        }
    }

    /// The machine code in the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            EdgeError::Jwt(r) | EdgeError::UrlToken(r) | EdgeError::Denied(r) => r.code(),
            EdgeError::BadPath => "bad_path",
            EdgeError::NotFound => "not_found",
            EdgeError::MethodNotAllowed => "method_not_allowed",
            EdgeError::PlaylistTooLarge { .. } => "playlist_too_large",
            EdgeError::BadPlaylist => "bad_playlist",
            EdgeError::BadMpd => "bad_mpd",
            EdgeError::OriginUnavailable => "origin_unavailable",
            EdgeError::ControlPlaneUnavailable => "control_plane_unavailable",
            EdgeError::KeyUnavailable => "key_unavailable",
            EdgeError::Internal => "internal",
            EdgeError::AdminRequired => "admin_required",
            EdgeError::InvalidRequest(_) => "invalid_request",
            EdgeError::RevocationStoreUnavailable => "revocation_store_unavailable",
            EdgeError::ServiceTokenRequired => "unauthorized",
            EdgeError::Limited { reason, .. } => reason.code(),
            EdgeError::BadLicenseRequest { code, .. } => code,
            EdgeError::DrmSystemUnavailable(_) => "drm_system_unavailable",
            EdgeError::ProviderRejected(code) => code,
            EdgeError::ProviderFailed(code) => code,
            EdgeError::LicenseRecordUnavailable => "license_record_unavailable",
            EdgeError::BodyTooLarge { .. } => "body_too_large",
        }
    }

    /// The human sentence in the JSON body.
    pub fn message(&self) -> String {
        match self {
            EdgeError::Jwt(r) | EdgeError::UrlToken(r) | EdgeError::Denied(r) => {
                r.message().to_string()
            }
            EdgeError::BadPath => PathError::BadPath.message().into(),
            EdgeError::NotFound => PathError::NotFound.message().into(),
            EdgeError::MethodNotAllowed => "This method is not allowed at this path.".into(),
            EdgeError::PlaylistTooLarge { limit } => {
                format!("The origin's playlist is larger than the edge's limit of {limit} bytes.")
            }
            EdgeError::BadPlaylist => "The origin's playlist could not be rewritten.".into(),
            EdgeError::BadMpd => "The origin's MPD could not be rewritten.".into(),
            EdgeError::OriginUnavailable => "The origin could not be reached or failed.".into(),
            EdgeError::ControlPlaneUnavailable => {
                "The control plane could not be reached; try again shortly.".into()
            }
            EdgeError::KeyUnavailable => "The content key could not be obtained.".into(),
            EdgeError::Internal => "The edge failed unexpectedly.".into(),
            EdgeError::AdminRequired => "This endpoint needs a JWT with the `admin` role.".into(),
            EdgeError::InvalidRequest(why) => format!("The request is invalid: {why}."),
            EdgeError::RevocationStoreUnavailable => {
                "The revocation applies on this edge but could not be stored in Redis for the others; retry.".into()
            }
            EdgeError::ServiceTokenRequired => {
                "This endpoint needs `Authorization: Bearer <service token>`.".into()
            }
            EdgeError::Limited { reason, .. } => reason.message().to_string(),
            EdgeError::BadLicenseRequest { detail, .. } => {
                format!("The license request is invalid: {detail}.")
            }
            EdgeError::DrmSystemUnavailable(system) => {
                format!("{system} licenses are not configured on this edge.")
            }
            EdgeError::ProviderRejected(_) => {
                "The license service refused the license challenge as invalid.".into()
            }
            EdgeError::ProviderFailed(_) => {
                "The license service failed or could not be reached; try again shortly.".into()
            }
            EdgeError::LicenseRecordUnavailable => {
                "The license could not be recorded, so it was not issued; try again shortly."
                    .into()
            }
            EdgeError::BodyTooLarge { limit } => {
                format!("The request body is larger than this endpoint's limit of {limit} bytes.")
            }
        }
    }

    /// The denial reason, when this error is a refusal (counted in `edge_denials_total`).
    pub fn denial(&self) -> Option<Reason> {
        match self {
            EdgeError::Jwt(r) | EdgeError::UrlToken(r) | EdgeError::Denied(r) => Some(*r),
            EdgeError::Limited { reason, .. } => Some(*reason),
            _ => None,
        }
    }

    /// The JSON body sent to the client (`playback::denial::error_body`, as the filter's).
    pub fn body(&self) -> String {
        error_body(self.code(), &self.message())
    }

    /// This error with the one-line detail that explains it.
    pub fn because(self, detail: impl Into<String>) -> Failure {
        Failure {
            error: self,
            detail: Some(detail.into()),
        }
    }
}

impl From<PathError> for EdgeError {
    fn from(error: PathError) -> Self {
        match error {
            PathError::NotFound => EdgeError::NotFound,
            PathError::BadPath => EdgeError::BadPath,
        }
    }
}

/// An [`EdgeError`] and, for refusals, a one-line detail naming what failed (never a token):
/// logged as `denialDetail`, and sent in `X-Edge-Denial` when `debug.denial_header` is on.
/// The detail travels on the error, so no step writes into a shared record of the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub error: EdgeError,
    pub detail: Option<String>,
}

impl From<EdgeError> for Failure {
    fn from(error: EdgeError) -> Self {
        Failure {
            error,
            detail: None,
        }
    }
}

/// Status for an entitlement or key outcome from the control plane.
fn denial_status(reason: Reason) -> u16 {
    match reason {
        Reason::NotFound => 404,
        Reason::NotReady => 409,
        Reason::KeyRevoked => 410,
        Reason::UnknownKid => 404,
        Reason::RateLimited | Reason::StreamLimit => 429,
        _ => 403,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_credential() {
        assert_eq!(EdgeError::Jwt(Reason::MissingToken).status(), 401);
        assert_eq!(EdgeError::Jwt(Reason::Expired).status(), 401);
        assert_eq!(EdgeError::UrlToken(Reason::Expired).status(), 403);
        assert_eq!(EdgeError::Denied(Reason::NotEntitled).status(), 403);
        assert_eq!(EdgeError::Denied(Reason::TierRequired).status(), 403);
        assert_eq!(EdgeError::Denied(Reason::NotFound).status(), 404);
        assert_eq!(EdgeError::Denied(Reason::NotReady).status(), 409);
        assert_eq!(EdgeError::Denied(Reason::KeyRevoked).status(), 410);
        assert_eq!(EdgeError::ControlPlaneUnavailable.status(), 503);
        assert_eq!(EdgeError::BadPath.status(), 400);
        assert_eq!(EdgeError::PlaylistTooLarge { limit: 1 }.status(), 502);
        let limited = EdgeError::Limited {
            reason: Reason::StreamLimit,
            retry_after_secs: 3,
        };
        assert_eq!((limited.status(), limited.code()), (429, "stream_limit"));
        assert_eq!(EdgeError::Denied(Reason::UnknownKid).status(), 404);
        assert_eq!(
            EdgeError::ProviderFailed("drm_provider_unavailable").status(),
            502
        );
        assert_eq!(
            EdgeError::ProviderRejected("invalid_license_challenge").status(),
            400
        );
    }

    #[test]
    fn body_is_code_and_message() {
        let body: serde_json::Value =
            serde_json::from_str(&EdgeError::UrlToken(Reason::AclMismatch).body()).unwrap();
        assert_eq!(body["error"], "acl_mismatch");
        assert!(body["message"].as_str().unwrap().len() > 10);
        let body: serde_json::Value =
            serde_json::from_str(&EdgeError::ControlPlaneUnavailable.body()).unwrap();
        assert_eq!(body["error"], "control_plane_unavailable");
    }
}
