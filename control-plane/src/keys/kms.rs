//! The AWS KMS custody backend: content keys are KMS data keys.
//!
//! - [`KeyCustody::generate`] calls `GenerateDataKey` (`AES_128`) under the configured KMS key;
//! - [`KeyCustody::seal`] calls `Encrypt` with the imported key's 16 bytes;
//! - [`KeyCustody::unwrap`] calls `Decrypt`.
//!
//! Every call carries the encryption context `{"videoId": <video id>, "keyId": <key id>}`. KMS
//! binds it to the ciphertext as authenticated data, so an envelope opened for another title or
//! key id fails (`InvalidCiphertextException`, mapped to [`CustodyError::Unwrap`]), and the
//! context shows up in CloudTrail for every use of a content key.
//!
//! Envelope: `kms:v1:` + base64url(CiphertextBlob), no padding. The blob names the KMS key that
//! sealed it, and `Decrypt` is sent without a `KeyId`: envelopes stay openable after KMS rotates
//! the key material (same key id) and after the configured key is switched to a new key, as long
//! as the credentials may still `kms:Decrypt` under the old one. With
//! [`KmsConfig::decrypt_key_arns`] set, only blobs sealed under those keys open.
//!
//! Opened keys are kept in a bounded in-memory cache (moka: time-to-live plus a maximum number of
//! entries) so a key re-wrapped for edges again and again costs one `Decrypt`. The cache is
//! keyed by a SHA-256 over the binding *and* the envelope, so a cached key is only returned for
//! the binding KMS accepted. Values are `Arc<ContentKey>`, zeroed when the last reference goes
//! (eviction, expiry, [`KmsCustody::clear_cache`] or drop). Copies the SDK makes while
//! (de)serializing requests and responses are outside our control and are not zeroed.
//!
//! Failures to reach or use KMS are [`CustodyError::Backend`] with a message starting `kms:`;
//! no message ever holds key material (the SDK redacts `Plaintext` in its own `Debug` output).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_kms::config::Credentials;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use playback::keywrap::KeyWrapError;
use sha2::{Digest, Sha256};

use super::{ContentKey, CustodyError, GeneratedKey, KeyCustody, CONTENT_KEY_LEN};

/// Prefix of a KMS envelope.
pub const ENVELOPE_PREFIX: &str = "kms:v1:";
/// KMS ciphertext blobs are at most 6144 bytes.
const MAX_CIPHERTEXT_LEN: usize = 6144;
const MAX_ENVELOPE_LEN: usize = ENVELOPE_PREFIX.len() + (MAX_CIPHERTEXT_LEN * 4).div_ceil(3);

/// Encryption context key naming the title.
pub const CONTEXT_VIDEO_ID: &str = "videoId";
/// Encryption context key naming the content key id.
pub const CONTEXT_KEY_ID: &str = "keyId";

/// Static credentials (tests, or deployments that cannot use the default chain).
#[derive(Clone)]
pub struct KmsCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for KmsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// How to reach KMS and which key to use.
#[derive(Debug, Clone)]
pub struct KmsConfig {
    /// The KMS key for new envelopes: key id, key ARN, alias name (`alias/...`) or alias ARN.
    pub key_id: String,
    /// AWS region; `None` takes it from the default chain (`AWS_REGION`, profile, IMDS).
    pub region: Option<String>,
    /// Endpoint override (moto, LocalStack, a VPC endpoint); `None` uses the regional endpoint.
    pub endpoint_url: Option<String>,
    /// Static credentials; `None` uses the default chain (environment, profile, web identity,
    /// ECS, IMDS).
    pub credentials: Option<KmsCredentials>,
    /// How long an opened key stays in the cache.
    pub cache_ttl: Duration,
    /// How many opened keys the cache holds at most (0 disables the cache).
    pub cache_max_entries: u64,
    /// Connect timeout of one attempt.
    pub connect_timeout: Duration,
    /// Bound on one whole operation, retries included.
    pub operation_timeout: Duration,
    /// Attempts per operation (1 = no retry).
    pub max_attempts: u32,
    /// Key ARNs an envelope may have been sealed under. Empty: any key the credentials may
    /// use. Otherwise `Decrypt`'s answer must name one of them (the current key's ARN and the
    /// ARNs of keys it replaced), so a blob sealed under some other key is refused.
    pub decrypt_key_arns: Vec<String>,
}

