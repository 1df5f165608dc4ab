//! Who may play a title: the access rules of the service this product replaces.
//!
//! A viewer may play a title they own, or one shared with an organization or project they belong
//! to. A DRM-protected title additionally needs a tier that includes DRM (Pro or Enterprise).
//! The control plane gathers the facts from its database; the decision is made here so the edge,
//! the control plane and the tests all apply one rule.

use crate::Reason;

/// What the decision needs to know about a title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoFacts {
    pub owner_id: String,
    pub organization_id: Option<String>,
    pub project_id: Option<String>,
    pub drm_protected: bool,
    /// Transcoding finished and the title is on the origin.
    pub ready: bool,
}

/// A subscription tier's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierFacts {
    pub name: String,
    pub can_use_drm: bool,
    pub max_concurrent_streams: u32,
}

/// What the decision needs to know about the viewer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewerFacts {
    pub user_id: String,
    pub organization_ids: Vec<String>,
    pub project_ids: Vec<String>,
    /// The viewer's active tier; `None` means no active subscription, which is the free tier.
    pub tier: Option<TierFacts>,
}

/// Why a viewer is allowed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Owner,
    OrganizationMember,
    ProjectMember,
}

/// Decides whether `viewer` may play `video`.
///
/// Relationship is checked before readiness and tier so that a stranger learns nothing about a
/// title's state.
pub fn decide_playback(video: &VideoFacts, viewer: &ViewerFacts) -> Result<Access, Reason> {
    let access = if video.owner_id == viewer.user_id {
        Access::Owner
    } else if is_member(&video.organization_id, &viewer.organization_ids) {
        Access::OrganizationMember
    } else if is_member(&video.project_id, &viewer.project_ids) {
        Access::ProjectMember
    } else {
        return Err(Reason::NotEntitled);
    };
    if video.drm_protected {
        decide_drm_packaging(viewer.tier.as_ref())?;
    }
    if !video.ready {
        return Err(Reason::NotReady);
    }
    Ok(access)
}

/// Decides whether an account on `tier` may use DRM (to package or to play protected titles).
pub fn decide_drm_packaging(tier: Option<&TierFacts>) -> Result<(), Reason> {
    match tier {
        Some(t) if t.can_use_drm => Ok(()),
        _ => Err(Reason::TierRequired),
    }
}

fn is_member(group: &Option<String>, memberships: &[String]) -> bool {
    group
        .as_ref()
        .is_some_and(|g| memberships.iter().any(|m| m == g))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video() -> VideoFacts {
        VideoFacts {
            owner_id: "owner".into(),
            organization_id: Some("org".into()),
            project_id: Some("proj".into()),
            drm_protected: false,
            ready: true,
        }
    }

    fn viewer(id: &str) -> ViewerFacts {
        ViewerFacts {
            user_id: id.into(),
            organization_ids: vec![],
            project_ids: vec![],
            tier: None,
        }
    }

    fn pro() -> TierFacts {
        TierFacts {
            name: "pro".into(),
            can_use_drm: true,
            max_concurrent_streams: 3,
        }
    }

    #[test]
    fn owner_and_members() {
        assert_eq!(
            decide_playback(&video(), &viewer("owner")),
            Ok(Access::Owner)
        );
        let mut v = viewer("m");
        v.organization_ids = vec!["org".into()];
        assert_eq!(
            decide_playback(&video(), &v),
            Ok(Access::OrganizationMember)
        );
        let mut v = viewer("m");
        v.project_ids = vec!["proj".into()];
        assert_eq!(decide_playback(&video(), &v), Ok(Access::ProjectMember));
        let mut v = viewer("m");
        v.organization_ids = vec!["other".into()];
        assert_eq!(decide_playback(&video(), &v), Err(Reason::NotEntitled));
        let mut unshared = video();
        unshared.organization_id = None;
        unshared.project_id = None;
        assert_eq!(
            decide_playback(&unshared, &viewer("stranger")),
            Err(Reason::NotEntitled)
        );
    }

    #[test]
    fn drm_needs_a_drm_tier() {
        let mut drm = video();
        drm.drm_protected = true;
        assert_eq!(
            decide_playback(&drm, &viewer("owner")),
            Err(Reason::TierRequired)
        );
        let mut free = viewer("owner");
        free.tier = Some(TierFacts {
            name: "free".into(),
            can_use_drm: false,
            max_concurrent_streams: 1,
        });
        assert_eq!(decide_playback(&drm, &free), Err(Reason::TierRequired));
        let mut paid = viewer("owner");
        paid.tier = Some(pro());
        assert_eq!(decide_playback(&drm, &paid), Ok(Access::Owner));
        // Strangers learn nothing about DRM or readiness.
        assert_eq!(
            decide_playback(&drm, &viewer("stranger")),
            Err(Reason::NotEntitled)
        );
    }

    #[test]
    fn not_ready_titles() {
        let mut pending = video();
        pending.ready = false;
        assert_eq!(
            decide_playback(&pending, &viewer("owner")),
            Err(Reason::NotReady)
        );
        assert_eq!(
            decide_playback(&pending, &viewer("x")),
            Err(Reason::NotEntitled)
        );
    }

    #[test]
    fn packaging() {
        assert_eq!(decide_drm_packaging(None), Err(Reason::TierRequired));
        assert_eq!(decide_drm_packaging(Some(&pro())), Ok(()));
    }
}
