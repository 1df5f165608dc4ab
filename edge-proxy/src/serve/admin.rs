//! `POST /admin/revocations`: deny a playback session, a JWT (`jti`) or a user before their
//! tokens expire.
//!
//! Body: exactly one of `{"sessionId": "..."}`, `{"jti": "..."}`, `{"userId": "..."}`, plus an
//! optional `"ttlSecs"` (default `revocation.default_ttl_secs`, at most
//! `revocation.max_ttl_secs`; choose at least the remaining lifetime of the tokens to kill).
//! Needs `Authorization: Bearer <JWT with role admin>`. Answers
//! `200 {"kind","id","expiresAt","shared"}`; `shared` says whether other edges learn of it
//! through Redis (else the revocation is local to this edge).

use pingora::http::RequestHeader;
use serde::Deserialize;
use serde_json::json;

use super::manifest::rfc3339;
use super::Subject;
use crate::edge::{now_unix, Edge};
use crate::errors::EdgeError;
use crate::reply::Reply;
use crate::revocation::{Revocation, RevokedKind};

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
    edge: &Edge,
    req: &RequestHeader,
    body: Option<&[u8]>,
    subject: &mut Subject,
) -> Result<Reply, EdgeError> {
    let claims = edge.viewer(req).await?;
    subject.user_id = Some(claims.sub.clone());
    if !claims.is_admin() {
        return Err(EdgeError::AdminRequired);
    }
    let body: RevokeBody = serde_json::from_slice(body.unwrap_or_default())
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
    let list = &edge.revocations;
    let ttl = body.ttl_secs.unwrap_or(list.default_ttl_secs);
    if ttl == 0 || ttl > list.max_ttl_secs {
        return Err(EdgeError::InvalidRequest(format!(
            "ttlSecs must be 1 to {}",
            list.max_ttl_secs
        )));
    }
    let expires_at = now_unix() + ttl;
    let stored = list
        .revoke(Revocation {
            kind,
            id: id.clone(),
            expires_at,
        })
        .await;
    tracing::info!(admin = %claims.sub, kind = kind.label(), shared = list.is_shared(), "revocation applied");
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
