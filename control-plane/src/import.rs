//! Importing titles packaged elsewhere (Shaka Packager, MediaConvert, ...): `control-plane import`.
//!
//! The packaged directory is copied into `{storage.origin_dir}/{fileId}/` (where the ffmpeg
//! transcoder publishes titles, so the edge serves both alike): first into
//! `{origin_dir}/.staging/{fileId}-import`, then renamed into place, so an edge never sees half
//! a title. The title is recorded `completed` with its owner (created if needed), and each
//! content key is sealed by the configured custody before it reaches the database: the
//! plaintext key lives only in memory, is never printed, and key files are read, never echoed.
//!
//! Rules: the directory holds a master playlist (`master.m3u8`), a DASH manifest (`*.mpd`,
//! `manifest.mpd` as the local packager names it) or both (a CMAF package whose HLS and DASH
//! manifests share one set of segments, as `transcode.protection = "cbcs"` makes) at its top
//! level; a key file holds exactly 16 raw bytes or 32 hex characters (surrounding
//! whitespace allowed); key ids are distinct UUIDs; `--drm` needs at least one key and keys need
//! `--drm`. Regular files and real directories are copied (symlinked files are followed,
//! symlinked directories refused), at most [`MAX_DEPTH`] levels deep.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use uuid::Uuid;

use crate::db::files::{ImportedTitle, NewFile};
use crate::db::key_audit::{audit, KeyAction, KeyEvent};
use crate::db::users::valid_user_id;
use crate::db::{now, Db, DbError};
use crate::keys::{ContentKey, CustodyError, KeyCustody, CONTENT_KEY_LEN};
use crate::origin::{manifest_url, DASH_MANIFEST, MASTER_PLAYLIST, STAGING_DIR};

/// Deepest directory nesting copied from a packaged title.
pub const MAX_DEPTH: usize = 16;
/// Longest title name stored.
pub const MAX_NAME_LEN: usize = 255;
/// Who the key audit trail names for sealed imported keys (import runs from the CLI only).
pub const AUDIT_ACTOR: &str = "cli";

/// Why an import was refused or failed. Never carries key material.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("--{flag}: {problem}")]
    Invalid { flag: &'static str, problem: String },
    #[error("--key-file {path}: {problem}")]
    KeyFile { path: PathBuf, problem: String },
    #[error("copying the packaged title failed: {0}")]
    Copy(String),
    #[error("key custody: {0}")]
    Custody(#[from] CustodyError),
    #[error("{0}")]
    Db(#[from] DbError),
}

fn invalid(flag: &'static str, problem: impl Into<String>) -> ImportError {
    ImportError::Invalid {
        flag,
        problem: problem.into(),
    }
}

/// A content key of the title, read from its key file.
pub struct ImportKey {
    pub key_id: Uuid,
    pub key: ContentKey,
}

/// What to import.
pub struct ImportRequest<'a> {
    pub owner: &'a str,
    pub dir: &'a Path,
    pub name: &'a str,
    pub drm: bool,
    pub keys: Vec<ImportKey>,
}

/// Where imported titles go and how they are announced.
pub struct ImportTarget<'a> {
    pub db: &'a Db,
    pub custody: Arc<dyn KeyCustody>,
    pub origin_dir: &'a Path,
    pub edge_base: &'a str,
}

/// What `control-plane import` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Imported {
    pub video_id: String,
    pub key_ids: Vec<String>,
}

/// The kind of manifest found at the top of a packaged directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    /// `master.m3u8` only.
    Hls,
    /// An `.mpd` only.
    Dash,
    /// `master.m3u8` and an `.mpd`: a CMAF package with both manifests.
    HlsAndDash,
}

impl ManifestKind {
    /// Stored as the title's `mime_type` (the HLS master is the entry point of a package that
    /// has one).
    pub fn mime_type(self) -> &'static str {
        match self {
            ManifestKind::Hls | ManifestKind::HlsAndDash => "application/vnd.apple.mpegurl",
            ManifestKind::Dash => "application/dash+xml",
        }
    }
}

