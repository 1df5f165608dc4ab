//! Key custody: where per-title content keys come from and how they are kept.
//!
//! [`KeyCustody`] is the seam between the control plane and whatever guards the master key,
//! chosen by `[keys] backend` ([`from_config`]): a local master-key file ([`local`]), AWS KMS
//! data keys ([`kms`]), an OpenBao / Vault Transit key ([`vault`]) or an AES key inside an HSM
//! over PKCS#11 ([`pkcs11`]). A backend hands out fresh AES-128 content keys together with
//! their at-rest envelope (the only form the database ever sees), seals keys of titles packaged
//! elsewhere, and opens envelopes again when a key must be re-wrapped for transport to an edge.
//! Each backend's envelope carries its own prefix, so an envelope never opens under another.
//!
//! The seam and its key types are in [`custody`] (re-exported here); this file builds the
//! configured backend.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::config::KeysConfig;

pub mod custody;
pub mod kms;
pub mod local;
pub mod pkcs11;
pub mod vault;

pub use custody::{ContentKey, CustodyError, GeneratedKey, KeyCustody, CONTENT_KEY_LEN};

/// Builds the backend `[keys]` names. Remote backends (KMS, OpenBao) are not called here: one
/// that is down at start-up answers 503 naming itself until it is back, and `/ready` says so.
/// A PKCS#11 module is loaded and logged into at once (a local library: failing is a
/// configuration error).
pub async fn from_config(config: &KeysConfig) -> anyhow::Result<Arc<dyn KeyCustody>> {
    let custody: Arc<dyn KeyCustody> = match config.backend.as_str() {
        "kms" => {
            let c = &config.kms;
            let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
            let kms = kms::KmsCustody::new(kms::KmsConfig {
                key_id: c.key_id.clone(),
                region: non_empty(&c.region),
                endpoint_url: non_empty(&c.endpoint_url),
                credentials: None,
                cache_ttl: Duration::from_secs(c.cache_ttl_secs),
                cache_max_entries: c.cache_max_entries,
                connect_timeout: Duration::from_millis(c.connect_timeout_ms),
                operation_timeout: Duration::from_millis(c.operation_timeout_ms),
                max_attempts: c.max_attempts,
                decrypt_key_arns: c.decrypt_key_arns.clone(),
            })
            .await
            .context("keys.kms")?;
            Arc::new(kms)
        }
        "openbao" => {
            let c = &config.openbao;
            let mut vc = vault::VaultTransitConfig::new(&c.address, &c.key, c.token_file.clone());
            vc.mount = c.mount.clone();
            vc.namespace = (!c.namespace.is_empty()).then(|| c.namespace.clone());
            vc.ca_cert_file =
                (!c.ca_cert_file.as_os_str().is_empty()).then(|| c.ca_cert_file.clone());
            vc.connect_timeout = Duration::from_millis(c.connect_timeout_ms);
            vc.request_timeout = Duration::from_millis(c.request_timeout_ms);
            Arc::new(vault::VaultTransitCustody::new(&vc).context("keys.openbao")?)
        }
        "pkcs11" => {
            let pc = pkcs11::Pkcs11Config::from_config(&config.pkcs11);
            Arc::new(
                pkcs11::Pkcs11Custody::connect(pc)
                    .await
                    .context("keys.pkcs11")?,
            )
        }
        _ => {
            let (local, created) = local::LocalKeyCustody::open_or_create(&config.master_key_file)?;
            if created {
                tracing::warn!(path = %config.master_key_file.display(), "created a new master key; back it up, stored content keys depend on it");
            }
            Arc::new(local)
        }
    };
    match custody.check().await {
        Ok(()) => tracing::info!(backend = custody.backend(), "key custody ready"),
        Err(e) => {
            tracing::warn!(backend = custody.backend(), error = %e, "key custody not reachable yet")
        }
    }
    Ok(custody)
}