impl KmsConfig {
    /// Defaults for everything but the key: 5 min / 10,000 keys cache, 2 s connect, 10 s per
    /// operation, 3 attempts.
    pub fn new(key_id: impl Into<String>) -> Self {
        KmsConfig {
            key_id: key_id.into(),
            region: None,
            endpoint_url: None,
            credentials: None,
            cache_ttl: Duration::from_secs(300),
            cache_max_entries: 10_000,
            connect_timeout: Duration::from_secs(2),
            operation_timeout: Duration::from_secs(10),
            max_attempts: 3,
            decrypt_key_arns: Vec::new(),
        }
    }
}

/// Counters of KMS calls made by this backend (for metrics and tests).
#[derive(Debug, Default)]
pub struct KmsCallCounts {
    pub generate_data_key: AtomicU64,
    pub encrypt: AtomicU64,
    pub decrypt: AtomicU64,
    pub cache_hits: AtomicU64,
}

/// Key custody in AWS KMS.
pub struct KmsCustody {
    client: aws_sdk_kms::Client,
    key_id: String,
    decrypt_key_arns: Vec<String>,
    cache: Option<moka::sync::Cache<[u8; 32], Arc<ContentKey>>>,
    calls: KmsCallCounts,
}

impl std::fmt::Debug for KmsCustody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsCustody")
            .field("key_id", &self.key_id)
            .field("cached_keys", &self.cache.as_ref().map(|c| c.entry_count()))
            .finish_non_exhaustive()
    }
}

impl KmsCustody {
    /// Builds the SDK client. Resolves region and credentials from `config` or the default
    /// chain; makes no KMS call (a missing key shows at the first operation).
    pub async fn new(config: KmsConfig) -> Result<Self, CustodyError> {
        // rustls on ring, as everything else in the tree; HTTP works too (moto).
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::v2025_08_07())
            .http_client(http)
            .retry_config(RetryConfig::standard().with_max_attempts(config.max_attempts.max(1)))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(config.connect_timeout)
                    .operation_timeout(config.operation_timeout)
                    .build(),
            );
        if let Some(region) = &config.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint) = &config.endpoint_url {
            loader = loader.endpoint_url(endpoint.clone());
        }
        if let Some(creds) = &config.credentials {
            loader = loader.credentials_provider(Credentials::new(
                creds.access_key_id.clone(),
                creds.secret_access_key.clone(),
                creds.session_token.clone(),
                None,
                "custody.kms",
            ));
        }
        let sdk = loader.load().await;
        if sdk.region().is_none() {
            return Err(CustodyError::Backend(
                "kms: no AWS region (set custody.kms.region or AWS_REGION)".into(),
            ));
        }
        let cache = (config.cache_max_entries > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(config.cache_max_entries)
                .time_to_live(config.cache_ttl)
                .build()
        });
        Ok(KmsCustody {
            client: aws_sdk_kms::Client::new(&sdk),
            key_id: config.key_id,
            decrypt_key_arns: config.decrypt_key_arns,
            cache,
            calls: KmsCallCounts::default(),
        })
    }

    /// The SDK client (administration: `CreateKey`, `DescribeKey`, tests).
    pub fn client(&self) -> &aws_sdk_kms::Client {
        &self.client
    }

    /// The KMS key new envelopes are made under.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// How many calls of each kind this backend made, and cache hits.
    pub fn calls(&self) -> &KmsCallCounts {
        &self.calls
    }

    /// Drops every cached key (zeroed as the last reference goes).
    pub fn clear_cache(&self) {
        if let Some(cache) = &self.cache {
            cache.invalidate_all();
            cache.run_pending_tasks();
        }
    }

    fn cache_key(video_id: &str, key_id: &str, envelope: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"streaming-edge/kms-cache/v1");
        for part in [video_id, key_id, envelope] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        h.finalize().into()
    }
}

fn envelope(ciphertext: &[u8]) -> String {
    format!("{ENVELOPE_PREFIX}{}", URL_SAFE_NO_PAD.encode(ciphertext))
}

