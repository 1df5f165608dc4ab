//! JSON logs on stderr (tracing-subscriber), filtered by `RUST_LOG` (default `info`).
//!
//! Handlers add `userId` / `fileId` / `jobId` fields; key bytes, secrets and whole tokens are
//! never logged.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber (once; later calls are ignored).
pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
