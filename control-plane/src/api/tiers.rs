//! Subscription tiers and subscriptions, and the operator's lists of users and transcoding jobs
//! and the viewer's list of their own files.
//!
//! - `GET /tiers` (public: a pricing page) → a page of tiers, by name.
//! - `POST /admin/v1/tiers` → 201; `PUT /admin/v1/tiers/{tierId}` → 200 (admin role). Names are
//!   unique (409). The seeded `free`, `pro` and `enterprise` cannot be renamed: the CLI, the
//!   subscription endpoint and the free-tier fallback refer to them by name.
//! - `GET /me/subscription` → the caller's subscription and the tier that governs them.
//! - `GET /files` → the caller's files; `GET /admin/v1/users`, `GET /admin/v1/jobs` (admin).
//!
//! Setting a user's subscription is `PUT /admin/v1/users/{userId}/subscription` ([`super::admin`]).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{path_uuid, Admin, ApiJson, ApiQuery, JsonBody, Viewer, SMALL_JSON_BODY};
use super::orgs::{rfc3339, FileView};
use super::pagination::{Page, PageQuery};
use super::AppState;
use crate::db::jobs::JobRecord;
use crate::db::users::{TierName, TierRecord, TierSettings};
use crate::db::{now, status};

/// Longest tier name.
pub const MAX_TIER_NAME: usize = 64;

/// A subscription tier.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TierView {
    pub id: Uuid,
    pub name: String,
    pub max_concurrent_streams: i32,
    pub can_use_drm: bool,
    pub price_monthly_cents: i32,
    pub license_duration_secs: i32,
    pub persistent_licenses: bool,
}

impl From<TierRecord> for TierView {
    fn from(t: TierRecord) -> Self {
        TierView {
            id: t.id,
            name: t.name,
            max_concurrent_streams: t.max_concurrent_streams,
            can_use_drm: t.can_use_drm,
            price_monthly_cents: t.price_monthly_cents,
            license_duration_secs: t.license_duration_secs,
            persistent_licenses: t.persistent_licenses,
        }
    }
}

/// Every setting of a tier (create, or replace with `PUT`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TierBody {
    /// Lowercase letters, digits, `-` and `_`; 1 to 64 characters.
    #[schema(pattern = "^[a-z0-9_-]{1,64}$", min_length = 1, max_length = 64)]
    pub name: String,
    /// 0 to 1000.
    #[schema(minimum = 0, maximum = 1000)]
    pub max_concurrent_streams: i64,
    pub can_use_drm: bool,
    /// 0 to 10,000,000.
    #[schema(minimum = 0, maximum = 10_000_000)]
    pub price_monthly_cents: i64,
    /// 60 s to 366 days.
    #[schema(minimum = 60, maximum = 31_622_400)]
    pub license_duration_secs: i64,
    pub persistent_licenses: bool,
}

impl JsonBody for TierBody {
    const MAX_BYTES: usize = SMALL_JSON_BODY;
}

impl TierBody {
    fn settings(&self) -> Result<TierSettings, ApiError> {
        let invalid = |code: &'static str, message: String| {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
        };
        let name_ok = !self.name.is_empty()
            && self.name.len() <= MAX_TIER_NAME
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(invalid(
                "invalid_name",
                format!("`name` must be 1 to {MAX_TIER_NAME} of a-z, 0-9, '-' and '_'."),
            ));
        }
        let bounded = |field: &str, v: i64, lo: i64, hi: i64| {
            if (lo..=hi).contains(&v) {
                Ok(v as i32)
            } else {
                Err(invalid(
                    "invalid_value",
                    format!("`{field}` must be between {lo} and {hi}."),
                ))
            }
        };
        Ok(TierSettings {
            name: self.name.clone(),
            max_concurrent_streams: bounded(
                "maxConcurrentStreams",
                self.max_concurrent_streams,
                0,
                1000,
            )?,
            can_use_drm: self.can_use_drm,
            price_monthly_cents: bounded(
                "priceMonthlyCents",
                self.price_monthly_cents,
                0,
                10_000_000,
            )?,
            license_duration_secs: bounded(
                "licenseDurationSecs",
                self.license_duration_secs,
                60,
                31_622_400,
            )?,
            persistent_licenses: self.persistent_licenses,
        })
    }
}

fn duplicate_tier() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "duplicate_tier",
        "A subscription tier with that name exists.",
    )
}

