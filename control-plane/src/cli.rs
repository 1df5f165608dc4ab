//! The command line: `control-plane [--config <path>] <command>`.
//!
//! - `serve` (default): run the API and the transcoding workers.
//! - `init-secrets --dir <dir>`: create the contract's secret files if missing (0600).
//! - `token --sub <id> [--admin] [--ttl-secs 3600]`: print a viewer JWT signed with the
//!   configured HS256 secret (development and tests).
//! - `subscribe --user <id> --tier free|pro|enterprise`: give a user an active subscription.
//! - `migrate`: apply database migrations and exit.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use playback::jwt::{mint_hs256, Claims};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::db::users::TierName;
use crate::db::{now, Db};
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
        #[arg(long, value_enum)]
        tier: Tier,
    },
    /// Apply database migrations and exit.
    Migrate,
}

/// Subscription tiers accepted by `subscribe`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Tier {
    Free,
    Pro,
    Enterprise,
}

impl From<Tier> for TierName {
    fn from(t: Tier) -> Self {
        match t {
            Tier::Free => TierName::Free,
            Tier::Pro => TierName::Pro,
            Tier::Enterprise => TierName::Enterprise,
        }
    }
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
            db.subscribe(&user, tier.into(), now()).await?;
            println!(
                "{user} is now on the {} tier",
                TierName::from(tier).as_str()
            );
            Ok(())
        }
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
    let secret =
        secrets::read_key_material("jwt.hs256_secret_file", &config.jwt.hs256_secret_file)?;
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
    };
    println!("{}", mint_hs256(&secret, &claims));
    Ok(())
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
        assert!(Cli::try_parse_from([
            "control-plane",
            "subscribe",
            "--user",
            "u",
            "--tier",
            "gold"
        ])
        .is_err());
    }
}
