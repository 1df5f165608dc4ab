//! The S3 origin: media in an S3 bucket (AWS S3, MinIO, moto, any SigV4 S3 API), read with
//! SigV4-signed GETs from `{bucket}/{prefix}/{videoId}/{path}`.
//!
//! Addressing is path-style by default, `{endpoint}/{bucket}/{prefix}/{videoId}/{path}`, which
//! every S3-compatible server understands; virtual-hosted style
//! (`{bucket}.{endpoint host}/{prefix}/...`) is available for AWS endpoints that want it.
//!
//! As with [`super::HttpOrigin`], segments travel through Pingora: [`S3Origin::peer`] names the
//! upstream and [`S3Origin::prepare_upstream_request`] describes the signed request Pingora's
//! becomes: the object's path, `Host`, the SigV4 headers, and of the request's own headers only
//! `Range`, `If-Range`, `If-None-Match`, `If-Modified-Since`, `If-Match` and
//! `If-Unmodified-Since` (which pingora-cache may have set), left unsigned. Nothing else the
//! viewer sent reaches S3 — no query, no cookie, no `x-amz-*` header — so a viewer cannot
//! smuggle parameters such as `?acl` or `?versionId`. Playlists are fetched whole with a size
//! bound by [`S3Origin::playlist`].
//!
//! Configuration (`origin.kind = "s3"`, `[origin.s3]`): `endpoint`, `region`, `bucket`,
//! `prefix`, `addressing` (`"path"` or `"virtual-hosted"`), `access_key_id`, and the files
//! `secret_access_key_file` and `session_token_file` (read once at start-up by the
//! application's builder and handed to [`S3Origin::from_config`]; the values are never logged
//! and `Debug` redacts them).
//!
//! # Signing
//!
//! Requests are signed with AWS Signature Version 4 in the `Authorization` header by AWS's own
//! signer, the `aws-sigv4` crate (the same smithy family the control plane's AWS SDK already
//! locks, so it adds no crate to the build), with S3's settings: the path signed as sent (no
//! normalization, no second encoding) and `x-amz-content-sha256`. The signing is checked
//! against AWS's published S3 examples (the `GetObject` with `Range` and the `ListObjects`
//! examples of the S3 API reference, key `AKIAIOSFODNN7EXAMPLE`) and, in
//! `tests/s3_origin.rs`, by moto's S3 server, which recomputes every signature with botocore's
//! signer.
//!
//! The canonical URI is the request path itself, each segment percent-encoded once with
//! everything but RFC 3986's unreserved characters escaped; S3 does not double-encode or
//! normalize, so the path sent and the path signed are the same string. The payload hash is that
//! of the empty body (every request here is a bodiless GET). Temporary credentials add a signed
//! `x-amz-security-token`.
//!
//! Only `host` and the `x-amz-*` headers are signed on proxied segment requests: S3 insists on
//! those (and on `Content-Type`/`Content-MD5`, which a GET has not), and leaving `Range` and the
//! conditional headers unsigned lets them pass exactly as pingora-cache set them (checked
//! against moto in `tests/s3_origin.rs`: an unsigned `Range` is honoured).
//!
//! S3 answers 403 rather than 404 for a missing object when the key lacks `s3:ListBucket`, so
//! grant `s3:GetObject` and `s3:ListBucket` for missing files to be 404s at the edge.

use std::fmt;
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use pingora::upstreams::peer::HttpPeer;
use time::OffsetDateTime;

use super::fetch::{freshness, read_playlist, OriginError, OriginPlaylist};
use super::upstream::UpstreamRequest;
use crate::config::origin::{check_s3, S3Endpoint, S3Settings};
pub use crate::config::S3Addressing;
use crate::config::{invalid, ConfigError, OriginConfig};
use playback::hls::AssetPath;

/// SHA-256 of the empty body, the payload hash of every GET.
const EMPTY_PAYLOAD_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// Longest `Range` value forwarded; longer ones are dropped (the object is served whole).
const MAX_RANGE_LEN: usize = 256;
/// How much of an S3 error body is read to find its `<Code>`.
const MAX_ERROR_BODY: usize = 4096;

