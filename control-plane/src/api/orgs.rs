//! Organizations, projects and membership (viewer JWT), plus sharing a file with them.
//!
//! Access rules, after the source service ("organization/project membership — shared content
//! access"; "content ownership or organization membership"):
//! - any viewer may create an organization and becomes its `owner`;
//! - members see the organization, its members and its projects; non-members get 404 (an
//!   organization's existence is not disclosed);
//! - owners and admins add, re-role and remove members and create projects and manage project
//!   members; only an owner makes or unmakes owners; the last owner cannot leave;
//! - a project's members must belong to its organization; leaving an organization leaves its
//!   projects;
//! - a member may leave on their own (`DELETE …/members/{their id}`);
//! - a JWT with the `admin` role may do all of the above on any organization;
//! - a file's owner shares it with an organization they belong to and/or a project of theirs:
//!   the organization's members, or the project's members, may then play it
//!   ([`playback::entitlement`], which the edges' entitlement API applies).
//!
//! Membership changes are published to the edges as entitlement invalidations of that user.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{
    path_user_id, path_uuid, valid_name, Admin, ApiJson, ApiQuery, JsonBody, Viewer,
    SMALL_JSON_BODY,
};
use super::pagination::{Page, PageQuery};
use super::AppState;
use crate::db::files::FileRecord;
use crate::db::orgs::{OrgRole, Organization, Project, LAST_OWNER};
use crate::db::{now, DbError};
use crate::invalidation::Invalidation;

/// Longest organization or project name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// An organization; `role` is the caller's role in it (absent in the admin list).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrgView {
    pub id: Uuid,
    pub name: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub role: Option<OrgRole>,
}

/// A member of an organization.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberView {
    pub user_id: String,
    pub role: OrgRole,
}

/// A project.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectView {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    /// RFC 3339, UTC.
    pub created_at: String,
}

/// A member of a project.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectMemberView {
    pub user_id: String,
}

/// `{"name"}` of a new organization or project.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NameBody {
    /// 1 to 100 characters (trimmed), no control characters.
    #[schema(min_length = 1, max_length = 100, pattern = r"^\S(.*\S)?$")]
    pub name: String,
}

impl JsonBody for NameBody {
    const MAX_BYTES: usize = SMALL_JSON_BODY;
}

/// `{"role"}` of a member.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    pub role: OrgRole,
}

impl JsonBody for RoleBody {
    const MAX_BYTES: usize = SMALL_JSON_BODY;
}

/// Where a file is shared: an organization and/or a project (null to stop sharing).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SharingBody {
    #[serde(default)]
    pub organization_id: Option<Uuid>,
    #[serde(default)]
    pub project_id: Option<Uuid>,
}

impl JsonBody for SharingBody {
    const MAX_BYTES: usize = SMALL_JSON_BODY;
}

/// A file as its owner lists it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileView {
    pub file_id: Uuid,
    pub name: String,
    pub mime_type: String,
    pub size_bytes: i64,
    /// `pending`, `processing`, `completed` or `failed`.
    pub transcoding_status: String,
    pub drm_protected: bool,
    pub organization_id: Option<Uuid>,
    pub project_id: Option<Uuid>,
    /// RFC 3339, UTC.
    pub created_at: String,
}

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    crate::admin::rfc3339(t)
}

impl OrgView {
    fn new(org: Organization, role: Option<OrgRole>) -> Self {
        OrgView {
            id: org.id,
            name: org.name,
            created_at: rfc3339(org.created_at),
            role,
        }
    }
}

impl From<Project> for ProjectView {
    fn from(p: Project) -> Self {
        ProjectView {
            id: p.id,
            organization_id: p.organization_id,
            name: p.name,
            created_at: rfc3339(p.created_at),
        }
    }
}

impl From<FileRecord> for FileView {
    fn from(f: FileRecord) -> Self {
        FileView {
            file_id: f.id,
            name: f.name,
            mime_type: f.mime_type,
            size_bytes: f.size_bytes,
            transcoding_status: f.transcoding_status,
            drm_protected: f.drm_protected,
            organization_id: f.organization_id,
            project_id: f.project_id,
            created_at: rfc3339(f.created_at),
        }
    }
}

