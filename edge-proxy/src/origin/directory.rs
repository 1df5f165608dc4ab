//! The directory origin: media files under a local folder, `{root}/{videoId}/{path}`.
//!
//! Besides the syntactic checks of [`AssetPath`], every lookup canonicalizes the file's path
//! (resolving symlinks) and refuses it unless it still lies under the canonical root, so a
//! symlink planted in the media tree cannot expose the rest of the disk.

use std::path::{Path, PathBuf};

use tokio::io::AsyncReadExt;

use super::OriginError;
use crate::config::OriginConfig;
use playback::hls::AssetPath;

/// A local media folder.
pub struct DirectoryOrigin {
    root: PathBuf,
    max_playlist_bytes: u64,
}

/// An opened origin file and its length, ready to stream.
pub struct OriginFile {
    pub file: tokio::fs::File,
    pub len: u64,
}

impl DirectoryOrigin {
    /// A directory origin for `origin.directory`; the folder may appear after start-up
    /// (`/ready` reports it until it does).
    pub fn new(config: &OriginConfig) -> DirectoryOrigin {
        DirectoryOrigin {
            root: config.directory.clone(),
            max_playlist_bytes: config.max_playlist_bytes,
        }
    }

    /// The canonical path of an existing regular file under the root.
    async fn locate(&self, video_id: &str, path: &AssetPath) -> Result<PathBuf, OriginError> {
        let root = canonical(&self.root).await?;
        let mut candidate = root.join(video_id);
        candidate.extend(path.segments());
        let resolved = canonical(&candidate).await?;
        if !resolved.starts_with(&root) {
            tracing::warn!(
                video_id,
                "refused a path that resolves outside the origin root"
            );
            return Err(OriginError::NotFound);
        }
        let metadata = tokio::fs::metadata(&resolved).await.map_err(io_error)?;
        if !metadata.is_file() {
            return Err(OriginError::NotFound);
        }
        Ok(resolved)
    }

    /// Opens a file for streaming.
    pub async fn open(&self, video_id: &str, path: &AssetPath) -> Result<OriginFile, OriginError> {
        let resolved = self.locate(video_id, path).await?;
        let file = tokio::fs::File::open(&resolved).await.map_err(io_error)?;
        let len = file.metadata().await.map_err(io_error)?.len();
        Ok(OriginFile { file, len })
    }

    /// Reads a whole playlist, refusing files over the size limit.
    pub async fn playlist(&self, video_id: &str, path: &AssetPath) -> Result<String, OriginError> {
        let OriginFile { file, len } = self.open(video_id, path).await?;
        let limit = self.max_playlist_bytes;
        if len > limit {
            return Err(OriginError::TooLarge { limit });
        }
        let mut bytes = Vec::with_capacity(len as usize);
        file.take(limit + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(io_error)?;
        if bytes.len() as u64 > limit {
            return Err(OriginError::TooLarge { limit });
        }
        String::from_utf8(bytes).map_err(|_| OriginError::NotText)
    }

    /// `Ok` when the root folder exists.
    pub async fn check_reachable(&self) -> Result<(), String> {
        match tokio::fs::metadata(&self.root).await {
            Ok(m) if m.is_dir() => Ok(()),
            _ => Err(format!(
                "origin directory {} does not exist",
                self.root.display()
            )),
        }
    }
}

async fn canonical(path: &Path) -> Result<PathBuf, OriginError> {
    tokio::fs::canonicalize(path).await.map_err(io_error)
}

fn io_error(e: std::io::Error) -> OriginError {
    match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory => OriginError::NotFound,
        _ => OriginError::Failed(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: &str = "0b6f2a8e-3c1d-4e5f-9a7b-112233445566";

    fn origin(root: &Path, max: u64) -> DirectoryOrigin {
        DirectoryOrigin {
            root: root.to_path_buf(),
            max_playlist_bytes: max,
        }
    }

    #[tokio::test]
    async fn reads_files_under_the_root_only() {
        let dir = tempfile::tempdir().unwrap();
        let media = dir.path().join("media");
        std::fs::create_dir_all(media.join(V)).unwrap();
        std::fs::write(media.join(V).join("master.m3u8"), "#EXTM3U\n").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "secret").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), media.join(V).join("leak.ts"))
            .unwrap();
        let origin = origin(&media, 1024);

        let ok = AssetPath::parse("master.m3u8").unwrap();
        assert_eq!(origin.playlist(V, &ok).await.unwrap(), "#EXTM3U\n");
        let leak = AssetPath::parse("leak.ts").unwrap();
        assert!(matches!(
            origin.open(V, &leak).await,
            Err(OriginError::NotFound)
        ));
        let missing = AssetPath::parse("nope.ts").unwrap();
        assert!(matches!(
            origin.open(V, &missing).await,
            Err(OriginError::NotFound)
        ));
        let folder = AssetPath::parse("x").unwrap();
        std::fs::create_dir(media.join(V).join("x")).unwrap();
        assert!(matches!(
            origin.open(V, &folder).await,
            Err(OriginError::NotFound)
        ));
        assert!(origin.check_reachable().await.is_ok());
    }

    #[tokio::test]
    async fn oversized_playlists_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(V)).unwrap();
        std::fs::write(dir.path().join(V).join("big.m3u8"), vec![b'#'; 100]).unwrap();
        let origin = origin(dir.path(), 99);
        let path = AssetPath::parse("big.m3u8").unwrap();
        assert!(matches!(
            origin.playlist(V, &path).await,
            Err(OriginError::TooLarge { limit: 99 })
        ));
    }

    #[tokio::test]
    async fn missing_root_is_not_ready() {
        let origin = origin(Path::new("/nonexistent/origin"), 10);
        assert!(origin
            .check_reachable()
            .await
            .unwrap_err()
            .contains("/nonexistent/origin"));
    }
}
