//! Where the edge listens: the plain HTTP listener (`server.listen`, unless
//! `tls.plain_http = false`), the HTTPS listener (`[tls]`: certificates by SNI, TLS 1.2 and
//! 1.3 only — Pingora's rustls backend offers nothing older —, ALPN `h2` then `http/1.1`,
//! client certificates asked for when a client CA is set), the connection filter that drops
//! refused addresses before their handshake, and the background service that reloads
//! certificates on SIGHUP or when their files change (a bad new set keeps the old one).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use pingora::listeners::tls::TlsSettings;
use pingora::server::{Server, ShutdownWatch};
use pingora::services::background::{background_service, BackgroundService};
use pingora::services::listening::Service;
use playback::client_address::ClientAddressRule;

use crate::config::{ConfigError, EdgeConfig};
use crate::core::metrics::Metrics;
use crate::transport::certificates::CertificateStore;
use crate::transport::client_certificates::{ClientCertificates, HandshakeRecorder};
use crate::transport::connection_filter::AddressFilter;
use crate::transport::perimeter::Perimeter;

/// The edge's listening endpoints and what they need, built from `[server]` and `[tls]`.
pub struct Listeners {
    /// The plain HTTP address, when it is open.
    pub plain: Option<SocketAddr>,
    /// The HTTPS address and its certificates, when TLS is on.
    pub tls: Option<TlsListener>,
    filter: Option<Arc<AddressFilter>>,
    metrics: Arc<Metrics>,
}

/// The HTTPS listener's parts.
pub struct TlsListener {
    pub addr: SocketAddr,
    pub certificates: Arc<CertificateStore>,
    pub client_certificates: Option<Arc<ClientCertificates>>,
    reload_check: Option<Duration>,
}

impl Listeners {
    /// Loads the certificates and the client CA (a problem names the key and the file).
    pub fn build(
        config: &EdgeConfig,
        perimeter: Arc<Perimeter>,
        client_addresses: ClientAddressRule,
        metrics: Arc<Metrics>,
    ) -> Result<Listeners, ConfigError> {
        let tls_config = &config.tls;
        let tls = match tls_config.listen_addr()? {
            None => None,
            Some(addr) => {
                pingora::tls::install_default_crypto_provider();
                let certificates =
                    CertificateStore::load(&tls_config.certificates, SystemTime::now()).map_err(
                        |problem| ConfigError::Invalid {
                            key: "tls.certificates",
                            problem,
                            fix: "give PEM files: the chain (leaf first) and its unencrypted private key, valid today".into(),
                        },
                    )?;
                let client_certificates = match tls_config.client_ca_file.as_os_str().is_empty() {
                    true => None,
                    false => Some(Arc::new(
                        ClientCertificates::load(&tls_config.client_ca_file).map_err(
                            |problem| ConfigError::Invalid {
                                key: "tls.client_ca_file",
                                problem,
                                fix: "give a PEM bundle of the CA certificates that issue client certificates".into(),
                            },
                        )?,
                    )),
                };
                Some(TlsListener {
                    addr,
                    certificates: Arc::new(certificates),
                    client_certificates,
                    reload_check: (tls_config.reload_check_secs > 0)
                        .then(|| Duration::from_secs(tls_config.reload_check_secs)),
                })
            }
        };
        let plain = match tls.is_none() || tls_config.plain_http {
            true => Some(config.server.listen_addr()?),
            false => None,
        };
        let filter = perimeter.filters_addresses().then(|| {
            Arc::new(AddressFilter::new(
                perimeter,
                client_addresses,
                metrics.clone(),
            ))
        });
        Ok(Listeners {
            plain,
            tls,
            filter,
            metrics,
        })
    }

    /// Every address the edge accepts connections on.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.plain
            .into_iter()
            .chain(self.tls.as_ref().map(|tls| tls.addr))
            .collect()
    }

    /// Opens the endpoints on the proxy service and adds the certificate reloader to `server`.
    pub fn attach<A: Send + Sync + 'static>(self, proxy: &mut Service<A>, server: &mut Server) {
        if let Some(filter) = &self.filter {
            proxy.set_connection_filter(filter.clone());
        }
        if let Some(plain) = self.plain {
            proxy.add_tcp(&plain.to_string());
        }
        let Some(tls) = self.tls else {
            return;
        };
        let mut settings = match &tls.client_certificates {
            Some(client_certificates) => {
                let recorder = HandshakeRecorder::new(client_certificates.clone());
                let mut settings = TlsSettings::with_callbacks(Box::new(recorder))
                    .expect("settings with callbacks are infallible");
                settings.set_client_cert_verifier(client_certificates.clone());
                settings
            }
            None => TlsSettings::intermediate("", "").expect("settings are infallible"),
        };
        settings.set_cert_resolver(tls.certificates.clone());
        settings.enable_h2();
        proxy.add_tls_with_settings(&tls.addr.to_string(), None, settings);
        server.add_service(background_service(
            "certificate reloader",
            CertificateReloader {
                certificates: tls.certificates,
                client_certificates: tls.client_certificates,
                check_every: tls.reload_check,
                metrics: self.metrics,
            },
        ));
    }
}

/// Reloads the certificates and the client CA on SIGHUP, and when their files change.
struct CertificateReloader {
    certificates: Arc<CertificateStore>,
    client_certificates: Option<Arc<ClientCertificates>>,
    check_every: Option<Duration>,
    metrics: Arc<Metrics>,
}

impl CertificateReloader {
    fn reload(&self, forced: bool) {
        let server_changed = forced || self.certificates.changed_on_disk();
        let ca_changed = self
            .client_certificates
            .as_ref()
            .is_some_and(|ca| forced || ca.changed_on_disk());
        if server_changed {
            let result = self.certificates.reload(SystemTime::now());
            self.metrics.tls_reload(result.is_ok());
            match result {
                Ok(()) => tracing::info!(
                    names = ?self.certificates.names(),
                    "tls certificates reloaded"
                ),
                Err(problem) => tracing::error!(
                    problem,
                    "tls certificates not reloaded; the previous ones keep serving"
                ),
            }
        }
        if let (true, Some(ca)) = (ca_changed, &self.client_certificates) {
            let result = ca.reload();
            self.metrics.tls_reload(result.is_ok());
            match result {
                Ok(()) => tracing::info!("client CA bundle reloaded"),
                Err(problem) => tracing::error!(
                    problem,
                    "client CA bundle not reloaded; the previous one stays"
                ),
            }
        }
    }
}

#[async_trait]
impl BackgroundService for CertificateReloader {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(hangups) => Some(hangups),
            Err(e) => {
                tracing::warn!(error = %e, "SIGHUP cannot be watched; certificates reload on file changes only");
                None
            }
        };
        let mut ticks = self
            .check_every
            .map(|every| tokio::time::interval_at(tokio::time::Instant::now() + every, every));
        loop {
            let hangup = async {
                match hangups.as_mut() {
                    Some(hangups) => hangups.recv().await,
                    None => std::future::pending().await,
                }
            };
            let tick = async {
                match ticks.as_mut() {
                    Some(ticks) => ticks.tick().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = hangup => self.reload(true),
                _ = tick => self.reload(false),
                _ = shutdown.changed() => return,
            }
        }
    }
}
