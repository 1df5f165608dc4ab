//! Uploaded files and the titles transcoded from them.
//!
//! A file row is written when an upload completes; transcoding fills in the HLS manifest URL,
//! the DRM flag and the content key id once the output is published on the origin. Titles
//! packaged elsewhere are recorded ready in one step by [`Db::import_title`].

use time::OffsetDateTime;
use uuid::Uuid;

use super::content_keys::IV_IN_MEDIA;
use super::{with_pool, BeginWrite, Db, DbError};

/// A title's `transcoding_status` (the same vocabulary as its jobs).
pub use super::status;

/// One row of `files`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FileRecord {
    pub id: Uuid,
    pub owner_id: String,
    pub organization_id: Option<Uuid>,
    pub project_id: Option<Uuid>,
    pub name: String,
    pub mime_type: String,
    pub size_bytes: i64,
    pub storage_path: String,
    pub drm_protected: bool,
    pub hls_manifest_url: Option<String>,
    pub transcoding_status: String,
    pub content_key_id: Option<Uuid>,
    pub encrypted_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

impl FileRecord {
    /// Transcoding finished and the output is on the origin.
    pub fn is_ready(&self) -> bool {
        self.transcoding_status == status::COMPLETED
    }
}

/// What an upload knows about a new file.
#[derive(Debug, Clone)]
pub struct NewFile<'a> {
    pub id: Uuid,
    pub owner_id: &'a str,
    pub name: &'a str,
    pub mime_type: &'a str,
    pub size_bytes: i64,
    pub storage_path: &'a str,
}

/// What a successful transcode publishes about a title.
#[derive(Debug, Clone)]
pub struct PublishedTitle {
    pub drm_protected: bool,
    pub hls_manifest_url: String,
    pub content_key_id: Option<Uuid>,
    pub encrypted_at: Option<OffsetDateTime>,
}

/// A title packaged elsewhere (Shaka Packager, MediaConvert, ...) imported ready to play.
#[derive(Debug, Clone)]
pub struct ImportedTitle<'a> {
    pub file: NewFile<'a>,
    pub drm_protected: bool,
    pub hls_manifest_url: &'a str,
    /// `(key id, at-rest envelope)` of each content key; the first becomes `content_key_id`.
    pub keys: &'a [(Uuid, String)],
}

const FILE_COLUMNS: &str =
    "id, owner_id, organization_id, project_id, name, mime_type, size_bytes, \
     storage_path, drm_protected, hls_manifest_url, transcoding_status, content_key_id, \
     encrypted_at, created_at";

impl Db {
    /// Records an uploaded file; status `pending`, no DRM.
    pub async fn insert_file(
        &self,
        file: &NewFile<'_>,
        now: OffsetDateTime,
    ) -> Result<FileRecord, DbError> {
        let sql = format!(
            "INSERT INTO files (id, owner_id, name, mime_type, size_bytes, storage_path,
                                drm_protected, transcoding_status, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, FALSE, 'pending', $7)
             RETURNING {FILE_COLUMNS}"
        );
        Ok(with_pool!(self, pool => sqlx::query_as(&sql)
            .bind(file.id)
            .bind(file.owner_id)
            .bind(file.name)
            .bind(file.mime_type)
            .bind(file.size_bytes)
            .bind(file.storage_path)
            .bind(now)
            .fetch_one(pool)
            .await)?)
    }

    /// Records an imported title as completed, with its wrapped content keys, in one
    /// transaction; the owner is created if needed.
    pub async fn import_title(
        &self,
        title: &ImportedTitle<'_>,
        now: OffsetDateTime,
    ) -> Result<FileRecord, DbError> {
        let file = &title.file;
        let content_key_id = title.keys.first().map(|(id, _)| *id);
        let encrypted_at = content_key_id.map(|_| now);
        let sql = format!(
            "INSERT INTO files (id, owner_id, name, mime_type, size_bytes, storage_path,
                                drm_protected, hls_manifest_url, transcoding_status,
                                content_key_id, encrypted_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'completed', $9, $10, $11)
             RETURNING {FILE_COLUMNS}"
        );
        Ok(with_pool!(self, pool => async {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "INSERT INTO users (id, email, created_at) VALUES ($1, NULL, $2)
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(file.owner_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let record: FileRecord = sqlx::query_as(&sql)
                .bind(file.id)
                .bind(file.owner_id)
                .bind(file.name)
                .bind(file.mime_type)
                .bind(file.size_bytes)
                .bind(file.storage_path)
                .bind(title.drm_protected)
                .bind(title.hls_manifest_url)
                .bind(content_key_id)
                .bind(encrypted_at)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
            for (key_id, wrapped) in title.keys {
                sqlx::query(
                    "INSERT INTO content_keys (id, content_id, content_key, iv, algorithm, created_at)
                     VALUES ($1, $2, $3, $4, 'AES-128', $5)",
                )
                .bind(key_id)
                .bind(file.id)
                .bind(wrapped)
                .bind(IV_IN_MEDIA)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok::<FileRecord, sqlx::Error>(record)
        }.await)?)
    }

    /// The file with `id`, if any.
    pub async fn file(&self, id: Uuid) -> Result<Option<FileRecord>, DbError> {
        let sql = format!("SELECT {FILE_COLUMNS} FROM files WHERE id = $1");
        Ok(with_pool!(self, pool => sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(pool)
            .await)?)
    }

    /// Shares a file with an organization and/or project (or unshares with `None`).
    pub async fn share_file(
        &self,
        id: Uuid,
        organization_id: Option<Uuid>,
        project_id: Option<Uuid>,
    ) -> Result<(), DbError> {
        with_pool!(self, pool => sqlx::query(
            "UPDATE files SET organization_id = $2, project_id = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(organization_id)
        .bind(project_id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Sets `transcoding_status` only (processing, failed).
    pub async fn set_file_status(&self, id: Uuid, status: &str) -> Result<(), DbError> {
        with_pool!(self, pool => sqlx::query(
            "UPDATE files SET transcoding_status = $2 WHERE id = $1",
        )
        .bind(id)
        .bind(status)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }
}
