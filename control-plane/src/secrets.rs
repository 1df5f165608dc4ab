//! Secret files: creating them (`control-plane init-secrets`) and reading them.
//!
//! Every secret lives in its own file, mode 0600, named by a path in the configuration. Reading
//! one checks existence, permissions-independent size and shape, and fails with an error that
//! names the configuration key and the command that fixes it. Secret bytes are never logged and
//! never appear in an error.
//!
//! This module knows the formats; which secrets the service reads, and when, is decided by the
//! wiring (`server`, and `cli` for its commands), which hands the values to the components
//! that use them. A [`CredentialFile`] is the one secret read on every use (so it can rotate
//! without a restart); the wiring builds it and checks it at start-up.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rand::rngs::OsRng;
use rand::RngCore;

/// The JWT HS256 secret (shared by control plane and edge).
pub const JWT_HS256_FILE: &str = "jwt-hs256.key";
/// The edge's bearer token for the internal API (64 hex characters).
pub const SERVICE_TOKEN_FILE: &str = "service-token";
/// The key that wraps content keys on their way to the edge.
pub const KEY_TRANSPORT_FILE: &str = "key-transport.key";
/// The HMAC key of signed URLs (shared by control plane and edge).
pub const URL_SIGNING_FILE: &str = "url-signing.key";
/// The local custody backend's master key (control plane only).
pub const MASTER_KEY_FILE: &str = "master.key";

/// Length of every random binary secret.
pub const SECRET_LEN: usize = 32;

/// Why a secret could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{key}: {path} does not exist; run `control-plane init-secrets --dir {dir}`")]
    Missing {
        key: &'static str,
        path: PathBuf,
        dir: String,
    },
    #[error("{key}: {path} {problem}; recreate it with `control-plane init-secrets --dir {dir}` after moving the old file away")]
    Invalid {
        key: &'static str,
        path: PathBuf,
        problem: String,
        dir: String,
    },
    #[error("{key}: cannot read {path}: {source}")]
    Io {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What `init-secrets` did with one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    Created(PathBuf),
    Kept(PathBuf),
}

/// Creates every secret file of the contract in `dir` if it is missing; never overwrites.
pub fn init_secrets(dir: &Path) -> std::io::Result<Vec<Created>> {
    // A new directory is private to the service's user; an existing one is left as it is.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mut report = Vec::new();
    for name in [
        JWT_HS256_FILE,
        KEY_TRANSPORT_FILE,
        URL_SIGNING_FILE,
        MASTER_KEY_FILE,
    ] {
        report.push(create_if_missing(&dir.join(name), &random_bytes())?);
    }
    let token = hex::encode(random_bytes());
    report.push(create_if_missing(
        &dir.join(SERVICE_TOKEN_FILE),
        token.as_bytes(),
    )?);
    Ok(report)
}