fn unknown_org() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_organization",
        "No such organization (or you are not a member).",
    )
}

fn unknown_project() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_project",
        "No such project (or you are not a member of it or its organization).",
    )
}

fn unknown_user() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_user",
        "No such user; a user exists once they have called the API with their JWT.",
    )
}

fn not_a_member() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_a_member",
        "That user is not a member.",
    )
}

/// The caller's standing in one organization.
struct OrgAccess {
    org: Organization,
    role: Option<OrgRole>,
    global_admin: bool,
}

impl OrgAccess {
    fn can_manage(&self) -> bool {
        self.global_admin || self.role.is_some_and(OrgRole::can_manage)
    }

    fn is_owner(&self) -> bool {
        self.global_admin || self.role == Some(OrgRole::Owner)
    }

    fn require_manage(&self) -> Result<(), ApiError> {
        if self.can_manage() {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "org_admin_required",
                "Only the organization's owners and admins may do this.",
            ))
        }
    }
}

/// Loads the organization; non-members (other than global admins) get 404.
async fn org_access(app: &AppState, viewer: &Viewer, id: Uuid) -> Result<OrgAccess, ApiError> {
    let org = app.db.organization(id).await?.ok_or_else(unknown_org)?;
    let role = app.db.organization_role(id, viewer.user_id()).await?;
    let global_admin = viewer.claims.is_admin();
    if role.is_none() && !global_admin {
        return Err(unknown_org());
    }
    Ok(OrgAccess {
        org,
        role,
        global_admin,
    })
}

/// Loads a project and the caller's standing in its organization; callers who are neither
/// organization members, project members nor global admins get 404.
async fn project_access(
    app: &AppState,
    viewer: &Viewer,
    id: Uuid,
) -> Result<(Project, Option<OrgAccess>), ApiError> {
    let project = app.db.project(id).await?.ok_or_else(unknown_project)?;
    match org_access(app, viewer, project.organization_id).await {
        Ok(access) => Ok((project, Some(access))),
        Err(_) if app.db.is_project_member(id, viewer.user_id()).await? => Ok((project, None)),
        Err(_) => Err(unknown_project()),
    }
}

async fn tell_edges(app: &AppState, user_id: &str) {
    app.invalidator
        .notify(&Invalidation::Entitlement {
            user_id: user_id.to_string(),
            video_id: None,
        })
        .await;
}

/// `POST /orgs`: creates an organization owned by the caller.
#[utoipa::path(
    post,
    path = "/orgs",
    tag = "orgs",
    request_body = NameBody,
    responses(
        (status = 201, description = "Created; the caller is its owner", body = OrgView),
        (status = 400, description = "Malformed JSON"),
        (status = 415, description = "Not JSON"),
        (status = 422, description = "Invalid name (`invalid_name`)"),
    ),
    security(("bearer" = []))
)]
pub async fn create_org(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiJson(body): ApiJson<NameBody>,
) -> Result<(StatusCode, Json<OrgView>), ApiError> {
    let name = valid_name(&body.name, MAX_NAME_CHARS)?;
    let org = app
        .db
        .create_organization_owned(&name, viewer.user_id(), now())
        .await?;
    tracing::info!(orgId = %org.id, userId = %viewer.user_id(), "organization created");
    tell_edges(&app, viewer.user_id()).await;
    Ok((
        StatusCode::CREATED,
        Json(OrgView::new(org, Some(OrgRole::Owner))),
    ))
}

