//! Viewer JWTs at the edge: the key ring (configured keys plus an optional JWKS URL), JWKS
//! refetching, and the verified-token cache.
//!
//! - Keys come from `[jwt]`: `hs256_secret_file` (an unnamed HS256 key), `[[jwt.keys]]`
//!   (secret, PEM public key or JWK files, each pinned to one algorithm), and `jwks_url`,
//!   fetched at start-up. A token naming an unknown `kid` triggers a refetch, at most once per
//!   `jwks_min_refetch_secs`; a failed fetch keeps the previous keys and is logged.
//! - Every rule of `playback::jwt` applies (pinned algorithms, `iss`/`aud`/`exp`/`nbf`/`iat`
//!   with leeway, the `sub` rule, size limits, strict JSON and base64url).
//! - Verified tokens are cached in moka keyed by SHA-256 of the token, holding the claims until
//!   the token's `exp` or `verified_cache_ttl_secs`, whichever comes first, so an asymmetric
//!   signature is checked once per token per edge. Lookups are counted as
//!   `edge_cache_total{cache="verified_jwt"}`. Refusals are never cached.
//!
//! Logs name key ids and reasons, never tokens or key material.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use moka::future::Cache;
use moka::Expiry;
use playback::jwt::{Claims, JwtRules, JwtVerifier, KeyRing};
use playback::Reason;
use sha2::{Digest, Sha256};

use crate::config::{ConfigError, JwtConfig};
use crate::core::errors::EdgeError;
use crate::core::metrics::Metrics;

/// A cached verification: the claims and how long they may be reused.
#[derive(Clone)]
struct Cached {
    claims: Arc<Claims>,
    ttl: Duration,
}

struct PerEntryTtl;

impl Expiry<[u8; 32], Cached> for PerEntryTtl {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        value: &Cached,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// The JWKS source and its refetch bookkeeping.
struct Jwks {
    url: String,
    client: reqwest::Client,
    min_refetch: Duration,
    last_attempt: Mutex<Option<Instant>>,
    /// Serialises refetches so a burst of unknown-`kid` tokens makes one request.
    refetching: tokio::sync::Mutex<()>,
}

/// Verifies viewer JWTs for the edge; one per process.
pub struct ViewerAuth {
    verifier: RwLock<Arc<JwtVerifier>>,
    configured: KeyRing,
    rules: JwtRules,
    max_token_bytes: usize,
    jwks: Option<Jwks>,
    cache: Cache<[u8; 32], Cached>,
    cache_ttl: Duration,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for ViewerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewerAuth")
            .field("keys", &self.current().ring().len())
            .field("jwks_url", &self.jwks.as_ref().map(|j| j.url.as_str()))
            .finish_non_exhaustive()
    }
}

/// Fetches and parses a JWKS document; the error is a sentence for the logs.
async fn fetch_jwks(client: &reqwest::Client, url: &str) -> Result<KeyRing, String> {
    let mut response = client
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("answered {}", response.status()));
    }
    let limit = playback::jwt::keys::MAX_JWKS_BYTES;
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(format!("document larger than {limit} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading the body failed: {e}"))?
    {
        if body.len() + chunk.len() > limit {
            return Err(format!("document larger than {limit} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    let (ring, skipped) = KeyRing::from_jwks(&body).map_err(|e| e.to_string())?;
    for skip in skipped {
        tracing::warn!(
            kid = skip.kid.as_deref().unwrap_or(""),
            why = skip.why,
            "jwks key skipped"
        );
    }
    Ok(ring)
}

fn http_client(timeout: Duration) -> Result<reqwest::Client, ConfigError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ConfigError::Invalid {
            key: "jwt.jwks_url",
            problem: format!("cannot build an HTTP client: {e}"),
            fix: "check the TLS setup of this machine".into(),
        })
}

/// The start-up fetch, on a runtime of its own (the server's runtimes do not exist yet).
fn initial_fetch(url: &str, timeout: Duration) -> Result<KeyRing, String> {
    let url = url.to_owned();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start a runtime: {e}"))?;
        runtime.block_on(async {
            let client = http_client(timeout).map_err(|e| e.to_string())?;
            fetch_jwks(&client, &url).await
        })
    })
    .join()
    .unwrap_or_else(|_| Err("the fetch thread panicked".into()))
}