fn parse_envelope(wrapped: &str) -> Result<Vec<u8>, CustodyError> {
    if wrapped.len() > MAX_ENVELOPE_LEN {
        return Err(CustodyError::Unwrap(KeyWrapError::Malformed));
    }
    let body = wrapped
        .strip_prefix(ENVELOPE_PREFIX)
        .ok_or(CustodyError::Unwrap(KeyWrapError::Malformed))?;
    let blob = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| CustodyError::Unwrap(KeyWrapError::Malformed))?;
    if blob.is_empty() || blob.len() > MAX_CIPHERTEXT_LEN {
        return Err(CustodyError::Unwrap(KeyWrapError::Malformed));
    }
    Ok(blob)
}

/// The 16 plaintext bytes of a KMS answer, or a backend error (never showing them).
fn content_key(op: &str, plaintext: Option<&Blob>) -> Result<ContentKey, CustodyError> {
    let bytes = plaintext
        .ok_or_else(|| CustodyError::Backend(format!("kms: {op} returned no plaintext")))?
        .as_ref();
    let mut key = [0u8; CONTENT_KEY_LEN];
    if bytes.len() != CONTENT_KEY_LEN {
        return Err(CustodyError::Backend(format!(
            "kms: {op} returned a {}-byte key, expected {CONTENT_KEY_LEN}",
            bytes.len()
        )));
    }
    key.copy_from_slice(bytes);
    let out = ContentKey::new(key);
    key.fill(0);
    std::hint::black_box(&mut key);
    Ok(out)
}

/// Maps an SDK failure. A ciphertext KMS refuses for this context is an unwrap failure (the
/// envelope or its binding is wrong: not retryable, not an outage); everything else names KMS.
fn sdk_error<E, R>(op: &str, err: SdkError<E, R>) -> CustodyError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    if let SdkError::ServiceError(service) = &err {
        match service.err().code() {
            Some("InvalidCiphertextException") | Some("IncorrectKeyException") => {
                return CustodyError::Unwrap(KeyWrapError::Unauthentic);
            }
            Some(code) => {
                let message = service.err().message().unwrap_or("");
                return CustodyError::Backend(format!("kms: {op} failed: {code}: {message}"));
            }
            None => {}
        }
    }
    let kind = match &err {
        SdkError::ConstructionFailure(_) => "request construction failed",
        SdkError::TimeoutError(_) => "timed out",
        SdkError::DispatchFailure(_) => "unreachable",
        SdkError::ResponseError(_) => "unreadable response",
        SdkError::ServiceError(_) => "service error",
        _ => "failed",
    };
    CustodyError::Backend(format!("kms: {op} {kind}: {}", error_chain(&err)))
}

/// `err` and its sources joined by `: `, without the SDK's Debug dump of the whole error.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