/// `GET /tiers`.
#[utoipa::path(
    get,
    path = "/tiers",
    tag = "subscriptions",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of tiers, by name", body = Page<TierView>),
        (status = 400, description = "Bad `limit` or `cursor`"),
    )
)]
pub async fn list_tiers(
    State(app): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<TierView>>, ApiError> {
    let req = q.validate()?;
    let rows = app.db.list_tiers(req.after.as_deref(), req.fetch()).await?;
    Ok(Json(
        Page::from_rows(rows, &req, |t| t.name.clone()).map(TierView::from),
    ))
}

/// `POST /admin/v1/tiers`.
#[utoipa::path(
    post,
    path = "/admin/v1/tiers",
    tag = "admin",
    request_body = TierBody,
    responses(
        (status = 201, description = "Created", body = TierView),
        (status = 400, description = "Malformed JSON"),
        (status = 403, description = "No admin role (`admin_required`)"),
        (status = 409, description = "The name is taken (`duplicate_tier`)"),
        (status = 415, description = "Not JSON"),
        (status = 422, description = "A value out of range (`invalid_name`, `invalid_value`)"),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn create_tier(
    State(app): State<AppState>,
    Admin(admin): Admin,
    ApiJson(body): ApiJson<TierBody>,
) -> Result<(StatusCode, Json<TierView>), ApiError> {
    let settings = body.settings()?;
    let tier = match app.db.create_tier(&settings).await {
        Ok(t) => t,
        Err(e) if e.is_unique_violation() => return Err(duplicate_tier()),
        Err(e) => return Err(e.into()),
    };
    tracing::info!(tier = %tier.name, by = %admin.user_id(), "subscription tier created");
    Ok((StatusCode::CREATED, Json(tier.into())))
}

/// `PUT /admin/v1/tiers/{tierId}`.
#[utoipa::path(
    put,
    path = "/admin/v1/tiers/{tierId}",
    tag = "admin",
    params(("tierId" = String, Path, description = "Tier id (UUID)")),
    request_body = TierBody,
    responses(
        (status = 200, description = "Replaced", body = TierView),
        (status = 400, description = "Malformed JSON"),
        (status = 403, description = "No admin role (`admin_required`)"),
        (status = 404, description = "No such tier"),
        (status = 409, description = "The name is taken, or a seeded tier would be renamed"),
        (status = 415, description = "Not JSON"),
        (status = 422, description = "A value out of range (`invalid_name`, `invalid_value`)"),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn update_tier(
    State(app): State<AppState>,
    Admin(admin): Admin,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<TierBody>,
) -> Result<Json<TierView>, ApiError> {
    let id = path_uuid(&raw)?;
    let settings = body.settings()?;
    let current = app.db.tier(id).await?.ok_or_else(ApiError::not_found)?;
    if current.name != settings.name && current.name.parse::<TierName>().is_ok() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "tier_name_reserved",
            "The seeded tiers free, pro and enterprise keep their names.",
        ));
    }
    let tier = match app.db.update_tier(id, &settings).await {
        Ok(Some(t)) => t,
        Ok(None) => return Err(ApiError::not_found()),
        Err(e) if e.is_unique_violation() => return Err(duplicate_tier()),
        Err(e) => return Err(e.into()),
    };
    tracing::info!(tier = %tier.name, by = %admin.user_id(), "subscription tier updated");
    Ok(Json(tier.into()))
}

/// The caller's subscription.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionView {
    /// False when the caller never subscribed or the subscription expired: `tier` is then the
    /// free tier that governs them.
    pub subscribed: bool,
    pub tier: TierView,
    /// `active`, or `none`.
    pub status: String,
    /// RFC 3339, UTC.
    pub started_at: Option<String>,
    pub expires_at: Option<String>,
}

/// `GET /me/subscription`.
#[utoipa::path(
    get,
    path = "/me/subscription",
    tag = "subscriptions",
    responses(
        (status = 200, description = "The caller's subscription and effective tier", body = SubscriptionView),
        (status = 404, description = "No active subscription and no free tier row"),
    ),
    security(("bearer" = []))
)]
pub async fn my_subscription(
    State(app): State<AppState>,
    viewer: Viewer,
) -> Result<Json<SubscriptionView>, ApiError> {
    let at = now();
    if let Some(sub) = app.db.active_subscription(viewer.user_id()).await? {
        if sub.expires_at.is_none_or(|e| e > at) {
            return Ok(Json(SubscriptionView {
                subscribed: true,
                tier: sub.tier.into(),
                status: sub.status,
                started_at: Some(rfc3339(sub.started_at)),
                expires_at: sub.expires_at.map(rfc3339),
            }));
        }
    }
    // No (unexpired) subscription: the free tier governs.
    let free = app
        .db
        .list_tiers(None, 100)
        .await?
        .into_iter()
        .find(|t| t.name == TierName::Free.as_str())
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(SubscriptionView {
        subscribed: false,
        tier: free.into(),
        status: "none".into(),
        started_at: None,
        expires_at: None,
    }))
}