impl ViewerAuth {
    /// Builds the verifier from `[jwt]` and the `configured` keys (read from the files `[jwt]`
    /// names, by the application's builder); fetches the JWKS once when `jwt.jwks_url` is set
    /// (a failure is logged, not fatal: tokens then trigger rate-limited refetches).
    pub fn new(
        config: &JwtConfig,
        configured: KeyRing,
        metrics: Arc<Metrics>,
    ) -> Result<ViewerAuth, ConfigError> {
        let rules = JwtRules {
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            leeway_secs: config.leeway_secs,
        };
        let timeout = Duration::from_millis(config.jwks_timeout_ms);
        let jwks = if config.jwks_url.is_empty() {
            None
        } else {
            Some(Jwks {
                url: config.jwks_url.clone(),
                client: http_client(timeout)?,
                min_refetch: Duration::from_secs(config.jwks_min_refetch_secs),
                last_attempt: Mutex::new(None),
                refetching: tokio::sync::Mutex::new(()),
            })
        };
        let auth = ViewerAuth {
            verifier: RwLock::new(Arc::new(JwtVerifier::new(KeyRing::new(), rules.clone()))),
            configured,
            rules,
            max_token_bytes: config.max_token_bytes,
            jwks,
            cache: Cache::builder()
                .max_capacity(config.verified_cache_max_entries)
                .expire_after(PerEntryTtl)
                .build(),
            cache_ttl: Duration::from_secs(config.verified_cache_ttl_secs),
            metrics,
        };
        let fetched = match &auth.jwks {
            Some(jwks) => {
                *jwks.last_attempt.lock().expect("lock") = Some(Instant::now());
                match initial_fetch(&jwks.url, timeout) {
                    Ok(ring) => {
                        tracing::info!(keys = ring.len(), "jwks loaded");
                        ring
                    }
                    Err(why) => {
                        tracing::warn!(%why, "jwks fetch failed at start-up; will retry on demand");
                        KeyRing::new()
                    }
                }
            }
            None => KeyRing::new(),
        };
        auth.install(&fetched);
        Ok(auth)
    }

    fn current(&self) -> Arc<JwtVerifier> {
        self.verifier.read().expect("verifier lock").clone()
    }

    /// Replaces the ring with the configured keys plus `fetched`.
    fn install(&self, fetched: &KeyRing) {
        let mut ring = self.configured.clone();
        ring.extend(fetched);
        let verifier =
            JwtVerifier::new(ring, self.rules.clone()).with_max_token_bytes(self.max_token_bytes);
        *self.verifier.write().expect("verifier lock") = Arc::new(verifier);
    }

    /// Number of keys in use right now.
    pub fn key_count(&self) -> usize {
        self.current().ring().len()
    }

    /// Refetches the JWKS unless one was attempted within `jwks_min_refetch_secs`.
    async fn refetch(&self) {
        let Some(jwks) = &self.jwks else { return };
        let _one_at_a_time = jwks.refetching.lock().await;
        {
            let mut last = jwks.last_attempt.lock().expect("lock");
            if last.is_some_and(|at| at.elapsed() < jwks.min_refetch) {
                return;
            }
            *last = Some(Instant::now());
        }
        match fetch_jwks(&jwks.client, &jwks.url).await {
            Ok(ring) => {
                tracing::info!(keys = ring.len(), "jwks refetched");
                self.install(&ring);
            }
            Err(why) => tracing::warn!(%why, "jwks refetch failed; keeping the previous keys"),
        }
    }

    /// Verifies `token` at `now_unix`: from the verified-token cache when possible, else in
    /// full (refetching the JWKS once on an unknown `kid`), caching what passes.
    pub async fn verify(&self, token: &str, now_unix: u64) -> Result<Claims, Reason> {
        if token.is_empty() {
            return Err(Reason::MissingToken);
        }
        if token.len() > self.max_token_bytes {
            return Err(Reason::Malformed);
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(hit) = self.cache.get(&digest).await {
            if now_unix < hit.claims.exp.saturating_add(self.rules.leeway_secs) {
                self.metrics.cache_lookup("verified_jwt", true);
                return Ok((*hit.claims).clone());
            }
            self.cache.invalidate(&digest).await;
        }
        self.metrics.cache_lookup("verified_jwt", false);
        let mut result = self.current().verify(token, now_unix);
        if result == Err(Reason::UnknownKey) && self.jwks.is_some() {
            self.refetch().await;
            result = self.current().verify(token, now_unix);
        }
        let claims = result?;
        let remaining = Duration::from_secs(claims.exp.saturating_sub(now_unix));
        let ttl = remaining.min(self.cache_ttl);
        if !ttl.is_zero() {
            let cached = Cached {
                claims: Arc::new(claims.clone()),
                ttl,
            };
            self.cache.insert(digest, cached).await;
        }
        Ok(claims)
    }
}

impl ViewerAuth {
    /// The viewer of a request that `presented` a JWT (`playback::jwt::presented_jwt`),
    /// verified at `now_unix`; a missing or refused token is a 401.
    pub async fn viewer(
        &self,
        presented: Option<&str>,
        now_unix: u64,
    ) -> Result<Claims, EdgeError> {
        let token = presented.ok_or(EdgeError::Jwt(Reason::MissingToken))?;
        self.verify(token, now_unix).await.map_err(EdgeError::Jwt)
    }
}
