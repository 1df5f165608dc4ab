//! The directory origin: media files under a local folder, `{root}/{videoId}/{path}`.
//!
//! Besides the syntactic checks of [`AssetPath`], every lookup canonicalizes the file's path
//! (resolving symlinks) and refuses it unless it still lies under the canonical root, so a
//! symlink planted in the media tree cannot expose the rest of the disk.
//!
//! Why one blocking call per request: every `tokio::fs` call is a hand-off to the blocking
//! pool and back, and with four of them per segment (canonicalize, metadata, open, fstat) the
//! hand-offs dominated the edge's profile (bench/README.md). So locating, checking, opening and
//! stating a file is one `spawn_blocking`, and a small file (the typical HLS segment) is read
//! whole in that same call, leaving nothing to wait for while it is sent.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::fetch::OriginError;
use crate::config::OriginConfig;
use playback::hls::AssetPath;

/// Files up to this size are read whole while being opened; larger ones are streamed.
pub const WHOLE_READ_MAX: u64 = 1024 * 1024;

/// A local media folder.
pub struct DirectoryOrigin {
    root: PathBuf,
    max_playlist_bytes: u64,
}

/// An opened origin file: its contents (or the open file to stream them from) and the
/// validators a conditional or range request is judged against.
pub struct OriginFile {
    pub body: OriginBody,
    /// The length (from `fstat` on the opened file); never more than this is sent.
    pub len: u64,
    /// A strong entity tag, quoted: `"{mtime in ns since the epoch, hex}-{len, hex}"`.
    pub etag: String,
    /// The file's modification time (`None` when the filesystem has none or it predates 1970).
    pub last_modified: Option<SystemTime>,
}

/// Where an [`OriginFile`]'s bytes are.
pub enum OriginBody {
    /// The whole file (at most [`WHOLE_READ_MAX`] bytes), read while it was opened.
    Memory(Bytes),
    /// The open file, to be read in chunks while it is sent (positioned reads, so ranges and
    /// read-ahead need no seeking).
    File(File),
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

    /// Opens a file for serving: one blocking-pool call locates, checks, opens and stats it,
    /// and reads it whole when it is at most [`WHOLE_READ_MAX`] bytes.
    pub async fn open(&self, video_id: &str, path: &AssetPath) -> Result<OriginFile, OriginError> {
        let (root, candidate) = self.candidate(video_id, path);
        let video_id = video_id.to_string();
        blocking(move || {
            let (mut file, metadata) = open_under(&root, &candidate, &video_id)?;
            let len = metadata.len();
            let last_modified = metadata.modified().ok().filter(|t| *t >= UNIX_EPOCH);
            let etag = entity_tag(len, last_modified);
            let body = if len <= WHOLE_READ_MAX {
                OriginBody::Memory(read_exactly(&mut file, len)?)
            } else {
                OriginBody::File(file)
            };
            Ok(OriginFile {
                body,
                len,
                etag,
                last_modified,
            })
        })
        .await
    }

    /// Reads a whole playlist, refusing files over the size limit (one blocking-pool call).
    pub async fn playlist(&self, video_id: &str, path: &AssetPath) -> Result<String, OriginError> {
        let (root, candidate) = self.candidate(video_id, path);
        let video_id = video_id.to_string();
        let limit = self.max_playlist_bytes;
        blocking(move || {
            let (file, metadata) = open_under(&root, &candidate, &video_id)?;
            if metadata.len() > limit {
                return Err(OriginError::TooLarge { limit });
            }
            // Read to the end rather than to the stat'ed length: a live playlist rewritten in
            // place may change size between the two, and any size up to the limit is fine.
            let mut bytes = Vec::with_capacity(metadata.len() as usize);
            file.take(limit + 1)
                .read_to_end(&mut bytes)
                .map_err(io_error)?;
            if bytes.len() as u64 > limit {
                return Err(OriginError::TooLarge { limit });
            }
            String::from_utf8(bytes).map_err(|_| OriginError::NotText)
        })
        .await
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

    /// The configured root and the (not yet resolved) path of `video_id`/`path` under it.
    fn candidate(&self, video_id: &str, path: &AssetPath) -> (PathBuf, PathBuf) {
        let mut candidate = self.root.join(video_id);
        candidate.extend(path.segments());
        (self.root.clone(), candidate)
    }
}

/// Runs `work` on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, OriginError> + Send + 'static,
) -> Result<T, OriginError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| OriginError::Failed(format!("origin file task failed: {e}")))?
}

/// Opens the regular file `candidate` if, with every symlink resolved, it still lies under
/// `root` (itself resolved); blocking. Returns the file and its `fstat`.
fn open_under(
    root: &Path,
    candidate: &Path,
    video_id: &str,
) -> Result<(File, std::fs::Metadata), OriginError> {
    let root = std::fs::canonicalize(root).map_err(io_error)?;
    let resolved = std::fs::canonicalize(candidate).map_err(io_error)?;
    if !resolved.starts_with(&root) {
        tracing::warn!(
            video_id,
            "refused a path that resolves outside the origin root"
        );
        return Err(OriginError::NotFound);
    }
    // Stat before opening: opening a FIFO or device would block or have side effects.
    if !std::fs::metadata(&resolved).map_err(io_error)?.is_file() {
        return Err(OriginError::NotFound);
    }
    let file = File::open(&resolved).map_err(io_error)?;
    // The fstat of what was actually opened is what the length and validators come from.
    let metadata = file.metadata().map_err(io_error)?;
    if !metadata.is_file() {
        return Err(OriginError::NotFound);
    }
    Ok((file, metadata))
}