/// `GET /files`: the caller's files.
#[utoipa::path(
    get,
    path = "/files",
    tag = "media",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of the caller's files, by id", body = Page<FileView>),
        (status = 400, description = "Bad `limit` or `cursor`"),
    ),
    security(("bearer" = []))
)]
pub async fn my_files(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<FileView>>, ApiError> {
    let req = q.validate()?;
    let rows = app
        .db
        .list_owned_files(viewer.user_id(), req.after.as_deref(), req.fetch())
        .await?;
    Ok(Json(
        Page::from_rows(rows, &req, |f| f.id.to_string()).map(FileView::from),
    ))
}

/// A user as the operator sees it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub user_id: String,
    pub email: Option<String>,
    /// RFC 3339, UTC: when the user first called the API.
    pub created_at: String,
}

/// `GET /admin/v1/users`.
#[utoipa::path(
    get,
    path = "/admin/v1/users",
    tag = "admin",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of users, by id", body = Page<UserView>),
        (status = 400, description = "Bad `limit` or `cursor`"),
        (status = 403, description = "No admin role (`admin_required`)"),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn list_users(
    State(app): State<AppState>,
    _admin: Admin,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<UserView>>, ApiError> {
    let req = q.validate()?;
    let rows = app.db.list_users(req.after.as_deref(), req.fetch()).await?;
    Ok(Json(Page::from_rows(rows, &req, |u| u.id.clone()).map(
        |u| UserView {
            user_id: u.id,
            email: u.email,
            created_at: rfc3339(u.created_at),
        },
    )))
}

/// A transcoding job as the operator sees it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    pub id: Uuid,
    pub file_id: Uuid,
    /// The backend's own job id (MediaConvert); null for local ffmpeg.
    pub external_id: Option<String>,
    /// `pending`, `processing`, `completed` or `failed`.
    pub status: String,
    pub progress: i32,
    pub error_message: Option<String>,
    pub enable_drm: bool,
    pub attempts: i32,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub updated_at: String,
}

impl From<JobRecord> for JobView {
    fn from(j: JobRecord) -> Self {
        JobView {
            id: j.id,
            file_id: j.file_id,
            external_id: j.job_id,
            status: j.status,
            progress: j.progress,
            error_message: j.error_message,
            enable_drm: j.enable_drm,
            attempts: j.attempts,
            created_at: rfc3339(j.created_at),
            updated_at: rfc3339(j.updated_at),
        }
    }
}

/// A job status filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Pending,
    Processing,
    Completed,
    Failed,
}

impl JobStatus {
    fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => status::PENDING,
            JobStatus::Processing => status::PROCESSING,
            JobStatus::Completed => status::COMPLETED,
            JobStatus::Failed => status::FAILED,
        }
    }
}

/// `?status=&limit=&cursor=` of the jobs list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobsQuery {
    /// Only jobs in this state.
    #[param(inline)]
    pub status: Option<JobStatus>,
    /// Items per page, 1..=100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `nextCursor` of the previous page.
    #[param(max_length = 512)]
    pub cursor: Option<String>,
}

/// `GET /admin/v1/jobs`.
#[utoipa::path(
    get,
    path = "/admin/v1/jobs",
    tag = "admin",
    params(JobsQuery),
    responses(
        (status = 200, description = "A page of transcoding jobs, by id", body = Page<JobView>),
        (status = 400, description = "Bad `status`, `limit` or `cursor`"),
        (status = 403, description = "No admin role (`admin_required`)"),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn list_jobs(
    State(app): State<AppState>,
    _admin: Admin,
    ApiQuery(q): ApiQuery<JobsQuery>,
) -> Result<Json<Page<JobView>>, ApiError> {
    let req = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    }
    .validate()?;
    let rows = app
        .db
        .list_jobs(
            q.status.map(JobStatus::as_str),
            req.after.as_deref(),
            req.fetch(),
        )
        .await?;
    Ok(Json(
        Page::from_rows(rows, &req, |j| j.id.to_string()).map(JobView::from),
    ))
}