/// Reads a key file: exactly 16 raw bytes, or 32 hex characters with optional surrounding
/// whitespace. Error messages name the file, never its contents.
pub fn read_key_file(path: &Path) -> Result<ContentKey, ImportError> {
    let fail = |problem: &str| ImportError::KeyFile {
        path: path.to_path_buf(),
        problem: problem.to_string(),
    };
    let file = std::fs::File::open(path).map_err(|e| fail(&format!("cannot read it ({e})")))?;
    // Read one byte past the longest acceptable form (hex plus a little whitespace) to bound it.
    let mut bytes = Vec::with_capacity(65);
    file.take(65)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(&format!("cannot read it ({e})")))?;
    const SHAPE: &str = "must hold exactly 16 raw bytes or 32 hex characters";
    let key = if bytes.len() == CONTENT_KEY_LEN {
        let mut raw = [0u8; CONTENT_KEY_LEN];
        raw.copy_from_slice(&bytes);
        let key = ContentKey::new(raw);
        raw.fill(0);
        Ok(key)
    } else {
        let text = bytes.trim_ascii();
        let mut raw = [0u8; CONTENT_KEY_LEN];
        let decoded = if text.len() == 2 * CONTENT_KEY_LEN {
            hex::decode_to_slice(text, &mut raw).is_ok()
        } else {
            false
        };
        let key = decoded.then(|| ContentKey::new(raw));
        raw.fill(0);
        key.ok_or_else(|| fail(SHAPE))
    };
    bytes.fill(0);
    key
}

/// Finds `master.m3u8` and/or an `*.mpd` (`manifest.mpd` or another) at the top of `dir`.
pub fn find_manifest(dir: &Path) -> Result<ManifestKind, ImportError> {
    let hls = dir.join(MASTER_PLAYLIST).is_file();
    let dash = dir.join(DASH_MANIFEST).is_file() || {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| invalid("dir", format!("cannot read {} ({e})", dir.display())))?;
        entries.flatten().any(|entry| {
            let path = entry.path();
            path.extension().is_some_and(|ext| ext == "mpd") && path.is_file()
        })
    };
    match (hls, dash) {
        (true, true) => Ok(ManifestKind::HlsAndDash),
        (true, false) => Ok(ManifestKind::Hls),
        (false, true) => Ok(ManifestKind::Dash),
        (false, false) => Err(invalid(
            "dir",
            format!(
                "{} holds neither {MASTER_PLAYLIST} nor an .mpd manifest (such as {DASH_MANIFEST}) at its top level",
                dir.display()
            ),
        )),
    }
}

