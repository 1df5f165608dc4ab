//! The HTTP origin: media served by one or more HTTP(S) servers with the same layout,
//! `{base URL}/{videoId}/{path}`, where the base URLs are `origin.url` or the list
//! `origin.urls`.
//!
//! Segments travel through Pingora: [`HttpOrigin::upstream_peer`] names the server for an
//! attempt and [`HttpOrigin::prepare_upstream_request`] rewrites the request for it (path under
//! its base path, its `Host`, no viewer credentials). Playlists are small documents the edge
//! must rewrite, so [`HttpOrigin::playlist`] fetches them whole with a size bound.
//!
//! # Several servers
//!
//! The servers form a `pingora-load-balancing` [`LoadBalancer`] with [`RoundRobin`] selection.
//! Its background service ([`OriginHealthService`], started by `main.rs`) resolves every
//! server's host (discovery, every 10 s or every interval if longer) and checks every server each
//! `origin.health_check_interval_ms`: with `origin.health_check_path` set, a
//! `GET {base path}{health_check_path}` with the server's `Host` must answer 2xx
//! (`HttpHealthCheck`); unset, a TCP (or TLS) connection must open (`TcpHealthCheck`). One
//! failed check marks a server unhealthy, one good check healthy again.
//!
//! A segment request's first attempt goes to the next healthy server in round-robin order; a
//! connect failure makes the proxy retry (up to [`HttpOrigin::max_attempts`]) on a server the
//! request has not tried, healthy ones first. When none is healthy the edge fails open and
//! tries them in configuration order rather than refuse. Playlists fail over the same way on
//! connect errors, timeouts and 5xx answers.
//!
//! The servers a request has tried live in the request's own context (`tried`):
//! `upstream_peer` appends the one it picks, and `prepare_upstream_request` names the last one,
//! so the `Host` and base path always match the peer.
//!
//! Two base URLs that resolve to the same address and port count as one server for the load
//! balancer (the first one listed); list distinct servers.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use pingora::http::RequestHeader;
use pingora::lb::discovery::ServiceDiscovery;
use pingora::lb::health_check::{HealthCheck, HttpHealthCheck, TcpHealthCheck};
use pingora::lb::selection::RoundRobin;
use pingora::lb::{Backend, Backends, Extensions, LoadBalancer};
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType};

use super::fetch::{freshness, read_playlist, OriginError, OriginPlaylist};
use super::upstream::UpstreamRequest;
use crate::config::{ConfigError, OriginConfig};
use playback::hls::AssetPath;

/// Most attempts one request makes (segments and playlists).
const MAX_ATTEMPTS: usize = 3;
/// Host names are resolved again every this long (or every health check interval, when that
/// is longer): DNS changes are picked up without a lookup per request.
const MIN_DISCOVERY_INTERVAL: Duration = Duration::from_secs(10);

/// One or more HTTP(S) media servers with the same layout.
pub struct HttpOrigin {
    /// In configuration order (`origin.url`, or `origin.urls`).
    servers: Arc<[Server]>,
    balancer: Arc<LoadBalancer<RoundRobin>>,
    checker: Arc<Checker>,
    max_playlist_bytes: u64,
    client: reqwest::Client,
}

/// One origin server.
struct Server {
    /// The base URL without a trailing slash, e.g. `http://127.0.0.1:9000/media`.
    base_url: String,
    /// The path part of `base_url` without a trailing slash (`/media`, or empty).
    base_path: String,
    /// The host to resolve and to name in TLS (SNI), without IPv6 brackets.
    host: String,
    port: u16,
    /// `Host` header value: host, plus port when it is not the scheme's default.
    authority: String,
    tls: bool,
    timeout: Duration,
    /// The address found by the last resolution.
    resolved: Mutex<Option<SocketAddr>>,
}

/// The index of a [`Server`] in [`HttpOrigin::servers`], carried in a load balancer
/// [`Backend`]'s extensions.
#[derive(Debug, Clone, Copy)]
struct ServerIndex(usize);

