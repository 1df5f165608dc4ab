//! Client certificates: asked for at the handshake, never required there, and judged per
//! route group afterwards (`perimeter`), so a request without one or with a wrong one gets a
//! JSON `403 client_certificate_required` / `client_certificate_rejected` instead of a
//! dropped connection the client cannot explain.
//!
//! At the handshake [`ClientCertificates`] (the rustls verifier) accepts any chain, but still
//! checks the client's handshake signature against the leaf's key, so a client presenting a
//! certificate holds its key. When the handshake completes, [`HandshakeRecorder`] verifies the
//! chain against the client CA bundle (webpki: signatures, validity period, client-auth usage)
//! and attaches a [`ClientCertificate`] (the verdict, the subject CN, SANs and SHA-256
//! fingerprint) to the connection, where every request on it reads it
//! ([`presented_certificate`]). The CA bundle reloads like the server certificates.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use async_trait::async_trait;
use pingora::listeners::TlsAccept;
use pingora::protocols::tls::{SslDigest, TlsRef};
use pingora::protocols::Digest;
use playback::route_policy::ClientCertificate;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use sha2::{Digest as _, Sha256};

/// The client CA bundle and the handshake-time verifier built on it.
pub struct ClientCertificates {
    ca_file: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Loaded>,
}

#[derive(Clone)]
struct Loaded {
    chain_verifier: Arc<dyn ClientCertVerifier>,
    stamp: Option<SystemTime>,
}

impl std::fmt::Debug for ClientCertificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificates")
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

impl ClientCertificates {
    /// Loads the CA bundle (PEM, at least one certificate).
    pub fn load(ca_file: &Path) -> Result<ClientCertificates, String> {
        let provider = CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
        let loaded = load_bundle(ca_file, &provider)?;
        Ok(ClientCertificates {
            ca_file: ca_file.to_path_buf(),
            provider,
            current: RwLock::new(loaded),
        })
    }

    fn current(&self) -> Loaded {
        match self.current.read() {
            Ok(loaded) => loaded.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// True when the bundle's modification time differs from when it was read.
    pub fn changed_on_disk(&self) -> bool {
        self.current().stamp != stamp(&self.ca_file)
    }

    /// Reads the bundle again; on failure the old one stays.
    pub fn reload(&self) -> Result<(), String> {
        let loaded = load_bundle(&self.ca_file, &self.provider)?;
        match self.current.write() {
            Ok(mut current) => *current = loaded,
            Err(poisoned) => *poisoned.into_inner() = loaded,
        }
        Ok(())
    }

    /// Verifies a presented chain against the bundle (leaf first).
    pub fn verify_chain(&self, chain: &[CertificateDer<'_>], now: UnixTime) -> Result<(), String> {
        let (leaf, intermediates) = chain.split_first().ok_or("no certificate")?;
        self.current()
            .chain_verifier
            .verify_client_cert(leaf, intermediates, now)
            .map(|_| ())
            .map_err(|e| short_reason(&e))
    }
}

impl ClientCertVerifier for ClientCertificates {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    /// No hints: a client offers whatever certificate it has (the bundle can change under a
    /// running listener, and the route groups judge the certificate afterwards).
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    /// Every chain passes here; [`HandshakeRecorder`] judges it once the handshake is done.
    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn stamp(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn load_bundle(path: &Path, provider: &Arc<CryptoProvider>) -> Result<Loaded, String> {
    let stamp = stamp(path);
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut roots = RootCertStore::empty();
    for cert in rustls_pemfile_certs(&pem) {
        roots
            .add(cert)
            .map_err(|e| format!("{}: a CA certificate is unusable ({e})", path.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("{} holds no CA certificate (PEM)", path.display()));
    }
    let chain_verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Loaded {
        chain_verifier,
        stamp,
    })
}

/// The `CERTIFICATE` blocks of a PEM bundle.
fn rustls_pemfile_certs(pem: &[u8]) -> Vec<CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .collect()
}

/// `expired`, `unknown issuer`, ... from a rustls verification error.
fn short_reason(error: &rustls::Error) -> String {
    match error {
        rustls::Error::InvalidCertificate(cert_error) => {
            use rustls::CertificateError as E;
            match cert_error {
                E::Expired | E::ExpiredContext { .. } => "expired".into(),
                E::NotValidYet | E::NotValidYetContext { .. } => "not valid yet".into(),
                E::UnknownIssuer => "unknown issuer".into(),
                E::BadSignature => "bad signature".into(),
                E::Revoked => "revoked".into(),
                E::InvalidPurpose | E::InvalidPurposeContext { .. } => {
                    "not for client authentication".into()
                }
                other => format!("{other:?}").chars().take(60).collect(),
            }
        }
        other => other.to_string().chars().take(60).collect(),
    }
}

/// After each handshake: judges the client's chain and keeps what the route groups need.
pub struct HandshakeRecorder {
    client_certificates: Arc<ClientCertificates>,
}

impl HandshakeRecorder {
    pub fn new(client_certificates: Arc<ClientCertificates>) -> HandshakeRecorder {
        HandshakeRecorder {
            client_certificates,
        }
    }

    /// The connection's [`ClientCertificate`] for `chain` (leaf first), verified at `now`.
    pub fn judge(
        &self,
        chain: &[CertificateDer<'_>],
        now: SystemTime,
    ) -> Option<ClientCertificate> {
        let leaf = chain.first()?;
        let unix = UnixTime::since_unix_epoch(
            now.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default(),
        );
        let verification = self.client_certificates.verify_chain(chain, unix);
        let (common_name, subject_alt_names) = names(leaf.as_ref());
        Some(ClientCertificate {
            verification,
            common_name,
            subject_alt_names,
            sha256: Sha256::digest(leaf.as_ref()).into(),
        })
    }
}

#[async_trait]
impl TlsAccept for HandshakeRecorder {
    async fn handshake_complete_callback(
        &self,
        tls: &TlsRef,
    ) -> Option<Arc<dyn Any + Send + Sync>> {
        let chain = tls.peer_cert_chain_der()?;
        let certificate = self.judge(chain, SystemTime::now())?;
        Some(Arc::new(certificate))
    }
}

/// The connection's TLS facts, shared (an `Arc` clone, no copy of the certificate), for
/// [`presented_certificate`].
pub fn tls_digest(digest: Option<&Digest>) -> Option<Arc<SslDigest>> {
    digest?.ssl_digest.clone()
}

/// The certificate the connection's client presented, when it did (over TLS).
pub fn presented_certificate(tls: Option<&SslDigest>) -> Option<&ClientCertificate> {
    tls?.extension.get::<ClientCertificate>()
}

/// True when the connection is TLS.
pub fn is_tls(digest: Option<&Digest>) -> bool {
    digest.is_some_and(|d| d.ssl_digest.is_some())
}

/// The subject CN and the SAN DNS names, URIs and e-mail addresses of a DER certificate.
fn names(der: &[u8]) -> (Option<String>, Vec<String>) {
    use x509_parser::extensions::GeneralName;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return (None, Vec::new());
    };
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string);
    let sans = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::DNSName(s) | GeneralName::URI(s) | GeneralName::RFC822Name(s) => {
                    Some(s.to_string())
                }
                _ => None,
            })
            .take(64)
            .collect(),
        _ => Vec::new(),
    };
    (common_name, sans)
}
