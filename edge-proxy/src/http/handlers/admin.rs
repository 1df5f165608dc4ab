//! `POST /admin/revocations`: deny a playback session, a JWT (`jti`) or a user before their
//! tokens expire.
//!
//! Body: exactly one of `{"sessionId": "..."}`, `{"jti": "..."}`, `{"userId": "..."}`, plus an
//! optional `"ttlSecs"` (default `revocation.default_ttl_secs`, at most
//! `revocation.max_ttl_secs`; choose at least the remaining lifetime of the tokens to kill).
//! Needs `Authorization: Bearer <JWT with role admin>`. Answers
//! `200 {"kind","id","expiresAt","shared"}`; `shared` says whether other edges learn of it
//! through Redis (else the revocation is local to this edge).
//!
//! `GET /internal/v1/revocations`: the current deny-list for proxy-wasm filters (and other
//! edges). Needs `Authorization: Bearer <service token>` (`control_plane.service_token_file`,
//! compared in constant time). Answers `200 {"revocations": [{"kind": "session"|"jti"|"user",
//! "id": "...", "expiresAt": <unix>}], "generatedAt": <unix>}`.

use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::viewer::authenticate;
use super::{Answered, Ids, Outcome, Refused};
use crate::core::clock::rfc3339;
use crate::core::errors::EdgeError;
use crate::gate::revocation::{Revocation, Revocations, RevokedKind};
use crate::gate::Gate;
use crate::http::facts::RequestFacts;
use crate::http::reply::Reply;
use crate::http::Ops;

/// Largest body accepted.
pub const MAX_BODY: usize = 4 * 1024;

/// Longest id accepted in a revocation.
const MAX_ID_LEN: usize = 512;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RevokeBody {
    session_id: Option<String>,
    jti: Option<String>,
    user_id: Option<String>,
    ttl_secs: Option<u64>,
}

pub async fn revoke(
    gate: &Gate,
    facts: &RequestFacts<'_>,
    body: &[u8],
) -> Result<Answered, Refused> {
    let (claims, ids) = authenticate(gate, facts, Ids::default()).await?;
    if !claims.is_admin() {
        return Err(ids.refused(EdgeError::AdminRequired));
    }
    let reply = apply(&gate.revocations, &claims.sub, body, facts.now.unix)
        .await
        .map_err(|e| ids.refused(e))?;
    Ok(ids.answered(Outcome::Reply(reply)))
}

/// Applies the revocation `body` asks for, on behalf of `admin`.
async fn apply(
    list: &Revocations,
    admin: &str,
    body: &[u8],
    now_unix: u64,
) -> Result<Reply, EdgeError> {
    let body: RevokeBody = serde_json::from_slice(body)
        .map_err(|e| EdgeError::InvalidRequest(format!("body is not a revocation ({e})")))?;
    let (kind, id) = match (body.session_id, body.jti, body.user_id) {
        (Some(id), None, None) => (RevokedKind::Session, id),
        (None, Some(id), None) => (RevokedKind::Jti, id),
        (None, None, Some(id)) => (RevokedKind::User, id),
        _ => {
            return Err(EdgeError::InvalidRequest(
                "name exactly one of sessionId, jti, userId".into(),
            ))
        }
    };
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(EdgeError::InvalidRequest(format!(
            "the id must be 1 to {MAX_ID_LEN} bytes"
        )));
    }
    let ttl = body.ttl_secs.unwrap_or(list.default_ttl_secs);
    if ttl == 0 || ttl > list.max_ttl_secs {
        return Err(EdgeError::InvalidRequest(format!(
            "ttlSecs must be 1 to {}",
            list.max_ttl_secs
        )));
    }
    let expires_at = now_unix + ttl;
    let stored = list
        .revoke(
            Revocation {
                kind,
                id: id.clone(),
                expires_at,
            },
            now_unix,
        )
        .await;
    tracing::info!(admin = %admin, kind = kind.label(), shared = list.is_shared(), "revocation applied");
    if let Err(e) = stored {
        tracing::error!(error = %e, "revocation not persisted to redis");
        return Err(EdgeError::RevocationStoreUnavailable);
    }
    Ok(Reply::json(
        200,
        &json!({
            "kind": kind.label(),
            "id": id,
            "expiresAt": rfc3339(expires_at),
            "shared": list.is_shared(),
        }),
    ))
}

/// `GET /internal/v1/revocations`: the deny-list as it stands on this edge.
pub fn deny_list(
    revocations: &Revocations,
    ops: &Ops,
    facts: &RequestFacts<'_>,
) -> Result<Answered, Refused> {
    let given = facts
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !service_token_matches(&ops.service_token_digest, given) {
        return Err(EdgeError::ServiceTokenRequired.into());
    }
    let listed: Vec<_> = revocations
        .snapshot()
        .into_iter()
        .map(|r| json!({"kind": r.kind.label(), "id": r.id, "expiresAt": r.expires_at}))
        .collect();
    let reply = Reply::json(
        200,
        &json!({"revocations": listed, "generatedAt": facts.now.unix}),
    )
    .header("cache-control", "no-store");
    Ok(Ids::default().answered(Outcome::Reply(reply)))
}

/// Compares the digests of the expected and given tokens without an early exit.
fn service_token_matches(expected_digest: &[u8; 32], given: &str) -> bool {
    let given = given.trim();
    let digest: [u8; 32] = Sha256::digest(given.as_bytes()).into();
    !given.is_empty() && bool::from(digest.ct_eq(expected_digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_token_comparison() {
        let digest: [u8; 32] = Sha256::digest(b"abc").into();
        assert!(service_token_matches(&digest, "abc"));
        assert!(!service_token_matches(&digest, "abd"));
        assert!(!service_token_matches(&digest, ""));
    }
}
