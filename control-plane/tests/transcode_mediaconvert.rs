//! The MediaConvert transcoding backend (`[transcode] backend = "mediaconvert"`) end to end
//! through the HTTP API, with S3 on moto's server (real: PyPI `moto[server]`, started here on a
//! free loopback port) and MediaConvert replaced by a wire-level fake: there is no MediaConvert
//! emulator, so an axum server here implements `DescribeEndpoints`, `CreateJob` and `GetJob` of
//! the REST-JSON API (`/2017-08-29/endpoints`, `/2017-08-29/jobs`, `/2017-08-29/jobs/{id}`), records
//! what the SDK sends and answers from a script the test controls.
//!
//! What this proves: the job settings on the wire (camelCase JSON as MediaConvert reads it:
//! HLS output group, the three renditions, AES-128 with a static key that is the custody key, or
//! SPEKE naming the title; a CMAF output group with HLS and DASH manifests and SPEKE v2 common
//! encryption, cbcs and cenc, and its MPD copied to `manifest.mpd`), endpoint discovery (once per process, then the account endpoint),
//! the source uploaded to the input bucket, progress, completion, the service's failure reason
//! in `GET /media/transcode/{fileId}`, back-off on throttling, resumption after a restart without
//! a second `CreateJob`, and a custody outage failing the job with nothing written. What it does
//! not prove: that real MediaConvert accepts these settings or writes this layout (checked
//! against the API reference, not the service), IAM, real S3 errors.
//!
//! Without moto the tests fail with instructions; `SKIP_MEDIACONVERT_TESTS=1` skips them
//! locally, never when `CI` is set.

mod common;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use axum::extract::{Path as AxPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use common::{test_config, TestApp, TestDb};
use control_plane::config::Config;
use control_plane::db::key_audit::KeyEventRecord;
use control_plane::db::now;
use control_plane::db::users::TierName;
use playback::jwt::{mint_hs256, Claims};
use serde_json::{json, Value};

const INPUT_BUCKET: &str = "cp-input";
const OUTPUT_BUCKET: &str = "cp-output";
const ROLE: &str = "arn:aws:iam::123456789012:role/MediaConvertTest";
/// Every HTTP wait in this file is bounded by this.
const WAIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// moto

fn interop_python() -> PathBuf {
    std::env::var("INTEROP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/streaming-edge-venv/bin/python")
        })
}

/// moto_server, or None when the tests should be skipped (never under CI).
fn find_moto() -> Option<PathBuf> {
    let bin = interop_python().with_file_name("moto_server");
    if bin.is_file() {
        return Some(bin);
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
    if !ci && std::env::var("SKIP_MEDIACONVERT_TESTS").is_ok_and(|v| v == "1") {
        eprintln!("SKIP_MEDIACONVERT_TESTS=1: skipping (moto_server not found)");
        return None;
    }
    panic!(
        "{} not found: install moto's server into the interop venv (scripts/lib.sh \
         ensure_interop_python, or `pip install 'moto[server]'` there), set INTEROP_PYTHON, or \
         SKIP_MEDIACONVERT_TESTS=1 to skip locally",
        bin.display()
    );
}

/// moto's server, stopped when dropped.
struct Moto {
    child: Child,
    endpoint: String,
    _log_dir: tempfile::TempDir,
}

impl Moto {
    fn start(bin: &Path) -> Moto {
        let log_dir = tempfile::tempdir().unwrap();
        let log = log_dir.path().join("moto.log");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen on {port}: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            _log_dir: log_dir,
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The SDK's default credential chain reads these (moto accepts any); no IMDS lookups.
fn aws_env() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::env::set_var("AWS_ACCESS_KEY_ID", "AKIAMEDIACONVERTTEST");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "moto-secret");
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    });
}

async fn s3_client(moto: &Moto) -> aws_sdk_s3::Client {
    aws_env();
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let conf = aws_sdk_s3::config::Builder::new()
        .http_client(http)
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::v2025_08_07())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(&moto.endpoint)
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "AKIAMEDIACONVERTTEST",
            "moto-secret",
            None,
            None,
            "test",
        ))
        .build();
    let client = aws_sdk_s3::Client::from_conf(conf);
    for bucket in [INPUT_BUCKET, OUTPUT_BUCKET] {
        client.create_bucket().bucket(bucket).send().await.unwrap();
    }
    client
}

// ---------------------------------------------------------------------------------------------
// The fake MediaConvert