/// Writes `contents` to a new file with mode 0600, or leaves an existing file alone.
pub fn create_if_missing(path: &Path, contents: &[u8]) -> std::io::Result<Created> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match file {
        Ok(mut f) => {
            f.write_all(contents)?;
            f.sync_all()?;
            Ok(Created::Created(path.to_path_buf()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(Created::Kept(path.to_path_buf()))
        }
        Err(e) => Err(e),
    }
}

fn random_bytes() -> [u8; SECRET_LEN] {
    let mut bytes = [0u8; SECRET_LEN];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

/// Reads a binary secret of at least 32 bytes (the JWT secret, the URL signing key).
pub fn read_key_material(key: &'static str, path: &Path) -> Result<Vec<u8>, SecretError> {
    let bytes = read(key, path)?;
    if bytes.len() < SECRET_LEN {
        return Err(invalid(
            key,
            path,
            format!(
                "holds {} bytes, at least {SECRET_LEN} are required",
                bytes.len()
            ),
        ));
    }
    Ok(bytes)
}

/// Reads a secret of exactly 32 bytes (a key-encryption key).
pub fn read_kek(key: &'static str, path: &Path) -> Result<[u8; SECRET_LEN], SecretError> {
    let bytes = read(key, path)?;
    bytes.as_slice().try_into().map_err(|_| {
        invalid(
            key,
            path,
            format!(
                "holds {} bytes, exactly {SECRET_LEN} are required",
                bytes.len()
            ),
        )
    })
}

/// Reads the service token (text; surrounding whitespace ignored; at least 32 characters).
pub fn read_service_token(key: &'static str, path: &Path) -> Result<String, SecretError> {
    let bytes = read(key, path)?;
    let text =
        String::from_utf8(bytes).map_err(|_| invalid(key, path, "is not UTF-8 text".into()))?;
    let token = text.trim().to_string();
    if token.len() < 32 {
        return Err(invalid(key, path, "holds fewer than 32 characters".into()));
    }
    Ok(token)
}

/// Most lines a [`CredentialFile`] holds: the current credential and the next.
pub const MAX_CREDENTIALS: usize = 2;
/// Shortest credential a [`CredentialFile`] accepts.
pub const MIN_CREDENTIAL_LEN: usize = 32;

/// A shared-credential file read again on every use, so a rotation needs no restart: one value
/// per line, two during a rotation (both accepted; lines after the second are ignored), each at
/// least [`MIN_CREDENTIAL_LEN`] characters. Errors name the configuration key, never a value.
#[derive(Debug, Clone)]
pub struct CredentialFile {
    key: &'static str,
    path: PathBuf,
}

impl CredentialFile {
    /// The file `path`, configured as `key` (`"speke.credential_file"`).
    pub fn new(key: &'static str, path: &Path) -> Self {
        CredentialFile {
            key,
            path: path.to_path_buf(),
        }
    }

    /// The credentials the file holds now.
    pub fn read(&self) -> Result<Vec<String>, String> {
        let key = self.key;
        let bytes = read_key_material(key, &self.path).map_err(|e| e.to_string())?;
        let text =
            String::from_utf8(bytes).map_err(|_| format!("{key}: the file is not UTF-8 text"))?;
        let credentials: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .take(MAX_CREDENTIALS)
            .map(str::to_string)
            .collect();
        if credentials.is_empty() || credentials.iter().any(|c| c.len() < MIN_CREDENTIAL_LEN) {
            return Err(format!(
                "{key}: every line must hold at least {MIN_CREDENTIAL_LEN} characters"
            ));
        }
        Ok(credentials)
    }
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, SecretError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(SecretError::Missing {
            key,
            path: path.to_path_buf(),
            dir: secret_dir(path),
        }),
        Err(source) => Err(SecretError::Io {
            key,
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn invalid(key: &'static str, path: &Path, problem: String) -> SecretError {
    SecretError::Invalid {
        key,
        path: path.to_path_buf(),
        problem,
        dir: secret_dir(path),
    }
}

fn secret_dir(path: &Path) -> String {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.display().to_string(),
        _ => ".".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn init_creates_once_with_0600() {
        let dir = tempfile::tempdir().unwrap();
        let first = init_secrets(dir.path()).unwrap();
        assert!(first.iter().all(|c| matches!(c, Created::Created(_))));
        let jwt = std::fs::read(dir.path().join(JWT_HS256_FILE)).unwrap();
        let second = init_secrets(dir.path()).unwrap();
        assert!(second.iter().all(|c| matches!(c, Created::Kept(_))));
        assert_eq!(std::fs::read(dir.path().join(JWT_HS256_FILE)).unwrap(), jwt);
        for name in [
            JWT_HS256_FILE,
            SERVICE_TOKEN_FILE,
            KEY_TRANSPORT_FILE,
            URL_SIGNING_FILE,
            MASTER_KEY_FILE,
        ] {
            let mode = std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
        let token = read_service_token(
            "internal.service_token_file",
            &dir.path().join(SERVICE_TOKEN_FILE),
        )
        .unwrap();
        assert_eq!(token.len(), 64);
        read_kek("keys.master_key_file", &dir.path().join(MASTER_KEY_FILE)).unwrap();
    }

    #[test]
    fn missing_secret_names_key_and_fix() {
        let err = read_key_material("jwt.hs256_secret_file", Path::new("/x/jwt.key")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "jwt.hs256_secret_file: /x/jwt.key does not exist; run `control-plane init-secrets --dir /x`"
        );
    }

    #[test]
    fn short_kek_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, b"short").unwrap();
        let err = read_kek("internal.key_transport_key_file", &path)
            .unwrap_err()
            .to_string();
        assert!(err.contains("exactly 32"), "{err}");
        assert!(!err.contains("short"));
    }
}