/// Everything SigV4 leaves unescaped in a path segment or query component: `A-Z a-z 0-9 - . _ ~`.
const SIGV4_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Headers of Pingora's request that survive into the signed S3 request (unsigned).
const FORWARDED_HEADERS: [&str; 6] = [
    "range",
    "if-range",
    "if-none-match",
    "if-modified-since",
    "if-match",
    "if-unmodified-since",
];
/// Longest conditional header value forwarded; longer ones are dropped.
const MAX_CONDITIONAL_LEN: usize = 1024;

/// What an [`S3Origin`] needs. Its `Debug` output hides the secret key and session token.
#[derive(Clone)]
pub struct S3OriginConfig {
    /// `http(s)://host[:port]`, e.g. `https://s3.eu-west-1.amazonaws.com` or
    /// `http://127.0.0.1:9000` (no path).
    pub endpoint: String,
    /// The signing region, e.g. `us-east-1` (MinIO and moto accept any).
    pub region: String,
    pub bucket: String,
    /// Key prefix in front of `{videoId}/`, e.g. `media/hls`; empty for the bucket's root.
    pub prefix: String,
    pub addressing: S3Addressing,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// The session token of temporary (STS) credentials.
    pub session_token: Option<String>,
    pub timeout: Duration,
    pub max_playlist_bytes: u64,
}

impl fmt::Debug for S3OriginConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3OriginConfig")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("addressing", &self.addressing)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("timeout", &self.timeout)
            .field("max_playlist_bytes", &self.max_playlist_bytes)
            .finish()
    }
}

/// An S3 bucket (or a prefix of one) holding `{videoId}/{path}` media.
pub struct S3Origin {
    /// `http` or `https`.
    scheme: &'static str,
    /// The host requests connect to (with the bucket in front for virtual-hosted style).
    host: String,
    port: u16,
    /// `Host` header value: host, plus port when it is not the scheme's default.
    authority: String,
    tls: bool,
    /// Encoded path up to and including the prefix, no trailing slash: `/media/hls` for
    /// path-style bucket `media`, prefix `hls`; empty for virtual-hosted style at the root.
    key_base: String,
    /// The bucket's own path (`/{bucket}` path-style, empty virtual-hosted), for listing.
    bucket_path: String,
    /// The decoded key prefix ending in `/`, or empty.
    key_prefix: String,
    signer: SigV4Signer,
    timeout: Duration,
    max_playlist_bytes: u64,
    client: reqwest::Client,
}

impl S3Origin {
    /// The origin `[origin.s3]` describes, with its secret key and session token (read from
    /// their files by the application's builder).
    pub fn from_config(
        origin: &OriginConfig,
        secret_access_key: String,
        session_token: Option<String>,
    ) -> Result<S3Origin, ConfigError> {
        let s3 = &origin.s3;
        Self::new(S3OriginConfig {
            endpoint: s3.endpoint.clone(),
            region: s3.region.clone(),
            bucket: s3.bucket.clone(),
            prefix: s3.prefix.clone(),
            addressing: s3.addressing,
            access_key_id: s3.access_key_id.clone(),
            secret_access_key,
            session_token,
            timeout: Duration::from_millis(origin.timeout_ms),
            max_playlist_bytes: origin.max_playlist_bytes,
        })
    }