#[async_trait]
impl KeyCustody for KmsCustody {
    fn backend(&self) -> &'static str {
        "kms"
    }

    fn forget(&self, _video_id: &str, _key_id: &str) {
        // Entries are keyed by a digest that includes the envelope, which the caller may not
        // have; revocations are rare, so the whole cache goes.
        self.clear_cache();
    }

    async fn check(&self) -> Result<(), CustodyError> {
        let out = self
            .client
            .describe_key()
            .key_id(&self.key_id)
            .send()
            .await
            .map_err(|e| sdk_error("DescribeKey", e))?;
        match out.key_metadata() {
            Some(meta) if meta.enabled() => Ok(()),
            Some(meta) => Err(CustodyError::Backend(format!(
                "kms: key {} is not enabled (state {:?})",
                self.key_id,
                meta.key_state().map(|s| s.as_str()).unwrap_or("unknown")
            ))),
            None => Err(CustodyError::Backend(format!(
                "kms: DescribeKey returned no metadata for {}",
                self.key_id
            ))),
        }
    }

    async fn generate(&self, video_id: &str, key_id: &str) -> Result<GeneratedKey, CustodyError> {
        self.calls.generate_data_key.fetch_add(1, Ordering::Relaxed);
        let out = self
            .client
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes128)
            .encryption_context(CONTEXT_VIDEO_ID, video_id)
            .encryption_context(CONTEXT_KEY_ID, key_id)
            .send()
            .await
            .map_err(|e| sdk_error("GenerateDataKey", e))?;
        let key = content_key("GenerateDataKey", out.plaintext())?;
        let blob = out.ciphertext_blob().ok_or_else(|| {
            CustodyError::Backend("kms: GenerateDataKey returned no ciphertext".into())
        })?;
        Ok(GeneratedKey {
            key,
            wrapped: envelope(blob.as_ref()),
        })
    }

    async fn seal(
        &self,
        video_id: &str,
        key_id: &str,
        key: &ContentKey,
    ) -> Result<String, CustodyError> {
        self.calls.encrypt.fetch_add(1, Ordering::Relaxed);
        let out = self
            .client
            .encrypt()
            .key_id(&self.key_id)
            .plaintext(Blob::new(key.bytes().to_vec()))
            .encryption_context(CONTEXT_VIDEO_ID, video_id)
            .encryption_context(CONTEXT_KEY_ID, key_id)
            .send()
            .await
            .map_err(|e| sdk_error("Encrypt", e))?;
        let blob = out
            .ciphertext_blob()
            .ok_or_else(|| CustodyError::Backend("kms: Encrypt returned no ciphertext".into()))?;
        Ok(envelope(blob.as_ref()))
    }

    async fn unwrap(
        &self,
        video_id: &str,
        key_id: &str,
        wrapped: &str,
    ) -> Result<ContentKey, CustodyError> {
        let blob = parse_envelope(wrapped)?;
        let cache_key = Self::cache_key(video_id, key_id, wrapped);
        if let Some(cached) = self.cache.as_ref().and_then(|c| c.get(&cache_key)) {
            self.calls.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(ContentKey::new(*cached.bytes()));
        }
        self.calls.decrypt.fetch_add(1, Ordering::Relaxed);
        // No KeyId: the blob names its key, so rotated or replaced keys still open.
        let out = self
            .client
            .decrypt()
            .ciphertext_blob(Blob::new(blob))
            .encryption_context(CONTEXT_VIDEO_ID, video_id)
            .encryption_context(CONTEXT_KEY_ID, key_id)
            .send()
            .await
            .map_err(|e| sdk_error("Decrypt", e))?;
        if !self.decrypt_key_arns.is_empty() {
            let sealed_under = out.key_id().unwrap_or_default();
            if !self.decrypt_key_arns.iter().any(|arn| arn == sealed_under) {
                // The plaintext in `out` is dropped unread.
                return Err(CustodyError::Unwrap(KeyWrapError::Unauthentic));
            }
        }
        let key = content_key("Decrypt", out.plaintext())?;
        if let Some(cache) = &self.cache {
            cache.insert(cache_key, Arc::new(ContentKey::new(*key.bytes())));
        }
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_parse_and_refuse_garbage() {
        let env = envelope(&[1, 2, 3]);
        assert!(env.starts_with(ENVELOPE_PREFIX));
        assert_eq!(parse_envelope(&env).unwrap(), vec![1, 2, 3]);
        for bad in [
            "v1.AAAA",
            "kms:v1:",
            "kms:v1:!!!",
            "kms:v2:AQID",
            &format!("{ENVELOPE_PREFIX}{}", "A".repeat(MAX_ENVELOPE_LEN)),
        ] {
            assert!(
                matches!(
                    parse_envelope(bad),
                    Err(CustodyError::Unwrap(KeyWrapError::Malformed))
                ),
                "{bad:.20}"
            );
        }
    }

    #[test]
    fn cache_keys_depend_on_the_binding() {
        let a = KmsCustody::cache_key("v", "k", "kms:v1:AQID");
        assert_ne!(a, KmsCustody::cache_key("v2", "k", "kms:v1:AQID"));
        assert_ne!(a, KmsCustody::cache_key("v", "k2", "kms:v1:AQID"));
        assert_ne!(a, KmsCustody::cache_key("v", "k", "kms:v1:AQIE"));
        // Length prefixes: moving a character between fields changes the key.
        assert_ne!(
            KmsCustody::cache_key("ab", "c", "e"),
            KmsCustody::cache_key("a", "bc", "e")
        );
    }

    #[test]
    fn credentials_debug_is_redacted() {
        let creds = KmsCredentials {
            access_key_id: "AKIAEXAMPLE".into(),
            secret_access_key: "very-secret".into(),
            session_token: Some("token-secret".into()),
        };
        let shown = format!("{creds:?}");
        assert!(shown.contains("AKIAEXAMPLE"));
        assert!(!shown.contains("very-secret"));
        assert!(!shown.contains("token-secret"));
    }
}
