//! The command line: `control-plane [--config <path>] <command>`.
//!
//! - `serve` (default): run the API and the transcoding workers.
//! - `init-secrets --dir <dir>`: create the contract's secret files if missing (0600).
//! - `token --sub <id> [--admin] [--ttl-secs 3600]`: print a viewer JWT signed with the
//!   configured HS256 secret (development and tests).
//! - `subscribe --user <id> --tier <name>`: give a user an active subscription (free, pro,
//!   enterprise or a tier created through the admin API)
//!   (and tell edges through Redis when `[redis] url` is set).
//! - `import --owner <id> --dir <dir> --name <title> [--drm] [--key-id <uuid> --key-file <path>]...`:
//!   record a title packaged elsewhere (see [`crate::import`]); prints
//!   `{"videoId", "keyIds"}`.
//! - `revoke-key --video <id> --key <id>`: revoke a content key and tell edges; prints the same
//!   JSON as `POST /admin/v1/videos/{videoId}/keys/{keyId}/revoke`.
//! - `rotate-key --video <id>`: a new current key for the title (its first key when it has
//!   none); earlier keys keep serving until retired. Prints `{"videoId","keyId","previousKeyId",..}`.
//! - `retire-key --video <id> --key <id>`: stop serving a non-current key and tell edges.
//! - `init-hsm-key`: create the `[keys.pkcs11]` AES-256 wrapping key in the token if missing.
//! - `migrate`: apply database migrations and exit.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use playback::jwt::{mint_hs256, Claims};
use tokio::net::TcpListener;
use uuid::Uuid;

use crate::admin;
use crate::config::Config;
use crate::db::{now, Db};
use crate::import::{self, ImportKey, ImportRequest, ImportTarget};
use crate::invalidation::Invalidator;
use crate::keys::pkcs11::{init_wrapping_key, Pkcs11Config, WrappingKeyInit};
use crate::keys::{self, KeyCustody};
use crate::secrets::{self, Created};
use crate::server;

