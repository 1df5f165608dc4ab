//! The API's promises about its own answers, on SQLite and (with `DATABASE_URL`) Postgres:
//!
//! - every operation of `/openapi.json`, called without credentials, with a viewer's (not an
//!   admin's) JWT, with an unknown or malformed id, with an empty, wrongly typed or oversized
//!   body, answers only statuses the operation declares, each error as the declared format
//!   (`{"error","message"}` JSON unless the document says otherwise) and never a 5xx;
//! - JSON bodies are held to their endpoint's limit (413 `payload_too_large`), declared or
//!   streamed;
//! - an upload the client abandons part-way is a 400 `upload_aborted` logged at info, with no
//!   error logged and the partial file removed.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{TestApp, TestDb};
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

const SPEKE_CREDENTIAL: &str = "contract-speke-credential-0123456789abcdef";
/// Larger than every body limit: JSON (≤ 1 MiB), SPEKE (256 KiB), uploads (1 MiB here).
const OVERSIZED: usize = 1536 * 1024;

async fn start(db: TestDb, root: &std::path::Path) -> TestApp {
    let credential = root.join("speke-credential");
    std::fs::write(&credential, SPEKE_CREDENTIAL).unwrap();
    TestApp::start(db, |c| {
        c.speke.enabled = true;
        c.speke.credential_file = credential.clone();
        c.storage.max_upload_bytes = 1024 * 1024;
    })
    .await
}

/// How a call authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Credentials {
    None,
    Viewer,
    /// The operation's own scheme: an admin JWT, the service token or the SPEKE credential.
    Granted,
}

/// What a call sends as its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    None,
    /// An empty JSON object, in the operation's content type.
    Empty,
    /// Plain text where the operation takes something else.
    WrongType,
    /// [`OVERSIZED`] bytes in the operation's content type.
    Oversized,
}

/// One documented operation.
struct Operation {
    method: String,
    path: String,
    doc: Value,
}

impl Operation {
    fn scheme(&self) -> Option<String> {
        let first = self.doc["security"].as_array()?.first()?.as_object()?;
        first.keys().next().cloned()
    }

    fn body_type(&self) -> Option<String> {
        let content = self.doc["requestBody"]["content"].as_object()?;
        content.keys().next().cloned()
    }

    /// The path with every parameter replaced by `id`.
    fn concrete(&self, id: &str) -> String {
        self.path
            .split('/')
            .map(|seg| if seg.starts_with('{') { id } else { seg })
            .collect::<Vec<_>>()
            .join("/")
    }
}

fn operations(doc: &Value) -> Vec<Operation> {
    let mut out = vec![];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            out.push(Operation {
                method: method.clone(),
                path: path.clone(),
                doc: op.clone(),
            });
        }
    }
    out
}

fn build(
    t: &TestApp,
    op: &Operation,
    path: &str,
    creds: Credentials,
    body: BodyKind,
) -> RequestBuilder {
    let method = Method::from_bytes(op.method.to_uppercase().as_bytes()).unwrap();
    let mut req = t.client.request(method, t.url(path));
    let token = match (creds, op.scheme().as_deref()) {
        (Credentials::None, _) | (_, None) => None,
        (Credentials::Viewer, _) => Some(t.token("contract-viewer")),
        (Credentials::Granted, Some("bearer")) => Some(t.admin_token("contract-admin")),
        (Credentials::Granted, Some("edge_token")) => Some(t.service_token()),
        (Credentials::Granted, Some("speke")) => Some(SPEKE_CREDENTIAL.to_string()),
        (Credentials::Granted, Some(other)) => panic!("unknown security scheme {other}"),
    };
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if op.path.starts_with("/speke/") {
        req = req.header("X-Speke-Version", "2.0");
    }
    let Some(content_type) = op.body_type() else {
        return req;
    };
    match body {
        BodyKind::None => req,
        BodyKind::Empty => req.header(CONTENT_TYPE, content_type).body("{}"),
        BodyKind::WrongType => req.header(CONTENT_TYPE, "text/plain").body("hello"),
        BodyKind::Oversized => {
            let content_type = if content_type == "multipart/form-data" {
                "multipart/form-data; boundary=XYZ".to_string()
            } else {
                content_type
            };
            req.header(CONTENT_TYPE, content_type).body(oversized())
        }
    }
}

