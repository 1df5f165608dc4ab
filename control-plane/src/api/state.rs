//! The state every handler shares ([`App`]): the configuration, the database, the verifiers
//! and signers built from the service's secrets, key custody, the job runner and the edge
//! invalidator, built once at start-up by the server's wiring.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use playback::jwt::Hs256Verifier;
use playback::token::session::SessionSigner;

use crate::config::Config;
use crate::db::{now, Db, DbError};
use crate::invalidation::Invalidator;
use crate::keys::KeyCustody;
use crate::secrets::CredentialFile;
use crate::transcode::runner::JobRunner;

/// Shared state of every handler.
pub type AppState = Arc<App>;

/// Everything handlers need.
pub struct App {
    pub config: Config,
    pub db: Db,
    pub jwt: Hs256Verifier,
    pub url_signer: SessionSigner,
    /// SHA-256 of the service token; the token itself is not kept.
    pub service_token_digest: [u8; 32],
    pub transport_key: [u8; 32],
    pub custody: Arc<dyn KeyCustody>,
    pub runner: JobRunner,
    /// Tells edges about revoked keys and changed entitlements (no-op without `[redis]`).
    pub invalidator: Invalidator,
    /// The credential SPEKE encryptors present (`speke.credential_file`, read per request).
    pub speke_credentials: CredentialFile,
    known_users: Mutex<HashSet<String>>,
}

/// Users remembered as existing before the set is cleared (bounds memory).
const KNOWN_USERS_CAP: usize = 100_000;

impl App {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: Config,
        db: Db,
        jwt: Hs256Verifier,
        url_signer: SessionSigner,
        service_token_digest: [u8; 32],
        transport_key: [u8; 32],
        custody: Arc<dyn KeyCustody>,
        runner: JobRunner,
        invalidator: Invalidator,
        speke_credentials: CredentialFile,
    ) -> Self {
        App {
            config,
            db,
            jwt,
            url_signer,
            service_token_digest,
            transport_key,
            custody,
            runner,
            invalidator,
            speke_credentials,
            known_users: Mutex::new(HashSet::new()),
        }
    }

    /// Creates the user row for a JWT subject the first time it is seen.
    pub async fn ensure_user(&self, user_id: &str) -> Result<(), DbError> {
        if self.known().contains(user_id) {
            return Ok(());
        }
        self.db.upsert_user(user_id, None, now()).await?;
        let mut known = self.known();
        if known.len() >= KNOWN_USERS_CAP {
            known.clear();
        }
        known.insert(user_id.to_string());
        Ok(())
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.known_users.lock().unwrap_or_else(|p| p.into_inner())
    }
}
