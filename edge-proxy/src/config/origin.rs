//! `[origin]`: where playlists and segments come from (a directory, HTTP servers, an S3
//! bucket), and the checks of each kind's settings. The S3 settings are checked here, as
//! data, so the configuration refuses a bad bucket at start-up and the S3 origin builds from
//! checked parts ([`check_s3`]).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::error::{check_http_url, check_positive, invalid, ConfigError};

/// Where media comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OriginKind {
    /// A local folder laid out as `{directory}/{videoId}/...`.
    Directory,
    /// HTTP(S) servers laid out as `{url}/{videoId}/...` (`url`, or several `urls`).
    Http,
    /// An S3 bucket laid out as `{prefix}/{videoId}/...` (`[origin.s3]`).
    S3,
}

/// `[origin]`: the source of playlists and segments.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OriginConfig {
    pub kind: OriginKind,
    pub directory: PathBuf,
    /// The HTTP origin's base URL (`kind = "http"`); or use `urls`, not both.
    pub url: String,
    /// Several HTTP origin base URLs with the same layout, load-balanced round-robin among the
    /// healthy ones, failing over on connect errors (`kind = "http"`).
    pub urls: Vec<String>,
    /// HTTP health check: `GET {base URL}{health_check_path}` must answer 2xx; `""` (default)
    /// checks only that a TCP (or TLS) connection opens.
    pub health_check_path: String,
    /// How often every HTTP backend is checked.
    pub health_check_interval_ms: u64,
    pub max_playlist_bytes: u64,
    pub timeout_ms: u64,
    pub s3: OriginS3Config,
}

/// `[origin.s3]`: the bucket of `kind = "s3"`. The secret key and session token are read
/// from files at start-up, never written inline.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OriginS3Config {
    /// `http(s)://host[:port]`, no path, e.g. `https://s3.eu-west-1.amazonaws.com`.
    pub endpoint: String,
    /// The signing region.
    pub region: String,
    pub bucket: String,
    /// Key prefix in front of `{videoId}/`, e.g. `media/hls`; `""` for the bucket's root.
    pub prefix: String,
    /// `"path"` (`{endpoint}/{bucket}/...`, default) or `"virtual-hosted"`
    /// (`{bucket}.{endpoint host}/...`).
    pub addressing: S3Addressing,
    pub access_key_id: String,
    pub secret_access_key_file: PathBuf,
    /// The session token of temporary (STS) credentials; `""` for long-term keys.
    pub session_token_file: PathBuf,
}

/// How the bucket appears in request URLs (`origin.s3.addressing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum S3Addressing {
    /// `{endpoint}/{bucket}/{key}`: works with every S3-compatible server (moto, MinIO).
    #[default]
    Path,
    /// `{bucket}.{endpoint host}/{key}`: AWS's preferred style; the bucket must be a DNS label.
    VirtualHosted,
}

impl Default for OriginConfig {
    fn default() -> Self {
        OriginConfig {
            kind: OriginKind::Directory,
            directory: "data/origin".into(),
            url: String::new(),
            urls: Vec::new(),
            health_check_path: String::new(),
            health_check_interval_ms: 5_000,
            max_playlist_bytes: 4 * 1024 * 1024,
            timeout_ms: 5_000,
            s3: OriginS3Config::default(),
        }
    }
}

impl Default for OriginS3Config {
    fn default() -> Self {
        OriginS3Config {
            endpoint: String::new(),
            region: "us-east-1".into(),
            bucket: String::new(),
            prefix: String::new(),
            addressing: S3Addressing::Path,
            access_key_id: String::new(),
            secret_access_key_file: PathBuf::new(),
            session_token_file: PathBuf::new(),
        }
    }
}

/// Most backends `origin.urls` may list.
pub const MAX_ORIGIN_URLS: usize = 16;

