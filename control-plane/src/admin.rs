//! Administrative changes edges must hear about, shared by the admin API and the CLI:
//! revoking a content key and setting a user's subscription.
//!
//! Each writes the database first, then notifies edges through [`Invalidator`]; the answer says
//! whether edges were notified (`edgesNotified`), and a failed notification never undoes or
//! fails the database change.

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::db::users::TierName;
use crate::db::{now, Db, DbError};
use crate::invalidation::{Invalidation, Invalidator};

/// The answer to a key revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionChange {
    pub user_id: String,
    pub tier: TierName,
    pub edges_notified: bool,
}

/// Revokes key `key_id` of title `video_id` (idempotent) and publishes the key invalidation,
/// also when it was already revoked (so a notification lost earlier can be re-sent).
/// `None` when the title has no such key.
pub async fn revoke_key(
    db: &Db,
    invalidator: &Invalidator,
    video_id: Uuid,
    key_id: Uuid,
) -> Result<Option<KeyRevocation>, DbError> {
    let Some(revoked) = db.revoke_video_key(video_id, key_id, now()).await? else {
        return Ok(None);
    };
    let edges_notified = invalidator
        .notify(&Invalidation::Key { video_id, key_id })
        .await;
    tracing::info!(fileId = %video_id, keyId = %key_id, newlyRevoked = revoked.newly_revoked, edgesNotified = edges_notified, "content key revoked");
    Ok(Some(KeyRevocation {
        video_id: video_id.to_string(),
        key_id: key_id.to_string(),
        revoked_at: revoked
            .revoked_at
            .format(&Rfc3339)
            .unwrap_or_else(|_| revoked.revoked_at.unix_timestamp().to_string()),
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
    tier: TierName,
) -> Result<SubscriptionChange, DbError> {
    db.subscribe(user_id, tier, now()).await?;
    let edges_notified = invalidator
        .notify(&Invalidation::Entitlement {
            user_id: user_id.to_string(),
            video_id: None,
        })
        .await;
    tracing::info!(userId = %user_id, tier = tier.as_str(), edgesNotified = edges_notified, "subscription set");
    Ok(SubscriptionChange {
        user_id: user_id.to_string(),
        tier,
        edges_notified,
    })
}
