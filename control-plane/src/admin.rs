//! Administrative changes, shared by the admin API and the CLI: the content-key lifecycle
//! (generate, rotate, retire, revoke) and setting a user's subscription.
//!
//! Changes edges must hear about (retire, revoke, subscription) write the database first, then
//! notify edges through [`Invalidator`]; the answer says whether edges were notified
//! (`edgesNotified`), and a failed notification never undoes or fails the database change.
//! Key operations call custody *before* writing anything (nothing half-written when it is
//! down), drop custody's cached plaintext on retire/revoke, and leave one key audit record each
//! ([`crate::db::key_audit`]), failures included.

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::content_keys::{AddKeyOutcome, RetireOutcome};
use crate::db::key_audit::{audit, KeyAction, KeyEvent};
use crate::db::{now, Db, DbError};
use crate::invalidation::{Invalidation, Invalidator};
use crate::keys::{CustodyError, KeyCustody};

/// Why a key lifecycle operation was refused or failed. Never carries key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyOpError {
    /// No such title, or the title has no such key.
    #[error("{0}")]
    NotFound(&'static str),
    /// The operation does not fit the key's state (e.g. retiring the current key).
    #[error("{0}")]
    Conflict(String),
    #[error("key custody: {0}")]
    Custody(#[from] CustodyError),
    #[error("{0}")]
    Db(#[from] DbError),
}

/// A key made for a title by generate or rotate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyIssued {
    pub video_id: String,
    /// The new current key of the title.
    pub key_id: String,
    /// The key that was current before (it keeps serving until retired); null for the first.
    pub previous_key_id: Option<String>,
    /// RFC 3339, UTC.
    pub created_at: String,
}

/// The answer to a key retirement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyRetirement {
    pub video_id: String,
    pub key_id: String,
    /// RFC 3339, UTC: when the key was first retired.
    pub retired_at: String,
    /// True when an earlier call had already retired it (nothing was written this time).
    pub already_retired: bool,
    pub edges_notified: bool,
}

/// RFC 3339 for answers (falls back to Unix seconds, which cannot happen for real times).
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// Generates a title's key through custody and stores it as the current key: the first key
/// (`rotate == false`; refused with a conflict when the title has one) or a rotation (the new
/// key becomes current for new packaging; the previous one keeps serving until retired).
///
/// Both are a compare-and-set against the current key as it was when the call began: of
/// concurrent calls that began from the same current key exactly one succeeds; the others get
/// [`KeyOpError::Conflict`], are audited as failed and store nothing. So every success was the
/// current key when it returned and names as `previous_key_id` the key it replaced, and no two
/// successes name the same one.
pub async fn issue_key(
    db: &Db,
    custody: &dyn KeyCustody,
    actor: &str,
    video_id: Uuid,
    rotate: bool,
) -> Result<KeyIssued, KeyOpError> {
    let action = if rotate {
        KeyAction::Rotate
    } else {
        KeyAction::Generate
    };
    let backend = custody.backend();
    // Cheap checks first, so a refused call costs no custody operation.
    if db.file(video_id).await?.is_none() {
        return Err(KeyOpError::NotFound("No such video."));
    }
    let expected = db.current_key_id(video_id).await?;
    if let (false, Some(current)) = (rotate, expected) {
        return Err(has_current(current));
    }
    let key_id = Uuid::new_v4();
    let (video, key) = (video_id.to_string(), key_id.to_string());
    // A failed call is audited too (custody down, or lost to a concurrent change).
    let failed = |detail: String| async move {
        let event = KeyEvent {
            actor,
            action,
            content_id: Some(video_id),
            key_id: Some(key_id),
            backend,
            ok: false,
            detail: Some(detail.as_str()),
        };
        audit(db, &event).await
    };
    let generated = match custody.generate(&video, &key).await {
        Ok(g) => g,
        Err(e) => {
            failed(e.to_string()).await;
            return Err(e.into());
        }
    };
    // Only the envelope is kept; the plaintext is zeroed when `generated` drops.
    let wrapped = generated.wrapped.clone();
    drop(generated);
    let at = now();
    let previous = match db
        .add_current_key(video_id, key_id, &wrapped, expected, at)
        .await?
    {
        AddKeyOutcome::Added { previous } => previous,
        AddKeyOutcome::NoTitle => return Err(KeyOpError::NotFound("No such video.")),
        AddKeyOutcome::Stale { current } => {
            let shown = current.map_or("none".to_string(), |c| c.to_string());
            failed(format!("lost to a concurrent change; current key {shown}")).await;
            return Err(match (rotate, current) {
                (false, Some(current)) => has_current(current),
                _ => KeyOpError::Conflict(format!(
                    "The video's current key changed while this request ran (it is now \
                     {shown}); nothing was stored. List the keys and rotate again if still \
                     needed."
                )),
            });
        }
    };
    let detail = previous.map(|p| format!("previous current key {p}"));
    audit(
        db,
        &KeyEvent {
            actor,
            action,
            content_id: Some(video_id),
            key_id: Some(key_id),
            backend,
            ok: true,
            detail: detail.as_deref(),
        },
    )
    .await;
    tracing::info!(fileId = %video_id, keyId = %key_id, action = action.as_str(), "content key issued");
    Ok(KeyIssued {
        video_id: video,
        key_id: key,
        previous_key_id: previous.map(|p| p.to_string()),
        created_at: rfc3339(at),
    })
}