impl Server {
    fn new(url: &str, timeout: Duration, key: &'static str) -> Result<Server, ConfigError> {
        let invalid = |problem: &str| ConfigError::Invalid {
            key,
            problem: problem.to_string(),
            fix: "write an absolute URL such as \"http://media.internal:9000/media\"".into(),
        };
        let uri: ::http::Uri = url.parse().map_err(|_| invalid("is not a URL"))?;
        let tls = uri.scheme_str() == Some("https");
        let host = uri.host().ok_or_else(|| invalid("has no host"))?;
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let authority = match uri.port_u16() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        Ok(Server {
            base_url: url.trim_end_matches('/').to_string(),
            base_path: uri.path().trim_end_matches('/').to_string(),
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            authority,
            tls,
            timeout,
            resolved: Mutex::new(None),
        })
    }

    /// `{base URL}/{videoId}/`.
    fn prefix(&self, video_id: &str) -> String {
        format!("{}/{video_id}/", self.base_url)
    }

    /// `{base_path}/{videoId}/{path}` plus `query` (already stripped of the edge's token).
    fn upstream_path(&self, video_id: &str, path: &AssetPath, query: Option<&str>) -> String {
        let mut target = format!("{}/{video_id}/{}", self.base_path, path.encoded());
        if let Some(query) = query.filter(|q| !q.is_empty()) {
            target.push('?');
            target.push_str(query);
        }
        target
    }

    /// Resolves the host now (DNS may change) and remembers the address.
    async fn resolve(&self) -> Result<SocketAddr, String> {
        let lookup = tokio::net::lookup_host((self.host.as_str(), self.port));
        let addr = match tokio::time::timeout(self.timeout, lookup).await {
            Ok(Ok(mut addrs)) => addrs
                .next()
                .ok_or_else(|| format!("{} has no address", self.host))?,
            Ok(Err(e)) => return Err(format!("cannot resolve {}: {e}", self.host)),
            Err(_) => return Err(format!("resolving {} timed out", self.host)),
        };
        *lock(&self.resolved) = Some(addr);
        Ok(addr)
    }

    /// The last resolved address, or a fresh resolution when there is none yet.
    async fn address(&self) -> Result<SocketAddr, String> {
        let known = *lock(&self.resolved);
        match known {
            Some(addr) => Ok(addr),
            None => self.resolve().await,
        }
    }

    fn peer(&self, addr: SocketAddr) -> HttpPeer {
        let mut peer = HttpPeer::new(addr, self.tls, self.host.clone());
        peer.options.connection_timeout = Some(self.timeout);
        peer.options.total_connection_timeout = Some(self.timeout);
        peer.options.read_timeout = Some(self.timeout);
        peer.options.write_timeout = Some(self.timeout);
        peer
    }

    fn lb_backend(&self, index: usize, addr: SocketAddr) -> Backend {
        let mut ext = Extensions::new();
        ext.insert(ServerIndex(index));
        Backend {
            addr: pingora::protocols::l4::socket::SocketAddr::Inet(addr),
            weight: 1,
            ext,
        }
    }
}

