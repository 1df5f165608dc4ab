//! Users, their organization and project memberships, and their subscription tier.
//!
//! A user row is created the first time a JWT `sub` is seen; memberships and subscriptions are
//! what entitlement decisions are made from (see [`playback::entitlement`]); a tier also sets
//! the license policy ([`TierPolicy`]).

use playback::entitlement::TierFacts;
use playback::license::policy::{LicenseKind, LicensePolicy};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{with_pool, Db, DbError};

/// Longest user id (JWT `sub`) a user row can have.
pub const MAX_USER_ID_LEN: usize = playback::jwt::MAX_SUBJECT_LEN;

/// True for an id a user can have. Users are created from accepted JWT subjects
/// ([`playback::jwt::is_valid_subject`]: 1 to [`MAX_USER_ID_LEN`] bytes, no control
/// characters), so any other id names nobody: callers answer it without a query (Postgres
/// refuses NUL bytes in text, which would otherwise be a 500) or refuse it as input.
pub fn valid_user_id(user_id: &str) -> bool {
    playback::jwt::is_valid_subject(user_id)
}

/// A subscription tier name as stored in `subscription_tiers.name`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
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

impl AsRef<str> for TierName {
    fn as_ref(&self) -> &str {
        self.as_str()
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

/// Everything a tier decides for its subscribers: DRM, concurrent streams and license policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierPolicy {
    pub name: String,
    pub can_use_drm: bool,
    pub max_concurrent_streams: u32,
    /// Seconds a license lasts from issue.
    pub license_duration_secs: u64,
    /// Licenses may be stored on the device (persistent) rather than rented.
    pub persistent_licenses: bool,
}

impl TierPolicy {
    /// The free tier as seeded by the first migration, used if its row has been removed.
    pub fn free_fallback() -> TierPolicy {
        TierPolicy {
            name: TierName::Free.as_str().into(),
            can_use_drm: false,
            max_concurrent_streams: 1,
            license_duration_secs: 3600,
            persistent_licenses: false,
        }
    }

    /// The facts the `playback` entitlement rule needs.
    pub fn facts(&self) -> TierFacts {
        TierFacts {
            name: self.name.clone(),
            can_use_drm: self.can_use_drm,
            max_concurrent_streams: self.max_concurrent_streams,
        }
    }

    /// The license policy every DRM system expresses in its own format.
    pub fn license_policy(&self) -> LicensePolicy {
        LicensePolicy {
            kind: if self.persistent_licenses {
                LicenseKind::Persistent
            } else {
                LicenseKind::Rental
            },
            duration_secs: self.license_duration_secs,
        }
    }
}

#[derive(sqlx::FromRow)]
struct TierRow {
    name: String,
    can_use_drm: bool,
    max_concurrent_streams: i32,
    license_duration_secs: i32,
    persistent_licenses: bool,
}

impl From<TierRow> for TierPolicy {
    fn from(r: TierRow) -> Self {
        TierPolicy {
            name: r.name,
            can_use_drm: r.can_use_drm,
            max_concurrent_streams: u32::try_from(r.max_concurrent_streams).unwrap_or(0),
            license_duration_secs: u64::try_from(r.license_duration_secs).unwrap_or(0),
            persistent_licenses: r.persistent_licenses,
        }
    }
}

#[derive(sqlx::FromRow)]
struct ActiveTierRow {
    #[sqlx(flatten)]
    tier: TierRow,
    expires_at: Option<OffsetDateTime>,
}

const TIER_COLUMNS: &str = "t.name, t.can_use_drm, t.max_concurrent_streams, \
     t.license_duration_secs, t.persistent_licenses";

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
    /// `tier` is any tier's name (the seeded ones, or one an admin created); an unknown name
    /// is [`DbError::UnknownTier`] and nothing is written.
    pub async fn subscribe(
        &self,
        user_id: &str,
        tier: impl AsRef<str>,
        now: OffsetDateTime,
    ) -> Result<(), DbError> {
        let tier = tier.as_ref();
        let tier_id: Option<Uuid> = with_pool!(self, pool => sqlx::query_scalar(
            "SELECT id FROM subscription_tiers WHERE name = $1",
        )
        .bind(tier)
        .fetch_optional(pool)
        .await)?;
        let tier_id = tier_id.ok_or_else(|| DbError::UnknownTier(tier.into()))?;
        self.upsert_user(user_id, None, now).await?;
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
        Ok(self
            .active_tier_policy(user_id, now)
            .await?
            .map(|t| t.facts()))
    }

