//! A license provider (Widevine or PlayReady service) reached over Pingora's pooled upstream
//! connections.
//!
//! Each request borrows a connection from Pingora's [`Connector`] pool and returns it after a
//! complete response, so license calls after the first skip the TCP (and TLS) handshake: the
//! "pre-warmed provider connections" of the spec. A pooled connection the provider already
//! closed fails on first use; the request is then retried once on a fresh connection. Every
//! call is bounded by the provider's `timeout_ms`, and the response body by
//! [`MAX_RESPONSE_BYTES`]. Provider URLs and bodies are never logged (bodies carry licenses).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use pingora::upstreams::peer::HttpPeer;

use crate::config::ConfigError;
use crate::core::errors::EdgeError;

/// Largest provider response accepted.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// How long an idle pooled connection is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A provider's status and body.
#[derive(Debug)]
pub struct ProviderResponse {
    pub status: u16,
    pub body: Bytes,
}

/// One provider endpoint and its connection pool.
pub struct ProviderUpstream {
    host: String,
    port: u16,
    tls: bool,
    /// `Host` header value.
    authority: String,
    /// Path and query of the configured URL.
    path_and_query: String,
    timeout: Duration,
    connector: Connector,
    /// Exchanges on a new connection / on a pooled one (for `/metrics`).
    opened: AtomicU64,
    reused: AtomicU64,
}

impl ProviderUpstream {
    /// The provider at `url` (validated as http(s) by the config); `key` names the setting in
    /// errors.
    pub fn new(
        key: &'static str,
        url: &str,
        timeout_ms: u64,
    ) -> Result<ProviderUpstream, ConfigError> {
        let invalid = |problem: &str| ConfigError::Invalid {
            key,
            problem: problem.to_string(),
            fix: "write an absolute URL such as \"https://license.example.com/proxy\"".into(),
        };
        let uri: http::Uri = url.parse().map_err(|_| invalid("is not a URL"))?;
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
        let path_and_query = uri
            .path_and_query()
            .map(|pq| pq.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        Ok(ProviderUpstream {
            host,
            port,
            tls,
            authority,
            path_and_query,
            timeout: Duration::from_millis(timeout_ms),
            connector: Connector::new(None),
            opened: AtomicU64::new(0),
            reused: AtomicU64::new(0),
        })
    }

    /// Exchanges so far on new connections and on pooled (warm) ones.
    pub fn connection_counts(&self) -> (u64, u64) {
        (
            self.opened.load(Ordering::Relaxed),
            self.reused.load(Ordering::Relaxed),
        )
    }

    /// POSTs `body` with `headers`, appending `query` (already URL-safe) to the URL.
    pub async fn post(
        &self,
        query: Option<&str>,
        headers: &[(&'static str, &str)],
        body: Bytes,
    ) -> Result<ProviderResponse, EdgeError> {
        let attempt = async {
            let peer = self.peer().await?;
            match self.exchange(&peer, query, headers, body.clone()).await {
                Ok(response) => Ok(response),
                // A pooled connection may have been closed by the provider: once more, fresh.
                Err(Failure::OnReusedConnection) => {
                    match self.exchange(&peer, query, headers, body.clone()).await {
                        Ok(response) => Ok(response),
                        Err(_) => Err(EdgeError::ProviderFailed("drm_provider_unavailable")),
                    }
                }
                Err(Failure::Fatal) => Err(EdgeError::ProviderFailed("drm_provider_unavailable")),
            }
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(host = %self.host, "license provider timed out");
                Err(EdgeError::ProviderFailed("drm_provider_timeout"))
            }
        }
    }

    async fn peer(&self) -> Result<HttpPeer, EdgeError> {
        let addr = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| {
                tracing::warn!(host = %self.host, "license provider host does not resolve");
                EdgeError::ProviderFailed("drm_provider_unavailable")
            })?;
        let mut peer = HttpPeer::new(addr, self.tls, self.host.clone());
        peer.options.connection_timeout = Some(self.timeout);
        peer.options.total_connection_timeout = Some(self.timeout);
        peer.options.read_timeout = Some(self.timeout);
        peer.options.write_timeout = Some(self.timeout);
        peer.options.idle_timeout = Some(IDLE_TIMEOUT);
        Ok(peer)
    }

    async fn exchange(
        &self,
        peer: &HttpPeer,
        query: Option<&str>,
        headers: &[(&'static str, &str)],
        body: Bytes,
    ) -> Result<ProviderResponse, Failure> {
        let (mut session, reused) = self.connector.get_http_session(peer).await.map_err(|e| {
            tracing::warn!(host = %self.host, error = %e.etype().as_str(), "cannot connect to the license provider");
            Failure::Fatal
        })?;
        match reused {
            true => &self.reused,
            false => &self.opened,
        }
        .fetch_add(1, Ordering::Relaxed);
        let fail = |stage: &'static str, e: Box<pingora::Error>| {
            if !reused {
                tracing::warn!(host = %self.host, stage, error = %e.etype().as_str(), "license provider exchange failed");
            }
            if reused {
                Failure::OnReusedConnection
            } else {
                Failure::Fatal
            }
        };
        let target = match query {
            Some(query) if self.path_and_query.contains('?') => {
                format!("{}&{query}", self.path_and_query)
            }
            Some(query) => format!("{}?{query}", self.path_and_query),
            None => self.path_and_query.clone(),
        };
        let mut request = RequestHeader::build("POST", target.as_bytes(), Some(headers.len() + 2))
            .map_err(|e| fail("request", e))?;
        let mut insert = |name: &'static str, value: &str| {
            request
                .insert_header(name, value)
                .map_err(|e| fail("request", e))
        };
        insert("host", &self.authority)?;
        insert("content-length", &body.len().to_string())?;
        for (name, value) in headers {
            insert(name, value)?;
        }
        session
            .write_request_header(Box::new(request))
            .await
            .map_err(|e| fail("write", e))?;
        session
            .write_request_body(body, true)
            .await
            .map_err(|e| fail("write", e))?;
        session
            .finish_request_body()
            .await
            .map_err(|e| fail("write", e))?;
        session
            .read_response_header()
            .await
            .map_err(|e| fail("read", e))?;
        let status = session
            .response_header()
            .map(|h| h.status.as_u16())
            .unwrap_or(0);
        let mut collected = BytesMut::new();
        while let Some(chunk) = session
            .read_response_body()
            .await
            .map_err(|e| fail("read", e))?
        {
            if collected.len() + chunk.len() > MAX_RESPONSE_BYTES {
                tracing::warn!(host = %self.host, "license provider response too large");
                return Err(Failure::Fatal);
            }
            collected.extend_from_slice(&chunk);
        }
        self.connector
            .release_http_session(session, peer, Some(IDLE_TIMEOUT))
            .await;
        Ok(ProviderResponse {
            status,
            body: collected.freeze(),
        })
    }
}

/// Why one exchange failed.
enum Failure {
    /// On a pooled connection: worth one retry on a fresh one.
    OnReusedConnection,
    Fatal,
}
