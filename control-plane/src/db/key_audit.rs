//! The key audit trail: one row per key operation (who, what, when, which title and key,
//! which custody backend, whether it worked), never key material.
//!
//! Written by every path that touches a content key: admin lifecycle (generate, rotate, retire,
//! revoke), import and the CLI (seal), edges fetching a key (unwrap) and the SPEKE key provider
//! (speke_issue). Failed custody operations are recorded too (`ok = false`). Read back newest
//! first, optionally per title, with the row id as the page cursor.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;
use uuid::Uuid;

use super::{now, with_pool, Db, DbError};

/// Longest `actor` stored; longer values (a SPEKE client's user agent, say) are cut.
pub const MAX_ACTOR_CHARS: usize = 200;
/// Longest `detail` stored; longer values are cut.
pub const MAX_DETAIL_CHARS: usize = 500;
/// Most rows [`Db::list_key_events`] returns, whatever the caller asks for (the API asks for
/// one more than its page size, to learn whether another page exists).
pub const MAX_PAGE: u32 = 1000;

/// What was done to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAction {
    /// A new key made by the custody backend (first key of a title, or for SPEKE).
    Generate,
    /// A key from outside (import, CLI) wrapped for storage.
    Seal,
    /// A stored key opened, e.g. for an edge.
    Unwrap,
    /// A new key made current for new packaging; the old one keeps serving.
    Rotate,
    /// A key taken out of service after a rotation.
    Retire,
    /// A key cut off at once (compromise, takedown).
    Revoke,
    /// A key handed to an encryptor through SPEKE.
    SpekeIssue,
}

impl KeyAction {
    /// Every action, in declaration order.
    pub const ALL: [KeyAction; 7] = [
        KeyAction::Generate,
        KeyAction::Seal,
        KeyAction::Unwrap,
        KeyAction::Rotate,
        KeyAction::Retire,
        KeyAction::Revoke,
        KeyAction::SpekeIssue,
    ];

    /// The stored (and API) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAction::Generate => "generate",
            KeyAction::Seal => "seal",
            KeyAction::Unwrap => "unwrap",
            KeyAction::Rotate => "rotate",
            KeyAction::Retire => "retire",
            KeyAction::Revoke => "revoke",
            KeyAction::SpekeIssue => "speke_issue",
        }
    }
}

impl fmt::Display for KeyAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyAction {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyAction::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| format!("unknown key action {s:?}"))
    }
}

/// One key operation to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEvent<'a> {
    /// Who: `"admin:<sub>"`, `"speke:<user-agent>"`, `"transcode"`, `"cli"`, `"edge"`, ...
    pub actor: &'a str,
    pub action: KeyAction,
    pub content_id: Option<Uuid>,
    pub key_id: Option<Uuid>,
    /// The custody backend's name (`KeyCustody::backend()`).
    pub backend: &'a str,
    pub ok: bool,
    /// A short note or error message; never key material.
    pub detail: Option<&'a str>,
}

/// One stored row of `key_audit`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct KeyEventRecord {
    /// Monotonic: orders the trail and is the page cursor.
    pub id: i64,
    pub occurred_at: OffsetDateTime,
    pub actor: String,
    /// A [`KeyAction`] spelling (`KeyAction::from_str` reads it back).
    pub action: String,
    pub content_id: Option<Uuid>,
    pub key_id: Option<Uuid>,
    pub backend: String,
    pub ok: bool,
    pub detail: Option<String>,
}

/// `s` cut to at most `max` characters (on a char boundary).
fn bounded(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

const EVENT_COLUMNS: &str =
    "id, occurred_at, actor, action, content_id, key_id, backend, ok, detail";

/// Appends a key audit record. A failed audit write is logged loudly but does not undo or fail
/// the operation it describes (that already happened).
pub async fn audit(db: &Db, event: &KeyEvent<'_>) {
    if let Err(e) = db.record_key_event(event).await {
        tracing::error!(action = event.action.as_str(), actor = event.actor, error = %e, "could not write a key audit record");
    }
}

impl Db {
    /// Appends one event to the key audit trail, stamped with the current time.
    pub async fn record_key_event(&self, e: &KeyEvent<'_>) -> Result<(), DbError> {
        self.record_key_event_at(e, now()).await
    }

    /// [`Db::record_key_event`] with an explicit time (tests, backfills).
    pub async fn record_key_event_at(
        &self,
        e: &KeyEvent<'_>,
        at: OffsetDateTime,
    ) -> Result<(), DbError> {
        let actor = bounded(e.actor, MAX_ACTOR_CHARS);
        let backend = bounded(e.backend, MAX_ACTOR_CHARS);
        let detail = e.detail.map(|d| bounded(d, MAX_DETAIL_CHARS));
        with_pool!(self, pool => sqlx::query(
            "INSERT INTO key_audit (occurred_at, actor, action, content_id, key_id, backend, ok, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(at)
        .bind(actor)
        .bind(e.action.as_str())
        .bind(e.content_id)
        .bind(e.key_id)
        .bind(backend)
        .bind(e.ok)
        .bind(detail)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// A page of the audit trail, newest first: at most `limit` (capped at [`MAX_PAGE`]) events
    /// older than `before_id` (the previous page's last id), only title `content_id`'s when given.
    pub async fn list_key_events(
        &self,
        content_id: Option<Uuid>,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<KeyEventRecord>, DbError> {
        let limit = i64::from(limit.clamp(1, MAX_PAGE));
        let before = before_id.unwrap_or(i64::MAX);
        let rows = match content_id {
            Some(content_id) => {
                let sql = format!(
                    "SELECT {EVENT_COLUMNS} FROM key_audit
                     WHERE content_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
                );
                with_pool!(self, pool => sqlx::query_as(&sql)
                    .bind(content_id)
                    .bind(before)
                    .bind(limit)
                    .fetch_all(pool)
                    .await)?
            }
            None => {
                let sql = format!(
                    "SELECT {EVENT_COLUMNS} FROM key_audit
                     WHERE id < $1 ORDER BY id DESC LIMIT $2"
                );
                with_pool!(self, pool => sqlx::query_as(&sql)
                    .bind(before)
                    .bind(limit)
                    .fetch_all(pool)
                    .await)?
            }
        };
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip() {
        for a in KeyAction::ALL {
            assert_eq!(a.as_str().parse::<KeyAction>().unwrap(), a);
        }
        assert!("delete".parse::<KeyAction>().is_err());
    }

    #[test]
    fn bounded_cuts_on_char_boundaries() {
        assert_eq!(bounded("abc", 5), "abc");
        assert_eq!(bounded("abcdef", 3), "abc");
        assert_eq!(bounded("ééé", 2), "éé");
    }
}