/// Control plane of the secure streaming edge.
#[derive(Debug, Parser)]
#[command(name = "control-plane", version, about)]
pub struct Cli {
    /// Configuration file (TOML); `CP_*` environment variables and `DATABASE_URL` override it.
    #[arg(long, global = true, default_value = "config/control-plane.dev.toml")]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API and the transcoding workers (the default).
    Serve,
    /// Create missing secret files (mode 0600) in a directory; existing files are kept.
    InitSecrets {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Print an HS256 viewer JWT for a user (development and tests).
    Token {
        #[arg(long)]
        sub: String,
        /// Grant the admin role.
        #[arg(long)]
        admin: bool,
        #[arg(long, default_value_t = 3600)]
        ttl_secs: u64,
    },
    /// Give a user an active subscription (creating the user if needed).
    Subscribe {
        #[arg(long)]
        user: String,
        /// A tier's name: free, pro, enterprise or one created with `POST /admin/v1/tiers`.
        #[arg(long)]
        tier: String,
    },
    /// Record a title packaged elsewhere (Shaka Packager, MediaConvert, ...) as ready to play:
    /// copies the directory into the origin, seals its keys; prints {"videoId", "keyIds"}.
    Import {
        /// The owner's user id (JWT `sub`); created if needed.
        #[arg(long)]
        owner: String,
        /// The packaged directory: master.m3u8 or an .mpd at its top level.
        #[arg(long)]
        dir: PathBuf,
        /// The title's name.
        #[arg(long)]
        name: String,
        /// The title is encrypted: viewers need a DRM-capable tier; needs --key-id/--key-file.
        #[arg(long)]
        drm: bool,
        /// A content key id (UUID); the n-th --key-id goes with the n-th --key-file.
        #[arg(long = "key-id")]
        key_ids: Vec<Uuid>,
        /// A file holding that key: 16 raw bytes or 32 hex characters (read, never printed).
        #[arg(long = "key-file")]
        key_files: Vec<PathBuf>,
    },
    /// Revoke a content key of a title (idempotent) and tell edges; prints the result as JSON.
    RevokeKey {
        #[arg(long)]
        video: Uuid,
        #[arg(long)]
        key: Uuid,
    },
    /// Make a new current content key for a title (custody generates it); earlier keys keep
    /// serving until retired. Prints the result as JSON.
    RotateKey {
        #[arg(long)]
        video: Uuid,
    },
    /// Retire a (non-current) content key of a title (idempotent) and tell edges.
    RetireKey {
        #[arg(long)]
        video: Uuid,
        #[arg(long)]
        key: Uuid,
    },
    /// Create the PKCS#11 wrapping key named in `[keys.pkcs11]` if the token lacks it.
    InitHsmKey,
    /// Apply database migrations and exit.
    Migrate,
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::InitSecrets { dir } => init_secrets(&dir),
        Command::Serve => serve(Config::load(&cli.config)?).await,
        Command::Token {
            sub,
            admin,
            ttl_secs,
        } => token(&Config::load(&cli.config)?, sub, admin, ttl_secs),
        Command::Subscribe { user, tier } => {
            let config = Config::load(&cli.config)?;
            let db = connect(&config).await?;
            let invalidator = invalidator(&config)?;
            let change = admin::set_subscription(&db, &invalidator, &user, &tier).await?;
            println!("{user} is now on the {} tier", change.tier);
            report_notification(&invalidator, change.edges_notified);
            Ok(())
        }
        Command::Import {
            owner,
            dir,
            name,
            drm,
            key_ids,
            key_files,
        } => {
            let config = Config::load(&cli.config)?;
            let keys = read_import_keys(&key_ids, &key_files)?;
            let db = connect(&config).await?;
            let target = ImportTarget {
                db: &db,
                custody: custody(&config).await?,
                origin_dir: &config.storage.origin_dir,
                edge_base: config.edge_base(),
            };
            let request = ImportRequest {
                owner: &owner,
                dir: &dir,
                name: &name,
                drm,
                keys,
            };
            let imported = import::import_title(&target, request).await?;
            println!("{}", serde_json::to_string(&imported)?);
            db.close().await;
            Ok(())
        }
        Command::RevokeKey { video, key } => {
            let config = Config::load(&cli.config)?;
            let db = connect(&config).await?;
            let invalidator = invalidator(&config)?;
            let custody = custody(&config).await?;
            let revocation =
                admin::revoke_key(&db, &invalidator, custody.as_ref(), "cli", video, key)
                    .await?
                    .with_context(|| format!("--key: video {video} has no content key {key}"))?;
            println!("{}", serde_json::to_string(&revocation)?);
            report_notification(&invalidator, revocation.edges_notified);
            db.close().await;
            Ok(())
        }
        Command::RotateKey { video } => {
            let config = Config::load(&cli.config)?;
            let db = connect(&config).await?;
            let custody = custody(&config).await?;
            let issued = admin::issue_key(&db, custody.as_ref(), "cli", video, true).await?;
            println!("{}", serde_json::to_string(&issued)?);
            db.close().await;
            Ok(())
        }
        Command::RetireKey { video, key } => {
            let config = Config::load(&cli.config)?;
            let db = connect(&config).await?;
            let invalidator = invalidator(&config)?;
            let custody = custody(&config).await?;
            let retirement =
                admin::retire_key(&db, &invalidator, custody.as_ref(), "cli", video, key).await?;
            println!("{}", serde_json::to_string(&retirement)?);
            report_notification(&invalidator, retirement.edges_notified);
            db.close().await;
            Ok(())
        }
        Command::InitHsmKey => init_hsm_key(&Config::load(&cli.config)?),
        Command::Migrate => {
            let config = Config::load(&cli.config)?;
            connect(&config).await?;
            println!("migrations applied ({})", redact_url(&config.database.url));
            Ok(())
        }
    }
}

fn init_secrets(dir: &Path) -> anyhow::Result<()> {
    let report =
        secrets::init_secrets(dir).with_context(|| format!("cannot write to {}", dir.display()))?;
    for entry in report {
        match entry {
            Created::Created(p) => println!("created {}", p.display()),
            Created::Kept(p) => println!("kept    {} (already exists)", p.display()),
        }
    }
    Ok(())
}

fn token(config: &Config, sub: String, admin: bool, ttl_secs: u64) -> anyhow::Result<()> {
    let secret = server::jwt_secret(&config.jwt)?;
    let issued = u64::try_from(now().unix_timestamp()).unwrap_or(0);
    let claims = Claims {
        sub,
        iss: config.jwt.issuer.clone(),
        aud: config.jwt.audience.clone(),
        exp: issued + ttl_secs,
        nbf: None,
        iat: Some(issued),
        jti: Some(uuid::Uuid::new_v4().to_string()),
        roles: if admin { vec!["admin".into()] } else { vec![] },
        device_id: None,
    };
    println!("{}", mint_hs256(&secret, &claims));
    Ok(())
}

