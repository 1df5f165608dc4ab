//! Assembling and running the server: secrets, database, custody, runner, router.
//!
//! [`build`] does everything `serve` needs before accepting connections (also used in-process by
//! the tests): it reads every secret, opens key custody (creating the local master key on first
//! start), connects and
//! migrates the database, re-runs or fails jobs a previous process left in `processing`, and
//! prepares the (lazily connected) Redis invalidator when `[redis] url` is set.

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
use crate::config::Config;
use crate::db::Db;
use crate::invalidation::Invalidator;
use crate::keys;
use crate::secrets;
use crate::transcode::runner::{JobRunner, RunnerSettings};

/// Cause recorded on jobs a previous process left unfinished.
pub const RESTART_CAUSE: &str = "a control-plane restart";

/// Builds the application state and router from a validated configuration.
pub async fn build(config: Config) -> anyhow::Result<(Router, AppState)> {
    let jwt_secret =
        secrets::read_key_material("jwt.hs256_secret_file", &config.jwt.hs256_secret_file)?;
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
    if config.speke.enabled {
        api::speke::load_credentials(&config.speke.credential_file).map_err(anyhow::Error::msg)?;
    }
    let custody = keys::from_config(&config.keys).await?;

    for dir in [&config.storage.uploads_dir, &config.storage.origin_dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }

    let db = Db::connect(&config.database.url, config.database.max_connections)
        .await
        .context("database.url: cannot connect")?;
    db.migrate().await?;

    let runner = JobRunner::new(
        db.clone(),
        custody.clone(),
        crate::transcode::backend_from_config(&config).await?,
        RunnerSettings {
            origin_dir: config.storage.origin_dir.clone(),
            edge_base: config.edge_base().to_string(),
            renditions: config.transcode.renditions.clone(),
            max_attempts: config.transcode.max_attempts,
            max_concurrent_jobs: config.transcode.max_concurrent_jobs,
        },
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
        Hs256Verifier::new(&jwt_secret, rules),
        // EdgeAuth v2 with the edge's defaults (sha256, `hdnts`): the edge verifies it.
        SessionSigner::new(EdgeAuth::new(EdgeAuthConfig::new(signing_key.to_vec()))),
        Sha256::digest(service_token.as_bytes()).into(),
        transport_key,
        custody,
        runner,
        invalidator,
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