impl HttpOrigin {
    /// An origin for `origin.url` or `origin.urls` (already validated as http(s) URLs).
    pub fn new(config: &OriginConfig) -> Result<HttpOrigin, ConfigError> {
        let timeout = Duration::from_millis(config.timeout_ms);
        let servers: Vec<Server> = match config.urls.is_empty() {
            true => vec![Server::new(&config.url, timeout, "origin.url")?],
            false => config
                .urls
                .iter()
                .map(|url| Server::new(url, timeout, "origin.urls"))
                .collect::<Result<_, _>>()?,
        };
        let servers: Arc<[Server]> = servers.into();
        let checker = Arc::new(Checker::new(
            servers.clone(),
            &config.health_check_path,
            timeout,
        )?);
        let mut backends = Backends::new(Box::new(Discovery {
            servers: servers.clone(),
            checker: checker.clone(),
        }));
        backends.set_health_check(Box::new(SharedCheck(checker.clone())));
        let mut balancer = LoadBalancer::<RoundRobin>::from_backends(backends);
        let interval = Duration::from_millis(config.health_check_interval_ms);
        balancer.health_check_frequency = Some(interval);
        balancer.update_frequency = Some(interval.max(MIN_DISCOVERY_INTERVAL));
        // One slow server must not delay the verdict on the others.
        balancer.parallel_health_check = true;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ConfigError::Invalid {
                key: "origin.url",
                problem: format!("cannot build an HTTP client: {e}"),
                fix: "check the TLS setup of this machine".into(),
            })?;
        Ok(HttpOrigin {
            servers,
            balancer: Arc::new(balancer),
            checker,
            max_playlist_bytes: config.max_playlist_bytes,
            client,
        })
    }

    /// `{first base URL}/{videoId}/`: how the origin's own absolute URIs for this title begin
    /// (playlists from the other servers have theirs replaced by it).
    pub fn prefix(&self, video_id: &str) -> String {
        self.servers[0].prefix(video_id)
    }

    /// The number of servers, at most 3: how many attempts a request may make.
    pub fn max_attempts(&self) -> usize {
        self.servers.len().min(MAX_ATTEMPTS)
    }

    /// The background service that resolves and health-checks the servers.
    pub fn health_service(&self) -> OriginHealthService {
        OriginHealthService {
            balancer: self.balancer.clone(),
        }
    }

    /// The next server for a request that has tried `used`: the load balancer's next healthy
    /// one (round robin), else a server not known to be failing, else any (fail open), in
    /// configuration order; when every server was tried, they repeat.
    fn pick(&self, used: &[usize]) -> usize {
        let n = self.servers.len();
        let untried = |i: &usize| !used.contains(i);
        let balanced = self.balancer.select_with(b"", 4 * n + 4, |backend, ready| {
            ready
                && backend
                    .ext
                    .get::<ServerIndex>()
                    .is_some_and(|ServerIndex(i)| untried(i))
        });
        if let Some(ServerIndex(i)) = balanced.and_then(|b| b.ext.get::<ServerIndex>().copied()) {
            return i;
        }
        (0..n)
            .filter(untried)
            .find(|&i| !self.checker.is_failing(i))
            .or_else(|| (0..n).find(untried))
            .unwrap_or(used.len() % n)
    }

    /// The Pingora peer for the request's next attempt: a server it has not `tried` (see
    /// [`Self::pick`]), which is appended to `tried`.
    pub async fn upstream_peer(&self, tried: &mut Vec<usize>) -> Result<HttpPeer, OriginError> {
        let index = self.pick(tried);
        tried.push(index);
        let server = &self.servers[index];
        let addr = server.address().await.map_err(OriginError::Failed)?;
        Ok(server.peer(addr))
    }

    /// The request for the server of the request's current attempt (the last one `tried`):
    /// its base path, its `Host`; the viewer's `Authorization` and `Cookie` are removed.
    pub fn prepare_upstream_request(
        &self,
        tried: &[usize],
        video_id: &str,
        path: &AssetPath,
        query: Option<&str>,
    ) -> Result<UpstreamRequest, OriginError> {
        let index = tried.last().copied().unwrap_or(0);
        let server = self
            .servers
            .get(index)
            .ok_or_else(|| OriginError::Failed("no origin server chosen".into()))?;
        let host = ::http::HeaderValue::from_str(&server.authority)
            .map_err(|e| OriginError::Failed(format!("building the origin request: {e}")))?;
        Ok(UpstreamRequest {
            path_and_query: server.upstream_path(video_id, path, query),
            clear: false,
            remove: vec![::http::header::AUTHORIZATION, ::http::header::COOKIE],
            insert: vec![(::http::header::HOST, host)],
        })
    }

    /// Fetches a whole playlist, refusing bodies over the size limit; on a connect error, a
    /// timeout or a 5xx it tries the next server (healthy ones first, at most
    /// [`Self::max_attempts`]). A 404 is final. A playlist from any server but the first has
    /// that server's own prefix replaced by the first one's, so [`Self::prefix`] maps its
    /// absolute URIs.
    pub async fn playlist(
        &self,
        video_id: &str,
        path: &AssetPath,
    ) -> Result<OriginPlaylist, OriginError> {
        let mut used = Vec::new();
        let mut last_failure = String::new();
        for _ in 0..self.max_attempts() {
            let index = self.pick(&used);
            used.push(index);
            let server = &self.servers[index];
            match self.fetch_playlist(server, video_id, path).await {
                Ok(mut playlist) => {
                    if index != 0 {
                        playlist.body = playlist
                            .body
                            .replace(&server.prefix(video_id), &self.prefix(video_id));
                    }
                    return Ok(playlist);
                }
                Err(OriginError::Failed(cause)) => {
                    tracing::warn!(origin = %server.base_url, cause = %cause, "playlist fetch failed; trying the next origin server");
                    last_failure = cause;
                }
                Err(final_error) => return Err(final_error),
            }
        }
        Err(OriginError::Failed(last_failure))
    }

    async fn fetch_playlist(
        &self,
        server: &Server,
        video_id: &str,
        path: &AssetPath,
    ) -> Result<OriginPlaylist, OriginError> {
        let url = format!("{}/{video_id}/{}", server.base_url, path.encoded());
        let response = self.client.get(&url).send().await.map_err(failed)?;
        match response.status().as_u16() {
            200 => {}
            404 | 410 => return Err(OriginError::NotFound),
            status => return Err(OriginError::Failed(format!("origin answered {status}"))),
        }
        let max_age_secs = freshness(response.headers());
        let body = read_playlist(response, self.max_playlist_bytes, failed).await?;
        Ok(OriginPlaylist { body, max_age_secs })
    }

    /// `Ok` when at least one server is healthy (by its last background check, or by a check
    /// now for a server not checked yet); otherwise a sentence counting the healthy servers
    /// and saying what is wrong with each.
    pub async fn check_reachable(&self) -> Result<(), String> {
        let verdicts =
            futures::future::join_all((0..self.servers.len()).map(|i| self.checker.verdict(i)))
                .await;
        let healthy = verdicts.iter().filter(|v| v.is_ok()).count();
        if healthy > 0 {
            return Ok(());
        }
        let problems: Vec<String> = verdicts
            .iter()
            .zip(self.servers.iter())
            .filter_map(|(verdict, server)| {
                verdict
                    .as_ref()
                    .err()
                    .map(|e| format!("{}: {e}", server.base_url))
            })
            .collect();
        Err(format!(
            "0 of {} HTTP origin servers healthy ({})",
            self.servers.len(),
            problems.join("; ")
        ))
    }
}

