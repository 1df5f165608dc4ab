//! The local custody backend: a 32-byte master key in a file (mode 0600).
//!
//! Content keys are drawn from the OS CSPRNG and sealed with
//! [`playback::keywrap::wrap`] (AES-256-GCM, purpose at-rest, bound to video id and key id).
//! `serve` creates the master key on first start when the file is missing; losing the file
//! makes every stored content key unrecoverable, so production should back it up or use a KMS.

use std::path::Path;

use async_trait::async_trait;
use playback::keywrap::{self, KeyBinding, Purpose, KEK_LEN, NONCE_LEN};
use rand::rngs::OsRng;
use rand::RngCore;

use super::{ContentKey, CustodyError, GeneratedKey, KeyCustody, CONTENT_KEY_LEN};
use crate::secrets::{self, SecretError};

/// Key custody with a master key held in this process.
pub struct LocalKeyCustody {
    master: [u8; KEK_LEN],
}

impl std::fmt::Debug for LocalKeyCustody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalKeyCustody { master: <redacted> }")
    }
}

impl LocalKeyCustody {
    /// Uses an existing master key.
    pub fn new(master: [u8; KEK_LEN]) -> Self {
        LocalKeyCustody { master }
    }

    /// Reads the master key file (`keys.master_key_file`).
    pub fn open(path: &Path) -> Result<Self, SecretError> {
        Ok(Self::new(secrets::read_kek("keys.master_key_file", path)?))
    }

    /// Reads the master key file, creating it (0600, random) first if it does not exist.
    /// Returns whether it was created.
    pub fn open_or_create(path: &Path) -> Result<(Self, bool), SecretError> {
        let mut fresh = [0u8; KEK_LEN];
        OsRng.fill_bytes(&mut fresh);
        let created =
            secrets::create_if_missing(path, &fresh).map_err(|source| SecretError::Io {
                key: "keys.master_key_file",
                path: path.to_path_buf(),
                source,
            })?;
        fresh.fill(0);
        Ok((
            Self::open(path)?,
            matches!(created, secrets::Created::Created(_)),
        ))
    }
}

#[async_trait]
impl KeyCustody for LocalKeyCustody {
    fn backend(&self) -> &'static str {
        "local"
    }

    async fn generate(&self, video_id: &str, key_id: &str) -> Result<GeneratedKey, CustodyError> {
        let mut bytes = [0u8; CONTENT_KEY_LEN];
        OsRng.fill_bytes(&mut bytes);
        let key = ContentKey::new(bytes);
        bytes.fill(0);
        let wrapped = self.seal(video_id, key_id, &key).await?;
        Ok(GeneratedKey { key, wrapped })
    }

    async fn seal(
        &self,
        video_id: &str,
        key_id: &str,
        key: &ContentKey,
    ) -> Result<String, CustodyError> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let binding = KeyBinding {
            purpose: Purpose::AtRest,
            video_id,
            key_id,
        };
        Ok(keywrap::wrap(&self.master, &nonce, key.bytes(), &binding))
    }

    async fn unwrap(
        &self,
        video_id: &str,
        key_id: &str,
        wrapped: &str,
    ) -> Result<ContentKey, CustodyError> {
        let binding = KeyBinding {
            purpose: Purpose::AtRest,
            video_id,
            key_id,
        };
        Ok(ContentKey::new(keywrap::unwrap(
            &self.master,
            wrapped,
            &binding,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip_and_binding() {
        let custody = LocalKeyCustody::new([9; KEK_LEN]);
        let generated = custody.generate("video-a", "key-a").await.unwrap();
        assert!(generated.wrapped.starts_with("v1."));
        assert!(!generated
            .wrapped
            .contains(&hex::encode(generated.key.bytes())));
        let opened = custody
            .unwrap("video-a", "key-a", &generated.wrapped)
            .await
            .unwrap();
        assert_eq!(opened.bytes(), generated.key.bytes());
        assert!(custody
            .unwrap("video-b", "key-a", &generated.wrapped)
            .await
            .is_err());
        let other = LocalKeyCustody::new([8; KEK_LEN]);
        assert!(other
            .unwrap("video-a", "key-a", &generated.wrapped)
            .await
            .is_err());
        assert_eq!(format!("{:?}", generated.key), "ContentKey(<redacted>)");
    }

    #[tokio::test]
    async fn sealed_keys_open_only_with_their_binding() {
        let custody = LocalKeyCustody::new([9; KEK_LEN]);
        let key = ContentKey::new([0x42; CONTENT_KEY_LEN]);
        let sealed = custody.seal("video-a", "key-a", &key).await.unwrap();
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains(&hex::encode([0x42u8; CONTENT_KEY_LEN])));
        let opened = custody.unwrap("video-a", "key-a", &sealed).await.unwrap();
        assert_eq!(opened.bytes(), key.bytes());
        assert!(custody.unwrap("video-a", "key-b", &sealed).await.is_err());
    }

    #[tokio::test]
    async fn keys_are_random() {
        let custody = LocalKeyCustody::new([9; KEK_LEN]);
        let a = custody.generate("v", "k").await.unwrap();
        let b = custody.generate("v", "k").await.unwrap();
        assert_ne!(a.key.bytes(), b.key.bytes());
        assert_ne!(a.wrapped, b.wrapped);
    }

    #[test]
    fn master_key_file_is_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets/master.key");
        let (_, created) = LocalKeyCustody::open_or_create(&path).unwrap();
        assert!(created);
        let first = std::fs::read(&path).unwrap();
        let (_, created) = LocalKeyCustody::open_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(std::fs::read(&path).unwrap(), first);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
