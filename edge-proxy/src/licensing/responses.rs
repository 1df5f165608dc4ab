//! Built ClearKey answers, reused for the same (user, video, requested kids) for
//! `drm.response_ttl_secs`.
//!
//! An answer holds plaintext keys, so it lives in process memory only (never in Redis, whose L2
//! holds wrapped keys the edge unwraps in about a microsecond). Revoking a key drops every
//! answer of its title; an entitlement change drops the user's answers.

use std::time::Duration;

use bytes::Bytes;
use moka::future::Cache;

/// (user, video, kids as requested) -> the JSON answer.
type AnswerKey = (String, String, String);

pub struct ResponseCache {
    answers: Cache<AnswerKey, Bytes>,
}

impl ResponseCache {
    pub fn new(ttl_secs: u64, max_entries: u64) -> ResponseCache {
        ResponseCache {
            answers: Cache::builder()
                .max_capacity(max_entries)
                .time_to_live(Duration::from_secs(ttl_secs))
                .support_invalidation_closures()
                .build(),
        }
    }

    pub async fn get(&self, user_id: &str, video_id: &str, kids: &str) -> Option<Bytes> {
        self.answers
            .get(&(user_id.to_string(), video_id.to_string(), kids.to_string()))
            .await
    }

    pub async fn insert(&self, user_id: &str, video_id: &str, kids: &str, answer: Bytes) {
        self.answers
            .insert(
                (user_id.to_string(), video_id.to_string(), kids.to_string()),
                answer,
            )
            .await;
    }

    /// Drops every answer for `video_id` (a key of it was revoked).
    pub fn forget_video(&self, video_id: &str) {
        let video = video_id.to_string();
        self.forget_if(move |k| k.1 == video);
    }

    /// Drops `user_id`'s answers, for one title or all.
    pub fn forget_user(&self, user_id: &str, video_id: Option<&str>) {
        let user = user_id.to_string();
        match video_id.map(str::to_string) {
            Some(video) => self.forget_if(move |k| k.0 == user && k.1 == video),
            None => self.forget_if(move |k| k.0 == user),
        }
    }

    /// Drops everything (invalidations may have been missed).
    pub fn forget_all(&self) {
        self.answers.invalidate_all();
    }

    fn forget_if(&self, predicate: impl Fn(&AnswerKey) -> bool + Send + Sync + 'static) {
        if let Err(e) = self.answers.invalidate_entries_if(move |k, _| predicate(k)) {
            tracing::error!(error = %e, "could not drop cached license answers");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_are_dropped_by_video_and_by_user() {
        let cache = ResponseCache::new(60, 100);
        cache
            .insert("u1", "v1", "k", Bytes::from_static(b"a"))
            .await;
        cache
            .insert("u2", "v1", "k", Bytes::from_static(b"b"))
            .await;
        cache
            .insert("u1", "v2", "k", Bytes::from_static(b"c"))
            .await;
        assert_eq!(cache.get("u1", "v1", "k").await.as_deref(), Some(&b"a"[..]));
        assert_eq!(cache.get("u1", "v1", "other").await, None);
        cache.forget_video("v1");
        assert_eq!(cache.get("u1", "v1", "k").await, None);
        assert_eq!(cache.get("u2", "v1", "k").await, None);
        assert!(cache.get("u1", "v2", "k").await.is_some());
        cache.forget_user("u1", None);
        assert_eq!(cache.get("u1", "v2", "k").await, None);
    }
}