/// One scripted `GetJob` answer.
#[derive(Clone, Debug)]
enum Answer {
    Status(&'static str, Option<i64>),
    Error(i64, &'static str),
    Http(u16, &'static str),
}

#[derive(Default)]
struct FakeState {
    /// (listener port, path) of every request.
    requests: Vec<(u16, String)>,
    /// Bodies of `CreateJob`, in order.
    creates: Vec<Value>,
    /// `GetJob` answers still to give; the last one repeats.
    script: VecDeque<Answer>,
    /// When set, `CreateJob` answers this service error (status, type) instead.
    refuse_create: Option<(u16, &'static str)>,
    account_port: u16,
    /// moto's S3, where a CMAF `CreateJob` gets its DASH manifest written, as the service
    /// would (the monitor copies it to `manifest.mpd`).
    s3: Option<aws_sdk_s3::Client>,
}

#[derive(Clone)]
struct Fake {
    state: Arc<Mutex<FakeState>>,
    /// Where discovery is asked (the "regional" endpoint).
    discovery_url: String,
    account_port: u16,
}

impl Fake {
    async fn start(s3: aws_sdk_s3::Client) -> Fake {
        let state = Arc::new(Mutex::new(FakeState {
            s3: Some(s3),
            ..FakeState::default()
        }));
        let discovery = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let account = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let account_port = account.local_addr().unwrap().port();
        state.lock().unwrap().account_port = account_port;
        let discovery_url = format!("http://{}", discovery.local_addr().unwrap());
        let router = Router::new()
            .route("/2017-08-29/endpoints", post(describe_endpoints))
            .route("/2017-08-29/jobs", post(create_job))
            .route("/2017-08-29/jobs/{id}", get(get_job))
            .with_state(state.clone());
        for listener in [discovery, account] {
            let router = router.clone();
            tokio::spawn(async move {
                let _ = axum::serve(listener, router).await;
            });
        }
        Fake {
            state,
            discovery_url,
            account_port,
        }
    }

    fn script(&self, answers: &[Answer]) {
        self.state
            .lock()
            .unwrap()
            .script
            .extend(answers.iter().cloned());
    }

    fn creates(&self) -> Vec<Value> {
        self.state.lock().unwrap().creates.clone()
    }

    fn requests(&self, path_prefix: &str) -> Vec<u16> {
        self.state
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|(_, p)| p.starts_with(path_prefix))
            .map(|(port, _)| *port)
            .collect()
    }
}

fn record(state: &Mutex<FakeState>, headers: &HeaderMap, path: String) {
    let port = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    state.lock().unwrap().requests.push((port, path));
}

fn service_error(status: u16, kind: &str, message: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("x-amzn-errortype", kind.to_string())],
        Json(json!({"message": message})),
    )
        .into_response()
}

async fn describe_endpoints(
    State(state): State<Arc<Mutex<FakeState>>>,
    headers: HeaderMap,
) -> Response {
    record(&state, &headers, "/2017-08-29/endpoints".into());
    let port = state.lock().unwrap().account_port;
    Json(json!({"endpoints": [{"url": format!("http://127.0.0.1:{port}")}]})).into_response()
}

async fn create_job(
    State(state): State<Arc<Mutex<FakeState>>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    record(&state, &headers, "/2017-08-29/jobs".into());
    let (id, s3) = {
        let mut s = state.lock().unwrap();
        if let Some((status, kind)) = s.refuse_create {
            return service_error(status, kind, "The role cannot be assumed by MediaConvert.");
        }
        s.creates.push(body.clone());
        (
            format!("1700000000000-job{}", s.creates.len()),
            s.s3.clone(),
        )
    };
    let cmaf = &body["settings"]["outputGroups"][0]["outputGroupSettings"]["cmafGroupSettings"];
    if let (Some(destination), Some(s3)) = (cmaf["destination"].as_str(), s3) {
        let (bucket, key) = destination
            .strip_prefix("s3://")
            .and_then(|d| d.split_once('/'))
            .unwrap();
        s3.put_object()
            .bucket(bucket)
            .key(format!("{key}.mpd"))
            .body(fake_mpd(cmaf).into_bytes().into())
            .send()
            .await
            .unwrap();
    }
    (
        StatusCode::CREATED,
        Json(json!({"job": {
            "id": id,
            "arn": format!("arn:aws:mediaconvert:us-east-1:123456789012:jobs/{id}"),
            "status": "SUBMITTED",
            "role": body["role"],
            "settings": body["settings"],
            "userMetadata": body["userMetadata"],
        }})),
    )
        .into_response()
}

/// The DASH manifest the fake "writes" for a CMAF group (names the encryption method).
fn fake_mpd(cmaf: &Value) -> String {
    format!(
        "<MPD type=\"static\"><!-- {} --></MPD>",
        cmaf["encryption"]["encryptionMethod"]
            .as_str()
            .unwrap_or("clear")
    )
}

async fn get_job(
    State(state): State<Arc<Mutex<FakeState>>>,
    headers: HeaderMap,
    AxPath(id): AxPath<String>,
) -> Response {
    record(&state, &headers, format!("/2017-08-29/jobs/{id}"));
    let mut s = state.lock().unwrap();
    let Some(index) = id
        .strip_prefix("1700000000000-job")
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| (1..=s.creates.len()).contains(n))
    else {
        return service_error(404, "NotFoundException", "The job does not exist.");
    };
    let created = s.creates[index - 1].clone();
    let answer = if s.script.len() > 1 {
        s.script.pop_front().unwrap()
    } else {
        s.script
            .front()
            .cloned()
            .unwrap_or(Answer::Status("SUBMITTED", None))
    };
    let mut job = json!({
        "id": id,
        "role": created["role"],
        "userMetadata": created["userMetadata"],
    });
    match answer {
        Answer::Status(status, percent) => {
            job["status"] = json!(status);
            if let Some(p) = percent {
                job["jobPercentComplete"] = json!(p);
            }
        }
        Answer::Error(code, message) => {
            job["status"] = json!("ERROR");
            job["errorCode"] = json!(code);
            job["errorMessage"] = json!(message);
        }
        Answer::Http(status, kind) => return service_error(status, kind, "scripted failure"),
    }
    Json(json!({ "job": job })).into_response()
}

// ---------------------------------------------------------------------------------------------
// Logs

/// Everything logged in this test binary, at every level (the SDK's too).
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: std::sync::OnceLock<Arc<Mutex<Vec<u8>>>> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || LogWriter(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        buf
    })
    .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The control plane

