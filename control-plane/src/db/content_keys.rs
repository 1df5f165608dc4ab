//! Content keys at rest: only the wrapped envelope is ever stored.
//!
//! `content_key` holds the at-rest form produced by the key custody backend (an envelope this
//! layer stores and never opens); the plaintext key exists only in process memory.
//!
//! Lifecycle of a title's keys: the *current* key (`files.content_key_id`) is the one new
//! packaging uses. Generate makes the first one; rotate adds a new key and makes it current
//! while the previous keys keep serving; retire takes a non-current key out of service
//! (`retired_at`); revoke cuts any key off at once (`revoked_at`). Retired and revoked keys are
//! never served to edges. Keys are never deleted (they cascade away with their title).

use time::OffsetDateTime;
use uuid::Uuid;

use super::{with_pool, BeginWrite, Db, DbError};

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
    pub retired_at: Option<OffsetDateTime>,
}

impl ContentKeyRecord {
    /// True while edges may be given this key: neither revoked nor retired.
    pub fn in_service(&self) -> bool {
        self.revoked_at.is_none() && self.retired_at.is_none()
    }
}

const KEY_COLUMNS: &str =
    "id, content_id, content_key, iv, algorithm, created_at, revoked_at, retired_at";

/// The outcome of retiring a key of a title.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetireOutcome {
    /// The title has no such key.
    NotFound,
    /// The key is the title's current key: rotate first.
    Current,
    /// Retired (by this call when `newly_retired`, else earlier: nothing written).
    Retired {
        retired_at: OffsetDateTime,
        newly_retired: bool,
    },
}

/// The outcome of adding a key for a title ([`Db::add_current_key`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddKeyOutcome {
    /// The title does not exist.
    NoTitle,
    /// The title's current key is not the one the caller expected (another generate or
    /// rotation came first, or a generate found a key): nothing was written.
    Stale { current: Option<Uuid> },
    /// Stored and made current; `previous` was the current key before.
    Added { previous: Option<Uuid> },
}

/// The outcome of storing a SPEKE key ([`Db::insert_key_if_absent`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyInsert {
    /// Stored now.
    Inserted,
    /// The id already exists for this title (a concurrent request won): use the stored row.
    Exists(Box<ContentKeyRecord>),
    /// The id already exists under another title.
    OtherTitle,
}

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

    /// The title's current key id (`files.content_key_id`): the one new packaging uses.
    /// `None` when the title has none or does not exist.
    pub async fn current_key_id(&self, content_id: Uuid) -> Result<Option<Uuid>, DbError> {
        let id: Option<Option<Uuid>> = with_pool!(self, pool => sqlx::query_scalar(
            "SELECT content_key_id FROM files WHERE id = $1",
        )
        .bind(content_id)
        .fetch_optional(pool)
        .await)?;
        Ok(id.flatten())
    }

    /// Stores a new wrapped key for a title and makes it the current key, in one transaction,
    /// if the title's current key is still `expected` (the one the caller started from; `None`
    /// for a generate). A compare-and-set: of concurrent calls that expected the same key,
    /// exactly one is [`AddKeyOutcome::Added`] and the others [`AddKeyOutcome::Stale`], with
    /// nothing written for them. The key row and the pointer change together or not at all.
    pub async fn add_current_key(
        &self,
        content_id: Uuid,
        key_id: Uuid,
        wrapped: &str,
        expected: Option<Uuid>,
        now: OffsetDateTime,
    ) -> Result<AddKeyOutcome, DbError> {
        with_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            // A no-op write first: it locks the title's row on Postgres (SQLite's IMMEDIATE
            // transaction already holds the database), so the read below sees the last
            // committed pointer and no other writer can move it before this one commits.
            let locked = sqlx::query("UPDATE files SET content_key_id = content_key_id WHERE id = $1")
                .bind(content_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if locked == 0 {
                return Ok(AddKeyOutcome::NoTitle);
            }
            let current: Option<Uuid> =
                sqlx::query_scalar("SELECT content_key_id FROM files WHERE id = $1")
                    .bind(content_id)
                    .fetch_one(&mut *tx)
                    .await?;
            if current != expected {
                return Ok(AddKeyOutcome::Stale { current });
            }
            sqlx::query(
                "INSERT INTO content_keys (id, content_id, content_key, iv, algorithm, created_at)
                 VALUES ($1, $2, $3, $4, 'AES-128', $5)",
            )
            .bind(key_id)
            .bind(content_id)
            .bind(wrapped)
            .bind(IV_FROM_MEDIA_SEQUENCE)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE files SET content_key_id = $2 WHERE id = $1")
                .bind(content_id)
                .bind(key_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(AddKeyOutcome::Added { previous: current })
        })
    }

    /// Stores key `key_id` for a title unless that id exists (SPEKE get-or-create: the
    /// encryptor chose the kid). Never changes an existing row.
    pub async fn insert_key_if_absent(
        &self,
        content_id: Uuid,
        key_id: Uuid,
        wrapped: &str,
        now: OffsetDateTime,
    ) -> Result<KeyInsert, DbError> {
        let inserted = with_pool!(self, pool => sqlx::query(
            "INSERT INTO content_keys (id, content_id, content_key, iv, algorithm, created_at)
             VALUES ($1, $2, $3, $4, 'AES-128', $5) ON CONFLICT (id) DO NOTHING",
        )
        .bind(key_id)
        .bind(content_id)
        .bind(wrapped)
        .bind(IV_IN_MEDIA)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        if inserted == 1 {
            return Ok(KeyInsert::Inserted);
        }
        Ok(match self.content_key_by_id(key_id).await? {
            Some(row) if row.content_id == content_id => KeyInsert::Exists(Box::new(row)),
            _ => KeyInsert::OtherTitle,
        })
    }

    /// Key `key_id` whatever title it belongs to.
    pub async fn content_key_by_id(
        &self,
        key_id: Uuid,
    ) -> Result<Option<ContentKeyRecord>, DbError> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM content_keys WHERE id = $1");
        Ok(with_pool!(self, pool => sqlx::query_as(&sql)
            .bind(key_id)
            .fetch_optional(pool)
            .await)?)
    }

    /// Retires key `key_id` of title `content_id` (idempotent: an earlier retirement keeps its
    /// time). The current key cannot be retired; a revoked key can (both stop serving).
    pub async fn retire_video_key(
        &self,
        content_id: Uuid,
        key_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<RetireOutcome, DbError> {
        if self.current_key_id(content_id).await? == Some(key_id) {
            return Ok(RetireOutcome::Current);
        }
        // The sub-select re-checks "not current" in the same statement, so a rotation racing
        // this call cannot leave the title's current key retired.
        let changed = with_pool!(self, pool => sqlx::query(
            "UPDATE content_keys SET retired_at = $3
             WHERE id = $1 AND content_id = $2 AND retired_at IS NULL
               AND NOT EXISTS (SELECT 1 FROM files WHERE files.id = $2 AND files.content_key_id = $1)",
        )
        .bind(key_id)
        .bind(content_id)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        let Some(row) = self.content_key(content_id, key_id).await? else {
            return Ok(RetireOutcome::NotFound);
        };
        Ok(match row.retired_at {
            Some(retired_at) => RetireOutcome::Retired {
                retired_at,
                newly_retired: changed > 0,
            },
            None => RetireOutcome::Current,
        })
    }
}