    /// The user's active, unexpired tier with its license policy; `None` means no subscription.
    pub async fn active_tier_policy(
        &self,
        user_id: &str,
        now: OffsetDateTime,
    ) -> Result<Option<TierPolicy>, DbError> {
        let sql = format!(
            "SELECT {TIER_COLUMNS}, s.expires_at
             FROM user_subscriptions s JOIN subscription_tiers t ON t.id = s.tier_id
             WHERE s.user_id = $1 AND s.status = 'active'"
        );
        let rows: Vec<ActiveTierRow> = with_pool!(self, pool => sqlx::query_as(&sql)
            .bind(user_id)
            .fetch_all(pool)
            .await)?;
        // Expiry is compared here rather than in SQL: SQLite stores times as text.
        Ok(rows
            .into_iter()
            .filter(|r| r.expires_at.is_none_or(|e| e > now))
            .map(|r| TierPolicy::from(r.tier))
            .max_by_key(|t| (t.can_use_drm, t.max_concurrent_streams)))
    }

    /// The tier named `tier`, if its row exists.
    pub async fn tier_policy(&self, tier: TierName) -> Result<Option<TierPolicy>, DbError> {
        let sql = format!("SELECT {TIER_COLUMNS} FROM subscription_tiers t WHERE t.name = $1");
        let row: Option<TierRow> = with_pool!(self, pool => sqlx::query_as(&sql)
            .bind(tier.as_str())
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(TierPolicy::from))
    }

    /// The tier that governs `user_id` now: their active subscription, else the free tier.
    pub async fn effective_tier(
        &self,
        user_id: &str,
        now: OffsetDateTime,
    ) -> Result<TierPolicy, DbError> {
        if let Some(active) = self.active_tier_policy(user_id, now).await? {
            return Ok(active);
        }
        Ok(self
            .tier_policy(TierName::Free)
            .await?
            .unwrap_or_else(TierPolicy::free_fallback))
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

/// One row of `users`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserRecord {
    pub id: String,
    pub email: Option<String>,
    pub created_at: OffsetDateTime,
}

/// One row of `subscription_tiers`, all columns.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TierRecord {
    pub id: Uuid,
    pub name: String,
    pub max_concurrent_streams: i32,
    pub can_use_drm: bool,
    pub price_monthly_cents: i32,
    pub license_duration_secs: i32,
    pub persistent_licenses: bool,
}

/// The settable columns of a tier (all of them but the id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierSettings {
    pub name: String,
    pub max_concurrent_streams: i32,
    pub can_use_drm: bool,
    pub price_monthly_cents: i32,
    pub license_duration_secs: i32,
    pub persistent_licenses: bool,
}

/// A user's subscription row with its tier.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SubscriptionRecord {
    #[sqlx(flatten)]
    pub tier: TierRecord,
    pub status: String,
    pub started_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
}

const TIER_RECORD_COLUMNS: &str = "t.id, t.name, t.max_concurrent_streams, t.can_use_drm, \
     t.price_monthly_cents, t.license_duration_secs, t.persistent_licenses";
// RETURNING lists cannot qualify columns in SQLite.
const TIER_RETURNING: &str = "id, name, max_concurrent_streams, can_use_drm, \
     price_monthly_cents, license_duration_secs, persistent_licenses";

