//! The HTTPS listener's certificates: several chains, chosen per handshake by the SNI name
//! against each leaf's DNS names (exact, then one-label wildcard), the first one for clients
//! that send no SNI or an unknown name. Reloaded without a restart: [`CertificateStore::reload`]
//! reads every file again and swaps the whole set only when all of them load, so a bad new
//! certificate (unreadable, key not matching, expired) leaves the old set serving.
//!
//! Written here rather than with rustls' `ResolvesServerCertUsingSni` because that one is fixed
//! at start-up and takes names from configuration; this one takes them from the certificates
//! and swaps atomically.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use pingora::tls::load_certs_and_key_files;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::config::CertificateFiles;

/// Certificates by name, swapped whole on reload.
pub struct CertificateStore {
    files: Vec<CertificateFiles>,
    current: RwLock<Arc<CertificateSet>>,
    /// The files' modification times at the last failed reload, so the same bad files are
    /// reported once, not on every check.
    failed_stamps: std::sync::Mutex<Option<Vec<Option<SystemTime>>>>,
}

impl std::fmt::Debug for CertificateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateStore")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

/// One loaded generation of certificates.
struct CertificateSet {
    default: Arc<CertifiedKey>,
    by_name: HashMap<String, Arc<CertifiedKey>>,
    /// Modification times of the files when they were read, to notice changes.
    stamps: Vec<Option<SystemTime>>,
    /// Each certificate's names, for the log.
    names: Vec<Vec<String>>,
}

impl CertificateStore {
    /// Loads every certificate or explains the first that does not load.
    pub fn load(files: &[CertificateFiles], now: SystemTime) -> Result<CertificateStore, String> {
        let set = CertificateSet::load(files, now)?;
        Ok(CertificateStore {
            files: files.to_vec(),
            current: RwLock::new(Arc::new(set)),
            failed_stamps: std::sync::Mutex::new(None),
        })
    }

    /// The DNS names of each certificate, in configuration order.
    pub fn names(&self) -> Vec<Vec<String>> {
        self.current().names.clone()
    }

    fn current(&self) -> Arc<CertificateSet> {
        match self.current.read() {
            Ok(set) => set.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// True when some file's modification time differs from when it was read, and from the
    /// last reload that failed.
    pub fn changed_on_disk(&self) -> bool {
        let on_disk = stamps(&self.files);
        let failed = self
            .failed_stamps
            .lock()
            .map(|f| f.clone())
            .unwrap_or_default();
        self.current().stamps != on_disk && failed.as_ref() != Some(&on_disk)
    }

    /// Reads every file again; on success the new set serves the next handshakes, on failure
    /// the old one stays and the error says which file is wrong.
    pub fn reload(&self, now: SystemTime) -> Result<(), String> {
        let set = CertificateSet::load(&self.files, now);
        if let Ok(mut failed) = self.failed_stamps.lock() {
            *failed = set.is_err().then(|| stamps(&self.files));
        }
        let set = set?;
        match self.current.write() {
            Ok(mut current) => *current = Arc::new(set),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(set),
        }
        Ok(())
    }
}

impl ResolvesServerCert for CertificateStore {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let set = self.current();
        let Some(name) = hello.server_name() else {
            return Some(set.default.clone());
        };
        let name = name.to_ascii_lowercase();
        let wildcard = name
            .split_once('.')
            .map(|(_, parent)| format!("*.{parent}"));
        set.by_name
            .get(&name)
            .or_else(|| wildcard.and_then(|w| set.by_name.get(&w)))
            .cloned()
            .or_else(|| Some(set.default.clone()))
    }
}

impl CertificateSet {
    fn load(files: &[CertificateFiles], now: SystemTime) -> Result<CertificateSet, String> {
        let stamps = stamps(files);
        let provider = CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
        let mut by_name = HashMap::new();
        let mut names = Vec::new();
        let mut default = None;
        for entry in files {
            let (key, leaf_names) = load_one(entry, &provider, now)?;
            let key = Arc::new(key);
            for name in &leaf_names {
                by_name.entry(name.clone()).or_insert_with(|| key.clone());
            }
            names.push(leaf_names);
            default.get_or_insert(key);
        }
        let default = default.ok_or("no certificates are configured")?;
        Ok(CertificateSet {
            default,
            by_name,
            stamps,
            names,
        })
    }
}

fn stamps(files: &[CertificateFiles]) -> Vec<Option<SystemTime>> {
    files
        .iter()
        .flat_map(|f| [&f.cert_file, &f.key_file])
        .map(|path| std::fs::metadata(path).and_then(|m| m.modified()).ok())
        .collect()
}

/// One chain and key, checked: the key matches the leaf and the leaf is within its validity.
fn load_one(
    files: &CertificateFiles,
    provider: &CryptoProvider,
    now: SystemTime,
) -> Result<(CertifiedKey, Vec<String>), String> {
    let cert_path = files.cert_file.display().to_string();
    let key_path = files.key_file.display().to_string();
    let loaded = load_certs_and_key_files(&cert_path, &key_path)
        .map_err(|e| format!("{cert_path} / {key_path}: {}", e.etype().as_str()))?;
    let Some((chain, key)) = loaded else {
        return Err(format!(
            "{cert_path} holds no certificate or {key_path} no private key (PEM expected)"
        ));
    };
    let leaf = chain
        .first()
        .ok_or_else(|| format!("{cert_path} holds no certificate"))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|e| format!("{cert_path}: the certificate does not parse ({e})"))?;
    let unix_now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let validity = parsed.validity();
    if validity.not_after.timestamp() < unix_now {
        return Err(format!(
            "{cert_path}: the certificate expired on {}",
            validity.not_after
        ));
    }
    if validity.not_before.timestamp() > unix_now {
        return Err(format!(
            "{cert_path}: the certificate is not valid before {}",
            validity.not_before
        ));
    }
    let names = dns_names(&parsed);
    let certified = CertifiedKey::from_der(chain, key, provider)
        .map_err(|e| format!("{key_path} does not fit {cert_path}: {e}"))?;
    Ok((certified, names))
}

/// The leaf's DNS names (SAN), lower case; the subject CN only when it has no SAN names.
fn dns_names(cert: &x509_parser::certificate::X509Certificate<'_>) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let mut names: Vec<String> = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::DNSName(dns) => Some(dns.to_ascii_lowercase()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    if names.is_empty() {
        if let Some(cn) = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
        {
            names.push(cn.to_ascii_lowercase());
        }
    }
    names
}