/// Runs the HTTP origin's discovery and health checks for the life of the process (a Pingora
/// background service; without it every server counts as healthy and `/ready` checks them on
/// demand).
pub struct OriginHealthService {
    balancer: Arc<LoadBalancer<RoundRobin>>,
}

#[async_trait]
impl BackgroundService for OriginHealthService {
    async fn start(&self, shutdown: ShutdownWatch) {
        self.balancer.start(shutdown).await;
    }
}

/// Resolves every server's host; a server whose host does not resolve is left out (and
/// recorded as failing) until it does.
struct Discovery {
    servers: Arc<[Server]>,
    checker: Arc<Checker>,
}

#[async_trait]
impl ServiceDiscovery for Discovery {
    async fn discover(&self) -> pingora::Result<(BTreeSet<Backend>, HashMap<u64, bool>)> {
        let resolved =
            futures::future::join_all(self.servers.iter().map(|server| server.resolve())).await;
        let mut backends = BTreeSet::new();
        for (index, result) in resolved.into_iter().enumerate() {
            match result {
                Ok(addr) => {
                    backends.insert(self.servers[index].lb_backend(index, addr));
                }
                Err(cause) => {
                    tracing::warn!(origin = %self.servers[index].base_url, cause = %cause, "origin server not resolved");
                    self.checker.record(index, Err(cause));
                }
            }
        }
        Ok((backends, HashMap::new()))
    }
}

