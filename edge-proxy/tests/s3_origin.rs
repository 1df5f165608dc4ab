//! The S3 origin against moto's S3 server (PyPI `moto[server]`, in the interop venv that
//! `scripts/lib.sh`'s `ensure_interop_python` sets up) with moto's request authentication on.
//!
//! Setup (IAM users and policies, an STS role session, the bucket and its objects) is done with
//! botocore while moto still accepts anything; then `/moto-api/reset-auth` with `0` makes moto
//! check every following request: it finds the access key in its IAM backend, recomputes the
//! SigV4 signature with botocore's signer from the request as received and compares it, checks
//! the session token of temporary credentials, then evaluates the key's IAM policies.
//!
//! What this proves: the signatures of [`S3Origin`] (playlist fetches, listings, and the signed
//! request headers handed to Pingora) match an independent SigV4 implementation, including
//! encoded key names, a signed `Range` and a session token; a wrong secret, an unknown key, a
//! wrong session token (400 `InvalidToken`, as AWS answers), a tampered `Range` or path are
//! refused. What it does not prove: moto does not check `x-amz-date` against the clock (AWS
//! allows 15 minutes) or the payload hash of a GET, and it signs the raw path as received, so
//! the choice of which characters to escape is checked by AWS's published examples (unit tests
//! in `src/origin/s3.rs`), not here.
//!
//! Then the real edge process runs against the same bucket (`OriginSetup::S3`): the signed HLS
//! round trip, refusals, path attacks, CORS and byte ranges of proxied segments, temporary
//! credentials from a session token file, and a wrong secret answered with 502
//! `origin_unavailable` and a `/ready` that names the origin, the secret never in the logs.
//!
//! Without moto the test fails with instructions; `SKIP_S3_TESTS=1` skips it locally, never
//! when `CI` is set.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use edge_proxy::delivery::origin::s3::{S3Addressing, S3Origin, S3OriginConfig};
use edge_proxy::delivery::origin::{OriginError, OriginPlaylist};
use playback::hls::AssetPath;
use serde_json::Value;
use time::OffsetDateTime;

const VIDEO: &str = "0b6f2a8e-3c1d-4e5f-9a7b-112233445566";
const BUCKET: &str = "media";
const PREFIX: &str = "hls/v1";
const PLAYLIST: &str =
    "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6.0,\n720p/seg_000.ts\n#EXT-X-ENDLIST\n";
/// A segment whose key needs escaping: a space, parentheses, `+` and a non-ASCII letter.
const SEGMENT_NAME: &str = "seg 001(1)+é.ts";
const SEGMENT_PATH: &str = "720p/seg%20001%281%29%2B%C3%A9.ts";
const MAX_PLAYLIST_BYTES: u64 = 1024;

/// Creates IAM users, a role session and the bucket, and uploads `root`'s files under their
/// relative paths; prints the credentials as JSON.
const SETUP: &str = r#"
import json, os, sys
import botocore.session
from botocore.config import Config

endpoint, root, bucket = sys.argv[1:4]
session = botocore.session.get_session()
kw = dict(region_name="us-east-1", endpoint_url=endpoint,
          aws_access_key_id="AKIASETUPSETUPSETUP0", aws_secret_access_key="setup")
iam = session.create_client("iam", **kw)

def policy(actions):
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions,
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}]})

def user(name, actions):
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="media", PolicyDocument=policy(actions))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}

reader = user("edge", ["s3:GetObject", "s3:ListBucket"])
get_only = user("edge-get-only", ["s3:GetObject"])
role = iam.create_role(RoleName="edge-role", AssumeRolePolicyDocument=json.dumps({
    "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"},
    "Action": "sts:AssumeRole"}]}))["Role"]
iam.put_role_policy(RoleName="edge-role", PolicyName="media",
                    PolicyDocument=policy(["s3:GetObject", "s3:ListBucket"]))
temp = session.create_client("sts", **kw).assume_role(
    RoleArn=role["Arn"], RoleSessionName="edge")["Credentials"]

s3 = session.create_client("s3", config=Config(s3={"addressing_style": "path"}), **kw)
s3.create_bucket(Bucket=bucket)
for folder, _, names in os.walk(root):
    for name in names:
        full = os.path.join(folder, name)
        if os.path.islink(full):
            continue
        with open(full, "rb") as f:
            s3.put_object(Bucket=bucket, Key=os.path.relpath(full, root), Body=f.read())
