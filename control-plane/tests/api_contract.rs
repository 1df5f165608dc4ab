//! The API's promises about its own answers, on SQLite and (with `DATABASE_URL`) Postgres:
//!
//! - every operation of `/openapi.json`, called without credentials, with a viewer's (not an
//!   admin's) JWT, with an unknown or malformed id, with an empty, wrongly typed or oversized
//!   body, answers only statuses the operation declares, each error as the declared format
//!   (`{"error","message"}` JSON unless the document says otherwise) and never a 5xx;
//! - JSON bodies are held to their endpoint's limit (413 `payload_too_large`), declared or
//!   streamed.
//!
//! An abandoned upload is tested in `upload_abort.rs` (it captures logs, alone in its binary).

mod common;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::{TestApp, TestDb};
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};
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

/// Declares an [`OVERSIZED`] body over a raw socket and sends only its first bytes: the limit
/// must be enforced from `Content-Length` alone (sending it all would race the server's early
/// answer and close with a broken pipe). Returns the status, content type and body.
async fn declare_oversized(
    t: &TestApp,
    op: &Operation,
    path: &str,
    creds: Credentials,
) -> (u16, String, String) {
    let built = build(t, op, path, creds, BodyKind::Oversized)
        .build()
        .unwrap();
    let addr = t.base.trim_start_matches("http://");
    let mut head = format!(
        "{} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n",
        built.method()
    );
    for (name, value) in built.headers() {
        if name != reqwest::header::CONTENT_LENGTH {
            head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
        }
    }
    head.push_str(&format!(
        "Content-Length: {}\r\n\r\n{{\"pad\": \"",
        OVERSIZED + 11
    ));
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    // The server answers and closes; a reset after the answer is fine.
    let _ = socket.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (headers, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = headers
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let content_type = headers
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type:")
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default();
    (status, content_type, body.to_string())
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
        assert!(ops.len() >= 39, "only {} operations", ops.len());
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
                if body == BodyKind::Oversized {
                    let (status, content_type, text) =
                        declare_oversized(&t, op, &path, creds).await;
                    let what = format!("{} {creds:?} {body:?} {path}", t.db.label);
                    check(op, &what, status, &content_type, &text);
                    calls += 1;
                    continue;
                }
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