/// How one server is checked.
enum Probe {
    Http(Box<HttpHealthCheck>),
    Tcp(Box<TcpHealthCheck>),
}

/// The per-server checks and their last results.
struct Checker {
    servers: Arc<[Server]>,
    probes: Vec<Probe>,
    /// The last background check of each server (`None`: not checked yet).
    results: Vec<Mutex<Option<Result<(), String>>>>,
}

impl Checker {
    fn new(
        servers: Arc<[Server]>,
        health_check_path: &str,
        timeout: Duration,
    ) -> Result<Checker, ConfigError> {
        let probes = servers
            .iter()
            .map(|server| Self::probe_for(server, health_check_path, timeout))
            .collect::<Result<Vec<_>, _>>()?;
        let results = servers.iter().map(|_| Mutex::new(None)).collect();
        Ok(Checker {
            servers,
            probes,
            results,
        })
    }

    fn probe_for(server: &Server, path: &str, timeout: Duration) -> Result<Probe, ConfigError> {
        if path.is_empty() {
            let mut check = match server.tls {
                true => TcpHealthCheck::new_tls(&server.host),
                false => TcpHealthCheck::new(),
            };
            check.peer_template.options.connection_timeout = Some(timeout);
            return Ok(Probe::Tcp(check));
        }
        let invalid = |e: Box<Error>| ConfigError::Invalid {
            key: "origin.health_check_path",
            problem: format!("does not make a request: {e}"),
            fix: "write a path such as \"/healthz\"".into(),
        };
        let mut check = HttpHealthCheck::new(&server.host, server.tls);
        let target = format!("{}{path}", server.base_path);
        let mut req = RequestHeader::build("GET", target.as_bytes(), None).map_err(invalid)?;
        req.insert_header("host", server.authority.as_str())
            .map_err(invalid)?;
        req.insert_header("user-agent", "edge-proxy health check")
            .map_err(invalid)?;
        check.req = req;
        check.peer_template.options.connection_timeout = Some(timeout);
        check.peer_template.options.read_timeout = Some(timeout);
        check.peer_template.options.write_timeout = Some(timeout);
        check.validator = Some(Box::new(|response| match response.status.is_success() {
            true => Ok(()),
            false => Error::e_explain(
                ErrorType::CustomCode("health check status", response.status.as_u16()),
                format!("answered {}", response.status.as_u16()),
            ),
        }));
        Ok(Probe::Http(Box::new(check)))
    }

    async fn probe(&self, index: usize, target: &Backend) -> Result<(), String> {
        let result = match &self.probes[index] {
            Probe::Http(check) => check.check(target).await,
            Probe::Tcp(check) => check.check(target).await,
        };
        result.map_err(|e| describe(&e))
    }

    fn record(&self, index: usize, result: Result<(), String>) {
        *lock(&self.results[index]) = Some(result);
    }

    /// Whether the last check of `index` failed.
    fn is_failing(&self, index: usize) -> bool {
        matches!(*lock(&self.results[index]), Some(Err(_)))
    }

    /// The last background verdict on `index`, or a check now when there is none.
    async fn verdict(&self, index: usize) -> Result<(), String> {
        let last = lock(&self.results[index]).clone();
        if let Some(last) = last {
            return last;
        }
        let server = &self.servers[index];
        let addr = server.address().await?;
        self.probe(index, &server.lb_backend(index, addr)).await
    }
}

