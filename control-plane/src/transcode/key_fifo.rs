//! Handing a child process the content key through a FIFO, so the plaintext key never touches
//! disk or a command line. Two shapes share one private directory scheme: [`KeyFifo`] for
//! ffmpeg's AES-128 HLS, and [`FlagFifo`] for Shaka Packager's `--flagfile`.
//!
//! **ffmpeg** ([`KeyFifo`]):
//! ffmpeg's `-hls_key_info_file` names a file whose first line is the key URI written into the
//! playlists and whose second line is the path of a file holding the 16 key bytes. Here that
//! path is a FIFO (mode 0600) in a private directory (0700) next to the staging output. A task holds the FIFO
//! open read-write (so a reader never sees end-of-file and opening never blocks) and keeps one
//! copy of the key in the pipe: whenever a reader has drained it (ffmpeg opens the path once
//! per variant stream), the key is written again. 16-byte writes are atomic, so every read gets
//! whole copies. The key info file holds no secret, and no IV line is written: ffmpeg derives
//! the IV from the segment sequence number and writes it into the playlist.
//!
//! **Shaka Packager** ([`FlagFifo`]): `--flagfile` names a FIFO (0600, in a 0700 directory)
//! whose text is the secret flags (`--keys=label=…:key_id=…:key=…`). The packager reads a
//! flagfile to end-of-file once, so here the writer waits for the reader to open the FIFO,
//! writes the whole text (under `PIPE_BUF`, so one atomic write) and closes it, which is the
//! reader's end-of-file. One reader is served; the text is zeroed when the feeder ends.
//! (Verified with packager v3.8: it reads the flags from the FIFO and encrypts with them.)

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;
use tempfile::TempDir;
use tokio::task::JoinHandle;

use crate::keys::ContentKey;

/// How often the pipe is checked for having been drained.
const POLL: Duration = Duration::from_millis(10);

/// A private directory with the key info file and the key FIFO.
pub struct KeyFifo {
    dir: TempDir,
    info_path: PathBuf,
    fifo_path: PathBuf,
}

impl KeyFifo {
    /// Creates the directory (a new `{prefix}XXXXXX` in `parent`), the FIFO and the key info
    /// file for `key_uri`. The directory is removed on drop; after a crash it holds no secret
    /// (an empty FIFO and the key URI), and the runner's staging cleanup removes it.
    pub fn create(key_uri: &str, parent: &Path, prefix: &str) -> std::io::Result<Self> {
        let (dir, fifo_path) = private_fifo(parent, prefix, "key.fifo")?;
        let info_path = dir.path().join("key.info");
        let mut info = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&info_path)?;
        writeln!(info, "{key_uri}")?;
        writeln!(info, "{}", fifo_path.display())?;
        Ok(KeyFifo {
            dir,
            info_path,
            fifo_path,
        })
    }

    /// The file to pass as `-hls_key_info_file`.
    pub fn info_path(&self) -> &Path {
        &self.info_path
    }

    /// The FIFO ffmpeg reads the key from.
    pub fn fifo_path(&self) -> &Path {
        &self.fifo_path
    }

    /// The private directory (removed when `self` is dropped).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts writing `key` to every reader of the FIFO until the returned feeder is dropped.
    pub fn feed(&self, key: &ContentKey) -> KeyFeeder {
        let key = ContentKey::new(*key.bytes());
        let path = self.fifo_path.clone();
        KeyFeeder {
            task: tokio::spawn(async move { deliver_forever(&path, &key).await }),
        }
    }
}

/// A private directory holding one FIFO to pass as Shaka Packager's `--flagfile`.
pub struct FlagFifo {
    dir: TempDir,
    fifo_path: PathBuf,
}

impl FlagFifo {
    /// Creates the directory (a new `{prefix}XXXXXX` in `parent`, removed on drop) and the
    /// FIFO. After a crash it holds only an empty FIFO.
    pub fn create(parent: &Path, prefix: &str) -> std::io::Result<Self> {
        let (dir, fifo_path) = private_fifo(parent, prefix, "flags.fifo")?;
        Ok(FlagFifo { dir, fifo_path })
    }

    /// The path to pass as `--flagfile`.
    pub fn path(&self) -> &Path {
        &self.fifo_path
    }

    /// The private directory (removed when `self` is dropped).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts waiting for the packager to open the FIFO, then hands it `flags` once and closes
    /// it. Dropping the returned feeder stops the wait.
    pub fn feed(&self, flags: SecretText) -> KeyFeeder {
        let path = self.fifo_path.clone();
        KeyFeeder {
            task: tokio::spawn(async move { deliver_once(&path, &flags).await }),
        }
    }
}