impl Db {
    /// Users, by id (keyset: `after` is the last id of the previous page).
    pub async fn list_users(
        &self,
        after: Option<&str>,
        fetch: i64,
    ) -> Result<Vec<UserRecord>, DbError> {
        Ok(with_pool!(self, pool => sqlx::query_as(
            "SELECT id, email, created_at FROM users
             WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(fetch)
        .fetch_all(pool)
        .await)?)
    }

    /// Subscription tiers, by name.
    pub async fn list_tiers(
        &self,
        after: Option<&str>,
        fetch: i64,
    ) -> Result<Vec<TierRecord>, DbError> {
        let sql = format!(
            "SELECT {TIER_RECORD_COLUMNS} FROM subscription_tiers t
             WHERE ($1 IS NULL OR t.name > $1) ORDER BY t.name LIMIT $2"
        );
        Ok(with_pool!(self, pool => sqlx::query_as(&sql)
            .bind(after)
            .bind(fetch)
            .fetch_all(pool)
            .await)?)
    }

    /// The tier with `id`, if any.
    pub async fn tier(&self, id: Uuid) -> Result<Option<TierRecord>, DbError> {
        let sql = format!("SELECT {TIER_RECORD_COLUMNS} FROM subscription_tiers t WHERE t.id = $1");
        Ok(with_pool!(self, pool => sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(pool)
            .await)?)
    }

    /// Creates a tier; a duplicate name is a unique violation.
    pub async fn create_tier(&self, s: &TierSettings) -> Result<TierRecord, DbError> {
        let sql = format!(
            "INSERT INTO subscription_tiers (id, name, max_concurrent_streams, can_use_drm,
                 price_monthly_cents, license_duration_secs, persistent_licenses)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             RETURNING {TIER_RETURNING}"
        );
        Ok(with_pool!(self, pool => sqlx::query_as(&sql)
            .bind(Uuid::new_v4())
            .bind(&s.name)
            .bind(s.max_concurrent_streams)
            .bind(s.can_use_drm)
            .bind(s.price_monthly_cents)
            .bind(s.license_duration_secs)
            .bind(s.persistent_licenses)
            .fetch_one(pool)
            .await)?)
    }

    /// Replaces a tier's settings; `None` when no such tier. A name taken by another tier is a
    /// unique violation.
    pub async fn update_tier(
        &self,
        id: Uuid,
        s: &TierSettings,
    ) -> Result<Option<TierRecord>, DbError> {
        let sql = format!(
            "UPDATE subscription_tiers SET name = $2, max_concurrent_streams = $3,
                 can_use_drm = $4, price_monthly_cents = $5, license_duration_secs = $6,
                 persistent_licenses = $7
             WHERE id = $1
             RETURNING {TIER_RETURNING}"
        );
        Ok(with_pool!(self, pool => sqlx::query_as(&sql)
            .bind(id)
            .bind(&s.name)
            .bind(s.max_concurrent_streams)
            .bind(s.can_use_drm)
            .bind(s.price_monthly_cents)
            .bind(s.license_duration_secs)
            .bind(s.persistent_licenses)
            .fetch_optional(pool)
            .await)?)
    }

    /// The user's active subscription with its tier (expired ones included, with their
    /// `expires_at`); `None` when they never subscribed.
    pub async fn active_subscription(
        &self,
        user_id: &str,
    ) -> Result<Option<SubscriptionRecord>, DbError> {
        let sql = format!(
            "SELECT {TIER_RECORD_COLUMNS}, s.status, s.started_at, s.expires_at
             FROM user_subscriptions s JOIN subscription_tiers t ON t.id = s.tier_id
             WHERE s.user_id = $1 AND s.status = 'active'"
        );
        Ok(with_pool!(self, pool => sqlx::query_as(&sql)
            .bind(user_id)
            .fetch_optional(pool)
            .await)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids() {
        assert!(valid_user_id("alice"));
        assert!(valid_user_id("auth0|5f7c8ec7c33c6c004bbafe82"));
        assert!(!valid_user_id(""));
        assert!(!valid_user_id("a\nb"));
        assert!(!valid_user_id(&"x".repeat(MAX_USER_ID_LEN + 1)));
    }
}
