//! The HTTP origin: media served by an HTTP(S) server, `{origin.url}/{videoId}/{path}`.
//!
//! Segments travel through Pingora: [`HttpOrigin::peer`] names the upstream and
//! [`HttpOrigin::upstream_path`] the request path (with the edge's token removed from the
//! query). Playlists are small documents the edge must rewrite, so [`HttpOrigin::playlist`]
//! fetches them whole with a size bound.

use std::time::Duration;

use pingora::upstreams::peer::HttpPeer;

use super::OriginError;
use crate::config::{ConfigError, OriginConfig};
use playback::hls::AssetPath;

/// An HTTP(S) media server.
pub struct HttpOrigin {
    /// `origin.url` without a trailing slash, e.g. `http://127.0.0.1:9000/media`.
    base_url: String,
    /// The path part of `base_url` without a trailing slash (`/media`, or empty).
    base_path: String,
    host: String,
    port: u16,
    /// `Host` header value: host, plus port when it is not the scheme's default.
    authority: String,
    tls: bool,
    timeout: Duration,
    max_playlist_bytes: u64,
    client: reqwest::Client,
}

impl HttpOrigin {
    /// An origin for `origin.url` (already validated as an http(s) URL).
    pub fn new(config: &OriginConfig) -> Result<HttpOrigin, ConfigError> {
        let invalid = |problem: &str| ConfigError::Invalid {
            key: "origin.url",
            problem: problem.to_string(),
            fix: "write an absolute URL such as \"http://media.internal:9000/media\"".into(),
        };
        let uri: ::http::Uri = config.url.parse().map_err(|_| invalid("is not a URL"))?;
        let tls = uri.scheme_str() == Some("https");
        let host = uri
            .host()
            .ok_or_else(|| invalid("has no host"))?
            .to_string();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let authority = match uri.port_u16() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let base_path = uri.path().trim_end_matches('/').to_string();
        let timeout = Duration::from_millis(config.timeout_ms);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| invalid(&format!("cannot build an HTTP client: {e}")))?;
        Ok(HttpOrigin {
            base_url: config.url.trim_end_matches('/').to_string(),
            base_path,
            host,
            port,
            authority,
            tls,
            timeout,
            max_playlist_bytes: config.max_playlist_bytes,
            client,
        })
    }

    /// `{origin.url}/{videoId}/`: how the origin's own absolute URIs for this title begin.
    pub fn prefix(&self, video_id: &str) -> String {
        format!("{}/{video_id}/", self.base_url)
    }

    /// The upstream request target: `{base_path}/{videoId}/{path}` plus `query` (already
    /// stripped of the edge's token).
    pub fn upstream_path(&self, video_id: &str, path: &AssetPath, query: Option<&str>) -> String {
        let mut target = format!("{}/{video_id}/{}", self.base_path, path.encoded());
        if let Some(query) = query.filter(|q| !q.is_empty()) {
            target.push('?');
            target.push_str(query);
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

    /// Fetches a whole playlist, refusing bodies over the size limit.
    pub async fn playlist(&self, video_id: &str, path: &AssetPath) -> Result<String, OriginError> {
        let url = format!("{}/{video_id}/{}", self.base_url, path.encoded());
        let mut response = self.client.get(&url).send().await.map_err(failed)?;
        match response.status().as_u16() {
            200 => {}
            404 | 410 => return Err(OriginError::NotFound),
            status => return Err(OriginError::Failed(format!("origin answered {status}"))),
        }
        let limit = self.max_playlist_bytes;
        if response.content_length().is_some_and(|len| len > limit) {
            return Err(OriginError::TooLarge { limit });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(OriginError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body).map_err(|_| OriginError::NotText)
    }

    /// `Ok` when the origin answers HTTP at its base URL (any status counts as answering).
    pub async fn check_reachable(&self) -> Result<(), String> {
        match self.client.get(format!("{}/", self.base_url)).send().await {
            Ok(_) => Ok(()),
            Err(e) => Err(format!(
                "HTTP origin {} did not answer: {}",
                self.base_url,
                without_url(&e)
            )),
        }
    }
}

fn failed(e: reqwest::Error) -> OriginError {
    OriginError::Failed(without_url(&e))
}

/// A reqwest error's description without the URL (which would be fine here, but keeps logs
/// uniform with the control-plane client, whose URLs carry user ids).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    kind.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(url: &str) -> HttpOrigin {
        let config = OriginConfig {
            kind: crate::config::OriginKind::Http,
            url: url.into(),
            ..OriginConfig::default()
        };
        HttpOrigin::new(&config).unwrap()
    }

    #[test]
    fn paths_and_prefixes() {
        let v = "0b6f2a8e-3c1d-4e5f-9a7b-112233445566";
        let o = origin("http://127.0.0.1:9000/media/");
        let path = AssetPath::parse("720p/seg%20001.ts").unwrap();
        assert_eq!(
            o.upstream_path(v, &path, Some("a=1")),
            format!("/media/{v}/720p/seg%20001.ts?a=1")
        );
        assert_eq!(
            o.upstream_path(v, &path, Some("")),
            format!("/media/{v}/720p/seg%20001.ts")
        );
        assert_eq!(o.prefix(v), format!("http://127.0.0.1:9000/media/{v}/"));
        assert_eq!(o.authority(), "127.0.0.1:9000");

        let o = origin("https://cdn.example.com");
        assert_eq!(
            o.upstream_path(v, &path, None),
            format!("/{v}/720p/seg%20001.ts")
        );
        assert_eq!(o.authority(), "cdn.example.com");
        assert_eq!(o.port, 443);
        assert!(o.tls);
    }
}