fn oversized() -> Vec<u8> {
    let mut body = b"{\"pad\": \"".to_vec();
    body.resize(OVERSIZED, b'a');
    body.extend_from_slice(b"\"}");
    body
}

/// Checks one answer against the operation's declared responses.
fn check(op: &Operation, what: &str, status: u16, content_type: &str, text: &str) {
    let label = format!("{} {} ({what})", op.method.to_uppercase(), op.path);
    assert!(status < 500, "{label}: {status} {text}");
    let responses = op.doc["responses"].as_object().unwrap();
    let Some(declared) = responses.get(&status.to_string()) else {
        panic!("{label}: answered {status}, which the operation does not declare: {text}");
    };
    if status < 400 {
        return;
    }
    let contents = declared["content"].as_object();
    if contents.is_some_and(|c| c.contains_key("application/json")) {
        assert_eq!(
            declared["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorResponse",
            "{label}: {status} is declared without the error schema"
        );
        assert!(
            content_type.starts_with("application/json"),
            "{label}: {status} {content_type}"
        );
        let body: Value = serde_json::from_str(text)
            .unwrap_or_else(|_| panic!("{label}: {status} is not JSON: {text}"));
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{label}: {body}"
        );
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{label}: {body}"
        );
    } else {
        let declared_types: Vec<&String> = contents.map(|c| c.keys().collect()).unwrap_or_default();
        assert!(
            declared_types
                .iter()
                .any(|ct| content_type.starts_with(ct.as_str())),
            "{label}: {status} answered {content_type}, declared {declared_types:?}: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_answers_only_what_it_declares() {
    for db in TestDb::all().await {
        let root = tempfile::tempdir().unwrap();
        let t = start(db, root.path()).await;
        let doc: Value = t
            .client
            .get(t.url("/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ops = operations(&doc);
        assert!(ops.len() >= 40, "only {} operations", ops.len());
        let unknown = Uuid::new_v4().to_string();
        let mut calls = 0;
        for op in &ops {
            let mut variants = vec![
                (Credentials::None, BodyKind::None, unknown.as_str()),
                (Credentials::Viewer, BodyKind::None, unknown.as_str()),
                (Credentials::Granted, BodyKind::None, unknown.as_str()),
                (Credentials::Granted, BodyKind::None, "not-an-id"),
            ];
            if op.body_type().is_some() {
                for body in [BodyKind::Empty, BodyKind::WrongType, BodyKind::Oversized] {
                    variants.push((Credentials::Granted, body, unknown.as_str()));
                    variants.push((Credentials::Viewer, body, unknown.as_str()));
                }
            }
            for (creds, body, id) in variants {
                let path = op.concrete(id);
                let res = build(&t, op, &path, creds, body).send().await.unwrap();
                let status = res.status().as_u16();
                let content_type = res
                    .headers()
                    .get(CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let text = res.text().await.unwrap();
                let what = format!("{} {creds:?} {body:?} {path}", t.db.label);
                check(op, &what, status, &content_type, &text);
                calls += 1;
            }
        }
        assert!(calls >= 200, "{calls} calls");
    }
}

#[tokio::test]
async fn admin_operations_declare_the_admin_role_and_refuse_viewers() {
    let root = tempfile::tempdir().unwrap();
    let t = start(TestDb::sqlite().await, root.path()).await;
    let doc = serde_json::to_value(control_plane::api::openapi_document()).unwrap();
    let mut admin_ops = 0;
    for op in operations(&doc) {
        let admin = op.doc["security"] == json!([{"bearer": ["admin"]}]);
        if op.path.starts_with("/admin/") {
            assert!(
                admin,
                "{} {} lacks the admin role in its security",
                op.method, op.path
            );
        }
        if op.scheme().as_deref() != Some("bearer") {
            continue;
        }
        let path = op.concrete(&Uuid::new_v4().to_string());
        let res = build(&t, &op, &path, Credentials::Viewer, BodyKind::Empty)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        // A viewer is refused for lack of the role exactly where the document says so.
        assert_eq!(
            body["error"] == "admin_required",
            admin,
            "{} {}: {status} {body}",
            op.method,
            op.path
        );
        if admin {
            assert_eq!(status, 403, "{} {}", op.method, op.path);
            admin_ops += 1;
        }
    }
    assert!(admin_ops >= 13, "only {admin_ops} admin operations");
}

#[tokio::test]
async fn json_bodies_are_held_to_their_limits() {
    for db in TestDb::all().await {
        let label = db.label;
        let root = tempfile::tempdir().unwrap();
        let t = start(db, root.path()).await;
        let token = t.token("limits-viewer");
        // The outside tester's case: a megabyte `fileId` no longer reaches the handler.
        let body = json!({"fileId": "f".repeat(1_000_000), "enableDrm": false});
        let res = t
            .client
            .post(t.url("/media/transcode"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 413, "{label}");
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["error"], "payload_too_large", "{label}: {v}");
        assert!(
            v["message"].as_str().unwrap().contains("4096 bytes"),
            "{label}: {v}"
        );

        // Streamed without a Content-Length: cut off at the limit all the same.
        let chunks = futures::stream::iter(
            (0..64).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b' '; 1024]))),
        );
        let res = t
            .client
            .post(t.url("/orgs"))
            .bearer_auth(&token)
            .header(CONTENT_TYPE, "application/json")
            .body(reqwest::Body::wrap_stream(chunks))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 413, "{label}");
        assert_eq!(
            res.json::<Value>().await.unwrap()["error"],
            "payload_too_large"
        );

        // Just under the limit is read and judged on its content.
        let name = "n".repeat(4000);
        let res = t
            .client
            .post(t.url("/orgs"))
            .bearer_auth(&token)
            .json(&json!({"name": name}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422, "{label}");
        assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_name");

        // The subscription body (the finding's example) and a tier.
        let admin = t.admin_token("limits-admin");
        for (method, path) in [
            (Method::PUT, "/admin/v1/users/u1/subscription"),
            (Method::POST, "/admin/v1/tiers"),
        ] {
            let res = t
                .client
                .request(method, t.url(path))
                .bearer_auth(&admin)
                .json(&json!({"tier": "x".repeat(8 * 1024)}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 413, "{label} {path}");
        }

        // License intake keeps its 1 MiB.
        let pad = "p".repeat(600 * 1024);
        let res = t
            .client
            .post(t.url("/internal/v1/licenses"))
            .bearer_auth(t.service_token())
            .json(&json!({"licenses": [{"id": pad}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            200,
            "{label}: 600 KiB is within the batch limit"
        );
    }
}

/// Collects formatted log lines of the tasks on this thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends the headers and half of a multipart upload over a raw socket, then closes it.
async fn abandon_upload(t: &TestApp, token: &str) {
    let addr = t.base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let part_head =
        "--XYZ\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.mp4\"\r\n\
                     Content-Type: video/mp4\r\n\r\n";
    let head = format!(
        "POST /files/upload HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: multipart/form-data; boundary=XYZ\r\nContent-Length: 262144\r\n\r\n{part_head}"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(&[7u8; 64 * 1024]).await.unwrap();
    socket.flush().await.unwrap();
    // Long enough for the handler to have created the file and written the first bytes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(socket);
}

#[tokio::test]
async fn an_abandoned_upload_is_a_client_error_and_leaves_nothing() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    // The runtime of this test is single-threaded: the server's tasks log here.
    let _guard = tracing::subscriber::set_default(subscriber);
    for db in TestDb::all().await {
        let label = db.label;
        let root = tempfile::tempdir().unwrap();
        let t = start(db, root.path()).await;
        let user = "aborting-uploader";
        let token = t.token(user);
        abandon_upload(&t, &token).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !captured.text().contains("status=400") {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{label}: no answer logged:\n{}",
                captured.text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let log = captured.text();
        assert!(
            log.contains("upload aborted by the client"),
            "{label}:\n{log}"
        );
        assert!(
            !log.contains(" ERROR "),
            "{label}: an abort is not a server error:\n{log}"
        );
        assert!(!log.contains("status=500"), "{label}:\n{log}");
        let leftovers: Vec<_> = std::fs::read_dir(&t.config.storage.uploads_dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(
            leftovers.is_empty(),
            "{label}: partial files left: {leftovers:?}"
        );
        let files = t.app.db.list_owned_files(user, None, 10).await.unwrap();
        assert!(files.is_empty(), "{label}: a file row was stored");
        // The next upload on the same server works.
        let id = t.upload(user, "b.mp4", vec![1; 1024]).await;
        assert!(!id.is_empty());
        captured.0.lock().unwrap().clear();
    }
}
