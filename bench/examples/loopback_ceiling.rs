//! The loopback ceiling of bench/cdn/run.sh: a minimal HTTP/1.1 server (axum over hyper, no
//! token check, no logging, bodies from memory) answering `GET /.../{name}` with the bytes of
//! `{dir}/{name}`, whatever the query. What the edge and nginx are compared against is the most
//! this machine can push through loopback with the same load tool, connections and files.
//!
//! `loopback_ceiling <listen addr> <dir> [worker threads, default 2]`

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;

/// Most files loaded from the directory, and the largest one: the server holds them in memory.
const MAX_FILES: usize = 64;
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

type Files = Arc<HashMap<String, Bytes>>;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (listen, dir, threads) = match args.as_slice() {
        [listen, dir] => (listen, dir, "2"),
        [listen, dir, threads] => (listen, dir, threads.as_str()),
        _ => usage(),
    };
    let Ok(listen) = listen.parse::<SocketAddr>() else {
        usage()
    };
    let Ok(threads) = threads.parse::<usize>() else {
        usage()
    };
    let files = match load(Path::new(dir)) {
        Ok(files) => Arc::new(files),
        Err(e) => {
            eprintln!("loopback_ceiling: reading {dir}: {e}");
            std::process::exit(1);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(listen).await {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("loopback_ceiling: binding {listen}: {e}");
                std::process::exit(1);
            }
        };
        println!(
            "loopback_ceiling listening on {listen} ({} files, {threads} threads)",
            files.len()
        );
        let app = Router::new().fallback(get(serve)).with_state(files);
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("loopback_ceiling: {e}");
            std::process::exit(1);
        }
    });
}

fn usage() -> ! {
    eprintln!("usage: loopback_ceiling <listen addr> <dir> [worker threads]");
    std::process::exit(2);
}

/// The regular files directly in `dir`, by name (bounded in number and size).
fn load(dir: &Path) -> std::io::Result<HashMap<String, Bytes>> {
    let mut files = HashMap::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if !meta.is_file() || meta.len() > MAX_FILE_BYTES {
            continue;
        }
        if files.len() == MAX_FILES {
            break;
        }
        if let Ok(name) = entry.file_name().into_string() {
            files.insert(name, Bytes::from(std::fs::read(entry.path())?));
        }
    }
    Ok(files)
}

/// The file named by the last path segment; the query (a token) is ignored.
async fn serve(State(files): State<Files>, uri: Uri) -> Response {
    let name = uri.path().rsplit('/').next().unwrap_or_default();
    match files.get(name) {
        Some(body) => ([(header::CONTENT_TYPE, "video/mp2t")], body.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