/// `GET /orgs`: the caller's organizations, with their role.
#[utoipa::path(
    get,
    path = "/orgs",
    tag = "orgs",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of the caller's organizations", body = Page<OrgView>),
        (status = 400, description = "Bad `limit` or `cursor`"),
    ),
    security(("bearer" = []))
)]
pub async fn my_orgs(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<OrgView>>, ApiError> {
    let req = q.validate()?;
    let rows = app
        .db
        .list_user_organizations(viewer.user_id(), req.after.as_deref(), req.fetch())
        .await?;
    let page = Page::from_rows(rows, &req, |m| m.organization.id.to_string());
    Ok(Json(page.map(|m| {
        let role = OrgRole::parse(&m.role);
        OrgView::new(m.organization, Some(role))
    })))
}

/// `GET /admin/v1/orgs`: every organization.
#[utoipa::path(
    get,
    path = "/admin/v1/orgs",
    tag = "admin",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of organizations", body = Page<OrgView>),
        (status = 400, description = "Bad `limit` or `cursor`"),
        (status = 403, description = "No admin role (`admin_required`)"),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn all_orgs(
    State(app): State<AppState>,
    _admin: Admin,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<OrgView>>, ApiError> {
    let req = q.validate()?;
    let rows = app
        .db
        .list_organizations(req.after.as_deref(), req.fetch())
        .await?;
    let page = Page::from_rows(rows, &req, |o| o.id.to_string());
    Ok(Json(page.map(|o| OrgView::new(o, None))))
}

/// `GET /orgs/{orgId}`.
#[utoipa::path(
    get,
    path = "/orgs/{orgId}",
    tag = "orgs",
    params(("orgId" = String, Path, description = "Organization id (UUID)")),
    responses(
        (status = 200, description = "The organization and the caller's role", body = OrgView),
        (status = 404, description = "Unknown, or the caller is not a member"),
    ),
    security(("bearer" = []))
)]
pub async fn get_org(
    State(app): State<AppState>,
    viewer: Viewer,
    Path(raw): Path<String>,
) -> Result<Json<OrgView>, ApiError> {
    let access = org_access(&app, &viewer, path_uuid(&raw)?).await?;
    Ok(Json(OrgView::new(access.org, access.role)))
}

/// `GET /orgs/{orgId}/members`.
#[utoipa::path(
    get,
    path = "/orgs/{orgId}/members",
    tag = "orgs",
    params(("orgId" = String, Path, description = "Organization id (UUID)"), PageQuery),
    responses(
        (status = 200, description = "A page of members, by user id", body = Page<MemberView>),
        (status = 400, description = "Bad `limit` or `cursor`"),
        (status = 404, description = "Unknown, or the caller is not a member"),
    ),
    security(("bearer" = []))
)]
pub async fn list_members(
    State(app): State<AppState>,
    viewer: Viewer,
    Path(raw): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<MemberView>>, ApiError> {
    let access = org_access(&app, &viewer, path_uuid(&raw)?).await?;
    let req = q.validate()?;
    let rows = app
        .db
        .list_organization_members(access.org.id, req.after.as_deref(), req.fetch())
        .await?;
    let page = Page::from_rows(rows, &req, |m| m.user_id.clone());
    Ok(Json(page.map(|m| MemberView {
        role: OrgRole::parse(&m.role),
        user_id: m.user_id,
    })))
}

/// `PUT /orgs/{orgId}/members/{userId}`: adds a member or changes their role.
#[utoipa::path(
    put,
    path = "/orgs/{orgId}/members/{userId}",
    tag = "orgs",
    params(
        ("orgId" = String, Path, description = "Organization id (UUID)"),
        ("userId" = String, Path, description = "The user (JWT `sub`)"),
    ),
    request_body = RoleBody,
    responses(
        (status = 200, description = "The member with their role", body = MemberView),
        (status = 400, description = "Malformed JSON"),
        (status = 403, description = "Not an owner/admin (`org_admin_required`), or owner \
                                      changes by a non-owner (`org_owner_required`)"),
        (status = 404, description = "Unknown organization or user"),
        (status = 409, description = "Would demote the last owner (`last_owner`)"),
        (status = 415, description = "Not JSON"),
    ),
    security(("bearer" = []))
)]
pub async fn set_member(
    State(app): State<AppState>,
    viewer: Viewer,
    Path((raw_org, raw_user)): Path<(String, String)>,
    ApiJson(body): ApiJson<RoleBody>,
) -> Result<Json<MemberView>, ApiError> {
    let access = org_access(&app, &viewer, path_uuid(&raw_org)?).await?;
    let user_id = path_user_id(&raw_user)?;
    access.require_manage()?;
    let current = app.db.organization_role(access.org.id, user_id).await?;
    if (body.role == OrgRole::Owner || current == Some(OrgRole::Owner)) && !access.is_owner() {
        return Err(owner_required());
    }
    if current.is_none() && !app.db.user_exists(user_id).await? {
        return Err(unknown_user());
    }
    app.db
        .set_organization_member(access.org.id, user_id, body.role)
        .await
        .map_err(last_owner)?;
    tracing::info!(orgId = %access.org.id, userId = %user_id, role = body.role.as_str(),
        by = %viewer.user_id(), "organization member set");
    tell_edges(&app, user_id).await;
    Ok(Json(MemberView {
        user_id: user_id.to_string(),
        role: body.role,
    }))
}