/// Pairs each `--key-id` with the `--key-file` at the same position and reads the keys.
fn read_import_keys(key_ids: &[Uuid], key_files: &[PathBuf]) -> anyhow::Result<Vec<ImportKey>> {
    if key_ids.len() != key_files.len() {
        anyhow::bail!(
            "--key-id/--key-file: give them in pairs ({} key ids, {} key files)",
            key_ids.len(),
            key_files.len()
        );
    }
    key_ids
        .iter()
        .zip(key_files)
        .map(|(key_id, path)| {
            Ok(ImportKey {
                key_id: *key_id,
                key: import::read_key_file(path)?,
            })
        })
        .collect()
}

/// The configured key custody, opened the way `serve` opens it.
async fn custody(config: &Config) -> anyhow::Result<Arc<dyn KeyCustody>> {
    keys::from_config(&config.keys).await
}

/// `init-hsm-key`: creates the `[keys.pkcs11]` wrapping key in the token if it is missing.
fn init_hsm_key(config: &Config) -> anyhow::Result<()> {
    let c = &config.keys.pkcs11;
    if c.module.as_os_str().is_empty() {
        anyhow::bail!("keys.pkcs11.module: set [keys.pkcs11] module, token_label, pin_file and key_label first");
    }
    match init_wrapping_key(&Pkcs11Config::from_config(c))? {
        WrappingKeyInit::Created => println!(
            "created AES-256 wrapping key {:?} in token {:?} (sensitive, not extractable)",
            c.key_label, c.token_label
        ),
        WrappingKeyInit::AlreadyPresent => println!(
            "wrapping key {:?} already exists in token {:?}; kept",
            c.key_label, c.token_label
        ),
    }
    Ok(())
}

fn invalidator(config: &Config) -> anyhow::Result<Invalidator> {
    Invalidator::from_config(&config.redis).context("redis.url: not a valid Redis URL")
}

/// Says on stderr when edges could not be told (stdout stays machine-readable).
fn report_notification(invalidator: &Invalidator, notified: bool) {
    if invalidator.is_enabled() && !notified {
        eprintln!(
            "warning: the change is stored but edges were not notified (Redis unavailable); \
             they will see it when their cached entries expire"
        );
    }
}

async fn connect(config: &Config) -> anyhow::Result<Db> {
    let db = Db::connect(&config.database.url, config.database.max_connections)
        .await
        .with_context(|| {
            format!(
                "database.url: cannot connect to {}",
                redact_url(&config.database.url)
            )
        })?;
    db.migrate().await?;
    Ok(db)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    config.validate_tools()?;
    let addr = config.listen_addr()?;
    let (router, app) = server::build(config).await?;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("server.listen: cannot bind {addr}"))?;
    tracing::info!(listen = %listener.local_addr()?, database = app.db.kind(), "control plane listening");
    server::serve(listener, router, server::shutdown_signal()).await?;
    app.db.close().await;
    Ok(())
}

/// A database URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_password() {
        assert_eq!(
            redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://data/x.db"), "sqlite://data/x.db");
    }

    #[test]
    fn cli_parses() {
        let cli =
            Cli::try_parse_from(["control-plane", "token", "--sub", "u1", "--admin"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Token {
                admin: true,
                ttl_secs: 3600,
                ..
            })
        ));
        let cli = Cli::try_parse_from(["control-plane", "--config", "x.toml"]).unwrap();
        assert!(cli.command.is_none());
        let cli = Cli::try_parse_from([
            "control-plane",
            "import",
            "--owner",
            "o",
            "--dir",
            "d",
            "--name",
            "n",
            "--drm",
            "--key-id",
            "6f1c7a8e-3b9f-4d3a-9c59-1f7f1d2f0a11",
            "--key-file",
            "a.key",
            "--key-id",
            "0d3c1f4e-2a6b-4c8d-9e0f-112233445566",
            "--key-file",
            "b.key",
        ])
        .unwrap();
        match cli.command {
            Some(Command::Import {
                drm: true,
                key_ids,
                key_files,
                ..
            }) => {
                assert_eq!(key_ids.len(), 2);
                assert_eq!(key_files, vec![PathBuf::from("a.key"), "b.key".into()]);
            }
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from([
            "control-plane",
            "revoke-key",
            "--video",
            "not-a-uuid",
            "--key",
            "6f1c7a8e-3b9f-4d3a-9c59-1f7f1d2f0a11"
        ])
        .is_err());
        assert!(read_import_keys(&[Uuid::new_v4()], &[]).is_err());
        // Any tier name parses; the database decides whether it exists.
        assert!(Cli::try_parse_from([
            "control-plane",
            "subscribe",
            "--user",
            "u",
            "--tier",
            "gold"
        ])
        .is_ok());
        assert!(Cli::try_parse_from(["control-plane", "subscribe", "--user", "u"]).is_err());
    }
}