/// Reads exactly `len` bytes from the start of `file`; blocking.
fn read_exactly(file: &mut File, len: u64) -> Result<Bytes, OriginError> {
    let mut bytes = Vec::with_capacity(len as usize);
    // `take`: a file that grew since the fstat is cut at the length its validators describe.
    file.take(len).read_to_end(&mut bytes).map_err(io_error)?;
    if (bytes.len() as u64) < len {
        return Err(OriginError::Failed(
            "origin file shrank while being served".to_string(),
        ));
    }
    Ok(Bytes::from(bytes))
}

/// A strong validator from the length and the modification time in nanoseconds, in the
/// spirit of nginx's `"{mtime}-{len}"`. The inode is left out on purpose: edges serving
/// copies of the same media tree then agree on the tag, as a CDN in front of several expects.
fn entity_tag(len: u64, last_modified: Option<SystemTime>) -> String {
    let nanos = last_modified
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("\"{nanos:x}-{len:x}\"")
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
    async fn small_files_are_read_whole_large_ones_stay_open() {
        let dir = tempfile::tempdir().unwrap();
        let title = dir.path().join(V);
        std::fs::create_dir_all(&title).unwrap();
        let small: Vec<u8> = (0..WHOLE_READ_MAX).map(|i| (i % 251) as u8).collect();
        std::fs::write(title.join("small.ts"), &small).unwrap();
        std::fs::write(
            title.join("large.ts"),
            vec![7u8; WHOLE_READ_MAX as usize + 1],
        )
        .unwrap();
        std::fs::write(title.join("empty.ts"), b"").unwrap();
        let origin = origin(dir.path(), 10);

        let file = origin
            .open(V, &AssetPath::parse("small.ts").unwrap())
            .await
            .unwrap();
        assert_eq!(file.len, WHOLE_READ_MAX);
        assert!(matches!(&file.body, OriginBody::Memory(b) if b[..] == small[..]));

        let file = origin
            .open(V, &AssetPath::parse("large.ts").unwrap())
            .await
            .unwrap();
        assert_eq!(file.len, WHOLE_READ_MAX + 1);
        assert!(matches!(file.body, OriginBody::File(_)));

        let file = origin
            .open(V, &AssetPath::parse("empty.ts").unwrap())
            .await
            .unwrap();
        assert_eq!(file.len, 0);
        assert!(matches!(&file.body, OriginBody::Memory(b) if b.is_empty()));
    }

    #[tokio::test]
    async fn validators_follow_length_and_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let title = dir.path().join(V);
        std::fs::create_dir_all(&title).unwrap();
        let path = title.join("seg.ts");
        std::fs::write(&path, b"0123456789").unwrap();
        let mtime = UNIX_EPOCH + std::time::Duration::new(1_700_000_000, 123_456_789);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let origin = origin(dir.path(), 10);
        let asset = AssetPath::parse("seg.ts").unwrap();

        let first = origin.open(V, &asset).await.unwrap();
        assert_eq!(first.last_modified, Some(mtime));
        let nanos = 1_700_000_000_123_456_789u128;
        assert_eq!(first.etag, format!("\"{nanos:x}-a\""));
        // Same file, same tag: the tag is a pure function of what was stat'ed.
        assert_eq!(origin.open(V, &asset).await.unwrap().etag, first.etag);

        // Same length, another mtime (even by a nanosecond): another tag.
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(mtime + std::time::Duration::from_nanos(1))
            .unwrap();
        let touched = origin.open(V, &asset).await.unwrap();
        assert_ne!(touched.etag, first.etag);

        // Same mtime, another length: another tag.
        file.set_len(11).unwrap();
        file.set_modified(mtime).unwrap();
        let grown = origin.open(V, &asset).await.unwrap();
        assert_eq!(grown.len, 11);
        assert_eq!(grown.etag, format!("\"{nanos:x}-b\""));
    }

    #[test]
    fn a_file_that_shrinks_before_it_is_read_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg.ts");
        std::fs::write(&path, b"0123456789").unwrap();
        let mut file = std::fs::File::open(&path).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(4)
            .unwrap();
        match read_exactly(&mut file, 10) {
            Err(OriginError::Failed(cause)) => assert!(cause.contains("shrank"), "{cause}"),
            other => panic!("expected a failure, got {:?}", other.map(|b| b.len())),
        }
        // A file that grew is cut at the length its validators describe.
        let mut file = std::fs::File::open(&path).unwrap();
        assert_eq!(&read_exactly(&mut file, 2).unwrap()[..], b"01");
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
