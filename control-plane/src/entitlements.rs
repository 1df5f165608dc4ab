//! Gathering entitlement facts from the database for [`playback::entitlement`].
//!
//! The decision itself lives in the `playback` crate so the edge and the control plane apply one
//! rule; this module only turns rows into the facts it needs.

use playback::entitlement::{decide_playback, Access, VideoFacts, ViewerFacts};
use playback::Reason;
use time::OffsetDateTime;

use crate::db::files::FileRecord;
use crate::db::users::TierPolicy;
use crate::db::{Db, DbError};

/// A playback decision together with the tier that governs the viewer (their active
/// subscription, else the free tier), whose limits and license policy the edge enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub decision: Result<Access, Reason>,
    pub tier: TierPolicy,
}

/// The facts about a title.
pub fn video_facts(file: &FileRecord) -> VideoFacts {
    VideoFacts {
        owner_id: file.owner_id.clone(),
        organization_id: file.organization_id.map(|id| id.to_string()),
        project_id: file.project_id.map(|id| id.to_string()),
        drm_protected: file.drm_protected,
        ready: file.is_ready(),
    }
}

/// The facts about a viewer: memberships and active tier. Unknown users have none.
pub async fn viewer_facts(
    db: &Db,
    user_id: &str,
    now: OffsetDateTime,
) -> Result<ViewerFacts, DbError> {
    let to_strings = |ids: Vec<uuid::Uuid>| ids.into_iter().map(|id| id.to_string()).collect();
    Ok(ViewerFacts {
        user_id: user_id.to_string(),
        organization_ids: to_strings(db.organization_ids(user_id).await?),
        project_ids: to_strings(db.project_ids(user_id).await?),
        tier: db.active_tier(user_id, now).await?,
    })
}

/// The playback decision for `user_id` on `file`.
pub async fn decide(
    db: &Db,
    file: &FileRecord,
    user_id: &str,
    now: OffsetDateTime,
) -> Result<Result<Access, Reason>, DbError> {
    let viewer = viewer_facts(db, user_id, now).await?;
    Ok(decide_playback(&video_facts(file), &viewer))
}

/// The playback decision for `user_id` on `file` and the viewer's effective tier, read with one
/// tier query.
pub async fn decide_with_tier(
    db: &Db,
    file: &FileRecord,
    user_id: &str,
    now: OffsetDateTime,
) -> Result<Verdict, DbError> {
    let active = db.active_tier_policy(user_id, now).await?;
    let to_strings = |ids: Vec<uuid::Uuid>| ids.into_iter().map(|id| id.to_string()).collect();
    let viewer = ViewerFacts {
        user_id: user_id.to_string(),
        organization_ids: to_strings(db.organization_ids(user_id).await?),
        project_ids: to_strings(db.project_ids(user_id).await?),
        tier: active.as_ref().map(TierPolicy::facts),
    };
    let decision = decide_playback(&video_facts(file), &viewer);
    let tier = match active {
        Some(tier) => tier,
        None => db.effective_tier(user_id, now).await?,
    };
    Ok(Verdict { decision, tier })
}

/// True when `user_id` owns `file` or belongs to its organization or project (whatever the
/// tier or readiness): who may see a title's transcoding status.
pub async fn can_see(db: &Db, file: &FileRecord, user_id: &str) -> Result<bool, DbError> {
    if file.owner_id == user_id {
        return Ok(true);
    }
    if let Some(org) = file.organization_id {
        if db.organization_ids(user_id).await?.contains(&org) {
            return Ok(true);
        }
    }
    if let Some(project) = file.project_id {
        if db.project_ids(user_id).await?.contains(&project) {
            return Ok(true);
        }
    }
    Ok(false)
}
