//! Gathering entitlement facts from the database for [`playback::entitlement`].
//!
//! The decision itself lives in the `playback` crate so the edge and the control plane apply one
//! rule; this module only turns rows into the facts it needs.
//!
//! The rule, after the source service ("content ownership or organization membership";
//! "organization/project membership — shared content access"; DRM needs Pro/Enterprise): the
//! owner, the members of the organization a title is shared with, and the members of the
//! project it is shared with may play it (a project share does not open the title to the rest
//! of the organization); a DRM-protected title also needs a tier with `can_use_drm`. Sharing
//! is set by the owner (`PUT /files/{fileId}/sharing`); memberships by
//! organization owners/admins. `tests/api_admin.rs` checks the edges' answers for each case.

use playback::entitlement::{decide_playback, Access, VideoFacts, ViewerFacts};
use playback::Reason;
use time::OffsetDateTime;

use crate::db::files::FileRecord;
use crate::db::users::{valid_user_id, TierName, TierPolicy};
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

fn nobody(user_id: &str) -> ViewerFacts {
    ViewerFacts {
        user_id: user_id.to_string(),
        organization_ids: vec![],
        project_ids: vec![],
        tier: None,
    }
}

/// The facts about a viewer: memberships and active tier. Unknown users have none.
pub async fn viewer_facts(
    db: &Db,
    user_id: &str,
    now: OffsetDateTime,
) -> Result<ViewerFacts, DbError> {
    if !valid_user_id(user_id) {
        return Ok(nobody(user_id));
    }
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
    if !valid_user_id(user_id) {
        let tier = db
            .tier_policy(TierName::Free)
            .await?
            .unwrap_or_else(TierPolicy::free_fallback);
        let decision = decide_playback(&video_facts(file), &nobody(user_id));
        return Ok(Verdict { decision, tier });
    }
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
    if !valid_user_id(user_id) {
        return Ok(false);
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