fn has_current(current: Uuid) -> KeyOpError {
    KeyOpError::Conflict(format!(
        "The video already has a current key ({current}); rotate it instead."
    ))
}

/// Retires key `key_id` of title `video_id` (idempotent): it stops serving and edges are told
/// like for a revocation. The title's current key cannot be retired (rotate first).
pub async fn retire_key(
    db: &Db,
    invalidator: &Invalidator,
    custody: &dyn KeyCustody,
    actor: &str,
    video_id: Uuid,
    key_id: Uuid,
) -> Result<KeyRetirement, KeyOpError> {
    let (retired_at, newly_retired) = match db.retire_video_key(video_id, key_id, now()).await? {
        RetireOutcome::NotFound => {
            return Err(KeyOpError::NotFound(
                "This video has no content key with that id.",
            ))
        }
        RetireOutcome::Current => {
            return Err(KeyOpError::Conflict(
                "This is the video's current key; rotate to a new key before retiring it.".into(),
            ))
        }
        RetireOutcome::Retired {
            retired_at,
            newly_retired,
        } => (retired_at, newly_retired),
    };
    custody.forget(&video_id.to_string(), &key_id.to_string());
    let edges_notified = invalidator
        .notify(&Invalidation::Key { video_id, key_id })
        .await;
    let detail = (!newly_retired).then_some("already retired");
    audit(
        db,
        &KeyEvent {
            actor,
            action: KeyAction::Retire,
            content_id: Some(video_id),
            key_id: Some(key_id),
            backend: custody.backend(),
            ok: true,
            detail,
        },
    )
    .await;
    tracing::info!(fileId = %video_id, keyId = %key_id, newlyRetired = newly_retired, edgesNotified = edges_notified, "content key retired");
    Ok(KeyRetirement {
        video_id: video_id.to_string(),
        key_id: key_id.to_string(),
        retired_at: rfc3339(retired_at),
        already_retired: !newly_retired,
        edges_notified,
    })
}

/// The answer to a key revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyRevocation {
    pub video_id: String,
    pub key_id: String,
    /// RFC 3339, UTC: when the key was first revoked.
    pub revoked_at: String,
    /// True when an earlier call had already revoked it (nothing was written this time).
    pub already_revoked: bool,
    pub edges_notified: bool,
}

/// The answer to a subscription change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionChange {
    pub user_id: String,
    pub tier: String,
    pub edges_notified: bool,
}

/// Revokes key `key_id` of title `video_id` (idempotent) and publishes the key invalidation,
/// also when it was already revoked (so a notification lost earlier can be re-sent), drops
/// custody's cached plaintext and records the revocation in the key audit trail.
/// `None` when the title has no such key.
pub async fn revoke_key(
    db: &Db,
    invalidator: &Invalidator,
    custody: &dyn KeyCustody,
    actor: &str,
    video_id: Uuid,
    key_id: Uuid,
) -> Result<Option<KeyRevocation>, DbError> {
    let Some(revoked) = db.revoke_video_key(video_id, key_id, now()).await? else {
        return Ok(None);
    };
    custody.forget(&video_id.to_string(), &key_id.to_string());
    let edges_notified = invalidator
        .notify(&Invalidation::Key { video_id, key_id })
        .await;
    audit(
        db,
        &KeyEvent {
            actor,
            action: KeyAction::Revoke,
            content_id: Some(video_id),
            key_id: Some(key_id),
            backend: custody.backend(),
            ok: true,
            detail: (!revoked.newly_revoked).then_some("already revoked"),
        },
    )
    .await;
    tracing::info!(fileId = %video_id, keyId = %key_id, newlyRevoked = revoked.newly_revoked, edgesNotified = edges_notified, "content key revoked");
    Ok(Some(KeyRevocation {
        video_id: video_id.to_string(),
        key_id: key_id.to_string(),
        revoked_at: rfc3339(revoked.revoked_at),
        already_revoked: !revoked.newly_revoked,
        edges_notified,
    }))
}

/// Makes `tier` the user's active subscription (creating the user if needed) and publishes an
/// entitlement invalidation for every title of that user.
pub async fn set_subscription(
    db: &Db,
    invalidator: &Invalidator,
    user_id: &str,
    tier: &str,
) -> Result<SubscriptionChange, DbError> {
    db.subscribe(user_id, tier, now()).await?;
    let edges_notified = invalidator
        .notify(&Invalidation::Entitlement {
            user_id: user_id.to_string(),
            video_id: None,
        })
        .await;
    tracing::info!(userId = %user_id, tier, edgesNotified = edges_notified, "subscription set");
    Ok(SubscriptionChange {
        user_id: user_id.to_string(),
        tier: tier.to_string(),
        edges_notified,
    })
}