print(json.dumps({"reader": reader, "get_only": get_only, "role": {
    "id": temp["AccessKeyId"], "secret": temp["SecretAccessKey"], "token": temp["SessionToken"]}}))
"#;

fn interop_python() -> PathBuf {
    std::env::var("INTEROP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/streaming-edge-venv/bin/python")
        })
}

/// moto's server, stopped when dropped.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    fn start(bin: &Path, log: &Path) -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log_file = std::fs::File::create(log).unwrap();
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env_remove("INITIAL_NO_AUTH_ACTION_COUNT")
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen on {port}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// moto_server next to the interop Python, or the reason it cannot be used.
fn find_moto() -> Result<PathBuf, String> {
    let python = interop_python();
    let bin = python.with_file_name("moto_server");
    if !bin.is_file() {
        return Err(format!("{} (PyPI moto[server])", bin.display()));
    }
    let botocore = Command::new(&python)
        .args(["-c", "import botocore"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !botocore {
        return Err(format!("botocore for {}", python.display()));
    }
    Ok(bin)
}

fn origin_config(endpoint: &str, id: &str, secret: &str, token: Option<&str>) -> S3OriginConfig {
    S3OriginConfig {
        endpoint: endpoint.to_string(),
        region: "us-east-1".into(),
        bucket: BUCKET.into(),
        prefix: PREFIX.into(),
        addressing: S3Addressing::Path,
        access_key_id: id.into(),
        secret_access_key: secret.into(),
        session_token: token.map(str::to_string),
        timeout: Duration::from_secs(10),
        max_playlist_bytes: MAX_PLAYLIST_BYTES,
    }
}

fn origin(endpoint: &str, creds: &Value) -> S3Origin {
    S3Origin::new(origin_config(
        endpoint,
        creds["id"].as_str().unwrap(),
        creds["secret"].as_str().unwrap(),
        creds["token"].as_str(),
    ))
    .unwrap()
}

fn path(raw: &str) -> AssetPath {
    AssetPath::parse(raw).unwrap()
}

/// Sends a request built by [`S3Origin::signed_request_header`] the way Pingora would, with
/// `tamper` applied to its headers first; returns the status and body.
async fn send_signed(
    endpoint: &str,
    request: &http::request::Parts,
    target: &str,
    tamper: impl Fn(&mut reqwest::header::HeaderMap),
) -> (u16, Vec<u8>) {
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in request.headers.iter() {
        headers.insert(
            reqwest::header::HeaderName::from_bytes(name.as_str().as_bytes()).unwrap(),
            reqwest::header::HeaderValue::from_bytes(value.as_bytes()).unwrap(),
        );
    }
    tamper(&mut headers);
    let response = reqwest::Client::new()
        .get(format!("{endpoint}{target}"))
        .headers(headers)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap().to_vec())
}

fn failure(result: Result<OriginPlaylist, OriginError>) -> String {
    match result {
        Err(OriginError::Failed(cause)) => cause,
        other => panic!("expected an origin failure, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_origin_against_moto_with_signature_checks() {
    let moto_bin = match find_moto() {
        Ok(bin) => bin,
        Err(missing) => {
            let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
            if !ci && std::env::var("SKIP_S3_TESTS").is_ok_and(|v| v == "1") {
                eprintln!("SKIPPED s3_origin: missing {missing} (SKIP_S3_TESTS=1)");
                return;
            }
            panic!(
                "s3_origin needs {missing}. Install it with `. scripts/lib.sh && \
                 ensure_interop_python` (scripts/test.sh does), or set SKIP_S3_TESTS=1 to skip \
                 this test locally (never in CI)."
            );
        }
    };

    // The objects, as files named by their keys.
    let dir = tempfile::tempdir().unwrap();
    let objects = dir.path().join("objects");
    let title = objects.join(PREFIX).join(VIDEO);
    std::fs::create_dir_all(title.join("720p")).unwrap();
    std::fs::write(title.join("master.m3u8"), PLAYLIST).unwrap();
    let segment: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(title.join("720p").join(SEGMENT_NAME), &segment).unwrap();
    std::fs::write(
        title.join("big.m3u8"),
        vec![b'#'; MAX_PLAYLIST_BYTES as usize + 1],
    )
    .unwrap();
    std::fs::write(title.join("binary.m3u8"), [0xff, 0xfe, 0x00]).unwrap();
    // The edge's media, under another prefix of the same bucket.
    let media = common::Media::create(&objects.join(EDGE_PREFIX));
    let range_only: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(
        media.root.join(VIDEO).join("720p/range_only.ts"),
        &range_only,
    )
    .unwrap();

    let moto = Moto::start(&moto_bin, &dir.path().join("moto.log"));
    let endpoint = moto.endpoint.clone();
    let setup = Command::new(interop_python())
        .args(["-c", SETUP, &endpoint, objects.to_str().unwrap(), BUCKET])
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(setup.status.success(), "moto setup failed");
    let creds: Value = serde_json::from_slice(&setup.stdout).unwrap();

    // From here on moto authenticates and authorizes every request.
    let reset = reqwest::Client::new()
        .post(format!("{endpoint}/moto-api/reset-auth"))
        .body("0")
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 200, "enabling moto's authentication");

    let reader = origin(&endpoint, &creds["reader"]);
    reader.check_reachable().await.unwrap();
    assert_eq!(
        reader
            .playlist(VIDEO, &path("master.m3u8"))
            .await
            .unwrap()
            .body,
        PLAYLIST
    );
    assert!(matches!(
        reader.playlist(VIDEO, &path("missing.m3u8")).await,
        Err(OriginError::NotFound)
    ));
    assert!(matches!(
        reader.playlist(VIDEO, &path("big.m3u8")).await,
        Err(OriginError::TooLarge {
            limit: MAX_PLAYLIST_BYTES
        })
    ));
    assert!(matches!(
        reader.playlist(VIDEO, &path("binary.m3u8")).await,
        Err(OriginError::NotText)
    ));

    // The request Pingora would send for a segment: signed, with a signed Range.
    let segment_path = path(SEGMENT_PATH);
    let request = reader
        .signed_request_header(
            VIDEO,
            &segment_path,
            Some("bytes=10-19"),
            OffsetDateTime::now_utc(),
        )
        .unwrap();
    let target = reader.object_path(VIDEO, &segment_path);
    assert_eq!(request.uri.path(), target);
    let (status, body) = send_signed(&endpoint, &request, &target, |_| {}).await;
    assert_eq!(status, 206, "{}", String::from_utf8_lossy(&body));
    assert_eq!(body, &segment[10..20]);

    let whole = reader
        .signed_request_header(VIDEO, &segment_path, None, OffsetDateTime::now_utc())
        .unwrap();
    let (status, body) = send_signed(&endpoint, &whole, &target, |_| {}).await;
    assert_eq!(status, 200);
    assert_eq!(body, segment);

    // The signature covers the Range and the key: changing either is refused.
    let (status, body) = send_signed(&endpoint, &request, &target, |h| {
        h.insert("range", "bytes=0-999".parse().unwrap());
    })
    .await;
    assert_eq!(status, 403, "tampered Range accepted");
    assert!(String::from_utf8_lossy(&body).contains("SignatureDoesNotMatch"));
    let other = reader.object_path(VIDEO, &path("master.m3u8"));
    let (status, body) = send_signed(&endpoint, &request, &other, |_| {}).await;
    assert_eq!(status, 403, "signature reused for another key");
    assert!(String::from_utf8_lossy(&body).contains("SignatureDoesNotMatch"));

    // Wrong secret, unknown key: refused, and the secret never appears in the error.
    let reader_id = creds["reader"]["id"].as_str().unwrap();
    let wrong_secret = S3Origin::new(origin_config(
        &endpoint,
        reader_id,
        "not-the-secret-0123456789",
        None,
    ))
    .unwrap();
    let cause = failure(wrong_secret.playlist(VIDEO, &path("master.m3u8")).await);
    assert_eq!(cause, "S3 answered 403 SignatureDoesNotMatch");
    let not_ready = wrong_secret.check_reachable().await.unwrap_err();
    assert!(
        not_ready.contains("403 SignatureDoesNotMatch"),
        "{not_ready}"
    );
    assert!(!not_ready.contains("not-the-secret"), "{not_ready}");
    let request = wrong_secret
        .signed_request_header(VIDEO, &segment_path, None, OffsetDateTime::now_utc())
        .unwrap();
    let (status, _) = send_signed(&endpoint, &request, &target, |_| {}).await;
    assert_eq!(status, 403, "segment GET with a wrong secret");

    let unknown = S3Origin::new(origin_config(
        &endpoint,
        "AKIAUNKNOWNUNKNOWN00",
        "secret",
        None,
    ))
    .unwrap();
    let cause = failure(unknown.playlist(VIDEO, &path("master.m3u8")).await);
    assert_eq!(cause, "S3 answered 403 InvalidAccessKeyId");

    // Temporary credentials: the session token is sent, signed and checked.
    let role = origin(&endpoint, &creds["role"]);
    assert_eq!(
        role.playlist(VIDEO, &path("master.m3u8"))
            .await
            .unwrap()
            .body,
        PLAYLIST
    );
    let request = role
        .signed_request_header(
            VIDEO,
            &segment_path,
            Some("bytes=0-3"),
            OffsetDateTime::now_utc(),
        )
        .unwrap();
    let (status, body) = send_signed(&endpoint, &request, &target, |_| {}).await;
    assert_eq!((status, body.as_slice()), (206, &segment[..4]));
    let wrong_token = S3Origin::new(origin_config(
        &endpoint,
        creds["role"]["id"].as_str().unwrap(),
        creds["role"]["secret"].as_str().unwrap(),
        Some("not-the-session-token"),
    ))
    .unwrap();
    let cause = failure(wrong_token.playlist(VIDEO, &path("master.m3u8")).await);
    // S3 answers 400 InvalidToken for a session token that does not match.
    assert_eq!(cause, "S3 answered 400 InvalidToken");

    // A key allowed only s3:GetObject is ready (its listing is AccessDenied, its signature
    // accepted) and reads objects.
    let get_only = origin(&endpoint, &creds["get_only"]);
    get_only.check_reachable().await.unwrap();
    assert_eq!(
        get_only
            .playlist(VIDEO, &path("master.m3u8"))
            .await
            .unwrap()
            .body,
        PLAYLIST
    );

    // Pingora's request as the proxy hands it over (pingora-cache may have set `Range` and a
    // validator), made the signed S3 request: the range and the validator stay unsigned, and S3
    // honours both.
    let (status, etag) = {
        let prepared = prepared(&reader, &segment_path, &[]);
        let response = send_raw(&endpoint, &prepared).await;
        let etag = response.headers()["etag"].to_str().unwrap().to_string();
        (response.status().as_u16(), etag)
    };
    assert_eq!(status, 200);
    let ranged = prepared(&reader, &segment_path, &[("range", "bytes=10-19")]);
    assert!(!ranged.headers["authorization"]
        .to_str()
        .unwrap()
        .contains("range"));
    let response = send_raw(&endpoint, &ranged).await;
    assert_eq!(response.status(), 206, "unsigned Range refused");
    assert_eq!(response.bytes().await.unwrap().as_ref(), &segment[10..20]);
    let revalidation = prepared(&reader, &segment_path, &[("if-none-match", &etag)]);
    let response = send_raw(&endpoint, &revalidation).await;
    assert_eq!(response.status(), 304, "unsigned If-None-Match ignored");

    edge_round_trip(&endpoint, &creds, &media, &range_only).await;
    edge_with_temporary_credentials(&endpoint, &creds).await;
    edge_with_a_wrong_secret(&endpoint, &creds).await;

    drop(moto);
}

/// The key prefix of the edge's media in the bucket.
const EDGE_PREFIX: &str = "edge/v1";

fn edge_origin(
    endpoint: &str,
    creds: &Value,
    secret: Option<&str>,
) -> common::OriginSetup<'static> {
    common::OriginSetup::S3 {
        endpoint: endpoint.to_string(),
        bucket: BUCKET.into(),
        prefix: EDGE_PREFIX.into(),
        access_key_id: creds["id"].as_str().unwrap().into(),
        secret_access_key: secret
            .unwrap_or_else(|| creds["secret"].as_str().unwrap())
            .into(),
        session_token: creds["token"].as_str().map(str::to_string),
    }
}

/// [`S3Origin::prepare_upstream_request`] applied to a viewer's GET carrying `headers`.
fn prepared(
    origin: &S3Origin,
    path: &AssetPath,
    headers: &[(&str, &str)],
) -> pingora::http::RequestHeader {
    let mut request =
        pingora::http::RequestHeader::build("GET", b"/hls/x/y.ts?hdnts=token&acl", None).unwrap();
    request.insert_header("cookie", "hdnts=token").unwrap();
    for (name, value) in headers {
        request.insert_header(name.to_string(), *value).unwrap();
    }
    let upstream = origin
        .prepare_upstream_request(
            &request.method,
            &request.headers,
            VIDEO,
            path,
            OffsetDateTime::now_utc(),
        )
        .unwrap();
    edge_proxy::http::upstream::apply(&upstream, &mut request).unwrap();
    request
}

/// Sends a Pingora request header as is (path and headers) with reqwest.
async fn send_raw(endpoint: &str, request: &pingora::http::RequestHeader) -> reqwest::Response {
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in request.headers.iter() {
        headers.insert(
            reqwest::header::HeaderName::from_bytes(name.as_str().as_bytes()).unwrap(),
            reqwest::header::HeaderValue::from_bytes(value.as_bytes()).unwrap(),
        );
    }
    reqwest::Client::new()
        .get(format!("{endpoint}{}", request.uri))
        .headers(headers)
        .send()
        .await
        .unwrap()
}

/// The edge process in front of the bucket: everything an origin must pass, and ranges.
async fn edge_round_trip(endpoint: &str, creds: &Value, media: &common::Media, range_only: &[u8]) {
    let edge = common::Edge::start(edge_origin(endpoint, &creds["reader"], None));
    common::scenarios::signed_hls_round_trip(&edge, media).await;
    common::scenarios::refusals_and_ops(&edge).await;
    common::scenarios::path_attacks(&edge);
    common::scenarios::cors(&edge).await;

    // Byte ranges: of an object fetched before, and of one asked for the first time.
    let token = edge.token();
    let big = media.file("720p/seg_000.ts");
    for (name, bytes) in [
        ("seg_000.ts", big.as_slice()),
        ("range_only.ts", range_only),
    ] {
        let r = edge.raw_get_with(
            &format!("/hls/{VIDEO}/720p/{name}?hdnts={token}"),
            "Range: bytes=100-1123\r\n",
        );
        assert_eq!(r.status, 206, "{name}: {}", r.head);
        assert_eq!(r.body, &bytes[100..1124], "{name}");
        assert_eq!(
            r.headers("content-range"),
            vec![format!("bytes 100-1123/{}", bytes.len())],
            "{name}"
        );
    }
    let r = edge.raw_get(&format!("/hls/{VIDEO}/720p/range_only.ts?hdnts={token}"));
    assert_eq!((r.status, r.body.as_slice()), (200, range_only));

    common::scenarios::logs_hold_no_tokens(&edge);
    let logs = edge.all_logs();
    assert!(
        !logs.contains(creds["reader"]["secret"].as_str().unwrap()),
        "the S3 secret reached the logs"
    );
}

/// STS credentials: the session token is read from its file and signed.
async fn edge_with_temporary_credentials(endpoint: &str, creds: &Value) {
    let edge = common::Edge::start(edge_origin(endpoint, &creds["role"], None));
    let token = edge.token();
    for file in ["720p/index.m3u8", "720p/seg_001.ts"] {
        let r = edge.raw_get(&format!("/hls/{VIDEO}/{file}?hdnts={token}"));
        assert_eq!(r.status, 200, "{file}: {}", r.head);
    }
    let logs = edge.all_logs();
    assert!(!logs.contains(creds["role"]["token"].as_str().unwrap()));
}

/// A wrong secret: S3 refuses every signature; the edge answers 502 `origin_unavailable`,
/// `/ready` names the origin, and the secret appears nowhere.
async fn edge_with_a_wrong_secret(endpoint: &str, creds: &Value) {
    let wrong = "not-the-secret-0123456789abcdef";
    let edge = common::Edge::start(edge_origin(endpoint, &creds["reader"], Some(wrong)));
    let token = edge.token();
    for file in [
        "master.m3u8",
        "720p/index.m3u8",
        "720p/seg_001.ts",
        "720p/seg_000.ts",
    ] {
        let r = edge.raw_get(&format!("/hls/{VIDEO}/{file}?hdnts={token}"));
        assert_eq!(r.status, 502, "{file}: {}", r.head);
        assert_eq!(
            r.error_code().as_deref(),
            Some("origin_unavailable"),
            "{file}"
        );
        assert!(!String::from_utf8_lossy(&r.body).contains(wrong));
    }
    let r = reqwest::get(edge.url("/ready")).await.unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["down"],
        serde_json::json!(["origin", "control_plane"]),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("SignatureDoesNotMatch"),
        "{body}"
    );
    assert!(
        !edge.all_logs().contains(wrong),
        "the wrong secret reached the logs"
    );
}