/// The [`Checker`] as the load balancer's health check.
struct SharedCheck(Arc<Checker>);

#[async_trait]
impl HealthCheck for SharedCheck {
    async fn check(&self, target: &Backend) -> pingora::Result<()> {
        let Some(&ServerIndex(index)) = target.ext.get::<ServerIndex>() else {
            return Error::e_explain(ErrorType::InternalError, "a backend without a server index");
        };
        let result = self.0.probe(index, target).await;
        self.0.record(index, result.clone());
        result.map_err(|cause| Error::explain(ErrorType::ConnectError, cause))
    }

    async fn health_status_change(&self, target: &Backend, healthy: bool) {
        let Some(&ServerIndex(index)) = target.ext.get::<ServerIndex>() else {
            return;
        };
        let origin = &self.0.servers[index].base_url;
        match healthy {
            true => tracing::info!(origin = %origin, "origin server healthy again"),
            false => {
                let cause = match lock(&self.0.results[index]).clone() {
                    Some(Err(cause)) => cause,
                    _ => String::new(),
                };
                tracing::warn!(origin = %origin, cause = %cause, "origin server unhealthy; skipped until it recovers");
            }
        }
    }

    fn backend_summary(&self, target: &Backend) -> String {
        match target.ext.get::<ServerIndex>() {
            Some(&ServerIndex(index)) => {
                format!("origin server {}", self.0.servers[index].base_url)
            }
            None => format!("{target:?}"),
        }
    }

    fn health_threshold(&self, _success: bool) -> usize {
        1
    }
}

