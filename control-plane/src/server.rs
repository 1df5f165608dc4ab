//! Assembling and running the server: the control plane's wiring.
//!
//! [`build`] does everything `serve` needs before accepting connections (also used in-process by
//! the tests): it reads the service's secrets ([`ServiceSecrets`], the one place they are read),
//! opens key custody (creating the local master key on first start; custody backends open their
//! own credentials), connects and migrates the database, builds the transcoding backend and the
//! job runner, re-runs or fails jobs a previous process left in `processing`, and prepares the
//! (lazily connected) Redis invalidator when `[redis] url` is set. Each part is built from its
//! own configuration section; the secrets are handed to the parts that use them.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use playback::jwt::{Hs256Verifier, JwtRules};
use playback::token::edgeauth::{EdgeAuth, EdgeAuthConfig};
use playback::token::session::SessionSigner;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

use crate::api::{self, App, AppState};
use crate::config::{Config, JwtConfig};
use crate::db::Db;
use crate::invalidation::Invalidator;
use crate::keys;
use crate::secrets::{self, CredentialFile, SecretError};
use crate::transcode::runner::JobRunner;
use crate::transcode::Backend;

/// Cause recorded on jobs a previous process left unfinished.
pub const RESTART_CAUSE: &str = "a control-plane restart";

/// The secrets the API runs with, read from the files the configuration names.
pub struct ServiceSecrets {
    /// HS256 secret of viewer JWTs (`jwt.hs256_secret_file`).
    pub jwt_secret: Vec<u8>,
    /// The edges' bearer token for the internal API (`internal.service_token_file`).
    pub service_token: String,
    /// Wraps content keys on their way to an edge (`internal.key_transport_key_file`).
    pub transport_key: [u8; 32],
    /// HMAC key of the signed manifest URLs (`signed_urls.signing_key_file`).
    pub signing_key: Vec<u8>,
    /// The SPEKE credential, re-read per request (`speke.credential_file`); checked here when
    /// `[speke] enabled`, so a missing or short file stops start-up.
    pub speke_credentials: CredentialFile,
}

impl ServiceSecrets {
    /// Reads every secret `config` names; the first missing or malformed one is the error.
    pub fn read(config: &Config) -> anyhow::Result<Self> {
        let jwt_secret = jwt_secret(&config.jwt)?;
        let service_token = secrets::read_service_token(
            "internal.service_token_file",
            &config.internal.service_token_file,
        )?;
        let transport_key = secrets::read_kek(
            "internal.key_transport_key_file",
            &config.internal.key_transport_key_file,
        )?;
        let signing_key = secrets::read_key_material(
            "signed_urls.signing_key_file",
            &config.signed_urls.signing_key_file,
        )?;
        let speke_credentials =
            CredentialFile::new("speke.credential_file", &config.speke.credential_file);
        if config.speke.enabled {
            speke_credentials.read().map_err(anyhow::Error::msg)?;
        }
        Ok(ServiceSecrets {
            jwt_secret,
            service_token,
            transport_key,
            signing_key,
            speke_credentials,
        })
    }
}

/// The HS256 secret viewer JWTs are signed with (`[jwt] hs256_secret_file`); `serve` verifies
/// with it and `control-plane token` signs with it.
pub fn jwt_secret(config: &JwtConfig) -> Result<Vec<u8>, SecretError> {
    secrets::read_key_material("jwt.hs256_secret_file", &config.hs256_secret_file)
}

/// Builds the application state and router from a validated configuration.
pub async fn build(config: Config) -> anyhow::Result<(Router, AppState)> {
    let secrets = ServiceSecrets::read(&config)?;
    let custody = keys::from_config(&config.keys).await?;

    for dir in [&config.storage.uploads_dir, &config.storage.origin_dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }

    let db = Db::connect(&config.database.url, config.database.max_connections)
        .await
        .context("database.url: cannot connect")?;
    db.migrate().await?;

    let backend = Backend::from_config(&config.transcode, config.edge_base()).await?;
    let runner = JobRunner::new(
        &config.transcode,
        config.storage.origin_dir.clone(),
        config.edge_base(),
        db.clone(),
        custody.clone(),
        backend,
    );
    let recovered = runner.reconcile(RESTART_CAUSE).await?;
    if recovered != Default::default() {
        tracing::info!(
            requeued = recovered.requeued,
            failed = recovered.failed,
            "recovered jobs interrupted by a restart"
        );
    }

    let invalidator =
        Invalidator::from_config(&config.redis).context("redis.url: not a valid Redis URL")?;
    if invalidator.is_enabled() {
        tracing::info!(
            channel = invalidator.channel().unwrap_or_default(),
            "edges are notified of invalidations through redis"
        );
    }

    let rules = JwtRules {
        issuer: config.jwt.issuer.clone(),
        audience: config.jwt.audience.clone(),
        leeway_secs: config.jwt.leeway_secs,
    };
    let app = Arc::new(App::new(
        config,
        db,
        Hs256Verifier::new(&secrets.jwt_secret, rules),
        // EdgeAuth v2 with the edge's defaults (sha256, `hdnts`): the edge verifies it.
        SessionSigner::new(EdgeAuth::new(EdgeAuthConfig::new(secrets.signing_key))),
        Sha256::digest(secrets.service_token.as_bytes()).into(),
        secrets.transport_key,
        custody,
        runner,
        invalidator,
        secrets.speke_credentials,
    ));
    Ok((api::router(app.clone()), app))
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
