//! `edge-proxy`: loads the configuration and secrets, builds the Pingora server with the edge
//! proxy service on `server.listen`, and runs until signalled.
//!
//! Start-up is quick and loud about mistakes: a bad configuration or a missing secret file
//! exits with status 2 and one line naming the key and the fix. Once the listener accepts
//! connections the edge logs one JSON line, `"edge listening"`, with the address.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use async_trait::async_trait;
use clap::Parser;
use pingora::server::configuration::ServerConf;
use pingora::server::{Server, ShutdownWatch};
use pingora::services::background::{background_service, BackgroundService};

use edge_proxy::config::{EdgeConfig, Secrets};
use edge_proxy::edge::Edge;

/// Longest the final shutdown step may take after the grace period (SIGTERM).
const SHUTDOWN_TIMEOUT_SECS: u64 = 5;

/// Secure streaming edge (Pingora).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Path to the edge configuration (TOML); `EDGE_*` environment variables override it.
    #[arg(long, default_value = "config/edge.dev.toml")]
    config: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    let listen = config.listen_addr().map_err(|e| e.to_string())?;
    let secrets = Secrets::load(&config).map_err(|e| e.to_string())?;
    let edge = Edge::new(&config, secrets).map_err(|e| e.to_string())?;

    let server_conf = ServerConf {
        threads: config.server.threads,
        grace_period_seconds: Some(config.server.shutdown_grace_secs),
        graceful_shutdown_timeout_seconds: Some(SHUTDOWN_TIMEOUT_SECS),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, server_conf);
    server.bootstrap();
    let mut proxy =
        pingora::proxy::http_proxy_service_with_name(&server.configuration, edge, "edge");
    proxy.add_tcp(&listen.to_string());
    server.add_service(proxy);
    server.add_service(background_service(
        "listen announcer",
        ListenAnnouncer { listen },
    ));
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

/// Logs `"edge listening"` once the proxy's listener accepts connections.
struct ListenAnnouncer {
    listen: SocketAddr,
}

#[async_trait]
impl BackgroundService for ListenAnnouncer {
    async fn start(&self, _shutdown: ShutdownWatch) {
        for _ in 0..500 {
            if tokio::net::TcpStream::connect(self.listen).await.is_ok() {
                tracing::info!(addr = %self.listen, "edge listening");
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tracing::error!(addr = %self.listen, "the listener did not come up within 5 seconds");
    }
}
