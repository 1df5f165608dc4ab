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
    c
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