    /// Checks `config` and builds the origin; problems are reported under `origin.s3.*` keys.
    pub fn new(config: S3OriginConfig) -> Result<S3Origin, ConfigError> {
        let endpoint = check_s3(&S3Settings {
            endpoint: &config.endpoint,
            region: &config.region,
            bucket: &config.bucket,
            prefix: &config.prefix,
            addressing: config.addressing,
            access_key_id: &config.access_key_id,
            session_token: config.session_token.as_deref(),
        })?;
        if config.secret_access_key.is_empty() {
            return Err(invalid(
                "origin.s3.secret_access_key",
                "is empty",
                "set the secret of the access key",
            ));
        }
        let S3Endpoint {
            tls,
            host: endpoint_host,
            port: explicit_port,
            prefix_segments,
        } = endpoint;
        let host = match config.addressing {
            S3Addressing::Path => endpoint_host,
            S3Addressing::VirtualHosted => format!("{}.{endpoint_host}", config.bucket),
        };
        let port = explicit_port.unwrap_or(if tls { 443 } else { 80 });
        let authority = match explicit_port {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let bucket_path = match config.addressing {
            S3Addressing::Path => format!("/{}", encode_segment(&config.bucket)),
            S3Addressing::VirtualHosted => String::new(),
        };
        let mut key_base = bucket_path.clone();
        for segment in &prefix_segments {
            key_base.push('/');
            key_base.push_str(&encode_segment(segment));
        }
        let key_prefix = if prefix_segments.is_empty() {
            String::new()
        } else {
            format!("{}/", prefix_segments.join("/"))
        };
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                invalid(
                    "origin.s3.endpoint",
                    format!("cannot build an HTTP client: {e}"),
                    "check the TLS setup of this machine",
                )
            })?;
        Ok(S3Origin {
            scheme: if tls { "https" } else { "http" },
            host,
            port,
            authority,
            tls,
            key_base,
            bucket_path,
            key_prefix,
            signer: SigV4Signer {
                access_key_id: config.access_key_id,
                secret_access_key: config.secret_access_key,
                session_token: config.session_token,
                region: config.region,
                service: "s3",
            },
            timeout: config.timeout,
            max_playlist_bytes: config.max_playlist_bytes,
            client,
        })
    }

    /// The request path of an object: `{key_base}/{videoId}/{path}`, every segment SigV4-encoded
    /// (this string is both sent and signed).
    pub fn object_path(&self, video_id: &str, path: &AssetPath) -> String {
        let mut target = format!("{}/{}", self.key_base, encode_segment(video_id));
        for segment in path.segments() {
            target.push('/');
            target.push_str(&encode_segment(segment));
        }
        target
    }

    /// The `Host` header for upstream requests.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The Pingora peer for this origin, resolving its host now (DNS may change).
    pub async fn peer(&self) -> Result<HttpPeer, OriginError> {
        let addr = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|e| OriginError::Failed(format!("cannot resolve {}: {e}", self.host)))?
            .next()
            .ok_or_else(|| OriginError::Failed(format!("{} has no address", self.host)))?;
        let mut peer = HttpPeer::new(addr, self.tls, self.host.clone());
        peer.options.connection_timeout = Some(self.timeout);
        peer.options.total_connection_timeout = Some(self.timeout);
        peer.options.read_timeout = Some(self.timeout);
        peer.options.write_timeout = Some(self.timeout);
        Ok(peer)
    }

    /// A complete signed `GET` for one object, for Pingora to send: `Host`, `Range` when given
    /// and usable (a printable ASCII value of at most 256 bytes; otherwise it is left out and
    /// the object comes whole), `x-amz-date`, `x-amz-content-sha256`, `x-amz-security-token`
    /// for temporary credentials, and `Authorization`. Signed at `now`; S3 accepts it for 15
    /// minutes.
    pub fn signed_request_header(
        &self,
        video_id: &str,
        path: &AssetPath,
        range: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<::http::request::Parts, OriginError> {
        let target = self.object_path(video_id, path);
        let range = range.map(str::trim).filter(|r| usable_range(r));
        let mut request = ::http::Request::get(target.as_str());
        for (name, value) in self.signed_headers("GET", &target, &[], range, now)? {
            request = request.header(name, value);
        }
        Ok(request.body(()).map_err(building)?.into_parts().0)
    }

    /// Turns Pingora's upstream request into the signed request for one object, signed at
    /// `now`: method kept (`GET` or `HEAD`, anything else is refused), path replaced, every
    /// header dropped but [`FORWARDED_HEADERS`] (kept unsigned when printable ASCII and short),
    /// then `Host` and the signed `x-amz-*` and `Authorization` headers added. No query.
    pub fn prepare_upstream_request(
        &self,
        method: &::http::Method,
        headers: &::http::HeaderMap,
        video_id: &str,
        path: &AssetPath,
        now: OffsetDateTime,
    ) -> Result<UpstreamRequest, OriginError> {
        let method = match method.as_str() {
            "GET" => "GET",
            "HEAD" => "HEAD",
            other => {
                return Err(OriginError::Failed(format!(
                    "S3 segments are read with GET or HEAD, not {other}"
                )))
            }
        };
        let kept: Vec<(&'static str, ::http::HeaderValue)> = FORWARDED_HEADERS
            .iter()
            .filter_map(|name| {
                let value = headers.get(*name)?;
                let limit = if *name == "range" {
                    MAX_RANGE_LEN
                } else {
                    MAX_CONDITIONAL_LEN
                };
                let text = value.to_str().ok()?.trim();
                (!text.is_empty()
                    && text.len() <= limit
                    && text.bytes().all(|b| (b' '..=b'~').contains(&b)))
                .then(|| value.clone())
                .map(|value| (*name, value))
            })
            .collect();
        let target = self.object_path(video_id, path);
        let mut insert = Vec::new();
        for (name, value) in self.signed_headers(method, &target, &[], None, now)? {
            let name = ::http::HeaderName::from_bytes(name.as_bytes()).map_err(building)?;
            insert.push((
                name,
                ::http::HeaderValue::from_str(&value).map_err(building)?,
            ));
        }
        for (name, value) in kept {
            insert.push((::http::HeaderName::from_static(name), value));
        }
        Ok(UpstreamRequest {
            path_and_query: target,
            clear: true,
            remove: Vec::new(),
            insert,
        })
    }

    /// `{scheme}://{host}{bucket and prefix}/{videoId}/`: the URL of a title's folder in the
    /// configured addressing style, how absolute URIs to the bucket in a playlist begin.
    pub fn prefix(&self, video_id: &str) -> String {
        format!(
            "{}://{}{}/{}/",
            self.scheme,
            self.authority,
            self.key_base,
            encode_segment(video_id)
        )
    }

    /// The headers of a signed `method` of `path` with `query` (names lowercase, as signed).
    fn signed_headers(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        range: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Vec<(String, String)>, OriginError> {
        let mut headers = vec![("host".to_string(), self.authority.clone())];
        if let Some(range) = range {
            headers.push(("range".to_string(), range.to_string()));
        }
        self.signer
            .sign(method, path, query, headers, EMPTY_PAYLOAD_SHA256, now)
            .map_err(building)
    }

    /// Sends a signed GET (`path` already encoded) with reqwest.
    async fn get(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<reqwest::Response, OriginError> {
        let mut url = format!("{}://{}{path}", self.scheme, self.authority);
        if !query.is_empty() {
            url.push('?');
            url.push_str(&canonical_query(query));
        }
        let mut request = self.client.get(url);
        for (name, value) in
            self.signed_headers("GET", path, query, None, OffsetDateTime::now_utc())?
        {
            request = request.header(name, value);
        }
        request.send().await.map_err(failed)
    }

    /// Fetches a whole playlist, refusing bodies over the size limit, with the freshness its
    /// `Cache-Control` metadata gives it.
    pub async fn playlist(
        &self,
        video_id: &str,
        path: &AssetPath,
    ) -> Result<OriginPlaylist, OriginError> {
        let response = self.get(&self.object_path(video_id, path), &[]).await?;
        match response.status().as_u16() {
            200 => {}
            404 => return Err(OriginError::NotFound),
            status => {
                let code = error_code(response).await;
                return Err(OriginError::Failed(format!("S3 answered {status} {code}")));
            }
        }
        let max_age_secs = freshness(response.headers());
        let body = read_playlist(response, self.max_playlist_bytes, failed).await?;
        Ok(OriginPlaylist { body, max_age_secs })
    }

    /// `Ok` when S3 answers a signed listing of one key under the prefix and accepts the
    /// credentials. A key without `s3:ListBucket` (`AccessDenied`) still counts as ready: the
    /// signature was accepted, and the edge only reads objects.
    pub async fn check_reachable(&self) -> Result<(), String> {
        let query = [
            ("list-type", "2"),
            ("max-keys", "1"),
            ("prefix", self.key_prefix.as_str()),
        ];
        let path = if self.bucket_path.is_empty() {
            "/".to_string()
        } else {
            self.bucket_path.clone()
        };
        let response = self
            .get(&path, &query)
            .await
            .map_err(|e| format!("S3 origin {} did not answer: {e}", self.authority))?;
        let status = response.status().as_u16();
        if status == 200 {
            return Ok(());
        }
        let code = error_code(response).await;
        if status == 403 && code == "AccessDenied" {
            return Ok(());
        }
        Err(format!(
            "S3 origin {} refused a signed listing of the bucket: {status} {code}",
            self.authority
        ))
    }
}

/// AWS Signature Version 4 for requests without a body, in the `Authorization` header.
struct SigV4Signer {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    region: String,
    service: &'static str,
}

impl SigV4Signer {
    /// Signs with AWS's own signer (`aws-sigv4`): adds `x-amz-date`, `x-amz-content-sha256`
    /// and (for temporary credentials) `x-amz-security-token` to `headers` (which must include
    /// `host`), and returns them all with `authorization` last. `path` is the encoded request
    /// path, which S3 signs as is (no normalization, no second encoding).
    fn sign(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        mut headers: Vec<(String, String)>,
        payload_sha256: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<(String, String)>, SigningFailed> {
        let identity: Identity = Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            self.session_token.clone(),
            None,
            "edge-proxy",
        )
        .into();
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(self.service)
            .time(now.into())
            .settings(settings)
            .build()
            .map_err(|e| SigningFailed(e.to_string()))?
            .into();
        let uri = match query.is_empty() {
            true => path.to_string(),
            false => format!("{path}?{}", canonical_query(query)),
        };
        let signable = SignableRequest::new(
            method,
            uri,
            headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
            SignableBody::Precomputed(payload_sha256.to_string()),
        )
        .map_err(|e| SigningFailed(e.to_string()))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| SigningFailed(e.to_string()))?
            .into_parts();
        let mut signed: Vec<(String, String)> = instructions
            .headers()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.to_string()))
            .collect();
        // `authorization` last, the order the request is written in.
        signed.sort_by_key(|(name, _)| name == "authorization");
        headers.extend(signed);
        Ok(headers)
    }
}