/// Text holding a secret (flags with a key in hex): never printed, zeroed on drop.
pub struct SecretText(Vec<u8>);

impl SecretText {
    pub fn new(text: String) -> Self {
        SecretText(text.into_bytes())
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretText(<redacted>)")
    }
}

impl Drop for SecretText {
    fn drop(&mut self) {
        self.0.fill(0);
        std::hint::black_box(&mut self.0);
    }
}

/// A new 0700 directory `{prefix}XXXXXX` in `parent` with a 0600 FIFO `name` in it.
fn private_fifo(parent: &Path, prefix: &str, name: &str) -> std::io::Result<(TempDir, PathBuf)> {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(parent)?;
    let fifo_path = dir.path().join(name);
    nix::unistd::mkfifo(&fifo_path, Mode::S_IRUSR | Mode::S_IWUSR).map_err(std::io::Error::from)?;
    Ok((dir, fifo_path))
}

/// The running writer; dropping it stops the writes.
pub struct KeyFeeder {
    task: JoinHandle<()>,
}

impl Drop for KeyFeeder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn deliver_forever(path: &Path, key: &ContentKey) {
    // Read-write and non-blocking: opening a FIFO this way neither blocks nor needs a reader.
    let fifo = match OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(error = %e, "opening the key FIFO failed");
            return;
        }
    };
    loop {
        let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
        let drained = matches!(poll(&mut fds, PollTimeout::ZERO), Ok(0));
        if drained {
            match (&fifo).write(key.bytes()) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => {
                    tracing::warn!(error = %e, "writing to the key FIFO failed");
                    return;
                }
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits for a reader (a non-blocking write-only open fails with `ENXIO` until one has the
/// FIFO open), writes `text` in one write and closes: the reader sees the text, then EOF.
async fn deliver_once(path: &Path, text: &SecretText) {
    let fifo = loop {
        match OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(path)
        {
            Ok(f) => break f,
            Err(e) if e.raw_os_error() == Some(nix::libc::ENXIO) => {
                tokio::time::sleep(POLL).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "opening the flags FIFO failed");
                return;
            }
        }
    };
    match (&fifo).write(text.bytes()) {
        Ok(n) if n == text.bytes().len() => {}
        Ok(n) => tracing::warn!(written = n, "the flags FIFO took only part of the flags"),
        Err(e) => tracing::warn!(error = %e, "writing to the flags FIFO failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_reader_gets_the_key() {
        let parent = tempfile::tempdir().unwrap();
        let fifo = KeyFifo::create("key/abc", parent.path(), "job-key-").unwrap();
        let info = std::fs::read_to_string(fifo.info_path()).unwrap();
        assert_eq!(info, format!("key/abc\n{}\n", fifo.fifo_path().display()));
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(fifo.fifo_path()), 0o600);
        assert_eq!(mode(fifo.dir()), 0o700);

        let key = ContentKey::new(*b"0123456789abcdef");
        let feeder = fifo.feed(&key);
        // Readers come one after another, as ffmpeg does once per variant stream; a large
        // buffered read (ffmpeg's avio) still gets whole copies only.
        for _ in 0..5 {
            let path = fifo.fifo_path().to_path_buf();
            let got = tokio::task::spawn_blocking(move || {
                let mut f = std::fs::File::open(path).unwrap();
                let mut buf = vec![0u8; 4096];
                let n = f.read(&mut buf).unwrap();
                buf.truncate(n);
                buf
            })
            .await
            .unwrap();
            assert!(
                !got.is_empty() && got.len() % 16 == 0,
                "{} bytes",
                got.len()
            );
            assert!(got.chunks(16).all(|c| c == b"0123456789abcdef"));
        }
        drop(feeder);
        let dir = fifo.dir().to_path_buf();
        drop(fifo);
        assert!(!dir.exists());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flagfile_reader_gets_the_text_then_eof() {
        let parent = tempfile::tempdir().unwrap();
        let fifo = FlagFifo::create(parent.path(), "job-flags-").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(fifo.path()), 0o600);
        assert_eq!(mode(fifo.dir()), 0o700);
        let text = "--keys=label=CONTENT:key_id=00:key=11\n";
        let feeder = fifo.feed(SecretText::new(text.to_string()));
        let path = fifo.path().to_path_buf();
        // Reads to end-of-file, as a flagfile parser does; this returns only because the
        // writer closed after one copy.
        let got = tokio::task::spawn_blocking(move || std::fs::read_to_string(path).unwrap())
            .await
            .unwrap();
        assert_eq!(got, text);
        drop(feeder);
        let dir = fifo.dir().to_path_buf();
        drop(fifo);
        assert!(!dir.exists());
    }
}