/// Imports a packaged title; see the module docs.
pub async fn import_title(
    target: &ImportTarget<'_>,
    request: ImportRequest<'_>,
) -> Result<Imported, ImportError> {
    check_request(&request)?;
    let dir = std::fs::canonicalize(request.dir)
        .map_err(|e| invalid("dir", format!("{}: {e}", request.dir.display())))?;
    if !dir.is_dir() {
        return Err(invalid(
            "dir",
            format!("{} is not a directory", dir.display()),
        ));
    }
    let manifest = find_manifest(&dir)?;
    std::fs::create_dir_all(target.origin_dir.join(STAGING_DIR))
        .map_err(|e| ImportError::Copy(format!("{}: {e}", target.origin_dir.display())))?;
    let origin = std::fs::canonicalize(target.origin_dir)
        .map_err(|e| ImportError::Copy(format!("{}: {e}", target.origin_dir.display())))?;
    if origin.starts_with(&dir) {
        return Err(invalid(
            "dir",
            "the packaged directory contains the origin directory; package the title elsewhere",
        ));
    }

    let video_id = Uuid::new_v4();
    let staging = origin.join(STAGING_DIR).join(format!("{video_id}-import"));
    let published = origin.join(video_id.to_string());
    let copy = {
        let (from, to) = (dir.clone(), staging.clone());
        tokio::task::spawn_blocking(move || copy_tree(&from, &to, 0))
            .await
            .map_err(|e| ImportError::Copy(e.to_string()))
            .and_then(|r| r)
    };
    let size_bytes = match copy {
        Ok(size) => size,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };

    let sealed = match seal_keys(target, video_id, &request.keys).await {
        Ok(sealed) => sealed,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    drop(request.keys);

    if let Err(e) = std::fs::rename(&staging, &published) {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(ImportError::Copy(format!(
            "cannot move the title into {}: {e}",
            published.display()
        )));
    }
    let storage_path = published.to_string_lossy().into_owned();
    let manifest_url = manifest_url(target.edge_base, video_id);
    let title = ImportedTitle {
        file: NewFile {
            id: video_id,
            owner_id: request.owner,
            name: request.name.trim(),
            mime_type: manifest.mime_type(),
            size_bytes: i64::try_from(size_bytes).unwrap_or(i64::MAX),
            storage_path: &storage_path,
        },
        drm_protected: request.drm,
        hls_manifest_url: &manifest_url,
        keys: &sealed,
    };
    if let Err(e) = target.db.import_title(&title, now()).await {
        // Without its record the copied tree is unreachable: remove it.
        let _ = std::fs::remove_dir_all(&published);
        return Err(e.into());
    }
    for (key_id, _) in &sealed {
        audit(
            target.db,
            &KeyEvent {
                actor: AUDIT_ACTOR,
                action: KeyAction::Seal,
                content_id: Some(video_id),
                key_id: Some(*key_id),
                backend: target.custody.backend(),
                ok: true,
                detail: Some("import"),
            },
        )
        .await;
    }
    tracing::info!(fileId = %video_id, owner = %request.owner, keys = sealed.len(), drm = request.drm, sizeBytes = size_bytes, "packaged title imported");
    Ok(Imported {
        video_id: video_id.to_string(),
        key_ids: sealed.iter().map(|(id, _)| id.to_string()).collect(),
    })
}

fn check_request(request: &ImportRequest<'_>) -> Result<(), ImportError> {
    if !valid_user_id(request.owner) {
        return Err(invalid(
            "owner",
            "must be 1 to 255 bytes without control characters (the owner's JWT `sub`)",
        ));
    }
    let name = request.name.trim();
    if name.is_empty() || name.len() > MAX_NAME_LEN || name.chars().any(char::is_control) {
        return Err(invalid(
            "name",
            format!("must be 1 to {MAX_NAME_LEN} bytes without control characters"),
        ));
    }
    if request.drm && request.keys.is_empty() {
        return Err(invalid(
            "drm",
            "a DRM title needs its content keys: add --key-id <uuid> --key-file <path>",
        ));
    }
    if !request.drm && !request.keys.is_empty() {
        return Err(invalid(
            "drm",
            "content keys were given for a title not marked --drm; add --drm",
        ));
    }
    let mut seen = HashSet::new();
    for key in &request.keys {
        if !seen.insert(key.key_id) {
            return Err(invalid("key-id", format!("{} is given twice", key.key_id)));
        }
    }
    Ok(())
}

async fn seal_keys(
    target: &ImportTarget<'_>,
    video_id: Uuid,
    keys: &[ImportKey],
) -> Result<Vec<(Uuid, String)>, ImportError> {
    let video = video_id.to_string();
    let mut sealed = Vec::with_capacity(keys.len());
    for key in keys {
        let wrapped = match target
            .custody
            .seal(&video, &key.key_id.to_string(), &key.key)
            .await
        {
            Ok(wrapped) => wrapped,
            Err(e) => {
                let detail = format!("import: {e}");
                audit(
                    target.db,
                    &KeyEvent {
                        actor: AUDIT_ACTOR,
                        action: KeyAction::Seal,
                        content_id: Some(video_id),
                        key_id: Some(key.key_id),
                        backend: target.custody.backend(),
                        ok: false,
                        detail: Some(&detail),
                    },
                )
                .await;
                return Err(e.into());
            }
        };
        sealed.push((key.key_id, wrapped));
    }
    Ok(sealed)
}

/// Copies `from` into a new directory `to`; returns the bytes copied.
fn copy_tree(from: &Path, to: &Path, depth: usize) -> Result<u64, ImportError> {
    if depth > MAX_DEPTH {
        return Err(ImportError::Copy(format!(
            "{} is nested more than {MAX_DEPTH} levels deep",
            from.display()
        )));
    }
    let fail =
        |path: &Path, e: std::io::Error| ImportError::Copy(format!("{}: {e}", path.display()));
    std::fs::create_dir(to).map_err(|e| fail(to, e))?;
    let mut total = 0u64;
    for entry in std::fs::read_dir(from).map_err(|e| fail(from, e))? {
        let entry = entry.map_err(|e| fail(from, e))?;
        let source = entry.path();
        let dest = to.join(entry.file_name());
        let kind = entry.file_type().map_err(|e| fail(&source, e))?;
        if kind.is_dir() {
            total += copy_tree(&source, &dest, depth + 1)?;
        } else if kind.is_file()
            || (kind.is_symlink() && std::fs::metadata(&source).is_ok_and(|m| m.is_file()))
        {
            total += std::fs::copy(&source, &dest).map_err(|e| fail(&source, e))?;
        } else {
            return Err(ImportError::Copy(format!(
                "{} is neither a regular file nor a directory (symlinked directories are not copied)",
                source.display()
            )));
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_are_raw_or_hex() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        };
        let raw = write("raw.key", &[7u8; 16]);
        assert_eq!(read_key_file(&raw).unwrap().bytes(), &[7u8; 16]);
        let hex_key = "00112233445566778899aabbccddeeff";
        let hexed = write("hex.key", format!("  {hex_key}\n").as_bytes());
        assert_eq!(hex::encode(read_key_file(&hexed).unwrap().bytes()), hex_key);
        let upper = write("upper.key", hex_key.to_uppercase().as_bytes());
        assert!(read_key_file(&upper).is_ok());

        for (name, bytes) in [
            ("short.key", vec![1u8; 15]),
            ("long.key", vec![1u8; 17]),
            ("badhex.key", b"zz112233445566778899aabbccddeeff".to_vec()),
            ("hex31.key", b"0112233445566778899aabbccddeeff".to_vec()),
            ("huge.key", vec![b'a'; 4096]),
        ] {
            let p = write(name, &bytes);
            let err = read_key_file(&p).err().unwrap().to_string();
            assert!(err.contains("16 raw bytes or 32 hex"), "{name}: {err}");
            assert!(!err.contains("zz1122"), "contents never echoed: {err}");
        }
        let missing = read_key_file(&dir.path().join("nope")).err().unwrap();
        assert!(missing.to_string().starts_with("--key-file"));
    }

    #[test]
    fn manifests_are_found_at_the_top() {
        let dir = tempfile::tempdir().unwrap();
        assert!(find_manifest(dir.path()).is_err());
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/master.m3u8"), "#EXTM3U\n").unwrap();
        assert!(
            find_manifest(dir.path()).is_err(),
            "nested manifests do not count"
        );
        std::fs::write(dir.path().join("stream.mpd"), "<MPD/>").unwrap();
        assert_eq!(find_manifest(dir.path()).unwrap(), ManifestKind::Dash);
        std::fs::write(dir.path().join("master.m3u8"), "#EXTM3U\n").unwrap();
        assert_eq!(find_manifest(dir.path()).unwrap(), ManifestKind::HlsAndDash);
        std::fs::remove_file(dir.path().join("stream.mpd")).unwrap();
        assert_eq!(find_manifest(dir.path()).unwrap(), ManifestKind::Hls);
        // A CMAF package as the local packager writes it.
        std::fs::write(dir.path().join("manifest.mpd"), "<MPD/>").unwrap();
        assert_eq!(find_manifest(dir.path()).unwrap(), ManifestKind::HlsAndDash);
        std::fs::remove_file(dir.path().join("master.m3u8")).unwrap();
        assert_eq!(find_manifest(dir.path()).unwrap(), ManifestKind::Dash);
        assert_eq!(
            ManifestKind::HlsAndDash.mime_type(),
            "application/vnd.apple.mpegurl"
        );
    }

    #[test]
    fn trees_are_copied_with_their_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("video/720p")).unwrap();
        std::fs::write(src.join("master.m3u8"), "#EXTM3U\n").unwrap();
        std::fs::write(src.join("video/720p/seg_1.m4s"), vec![1u8; 1000]).unwrap();
        std::os::unix::fs::symlink(src.join("master.m3u8"), src.join("alias.m3u8")).unwrap();
        let dest = dir.path().join("dest");
        let total = copy_tree(&src, &dest, 0).unwrap();
        assert_eq!(total, 8 + 1000 + 8);
        assert_eq!(
            std::fs::read(dest.join("video/720p/seg_1.m4s"))
                .unwrap()
                .len(),
            1000
        );
        std::os::unix::fs::symlink(src.join("video"), src.join("loop")).unwrap();
        assert!(copy_tree(&src, &dir.path().join("dest2"), 0).is_err());
    }
}
