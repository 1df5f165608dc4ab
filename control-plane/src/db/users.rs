//! Users, their organization and project memberships, and their subscription tier.
//!
//! A user row is created the first time a JWT `sub` is seen; memberships and subscriptions are
//! what entitlement decisions are made from (see [`playback::entitlement`]).

use playback::entitlement::TierFacts;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{with_pool, Db, DbError};

/// A subscription tier name as stored in `subscription_tiers.name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TierName {
    Free,
    Pro,
    Enterprise,
}

impl TierName {
    pub fn as_str(self) -> &'static str {
        match self {
            TierName::Free => "free",
            TierName::Pro => "pro",
            TierName::Enterprise => "enterprise",
        }
    }
}

impl std::str::FromStr for TierName {
    type Err = DbError;
    fn from_str(s: &str) -> Result<Self, DbError> {
        match s {
            "free" => Ok(TierName::Free),
            "pro" => Ok(TierName::Pro),
            "enterprise" => Ok(TierName::Enterprise),
            other => Err(DbError::UnknownTier(other.to_string())),
        }
    }
}

#[derive(sqlx::FromRow)]
struct ActiveTierRow {
    name: String,
    can_use_drm: bool,
    max_concurrent_streams: i32,
    expires_at: Option<OffsetDateTime>,
}

impl Db {
    /// Creates the user if this is the first time `user_id` is seen.
    pub async fn upsert_user(
        &self,
        user_id: &str,
        email: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(), DbError> {
        with_pool!(self, pool => sqlx::query(
            "INSERT INTO users (id, email, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET email = COALESCE(excluded.email, users.email)",
        )
        .bind(user_id)
        .bind(email)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// True when a user row exists.
    pub async fn user_exists(&self, user_id: &str) -> Result<bool, DbError> {
        let n: i64 = with_pool!(self, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM users WHERE id = $1",
        )
        .bind(user_id)
        .fetch_one(pool)
        .await)?;
        Ok(n > 0)
    }

    /// Makes `tier` the user's one active subscription (creating the user if needed).
    pub async fn subscribe(
        &self,
        user_id: &str,
        tier: TierName,
        now: OffsetDateTime,
    ) -> Result<(), DbError> {
        self.upsert_user(user_id, None, now).await?;
        let tier_id: Option<Uuid> = with_pool!(self, pool => sqlx::query_scalar(
            "SELECT id FROM subscription_tiers WHERE name = $1",
        )
        .bind(tier.as_str())
        .fetch_optional(pool)
        .await)?;
        let tier_id = tier_id.ok_or_else(|| DbError::UnknownTier(tier.as_str().into()))?;
        with_pool!(self, pool => sqlx::query(
            "INSERT INTO user_subscriptions (id, user_id, tier_id, status, started_at, expires_at)
             VALUES ($1, $2, $3, 'active', $4, NULL)
             ON CONFLICT (user_id) WHERE status = 'active'
             DO UPDATE SET tier_id = excluded.tier_id, started_at = excluded.started_at,
                           expires_at = NULL",
        )
        .bind(Uuid::new_v4())
        .bind(user_id)
        .bind(tier_id)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The user's active, unexpired tier; `None` means no subscription (the free tier).
    pub async fn active_tier(
        &self,
        user_id: &str,
        now: OffsetDateTime,
    ) -> Result<Option<TierFacts>, DbError> {
        let rows: Vec<ActiveTierRow> = with_pool!(self, pool => sqlx::query_as(
            "SELECT t.name, t.can_use_drm, t.max_concurrent_streams, s.expires_at
             FROM user_subscriptions s JOIN subscription_tiers t ON t.id = s.tier_id
             WHERE s.user_id = $1 AND s.status = 'active'",
        )
        .bind(user_id)
        .fetch_all(pool)
        .await)?;
        // Expiry is compared here rather than in SQL: SQLite stores times as text.
        Ok(rows
            .into_iter()
            .filter(|r| r.expires_at.is_none_or(|e| e > now))
            .max_by_key(|r| (r.can_use_drm, r.max_concurrent_streams))
            .map(|r| TierFacts {
                name: r.name,
                can_use_drm: r.can_use_drm,
                max_concurrent_streams: u32::try_from(r.max_concurrent_streams).unwrap_or(0),
            }))
    }

    /// Creates an organization.
    pub async fn create_organization(
        &self,
        name: &str,
        now: OffsetDateTime,
    ) -> Result<Uuid, DbError> {
        let id = Uuid::new_v4();
        with_pool!(self, pool => sqlx::query(
            "INSERT INTO organizations (id, name, created_at) VALUES ($1, $2, $3)",
        )
        .bind(id)
        .bind(name)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(id)
    }

    /// Adds (or re-roles) a member of an organization.
    pub async fn add_organization_member(
        &self,
        organization_id: Uuid,
        user_id: &str,
        role: &str,
    ) -> Result<(), DbError> {
        with_pool!(self, pool => sqlx::query(
            "INSERT INTO organization_members (organization_id, user_id, role) VALUES ($1, $2, $3)
             ON CONFLICT (organization_id, user_id) DO UPDATE SET role = excluded.role",
        )
        .bind(organization_id)
        .bind(user_id)
        .bind(role)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Creates a project inside an organization.
    pub async fn create_project(
        &self,
        organization_id: Uuid,
        name: &str,
        now: OffsetDateTime,
    ) -> Result<Uuid, DbError> {
        let id = Uuid::new_v4();
        with_pool!(self, pool => sqlx::query(
            "INSERT INTO projects (id, organization_id, name, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(organization_id)
        .bind(name)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(id)
    }

    /// Adds a member to a project.
    pub async fn add_project_member(&self, project_id: Uuid, user_id: &str) -> Result<(), DbError> {
        with_pool!(self, pool => sqlx::query(
            "INSERT INTO project_members (project_id, user_id) VALUES ($1, $2)
             ON CONFLICT (project_id, user_id) DO NOTHING",
        )
        .bind(project_id)
        .bind(user_id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Organizations the user belongs to.
    pub async fn organization_ids(&self, user_id: &str) -> Result<Vec<Uuid>, DbError> {
        Ok(with_pool!(self, pool => sqlx::query_scalar(
            "SELECT organization_id FROM organization_members WHERE user_id = $1",
        )
        .bind(user_id)
        .fetch_all(pool)
        .await)?)
    }

    /// Projects the user belongs to.
    pub async fn project_ids(&self, user_id: &str) -> Result<Vec<Uuid>, DbError> {
        Ok(with_pool!(self, pool => sqlx::query_scalar(
            "SELECT project_id FROM project_members WHERE user_id = $1",
        )
        .bind(user_id)
        .fetch_all(pool)
        .await)?)
    }
}