fn owner_required() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "org_owner_required",
        "Only an owner may make or change owners.",
    )
}

fn last_owner(e: DbError) -> ApiError {
    match e {
        DbError::Conflict(LAST_OWNER) => ApiError::new(
            StatusCode::CONFLICT,
            "last_owner",
            "An organization keeps at least one owner; make someone else owner first.",
        ),
        other => other.into(),
    }
}

/// `DELETE /orgs/{orgId}/members/{userId}`: removes a member (or the caller leaves).
#[utoipa::path(
    delete,
    path = "/orgs/{orgId}/members/{userId}",
    tag = "orgs",
    params(
        ("orgId" = String, Path, description = "Organization id (UUID)"),
        ("userId" = String, Path, description = "The user (JWT `sub`)"),
    ),
    responses(
        (status = 204, description = "Removed, with their project memberships in it"),
        (status = 403, description = "Not an owner/admin, or removing an owner as a non-owner"),
        (status = 404, description = "Unknown organization, or not a member"),
        (status = 409, description = "The last owner (`last_owner`)"),
    ),
    security(("bearer" = []))
)]
pub async fn remove_member(
    State(app): State<AppState>,
    viewer: Viewer,
    Path((raw_org, raw_user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let access = org_access(&app, &viewer, path_uuid(&raw_org)?).await?;
    let user_id = path_user_id(&raw_user)?;
    let leaving = user_id == viewer.user_id();
    if !leaving {
        access.require_manage()?;
    }
    let current = app
        .db
        .organization_role(access.org.id, user_id)
        .await?
        .ok_or_else(not_a_member)?;
    if current == OrgRole::Owner && !leaving && !access.is_owner() {
        return Err(owner_required());
    }
    let removed = app
        .db
        .remove_organization_member(access.org.id, user_id)
        .await
        .map_err(last_owner)?;
    if !removed {
        return Err(not_a_member());
    }
    tracing::info!(orgId = %access.org.id, userId = %user_id, by = %viewer.user_id(),
        "organization member removed");
    tell_edges(&app, user_id).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /orgs/{orgId}/projects`.
#[utoipa::path(
    post,
    path = "/orgs/{orgId}/projects",
    tag = "orgs",
    params(("orgId" = String, Path, description = "Organization id (UUID)")),
    request_body = NameBody,
    responses(
        (status = 201, description = "Created", body = ProjectView),
        (status = 400, description = "Malformed JSON"),
        (status = 403, description = "Not an owner/admin (`org_admin_required`)"),
        (status = 404, description = "Unknown organization, or not a member"),
        (status = 409, description = "The organization has a project of that name"),
        (status = 415, description = "Not JSON"),
        (status = 422, description = "Invalid name (`invalid_name`)"),
    ),
    security(("bearer" = []))
)]
pub async fn create_project(
    State(app): State<AppState>,
    viewer: Viewer,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<NameBody>,
) -> Result<(StatusCode, Json<ProjectView>), ApiError> {
    let access = org_access(&app, &viewer, path_uuid(&raw)?).await?;
    access.require_manage()?;
    let name = valid_name(&body.name, MAX_NAME_CHARS)?;
    let project = match app.db.create_project_in(access.org.id, &name, now()).await {
        Ok(p) => p,
        Err(e) if e.is_unique_violation() => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "duplicate_project",
                "This organization already has a project with that name.",
            ))
        }
        Err(e) => return Err(e.into()),
    };
    Ok((StatusCode::CREATED, Json(project.into())))
}

/// `GET /orgs/{orgId}/projects`.
#[utoipa::path(
    get,
    path = "/orgs/{orgId}/projects",
    tag = "orgs",
    params(("orgId" = String, Path, description = "Organization id (UUID)"), PageQuery),
    responses(
        (status = 200, description = "A page of projects", body = Page<ProjectView>),
        (status = 400, description = "Bad `limit` or `cursor`"),
        (status = 404, description = "Unknown organization, or not a member"),
    ),
    security(("bearer" = []))
)]
pub async fn list_projects(
    State(app): State<AppState>,
    viewer: Viewer,
    Path(raw): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<ProjectView>>, ApiError> {
    let access = org_access(&app, &viewer, path_uuid(&raw)?).await?;
    let req = q.validate()?;
    let rows = app
        .db
        .list_projects(access.org.id, req.after.as_deref(), req.fetch())
        .await?;
    Ok(Json(
        Page::from_rows(rows, &req, |p| p.id.to_string()).map(ProjectView::from),
    ))
}

/// `GET /projects/{projectId}`.
#[utoipa::path(
    get,
    path = "/projects/{projectId}",
    tag = "orgs",
    params(("projectId" = String, Path, description = "Project id (UUID)")),
    responses(
        (status = 200, description = "The project", body = ProjectView),
        (status = 404, description = "Unknown, or the caller is not a member"),
    ),
    security(("bearer" = []))
)]
pub async fn get_project(
    State(app): State<AppState>,
    viewer: Viewer,
    Path(raw): Path<String>,
) -> Result<Json<ProjectView>, ApiError> {
    let (project, _) = project_access(&app, &viewer, path_uuid(&raw)?).await?;
    Ok(Json(project.into()))
}

/// `GET /projects/{projectId}/members`.
#[utoipa::path(
    get,
    path = "/projects/{projectId}/members",
    tag = "orgs",
    params(("projectId" = String, Path, description = "Project id (UUID)"), PageQuery),
    responses(
        (status = 200, description = "A page of members, by user id", body = Page<ProjectMemberView>),
        (status = 400, description = "Bad `limit` or `cursor`"),
        (status = 404, description = "Unknown, or the caller is not a member"),
    ),
    security(("bearer" = []))
)]
pub async fn list_project_members(
    State(app): State<AppState>,
    viewer: Viewer,
    Path(raw): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<ProjectMemberView>>, ApiError> {
    let (project, _) = project_access(&app, &viewer, path_uuid(&raw)?).await?;
    let req = q.validate()?;
    let rows = app
        .db
        .list_project_members(project.id, req.after.as_deref(), req.fetch())
        .await?;
    Ok(Json(
        Page::from_rows(rows, &req, String::clone).map(|user_id| ProjectMemberView { user_id }),
    ))
}

/// Resolves a project the caller may manage (owners/admins of its organization).
async fn managed_project(
    app: &AppState,
    viewer: &Viewer,
    raw: &str,
) -> Result<(Project, OrgAccess), ApiError> {
    let (project, access) = project_access(app, viewer, path_uuid(raw)?).await?;
    let access = access.ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "org_admin_required",
            "Only the owners and admins of the project's organization may do this.",
        )
    })?;
    Ok((project, access))
}

/// `PUT /projects/{projectId}/members/{userId}`: adds a member of the organization.
#[utoipa::path(
    put,
    path = "/projects/{projectId}/members/{userId}",
    tag = "orgs",
    params(
        ("projectId" = String, Path, description = "Project id (UUID)"),
        ("userId" = String, Path, description = "The user (JWT `sub`)"),
    ),
    responses(
        (status = 200, description = "A member (idempotent)", body = ProjectMemberView),
        (status = 403, description = "Not an owner/admin of the organization"),
        (status = 404, description = "Unknown project or user"),
        (status = 422, description = "The user is not a member of the organization (`not_org_member`)"),
    ),
    security(("bearer" = []))
)]
pub async fn add_project_member(
    State(app): State<AppState>,
    viewer: Viewer,
    Path((raw_project, raw_user)): Path<(String, String)>,
) -> Result<Json<ProjectMemberView>, ApiError> {
    let (project, access) = managed_project(&app, &viewer, &raw_project).await?;
    access.require_manage()?;
    let user_id = path_user_id(&raw_user)?;
    if app
        .db
        .organization_role(project.organization_id, user_id)
        .await?
        .is_none()
    {
        if !app.db.user_exists(user_id).await? {
            return Err(unknown_user());
        }
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_org_member",
            "Add the user to the project's organization first.",
        ));
    }
    app.db.add_project_member(project.id, user_id).await?;
    tracing::info!(projectId = %project.id, userId = %user_id, by = %viewer.user_id(),
        "project member added");
    tell_edges(&app, user_id).await;
    Ok(Json(ProjectMemberView {
        user_id: user_id.to_string(),
    }))
}

/// `DELETE /projects/{projectId}/members/{userId}` (owners/admins, or the member leaving).
#[utoipa::path(
    delete,
    path = "/projects/{projectId}/members/{userId}",
    tag = "orgs",
    params(
        ("projectId" = String, Path, description = "Project id (UUID)"),
        ("userId" = String, Path, description = "The user (JWT `sub`)"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Not an owner/admin of the organization"),
        (status = 404, description = "Unknown project, or not a member"),
    ),
    security(("bearer" = []))
)]
pub async fn remove_project_member(
    State(app): State<AppState>,
    viewer: Viewer,
    Path((raw_project, raw_user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let user_id = path_user_id(&raw_user)?;
    let (project, access) = project_access(&app, &viewer, path_uuid(&raw_project)?).await?;
    let leaving = user_id == viewer.user_id();
    if !leaving {
        match access {
            Some(a) => a.require_manage()?,
            None => return Err(OrgAccess::forbidden()),
        }
    }
    if !app.db.remove_project_member(project.id, user_id).await? {
        return Err(not_a_member());
    }
    tell_edges(&app, user_id).await;
    Ok(StatusCode::NO_CONTENT)
}

impl OrgAccess {
    fn forbidden() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "org_admin_required",
            "Only the organization's owners and admins may do this.",
        )
    }
}

/// `PUT /files/{fileId}/sharing`: shares the caller's file with an organization and/or project.
#[utoipa::path(
    put,
    path = "/files/{fileId}/sharing",
    tag = "orgs",
    params(("fileId" = String, Path, description = "File id (UUID)")),
    request_body = SharingBody,
    responses(
        (status = 200, description = "The file with its new sharing", body = FileView),
        (status = 400, description = "Malformed JSON"),
        (status = 404, description = "Unknown file, or not the caller's"),
        (status = 415, description = "Not JSON"),
        (status = 422, description = "An organization/project the caller is not in \
                                      (`invalid_organization`, `invalid_project`), or a \
                                      project outside the organization \
                                      (`project_not_in_organization`)"),
    ),
    security(("bearer" = []))
)]
pub async fn share_file(
    State(app): State<AppState>,
    viewer: Viewer,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<SharingBody>,
) -> Result<Json<FileView>, ApiError> {
    let id = path_uuid(&raw)?;
    let file = app
        .db
        .file(id)
        .await?
        .filter(|f| f.owner_id == viewer.user_id() || viewer.claims.is_admin())
        .ok_or_else(ApiError::unknown_file)?;
    let invalid = |code: &'static str, message: &str| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    };
    if let Some(org) = body.organization_id {
        if org_access(&app, &viewer, org).await.is_err() {
            return Err(invalid(
                "invalid_organization",
                "`organizationId` must be an organization you belong to.",
            ));
        }
    }
    if let Some(project) = body.project_id {
        let Ok((p, _)) = project_access(&app, &viewer, project).await else {
            return Err(invalid(
                "invalid_project",
                "`projectId` must be a project you (or your organization) belong to.",
            ));
        };
        if body.organization_id.is_some_and(|o| o != p.organization_id) {
            return Err(invalid(
                "project_not_in_organization",
                "`projectId` must belong to `organizationId`.",
            ));
        }
    }
    app.db
        .share_file(file.id, body.organization_id, body.project_id)
        .await?;
    let file = app
        .db
        .file(file.id)
        .await?
        .ok_or_else(ApiError::unknown_file)?;
    tracing::info!(fileId = %file.id, by = %viewer.user_id(), "file sharing changed");
    Ok(Json(file.into()))
}
