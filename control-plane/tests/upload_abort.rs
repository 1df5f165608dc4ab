//! An upload the client abandons part-way (a raw socket sends half a multipart body and
//! closes) is a 400 `upload_aborted` logged at info, with no error logged, the partial file
//! removed and no file row, on SQLite and (with `DATABASE_URL`) Postgres. Alone in its binary:
//! it installs a log subscriber for its thread, and other tests' threads must not race the
//! subscriber's callsite registration.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{TestApp, TestDb};
use tokio::io::AsyncWriteExt;

async fn start(db: TestDb) -> TestApp {
    TestApp::start(db, |c| c.storage.max_upload_bytes = 1024 * 1024).await
}

/// Collects formatted log lines of the tasks on this thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends the headers and half of a multipart upload over a raw socket, then closes it.
async fn abandon_upload(t: &TestApp, token: &str) {
    let addr = t.base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let part_head =
        "--XYZ\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.mp4\"\r\n\
                     Content-Type: video/mp4\r\n\r\n";
    let head = format!(
        "POST /files/upload HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: multipart/form-data; boundary=XYZ\r\nContent-Length: 262144\r\n\r\n{part_head}"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(&[7u8; 64 * 1024]).await.unwrap();
    socket.flush().await.unwrap();
    // Long enough for the handler to have created the file and written the first bytes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(socket);
}

#[tokio::test]
async fn an_abandoned_upload_is_a_client_error_and_leaves_nothing() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    // The runtime of this test is single-threaded: the server's tasks log here.
    let _guard = tracing::subscriber::set_default(subscriber);
    for db in TestDb::all().await {
        let label = db.label;
        let t = start(db).await;
        let user = "aborting-uploader";
        let token = t.token(user);
        abandon_upload(&t, &token).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !captured.text().contains("status=400") {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{label}: no answer logged:\n{}",
                captured.text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let log = captured.text();
        assert!(
            log.contains("upload aborted by the client"),
            "{label}:\n{log}"
        );
        assert!(
            !log.contains(" ERROR "),
            "{label}: an abort is not a server error:\n{log}"
        );
        assert!(!log.contains("status=500"), "{label}:\n{log}");
        let leftovers: Vec<_> = std::fs::read_dir(&t.config.storage.uploads_dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(
            leftovers.is_empty(),
            "{label}: partial files left: {leftovers:?}"
        );
        let files = t.app.db.list_owned_files(user, None, 10).await.unwrap();
        assert!(files.is_empty(), "{label}: a file row was stored");
        // The next upload on the same server works.
        let id = t.upload(user, "b.mp4", vec![1; 1024]).await;
        assert!(!id.is_empty());
        captured.0.lock().unwrap().clear();
    }
}