/// `aws-sigv4` could not sign a request (a malformed URI or header).
#[derive(Debug, thiserror::Error)]
#[error("signing failed: {0}")]
struct SigningFailed(String);

/// `name=value` pairs encoded and sorted by name (then value), joined with `&`.
fn canonical_query(query: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(name, value)| (encode_segment(name), encode_segment(value)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// One path segment or query component, escaped as SigV4 requires.
fn encode_segment(raw: &str) -> String {
    utf8_percent_encode(raw, SIGV4_UNRESERVED).to_string()
}

fn usable_range(range: &str) -> bool {
    !range.is_empty()
        && range.len() <= MAX_RANGE_LEN
        && range.bytes().all(|b| (b' '..=b'~').contains(&b))
}

/// The `<Code>` of an S3 error body (bounded read), or `-` when there is none.
async fn error_code(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() >= MAX_ERROR_BODY {
            break;
        }
    }
    let body = String::from_utf8_lossy(&body[..body.len().min(MAX_ERROR_BODY)]);
    body.split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map(|(code, _)| code)
        .filter(|code| code.len() <= 64 && code.bytes().all(|b| b.is_ascii_alphanumeric()))
        .unwrap_or("-")
        .to_string()
}

fn building(e: impl fmt::Display) -> OriginError {
    OriginError::Failed(format!("building the S3 request: {e}"))
}

fn failed(e: reqwest::Error) -> OriginError {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    OriginError::Failed(format!("S3 {kind}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: &str = "0b6f2a8e-3c1d-4e5f-9a7b-112233445566";

    /// The credentials of AWS's published signing examples.
    fn example_signer() -> SigV4Signer {
        SigV4Signer {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
            region: "us-east-1".into(),
            service: "s3",
        }
    }

    fn example_time() -> OffsetDateTime {
        time::macros::datetime!(2013-05-24 00:00:00 UTC)
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} in {headers:?}"))
    }

    /// The `Authorization` value with its three parts joined by `,` as the AWS reference writes
    /// them (aws-sigv4 writes `, `; S3 accepts both).
    fn authorization(headers: &[(String, String)]) -> String {
        header(headers, "authorization").replace(", ", ",")
    }

    /// S3 API reference, "Signature Calculations for the Authorization Header", Example: GET
    /// Object (the first 10 bytes of `test.txt` from `examplebucket`).
    #[test]
    fn aws_example_get_object_with_range() {
        let headers = example_signer()
            .sign(
                "GET",
                "/test.txt",
                &[],
                vec![
                    ("host".into(), "examplebucket.s3.amazonaws.com".into()),
                    ("range".into(), "bytes=0-9".into()),
                ],
                EMPTY_PAYLOAD_SHA256,
                example_time(),
            )
            .unwrap();
        assert_eq!(
            authorization(&headers),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,\
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,\
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        assert_eq!(header(&headers, "x-amz-date"), "20130524T000000Z");
        assert_eq!(
            header(&headers, "x-amz-content-sha256"),
            EMPTY_PAYLOAD_SHA256
        );
    }

    /// Same reference, Example: GET Bucket (List Objects): a query string, sorted and encoded.
    #[test]
    fn aws_example_list_objects() {
        let headers = example_signer()
            .sign(
                "GET",
                "/",
                &[("prefix", "J"), ("max-keys", "2")],
                vec![("host".into(), "examplebucket.s3.amazonaws.com".into())],
                EMPTY_PAYLOAD_SHA256,
                example_time(),
            )
            .unwrap();
        assert!(
            authorization(&headers).ends_with(
                "SignedHeaders=host;x-amz-content-sha256;x-amz-date,\
                 Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
            ),
            "{headers:?}"
        );
    }

    #[test]
    fn session_tokens_are_signed() {
        let mut signer = example_signer();
        signer.session_token = Some("token/with+chars=".into());
        let headers = signer
            .sign(
                "GET",
                "/test.txt",
                &[],
                vec![("host".into(), "examplebucket.s3.amazonaws.com".into())],
                EMPTY_PAYLOAD_SHA256,
                example_time(),
            )
            .unwrap();
        assert_eq!(
            header(&headers, "x-amz-security-token"),
            "token/with+chars="
        );
        assert!(authorization(&headers)
            .contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"));
    }

    fn config(endpoint: &str) -> S3OriginConfig {
        S3OriginConfig {
            endpoint: endpoint.into(),
            region: "us-east-1".into(),
            bucket: "media".into(),
            prefix: "/hls/v1/".into(),
            addressing: S3Addressing::Path,
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
            timeout: Duration::from_secs(5),
            max_playlist_bytes: 1024,
        }
    }

    #[test]
    fn path_style_and_virtual_hosted_paths() {
        let path = AssetPath::parse("720p/seg%20001%281%29+%C3%A9~.ts").unwrap();
        let origin = S3Origin::new(config("http://127.0.0.1:9000")).unwrap();
        assert_eq!(
            origin.object_path(V, &path),
            format!("/media/hls/v1/{V}/720p/seg%20001%281%29%2B%C3%A9~.ts")
        );
        assert_eq!(origin.authority(), "127.0.0.1:9000");
        assert_eq!(origin.key_prefix, "hls/v1/");

        let mut hosted = config("https://s3.eu-west-1.amazonaws.com/");
        hosted.addressing = S3Addressing::VirtualHosted;
        hosted.prefix = String::new();
        let origin = S3Origin::new(hosted).unwrap();
        assert_eq!(origin.object_path(V, &path).split('/').nth(1), Some(V));
        assert_eq!(origin.authority(), "media.s3.eu-west-1.amazonaws.com");
        assert_eq!((origin.port, origin.tls), (443, true));
    }

    #[test]
    fn signed_request_header_for_pingora() {
        let origin = S3Origin::new(config("http://127.0.0.1:9000")).unwrap();
        let path = AssetPath::parse("720p/seg_001.ts").unwrap();
        let request = origin
            .signed_request_header(V, &path, Some(" bytes=0-99 "), example_time())
            .unwrap();
        assert_eq!(request.method, "GET");
        assert_eq!(
            request.uri.path(),
            format!("/media/hls/v1/{V}/720p/seg_001.ts")
        );
        let get = |name: &str| request.headers.get(name).unwrap().to_str().unwrap();
        assert_eq!(get("host"), "127.0.0.1:9000");
        assert_eq!(get("range"), "bytes=0-99");
        assert_eq!(get("x-amz-date"), "20130524T000000Z");
        assert_eq!(get("x-amz-content-sha256"), EMPTY_PAYLOAD_SHA256);
        assert!(get("authorization")
            .contains("SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"));

        // An unusable Range is left out (and unsigned), never forwarded raw.
        let request = origin
            .signed_request_header(V, &path, Some("bytes=0-1\u{7f}"), example_time())
            .unwrap();
        assert!(request.headers.get("range").is_none());
        assert!(request.headers.get("authorization").is_some());
    }

    /// Pingora's request becomes the signed one: path, `Host`, SigV4 headers; of the rest only
    /// the range and conditional headers stay, unsigned; the viewer's query is gone.
    #[test]
    fn upstream_request_is_replaced_by_the_signed_one() {
        let origin = S3Origin::new(config("http://127.0.0.1:9000")).unwrap();
        let path = AssetPath::parse("720p/seg_001.ts").unwrap();
        let mut req = ::http::Request::get("/hls/v/720p/seg_001.ts?acl&hdnts=x")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        for (name, value) in [
            ("host", "edge.example"),
            ("authorization", "Bearer viewer"),
            ("cookie", "hdnts=x"),
            ("x-amz-security-token", "smuggled"),
            ("x-amz-date", "19990101T000000Z"),
            ("user-agent", "player"),
            ("range", "bytes=0-99"),
            ("if-none-match", "\"abc\""),
            ("if-modified-since", "Sat, 01 Jan 2000 00:00:00 GMT"),
        ] {
            req.headers.insert(name, value.parse().unwrap());
        }
        origin
            .prepare_upstream_request(&req.method, &req.headers, V, &path, example_time())
            .unwrap()
            .apply_to(&mut req.uri, &mut req.headers)
            .unwrap();
        assert_eq!(req.uri.path(), format!("/media/hls/v1/{V}/720p/seg_001.ts"));
        assert_eq!(req.uri.query(), None);
        let get = |name: &str| {
            req.headers
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
        };
        assert_eq!(get("host").as_deref(), Some("127.0.0.1:9000"));
        assert_eq!(get("range").as_deref(), Some("bytes=0-99"));
        assert_eq!(get("if-none-match").as_deref(), Some("\"abc\""));
        assert!(get("if-modified-since").is_some());
        assert_eq!(get("x-amz-date").as_deref(), Some("20130524T000000Z"));
        assert_eq!(get("x-amz-security-token"), None);
        assert_eq!(get("cookie"), None);
        assert_eq!(get("user-agent"), None);
        let authorization = get("authorization").unwrap();
        assert!(
            authorization.contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date,"),
            "{authorization}"
        );
        assert_eq!(req.headers.len(), 7, "{:?}", req.headers);

        let mut head = ::http::Request::head("/x").body(()).unwrap().into_parts().0;
        origin
            .prepare_upstream_request(&head.method, &head.headers, V, &path, example_time())
            .unwrap()
            .apply_to(&mut head.uri, &mut head.headers)
            .unwrap();
        assert_ne!(
            head.headers["authorization"], req.headers["authorization"],
            "the method is signed"
        );
        let post = ::http::Request::post("/x").body(()).unwrap().into_parts().0;
        assert!(origin
            .prepare_upstream_request(&post.method, &post.headers, V, &path, example_time())
            .is_err());
    }

    #[test]
    fn bad_settings_are_refused_and_secrets_never_printed() {
        type Spoil = fn(&mut S3OriginConfig);
        let cases: [(&str, Spoil); 7] = [
            ("origin.s3.endpoint", |c| c.endpoint = "ftp://x".into()),
            ("origin.s3.endpoint", |c| {
                c.endpoint = "http://x/path".into()
            }),
            ("origin.s3.bucket", |c| c.bucket = "Media_Bucket".into()),
            ("origin.s3.prefix", |c| c.prefix = "a/../b".into()),
            ("origin.s3.region", |c| c.region = String::new()),
            ("origin.s3.access_key_id", |c| {
                c.access_key_id = "a b".into()
            }),
            ("origin.s3.secret_access_key", |c| {
                c.secret_access_key = String::new()
            }),
        ];
        for (key, spoil) in cases {
            let mut c = config("http://127.0.0.1:9000");
            spoil(&mut c);
            match S3Origin::new(c) {
                Err(ConfigError::Invalid { key: got, .. }) => assert_eq!(got, key),
                Err(other) => panic!("{key}: {other}"),
                Ok(_) => panic!("{key}: accepted"),
            }
        }
        let mut c = config("http://127.0.0.1:9000");
        c.session_token = Some("SESSIONTOKEN".into());
        let printed = format!("{c:?}");
        assert!(!printed.contains("EXAMPLEKEY") && !printed.contains("SESSIONTOKEN"));
    }
}
