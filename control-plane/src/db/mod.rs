//! The control plane's database: SQLite for one machine, Postgres for production.
//!
//! [`Db`] holds one pool of either kind, chosen by the URL scheme. Each repository method is
//! written once, with the [`with_pool!`] macro expanding the same SQL over both pools: queries
//! use `$1`-style placeholders (sqlx-sqlite binds `$N` by number), times are passed from Rust
//! (never `NOW()`), and only `RETURNING` / `ON CONFLICT` constructs both databases share.
//! Migrations are embedded from `migrations/sqlite` and `migrations/postgres`.
//!
//! Repositories, one file per aggregate: [`users`] (users, memberships, subscriptions),
//! [`files`], [`jobs`], [`content_keys`], [`licenses`].
//!
//! Concurrency: every multi-statement write runs in a transaction opened by
//! [`BeginWrite::begin_write`]. On SQLite that is `BEGIN IMMEDIATE`, which takes the write lock
//! up front and so waits (up to the busy timeout) behind another writer; a plain `BEGIN` would
//! read first and then fail to upgrade with `database is locked` (SQLITE_BUSY_SNAPSHOT in WAL
//! mode, which no busy timeout retries) as soon as another writer committed in between.
//! Contention that outlasts the wait is [`DbError::is_busy`], answered 503 `database_busy`.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{Postgres, Sqlite, Transaction};
use time::OffsetDateTime;

pub mod content_keys;
pub mod files;
pub mod jobs;
pub mod key_audit;
pub mod licenses;
pub mod orgs;
pub mod users;

/// Expands `$body` once per pool kind, with `$pool` bound to `&SqlitePool` or `&PgPool`.
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($pool) => $body,
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// Where a transcode is in its life, for `transcoding_jobs.status` and
/// `files.transcoding_status` alike: `pending`, `processing`, `completed`, `failed`.
pub mod status {
    pub const PENDING: &str = "pending";
    pub const PROCESSING: &str = "processing";
    pub const COMPLETED: &str = "completed";
    pub const FAILED: &str = "failed";
}

/// A connection pool to the control plane's database.
#[derive(Debug, Clone)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Errors from the database layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database.url: {0}")]
    Url(String),
    #[error("{0}")]
    Conflict(&'static str),
    #[error("unknown subscription tier {0:?}; use free, pro or enterprise")]
    UnknownTier(String),
}

impl DbError {
    /// True when the statement broke a unique constraint.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, DbError::Sqlx(sqlx::Error::Database(d)) if d.is_unique_violation())
    }

    /// True when the database refused for contention, not for the request: SQLite still locked
    /// after the busy timeout (`SQLITE_BUSY`, `SQLITE_LOCKED` and their extended codes), or a
    /// Postgres serialization failure, deadlock or lock timeout. Retrying may succeed.
    pub fn is_busy(&self) -> bool {
        let DbError::Sqlx(sqlx::Error::Database(d)) = self else {
            return false;
        };
        let Some(code) = d.code() else {
            return false;
        };
        if d.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
            // The primary result code is the low byte of an extended one (517 = BUSY_SNAPSHOT).
            return code
                .parse::<i32>()
                .is_ok_and(|c| matches!(c & 0xff, SQLITE_BUSY | SQLITE_LOCKED));
        }
        matches!(&*code, "40001" | "40P01" | "55P03")
    }
}

const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;

/// Opens a transaction that will write (see the module docs for why SQLite needs
/// `BEGIN IMMEDIATE`). Implemented for both pool kinds so [`with_pool!`] bodies can call it.
pub(crate) trait BeginWrite {
    type Database: sqlx::Database;
    async fn begin_write(&self) -> Result<Transaction<'static, Self::Database>, sqlx::Error>;
}

impl BeginWrite for SqlitePool {
    type Database = Sqlite;
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl BeginWrite for PgPool {
    type Database = Postgres;
    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        self.begin().await
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

impl Db {
    /// Connects to `url` (`sqlite:` or `postgres://`). SQLite runs in WAL mode with foreign keys
    /// enforced; the database file's directory is created if missing.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Db, DbError> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|e| DbError::Url(e.to_string()))?
                .foreign_keys(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(10))
                .create_if_missing(true);
            let file = options.get_filename();
            if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| {
                    DbError::Url(format!("cannot create {}: {e}", parent.display()))
                })?;
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections)
                .connect_with(options)
                .await?;
            Ok(Db::Sqlite(pool))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options =
                PgConnectOptions::from_str(url).map_err(|e| DbError::Url(e.to_string()))?;
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await?;
            Ok(Db::Postgres(pool))
        } else {
            Err(DbError::Url(
                "must start with sqlite: or postgres://".into(),
            ))
        }
    }

    /// Applies the embedded migrations for this database kind.
    pub async fn migrate(&self) -> Result<(), DbError> {
        match self {
            Db::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
            Db::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    /// Readiness probe: one round trip.
    pub async fn ping(&self) -> Result<(), DbError> {
        with_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// `"sqlite"` or `"postgres"`, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Closes every connection.
    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await)
    }
}

/// The current time in UTC, truncated to microseconds so it round-trips through both databases.
pub fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .unwrap_or(t)
}