impl OriginConfig {
    /// The kind's settings: one of `url`/`urls` for HTTP, `[origin.s3]` for S3.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_positive("origin.max_playlist_bytes", self.max_playlist_bytes)?;
        check_positive("origin.timeout_ms", self.timeout_ms)?;
        match self.kind {
            OriginKind::Directory => Ok(()),
            OriginKind::Http => validate_http_origin(self),
            OriginKind::S3 => {
                if self.s3.secret_access_key_file.as_os_str().is_empty() {
                    return Err(invalid(
                        "origin.s3.secret_access_key_file",
                        "is empty",
                        "name the file holding the secret access key of origin.s3.access_key_id",
                    ));
                }
                check_s3(&S3Settings::of(&self.s3, None)).map(|_| ())
            }
        }
    }
}

/// The S3 settings [`check_s3`] checks: `[origin.s3]`, with the session token once read.
#[derive(Debug, Clone, Copy)]
pub struct S3Settings<'a> {
    pub endpoint: &'a str,
    pub region: &'a str,
    pub bucket: &'a str,
    pub prefix: &'a str,
    pub addressing: S3Addressing,
    pub access_key_id: &'a str,
    pub session_token: Option<&'a str>,
}

impl<'a> S3Settings<'a> {
    /// The settings of `s3` with `session_token` (read from `session_token_file`, or none).
    pub fn of(s3: &'a OriginS3Config, session_token: Option<&'a str>) -> S3Settings<'a> {
        S3Settings {
            endpoint: &s3.endpoint,
            region: &s3.region,
            bucket: &s3.bucket,
            prefix: &s3.prefix,
            addressing: s3.addressing,
            access_key_id: &s3.access_key_id,
            session_token,
        }
    }
}

/// What [`check_s3`] derives from the endpoint and prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Endpoint {
    pub tls: bool,
    pub host: String,
    pub port: Option<u16>,
    /// The key prefix's `/`-separated segments.
    pub prefix_segments: Vec<String>,
}

/// Every check of the S3 settings but the secret's presence; problems name `origin.s3.*`.
pub fn check_s3(config: &S3Settings) -> Result<S3Endpoint, ConfigError> {
    let uri: ::http::Uri = config.endpoint.parse().map_err(|_| {
        invalid(
            "origin.s3.endpoint",
            "is not a URL",
            "write e.g. \"https://s3.us-east-1.amazonaws.com\" or \"http://127.0.0.1:9000\"",
        )
    })?;
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => {
            return Err(invalid(
                "origin.s3.endpoint",
                "is not an http(s) URL",
                "write e.g. \"https://s3.us-east-1.amazonaws.com\"",
            ))
        }
    };
    let endpoint_host = uri.host().filter(|h| !h.is_empty()).ok_or_else(|| {
        invalid(
            "origin.s3.endpoint",
            "has no host",
            "write e.g. \"http://127.0.0.1:9000\"",
        )
    })?;
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(invalid(
            "origin.s3.endpoint",
            "has a path or query",
            "name only the server, e.g. \"http://127.0.0.1:9000\"; put key prefixes in origin.s3.prefix",
        ));
    }
    check_bucket(config.bucket, config.addressing)?;
    let prefix_segments = prefix_segments(config.prefix)?;
    check_credentials(config)?;
    if config.region.is_empty()
        || !config
            .region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(invalid(
            "origin.s3.region",
            "is not a region name",
            "write e.g. \"us-east-1\"",
        ));
    }
    Ok(S3Endpoint {
        tls,
        host: endpoint_host.to_string(),
        port: uri.port_u16(),
        prefix_segments,
    })
}

fn check_bucket(bucket: &str, addressing: S3Addressing) -> Result<(), ConfigError> {
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.';
    let dns_label = addressing == S3Addressing::Path || !bucket.contains('.');
    if bucket.len() < 3 || bucket.len() > 63 || !bucket.bytes().all(allowed) || !dns_label {
        return Err(invalid(
            "origin.s3.bucket",
            "is not an S3 bucket name",
            "use 3-63 lowercase letters, digits, '-' and '.' (no '.' with virtual-hosted addressing)",
        ));
    }
    Ok(())
}

