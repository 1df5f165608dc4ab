//! Machine reason codes for every refusal.
//!
//! A denial is never an opaque 403: each one names what failed with a stable code that appears
//! in the JSON error body, the logs and the metrics label. The HTTP status is chosen by the
//! caller, because the same reason maps differently by credential (a bad JWT is 401, a bad
//! signed URL is 403).

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// No credential was presented.
    MissingToken,
    /// The credential could not be parsed, or is larger than allowed.
    Malformed,
    /// The signature does not match.
    BadSignature,
    /// The credential's lifetime has ended.
    Expired,
    /// The credential is not valid yet.
    NotYetValid,
    /// The signed URL does not cover the requested path.
    AclMismatch,
    /// The token is bound to another client IP address or network.
    IpMismatch,
    /// The token, its session or its user was revoked before it expired.
    Revoked,
    /// The token names a key (`kid`, `Key-Pair-Id`) this service does not know.
    UnknownKey,
    /// The JWT was issued by someone else.
    WrongIssuer,
    /// The JWT was issued for another audience.
    WrongAudience,
    /// The JWT uses an algorithm this verifier is not pinned to.
    UnsupportedAlgorithm,
    /// The JWT's `sub` cannot name a user (empty, too long, control characters).
    InvalidSubject,
    /// The viewer neither owns the title nor belongs to its organization or project.
    NotEntitled,
    /// The title is DRM-protected and the viewer's tier does not include DRM.
    TierRequired,
    /// The title does not exist.
    NotFound,
    /// The title exists but has not finished transcoding.
    NotReady,
    /// The content key was revoked.
    KeyRevoked,
    /// A license request names a key id the title does not have.
    UnknownKid,
    /// The viewer sent more requests per second than their limit allows.
    RateLimited,
    /// The viewer already has as many streams open as their tier allows.
    StreamLimit,
    /// The license request's device does not match the device the viewer's token is bound to,
    /// or a device id is required and missing.
    DeviceMismatch,
    /// The client's address is not allowed on this group of routes.
    IpNotAllowed,
    /// This group of routes needs a TLS client certificate and none was presented.
    ClientCertificateRequired,
    /// The client certificate did not verify, or is not one this group of routes allows.
    ClientCertificateRejected,
}

impl Reason {
    /// Every reason, for metrics pre-registration and exhaustive tests.
    pub const ALL: [Reason; 25] = [
        Reason::MissingToken,
        Reason::Malformed,
        Reason::BadSignature,
        Reason::Expired,
        Reason::NotYetValid,
        Reason::AclMismatch,
        Reason::IpMismatch,
        Reason::Revoked,
        Reason::UnknownKey,
        Reason::WrongIssuer,
        Reason::WrongAudience,
        Reason::UnsupportedAlgorithm,
        Reason::InvalidSubject,
        Reason::NotEntitled,
        Reason::TierRequired,
        Reason::NotFound,
        Reason::NotReady,
        Reason::KeyRevoked,
        Reason::UnknownKid,
        Reason::RateLimited,
        Reason::StreamLimit,
        Reason::DeviceMismatch,
        Reason::IpNotAllowed,
        Reason::ClientCertificateRequired,
        Reason::ClientCertificateRejected,
    ];

