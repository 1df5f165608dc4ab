//! The custody seam: [`KeyCustody`], what every backend implements, and the key types that
//! cross it ([`ContentKey`], plaintext in memory only; [`GeneratedKey`], a fresh key with its
//! at-rest envelope) and its error ([`CustodyError`], never carrying key material).

use async_trait::async_trait;

pub use playback::keywrap::CONTENT_KEY_LEN;

/// A plaintext AES-128 content key. Lives only in memory; zeroed on drop; never printed.
pub struct ContentKey([u8; CONTENT_KEY_LEN]);

impl ContentKey {
    /// Wraps raw key bytes.
    pub fn new(bytes: [u8; CONTENT_KEY_LEN]) -> Self {
        ContentKey(bytes)
    }

    /// The key bytes, for the encryptor or the transport wrap.
    pub fn bytes(&self) -> &[u8; CONTENT_KEY_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContentKey(<redacted>)")
    }
}

impl Drop for ContentKey {
    fn drop(&mut self) {
        self.0.fill(0);
        std::hint::black_box(&mut self.0);
    }
}

/// A fresh content key and its at-rest envelope.
#[derive(Debug)]
pub struct GeneratedKey {
    pub key: ContentKey,
    /// The at-rest form to store (`content_keys.content_key`).
    pub wrapped: String,
}

/// Why a custody operation failed. Never carries key material.
#[derive(Debug, thiserror::Error)]
pub enum CustodyError {
    #[error("the stored content key does not open under this master key and binding")]
    Unwrap(#[from] playback::keywrap::KeyWrapError),
    #[error("key custody backend unavailable: {0}")]
    Backend(String),
}

/// Guards the master key and produces / opens content-key envelopes.
#[async_trait]
pub trait KeyCustody: Send + Sync {
    /// The backend's name, for logs (`"local"`).
    fn backend(&self) -> &'static str;

    /// A fresh random content key for title `video_id`, key id `key_id`, with its at-rest
    /// envelope bound to both.
    async fn generate(&self, video_id: &str, key_id: &str) -> Result<GeneratedKey, CustodyError>;

    /// Seals a content key made elsewhere (a title packaged by another tool) for `video_id`,
    /// `key_id`: the same at-rest envelope [`KeyCustody::generate`] returns.
    async fn seal(
        &self,
        video_id: &str,
        key_id: &str,
        key: &ContentKey,
    ) -> Result<String, CustodyError>;

    /// Opens an at-rest envelope made by [`KeyCustody::generate`] or [`KeyCustody::seal`] for
    /// the same ids.
    async fn unwrap(
        &self,
        video_id: &str,
        key_id: &str,
        wrapped: &str,
    ) -> Result<ContentKey, CustodyError>;

    /// Drops any cached plaintext of `key_id` (called when a key is revoked or retired).
    /// Backends without a cache have nothing to do.
    fn forget(&self, _video_id: &str, _key_id: &str) {}

    /// Checks that the backend answers, for `/ready`. The error names what failed.
    async fn check(&self) -> Result<(), CustodyError> {
        Ok(())
    }
}