fn configure(c: &mut Config, fake: &Fake, moto: &Moto) {
    aws_env();
    c.transcode.backend = "mediaconvert".into();
    // The HLS AES-128 group most tests here assert; CMAF is speke_cmaf_jobs_…
    c.transcode.protection = "aes-128".into();
    c.transcode.segment_seconds = 4;
    let m = &mut c.transcode.mediaconvert;
    m.region = "us-east-1".into();
    m.endpoint_url = fake.discovery_url.clone();
    m.discover_endpoint = Some(true);
    m.role_arn = ROLE.into();
    m.input_bucket = INPUT_BUCKET.into();
    m.output_bucket = OUTPUT_BUCKET.into();
    m.s3_endpoint_url = moto.endpoint.clone();
    m.s3_force_path_style = true;
    m.poll_interval_ms = 50;
    m.max_poll_interval_ms = 400;
    // Our own back-off is what is under test: no SDK-level retries.
    m.max_attempts = 1;
    m.connect_timeout_ms = 2_000;
    m.operation_timeout_ms = 10_000;
}

/// SPEKE keys for DRM titles, from this control plane's key provider URL as MediaConvert would
/// call it.
fn use_speke(c: &mut Config) {
    let m = &mut c.transcode.mediaconvert;
    m.drm = "speke".into();
    m.speke_url = "https://cp.example/speke/v2/copyProtection".into();
    m.speke_system_ids = vec!["3ea8778f-7742-4bf9-b18b-e834b2acbd47".into()];
}

struct Setup {
    moto: Moto,
    s3: aws_sdk_s3::Client,
    fake: Fake,
}

async fn setup() -> Option<Setup> {
    let moto = Moto::start(&find_moto()?);
    let s3 = s3_client(&moto).await;
    let fake = Fake::start(s3.clone()).await;
    Some(Setup { moto, s3, fake })
}

async fn start_app(s: &Setup, db: TestDb, tweak: impl FnOnce(&mut Config)) -> TestApp {
    TestApp::start(db, |c| {
        configure(c, &s.fake, &s.moto);
        tweak(c);
    })
    .await
}

/// The HTTP API of a running control plane, as a viewer sees it.
struct Api {
    base: String,
    client: reqwest::Client,
    jwt_secret: Vec<u8>,
    issuer: String,
    audience: String,
}

impl Api {
    fn new(base: String, config: &Config) -> Api {
        Api {
            base,
            client: reqwest::Client::new(),
            jwt_secret: std::fs::read(&config.jwt.hs256_secret_file).unwrap(),
            issuer: config.jwt.issuer.clone(),
            audience: config.jwt.audience.clone(),
        }
    }

    fn of(t: &TestApp) -> Api {
        Api::new(t.base.clone(), &t.config)
    }

    fn token(&self, sub: &str) -> String {
        let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
        mint_hs256(
            &self.jwt_secret,
            &Claims {
                sub: sub.into(),
                iss: self.issuer.clone(),
                aud: self.audience.clone(),
                exp: now + 600,
                nbf: None,
                iat: Some(now),
                jti: None,
                roles: vec![],
                device_id: None,
            },
        )
    }

    async fn upload(&self, user: &str, name: &str, bytes: Vec<u8>) -> String {
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(name.to_string())
            .mime_str("video/mp4")
            .unwrap();
        let res = self
            .client
            .post(format!("{}/files/upload", self.base))
            .bearer_auth(self.token(user))
            .multipart(reqwest::multipart::Form::new().part("files", part))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let body: Value = res.json().await.unwrap();
        body["files"][0]["fileId"].as_str().unwrap().to_string()
    }

    async fn transcode(&self, user: &str, file: &str, drm: bool) {
        let res = self
            .post_transcode(user, &json!({"fileId": file, "enableDrm": drm}))
            .await;
        assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
    }

