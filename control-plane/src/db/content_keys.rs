//! Content keys at rest: only the wrapped envelope is ever stored.
//!
//! `content_key` holds the at-rest form produced by the custody backend
//! ([`crate::keys::KeyCustody`]); the plaintext key exists only in process memory.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{with_pool, Db, DbError};

/// How segment IVs are derived: not stored, taken from the media sequence number.
pub const IV_FROM_MEDIA_SEQUENCE: &str = "media-sequence";
/// Keys of titles packaged elsewhere (`control-plane import`): the packager wrote the IVs into
/// the media (CENC) or the playlists; the control plane does not know or need them.
pub const IV_IN_MEDIA: &str = "in-media";

/// The outcome of revoking a key of a title.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevokedKey {
    /// When the key was revoked (by this call or an earlier one).
    pub revoked_at: OffsetDateTime,
    /// False when the key was already revoked: nothing was written.
    pub newly_revoked: bool,
}

/// One row of `content_keys`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ContentKeyRecord {
    pub id: Uuid,
    pub content_id: Uuid,
    /// The wrapped at-rest envelope (`v1.…`), never plaintext.
    pub content_key: String,
    pub iv: String,
    pub algorithm: String,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

const KEY_COLUMNS: &str = "id, content_id, content_key, iv, algorithm, created_at, revoked_at";

impl Db {
    /// Stores a wrapped content key for a title.
    pub async fn insert_content_key(
        &self,
        id: Uuid,
        content_id: Uuid,
        wrapped: &str,
        now: OffsetDateTime,
    ) -> Result<(), DbError> {
        with_pool!(self, pool => sqlx::query(
            "INSERT INTO content_keys (id, content_id, content_key, iv, algorithm, created_at)
             VALUES ($1, $2, $3, $4, 'AES-128', $5)",
        )
        .bind(id)
        .bind(content_id)
        .bind(wrapped)
        .bind(IV_FROM_MEDIA_SEQUENCE)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The key `key_id` of title `content_id`, if it belongs to that title.
    pub async fn content_key(
        &self,
        content_id: Uuid,
        key_id: Uuid,
    ) -> Result<Option<ContentKeyRecord>, DbError> {
        let sql =
            format!("SELECT {KEY_COLUMNS} FROM content_keys WHERE id = $1 AND content_id = $2");
        Ok(with_pool!(self, pool => sqlx::query_as(&sql)
            .bind(key_id)
            .bind(content_id)
            .fetch_optional(pool)
            .await)?)
    }

    /// Every key of a title, oldest first.
    pub async fn content_keys_for(
        &self,
        content_id: Uuid,
    ) -> Result<Vec<ContentKeyRecord>, DbError> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM content_keys WHERE content_id = $1 ORDER BY created_at"
        );
        Ok(with_pool!(self, pool => sqlx::query_as(&sql)
            .bind(content_id)
            .fetch_all(pool)
            .await)?)
    }

    /// Revokes key `key_id` of title `content_id` (idempotent: an earlier revocation keeps its
    /// time). `None` when the title has no such key. Writes `revoked_at` and nothing else.
    pub async fn revoke_video_key(
        &self,
        content_id: Uuid,
        key_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Option<RevokedKey>, DbError> {
        let changed = with_pool!(self, pool => sqlx::query(
            "UPDATE content_keys SET revoked_at = $3
             WHERE id = $1 AND content_id = $2 AND revoked_at IS NULL",
        )
        .bind(key_id)
        .bind(content_id)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        let revoked_at: Option<Option<OffsetDateTime>> = with_pool!(self, pool => sqlx::query_scalar(
            "SELECT revoked_at FROM content_keys WHERE id = $1 AND content_id = $2",
        )
        .bind(key_id)
        .bind(content_id)
        .fetch_optional(pool)
        .await)?;
        Ok(revoked_at.flatten().map(|revoked_at| RevokedKey {
            revoked_at,
            newly_revoked: changed > 0,
        }))
    }

    /// Revokes a key; edges answer 410 for it from then on. Returns false if unknown.
    pub async fn revoke_content_key(
        &self,
        key_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<bool, DbError> {
        let done = with_pool!(self, pool => sqlx::query(
            "UPDATE content_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(key_id)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }
}
