//! Organizations, their projects and both kinds of membership, plus the paged lists the admin
//! and viewer APIs show (organizations, members, projects, a viewer's files, transcoding jobs).
//!
//! Access rules (the source service's "organization/project membership — shared content
//! access"): an organization has members with a role, `owner`, `admin` or `member`; owners and
//! admins manage members and projects; a project has plain members. A file shared with an
//! organization is playable by its members, one shared with a project by the project's members
//! ([`playback::entitlement`]). Every list is keyset-paged: `after` is the last key of the
//! previous page (exclusive) and `fetch` the number of rows to read (limit + 1).

use time::OffsetDateTime;
use uuid::Uuid;

use super::files::FileRecord;
use super::jobs::JobRecord;
use super::{with_pool, BeginWrite, Db, DbError};

/// A member's role inside an organization.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum OrgRole {
    /// Created the organization (or was made owner); cannot be removed while the only one.
    Owner,
    /// Manages members and projects.
    Admin,
    /// Sees the organization, its projects and the files shared with it.
    Member,
}

impl OrgRole {
    pub fn as_str(self) -> &'static str {
        match self {
            OrgRole::Owner => "owner",
            OrgRole::Admin => "admin",
            OrgRole::Member => "member",
        }
    }

    /// Parses a stored role; an unknown value reads as the least privileged role.
    pub fn parse(s: &str) -> OrgRole {
        match s {
            "owner" => OrgRole::Owner,
            "admin" => OrgRole::Admin,
            _ => OrgRole::Member,
        }
    }

    /// Owners and admins manage the organization.
    pub fn can_manage(self) -> bool {
        matches!(self, OrgRole::Owner | OrgRole::Admin)
    }
}

/// One row of `organizations`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Organization {
    pub id: Uuid,
    pub name: String,
    pub created_at: OffsetDateTime,
}

/// An organization seen by one of its members.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Membership {
    #[sqlx(flatten)]
    pub organization: Organization,
    pub role: String,
}

/// One row of `organization_members`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OrgMember {
    pub user_id: String,
    pub role: String,
}

/// One row of `projects`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Project {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub created_at: OffsetDateTime,
}

/// True when the statement referenced a row that does not exist (a foreign key).
pub fn is_foreign_key_violation(e: &DbError) -> bool {
    matches!(e, DbError::Sqlx(sqlx::Error::Database(d)) if d.is_foreign_key_violation())
}

/// Why the last owner of an organization cannot be removed or demoted.
pub const LAST_OWNER: &str = "an organization keeps at least one owner";

/// A no-op write that takes the organization's row lock on Postgres (SQLite's IMMEDIATE
/// transaction already holds the database): membership changes of one organization then run
/// one after the other, so two owners demoted or removed at once cannot both pass the
/// last-owner check under READ COMMITTED.
const LOCK_ORGANIZATION: &str = "UPDATE organizations SET name = name WHERE id = $1";

fn parse_after(after: Option<&str>) -> Option<Uuid> {
    // Callers pass keys they issued; an unparsable one is treated as "from the start".
    after.and_then(|a| Uuid::parse_str(a).ok())
}

