//! `edge-proxy`: loads the configuration and secrets, builds the Pingora server with the edge
//! proxy service on `server.listen`, and runs until signalled.
//!
//! Start-up is quick and loud about mistakes: a bad configuration or a missing secret file
//! exits with status 2 and one line naming the key and the fix. With `[redis]` configured, the
//! persisted revocations are loaded before the listener opens (so a restarted edge still
//! denies), then a background service follows the revocation channel. Once the listener
//! accepts connections the edge logs one JSON line, `"edge listening"`, with the address.
//!
//! `edge-proxy --upgrade` starts a process that takes the listening sockets over from the
//! running one once that one gets SIGQUIT (Pingora's graceful upgrade); SIGTERM drains.
//!
//! `edge-proxy explain <token|URL> [--path P] [--ip A]` explains a token instead of serving
//! (exit 0 pass, 1 fail, 2 bad configuration).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use async_trait::async_trait;
use clap::{Parser, Subcommand};
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::{Server, ShutdownWatch};
use pingora::services::background::{background_service, BackgroundService};

use edge_proxy::app::App;
use edge_proxy::config::EdgeConfig;

/// Longest the final shutdown step may take after the grace period (SIGTERM).
const SHUTDOWN_TIMEOUT_SECS: u64 = 5;

/// Secure streaming edge (Pingora).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Path to the edge configuration (TOML); `EDGE_*` environment variables override it.
    #[arg(long, global = true, default_value = "config/edge.dev.toml")]
    config: PathBuf,
    /// Take over the listening sockets of the edge running with the same
    /// `server.upgrade_sock`: start this, then send the old process SIGQUIT; it hands its
    /// sockets over and drains (graceful upgrade, no refused connection).
    #[arg(long)]
    upgrade: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the edge (the default).
    Serve,
    /// Explain why a token or a whole URL passes or fails every check (exit 0 pass, 1 fail).
    Explain {
        /// An EdgeAuth token (with or without `hdnts=`), or a URL carrying one (query or path
        /// segment) or CloudFront parameters.
        input: String,
        /// Request path to check the token against (default: the URL's path, or the token's
        /// own first ACL entry).
        #[arg(long)]
        path: Option<String>,
        /// Client address to check an `ip` binding against.
        #[arg(long)]
        ip: Option<IpAddr>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Explain { input, path, ip }) = &cli.command {
        return edge_proxy::explain::run(&cli.config, input, path.as_deref(), *ip);
    }
    init_logging();
    match build(&cli) {
        Ok(server) => server.run_forever(),
        Err(message) => {
            eprintln!("edge-proxy: {message}");
            ExitCode::from(2)
        }
    }
}

/// Loads everything and assembles the server; any failure is a one-line explanation.
fn build(cli: &Cli) -> Result<Server, String> {
    let config = EdgeConfig::load(&cli.config).map_err(|e| e.to_string())?;
    let App {
        edge,
        tasks,
        listeners,
    } = App::build(&config).map_err(|e| e.to_string())?;
    tasks.load_revocations();

    let server_conf = ServerConf {
        threads: config.server.threads,
        grace_period_seconds: Some(config.server.shutdown_grace_secs),
        graceful_shutdown_timeout_seconds: Some(SHUTDOWN_TIMEOUT_SECS),
        upgrade_sock: config.server.upgrade_sock.clone(),
        ..ServerConf::default()
    };
    let options = Opt {
        upgrade: cli.upgrade,
        ..Opt::default()
    };
    let mut server = Server::new_with_opt_and_conf(Some(options), server_conf);
    server.bootstrap();
    let draining = edge.ops.draining.clone();
    let addresses = listeners.addresses();
    let mut proxy =
        pingora::proxy::http_proxy_service_with_name(&server.configuration, edge, "edge");
    listeners.attach(&mut proxy, &mut server);
    server.add_service(proxy);
    server.add_service(background_service(
        "listen announcer",
        ListenAnnouncer { addresses },
    ));
    server.add_service(background_service(
        "drain watcher",
        DrainWatcher { draining },
    ));
    tasks.add_to(&mut server);
    Ok(server)
}

/// JSON logs to stdout; `RUST_LOG` filters (default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_env_filter(filter)
        .init();
}

/// Logs `"edge listening"` once for each listener, when it accepts connections.
struct ListenAnnouncer {
    addresses: Vec<SocketAddr>,
}

#[async_trait]
impl BackgroundService for ListenAnnouncer {
    async fn start(&self, _shutdown: ShutdownWatch) {
        for addr in &self.addresses {
            announce(*addr).await;
        }
    }
}

async fn announce(addr: SocketAddr) {
    for _ in 0..500 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            tracing::info!(%addr, "edge listening");
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tracing::error!(%addr, "the listener did not come up within 5 seconds");
}

/// Marks the edge as draining (so `/ready` answers 503) as soon as Pingora begins a graceful
/// shutdown or upgrade; the listeners then stay open for the grace period.
struct DrainWatcher {
    draining: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

#[async_trait]
impl BackgroundService for DrainWatcher {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        if shutdown.changed().await.is_ok() {
            self.draining
                .store(true, std::sync::atomic::Ordering::Relaxed);
            tracing::info!("draining: /ready now answers 503");
        }
    }
}