/// The prefix's `/`-separated segments, each checked like an asset path segment.
fn prefix_segments(prefix: &str) -> Result<Vec<String>, ConfigError> {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    let segments: Vec<String> = trimmed.split('/').map(str::to_string).collect();
    let bad = |s: &String| {
        s.is_empty() || s == "." || s == ".." || s.chars().any(|c| c.is_control() || c == '\\')
    };
    if trimmed.len() > 512 || segments.iter().any(bad) {
        return Err(invalid(
            "origin.s3.prefix",
            "is not a plain key prefix",
            "write e.g. \"media/hls\" (no empty, '.' or '..' segments)",
        ));
    }
    Ok(segments)
}

fn check_credentials(config: &S3Settings) -> Result<(), ConfigError> {
    let id = config.access_key_id;
    if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(invalid(
            "origin.s3.access_key_id",
            "is not an access key id",
            "set the key id of an S3 key allowed s3:GetObject (and s3:ListBucket) on the bucket",
        ));
    }
    if let Some(token) = config.session_token {
        if token.is_empty() || !token.bytes().all(|b| (b'!'..=b'~').contains(&b)) {
            return Err(invalid(
                "origin.s3.session_token_file",
                "is not a session token",
                "set the token that came with the temporary credentials, or leave it out",
            ));
        }
    }
    Ok(())
}

/// `origin.url` xor `origin.urls`, each an http(s) URL without credentials or query; the
/// health check settings.
fn validate_http_origin(origin: &OriginConfig) -> Result<(), ConfigError> {
    let fix_one = "set `url = \"http://media.internal:9000/media\"` for one server, or `urls = [...]` for several";
    match (origin.url.is_empty(), origin.urls.is_empty()) {
        (false, false) => {
            return Err(invalid(
                "origin.urls",
                "is set together with origin.url",
                "keep one: `url` for one server, `urls` for several",
            ))
        }
        (true, true) => {
            return Err(invalid(
                "origin.url",
                "is empty (and so is origin.urls)",
                fix_one,
            ))
        }
        (false, true) => check_origin_url("origin.url", &origin.url)?,
        (true, false) => {
            if origin.urls.len() > MAX_ORIGIN_URLS {
                return Err(invalid(
                    "origin.urls",
                    format!("lists {} URLs", origin.urls.len()),
                    format!("list at most {MAX_ORIGIN_URLS}"),
                ));
            }
            for (i, url) in origin.urls.iter().enumerate() {
                check_origin_url("origin.urls", url)?;
                let same =
                    |other: &String| other.trim_end_matches('/') == url.trim_end_matches('/');
                if origin.urls[..i].iter().any(same) {
                    return Err(invalid(
                        "origin.urls",
                        format!("lists {url:?} twice"),
                        "list every origin server once",
                    ));
                }
            }
        }
    }
    let path = &origin.health_check_path;
    if !path.is_empty()
        && (!path.starts_with('/')
            || path.len() > 1024
            || !path.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(invalid(
            "origin.health_check_path",
            format!("is {path:?}"),
            "write a path relative to each origin URL starting with '/', e.g. \"/healthz\", or \"\" for a TCP check",
        ));
    }
    if origin.health_check_interval_ms < 100 {
        return Err(invalid(
            "origin.health_check_interval_ms",
            format!("is {}", origin.health_check_interval_ms),
            "check at most every 100 ms (default 5000)",
        ));
    }
    Ok(())
}

/// An origin base URL: http(s), no query, no `user:password@` (it would end up in logs).
fn check_origin_url(key: &'static str, value: &str) -> Result<(), ConfigError> {
    check_http_url(key, value)?;
    let has_userinfo = value
        .parse::<http::Uri>()
        .ok()
        .and_then(|uri| uri.authority().map(|a| a.as_str().contains('@')))
        .unwrap_or(false);
    if has_userinfo || value.contains('#') {
        return Err(invalid(
            key,
            "holds credentials or a fragment",
            "write a plain URL such as \"http://media.internal:9000/media\" (the edge sends no origin credentials)",
        ));
    }
    Ok(())
}
