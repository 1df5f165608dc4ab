//! Licenses issued by edges (`media_licenses`), recorded in batches.
//!
//! Edges report every license they issue through `POST /internal/v1/licenses`, replaying from
//! an outbox when the control plane was down, so the same record can arrive more than once:
//! recording is idempotent by license id (`ON CONFLICT (id) DO NOTHING`), and one batch is one
//! transaction. A record naming an unknown title is skipped (the caller reports it rejected and
//! the edge drops it). A key id that is not a content key of that title is stored as NULL
//! rather than failing the batch on the foreign key: the license happened, the record is kept.

use std::collections::{HashMap, HashSet};

use playback::license::policy::LicenseKind;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{with_pool, BeginWrite, Db, DbError};

/// The DRM system that issued a license, as stored in `media_licenses.drm_system`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DrmSystem {
    ClearKey,
    Aes128,
    FairPlay,
    Widevine,
    PlayReady,
}

impl DrmSystem {
    pub const ALL: [DrmSystem; 5] = [
        DrmSystem::ClearKey,
        DrmSystem::Aes128,
        DrmSystem::FairPlay,
        DrmSystem::Widevine,
        DrmSystem::PlayReady,
    ];

    /// The name used in JSON and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            DrmSystem::ClearKey => "clearkey",
            DrmSystem::Aes128 => "aes128",
            DrmSystem::FairPlay => "fairplay",
            DrmSystem::Widevine => "widevine",
            DrmSystem::PlayReady => "playready",
        }
    }

    /// Parses [`DrmSystem::as_str`].
    pub fn parse(name: &str) -> Option<DrmSystem> {
        DrmSystem::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// A validated license record to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLicense {
    pub id: Uuid,
    pub video_id: Uuid,
    pub user_id: String,
    pub key_id: Option<Uuid>,
    pub drm_system: DrmSystem,
    pub license_type: LicenseKind,
    pub issued_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub device_id: Option<String>,
}

/// What happened to one record of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LicenseOutcome {
    Recorded,
    /// A license with this id was already stored (a replay): nothing written.
    Duplicate,
    /// The title does not exist: nothing written.
    UnknownVideo,
}

/// The outcome of a batch: one entry per input record, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LicenseBatch {
    pub outcomes: Vec<LicenseOutcome>,
    /// Recorded licenses whose key id is not a key of their title (stored as NULL).
    pub keys_unmatched: u32,
}

/// One row of `media_licenses`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LicenseRecord {
    pub id: Uuid,
    pub content_id: Uuid,
    pub user_id: String,
    pub key_id: Option<Uuid>,
    pub issued_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub license_type: String,
    pub device_id: Option<String>,
    pub revoked: bool,
    pub drm_system: Option<String>,
}

const LICENSE_COLUMNS: &str = "id, content_id, user_id, key_id, issued_at, expires_at, \
     license_type, device_id, revoked, drm_system";

impl Db {
    /// Records a batch of licenses in one transaction (see the module docs for the rules).
    pub async fn record_licenses(
        &self,
        licenses: &[NewLicense],
        now: OffsetDateTime,
    ) -> Result<LicenseBatch, DbError> {
        Ok(with_pool!(self, pool => async {
            let mut tx = pool.begin_write().await?;
            let mut batch = LicenseBatch {
                outcomes: Vec::with_capacity(licenses.len()),
                keys_unmatched: 0,
            };
            let mut videos: HashMap<Uuid, bool> = HashMap::new();
            let mut keys: HashMap<(Uuid, Uuid), bool> = HashMap::new();
            let mut users: HashSet<&str> = HashSet::new();
            for license in licenses {
                let video_known = match videos.get(&license.video_id) {
                    Some(known) => *known,
                    None => {
                        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM files WHERE id = $1")
                            .bind(license.video_id)
                            .fetch_one(&mut *tx)
                            .await?;
                        videos.insert(license.video_id, n > 0);
                        n > 0
                    }
                };
                if !video_known {
                    batch.outcomes.push(LicenseOutcome::UnknownVideo);
                    continue;
                }
                let key_id = match license.key_id {
                    None => None,
                    Some(key_id) => {
                        let pair = (license.video_id, key_id);
                        let matched = match keys.get(&pair) {
                            Some(matched) => *matched,
                            None => {
                                let n: i64 = sqlx::query_scalar(
                                    "SELECT COUNT(*) FROM content_keys
                                     WHERE id = $1 AND content_id = $2",
                                )
                                .bind(key_id)
                                .bind(license.video_id)
                                .fetch_one(&mut *tx)
                                .await?;
                                keys.insert(pair, n > 0);
                                n > 0
                            }
                        };
                        matched.then_some(key_id)
                    }
                };
                if users.insert(license.user_id.as_str()) {
                    sqlx::query(
                        "INSERT INTO users (id, email, created_at) VALUES ($1, NULL, $2)
                         ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(&license.user_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                let inserted = sqlx::query(
                    "INSERT INTO media_licenses (id, content_id, user_id, key_id, issued_at,
                                                 expires_at, license_type, device_id, revoked,
                                                 drm_system)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, FALSE, $9)
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(license.id)
                .bind(license.video_id)
                .bind(&license.user_id)
                .bind(key_id)
                .bind(license.issued_at)
                .bind(license.expires_at)
                .bind(license.license_type.as_str())
                .bind(license.device_id.as_deref())
                .bind(license.drm_system.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted > 0 {
                    if key_id.is_none() && license.key_id.is_some() {
                        batch.keys_unmatched += 1;
                    }
                    batch.outcomes.push(LicenseOutcome::Recorded);
                } else {
                    batch.outcomes.push(LicenseOutcome::Duplicate);
                }
            }
            tx.commit().await?;
            Ok::<LicenseBatch, sqlx::Error>(batch)
        }.await)?)
    }

    /// The license with `id`, if recorded.
    pub async fn license(&self, id: Uuid) -> Result<Option<LicenseRecord>, DbError> {
        let sql = format!("SELECT {LICENSE_COLUMNS} FROM media_licenses WHERE id = $1");
        Ok(with_pool!(self, pool => sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(pool)
            .await)?)
    }

    /// Number of licenses recorded for a title.
    pub async fn count_licenses_for(&self, content_id: Uuid) -> Result<i64, DbError> {
        Ok(with_pool!(self, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM media_licenses WHERE content_id = $1",
        )
        .bind(content_id)
        .fetch_one(pool)
        .await)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drm_system_names_round_trip() {
        for system in DrmSystem::ALL {
            assert_eq!(DrmSystem::parse(system.as_str()), Some(system));
        }
        assert_eq!(DrmSystem::parse("ClearKey"), None);
        assert_eq!(DrmSystem::parse(""), None);
    }
}