    /// `POST /media/transcode` with `body` as `user`.
    async fn post_transcode(&self, user: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}/media/transcode", self.base))
            .bearer_auth(self.token(user))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    async fn status(&self, user: &str, file: &str) -> Value {
        self.client
            .get(format!("{}/media/transcode/{file}", self.base))
            .bearer_auth(self.token(user))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Polls the status until `done` holds (bounded).
    async fn wait_status(&self, user: &str, file: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let body = self.status(user, file).await;
            if done(&body) {
                return body;
            }
            assert!(Instant::now() < deadline, "timed out; last status {body}");
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }
}

async fn audit(t: &TestApp, file: &str) -> Vec<KeyEventRecord> {
    t.app
        .db
        .list_key_events(Some(file.parse().unwrap()), None, 100)
        .await
        .unwrap()
}

fn source_bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn static_key_job_runs_to_completion() {
    let logs = captured_logs();
    let Some(s) = setup().await else { return };
    for db in TestDb::all().await {
        let label = db.label;
        let t = start_app(&s, db, |_| {}).await;
        let api = Api::of(&t);
        t.app
            .db
            .subscribe("alice", TierName::Pro, now())
            .await
            .unwrap();
        let bytes = source_bytes(300_000);
        let file = api.upload("alice", "clip.mp4", bytes.clone()).await;
        let creates_before = s.fake.creates().len();
        s.fake.script(&[Answer::Status("PROGRESSING", Some(40))]);
        api.transcode("alice", &file, true).await;

        let body = api
            .wait_status("alice", &file, |b| b["progress"] == 40)
            .await;
        assert_eq!(body["status"], "processing", "{label}: {body}");
        assert!(body["hlsManifestUrl"].is_null());

        // What went over the wire.
        let creates = s.fake.creates();
        assert_eq!(creates.len(), creates_before + 1, "{label}");
        let create = creates.last().unwrap();
        assert_eq!(create["role"], ROLE);
        assert_eq!(create["statusUpdateInterval"], "SECONDS_10");
        assert!(create["clientRequestToken"].is_string());
        assert_eq!(create["userMetadata"]["fileId"], file.as_str());
        let settings = &create["settings"];
        let input = format!("s3://{INPUT_BUCKET}/uploads/{file}/source.mp4");
        assert_eq!(settings["inputs"][0]["fileInput"], input.as_str());
        assert_eq!(
            settings["inputs"][0]["audioSelectors"]["Audio Selector 1"]["defaultSelection"],
            "DEFAULT"
        );
        let groups = settings["outputGroups"].as_array().unwrap();
        assert_eq!(groups.len(), 1);
        let group = &groups[0]["outputGroupSettings"];
        assert_eq!(group["type"], "HLS_GROUP_SETTINGS");
        let hls = &group["hlsGroupSettings"];
        assert_eq!(
            hls["destination"],
            format!("s3://{OUTPUT_BUCKET}/hls/{file}/master").as_str()
        );
        assert_eq!(hls["segmentLength"], 4);
        let enc = &hls["encryption"];
        assert_eq!(enc["encryptionMethod"], "AES128");
        assert_eq!(enc["type"], "STATIC_KEY");
        assert!(enc.get("spekeKeyProvider").is_none());
        let provider = &enc["staticKeyProvider"];
        let key_hex = provider["staticKeyValue"].as_str().unwrap();
        assert_eq!(key_hex.len(), 32);
        assert!(key_hex.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(provider["keyFormat"], "identity");
        let key_id = create["userMetadata"]["keyId"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            provider["url"],
            format!("{}/keys/{file}/{key_id}", t.config.edge_base()).as_str()
        );
        let outputs = groups[0]["outputs"].as_array().unwrap();
        let shape: Vec<(String, i64, i64, String, String)> = outputs
            .iter()
            .map(|o| {
                let v = &o["videoDescription"];
                (
                    o["nameModifier"].as_str().unwrap().to_string(),
                    v["width"].as_i64().unwrap(),
                    v["height"].as_i64().unwrap(),
                    v["codecSettings"]["codec"].as_str().unwrap().to_string(),
                    o["containerSettings"]["container"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                )
            })
            .collect();
        let expect = |m: &str, w, h| (m.to_string(), w, h, "H_264".to_string(), "M3U8".to_string());
        assert_eq!(
            shape,
            vec![
                expect("_1080p", 1920, 1080),
                expect("_720p", 1280, 720),
                expect("_480p", 854, 480)
            ]
        );
        let h264 = &outputs[0]["videoDescription"]["codecSettings"]["h264Settings"];
        assert_eq!(h264["rateControlMode"], "QVBR");
        assert_eq!(h264["maxBitrate"], 5_000_000);
        assert_eq!(
            outputs[0]["audioDescriptions"][0]["codecSettings"]["codec"],
            "AAC"
        );

        // The key in the job is the one custody made, stored wrapped, and audited.
        let stored = t
            .app
            .db
            .content_key(file.parse().unwrap(), key_id.parse().unwrap())
            .await
            .unwrap()
            .expect("the key row is written before CreateJob");
        let opened = t
            .app
            .custody
            .unwrap(&file, &key_id, &stored.content_key)
            .await
            .unwrap();
        assert_eq!(hex::encode(opened.bytes()), key_hex);
        let events = audit(&t, &file).await;
        assert!(
            events.iter().any(|e| e.actor == "transcode"
                && e.action == "generate"
                && e.ok
                && e.key_id.map(|k| k.to_string()) == Some(key_id.clone())),
            "{events:?}"
        );

        // The source is in the input bucket, byte for byte.
        let object =
            s.s3.get_object()
                .bucket(INPUT_BUCKET)
                .key(format!("uploads/{file}/source.mp4"))
                .send()
                .await
                .unwrap();
        assert_eq!(object.body.collect().await.unwrap().to_vec(), bytes);

        // The job knows MediaConvert's id and where the output goes.
        let job = t
            .app
            .db
            .latest_job_for_file(file.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(job.job_id.as_deref().is_some_and(|j| j.contains("-job")));
        assert_eq!(
            job.output_prefix.as_deref(),
            Some(format!("s3://{OUTPUT_BUCKET}/hls/{file}/").as_str())
        );

        s.fake.script(&[Answer::Status("COMPLETE", Some(100))]);
        let body = api
            .wait_status("alice", &file, |b| b["status"] != "processing")
            .await;
        assert_eq!(body["status"], "completed", "{label}: {body}");
        assert_eq!(body["progress"], 100);
        assert_eq!(
            body["hlsManifestUrl"],
            format!("{}/playback/{file}/manifest", t.config.edge_base()).as_str()
        );
        let f = t.app.db.file(file.parse().unwrap()).await.unwrap().unwrap();
        assert!(f.drm_protected);
        assert_eq!(f.content_key_id.map(|k| k.to_string()), Some(key_id));
        // The key went over the wire but into no log line, at any level.
        let logged = String::from_utf8_lossy(&logs.lock().unwrap()).to_lowercase();
        assert!(logged.contains("mediaconvert job created"), "logs captured");
        // The SDK's wire-level trace (response bodies) was on, so this proves something.
        assert!(
            logged.contains("read http response body"),
            "SDK trace captured"
        );
        let leaks: Vec<String> = logged
            .lines()
            .filter(|l| l.contains(key_hex))
            .map(|l| l.replace(key_hex, "<KEY>").chars().take(600).collect())
            .collect();
        assert!(
            leaks.is_empty(),
            "{label}: the content key was logged: {leaks:#?}"
        );
        s.fake.state.lock().unwrap().script.clear();
    }
    // Discovery once per process (one per database run here), job calls on the account
    // endpoint only.
    let runs = s.fake.creates().len();
    assert_eq!(s.fake.requests("/2017-08-29/endpoints").len(), runs);
    let job_ports = s.fake.requests("/2017-08-29/jobs");
    assert!(!job_ports.is_empty());
    assert!(job_ports.iter().all(|p| *p == s.fake.account_port));
}

#[tokio::test]
async fn a_failed_job_reports_the_service_reason() {
    let Some(s) = setup().await else { return };
    let t = start_app(&s, TestDb::sqlite().await, |_| {}).await;
    let api = Api::of(&t);
    t.app
        .db
        .subscribe("bob", TierName::Pro, now())
        .await
        .unwrap();
    let file = api.upload("bob", "broken.mp4", source_bytes(1000)).await;
    s.fake.script(&[
        Answer::Status("PROGRESSING", Some(5)),
        Answer::Error(
            1030,
            "Unable to open input file [s3://cp-input/x]: [Failed probe/open]",
        ),
    ]);
    api.transcode("bob", &file, true).await;
    let body = api
        .wait_status("bob", &file, |b| b["status"] != "processing")
        .await;
    assert_eq!(body["status"], "failed", "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("error 1030"), "{error}");
    assert!(error.contains("Unable to open input file"), "{error}");
    assert!(body["hlsManifestUrl"].is_null());
    // The key made for it is gone again (the audit record of its generation stays).
    let keys = t
        .app
        .db
        .content_keys_for(file.parse().unwrap())
        .await
        .unwrap();
    assert!(keys.is_empty(), "{keys:?}");
    assert_eq!(audit(&t, &file).await.len(), 1);
    let f = t.app.db.file(file.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(f.transcoding_status, "failed");
}

#[tokio::test]
async fn throttled_polls_back_off_then_succeed() {
    let Some(s) = setup().await else { return };
    let t = start_app(&s, TestDb::sqlite().await, |_| {}).await;
    let api = Api::of(&t);
    let file = api.upload("carol", "clip.mp4", source_bytes(2000)).await;
    s.fake.script(&[
        Answer::Http(429, "TooManyRequestsException"),
        Answer::Http(429, "TooManyRequestsException"),
        Answer::Http(429, "TooManyRequestsException"),
        Answer::Http(500, "InternalServerErrorException"),
        Answer::Status("COMPLETE", None),
    ]);
    let started = Instant::now();
    api.transcode("carol", &file, false).await;
    let body = api
        .wait_status("carol", &file, |b| b["status"] != "processing")
        .await;
    let elapsed = started.elapsed();
    assert_eq!(body["status"], "completed", "{body}");
    // Four failures back off 100 + 200 + 400 + 400 ms (50 ms doubling, 400 ms ceiling).
    assert!(elapsed >= Duration::from_millis(1_000), "{elapsed:?}");
    let polls = s.fake.requests("/2017-08-29/jobs/").len();
    assert_eq!(polls, 5, "one poll per scripted answer");
    // A clear title: no encryption in the job, no key.
    let create = &s.fake.creates()[0];
    assert!(
        create["settings"]["outputGroups"][0]["outputGroupSettings"]["hlsGroupSettings"]
            .get("encryption")
            .is_none()
    );
    let f = t.app.db.file(file.parse().unwrap()).await.unwrap().unwrap();
    assert!(!f.drm_protected && f.content_key_id.is_none());
}

// Multi-threaded: the fake MediaConvert keeps answering while the first "process" runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_watching_without_a_second_create_job() {
    let Some(s) = setup().await else { return };
    let db = TestDb::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path(), &db.url);
    configure(&mut config, &s.fake, &s.moto);
    config.validate().unwrap();
    s.fake.script(&[Answer::Status("PROGRESSING", Some(30))]);

    // First process: its own runtime, dropped mid-job like a killed process.
    let first = config.clone();
    let file = tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let file = rt.block_on(async move {
            let (router, _app) = control_plane::server::build(first.clone()).await.unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(control_plane::server::serve(
                listener,
                router,
                std::future::pending(),
            ));
            let api = Api::new(base, &first);
            let file = api.upload("dave", "clip.mp4", source_bytes(5000)).await;
            api.transcode("dave", &file, false).await;
            api.wait_status("dave", &file, |b| b["progress"] == 30)
                .await;
            file
        });
        rt.shutdown_timeout(Duration::from_secs(5));
        file
    })
    .await
    .unwrap();
    assert_eq!(s.fake.creates().len(), 1);
    let polls_before = s.fake.requests("/2017-08-29/jobs/").len();

    // Second process on the same database: resumes the job at start-up.
    let t = TestApp::start_with(db, dir, config).await;
    let api = Api::of(&t);
    let job = t
        .app
        .db
        .latest_job_for_file(file.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.status, "processing");
    assert_eq!(job.attempts, 1);
    let deadline = Instant::now() + WAIT;
    while s.fake.requests("/2017-08-29/jobs/").len() == polls_before {
        assert!(Instant::now() < deadline, "the new process never polled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.fake.script(&[Answer::Status("COMPLETE", Some(100))]);
    let body = api
        .wait_status("dave", &file, |b| b["status"] != "processing")
        .await;
    assert_eq!(body["status"], "completed", "{body}");
    assert_eq!(s.fake.creates().len(), 1, "no second CreateJob");
    let job = t
        .app
        .db
        .latest_job_for_file(file.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.attempts, 1, "resuming is not a new attempt");
    // Each process discovered the endpoint once.
    assert_eq!(s.fake.requests("/2017-08-29/endpoints").len(), 2);
}

#[tokio::test]
async fn custody_down_fails_the_job_with_nothing_written() {
    let Some(s) = setup().await else { return };
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let token_dir = tempfile::tempdir().unwrap();
    let token_file = token_dir.path().join("openbao-token");
    std::fs::write(&token_file, "s.not-a-real-token").unwrap();
    let t = start_app(&s, TestDb::sqlite().await, |c| {
        c.keys.backend = "openbao".into();
        c.keys.openbao.address = format!("http://127.0.0.1:{closed}");
        c.keys.openbao.key = "content-keys".into();
        c.keys.openbao.token_file = token_file.clone();
        c.keys.openbao.connect_timeout_ms = 500;
        c.keys.openbao.request_timeout_ms = 1000;
    })
    .await;
    let api = Api::of(&t);
    t.app
        .db
        .subscribe("erin", TierName::Pro, now())
        .await
        .unwrap();
    let file = api.upload("erin", "clip.mp4", source_bytes(1000)).await;
    api.transcode("erin", &file, true).await;
    let body = api
        .wait_status("erin", &file, |b| b["status"] != "processing")
        .await;
    assert_eq!(body["status"], "failed", "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("custody"), "{error}");
    assert!(error.contains("openbao"), "{error}");
    // Nothing half-written: no key row, no upload, no job at MediaConvert.
    let keys = t
        .app
        .db
        .content_keys_for(file.parse().unwrap())
        .await
        .unwrap();
    assert!(keys.is_empty());
    assert!(s.fake.creates().is_empty());
    let head =
        s.s3.head_object()
            .bucket(INPUT_BUCKET)
            .key(format!("uploads/{file}/source.mp4"))
            .send()
            .await;
    assert!(head.is_err(), "the source was uploaded anyway");
    // The failed generation is in the audit trail.
    let events = audit(&t, &file).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(!events[0].ok && events[0].action == "generate" && events[0].backend == "openbao");
}

#[tokio::test]
async fn speke_jobs_name_the_title_and_the_key_provider() {
    let Some(s) = setup().await else { return };
    let t = start_app(&s, TestDb::sqlite().await, |c| {
        use_speke(c);
        let m = &mut c.transcode.mediaconvert;
        m.speke_certificate_arn = "arn:aws:acm:us-east-1:123456789012:certificate/0000-test".into();
        c.transcode.renditions = vec![720, 480];
    })
    .await;
    let api = Api::of(&t);
    t.app
        .db
        .subscribe("frank", TierName::Enterprise, now())
        .await
        .unwrap();
    let file = api.upload("frank", "clip.mov", source_bytes(1000)).await;
    s.fake.script(&[Answer::Status("COMPLETE", Some(100))]);
    api.transcode("frank", &file, true).await;
    let body = api
        .wait_status("frank", &file, |b| b["status"] != "processing")
        .await;
    assert_eq!(body["status"], "completed", "{body}");
    let create = &s.fake.creates()[0];
    let settings = &create["settings"];
    assert_eq!(
        settings["inputs"][0]["fileInput"],
        format!("s3://{INPUT_BUCKET}/uploads/{file}/source.mov").as_str()
    );
    let enc = &settings["outputGroups"][0]["outputGroupSettings"]["hlsGroupSettings"]["encryption"];
    assert_eq!(enc["encryptionMethod"], "AES128");
    assert_eq!(enc["type"], "SPEKE");
    assert!(enc.get("staticKeyProvider").is_none());
    let speke = &enc["spekeKeyProvider"];
    assert_eq!(speke["resourceId"], file.as_str());
    assert_eq!(speke["url"], "https://cp.example/speke/v2/copyProtection");
    assert_eq!(
        speke["systemIds"],
        json!(["3ea8778f-7742-4bf9-b18b-e834b2acbd47"])
    );
    assert_eq!(
        speke["certificateArn"],
        "arn:aws:acm:us-east-1:123456789012:certificate/0000-test"
    );
    let heights: Vec<i64> = settings["outputGroups"][0]["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["videoDescription"]["height"].as_i64().unwrap())
        .collect();
    assert_eq!(heights, vec![720, 480]);
    assert!(create["userMetadata"].get("keyId").is_none());
    // Keys come from the SPEKE provider: none drawn here.
    assert!(audit(&t, &file).await.is_empty());
    let f = t.app.db.file(file.parse().unwrap()).await.unwrap().unwrap();
    assert!(f.drm_protected && f.content_key_id.is_none());
}

/// `cbcs` (the default of `transcode.protection`) and `cenc` per title: one CMAF output group
/// with HLS and DASH manifests, SPEKE v2 naming the title, the DASH and HLS system ids, the
/// shared presets; the MPD MediaConvert writes (`master.mpd`, which the fake puts into moto's
/// bucket as the service would) is copied to `manifest.mpd` before the title is published.
#[tokio::test]
async fn speke_cmaf_jobs_write_hls_and_dash_with_common_encryption() {
    let Some(s) = setup().await else { return };
    let t = start_app(&s, TestDb::sqlite().await, |c| {
        c.transcode.protection = "cbcs".into();
        use_speke(c);
        c.transcode.renditions = vec![720, 480];
    })
    .await;
    let api = Api::of(&t);
    t.app
        .db
        .subscribe("ivan", TierName::Enterprise, now())
        .await
        .unwrap();
    for (n, (protection, method, hls_system)) in [
        ("cbcs", "SAMPLE_AES", "94ce86fb-07ff-4f43-adb8-93d2fa968ca2"),
        ("cenc", "AES_CTR", "edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"),
    ]
    .into_iter()
    .enumerate()
    {
        let file = api.upload("ivan", "clip.mp4", source_bytes(1000)).await;
        s.fake.script(&[Answer::Status("COMPLETE", Some(100))]);
        let body = if protection == "cbcs" {
            json!({"fileId": file, "enableDrm": true})
        } else {
            json!({"fileId": file, "enableDrm": true, "protection": protection})
        };
        let res = api.post_transcode("ivan", &body).await;
        assert_eq!(res.status(), 202, "{protection}");
        let status = api
            .wait_status("ivan", &file, |b| b["status"] != "processing")
            .await;
        assert_eq!(status["status"], "completed", "{protection}: {status}");

        let create = &s.fake.creates()[n];
        let group = &create["settings"]["outputGroups"][0];
        assert_eq!(group["outputGroupSettings"]["type"], "CMAF_GROUP_SETTINGS");
        let cmaf = &group["outputGroupSettings"]["cmafGroupSettings"];
        assert_eq!(
            cmaf["destination"],
            format!("s3://{OUTPUT_BUCKET}/hls/{file}/master")
        );
        assert_eq!(cmaf["writeHlsManifest"], "ENABLED");
        assert_eq!(cmaf["writeDashManifest"], "ENABLED");
        assert_eq!(cmaf["segmentLength"], 4);
        let enc = &cmaf["encryption"];
        assert_eq!(enc["encryptionMethod"], method, "{protection}");
        assert_eq!(enc["type"], "SPEKE");
        let speke = &enc["spekeKeyProvider"];
        assert_eq!(speke["resourceId"], file.as_str());
        assert_eq!(speke["url"], "https://cp.example/speke/v2/copyProtection");
        assert_eq!(
            speke["dashSignaledSystemIds"],
            json!([
                "edef8ba9-79d6-4ace-a3c8-27dcd51d21ed",
                "9a04f079-9840-4286-ab92-e65be0885f95",
                "1077efec-c0b2-4d02-ace3-3c1e52e2fb4b"
            ])
        );
        assert_eq!(speke["hlsSignaledSystemIds"], json!([hls_system]));
        assert_eq!(
            speke["encryptionContractConfiguration"],
            json!({"spekeAudioPreset": "SHARED", "spekeVideoPreset": "SHARED"})
        );
        let outputs = group["outputs"].as_array().unwrap();
        let names: Vec<&str> = outputs
            .iter()
            .map(|o| o["nameModifier"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["_720p", "_480p", "_audio"]);
        assert!(outputs
            .iter()
            .all(|o| o["containerSettings"]["container"] == "CMFC"));
        assert_eq!(outputs[0]["videoDescription"]["height"], 720);
        assert!(outputs[2].get("videoDescription").is_none());
        assert_eq!(
            outputs[2]["audioDescriptions"][0]["codecSettings"]["codec"],
            "AAC"
        );

        // The MPD the service wrote is where the edge looks for it.
        let mpd = format!("<MPD type=\"static\"><!-- {method} --></MPD>");
        let copied =
            s.s3.get_object()
                .bucket(OUTPUT_BUCKET)
                .key(format!("hls/{file}/manifest.mpd"))
                .send()
                .await
                .unwrap();
        let bytes = copied.body.collect().await.unwrap().into_bytes();
        assert_eq!(bytes.as_ref(), mpd.as_bytes());
        // Keys come from SPEKE: none drawn here; the title is encrypted.
        assert!(audit(&t, &file).await.is_empty());
        let f = t.app.db.file(file.parse().unwrap()).await.unwrap().unwrap();
        assert!(f.drm_protected && f.encrypted_at.is_some() && f.content_key_id.is_none());
    }

    // cbcs with static keys is refused per title, naming SPEKE.
    let t2 = start_app(&s, TestDb::sqlite().await, |_| {}).await;
    let api2 = Api::of(&t2);
    t2.app
        .db
        .subscribe("ivan", TierName::Enterprise, now())
        .await
        .unwrap();
    let file = api2.upload("ivan", "clip.mp4", source_bytes(10)).await;
    let res = api2
        .post_transcode(
            "ivan",
            &json!({"fileId": file, "enableDrm": true, "protection": "cbcs"}),
        )
        .await;
    assert_eq!(res.status(), 400);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["error"], "protection_unsupported", "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("speke"));
}

#[test]
fn configuration_is_refused_with_the_key_named() {
    let base = || {
        let mut c = Config::default();
        c.transcode.backend = "mediaconvert".into();
        c.transcode.protection = "aes-128".into();
        let m = &mut c.transcode.mediaconvert;
        m.role_arn = ROLE.into();
        m.input_bucket = INPUT_BUCKET.into();
        m.output_bucket = OUTPUT_BUCKET.into();
        c
    };
    base().validate().unwrap();
    Config::default().validate().unwrap();
    type Breaks = Box<dyn Fn(&mut Config)>;
    let cases: Vec<(&str, Breaks)> = vec![
        (
            "transcode.backend",
            Box::new(|c| c.transcode.backend = "elastic".into()),
        ),
        (
            "transcode.mediaconvert.role_arn",
            Box::new(|c| c.transcode.mediaconvert.role_arn.clear()),
        ),
        (
            "transcode.mediaconvert.role_arn",
            Box::new(|c| c.transcode.mediaconvert.role_arn = "MediaConvertRole".into()),
        ),
        (
            "transcode.mediaconvert.input_bucket",
            Box::new(|c| c.transcode.mediaconvert.input_bucket.clear()),
        ),
        (
            "transcode.mediaconvert.output_bucket",
            Box::new(|c| c.transcode.mediaconvert.output_bucket = "Bad_Bucket".into()),
        ),
        (
            "transcode.mediaconvert.output_prefix",
            Box::new(|c| c.transcode.mediaconvert.output_prefix = "../hls/".into()),
        ),
        (
            "transcode.mediaconvert.input_prefix",
            Box::new(|c| c.transcode.mediaconvert.input_prefix = "uploads".into()),
        ),
        (
            "transcode.mediaconvert.endpoint_url",
            Box::new(|c| c.transcode.mediaconvert.endpoint_url = "ftp://x".into()),
        ),
        (
            "transcode.mediaconvert.s3_endpoint_url",
            Box::new(|c| c.transcode.mediaconvert.s3_endpoint_url = "localhost:9000".into()),
        ),
        (
            "transcode.mediaconvert.queue",
            Box::new(|c| c.transcode.mediaconvert.queue = "Default".into()),
        ),
        (
            "transcode.mediaconvert.drm",
            Box::new(|c| c.transcode.mediaconvert.drm = "fairplay".into()),
        ),
        (
            // CMAF common encryption needs SPEKE: static keys make AES-128 HLS only.
            "transcode.protection",
            Box::new(|c| c.transcode.protection = "cbcs".into()),
        ),
        (
            "transcode.mediaconvert.speke_url",
            Box::new(|c| c.transcode.mediaconvert.drm = "speke".into()),
        ),
        (
            "transcode.mediaconvert.speke_system_ids",
            Box::new(|c| {
                c.transcode.mediaconvert.drm = "speke".into();
                c.transcode.mediaconvert.speke_url = "https://cp.example/speke".into();
                c.transcode.mediaconvert.speke_system_ids = vec!["widevine".into()];
            }),
        ),
        (
            "transcode.mediaconvert.poll_interval_ms",
            Box::new(|c| c.transcode.mediaconvert.poll_interval_ms = 0),
        ),
        (
            "transcode.mediaconvert.poll_interval_ms",
            Box::new(|c| c.transcode.mediaconvert.max_poll_interval_ms = 10),
        ),
        (
            "transcode.mediaconvert.part_size_bytes",
            Box::new(|c| c.transcode.mediaconvert.part_size_bytes = 1024),
        ),
        (
            "transcode.mediaconvert.max_attempts",
            Box::new(|c| c.transcode.mediaconvert.max_attempts = 0),
        ),
    ];
    for (key, breaks) in cases {
        let mut c = base();
        breaks(&mut c);
        let err = c.validate().expect_err(key).to_string();
        assert!(err.starts_with(&format!("{key}:")), "{key}: {err}");
    }
    // ffmpeg (the default) needs none of it.
    let mut c = Config::default();
    c.transcode.mediaconvert.role_arn = "nonsense".into();
    c.validate().unwrap();
}

#[tokio::test]
async fn large_sources_are_uploaded_in_parts() {
    let Some(s) = setup().await else { return };
    let t = start_app(&s, TestDb::sqlite().await, |c| {
        c.transcode.mediaconvert.multipart_threshold_bytes = 6 * 1024 * 1024;
        c.transcode.mediaconvert.part_size_bytes = 5 * 1024 * 1024;
        c.storage.max_upload_bytes = 64 * 1024 * 1024;
    })
    .await;
    let api = Api::of(&t);
    let bytes = source_bytes(12 * 1024 * 1024 + 123);
    let file = api.upload("gina", "big.mp4", bytes.clone()).await;
    s.fake.script(&[Answer::Status("COMPLETE", Some(100))]);
    api.transcode("gina", &file, false).await;
    let body = api
        .wait_status("gina", &file, |b| b["status"] != "processing")
        .await;
    assert_eq!(body["status"], "completed", "{body}");
    let object =
        s.s3.get_object()
            .bucket(INPUT_BUCKET)
            .key(format!("uploads/{file}/source.mp4"))
            .send()
            .await
            .unwrap();
    // A multipart ETag ends in -{parts}.
    assert!(
        object
            .e_tag()
            .is_some_and(|e| e.trim_matches('"').ends_with("-3")),
        "{:?}",
        object.e_tag()
    );
    assert_eq!(object.body.collect().await.unwrap().to_vec(), bytes);
}

#[tokio::test]
async fn refused_calls_fail_the_job_with_the_service_message() {
    let Some(s) = setup().await else { return };
    let t = start_app(&s, TestDb::sqlite().await, |_| {}).await;
    let api = Api::of(&t);
    t.app
        .db
        .subscribe("hank", TierName::Pro, now())
        .await
        .unwrap();

    // CreateJob refused (403): failed at once, with the key made for it discarded.
    s.fake.state.lock().unwrap().refuse_create = Some((403, "ForbiddenException"));
    let file = api.upload("hank", "a.mp4", source_bytes(1000)).await;
    api.transcode("hank", &file, true).await;
    let body = api
        .wait_status("hank", &file, |b| b["status"] != "processing")
        .await;
    assert_eq!(body["status"], "failed", "{body}");
    assert_eq!(
        body["error"],
        "MediaConvert CreateJob: ForbiddenException: The role cannot be assumed by MediaConvert."
    );
    let keys = t
        .app
        .db
        .content_keys_for(file.parse().unwrap())
        .await
        .unwrap();
    assert!(keys.is_empty(), "{keys:?}");
    assert_eq!(
        s.fake.requests("/2017-08-29/jobs").len(),
        1,
        "a 403 is not retried"
    );

    // GetJob answering 404 (the job is gone): failed, not retried forever.
    s.fake.state.lock().unwrap().refuse_create = None;
    s.fake.script(&[Answer::Http(404, "NotFoundException")]);
    let file = api.upload("hank", "b.mp4", source_bytes(1000)).await;
    api.transcode("hank", &file, false).await;
    let body = api
        .wait_status("hank", &file, |b| b["status"] != "processing")
        .await;
    assert_eq!(body["status"], "failed", "{body}");
    assert_eq!(
        body["error"],
        "MediaConvert GetJob: NotFoundException: scripted failure"
    );
}