    /// The stable machine code, e.g. `"bad_signature"`.
    pub fn code(self) -> &'static str {
        match self {
            Reason::MissingToken => "missing_token",
            Reason::Malformed => "malformed",
            Reason::BadSignature => "bad_signature",
            Reason::Expired => "expired",
            Reason::NotYetValid => "not_yet_valid",
            Reason::AclMismatch => "acl_mismatch",
            Reason::IpMismatch => "ip_mismatch",
            Reason::Revoked => "revoked",
            Reason::UnknownKey => "unknown_key",
            Reason::WrongIssuer => "wrong_issuer",
            Reason::WrongAudience => "wrong_audience",
            Reason::UnsupportedAlgorithm => "unsupported_algorithm",
            Reason::InvalidSubject => "invalid_subject",
            Reason::NotEntitled => "not_entitled",
            Reason::TierRequired => "tier_required",
            Reason::NotFound => "not_found",
            Reason::NotReady => "not_ready",
            Reason::KeyRevoked => "key_revoked",
            Reason::UnknownKid => "unknown_kid",
            Reason::RateLimited => "rate_limited",
            Reason::StreamLimit => "stream_limit",
            Reason::DeviceMismatch => "device_mismatch",
            Reason::IpNotAllowed => "ip_not_allowed",
            Reason::ClientCertificateRequired => "client_certificate_required",
            Reason::ClientCertificateRejected => "client_certificate_rejected",
        }
    }

    /// A sentence for humans; never contains the credential itself.
    pub fn message(self) -> &'static str {
        match self {
            Reason::MissingToken => "No token was presented; send a JWT in `Authorization: Bearer` or the signed URL's token parameter.",
            Reason::Malformed => "The token could not be parsed.",
            Reason::BadSignature => "The token's signature does not match; it was altered or signed with another key.",
            Reason::Expired => "The token has expired; request a new playback URL.",
            Reason::NotYetValid => "The token is not valid yet; check the clock of the system that issued it.",
            Reason::AclMismatch => "The token does not cover this path; it was issued for another video or resource.",
            Reason::IpMismatch => "The token is bound to another client address; request a new playback URL from this network.",
            Reason::Revoked => "The token, its playback session or its user was revoked.",
            Reason::UnknownKey => "The token names a signing key this service does not know.",
            Reason::WrongIssuer => "The token was issued by an issuer this service does not trust.",
            Reason::WrongAudience => "The token was issued for another audience.",
            Reason::UnsupportedAlgorithm => "The token's signing algorithm is not the one this service is pinned to.",
            Reason::InvalidSubject => "The JWT's `sub` must be 1 to 255 bytes without control characters.",
            Reason::NotEntitled => "You do not own this video and are not a member of its organization or project.",
            Reason::TierRequired => "This video is DRM-protected, which requires a Pro or Enterprise subscription.",
            Reason::NotFound => "No such video.",
            Reason::NotReady => "The video has not finished transcoding yet.",
            Reason::KeyRevoked => "The content key for this video was revoked.",
            Reason::UnknownKid => "The license request names a key id this video does not have.",
            Reason::RateLimited => "Too many requests; retry after the time in Retry-After.",
            Reason::StreamLimit => "Your subscription's limit of concurrent streams is reached; stop another stream or retry after the time in Retry-After.",
            Reason::DeviceMismatch => "The license request's device id is missing or differs from the device your token was issued for.",
            Reason::IpNotAllowed => "Requests from your network are not allowed on this endpoint.",
            Reason::ClientCertificateRequired => "This endpoint needs a TLS client certificate; connect over HTTPS with one issued by the operator's client CA.",
            Reason::ClientCertificateRejected => "Your TLS client certificate did not verify (expired, or from another CA) or is not allowed on this endpoint.",
        }
    }

    /// Parses a code produced by [`Reason::code`] (used when a reason crosses a service boundary).
    pub fn from_code(code: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.code() == code)
    }
}

/// The JSON body of every refusal, at the edge and in the filter:
/// `{"error": "<code>", "message": "<sentence>"}`.
pub fn error_body(code: &str, message: &str) -> String {
    // Two quoted strings, not a `json!` map: the proxy-wasm filter counts its bytes.
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    format!(
        r#"{{"error":{},"message":{}}}"#,
        quote(code),
        quote(message)
    )
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            assert!(seen.insert(r.code()), "duplicate code {}", r.code());
            assert_eq!(Reason::from_code(r.code()), Some(r));
            assert!(!r.message().is_empty());
        }
        assert_eq!(Reason::from_code("nope"), None);
    }
}
