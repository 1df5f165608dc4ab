//! The CloudFront signatures this edge has already verified.
//!
//! A custom-policy signed URL is re-stamped on every child URI, so the same policy and signature
//! arrive with every segment request. Verifying an RSA-2048 or P-256 signature costs hundreds of
//! microseconds with the pure-Rust crates (see `bench/README.md`); this memo makes it once per
//! signature per edge. Entries are bounded in number and age, and forgetting one only costs a
//! re-verification; the policy's conditions are checked on every request regardless.

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use playback::token::cloudfront::SignatureMemo;

use crate::core::metrics::Metrics;

/// How long a verified signature is remembered.
const TTL: Duration = Duration::from_secs(600);
/// How many verified signatures are remembered.
const MAX_ENTRIES: u64 = 100_000;

/// A bounded memo of verified CloudFront signatures, with hit/miss metrics.
pub struct VerifiedSignatures {
    cache: Cache<[u8; 32], ()>,
    metrics: Arc<Metrics>,
}

impl VerifiedSignatures {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        VerifiedSignatures {
            cache: Cache::builder()
                .max_capacity(MAX_ENTRIES)
                .time_to_live(TTL)
                .build(),
            metrics,
        }
    }
}

impl SignatureMemo for VerifiedSignatures {
    fn contains(&self, digest: &[u8; 32]) -> bool {
        let hit = self.cache.contains_key(digest);
        self.metrics.cache_lookup("cloudfront_signature", hit);
        hit
    }

    fn insert(&self, digest: [u8; 32]) {
        self.cache.insert(digest, ());
    }
}