/// A short description of a Pingora error: its type and context, without the cause chain.
fn describe(e: &Error) -> String {
    match &e.context {
        Some(context) => format!("{} ({context})", e.etype().as_str()),
        None => e.etype().as_str().to_string(),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
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
    use crate::config::OriginKind;

    const V: &str = "0b6f2a8e-3c1d-4e5f-9a7b-112233445566";

    fn config(urls: &[&str], health_check_path: &str) -> OriginConfig {
        OriginConfig {
            kind: OriginKind::Http,
            url: match urls.len() {
                1 => urls[0].into(),
                _ => String::new(),
            },
            urls: match urls.len() {
                1 => Vec::new(),
                _ => urls.iter().map(|u| u.to_string()).collect(),
            },
            health_check_path: health_check_path.into(),
            timeout_ms: 2_000,
            ..OriginConfig::default()
        }
    }

    fn origin(urls: &[&str]) -> HttpOrigin {
        HttpOrigin::new(&config(urls, "")).unwrap()
    }

    /// A server answering `/media/...` paths: `status` for `/media/healthz`, a playlist
    /// naming its own absolute URL (with `Cache-Control`) for `.m3u8`, 404 for `missing.m3u8`.
    async fn media_server(status: u16) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/media", listener.local_addr().unwrap());
        let own = base.clone();
        let app = axum::Router::new().fallback(move |uri: ::http::Uri| {
            let own = own.clone();
            async move {
                let status = ::http::StatusCode::from_u16(status).unwrap();
                let path = uri.path().to_string();
                if path == "/media/healthz" || !status.is_success() {
                    return (status, [("cache-control", "no-store")], String::new());
                }
                if path.ends_with("missing.m3u8") {
                    return (
                        ::http::StatusCode::NOT_FOUND,
                        [("cache-control", "no-store")],
                        String::new(),
                    );
                }
                let body = format!("#EXTM3U\n#EXTINF:6.0,\n{own}/{V}/seg.ts\n");
                (status, [("cache-control", "max-age=4")], body)
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        base
    }

    fn closed_port_url() -> String {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        format!("http://127.0.0.1:{port}/media")
    }

    #[test]
    fn paths_and_prefixes() {
        let path = AssetPath::parse("720p/seg%20001.ts").unwrap();
        let server = Server::new(
            "http://127.0.0.1:9000/media/",
            Duration::from_secs(1),
            "origin.url",
        )
        .unwrap();
        assert_eq!(
            server.upstream_path(V, &path, Some("a=1")),
            format!("/media/{V}/720p/seg%20001.ts?a=1")
        );
        assert_eq!(
            server.upstream_path(V, &path, Some("")),
            format!("/media/{V}/720p/seg%20001.ts")
        );
        assert_eq!(
            server.prefix(V),
            format!("http://127.0.0.1:9000/media/{V}/")
        );
        assert_eq!(server.authority, "127.0.0.1:9000");

        let server = Server::new(
            "https://cdn.example.com",
            Duration::from_secs(1),
            "origin.url",
        )
        .unwrap();
        assert_eq!(
            server.upstream_path(V, &path, None),
            format!("/{V}/720p/seg%20001.ts")
        );
        assert_eq!(server.authority, "cdn.example.com");
        assert_eq!((server.port, server.tls), (443, true));

        let server =
            Server::new("http://[::1]:8080/m", Duration::from_secs(1), "origin.url").unwrap();
        assert_eq!(
            (server.host.as_str(), server.authority.as_str()),
            ("::1", "[::1]:8080")
        );

        let one = origin(&["http://a.example/media"]);
        assert_eq!(one.max_attempts(), 1);
        assert_eq!(one.prefix(V), format!("http://a.example/media/{V}/"));
        let four = origin(&["http://a/m", "http://b/m", "http://c/m", "http://d/m"]);
        assert_eq!(four.max_attempts(), 3);
    }

    /// Each attempt of a request goes to another server, and the request prepared for an
    /// attempt names that attempt's server (`Host` and base path).
    #[tokio::test]
    async fn attempts_choose_distinct_servers_and_requests_follow() {
        let a = media_server(200).await;
        let b = media_server(200).await;
        let origin = Arc::new(origin(&[&a, &b]));
        origin.balancer.update().await.unwrap();
        let path = AssetPath::parse("720p/seg.ts").unwrap();
        for _ in 0..4 {
            let origin = origin.clone();
            let path = path.clone();
            let (p0, h0, p1, h1) = tokio::spawn(async move {
                let mut hosts = Vec::new();
                let mut peers = Vec::new();
                let mut tried = Vec::new();
                for _attempt in 0..2 {
                    let peer = origin.upstream_peer(&mut tried).await.unwrap();
                    let mut req = ::http::Request::get("/hls/x?hdnts=t")
                        .header("authorization", "Bearer x")
                        .header("cookie", "hdnts=t")
                        .body(())
                        .unwrap();
                    let (uri, headers) = {
                        let (mut parts, ()) = req.into_parts();
                        origin
                            .prepare_upstream_request(&tried, V, &path, Some("part=1"))
                            .unwrap()
                            .apply_to(&mut parts.uri, &mut parts.headers)
                            .unwrap();
                        req = ::http::Request::from_parts(parts, ());
                        (req.uri(), req.headers())
                    };
                    assert!(headers.get("authorization").is_none());
                    assert!(headers.get("cookie").is_none());
                    assert_eq!(uri.path(), format!("/media/{V}/720p/seg.ts"));
                    assert_eq!(uri.query(), Some("part=1"));
                    hosts.push(headers["host"].to_str().unwrap().to_string());
                    peers.push(peer._address.to_string());
                }
                (
                    peers[0].clone(),
                    hosts[0].clone(),
                    peers[1].clone(),
                    hosts[1].clone(),
                )
            })
            .await
            .unwrap();
            assert_eq!(p0, h0, "attempt 0: request and peer agree");
            assert_eq!(p1, h1, "attempt 1: request and peer agree");
            assert_ne!(p0, p1, "a retry goes to the other server");
        }
        // First attempts alone alternate (round robin).
        let mut firsts = std::collections::HashSet::new();
        for _ in 0..4 {
            let origin = origin.clone();
            let first = tokio::spawn(async move {
                let peer = origin.upstream_peer(&mut Vec::new()).await.unwrap();
                peer._address.to_string()
            })
            .await
            .unwrap();
            firsts.insert(first);
        }
        assert_eq!(firsts.len(), 2, "first attempts are spread round-robin");
    }

    /// The background checks (run here by hand) take failing servers out of rotation; with
    /// none healthy the origin fails open, in configuration order.
    #[tokio::test]
    async fn health_checks_steer_and_fail_open() {
        let sick = media_server(503).await;
        let well = media_server(200).await;
        let down = closed_port_url();
        let origin = HttpOrigin::new(&config(&[&sick, &down, &well], "/healthz")).unwrap();
        origin.balancer.update().await.unwrap();
        origin.balancer.backends().run_health_check(true).await;
        assert!(origin.checker.is_failing(0) && origin.checker.is_failing(1));
        assert!(!origin.checker.is_failing(2));
        for _ in 0..4 {
            assert_eq!(
                origin.pick(&[]),
                2,
                "only the healthy server is chosen first"
            );
        }
        assert_eq!(
            origin.pick(&[2]),
            0,
            "then the others, in order (fail open)"
        );
        assert_eq!(origin.pick(&[2, 0]), 1);
        origin.check_reachable().await.unwrap();

        let all_down = HttpOrigin::new(&config(&[&sick, &down], "/healthz")).unwrap();
        all_down.balancer.update().await.unwrap();
        all_down.balancer.backends().run_health_check(true).await;
        assert_eq!(
            all_down.pick(&[]),
            0,
            "none healthy: fail open from the first"
        );
        assert_eq!(all_down.pick(&[0]), 1);
        let not_ready = all_down.check_reachable().await.unwrap_err();
        assert!(
            not_ready.starts_with("0 of 2 HTTP origin servers healthy"),
            "{not_ready}"
        );
        assert!(not_ready.contains("answered 503"), "{not_ready}");
        assert!(not_ready.contains(&down), "{not_ready}");

        // Without a health check path, a TCP connection is enough (the 503 server is up).
        let tcp = HttpOrigin::new(&config(&[&sick, &down], "")).unwrap();
        tcp.balancer.update().await.unwrap();
        tcp.balancer.backends().run_health_check(true).await;
        assert!(!tcp.checker.is_failing(0) && tcp.checker.is_failing(1));
    }

    /// `/ready` before any background check probes the servers itself.
    #[tokio::test]
    async fn readiness_without_background_checks() {
        let well = media_server(200).await;
        origin(&[&closed_port_url(), &well])
            .check_reachable()
            .await
            .unwrap();
        let err = origin(&[&closed_port_url()])
            .check_reachable()
            .await
            .unwrap_err();
        assert!(
            err.starts_with("0 of 1 HTTP origin servers healthy"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn playlists_fail_over_and_keep_the_first_prefix() {
        let sick = media_server(503).await;
        let well = media_server(200).await;
        let down = closed_port_url();
        let origin = origin(&[&sick, &down, &well]);
        let path = AssetPath::parse("master.m3u8").unwrap();
        for _ in 0..3 {
            let playlist = origin.playlist(V, &path).await.unwrap();
            assert_eq!(playlist.max_age_secs, Some(4));
            assert_eq!(
                playlist.body,
                format!("#EXTM3U\n#EXTINF:6.0,\n{sick}/{V}/seg.ts\n")
            );
        }
        let missing = AssetPath::parse("missing.m3u8").unwrap();
        assert!(matches!(
            origin.playlist(V, &missing).await,
            Err(OriginError::NotFound)
        ));

        let broken = HttpOrigin::new(&config(&[&sick, &down], "")).unwrap();
        match broken.playlist(V, &path).await {
            Err(OriginError::Failed(cause)) => assert!(
                cause == "origin answered 503" || cause == "connection failed",
                "{cause}"
            ),
            other => panic!("{other:?}"),
        }
    }
}