impl Db {
    /// Creates an organization with `owner` as its owner, in one transaction. The owner's user
    /// row must exist (foreign key).
    pub async fn create_organization_owned(
        &self,
        name: &str,
        owner: &str,
        now: OffsetDateTime,
    ) -> Result<Organization, DbError> {
        let id = Uuid::new_v4();
        Ok(with_pool!(self, pool => async {
            let mut tx = pool.begin_write().await?;
            let org: Organization = sqlx::query_as(
                "INSERT INTO organizations (id, name, created_at) VALUES ($1, $2, $3)
                 RETURNING id, name, created_at",
            )
            .bind(id)
            .bind(name)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO organization_members (organization_id, user_id, role)
                 VALUES ($1, $2, 'owner')",
            )
            .bind(id)
            .bind(owner)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(org)
        }
        .await)?)
    }

    /// The organization with `id`, if any.
    pub async fn organization(&self, id: Uuid) -> Result<Option<Organization>, DbError> {
        Ok(with_pool!(self, pool => sqlx::query_as(
            "SELECT id, name, created_at FROM organizations WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await)?)
    }

    /// Every organization, by id.
    pub async fn list_organizations(
        &self,
        after: Option<&str>,
        fetch: i64,
    ) -> Result<Vec<Organization>, DbError> {
        let after = parse_after(after);
        Ok(with_pool!(self, pool => sqlx::query_as(
            "SELECT id, name, created_at FROM organizations
             WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(fetch)
        .fetch_all(pool)
        .await)?)
    }

    /// The organizations `user_id` belongs to, with their role, by id.
    pub async fn list_user_organizations(
        &self,
        user_id: &str,
        after: Option<&str>,
        fetch: i64,
    ) -> Result<Vec<Membership>, DbError> {
        let after = parse_after(after);
        Ok(with_pool!(self, pool => sqlx::query_as(
            "SELECT o.id, o.name, o.created_at, m.role
             FROM organization_members m JOIN organizations o ON o.id = m.organization_id
             WHERE m.user_id = $1 AND ($2 IS NULL OR o.id > $2) ORDER BY o.id LIMIT $3",
        )
        .bind(user_id)
        .bind(after)
        .bind(fetch)
        .fetch_all(pool)
        .await)?)
    }

    /// `user_id`'s role in the organization; `None` when not a member.
    pub async fn organization_role(
        &self,
        organization_id: Uuid,
        user_id: &str,
    ) -> Result<Option<OrgRole>, DbError> {
        let role: Option<String> = with_pool!(self, pool => sqlx::query_scalar(
            "SELECT role FROM organization_members WHERE organization_id = $1 AND user_id = $2",
        )
        .bind(organization_id)
        .bind(user_id)
        .fetch_optional(pool)
        .await)?;
        Ok(role.as_deref().map(OrgRole::parse))
    }

    /// Adds a member or changes their role, in one transaction that refuses to demote the last
    /// owner ([`DbError::Conflict`] with [`LAST_OWNER`]). The organization and the user must
    /// exist (foreign keys).
    pub async fn set_organization_member(
        &self,
        organization_id: Uuid,
        user_id: &str,
        role: OrgRole,
    ) -> Result<(), DbError> {
        let outcome = with_pool!(self, pool => async {
            let mut tx = pool.begin_write().await?;
            sqlx::query(LOCK_ORGANIZATION)
                .bind(organization_id)
                .execute(&mut *tx)
                .await?;
            if role != OrgRole::Owner {
                let current: Option<String> = sqlx::query_scalar(
                    "SELECT role FROM organization_members
                     WHERE organization_id = $1 AND user_id = $2",
                )
                .bind(organization_id)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
                if current.as_deref() == Some("owner") {
                    let owners: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM organization_members
                         WHERE organization_id = $1 AND role = 'owner'",
                    )
                    .bind(organization_id)
                    .fetch_one(&mut *tx)
                    .await?;
                    if owners <= 1 {
                        return Ok::<_, sqlx::Error>(false);
                    }
                }
            }
            sqlx::query(
                "INSERT INTO organization_members (organization_id, user_id, role)
                 VALUES ($1, $2, $3)
                 ON CONFLICT (organization_id, user_id) DO UPDATE SET role = excluded.role",
            )
            .bind(organization_id)
            .bind(user_id)
            .bind(role.as_str())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        }
        .await)?;
        if outcome {
            Ok(())
        } else {
            Err(DbError::Conflict(LAST_OWNER))
        }
    }

    /// Removes a member (and their memberships of the organization's projects). Returns false
    /// when they were not a member; refuses to remove the last owner.
    pub async fn remove_organization_member(
        &self,
        organization_id: Uuid,
        user_id: &str,
    ) -> Result<bool, DbError> {
        let outcome = with_pool!(self, pool => async {
            let mut tx = pool.begin_write().await?;
            sqlx::query(LOCK_ORGANIZATION)
                .bind(organization_id)
                .execute(&mut *tx)
                .await?;
            let current: Option<String> = sqlx::query_scalar(
                "SELECT role FROM organization_members WHERE organization_id = $1 AND user_id = $2",
            )
            .bind(organization_id)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
            match current.as_deref() {
                None => return Ok::<_, sqlx::Error>(Some(false)),
                Some("owner") => {
                    let owners: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM organization_members
                         WHERE organization_id = $1 AND role = 'owner'",
                    )
                    .bind(organization_id)
                    .fetch_one(&mut *tx)
                    .await?;
                    if owners <= 1 {
                        return Ok(None);
                    }
                }
                Some(_) => {}
            }
            sqlx::query(
                "DELETE FROM organization_members WHERE organization_id = $1 AND user_id = $2",
            )
            .bind(organization_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
            // Leaving an organization also leaves its projects.
            sqlx::query(
                "DELETE FROM project_members WHERE user_id = $2 AND project_id IN
                     (SELECT id FROM projects WHERE organization_id = $1)",
            )
            .bind(organization_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Some(true))
        }
        .await)?;
        outcome.ok_or(DbError::Conflict(LAST_OWNER))
    }

    /// Members of an organization, by user id.
    pub async fn list_organization_members(
        &self,
        organization_id: Uuid,
        after: Option<&str>,
        fetch: i64,
    ) -> Result<Vec<OrgMember>, DbError> {
        Ok(with_pool!(self, pool => sqlx::query_as(
            "SELECT user_id, role FROM organization_members
             WHERE organization_id = $1 AND ($2 IS NULL OR user_id > $2)
             ORDER BY user_id LIMIT $3",
        )
        .bind(organization_id)
        .bind(after)
        .bind(fetch)
        .fetch_all(pool)
        .await)?)
    }

    /// Creates a project; a duplicate name in the organization is a unique violation.
    pub async fn create_project_in(
        &self,
        organization_id: Uuid,
        name: &str,
        now: OffsetDateTime,
    ) -> Result<Project, DbError> {
        Ok(with_pool!(self, pool => sqlx::query_as(
            "INSERT INTO projects (id, organization_id, name, created_at) VALUES ($1, $2, $3, $4)
             RETURNING id, organization_id, name, created_at",
        )
        .bind(Uuid::new_v4())
        .bind(organization_id)
        .bind(name)
        .bind(now)
        .fetch_one(pool)
        .await)?)
    }

    /// The project with `id`, if any.
    pub async fn project(&self, id: Uuid) -> Result<Option<Project>, DbError> {
        Ok(with_pool!(self, pool => sqlx::query_as(
            "SELECT id, organization_id, name, created_at FROM projects WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await)?)
    }

    /// Projects of an organization, by id.
    pub async fn list_projects(
        &self,
        organization_id: Uuid,
        after: Option<&str>,
        fetch: i64,
    ) -> Result<Vec<Project>, DbError> {
        let after = parse_after(after);
        Ok(with_pool!(self, pool => sqlx::query_as(
            "SELECT id, organization_id, name, created_at FROM projects
             WHERE organization_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3",
        )
        .bind(organization_id)
        .bind(after)
        .bind(fetch)
        .fetch_all(pool)
        .await)?)
    }

    /// True when `user_id` is a member of the project.
    pub async fn is_project_member(
        &self,
        project_id: Uuid,
        user_id: &str,
    ) -> Result<bool, DbError> {
        let n: i64 = with_pool!(self, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM project_members WHERE project_id = $1 AND user_id = $2",
        )
        .bind(project_id)
        .bind(user_id)
        .fetch_one(pool)
        .await)?;
        Ok(n > 0)
    }

    /// Removes a project member; false when they were not one.
    pub async fn remove_project_member(
        &self,
        project_id: Uuid,
        user_id: &str,
    ) -> Result<bool, DbError> {
        let n = with_pool!(self, pool => sqlx::query(
            "DELETE FROM project_members WHERE project_id = $1 AND user_id = $2",
        )
        .bind(project_id)
        .bind(user_id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    /// Members of a project (user ids), in order.
    pub async fn list_project_members(
        &self,
        project_id: Uuid,
        after: Option<&str>,
        fetch: i64,
    ) -> Result<Vec<String>, DbError> {
        Ok(with_pool!(self, pool => sqlx::query_scalar(
            "SELECT user_id FROM project_members
             WHERE project_id = $1 AND ($2 IS NULL OR user_id > $2)
             ORDER BY user_id LIMIT $3",
        )
        .bind(project_id)
        .bind(after)
        .bind(fetch)
        .fetch_all(pool)
        .await)?)
    }

    /// Files `owner_id` uploaded or imported, by id.
    pub async fn list_owned_files(
        &self,
        owner_id: &str,
        after: Option<&str>,
        fetch: i64,
    ) -> Result<Vec<FileRecord>, DbError> {
        let after = parse_after(after);
        Ok(with_pool!(self, pool => sqlx::query_as(
            "SELECT id, owner_id, organization_id, project_id, name, mime_type, size_bytes,
                    storage_path, drm_protected, hls_manifest_url, transcoding_status,
                    content_key_id, encrypted_at, created_at
             FROM files WHERE owner_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3",
        )
        .bind(owner_id)
        .bind(after)
        .bind(fetch)
        .fetch_all(pool)
        .await)?)
    }

    /// Transcoding jobs, optionally of one status, by id.
    pub async fn list_jobs(
        &self,
        status: Option<&str>,
        after: Option<&str>,
        fetch: i64,
    ) -> Result<Vec<JobRecord>, DbError> {
        let after = parse_after(after);
        Ok(with_pool!(self, pool => sqlx::query_as(
            "SELECT id, file_id, job_id, status, input_url, output_prefix, manifest_url,
                    progress, error_message, enable_drm, protection, attempts, created_at, updated_at
             FROM transcoding_jobs
             WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR id > $2)
             ORDER BY id LIMIT $3",
        )
        .bind(status)
        .bind(after)
        .bind(fetch)
        .fetch_all(pool)
        .await)?)
    }
}
